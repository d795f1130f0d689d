//! `vaxpass retract`: a facility removes dose records from the ledger (SPEC §8.3).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use time::OffsetDateTime;

use super::sign::{PassportFile, finish_outputs, load_secret, sink_error, tmp};
use crate::gate::output::create_private_file;
use crate::gate::{self, BatchSink, GateError, Rejection, RetractScope, SignedPassport};
use crate::ledger::Ledger;
use crate::store::{self, Store};

/// Record ids a retraction takes at most: a retraction is a correction of a few records, not
/// a bulk operation (the ledger is re-read and its persons re-signed in one run).
const MAX_RECORDS: usize = 100_000;

#[derive(Debug, Args)]
#[command(after_long_help = "Example (facility 01001 takes back a dose it entered for the wrong person):\n  \
    vaxpass retract --key keys-example/facility-01001/key.pem --cert keys-example/facility-01001/cert.pem \\\n    \
    --record-id VN-2021-000123 --reason 'entered for the wrong person' --out retracted\n\n\
    Removes the records from the ledger, revokes every passport that carries one (reason `corrected`), and\n\
    re-signs each affected person who still has doses with this facility's key. A facility may retract only\n\
    records of doses it gave; other ids are reported as unknown. Writes DIR/passports.jsonl (the re-issued\n\
    passports), DIR/revoked.csv, DIR/rejected.csv (empty) and DIR/summary.json. Interrupted? Run the same\n\
    command again: it finishes the work without revoking or re-issuing anything twice.")]
pub(super) struct RetractArgs {
    /// The facility's private key: PKCS#8 PEM (ECDSA P-256, or RSA-2048+ which signs PS256), or
    /// a pkcs11: URI of a key in a token (SPEC §10).
    #[arg(long, value_name = "K")]
    key: PathBuf,
    /// The facility's DSC (PEM or DER); must match the key and be valid at --at.
    #[arg(long, value_name = "C")]
    cert: PathBuf,
    /// chain.pem (the DSC followed by its CA); checked to start with --cert.
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,
    /// A record id to retract (repeatable).
    #[arg(long = "record-id", value_name = "ID", required_unless_present = "input", conflicts_with = "input")]
    record_ids: Vec<String>,
    /// A file of record ids, one per line (blank lines, `#` comments and a `record_id` header skipped).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Retract any facility's records, as the Ministry (the re-issued passports are still
    /// signed with --key); without it, only records of doses this facility gave.
    #[arg(long)]
    ministry: bool,
    /// Why (kept in the audit log).
    #[arg(long, value_name = "TEXT", default_value = "retracted by the facility")]
    reason: String,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Database: sqlite://FILE or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL", default_value = store::DEFAULT_DB_URL, env = "VAXPASS_DB")]
    db: String,
    /// The deployment secret (the one the passports were signed with).
    #[arg(long, value_name = "FILE", default_value = "vaxpass.secret", env = "VAXPASS_SECRET")]
    secret: PathBuf,
    /// The signing clock, RFC 3339; default: now.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_time)]
    at: Option<OffsetDateTime>,
    /// Print the answer as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Reads record ids from a file.
fn read_ids(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .filter(|(i, l)| !(*i == 0 && *l == "record_id"))
        .map(|(_, l)| l.to_owned())
        .collect();
    Ok(ids)
}

struct RetractSink {
    run_id: String,
    store: Box<dyn Store>,
    passports: PassportFile,
}

impl BatchSink for RetractSink {
    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut self.store
    }

    fn rejected(&mut self, _: &Rejection) -> Result<(), GateError> {
        Err(GateError::Invariant("a retraction rejects no rows"))
    }

    fn signed(&mut self, passports: Vec<SignedPassport>, _fresh: Vec<bool>) -> Result<(), GateError> {
        self.passports.write(passports)
    }
}

pub(super) fn run(args: RetractArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let ids = match &args.input {
        Some(p) => read_ids(p)?,
        None => args.record_ids.clone(),
    };
    if ids.len() > MAX_RECORDS {
        bail!("{} record ids: a retraction takes at most {MAX_RECORDS}", ids.len());
    }
    let signer = gate::FacilitySigner::load(&args.key, &args.cert, args.chain.as_deref(), now.unix_timestamp())?;
    let facility = gate::SigningFacility::new(signer, load_secret(&args.secret)?, now);
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let p = tmp(&args.out, name);
        Ok(BufWriter::new(create_private_file(&p).with_context(|| format!("{}: cannot create", p.display()))?))
    };
    let mut rejected = csv::Writer::from_writer(create("rejected.csv")?);
    rejected.write_record(["record_id", "reason", "detail", "suggestion"])?;
    let mut sink = RetractSink {
        run_id: gate::retraction_run_id(
            if args.ministry { "ministry" } else { &facility.signer.facility_code },
            &ids,
            &args.reason,
        ),
        store: store::open(&args.db).with_context(|| format!("opening the database {}", args.db))?,
        passports: PassportFile::start(create("passports.jsonl")?, None)
            .context("starting the passports.jsonl writer")?,
    };
    let scope =
        if args.ministry { RetractScope::Ministry } else { RetractScope::Facility(&facility.signer.facility_code) };
    let outcome = gate::retract(&ids, &args.reason, scope, &facility, &mut sink)?;
    sink.store.record_run_counts(
        &sink.run_id,
        &crate::corrections::run_counts(&facility.signer.facility_code, &outcome.tally()),
    )?;
    let answer = serde_json::to_string(&outcome)?;
    let rejected = rejected.into_inner().map_err(|e| anyhow::anyhow!("writing rejected.csv: {e}"))?;
    let passports = sink.passports.finish().map_err(sink_error)?;
    finish_outputs(&args.out, rejected, passports, &outcome.revoked, &answer, &create)?;
    let text = if args.json {
        format!("{answer}\n")
    } else if outcome.retracted == 0 {
        format!(
            "nothing retracted: none of the {} record ids is a dose this facility gave ({} unknown)\n",
            ids.len(),
            outcome.unknown.len()
        )
    } else {
        format!(
            "{} records retracted: {} passports revoked, {} re-issued, {} ids unknown\noutputs in {}\n",
            outcome.retracted,
            outcome.revoked.len(),
            outcome.reissued.len(),
            outcome.unknown.len(),
            args.out.display()
        )
    };
    super::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
