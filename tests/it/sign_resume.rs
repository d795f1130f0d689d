//! Resumable and idempotent signing: a run killed with SIGKILL at several points and started
//! again ends with the same passports and rejections as a run that was never interrupted; a
//! finished batch run again changes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::tempdir;

struct Batch {
    data: PathBuf,
    secret: PathBuf,
}

fn sign_command(b: &Batch, out: &Path, db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vaxpass"));
    c.arg("sign");
    c.args(crate::sign_batch::facility_args());
    c.arg("--input").arg(b.data.join("doses.csv"));
    c.arg("--registry").arg(b.data.join("registry.csv"));
    c.arg("--out").arg(out);
    c.arg("--db").arg(format!("sqlite://{}", db.display()));
    c.arg("--secret").arg(&b.secret);
    c.arg("--json");
    // Several transactions per run, so that kills land between them.
    c.args(["--commit-every", "2000"]);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn run_to_end(b: &Batch, out: &Path, db: &Path) {
    let status = sign_command(b, out, db).status().unwrap();
    assert!(status.success());
}

/// Passports without their signatures (ES256 is randomised), and rejections, as sets.
fn outcome(out: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let passports = std::fs::read_to_string(out.join("passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut p: serde_json::Value = serde_json::from_str(l).unwrap();
            p.as_object_mut().unwrap().remove("hc1");
            p.to_string()
        })
        .collect();
    let rejected = std::fs::read_to_string(out.join("rejected.csv")).unwrap().lines().map(String::from).collect();
    (passports, rejected)
}

fn db_count(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

#[test]
fn killed_runs_resume_to_the_same_passports() {
    let dir = tempdir();
    let b = Batch { data: crate::sign_truth::generate(dir.path(), 20_000, 5), secret: dir.path().join("secret") };

    // The uninterrupted reference, timed to place the kills.
    let reference = dir.path().join("reference");
    let started = Instant::now();
    run_to_end(&b, &reference, &dir.path().join("reference.db"));
    let full = started.elapsed();
    let expected = outcome(&reference);

    let out = dir.path().join("out");
    let db = dir.path().join("v.db");
    let mut partial_states = Vec::new();
    for fraction in [0.15, 0.45, 0.65, 0.85] {
        let mut child = sign_command(&b, &out, &db).spawn().unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        // SIGKILL: no destructor, no flush, no chance to tidy up.
        let _ = child.kill();
        let _ = child.wait();
        if db.exists() {
            partial_states.push(db_count(&db, "passports"));
        }
    }
    run_to_end(&b, &out, &db);

    assert_eq!(outcome(&out), expected, "same passports (UVCI, person, rows, claim code) and rejections");
    let lines = std::fs::read_to_string(out.join("passports.jsonl")).unwrap().lines().count() as i64;
    assert_eq!(db_count(&db, "passports"), lines, "no duplicate and no lost passport in the database");
    assert_eq!(db_count(&db, "audit_log"), lines, "each passport signed, and audited, exactly once");
    // The kills must have hit a run in the middle of signing at least once to prove anything.
    assert!(
        partial_states.iter().any(|&n| n > 0 && n < lines),
        "no kill landed mid-signing: {partial_states:?} of {lines}"
    );

    // A finished batch run again changes nothing, byte for byte.
    let before_passports = std::fs::read(out.join("passports.jsonl")).unwrap();
    let before_rejected = std::fs::read(out.join("rejected.csv")).unwrap();
    let t = Instant::now();
    run_to_end(&b, &out, &db);
    assert!(t.elapsed() < full * 3);
    assert_eq!(std::fs::read(out.join("passports.jsonl")).unwrap(), before_passports);
    assert_eq!(std::fs::read(out.join("rejected.csv")).unwrap(), before_rejected);
    assert_eq!(db_count(&db, "passports"), lines);
}
