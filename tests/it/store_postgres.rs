//! The store contract on both backends, and `vaxpass sign --db postgres://…` against the real
//! server at 127.0.0.1:5432 (user postgres, trust auth). Each test creates its own database
//! and drops it afterwards, so runs never see each other's rows.

use vaxpass::gate::SignedPassport;
use vaxpass::ledger::{CoveredDose, LedgerChange, LedgerDose, PassportStatus, RunChanges};
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
        person_hash: vec![],
        holder_hash: vec![],
        content_hash: vec![],
        covered: vec![],
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
        error: None,
    };
    s.save_batch(&batch, 1).unwrap();
    batch.status = "done".into();
    batch.persons_done = 10;
    batch.summary = Some("{}".into());
    s.save_batch(&batch, 2).unwrap();
    assert_eq!(s.batch("b1").unwrap(), Some(batch));
    assert_eq!(s.batch("b2").unwrap(), None);
    lease_contract(s.as_mut());
    ledger_contract(s.as_mut());
}

/// Batch leases (issue 11): taken, renewed by their owner only, expired into `failed`, and
/// a failed leased batch is not brought back by its late owner's saves.
fn lease_contract(s: &mut dyn Store) {
    let mut batch = BatchRecord {
        batch_id: "leased".into(),
        facility_code: "01001".into(),
        status: "running".into(),
        persons_total: 0,
        persons_done: 0,
        summary: None,
        error: None,
    };
    s.save_batch(&batch, 100).unwrap();
    assert!(s.renew_lease("leased", "A", 130).unwrap(), "a new batch's lease is taken");
    assert!(s.renew_lease("leased", "A", 140).unwrap(), "and renewed by its owner");
    assert!(!s.renew_lease("leased", "B", 150).unwrap(), "but not by another instance");
    assert_eq!(s.expire_leases(140, "gone").unwrap(), Vec::<String>::new(), "not expired at its end");
    assert_eq!(s.expire_leases(141, "gone").unwrap(), ["leased"]);
    let failed = s.batch("leased").unwrap().unwrap();
    assert_eq!((failed.status.as_str(), failed.error.as_deref()), ("failed", Some("gone")));
    assert!(!s.renew_lease("leased", "A", 200).unwrap(), "a failed batch's lease is not renewed");
    // The owner, unaware, saves progress and then "done": the batch stays failed.
    batch.persons_done = 5;
    s.save_batch(&batch, 150).unwrap();
    batch.status = "done".into();
    s.save_batch(&batch, 151).unwrap();
    assert_eq!(s.batch("leased").unwrap().unwrap().status, "failed");
    assert!(s.expire_leases(1_000, "gone").unwrap().is_empty(), "a batch without a lease never expires");
}

fn dose(id: &str, person: u8, date: &str) -> LedgerDose {
    LedgerDose {
        record_id: id.into(),
        person: vec![person; 16],
        facility_code: "01001".into(),
        dose: vaxpass::ledger::parse_dose(date, "EU/1/20/1528").unwrap(),
    }
}

