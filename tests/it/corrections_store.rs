//! The correction requests and report counters of the store (SPEC §8.5–8.6) behave alike on
//! SQLite and on the real PostgreSQL server, and `vaxpass report` prints what they hold.

use vaxpass::corrections::{self, CountRow, Filing, Queue, QueueStatus, Status};
use vaxpass::gate::DerivationKey;
use vaxpass::store::{self, Store};

use crate::store_postgres::TempDatabase;
use crate::util::{Vaxpass, tempdir};

const HOUR: i64 = 3600;

fn filed(key: &DerivationKey, facility: &str, at: i64) -> corrections::Request {
    let valid = corrections::validate(Filing {
        id_number: "001090000123".into(),
        dob: "1990-05-02".into(),
        facility_code: facility.into(),
        kind: "wrong_data".into(),
        message: "the date is wrong".into(),
        contact: None,
    })
    .unwrap();
    corrections::file(key, &valid, at).unwrap().0
}

fn row(facility: &str, counter: &str, n: u64) -> CountRow {
    CountRow { facility_code: facility.into(), counter: counter.into(), n }
}

fn sorted(mut rows: Vec<CountRow>) -> Vec<(String, String, u64)> {
    rows.sort_by(|a, b| (&a.facility_code, &a.counter).cmp(&(&b.facility_code, &b.counter)));
    rows.into_iter().map(|r| (r.facility_code, r.counter, r.n)).collect()
}

fn contract(s: &mut dyn Store) {
    let key = DerivationKey::new(&[3; 32]);
    let a = filed(&key, "01001", 0);
    let b = filed(&key, "01100", HOUR);
    let c = filed(&key, "79001", 2 * HOUR);
    for r in [&a, &b, &c] {
        s.add_correction(r).unwrap();
    }
    assert_eq!(s.correction(&a.request_id).unwrap().as_ref(), Some(&a));
    assert!(s.correction("NOSUCHREQUEST").unwrap().is_none());

    let queue = |facility: Option<&str>, province: Option<&str>, status, now| Queue {
        facility: facility.map(str::to_owned),
        province: province.map(str::to_owned),
        status,
        now,
        limit: 100,
    };
    let ids = |v: Vec<corrections::Request>| v.into_iter().map(|r| r.request_id).collect::<Vec<String>>();
    // Oldest due first; by facility and by province.
    assert_eq!(
        ids(s.corrections(&queue(None, None, QueueStatus::Open, 0)).unwrap()),
        [a.request_id.clone(), b.request_id.clone(), c.request_id.clone()]
    );
    assert_eq!(
        ids(s.corrections(&queue(Some("01100"), None, QueueStatus::Open, 0)).unwrap()),
        vec![b.request_id.clone()]
    );
    assert_eq!(ids(s.corrections(&queue(None, Some("01"), QueueStatus::Open, 0)).unwrap()).len(), 2);
    assert_eq!(ids(s.corrections(&queue(None, Some("79"), QueueStatus::Open, 0)).unwrap()), vec![c.request_id.clone()]);
    // Overdue once 48 hours have passed, one by one.
    assert_eq!(s.corrections(&queue(None, None, QueueStatus::Overdue, 48 * HOUR)).unwrap().len(), 0);
    assert_eq!(
        ids(s.corrections(&queue(None, None, QueueStatus::Overdue, 49 * HOUR + 1)).unwrap()),
        [a.request_id.clone(), b.request_id.clone()]
    );
    // Closed once.
    assert!(s.close_correction(&a.request_id, Status::Rejected, 50 * HOUR, "01001", b"sealed").unwrap());
    assert!(!s.close_correction(&a.request_id, Status::Resolved, 51 * HOUR, "ministry", b"x").unwrap());
    let closed = s.correction(&a.request_id).unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.closed_at, closed.closed_by.as_deref()),
        (Status::Rejected, Some(50 * HOUR), Some("01001"))
    );
    assert_eq!(closed.note_sealed.as_deref(), Some(&b"sealed"[..]));
    assert_eq!(ids(s.corrections(&queue(None, None, QueueStatus::Closed, 0)).unwrap()), vec![a.request_id.clone()]);
    let timings = s.request_timings().unwrap();
    assert_eq!(timings.len(), 3);
    assert!(timings.iter().any(|t| t.closed_at == Some(50 * HOUR) && t.status == Status::Rejected));

    // Run counters: a run recorded again replaces its rows; totals follow.
    s.record_run_counts("run-1", &[row("01001", "signed_rows", 10), row("79001", "revoked", 2)]).unwrap();
    s.record_run_counts("run-2", &[row("01001", "signed_rows", 5)]).unwrap();
    assert_eq!(
        sorted(s.facility_counts().unwrap()),
        [("01001".into(), "signed_rows".into(), 15), ("79001".into(), "revoked".into(), 2)]
    );
    s.record_run_counts("run-1", &[row("01001", "signed_rows", 12), row("01001", "rejected:BAD_ID", 1)]).unwrap();
    assert_eq!(
        sorted(s.facility_counts().unwrap()),
        [("01001".into(), "rejected:BAD_ID".into(), 1), ("01001".into(), "signed_rows".into(), 17)]
    );
}

