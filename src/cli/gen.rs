//! `vaxpass gen`: a deterministic synthetic registry and dose export, with the truth, and
//! optionally a station's follow-up weeks (issue #9, SPEC §8).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::synthetic::corrections::CorrectionsSummary;
use crate::synthetic::{GenOptions, MAX_WEEKS, generate};

#[derive(Debug, Args)]
#[command(after_long_help = "Example:\n  vaxpass gen --persons 100000 --seed 7 --out data --weeks 4\n\n\
    Writes DIR/registry.csv, DIR/doses.csv and DIR/truth.csv (one line per dose row: SIGN or the\n\
    reason code the gate must give, the person who really received the dose, and the injected\n\
    error). Only synthetic people: names, numbers and dates are made up.\n\n\
    With --weeks W, registry.csv gains a previous_ids column (earlier 12-digit numbers, `;`-\n\
    separated, SPEC 8.4) and each week k = 1..W gets DIR/week-KK/ with:\n\
    \x20 doses.csv          a follow-up batch: boosters, corrections (same record_id, new date,\n\
    \x20                    product or person), re-typed rejected rows, exact repeats, faults\n\
    \x20 truth.csv          record_id,expected,person_key,error_kind for each row, in file order\n\
    \x20 retract.txt        record ids to retract after the batch, one per line\n\
    \x20 retract_truth.csv  record_id,expected (retracted|unknown),person_key,reason,facility_code\n\
    \x20 expected.csv       id_number,doses after weeks 0..k: each person's ledger doses as\n\
    \x20                    yyyy-mm-dd/mp joined by `;`, sorted by date (the current passport)\n\
    Week k runs Monday to Sunday from 2023-01-02 + 7(k-1) days; replay week by week: sign\n\
    week-KK/doses.csv, then retract week-KK/retract.txt, with any clock after the week's last\n\
    day. The rules the truth follows are in the documentation of vaxpass::synthetic::weeks.\n\n\
    With --corrections, DIR/corrections.jsonl gets citizens' correction requests (about 2 % of\n\
    persons, arriving over 28 days from 2023-01-02 with a spike on days 10-11) with the time and\n\
    outcome of each facility's answer, and DIR/corrections_truth.json what a replay to its `clock`\n\
    must report (open, overdue, closed, late, share closed within 48 h, by province). The rules are in\n\
    the documentation of vaxpass::synthetic::corrections.")]
pub(super) struct GenArgs {
    /// Registry persons to generate (about 2 dose rows each).
    #[arg(long, value_name = "N")]
    persons: u64,
    /// Seed: the same persons, seed and weeks give byte-identical files.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Follow-up weeks to write as DIR/week-01 … (0: only the week-0 files, unchanged).
    #[arg(long, value_name = "W", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WEEKS)))]
    weeks: u32,
    /// Also write citizens' correction requests and their truth (see below).
    #[arg(long)]
    corrections: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    persons: u64,
    registry_rows: u64,
    dose_rows: u64,
    by_truth: &'a BTreeMap<String, u64>,
    by_kind: &'a BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    weeks: Vec<WeekReport<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    persons_with_previous_ids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    corrections: Option<CorrectionsSummary>,
}

#[derive(Serialize)]
struct WeekReport<'a> {
    week: u32,
    first_day: String,
    last_day: String,
    dose_rows: u64,
    retractions: u64,
    expected_persons: u64,
    by_truth: &'a BTreeMap<String, u64>,
    by_kind: &'a BTreeMap<String, u64>,
    retractions_by_outcome: &'a BTreeMap<String, u64>,
}

pub(super) fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let s = generate(&GenOptions { persons: args.persons, seed: args.seed, weeks: args.weeks }, &args.out)?;
    let corrections =
        if args.corrections { Some(crate::synthetic::corrections::write(&args.out, args.seed)?) } else { None };
    let weeks: Vec<WeekReport<'_>> = s
        .weeks
        .iter()
        .map(|w| WeekReport {
            week: w.week,
            first_day: w.first_day.to_string(),
            last_day: w.last_day.to_string(),
            dose_rows: w.dose_rows,
            retractions: w.retractions,
            expected_persons: w.expected_persons,
            by_truth: &w.by_truth,
            by_kind: &w.by_kind,
            retractions_by_outcome: &w.retract_by_outcome,
        })
        .collect();
    let report = Report {
        persons: s.persons,
        registry_rows: s.registry_rows,
        dose_rows: s.dose_rows,
        by_truth: &s.by_truth,
        by_kind: &s.by_kind,
        persons_with_previous_ids: (args.weeks > 0).then_some(s.persons_with_previous_ids),
        weeks,
        corrections,
    };
    let text = if args.json { format!("{}\n", serde_json::to_string(&report)?) } else { human(&report, &args) };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn human(r: &Report<'_>, args: &GenArgs) -> String {
    let mut t = format!("{} registry persons, {} dose rows in {}\n", r.registry_rows, r.dose_rows, args.out.display());
    counts(&mut t, r.by_truth);
    t.push_str("  by error_kind:\n");
    counts(&mut t, r.by_kind);
    if let Some(n) = r.persons_with_previous_ids {
        t.push_str(&format!("{n} registry persons with previous_ids\n"));
    }
    if let Some(c) = &r.corrections {
        t.push_str(&format!("{} correction requests in corrections.jsonl\n", c.requests));
        counts(&mut t, &c.by_kind);
    }
    for w in &r.weeks {
        t.push_str(&format!(
            "week-{:02} ({} to {}): {} dose rows, {} retractions, {} persons in expected.csv\n",
            w.week, w.first_day, w.last_day, w.dose_rows, w.retractions, w.expected_persons
        ));
        counts(&mut t, w.by_truth);
        t.push_str("  by error_kind:\n");
        counts(&mut t, w.by_kind);
        t.push_str("  retractions:\n");
        counts(&mut t, w.retractions_by_outcome);
    }
    t
}

fn counts(t: &mut String, map: &BTreeMap<String, u64>) {
    for (code, n) in map {
        t.push_str(&format!("  {n:>9}  {code}\n"));
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::Cli;

    #[test]
    fn weeks_defaults_to_zero_and_is_bounded() {
        assert!(Cli::try_parse_from(["vaxpass", "gen", "--persons", "1", "--out", "x"]).is_ok());
        assert!(Cli::try_parse_from(["vaxpass", "gen", "--persons", "1", "--out", "x", "--weeks", "52"]).is_ok());
        assert!(Cli::try_parse_from(["vaxpass", "gen", "--persons", "1", "--out", "x", "--weeks", "53"]).is_err());
        assert!(Cli::try_parse_from(["vaxpass", "gen", "--persons", "1", "--out", "x", "--weeks", "-1"]).is_err());
    }
}