/// The ledger operations, the same on both backends.
fn ledger_contract(s: &mut dyn Store) {
    let (r1, r2) = (dose("R1", 1, "2021-08-01"), dose("R2", 1, "2021-10-01"));
    let mut p = passport("URN:UVCI:01:VN:01001/L#1", "HC1:L");
    p.person_hash = vec![1; 16];
    p.holder_hash = vec![9; 16];
    p.content_hash = vec![8; 16];
    p.covered = vec![CoveredDose::of(&r1), CoveredDose::of(&r2)];
    let sealed = [7u8; 40];
    let change = LedgerChange {
        run_id: "run1",
        facility_code: "01001",
        kid: "AAAAAAAAAAA=",
        at: 10,
        doses: vec![&r1, &r2],
        persons: vec![(&[1u8; 16], &sealed)],
        passports: vec![&p],
        ..LedgerChange::default()
    };
    s.apply(&change).unwrap();
    let mut got = s.ledger_by_record(&["R1", "R2", "R9"]).unwrap();
    got.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    assert_eq!(got, [r1.clone(), r2.clone()]);
    assert_eq!(s.ledger_by_person(&[&[1u8; 16]]).unwrap().len(), 2);
    assert_eq!(s.sealed_persons(&[&[1u8; 16]]).unwrap()[&vec![1u8; 16]], sealed);
    let stored = s.passports_of_persons(&[&[1u8; 16]]).unwrap();
    assert_eq!(stored.len(), 1);
    let covered: Vec<&str> = stored[0].doses.iter().map(|d| d.record_id.as_str()).collect();
    assert_eq!((stored[0].status, covered), (PassportStatus::Current, vec!["R1", "R2"]));
    assert_eq!(s.persons_of_run("run1").unwrap(), [vec![1u8; 16]]);

    // A booster: a new passport becomes current, the first is superseded (schema 5: by the
    // person's pointer, without writing the earlier passport) and counted for the run.
    let r3 = dose("R3", 1, "2022-06-01");
    let mut newer = passport("URN:UVCI:01:VN:01001/L#2", "HC1:L2");
    newer.person_hash = vec![1; 16];
    newer.holder_hash = vec![9; 16];
    newer.covered = vec![CoveredDose::of(&r1), CoveredDose::of(&r2), CoveredDose::of(&r3)];
    let change = LedgerChange {
        run_id: "run1b",
        facility_code: "01001",
        kid: "AAAAAAAAAAA=",
        at: 10,
        passports: vec![&newer],
        fates: vec![("URN:UVCI:01:VN:01001/L#1", PassportStatus::Superseded)],
        currents: vec![(&[1u8; 16], "URN:UVCI:01:VN:01001/L#2")],
        ..LedgerChange::default()
    };
    s.apply(&change).unwrap();
    let statuses: Vec<(String, PassportStatus)> =
        s.passports_of_persons(&[&[1u8; 16]]).unwrap().into_iter().map(|r| (r.uvci, r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("URN:UVCI:01:VN:01001/L#1".to_owned(), PassportStatus::Superseded),
            ("URN:UVCI:01:VN:01001/L#2".to_owned(), PassportStatus::Current)
        ]
    );
    assert_eq!(s.run_changes("run1b").unwrap(), RunChanges { revoked: vec![], superseded: 1 });
    assert_eq!(s.passport_by_uvci("URN:UVCI:01:VN:01001/L#1").unwrap().unwrap().1, PassportStatus::Superseded);
    let listed: Vec<PassportStatus> = s.passports_by_id_hash(&[1; 32]).unwrap().into_iter().map(|p| p.status).collect();
    assert!(listed.contains(&PassportStatus::Superseded) && listed.contains(&PassportStatus::Current), "{listed:?}");
    // A current passport for a person the store does not hold is refused, and nothing of
    // its chunk is kept.
    let change = LedgerChange {
        run_id: "run1c",
        facility_code: "01001",
        kid: "AAAAAAAAAAA=",
        at: 10,
        fates: vec![("URN:UVCI:01:VN:01001/L#2", PassportStatus::Revoked)],
        currents: vec![(&[5u8; 16], "URN:UVCI:01:VN:01001/L#2")],
        ..LedgerChange::default()
    };
    assert!(s.apply(&change).is_err());
    assert_eq!(s.passport_by_uvci("URN:UVCI:01:VN:01001/L#2").unwrap().unwrap().1, PassportStatus::Current);

    // A correction moves R2 to person 2; the passport is revoked, R1 retracted by another run.
    let moved = dose("R2", 2, "2021-10-01");
    let change = LedgerChange {
        run_id: "run2",
        facility_code: "01001",
        kid: "AAAAAAAAAAA=",
        at: 11,
        doses: vec![&moved],
        retracted: vec![(&r1, "never given")],
        fates: vec![("URN:UVCI:01:VN:01001/L#1", PassportStatus::Revoked)],
        ..LedgerChange::default()
    };
    s.apply(&change).unwrap();
    assert_eq!(s.ledger_by_record(&["R1", "R2"]).unwrap(), [moved]);
    assert!(s.ledger_by_person(&[&[1u8; 16]]).unwrap().is_empty());
    assert_eq!(s.retracted_by_run("run2").unwrap(), ["R1"]);
    let changes = s.run_changes("run2").unwrap();
    assert_eq!((changes.revoked.as_slice(), changes.superseded), (&["URN:UVCI:01:VN:01001/L#1".to_owned()][..], 0));
    assert_eq!(s.passport_by_uvci("URN:UVCI:01:VN:01001/L#1").unwrap().unwrap().1, PassportStatus::Revoked);
    let revoked = vaxpass::pki::revocation_hex("URN:UVCI:01:VN:01001/L#1");
    assert!(s.revocations().unwrap().contains(&vaxpass::store::Revocation::Passport(revoked)));
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

/// The schema every database had before versions were recorded (today's `0001_initial.sql`).
const V1_SCHEMA: &str = include_str!("../../src/store/migrations/0001_initial.sql");
const V1_PASSPORT: &str = "INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at) \
     VALUES ('URN:UVCI:01:VN:01001/OLD#1', 'i', 'c', '01001', 'k', 'HC1:OLD', 'b', 1)";

fn opens_a_v1_database_and_keeps_its_passports(mut s: Box<dyn Store>, token: &[u8]) {
    assert_eq!(s.passport_count().unwrap(), 1);
    let (hc1, status) = s.passport_by_uvci("URN:UVCI:01:VN:01001/OLD#1").unwrap().unwrap();
    assert_eq!((hc1.as_str(), status), ("HC1:OLD", PassportStatus::Current));
    // The ledger is there and works.
    assert!(s.ledger_by_record(&["R1"]).unwrap().is_empty());
    s.add_facility_token(token, "01001", 1, Some(100)).unwrap();
    assert_eq!(s.facility_of_token(token, 99).unwrap().as_deref(), Some("01001"));
    assert_eq!(s.facility_of_token(token, 100).unwrap(), None, "expired");
}

#[test]
fn sqlite_migrates_a_database_made_before_schema_versions() {
    let dir = tempdir();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute_batch(V1_PASSPORT).unwrap();
    }
    let url = format!("sqlite://{}", path.display());
    opens_a_v1_database_and_keeps_its_passports(store::open(&url).unwrap(), b"one");
    // Opening again applies nothing twice.
    opens_a_v1_database_and_keeps_its_passports(store::open(&url).unwrap(), b"two");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, i64::from(store::SCHEMA_VERSION));
    // A database from a newer vaxpass is refused, not half-read.
    conn.execute("INSERT INTO schema_version (version) VALUES (99)", []).unwrap();
    drop(conn);
    let err = store::open(&url).err().expect("refused").to_string();
    assert!(err.contains("schema version 99") && err.contains("newer"), "{err}");
}

