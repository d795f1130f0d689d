//! A station's weeks replayed (issue #9): `vaxpass gen --weeks` writes week-0 and follow-up
//! batches, retractions and, after each week, every person's expected doses; signing and
//! retracting them through the real binary must leave each person's current passport
//! carrying exactly those doses.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::sign_batch::{facility_args, sqlite_in};
use crate::util::{Vaxpass, tempdir};

const AT: &str = "2027-01-10T00:00:00Z";

fn sign(dir: &Path, data: &Path, doses: &Path, out: &str) -> serde_json::Value {
    let o = Vaxpass::new(["sign", "--json", "--at", AT])
        .args(facility_args())
        .arg("--input")
        .arg(doses)
        .arg("--registry")
        .arg(data.join("registry.csv"))
        .arg("--out")
        .arg(dir.join(out))
        .arg("--db")
        .arg(sqlite_in(dir))
        .arg("--secret")
        .arg(dir.join("secret"))
        .succeeds();
    serde_json::from_str(&o.stdout).unwrap()
}

fn retract(dir: &Path, ids: &Path, out: &str) -> serde_json::Value {
    let o = Vaxpass::new(["retract", "--json", "--ministry", "--at", AT, "--reason", "replay"])
        .args(facility_args())
        .arg("--input")
        .arg(ids)
        .arg("--out")
        .arg(dir.join(out))
        .arg("--db")
        .arg(sqlite_in(dir))
        .arg("--secret")
        .arg(dir.join("secret"))
        .succeeds();
    serde_json::from_str(&o.stdout).unwrap()
}

/// uvci → id_number from a run's passports.jsonl.
fn read_ids(out: &Path, into: &mut HashMap<String, String>) {
    for line in std::fs::read_to_string(out.join("passports.jsonl")).unwrap().lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        into.insert(p["uvci"].as_str().unwrap().into(), p["id_number"].as_str().unwrap().into());
    }
}

/// id_number → `date/mp;…` of every current passport in the store.
fn current(dir: &Path, ids: &HashMap<String, String>) -> BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(dir.join("v.db")).unwrap();
    let mut stmt = conn.prepare("SELECT uvci, doses FROM passport_status WHERE status = 'current'").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
    let mut out = BTreeMap::new();
    for row in rows {
        let (uvci, doses) = row.unwrap();
        let doses: Vec<serde_json::Value> = serde_json::from_str(&doses).unwrap();
        let text: Vec<String> =
            doses.iter().map(|d| format!("{}/{}", d["date"].as_str().unwrap(), d["mp"].as_str().unwrap())).collect();
        let id = ids.get(&uvci).unwrap_or_else(|| panic!("{uvci} was never handed out"));
        assert!(out.insert(id.clone(), text.join(";")).is_none(), "{id} has two current passports");
    }
    out
}

/// `expected.csv`, keyed like passports.jsonl (a foreigner by passport number).
fn expected(path: &Path) -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let id = rec[0].rsplit(':').next().unwrap().to_owned();
            (id, rec[1].to_owned())
        })
        .collect()
}

fn compare(week: &str, got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(id, doses)| got.get(*id) != Some(*doses))
        .map(|(id, doses)| format!("{id}: want {doses}, got {:?}", got.get(id)))
        .chain(got.keys().filter(|id| !want.contains_key(*id)).map(|id| format!("{id}: a passport nobody expects")))
        .collect();
    assert!(
        wrong.is_empty(),
        "{week}: {} of {} persons differ, e.g.\n{}",
        wrong.len(),
        want.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
}

#[test]
fn replayed_weeks_leave_every_current_passport_with_the_expected_doses() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("data");
    Vaxpass::new(["gen", "--json", "--persons", "3000", "--seed", "11", "--weeks", "2", "--out"]).arg(&data).succeeds();
    let mut ids = HashMap::new();
    sign(d, &data, &data.join("doses.csv"), "week-00");
    read_ids(&d.join("week-00"), &mut ids);
    let mut revoked_total = 0;
    let mut last = serde_json::Value::Null;
    for week in ["week-01", "week-02"] {
        let w = data.join(week);
        let s = sign(d, &data, &w.join("doses.csv"), week);
        last = s.clone();
        read_ids(&d.join(week), &mut ids);
        let r = retract(d, &w.join("retract.txt"), &format!("{week}-retract"));
        read_ids(&d.join(format!("{week}-retract")), &mut ids);
        revoked_total += s["revoked"].as_u64().unwrap() + r["revoked"].as_array().unwrap().len() as u64;
        compare(week, &current(d, &ids), &expected(&w.join("expected.csv")));
    }
    assert!(revoked_total > 10, "the weeks corrected and retracted signed doses: {revoked_total} revoked");
    // Replaying the last week's batch again changes nothing: the same rows signed and rejected
    // as its first run, the same current passports, no new revocation. (Its revoked and
    // superseded counts say what that batch did to earlier passports; the retraction since
    // may have revoked one it had superseded.)
    let before = current(d, &ids);
    let revocations = |d: &Path| -> i64 {
        let conn = rusqlite::Connection::open(d.join("v.db")).unwrap();
        conn.query_row("SELECT COUNT(*) FROM revocations", [], |r| r.get(0)).unwrap()
    };
    let revoked_before = revocations(d);
    let mut s = sign(d, &data, &data.join("week-02/doses.csv"), "again");
    for v in [&mut s, &mut last] {
        let o = v.as_object_mut().unwrap();
        o.remove("superseded");
        o.remove("revoked");
    }
    assert_eq!(s, last);
    assert_eq!(current(d, &ids), before);
    assert_eq!(revocations(d), revoked_before, "nothing more revoked");
}
