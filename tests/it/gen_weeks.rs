//! `vaxpass gen --weeks W` (issue #9, item 8): follow-up batches with their truth. The truth is
//! checked here against an independent replay of the simple ledger rules over the files, so a
//! generator bug that writes an `expected.csv` the truth files do not support fails.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use time::Date;
use vaxpass::dates::parse_date;
use vaxpass::passport::vaccines;

use crate::util::{Vaxpass, tempdir};

const PERSONS: u64 = 4_000;
const WEEKS: u32 = 4;

/// Runs `vaxpass gen --json` and returns its summary.
fn gen_into(out: &Path, persons: u64, seed: u64, weeks: Option<u32>) -> serde_json::Value {
    let mut cmd =
        Vaxpass::new(["gen", "--json", "--persons", &persons.to_string(), "--seed", &seed.to_string(), "--out"])
            .arg(out);
    if let Some(w) = weeks {
        cmd = cmd.args(["--weeks", &w.to_string()]);
    }
    let o = cmd.succeeds();
    serde_json::from_str(&o.stdout).unwrap()
}

/// Header and records, as maps by column name.
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().map(String::from).zip(rec.unwrap().iter().map(String::from)).collect())
        .collect()
}

fn header(path: &Path) -> Vec<String> {
    csv::Reader::from_path(path).unwrap().headers().unwrap().iter().map(String::from).collect()
}

fn week_dir(data: &Path, k: u32) -> PathBuf {
    data.join(format!("week-{k:02}"))
}

/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// (person_key, date, mp) of a dose row, from its typed date and vaccine.
fn dose_of(row: &HashMap<String, String>, key: &str) -> (String, Date, &'static str) {
    let day = parse_date(&row["vaccination_date"]).and_then(|d| d.as_full()).expect("a signed row has a full date");
    let mp = vaccines::lookup(&row["vaccine"]).expect("a signed row names a known vaccine").mp;
    (key.to_owned(), day, mp)
}

#[test]
fn weeks_zero_is_the_old_output_without_week_folders_or_previous_ids() {
    let dir = tempdir();
    let (plain, zero, three) = (dir.path().join("plain"), dir.path().join("zero"), dir.path().join("three"));
    let s = gen_into(&plain, 1_500, 5, None);
    gen_into(&zero, 1_500, 5, Some(0));
    gen_into(&three, 1_500, 5, Some(3));
    assert!(s.get("weeks").is_none(), "no week summary without --weeks: {s}");
    assert_eq!(tree(&plain), tree(&zero), "--weeks 0 is the default");
    let names: BTreeSet<String> =
        std::fs::read_dir(&zero).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["doses.csv".into(), "registry.csv".into(), "truth.csv".into()]));
    assert_eq!(header(&zero.join("registry.csv")), ["id_number", "old_id", "full_name", "dob", "sex"]);
    // The week-0 files do not depend on --weeks: doses and truth byte for byte, and the
    // registry once its added last column is dropped.
    for f in ["doses.csv", "truth.csv"] {
        assert_eq!(std::fs::read(zero.join(f)).unwrap(), std::fs::read(three.join(f)).unwrap(), "{f}");
    }
    assert_eq!(header(&three.join("registry.csv")), ["id_number", "old_id", "full_name", "dob", "sex", "previous_ids"]);
    let without_last = |text: String| -> String {
        let mut out = String::new();
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        for rec in r.records() {
            let rec = rec.unwrap();
            w.write_record(rec.iter().take(5)).unwrap();
        }
        out.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
        out
    };
    assert_eq!(
        std::fs::read_to_string(zero.join("registry.csv")).unwrap(),
        without_last(std::fs::read_to_string(three.join("registry.csv")).unwrap())
    );
    for k in 1..=3 {
        assert!(week_dir(&three, k).join("expected.csv").is_file());
    }
    assert!(!week_dir(&three, 4).exists());
}

#[test]
fn same_arguments_give_byte_identical_weeks_and_another_seed_does_not() {
    let dir = tempdir();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    gen_into(&a, 2_000, 9, Some(2));
    gen_into(&b, 2_000, 9, Some(2));
    gen_into(&c, 2_000, 10, Some(2));
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert_eq!(ta.len(), 3 + 2 * 5);
    assert_eq!(ta, tb);
    assert_ne!(ta.get(Path::new("week-01/doses.csv")), tc.get(Path::new("week-01/doses.csv")));
}