#[test]
fn corrections_and_counters_on_sqlite() {
    let dir = tempdir();
    let mut s = store::open(&format!("sqlite://{}", dir.path().join("v.db").display())).unwrap();
    contract(s.as_mut());
}

#[test]
fn corrections_and_counters_on_postgres() {
    let db = TempDatabase::new();
    let mut s = store::open(&db.url()).unwrap();
    contract(s.as_mut());
}

#[test]
fn report_prints_the_counters_by_province_and_facility() {
    let dir = tempdir();
    let url = format!("sqlite://{}", dir.path().join("v.db").display());
    {
        let mut s = store::open(&url).unwrap();
        let key = DerivationKey::new(&[3; 32]);
        s.record_run_counts("run-1", &[row("01001", "signed_rows", 90), row("01001", "rejected:NAME_MISMATCH", 10)])
            .unwrap();
        s.add_correction(&filed(&key, "01001", 0)).unwrap();
    }
    // The request, filed at 0, is overdue a second after 48 hours.
    let out =
        Vaxpass::new(["report", "--db", &url, "--json", "--by", "facility", "--at", "1970-01-03T00:00:01Z"]).succeeds();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let g = &v["groups"][0];
    assert_eq!(
        (g["group"].as_str(), g["rows_signed"].as_u64(), g["rows_rejected"].as_u64()),
        (Some("01001"), Some(90), Some(10))
    );
    assert_eq!((g["requests_overdue"].as_u64(), g["closed_within_48h_share"].as_f64()), (Some(1), Some(0.0)));
    let table = Vaxpass::new(["report", "--db", &url]).succeeds();
    assert!(table.stdout.contains("Hà Nội") && table.stdout.contains("NAME_MISMATCH"), "{}", table.stdout);
    // Nothing personal in either.
    assert!(!out.stdout.contains("001090000123") && !table.stdout.contains("001090000123"));
}

#[test]
fn gen_writes_correction_requests_with_their_truth() {
    let dir = tempdir();
    let out = Vaxpass::new(["gen", "--persons", "3000", "--seed", "3", "--corrections", "--json", "--out"])
        .arg(dir.path())
        .succeeds();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let requests = report["corrections"]["requests"].as_u64().unwrap();
    // About 2 % of 3,000 persons.
    assert!((30..=90).contains(&requests), "{requests}");
    let lines = std::fs::read_to_string(dir.path().join("corrections.jsonl")).unwrap();
    assert_eq!(lines.lines().count() as u64, requests);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("corrections_truth.json")).unwrap()).unwrap();
    assert_eq!(truth["total"]["requests"].as_u64(), Some(requests));
    // Every filing is one the service accepts.
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let filing: Filing = serde_json::from_value(v["filing"].clone()).unwrap();
        corrections::validate(filing).unwrap();
    }
    // The same seed gives the same requests.
    let again = tempdir();
    Vaxpass::new(["gen", "--persons", "3000", "--seed", "3", "--corrections", "--out"]).arg(again.path()).succeeds();
    assert_eq!(std::fs::read_to_string(again.path().join("corrections.jsonl")).unwrap(), lines);
}

#[test]
fn a_batch_signed_again_counts_its_passports_once() {
    let dir = tempdir();
    let data = dir.path().join("data");
    Vaxpass::new(["gen", "--persons", "300", "--seed", "4", "--out"]).arg(&data).succeeds();
    let url = format!("sqlite://{}", dir.path().join("v.db").display());
    let sign = |out: &str| {
        let v: serde_json::Value = serde_json::from_str(
            &Vaxpass::new([
                "sign",
                "--key",
                "keys-example/facility-01001/key.pem",
                "--cert",
                "keys-example/facility-01001/cert.pem",
            ])
            .args(["--at", "2027-01-10T00:00:00Z", "--json", "--db", &url, "--input"])
            .arg(data.join("doses.csv"))
            .arg("--registry")
            .arg(data.join("registry.csv"))
            .arg("--secret")
            .arg(dir.path().join("secret"))
            .arg("--out")
            .arg(dir.path().join(out))
            .succeeds()
            .stdout,
        )
        .unwrap();
        v
    };
    let report = || -> serde_json::Value {
        let out = Vaxpass::new(["report", "--db", &url, "--json", "--at", "2027-01-10T00:00:00Z"]).succeeds();
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["total"].clone()
    };
    let first = sign("first");
    let once = report();
    assert!(first["passports"].as_u64().unwrap() > 100, "{first}");
    assert_eq!(once["passports"], first["passports"]);
    assert_eq!(once["rows_signed"], first["signed_rows"]);
    assert_eq!(once["rows_rejected"], first["rejected_rows"]);
    // The same batch again reuses every passport: the figures stay as they were.
    sign("again");
    assert_eq!(report(), once);
}
