//! The dose ledger through the real binary (SPEC §8.1–8.3): a follow-up batch, a correction,
//! a retraction, and what each writes.

use std::path::Path;

use crate::sign_batch::{facility_args, sqlite_in};
use crate::util::{Vaxpass, tempdir};

const REGISTRY: &str = "id_number,old_id,full_name,dob,sex
001090000123,,Nguyễn Văn An,1990-05-02,M
001185000456,,Trần Thị Bình,1985-01-01,F
";
const HEADER: &str =
    "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n";
const AT: &str = "2027-01-10T00:00:00Z";

fn sign(dir: &Path, name: &str, rows: &str) -> serde_json::Value {
    sign_at(dir, name, rows, AT)
}

/// `sign` with the clock at `at`.
fn sign_at(dir: &Path, name: &str, rows: &str, at: &str) -> serde_json::Value {
    std::fs::write(dir.join(format!("{name}.csv")), format!("{HEADER}{rows}")).unwrap();
    let out = Vaxpass::new(["sign", "--json", "--at", at])
        .args(facility_args())
        .arg("--input")
        .arg(dir.join(format!("{name}.csv")))
        .arg("--registry")
        .arg(dir.join("registry.csv"))
        .arg("--out")
        .arg(dir.join(name))
        .arg("--db")
        .arg(sqlite_in(dir))
        .arg("--secret")
        .arg(dir.join("secret"))
        .succeeds();
    serde_json::from_str(&out.stdout).unwrap()
}

fn passports(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn retract(dir: &Path, name: &str, ids: &[&str]) -> crate::util::Output {
    let mut v = Vaxpass::new(["retract", "--json", "--at", AT, "--reason", "never given"]).args(facility_args());
    for id in ids {
        v = v.arg("--record-id").arg(id);
    }
    v.arg("--out").arg(dir.join(name)).arg("--db").arg(sqlite_in(dir)).arg("--secret").arg(dir.join("secret")).run()
}

#[test]
fn follow_up_correction_and_retraction_keep_passports_true() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("registry.csv"), REGISTRY).unwrap();
    let week1 = "R1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01