#[test]
fn too_many_weeks_is_a_usage_error() {
    let dir = tempdir();
    let out = Vaxpass::new(["gen", "--persons", "10", "--weeks", "53", "--out"]).arg(dir.path()).run();
    assert_eq!(out.code, Some(2), "{out:#?}");
}

/// Replays weeks 0..=W from the files alone with the rules of SPEC §8.1 as the truth states
/// them (a SIGN row sets its record's entry; retractions remove after the batch) and checks
/// `expected.csv`, `retract_truth.csv` and what each `error_kind` claims about its record id.
#[test]
fn expected_follows_from_the_truth_files_and_ids_mean_what_the_truth_says() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let summary = gen_into(&data, PERSONS, 2026, Some(WEEKS));

    // The registry: current numbers, earlier numbers.
    let registry = read_csv(&data.join("registry.csv"));
    let current: HashSet<String> = registry.iter().map(|r| r["id_number"].clone()).collect();
    let mut previous_of: HashMap<String, String> = HashMap::new();
    for r in &registry {
        for old in r["previous_ids"].split(';').filter(|s| !s.is_empty()) {
            assert!(!current.contains(old), "an earlier number is another person's current number");
            assert!(old.len() == 12 && old.bytes().all(|b| b.is_ascii_digit()), "{old}");
            assert!(previous_of.insert(old.to_owned(), r["id_number"].clone()).is_none(), "earlier number reused");
        }
    }
    let share = previous_of.len() as f64 / registry.len() as f64;
    assert!((0.002..0.01).contains(&share), "previous_ids share {share}");

    // Week 0.
    let mut ledger: HashMap<String, (String, Date, &'static str)> = HashMap::new();
    let mut rejected_identity: HashSet<String> = HashSet::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    // The facility of each record's signed row (SPEC §8.3 scopes retraction by it).
    let mut facility_of: HashMap<String, String> = HashMap::new();
    let doses = read_csv(&data.join("doses.csv"));
    let truth = read_csv(&data.join("truth.csv"));
    for (row, t) in doses.iter().zip(&truth) {
        seen_ids.insert(row["record_id"].clone());
        if t["expected"] == "SIGN" {
            ledger.insert(row["record_id"].clone(), dose_of(row, &t["person_key"]));
            facility_of.insert(row["record_id"].clone(), row["facility_code"].clone());
        } else if t["expected"].starts_with("ID_")
            || t["expected"].ends_with("_MISMATCH")
            || t["expected"] == "NOT_IN_REGISTRY"
        {
            rejected_identity.insert(row["record_id"].clone());
        }
    }

    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut retracted_total = 0;
    for k in 1..=WEEKS {
        let wd = week_dir(&data, k);
        let week = &summary["weeks"][(k - 1) as usize];
        assert_eq!(week["week"], k);
        let last_day =
            Date::parse(week["last_day"].as_str().unwrap(), time::macros::format_description!("[year]-[month]-[day]"))
                .unwrap();
        let doses = read_csv(&wd.join("doses.csv"));
        let truth = read_csv(&wd.join("truth.csv"));
        assert_eq!(doses.len(), truth.len());
        assert_eq!(week["dose_rows"], doses.len() as u64);
        let mut in_batch: HashSet<String> = HashSet::new();
        for (row, t) in doses.iter().zip(&truth) {
            let id = &row["record_id"];
            assert_eq!(id, &t["record_id"], "truth.csv follows doses.csv row by row");
            let kind = t["error_kind"].as_str();
            *kinds.entry(kind.to_owned()).or_default() += 1;
            let signed = t["expected"] == "SIGN";
            let before = ledger.get(id).cloned();
            match kind {
                "correction_date" | "correction_product" | "correction_person" | "repeat" => {
                    let (key, day, mp) = before.clone().unwrap_or_else(|| panic!("{kind} {id}: not a signed record"));
                    assert!(signed, "{kind} {id} is generated to pass");
                    let now = dose_of(row, &t["person_key"]);
                    match kind {
                        "correction_date" => assert!(now.1 != day && now.0 == key && now.2 == mp, "{id}"),
                        "correction_product" => assert!(now.2 != mp && now.0 == key && now.1 == day, "{id}"),
                        "correction_person" => assert!(now.0 != key && now.1 == day && now.2 == mp, "{id}"),
                        _ => assert_eq!(now, (key, day, mp), "{id}: a repeat changes nothing"),
                    }
                }
                "retyped" => {
                    assert!(rejected_identity.remove(id), "{id}: re-typed rows were rejected for identity");
                    assert!(before.is_none() && signed, "{id}");
                }
                _ => assert!(seen_ids.insert(id.clone()), "{kind} {id}: a new row has a new record id"),
            }
            assert!(in_batch.insert(id.clone()), "{id} twice in one batch");
            if kind == "previous_id" {
                let owner = previous_of.get(&row["id_number"]).unwrap_or_else(|| panic!("{id}: not an earlier number"));
                assert_eq!(owner, &t["person_key"], "{id}: grouped with the current number");
                assert!(signed, "{id}");
            }
            if signed {
                let dose = dose_of(row, &t["person_key"]);
                assert!(dose.1 <= last_day, "{id}: dated after the week");
                assert!(current.contains(&dose.0) || dose.0.starts_with("FOREIGN:"), "{id}");
                ledger.insert(id.clone(), dose);
                facility_of.insert(id.clone(), row["facility_code"].clone());
            } else if t["expected"].starts_with("ID_")
                || t["expected"].ends_with("_MISMATCH")
                || t["expected"] == "NOT_IN_REGISTRY"
            {
                rejected_identity.insert(id.clone());
            }
        }
        // Retractions after the batch.
        let lines: Vec<String> =
            std::fs::read_to_string(wd.join("retract.txt")).unwrap().lines().map(String::from).collect();
        let rtruth = read_csv(&wd.join("retract_truth.csv"));
        assert_eq!(lines.len(), rtruth.len());
        let mut outcomes = BTreeMap::new();
        for (id, t) in lines.iter().zip(&rtruth) {
            assert_eq!(id, &t["record_id"]);
            let got = if let Some((key, ..)) = ledger.remove(id) {
                assert_eq!(key, t["person_key"]);
                assert_eq!(facility_of[id], t["facility_code"], "{id}: the facility that entered it");
                retracted_total += 1;
                "retracted"
            } else {
                "unknown"
            };
            assert_eq!(got, t["expected"], "retraction of {id} ({})", t["reason"]);
            *outcomes.entry(got).or_insert(0_u64) += 1;
        }
        assert!(outcomes.get("unknown").copied().unwrap_or(0) >= 2, "week {k}: {outcomes:?}");
        // expected.csv: the ledger grouped by person.
        let mut want: BTreeMap<String, BTreeSet<(Date, &'static str)>> = BTreeMap::new();
        for (key, day, mp) in ledger.values() {
            want.entry(key.clone()).or_default().insert((*day, mp));
        }
        let want: BTreeMap<String, String> = want
            .into_iter()
            .map(|(key, doses)| {
                let text: Vec<String> = doses.iter().map(|(d, mp)| format!("{d}/{mp}")).collect();
                (key, text.join(";"))
            })
            .collect();
        let got: BTreeMap<String, String> = read_csv(&wd.join("expected.csv"))
            .into_iter()
            .map(|r| (r["id_number"].clone(), r["doses"].clone()))
            .collect();
        let differ: Vec<_> = want.iter().filter(|(key, doses)| got.get(*key) != Some(doses)).take(5).collect();
        assert!(differ.is_empty(), "week {k}: expected.csv differs from the replay, e.g. {differ:?}");
        assert_eq!(got.len(), want.len(), "week {k}: persons in expected.csv");
    }
    println!("error_kind over {WEEKS} weeks: {kinds:?}; retracted {retracted_total}");
    for kind in [
        "booster",
        "correction_date",
        "correction_product",
        "correction_person",
        "retyped",
        "repeat",
        "previous_id",
        "duplicate_row",
        "ledger_duplicate",
        "too_soon",
        "name_typo",
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} in {kinds:?}");
    }
    assert!(retracted_total > 0);
}

#[test]
fn summary_prints_counts_per_error_kind_per_week() {
    let dir = tempdir();
    let out =
        Vaxpass::new(["gen", "--persons", "1500", "--seed", "3", "--weeks", "2", "--out"]).arg(dir.path()).succeeds();
    assert!(out.stdout.contains("week-01 (2023-01-02 to 2023-01-08)"), "{}", out.stdout);
    assert!(out.stdout.contains("week-02 (2023-01-09 to 2023-01-15)"), "{}", out.stdout);
    assert!(out.stdout.contains("booster"), "{}", out.stdout);
    let json = gen_into(&dir.path().join("j"), 1_500, 3, Some(2));
    let w1 = &json["weeks"][0];
    let total: u64 = w1["by_kind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, w1["dose_rows"].as_u64().unwrap());
    assert!(w1["by_kind"]["booster"].as_u64().unwrap() > 0, "{w1}");
    assert!(json["by_kind"]["clean"].as_u64().unwrap() > 0, "week 0 counted by kind too: {json}");
}
