//! The gate against the generator's truth: every row gets exactly the expected outcome, and
//! no row is ever signed under someone else's identity.

use std::collections::HashMap;
use std::path::Path;

use crate::util::{Vaxpass, tempdir};

/// Generates `persons` with `seed` into `dir/data`.
pub fn generate(dir: &Path, persons: u64, seed: u64) -> std::path::PathBuf {
    let data = dir.join("data");
    Vaxpass::new(["gen", "--json", "--persons", &persons.to_string(), "--seed", &seed.to_string(), "--out"])
        .arg(&data)
        .succeeds();
    data
}

fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().map(String::from).zip(rec.unwrap().iter().map(String::from)).collect())
        .collect()
}

fn check_against_truth(persons: u64, seed: u64) {
    let dir = tempdir();
    let data = generate(dir.path(), persons, seed);
    let d = dir.path();
    crate::sign_batch::sign_data(&data, &d.join("out"), &crate::sign_batch::sqlite_in(d), &d.join("secret")).succeeds();

    let mut outcome: HashMap<String, (String, Option<String>)> = HashMap::new();
    for line in std::fs::read_to_string(dir.path().join("out/passports.jsonl")).unwrap().lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        for rid in p["record_ids"].as_array().unwrap() {
            let prev = outcome
                .insert(rid.as_str().unwrap().into(), ("SIGN".into(), p["id_number"].as_str().map(String::from)));
            assert!(prev.is_none(), "row {rid} in two passports");
        }
    }
    for r in read_csv(&dir.path().join("out/rejected.csv")) {
        let prev = outcome.insert(r["record_id"].clone(), (r["reason"].clone(), None));
        assert!(prev.is_none(), "row {} in two places", r["record_id"]);
    }

    let truth = read_csv(&data.join("truth.csv"));
    assert_eq!(outcome.len(), truth.len(), "every row ends in exactly one place");
    let mut wrong = Vec::new();
    let mut signed_under_someone_else = 0;
    let mut signable = 0;
    for t in &truth {
        let (got, under) = &outcome[&t["record_id"]];
        if got != &t["expected"] {
            wrong.push(format!("{} expected {} got {} ({})", t["record_id"], t["expected"], got, t["error_kind"]));
        }
        if t["expected"] == "SIGN" {
            signable += 1;
        }
        if let Some(id) = under {
            let owner = t["person_key"].rsplit(':').next().unwrap_or_default();
            if id != owner {
                signed_under_someone_else += 1;
            }
        }
    }
    assert_eq!(signed_under_someone_else, 0);
    assert!(signable > truth.len() / 2);
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ from the truth:\n{}",
        wrong.len(),
        truth.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}

#[test]
fn gate_agrees_with_the_truth_row_by_row() {
    check_against_truth(4000, 11);
}

#[test]
fn gate_agrees_with_the_truth_on_another_seed() {
    check_against_truth(4000, 12);
}