#[test]
fn postgres_migrates_a_database_made_before_schema_versions() {
    let db = TempDatabase::new();
    {
        let mut c = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
        c.batch_execute(V1_SCHEMA).unwrap();
        c.batch_execute(V1_PASSPORT).unwrap();
    }
    opens_a_v1_database_and_keeps_its_passports(store::open(&db.url()).unwrap(), b"one");
    opens_a_v1_database_and_keeps_its_passports(store::open(&db.url()).unwrap(), b"two");
    let mut c = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    c.batch_execute("INSERT INTO schema_version (version) VALUES (99)").unwrap();
    let err = store::open(&db.url()).err().expect("refused").to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn rate_limit_counters_are_shared_by_connections_and_windowed() {
    let db = TempDatabase::new();
    drop(store::open(&db.url()).unwrap());
    let (mut a, mut b) =
        (store::SharedCounters::connect(&db.url()).unwrap(), store::SharedCounters::connect(&db.url()).unwrap());
    let (k1, k2) = (vec![1u8; 32], vec![2u8; 32]);
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(a.counted(&[k1.clone(), k2.clone()]).unwrap(), [0, 0]);
    assert_eq!(a.count(std::slice::from_ref(&k1), hour).unwrap(), [1]);
    assert_eq!(b.count(&[k1.clone(), k2.clone()], hour).unwrap(), [2, 1], "one counter for both connections");
    assert_eq!(a.counted(&[k2.clone(), k1.clone()]).unwrap(), [1, 2], "in the order asked");
    // A window that ended starts again at 1 and no longer counts.
    let short = std::time::Duration::from_millis(1);
    assert_eq!(a.count(&[vec![3u8; 32]], short).unwrap(), [1]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while a.counted(&[vec![3u8; 32]]).unwrap() != [0] {
        assert!(std::time::Instant::now() < deadline, "a 1 ms window never ended");
    }
    assert_eq!(a.count(&[vec![3u8; 32]], hour).unwrap(), [1], "a new window");
    assert_eq!(a.sweep().unwrap(), 0, "only live counters left");
}

/// A schema-4 database as the previous vaxpass left it: one person with a passport stored
/// 'superseded' and the one after it stored 'current'.
fn v4_database(exec: &mut dyn FnMut(&str)) {
    exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
    for sql in [
        include_str!("../../src/store/migrations/0001_initial.sql"),
        include_str!("../../src/store/migrations/0002_ledger.sql"),
        include_str!("../../src/store/migrations/0003_corrections.sql"),
        include_str!("../../src/store/migrations/0004_instances.sql"),
    ] {
        exec(sql);
    }
    exec(
        "INSERT INTO schema_version (version) VALUES (1), (2), (3), (4);
         INSERT INTO persons (person_hash, sealed) VALUES ('\\x0101', '\\x07');
         INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at, \
             person_hash, status, changed_by) VALUES \
             ('U1', '\\x01', '\\x02', '01001', 'k', 'HC1:1', 'b1', 1, '\\x0101', 'superseded', 'b2'), \
             ('U2', '\\x01', '\\x02', '01001', 'k', 'HC1:2', 'b2', 2, '\\x0101', 'current', NULL);",
    );
}

/// After migration 5 the stored statuses read as before, and the next passport signed for
/// the person supersedes their stored-current one through the person's pointer.
fn reads_a_v4_database_as_before(s: &mut dyn Store) {
    let statuses = |s: &mut dyn Store| -> Vec<(String, PassportStatus)> {
        s.passports_of_persons(&[&[1u8, 1]]).unwrap().into_iter().map(|r| (r.uvci, r.status)).collect()
    };
    assert_eq!(
        statuses(s),
        [("U1".to_owned(), PassportStatus::Superseded), ("U2".to_owned(), PassportStatus::Current)]
    );
    assert_eq!(s.run_changes("b2").unwrap(), RunChanges { revoked: vec![], superseded: 1 });
    let mut p = passport("U3", "HC1:3");
    p.person_hash = vec![1, 1];
    let change = LedgerChange {
        run_id: "b3",
        facility_code: "01001",
        kid: "k",
        at: 3,
        passports: vec![&p],
        fates: vec![("U2", PassportStatus::Superseded)],
        currents: vec![(&[1u8, 1], "U3")],
        ..LedgerChange::default()
    };
    s.apply(&change).unwrap();
    let superseded = PassportStatus::Superseded;
    assert_eq!(
        statuses(s),
        [("U1".to_owned(), superseded), ("U2".to_owned(), superseded), ("U3".to_owned(), PassportStatus::Current)]
    );
    assert_eq!(s.run_changes("b3").unwrap(), RunChanges { revoked: vec![], superseded: 1 });
}

#[test]
fn sqlite_migrates_a_schema_4_database_to_current_pointers() {
    let dir = tempdir();
    let path = dir.path().join("v4.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // SQLite reads '\x..' as text; the hashes need only be equal blobs or texts here.
        v4_database(&mut |sql| conn.execute_batch(&sql.replace("'\\x0101'", "x'0101'")).unwrap());
    }
    let mut s = store::open(&format!("sqlite://{}", path.display())).unwrap();
    reads_a_v4_database_as_before(s.as_mut());
}

#[test]
fn postgres_migrates_a_schema_4_database_to_current_pointers() {
    let db = TempDatabase::new();
    {
        let mut c = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
        v4_database(&mut |sql| c.batch_execute(sql).unwrap());
    }
    let mut s = store::open(&db.url()).unwrap();
    reads_a_v4_database_as_before(s.as_mut());
}
