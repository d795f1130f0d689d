//! `vaxpass gen`: a deterministic synthetic registry and dose export, with the truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::synthetic::{GenOptions, generate};

#[derive(Debug, Args)]
#[command(after_long_help = "Example:\n  vaxpass gen --persons 100000 --seed 7 --out data\n\n\
    Writes DIR/registry.csv, DIR/doses.csv and DIR/truth.csv (one line per dose row: SIGN or the\n\
    reason code the gate must give, the person who really received the dose, and the injected\n\
    error). Only synthetic people: names, numbers and dates are made up.")]
pub(super) struct GenArgs {
    /// Registry persons to generate (about 2 dose rows each).
    #[arg(long, value_name = "N")]
    persons: u64,
    /// Seed: the same persons and seed give byte-identical files.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    persons: u64,
    registry_rows: u64,
    dose_rows: u64,
    by_truth: &'a std::collections::BTreeMap<String, u64>,
}

pub(super) fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let s = generate(&GenOptions { persons: args.persons, seed: args.seed }, &args.out)?;
    let report =
        Report { persons: s.persons, registry_rows: s.registry_rows, dose_rows: s.dose_rows, by_truth: &s.by_truth };
    let text = if args.json {
        format!("{}\n", serde_json::to_string(&report)?)
    } else {
        let mut t =
            format!("{} registry persons, {} dose rows in {}\n", s.registry_rows, s.dose_rows, args.out.display());
        for (code, n) in &s.by_truth {
            t.push_str(&format!("  {n:>9}  {code}\n"));
        }
        t
    };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
