//! `vaxpass sign --memory-budget` (issue #11 part 3): a budget far below the batch makes the
//! run sort its rows into files on disk and read the registry from its file; the outputs must
//! be those of a run that holds everything, byte for byte (the QR texts aside: ES256
//! signatures are randomised), through a first batch and follow-up weeks with corrections,
//! moved doses and re-issued numbers.

use std::path::Path;

use crate::sign_batch::{facility_args, sqlite_in};
use crate::util::{Vaxpass, tempdir};

const AT: &str = "2027-01-10T00:00:00Z";

/// Signs `doses` into `dir/out` on `dir`'s database, with `budget` when given; returns the
/// `--timings` lines.
fn sign(dir: &Path, data: &Path, doses: &Path, out: &str, budget: Option<&str>) -> String {
    let mut cmd = Vaxpass::new(["sign", "--json", "--timings", "--commit-every", "500", "--at", AT])
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
        .arg(data.join("secret"));
    if let Some(b) = budget {
        cmd = cmd.args(["--memory-budget", b]);
    }
    cmd.succeeds().stderr
}

/// A run's outputs, `passports.jsonl` without its QR texts.
fn outputs(out: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let passports: String = std::fs::read_to_string(out.join("passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut p: serde_json::Value = serde_json::from_str(l).unwrap();
            p.as_object_mut().unwrap().remove("hc1");
            format!("{p}\n")
        })
        .collect();
    files.push(("passports.jsonl".to_owned(), passports));
    for name in ["rejected.csv", "revoked.csv", "summary.json"] {
        files.push((name.to_owned(), std::fs::read_to_string(out.join(name)).unwrap()));
    }
    files
}

#[test]
fn a_budget_far_below_the_batch_spills_and_changes_no_output() {
    let dir = tempdir();
    let data = dir.path().join("data");
    Vaxpass::new(["gen", "--json", "--persons", "3000", "--seed", "5", "--weeks", "2", "--out"]).arg(&data).succeeds();
    let (held, spilled) = (dir.path().join("held"), dir.path().join("spilled"));
    std::fs::create_dir_all(&held).unwrap();
    std::fs::create_dir_all(&spilled).unwrap();
    for (week, doses) in [
        ("week-00", data.join("doses.csv")),
        ("week-01", data.join("week-01/doses.csv")),
        ("week-02", data.join("week-02/doses.csv")),
    ] {
        sign(&held, &data, &doses, week, None);
        // 96 KiB: 32 KiB of rows in memory, a few hundred rows per sorted run.
        let timings = sign(&spilled, &data, &doses, week, Some("96KiB"));
        assert!(timings.contains("rows spilled to disk in"), "{week}: nothing was spilled:\n{timings}");
        assert_eq!(outputs(&held.join(week)), outputs(&spilled.join(week)), "{week}");
        // No spill file is left behind.
        let left: Vec<_> = std::fs::read_dir(spilled.join(week))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("spill"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn a_size_that_is_not_one_is_refused() {
    let dir = tempdir();
    let data = crate::sign_batch::small_batch(dir.path());
    let err = Vaxpass::new(["sign", "--memory-budget", "lots"])
        .args(facility_args())
        .arg("--input")
        .arg(data.join("doses.csv"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .exits(2);
    assert!(err.stderr.contains("not a size such as 1.5GiB"), "{}", err.stderr);
}
