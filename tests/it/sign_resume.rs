//! Resumable and idempotent signing: a run killed with SIGKILL at several points of its
//! progress and started again ends with the same passports, rejections and revocations as a
//! run that was never interrupted; a finished batch run again changes nothing. Kills are
//! triggered by the run's own progress lines, never by timing.

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::tempdir;

struct Batch {
    doses: PathBuf,
    registry: PathBuf,
    secret: PathBuf,
}

fn sign_command(b: &Batch, out: &Path, db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vaxpass"));
    c.arg("sign");
    c.args(crate::sign_batch::facility_args());
    c.arg("--input").arg(&b.doses);
    c.arg("--registry").arg(&b.registry);
    c.arg("--out").arg(out);
    c.arg("--db").arg(format!("sqlite://{}", db.display()));
    c.arg("--secret").arg(&b.secret);
    c.args(["--json", "--at", "2027-01-10T00:00:00Z", "--progress-lines"]);
    // Several transactions per run, so that kills land between them.
    c.args(["--commit-every", "2000"]);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn run_to_end(b: &Batch, out: &Path, db: &Path) {
    let status = sign_command(b, out, db).status().unwrap();
    assert!(status.success());
}

/// Starts a run and kills it (SIGKILL: no destructor, no flush) as soon as it reports its
/// `chunks`-th committed chunk, so the kill lands while the next one is being signed.
/// Returns whether it was still running then.
fn kill_after(b: &Batch, out: &Path, db: &Path, chunks: usize) -> bool {
    let mut child = sign_command(b, out, db).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = 0;
    for line in stderr.lines() {
        if line.unwrap().starts_with("progress ") {
            seen += 1;
            if seen == chunks {
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    !status.success()
}

/// Passports without their signatures (ES256 is randomised), rejections and revocations, as sets.
fn outcome(out: &Path) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let passports = std::fs::read_to_string(out.join("passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut p: serde_json::Value = serde_json::from_str(l).unwrap();
            p.as_object_mut().unwrap().remove("hc1");
            p.to_string()
        })
        .collect();
    let lines = |name: &str| std::fs::read_to_string(out.join(name)).unwrap().lines().map(String::from).collect();
    (passports, lines("rejected.csv"), lines("revoked.csv"))
}

fn db_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn count(db: &Path, table: &str) -> i64 {
    db_count(db, &format!("SELECT COUNT(*) FROM {table}"))
}

/// Kills `b` after each number of chunks in `kills`, then runs it to the end; returns how many
/// of the kills landed mid-run.
fn kill_and_resume(b: &Batch, out: &Path, db: &Path, kills: &[usize]) -> usize {
    let landed = kills.iter().filter(|&&k| kill_after(b, out, db, k)).count();
    run_to_end(b, out, db);
    landed
}

#[test]
fn killed_runs_resume_to_the_same_passports() {
    let dir = tempdir();
    let data = crate::sign_truth::generate(dir.path(), 20_000, 5);
    let b =
        Batch { doses: data.join("doses.csv"), registry: data.join("registry.csv"), secret: dir.path().join("secret") };

    let reference = dir.path().join("reference");
    run_to_end(&b, &reference, &dir.path().join("reference.db"));
    let expected = outcome(&reference);

    let out = dir.path().join("out");
    let db = dir.path().join("v.db");
    let landed = kill_and_resume(&b, &out, &db, &[1, 3, 5]);
    assert!(landed >= 2, "the kills must land mid-signing to prove anything ({landed} did)");

    assert_eq!(outcome(&out), expected, "same passports (UVCI, person, rows, claim code) and rejections");
    let lines = std::fs::read_to_string(out.join("passports.jsonl")).unwrap().lines().count() as i64;
    assert_eq!(count(&db, "passports"), lines, "no duplicate and no lost passport in the database");
    assert_eq!(count(&db, "audit_log"), lines, "each passport signed, and audited, exactly once");

    // A finished batch run again changes nothing, byte for byte.
    let before_passports = std::fs::read(out.join("passports.jsonl")).unwrap();
    let before_rejected = std::fs::read(out.join("rejected.csv")).unwrap();
    run_to_end(&b, &out, &db);
    assert_eq!(std::fs::read(out.join("passports.jsonl")).unwrap(), before_passports);
    assert_eq!(std::fs::read(out.join("rejected.csv")).unwrap(), before_rejected);
    assert_eq!(count(&db, "passports"), lines);
}

/// A follow-up batch of corrections and boosters for the signed rows of `data`: every third
/// signed row's date moves one day (a correction: the passport carrying it is revoked, or the
/// row falls foul of the 14-day rule and changes nothing), every fifth person gets a booster.
fn corrections(data: &Path, signed: &Path, out: &Path) {
    let signed_ids: BTreeSet<String> = std::fs::read_to_string(signed.join("passports.jsonl"))
        .unwrap()
        .lines()
        .flat_map(|l| {
            let p: serde_json::Value = serde_json::from_str(l).unwrap();
            p["record_ids"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect::<Vec<_>>()
        })
        .collect();
    let mut r = csv::Reader::from_path(data.join("doses.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let (id, date, vaccine) =
        ["record_id", "vaccination_date", "vaccine"].map(|h| headers.iter().position(|x| x == h).unwrap()).into();
    let mut w = csv::Writer::from_path(out).unwrap();
    w.write_record(&headers).unwrap();
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        if !signed_ids.contains(&rec[id]) {
            continue;
        }
        n += 1;
        let mut row: Vec<String> = rec.iter().map(String::from).collect();
        if n % 3 == 0 {
            row[date] = "2021-12-24".into();
            w.write_record(&row).unwrap();
        }
        if n % 5 == 0 {
            row[id] = format!("{}-B", &rec[id]);
            row[date] = "2022-06-01".into();
            row[vaccine] = "Pfizer".into();
            w.write_record(&row).unwrap();
        }
    }
    w.flush().unwrap();
}

#[test]
fn killed_correction_runs_revoke_and_reissue_exactly_once() {
    let dir = tempdir();
    let data = crate::sign_truth::generate(dir.path(), 12_000, 9);
    let secret = dir.path().join("secret");
    let first = Batch { doses: data.join("doses.csv"), registry: data.join("registry.csv"), secret: secret.clone() };
    let (reference_db, db) = (dir.path().join("reference.db"), dir.path().join("v.db"));
    run_to_end(&first, &dir.path().join("week1"), &reference_db);
    std::fs::copy(&reference_db, &db).unwrap();
    let follow_up = dir.path().join("week2.csv");
    corrections(&data, &dir.path().join("week1"), &follow_up);
    let second = Batch { doses: follow_up, registry: data.join("registry.csv"), secret };

    let reference = dir.path().join("reference");
    run_to_end(&second, &reference, &reference_db);
    let expected = outcome(&reference);
    assert!(expected.2.len() > 100, "the corrections revoked passports: {}", expected.2.len());

    let out = dir.path().join("out");
    let landed = kill_and_resume(&second, &out, &db, &[1, 2, 3]);
    assert!(landed >= 2, "the kills must land mid-run ({landed} did)");
    assert_eq!(outcome(&out), expected, "same passports, rejections and revocations as the uninterrupted run");
    for sql in [
        "SELECT COUNT(*) FROM passports",
        "SELECT COUNT(*) FROM passport_status WHERE status = 'current'",
        "SELECT COUNT(*) FROM passport_status WHERE status = 'superseded'",
        "SELECT COUNT(*) FROM passports WHERE status = 'revoked'",
        "SELECT COUNT(*) FROM revocations",
        "SELECT COUNT(*) FROM doses",
        "SELECT COUNT(*) FROM audit_log",
    ] {
        assert_eq!(db_count(&db, sql), db_count(&reference_db, sql), "{sql}: nothing done twice, nothing lost");
    }
    // Every person has exactly one current passport.
    let doubled = "SELECT COUNT(*) FROM (SELECT person_hash FROM passport_status WHERE status = 'current' \
                   GROUP BY person_hash HAVING COUNT(*) > 1)";
    assert_eq!(db_count(&db, doubled), 0);
    // Run again: nothing changes, nothing more is revoked.
    run_to_end(&second, &out, &db);
    assert_eq!(outcome(&out), expected);
    assert_eq!(
        db_count(&db, "SELECT COUNT(*) FROM revocations"),
        db_count(&reference_db, "SELECT COUNT(*) FROM revocations")
    );
}
