//! The store contract on both backends, and `vaxpass sign --db postgres://…` against the real
//! server at 127.0.0.1:5432 (user postgres, trust auth). Each test creates its own database
//! and drops it afterwards, so runs never see each other's rows.

use vaxpass::gate::SignedPassport;
use vaxpass::store::{self, BatchRecord, Store};

use crate::util::tempdir;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A throwaway database, dropped on drop.
pub struct TempDatabase {
    name: String,
}

impl TempDatabase {
    pub fn new() -> TempDatabase {
        let name = format!("vaxpass_it_{}_{}", std::process::id(), rand_suffix());
        let mut admin = postgres::Client::connect(&format!("{SERVER}/test"), postgres::NoTls)
            .expect("PostgreSQL must run at 127.0.0.1:5432 (see README)");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        TempDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&format!("{SERVER}/test"), postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn passport(uvci: &str, hc1: &str) -> SignedPassport {
    SignedPassport {
        uvci: uvci.into(),
        id_number: "001090000123".into(),
        record_ids: vec!["R1".into()],
        hc1: hc1.into(),
        kid: "AAAAAAAAAAA=".into(),
        claim_code: "ABCDEFGHJK".into(),
        id_hash: vec![1; 32],
        claim_hash: vec![2; 32],
    }
}

/// The behaviour both backends must share.
fn store_contract(mut s: Box<dyn Store>) {
    let a = passport("URN:UVCI:01:VN:01001/A#1", "HC1:A");
    let b = passport("URN:UVCI:01:VN:01001/B#2", "HC1:B");
    s.insert_passports("batch1", "01001", 1_800_000_000, &[&a, &b]).unwrap();
    // A UVCI already present is left as it is.
    let a2 = passport("URN:UVCI:01:VN:01001/A#1", "HC1:CHANGED");
    let kept = s.insert_passports("batch2", "01001", 1_800_000_001, &[&a2]).unwrap();
    assert_eq!(kept.get("URN:UVCI:01:VN:01001/A#1").map(String::as_str), Some("HC1:A"), "the stored one is returned");
    assert_eq!(s.passport_count().unwrap(), 2);
    let got = s.hc1_by_uvci(&["URN:UVCI:01:VN:01001/A#1", "URN:UVCI:01:VN:01001/nope"]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got["URN:UVCI:01:VN:01001/A#1"], "HC1:A");

    let mut batch = BatchRecord {
        batch_id: "b1".into(),
        facility_code: "01001".into(),
        status: "running".into(),
        persons_total: 10,
        persons_done: 4,
        summary: None,
    };
    s.save_batch(&batch, 1).unwrap();
    batch.status = "done".into();
    batch.persons_done = 10;
    batch.summary = Some("{}".into());
    s.save_batch(&batch, 2).unwrap();
    assert_eq!(s.batch("b1").unwrap(), Some(batch));
    assert_eq!(s.batch("b2").unwrap(), None);
}

#[test]
fn postgres_store_keeps_the_contract() {
    let db = TempDatabase::new();
    store_contract(store::open(&db.url()).unwrap());
}

#[test]
fn sqlite_store_keeps_the_same_contract() {
    let dir = tempdir();
    store_contract(store::open(&format!("sqlite://{}", dir.path().join("v.db").display())).unwrap());
}

#[test]
fn two_stores_on_one_postgres_database_see_each_others_passports() {
    let db = TempDatabase::new();
    let mut one = store::open(&db.url()).unwrap();
    let mut two = store::open(&db.url()).unwrap();
    one.insert_passports("b", "01001", 1, &[&passport("URN:UVCI:01:VN:01001/X#1", "HC1:X")]).unwrap();
    assert_eq!(two.hc1_by_uvci(&["URN:UVCI:01:VN:01001/X#1"]).unwrap().len(), 1);
}

#[test]
fn sign_into_postgres_is_idempotent() {
    let db = TempDatabase::new();
    let dir = tempdir();
    let data = crate::sign_batch::small_batch(dir.path());
    let secret = dir.path().join("secret");
    let sign = |out: &str| crate::sign_batch::sign_data(&data, &dir.path().join(out), &db.url(), &secret).succeeds();
    sign("first");
    sign("second");
    let first = std::fs::read(dir.path().join("first/passports.jsonl")).unwrap();
    let second = std::fs::read(dir.path().join("second/passports.jsonl")).unwrap();
    assert_eq!(first, second);
    let mut s = store::open(&db.url()).unwrap();
    let lines = String::from_utf8(first).unwrap().lines().count() as u64;
    assert_eq!(s.passport_count().unwrap(), lines);
}