R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-09-20
R3,01001,001185000456,Trần Thị Bình,01/01/1985,Nữ,,,Pfizer,,,2021-08-01
";
    let s = sign(d, "week1", week1);
    assert_eq!((s["passports"].as_u64(), s["revoked"].as_u64(), s["superseded"].as_u64()), (Some(2), Some(0), Some(0)));
    let first = passports(&d.join("week1"));
    let an_1 = first.iter().find(|p| p["id_number"] == "001090000123").unwrap()["uvci"].as_str().unwrap().to_owned();

    // A booster only: the passport carries the whole series; the old one stays valid.
    let s = sign(d, "week2", "R4,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2022-01-15\n");
    assert_eq!((s["input_rows"].as_u64(), s["signed_rows"].as_u64()), (Some(1), Some(1)));
    assert_eq!((s["revoked"].as_u64(), s["superseded"].as_u64()), (Some(0), Some(1)));
    let an_2 = &passports(&d.join("week2"))[0];
    assert_eq!(an_2["record_ids"], serde_json::json!(["R1", "R2", "R4"]));
    assert_eq!(std::fs::read_to_string(d.join("week2/revoked.csv")).unwrap(), "uvci,reason\n");

    // A corrected date: the passport that carried the wrong one is revoked.
    let s = sign(d, "week3", "R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-09-21\n");
    assert_eq!(
        (s["revoked"].as_u64(), s["superseded"].as_u64()),
        (Some(2), Some(0)),
        "the week 1 and week 2 passports"
    );
    let revoked = std::fs::read_to_string(d.join("week3/revoked.csv")).unwrap();
    assert!(revoked.contains(&format!("{an_1},corrected")), "{revoked}");
    assert!(revoked.contains(&format!("{},corrected", an_2["uvci"].as_str().unwrap())), "{revoked}");

    // Retraction: R4 was never given.
    let out = retract(d, "retract1", &["R4", "NOPE"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((answer["retracted"].as_u64(), &answer["unknown"]), (Some(1), &serde_json::json!(["NOPE"])));
    assert_eq!(answer["revoked"].as_array().unwrap().len(), 1);
    let reissued = passports(&d.join("retract1"));
    assert_eq!(reissued.len(), 1);
    assert_eq!(reissued[0]["record_ids"], serde_json::json!(["R1", "R2"]));
    assert_eq!(answer["reissued"], serde_json::json!([reissued[0]["uvci"]]));
    for name in ["passports.jsonl", "rejected.csv", "revoked.csv", "summary.json"] {
        assert!(d.join("retract1").join(name).exists(), "{name}");
    }

    // Nothing to retract: exit 0, and it says so.
    let out = retract(d, "retract2", &["NOPE"]);
    assert_eq!(out.code, Some(0));
    let out = Vaxpass::new(["retract", "--at", AT, "--record-id", "NOPE"])
        .args(facility_args())
        .arg("--out")
        .arg(d.join("retract3"))
        .arg("--db")
        .arg(sqlite_in(d))
        .arg("--secret")
        .arg(d.join("secret"))
        .succeeds();
    assert!(out.stdout.starts_with("nothing retracted"), "{}", out.stdout);
}

/// One booster row (new record id `{tag}-…`, `vaccine` on `date`) for each identity of
/// `doses.csv` whose rows were signed into `signed/passports.jsonl`.
fn boosters(data: &Path, signed: &Path, out: &Path, tag: &str, vaccine: &str, date: &str) {
    let signed_ids: std::collections::BTreeSet<String> = passports(signed)
        .iter()
        .flat_map(|p| {
            p["record_ids"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect::<Vec<_>>()
        })
        .collect();
    let mut r = csv::Reader::from_path(data.join("doses.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |h: &str| headers.iter().position(|x| x == h).unwrap();
    let (id, number, d, v) = (col("record_id"), col("id_number"), col("vaccination_date"), col("vaccine"));
    let mut w = csv::Writer::from_path(out).unwrap();
    w.write_record(&headers).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        if !signed_ids.contains(&rec[id]) || !seen.insert(rec[number].to_owned()) {
            continue;
        }
        let mut row: Vec<String> = rec.iter().map(String::from).collect();
        row[id] = format!("{tag}-{}", &rec[id]);
        row[d] = date.into();
        row[v] = vaccine.into();
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn two_runs_at_once_on_one_database_leave_one_true_passport_per_person() {
    let dir = tempdir();
    let d = dir.path();
    let data = crate::sign_truth::generate(d, 2_000, 21);
    let run = |input: &Path, out: &str| {
        Vaxpass::new(["sign", "--json", "--at", AT])
            .args(facility_args())
            .arg("--input")
            .arg(input)
            .arg("--registry")
            .arg(data.join("registry.csv"))
            .arg("--out")
            .arg(d.join(out))
            .arg("--db")
            .arg(sqlite_in(d))
            .arg("--secret")
            .arg(d.join("secret"))
    };
    run(&data.join("doses.csv"), "week1").succeeds();
    boosters(&data, &d.join("week1"), &d.join("a.csv"), "A", "Pfizer", "2022-06-01");
    boosters(&data, &d.join("week1"), &d.join("b.csv"), "B", "Moderna", "2022-09-01");
    // Both at once: the second waits for the first to release the ledger.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(&d.join("a.csv"), "a").run());
        let b = s.spawn(|| run(&d.join("b.csv"), "b").run());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.code, b.code), (Some(0), Some(0)), "{a:?} {b:?}");
    let conn = rusqlite::Connection::open(d.join("v.db")).unwrap();
    let doubled: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT person_hash FROM passport_status WHERE status = 'current' \
             GROUP BY person_hash HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(doubled, 0, "nobody has two current passports");
    let both: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM passport_status WHERE status = 'current' AND doses LIKE '%\"A-R%' \
             AND doses LIKE '%\"B-R%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Persons whose two boosters were both accepted (by each run's own output).
    let boosted = |out: &str, tag: &str| -> std::collections::BTreeSet<String> {
        passports(&d.join(out))
            .iter()
            .filter(|p| p["record_ids"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().starts_with(tag)))
            .map(|p| p["id_number"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected = boosted("a", "A-").intersection(&boosted("b", "B-")).count();
    assert!(expected > 1000, "{expected}");
    assert_eq!(both as usize, expected, "every current passport carries both boosters of its holder");
}

#[test]
fn passports_signed_before_the_ledger_join_it_when_their_batch_is_sent_again() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("registry.csv"), REGISTRY).unwrap();
    let week1 = "R1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01\n";
    sign(d, "week1", week1);
    let old = passports(&d.join("week1"))[0]["uvci"].as_str().unwrap().to_owned();
    // What a database written before the ledger holds: the passport, no ledger, no history.
    let conn = rusqlite::Connection::open(d.join("v.db")).unwrap();
    conn.execute_batch(
        "UPDATE passports SET person_hash = NULL, holder_hash = NULL, content_hash = NULL, doses = NULL; \
         DELETE FROM doses; DELETE FROM persons;",
    )
    .unwrap();
    // The old batch sent again brings its rows into the ledger and adopts the passport...
    sign(d, "again", week1);
    assert_eq!(passports(&d.join("again"))[0]["uvci"], old.as_str(), "the same passport, not a second one");
    let adopted: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM passport_status WHERE person_hash IS NOT NULL AND status = 'current'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(adopted, 1);
    // ...so a booster supersedes it instead of leaving two current passports.
    let s = sign(d, "week2", "R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2021-10-01\n");
    assert_eq!((s["superseded"].as_u64(), s["revoked"].as_u64()), (Some(1), Some(0)));
    let current: i64 =
        conn.query_row("SELECT COUNT(*) FROM passport_status WHERE status = 'current'", [], |r| r.get(0)).unwrap();
    assert_eq!(current, 1);
}

#[test]
fn another_weeks_file_at_the_same_path_and_of_the_same_length_is_another_batch() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("registry.csv"), REGISTRY).unwrap();
    sign(d, "week1", "R1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01\n");
    // The date correction revokes An's first passport...
    let s = sign(d, "next", "R1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-02\n");
    assert_eq!(s["revoked"].as_u64(), Some(1));
    // ...and next week's file, same name, same length, brings Bình's first dose: its summary
    // speaks of its own work only.
    let rows = "R3,01001,001185000456,Trần Thị Bình,01/01/1985,Nữ,,,Pfizer,L1,,2021-08-01\n";
    assert_eq!(rows.len(), 81, "the same length as the file it replaces");
    let s = sign(d, "next", rows);
    assert_eq!((s["passports"].as_u64(), s["revoked"].as_u64(), s["superseded"].as_u64()), (Some(1), Some(0), Some(0)));
    assert_eq!(std::fs::read_to_string(d.join("next/revoked.csv")).unwrap(), "uvci,reason\n");
}

/// Issue 11 item 4: the same batch run again after its passport's `exp` (a year after `iat`)
/// signs a new passport, rather than handing out the expired one; before `exp` it is reused.
#[test]
fn a_rerun_after_exp_signs_a_new_passport() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("registry.csv"), REGISTRY).unwrap();
    let rows = "R1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01\n";
    sign(d, "week1", rows);
    let times = |p: &serde_json::Value| {
        let claims = vaxpass::passport::decode(p["hc1"].as_str().unwrap()).unwrap().claims().unwrap();
        (claims.issued_at.unwrap() as i64, claims.expires_at.unwrap() as i64)
    };
    let first = passports(&d.join("week1")).remove(0);
    let (iat, exp) = times(&first);
    let rfc = |t: i64| crate::util::rfc3339(t);

    // A day before exp: the same passport.
    sign_at(d, "before", rows, &rfc(exp - 86_400));
    assert_eq!(passports(&d.join("before"))[0]["uvci"], first["uvci"]);
    // At exp: a new one, for a year from then; the old one superseded.
    let s = sign_at(d, "after", rows, &rfc(exp));
    assert_eq!((s["passports"].as_u64(), s["superseded"].as_u64()), (Some(1), Some(1)), "{s}");
    let second = passports(&d.join("after")).remove(0);
    assert_ne!(second["uvci"], first["uvci"]);
    // Signed at the re-run; valid a year, or less when the DSC expires first (2028-11-29).
    let (iat2, exp2) = times(&second);
    assert_eq!(iat2, exp);
    assert!(exp2 > exp && exp2 - iat2 <= exp - iat, "{iat} {exp} {iat2} {exp2}");
}
