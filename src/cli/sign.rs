//! `vaxpass sign`: a health station's batch signing (SPEC §4–§6).

use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use time::OffsetDateTime;

use crate::gate::output::{create_private_file, csv_safe_cell};
use crate::gate::{
    self, BatchSink, DerivationKey, DoseReader, FacilitySigner, GateError, Registry, Rejection, SignedPassport,
    SigningFacility, Summary,
};
use crate::ledger::Ledger;
use crate::render::{QrFormat, render_qr};
use crate::store::{self, BatchRecord, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Qr {
    Png,
    Svg,
    None,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Example (the development facility 01001):\n  \
    vaxpass gen --persons 1000 --out data\n  \
    vaxpass sign --key keys-example/facility-01001/key.pem --cert keys-example/facility-01001/cert.pem \\\n    \
    --input data/doses.csv --registry data/registry.csv --out signed\n\n\
    Writes DIR/passports.jsonl, DIR/rejected.csv and DIR/summary.json. Every input row ends in exactly one of\n\
    the first two. Interrupted? Run the same command again: passports already signed (kept in --db) are\n\
    reused, never signed twice.\n\n\
    rejected.csv is safe to open in a spreadsheet: a cell that would begin with = + - @ ' a tab or a carriage\n\
    return is written with one ' in front (OWASP); drop that first ' to get the value (record id -5 is '-5).\n\
    Outputs, QR images and a new database are created readable by their owner only (0600).\n\n\
    A key in a USB token or HSM (SPEC §10) is given as an RFC 7512 URI; each signing thread gets a session:\n  \
    vaxpass sign --key 'pkcs11:token=BachMai;object=dsc?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin' \\\n    \
    --cert dsc.pem --input data/doses.csv --registry data/registry.csv --out signed --jobs 2")]
pub(super) struct SignArgs {
    /// The facility's private key: PKCS#8 PEM (ECDSA P-256, or RSA-2048+ which signs PS256), or
    /// a pkcs11: URI of a key in a token (SPEC §10).
    #[arg(long, value_name = "K")]
    key: PathBuf,
    /// The facility's DSC (PEM or DER); must match the key and be valid now.
    #[arg(long, value_name = "C")]
    cert: PathBuf,
    /// chain.pem (the DSC followed by its CA); checked to start with --cert.
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,
    /// doses.csv exported by the vaccination platform (SPEC §4).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// registry.csv, the population registry extract; without it only offline checks run.
    #[arg(long, value_name = "FILE")]
    registry: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Database: sqlite://FILE or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL", default_value = store::DEFAULT_DB_URL, env = "VAXPASS_DB")]
    db: String,
    /// The deployment secret deriving UVCIs, claim codes and identity hashes; created
    /// (32 random bytes, mode 0600) if missing. Keep it with the database.
    #[arg(long, value_name = "FILE", default_value = "vaxpass.secret", env = "VAXPASS_SECRET")]
    secret: PathBuf,
    /// Also write a QR image per passport into DIR/qr/ (slower: ~1–8 ms per image).
    #[arg(long, value_enum, default_value_t = Qr::None)]
    qr: Qr,
    /// Leave the earlier doses out of the passport (claim −65537).
    #[arg(long)]
    no_history: bool,
    /// Persons signed per database transaction. Smaller loses less work when a run is
    /// killed and holds less in memory; larger writes a large database faster. Default: the
    /// memory budget / 48 KiB, between 32768 and 131072 (87381 at the default 4GiB).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    commit_every: Option<u32>,
    /// Signing threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// What the run may hold in memory (e.g. 1.5GiB, 800MiB): accepted rows beyond a third
    /// of it are sorted into temporary files (0600, removed at once) in DIR, and a registry
    /// larger than a quarter of it is read from its file rather than held.
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = parse_size)]
    memory_budget: u64,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The signing clock (`iat`, and what "now" means for the checks), RFC 3339; default: now.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_time)]
    at: Option<OffsetDateTime>,
    /// Print `progress DONE TOTAL` on standard error after each committed chunk (for tests and
    /// scripts that act on progress, such as the kill-and-resume tests).
    #[arg(long, hide = true)]
    progress_lines: bool,
    /// Print how long each phase took (loading the registry, reading and checking rows,
    /// grouping, signing and recording) to standard error.
    #[arg(long)]
    timings: bool,
}

/// A size in bytes: a number, optionally with a fraction, then an optional unit (B, KiB,
/// MiB, GiB, TiB, or KB, MB, GB, TB in powers of 1000; K, M, G, T are binary).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size such as 1.5GiB or 800MiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(format!("{text:?}: unknown unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")),
    };
    let bytes = value * scale;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("{text:?}: a size of at least one byte"));
    }
    Ok(bytes as u64)
}

/// Loads the deployment secret, creating it (0600) on first use.
pub(super) fn load_secret(path: &Path) -> anyhow::Result<DerivationKey> {
    let (key, created) = DerivationKey::load_or_create(path)?;
    if created {
        eprintln!("created the deployment secret {}", path.display());
    }
    Ok(key)
}

/// Batch id: the signing facility and the input file's content (SHA-256), so that re-running
/// the same command continues the same batch, and another week's file, even one of the same
/// length at the same path, is another batch. Reading the file once more costs about 0.3 s
/// for a million persons' 2 million rows.
fn batch_id(facility_code: &str, input: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut file = File::open(input).with_context(|| format!("{}: cannot open", input.display()))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(facility_code.as_bytes());
    ctx.update(b"|");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("{}: cannot read", input.display()))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish().as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

struct FileSink {
    run_id: String,
    rejected: csv::Writer<BufWriter<File>>,
    passports: PassportFile,
    store: Box<dyn Store>,
    batch: BatchRecord,
    now: i64,
    bar: Option<indicatif::ProgressBar>,
    progress_lines: bool,
}

pub(super) fn sink_error(e: impl Into<crate::gate::Cause>) -> GateError {
    GateError::sink("writing the outputs", e)
}

/// Writes `passports.jsonl` (and the QR images) on a thread of its own, so that encoding
/// JSON and writing files overlap with the database's commit of the next chunk. A chunk
/// reaches it only after the database committed it.
pub(super) struct PassportFile {
    tx: Option<std::sync::mpsc::SyncSender<Vec<SignedPassport>>>,
    thread: Option<std::thread::JoinHandle<Result<File, GateError>>>,
}

impl PassportFile {
    pub(super) fn start(mut out: BufWriter<File>, qr: Option<(QrFormat, PathBuf)>) -> std::io::Result<PassportFile> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<SignedPassport>>(1);
        let thread = std::thread::Builder::new().name("vaxpass-files".into()).spawn(move || {
            for chunk in rx {
                for p in &chunk {
                    serde_json::to_writer(&mut out, p).map_err(sink_error)?;
                    out.write_all(b"\n").map_err(sink_error)?;
                    if let Some((format, dir)) = &qr {
                        let ext = if *format == QrFormat::Png { "png" } else { "svg" };
                        let name: String =
                            p.uvci.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                        let bytes = render_qr(&p.hc1, *format).map_err(sink_error)?;
                        create_private_file(&dir.join(format!("{name}.{ext}")))
                            .and_then(|mut f| f.write_all(&bytes))
                            .map_err(sink_error)?;
                    }
                }
            }
            out.into_inner().map_err(|e| GateError::sink("writing passports.jsonl", e.into_error()))
        })?;
        Ok(PassportFile { tx: Some(tx), thread: Some(thread) })
    }

    pub(super) fn write(&mut self, passports: Vec<SignedPassport>) -> Result<(), GateError> {
        match &self.tx {
            Some(tx) if tx.send(passports).is_ok() => Ok(()),
            // The thread stopped on an error: report it.
            _ => {
                self.finish().and(Err(GateError::Sink { context: "the passports.jsonl writer stopped", source: None }))
            }
        }
    }

    /// Waits for everything to be written and returns the file.
    pub(super) fn finish(&mut self) -> Result<File, GateError> {
        self.tx = None;
        let thread = self.thread.take().ok_or(GateError::Invariant("passports.jsonl closed twice"))?;
        thread.join().map_err(|_| GateError::Invariant("the passports.jsonl writer thread panicked"))?
    }
}

impl BatchSink for FileSink {
    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut self.store
    }

    fn rejected(&mut self, r: &Rejection) -> Result<(), GateError> {
        // Commune staff open rejected.csv in a spreadsheet: no cell may run as a formula.
        let cells = [r.record_id.as_str(), r.reason.as_str(), &r.detail, &r.suggestion].map(csv_safe_cell);
        self.rejected.write_record(cells.iter().map(|c| c.as_bytes())).map_err(sink_error)
    }

    // The gate recorded the chunk in the database first: once committed, a killed run finds it.
    fn signed(&mut self, passports: Vec<SignedPassport>, _fresh: Vec<bool>) -> Result<(), GateError> {
        self.passports.write(passports)
    }

    fn progress(&mut self, done: u64, total: u64) {
        if self.progress_lines {
            eprintln!("progress {done} {total}");
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
        self.batch.persons_done = done;
        self.batch.persons_total = total;
        // Progress is advisory; a failure here must not stop signing.
        let _ = self.store.save_batch(&self.batch, self.now);
    }
}

pub(super) fn tmp(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.partial"))
}

pub(super) fn run(args: SignArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    // Everything that can be refused is checked before anything is written: the facility's
    // key and certificate, then the inputs' headers; the secret and outputs come after.
    let signer = FacilitySigner::load(&args.key, &args.cert, args.chain.as_deref(), now.unix_timestamp())?;
    if let Some(jobs) = args.jobs {
        if jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        // Only fails if a pool was already built, which a CLI run never does.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(jobs).build_global();
    }
    let registry_clock = std::time::Instant::now();
    let registry = match &args.registry {
        Some(p) => Some(Registry::open(p, args.memory_budget / 4)?),
        None => None,
    };
    let registry_time = registry_clock.elapsed();
    let registry_peak = gate::peak_rss();
    let input = File::open(&args.input).with_context(|| format!("{}: cannot open", args.input.display()))?;
    let reader = DoseReader::new(std::io::BufReader::with_capacity(1 << 20, input), &args.input.display().to_string())?;
    let facility = SigningFacility {
        include_history: !args.no_history,
        persons_per_commit: args
            .commit_every
            .map_or_else(|| gate::persons_per_commit(args.memory_budget), |n| n as usize),
        memory_budget: args.memory_budget,
        spill_dir: args.out.clone(),
        ..SigningFacility::new(signer, load_secret(&args.secret)?, now)
    };

    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    let qr = match args.qr {
        Qr::None => None,
        Qr::Png | Qr::Svg => {
            let dir = args.out.join("qr");
            std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
            Some((if args.qr == Qr::Png { QrFormat::Png } else { QrFormat::Svg }, dir))
        }
    };
    let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let p = tmp(&args.out, name);
        Ok(BufWriter::with_capacity(
            1 << 20,
            create_private_file(&p).with_context(|| format!("{}: cannot create", p.display()))?,
        ))
    };
    let mut rejected = csv::Writer::from_writer(create("rejected.csv")?);
    rejected.write_record(["record_id", "reason", "detail", "suggestion"])?;
    let batch = BatchRecord {
        batch_id: batch_id(&facility.signer.facility_code, &args.input)?,
        facility_code: facility.signer.facility_code.clone(),
        status: "running".into(),
        persons_total: 0,
        persons_done: 0,
        summary: None,
        error: None,
    };
    let mut sink = FileSink {
        run_id: batch.batch_id.clone(),
        rejected,
        passports: PassportFile::start(create("passports.jsonl")?, qr)
            .context("starting the passports.jsonl writer")?,
        store: store::open(&args.db).with_context(|| format!("opening the database {}", args.db))?,
        batch,
        now: now.unix_timestamp(),
        bar: (std::io::stderr().is_terminal() && !args.progress_lines).then(|| indicatif::ProgressBar::new(0)),
        progress_lines: args.progress_lines,
    };
    let summary = gate::run(reader, registry.as_ref(), &facility, &mut sink)?;
    if let Some(bar) = &sink.bar {
        bar.finish_and_clear();
    }

    let summary_json = serde_json::to_string_pretty(&summary)?;
    let rejected = sink.rejected.into_inner().map_err(|e| anyhow::anyhow!("writing rejected.csv: {e}"))?;
    let passports = sink.passports.finish()?;
    finish_outputs(&args.out, rejected, passports, &summary.revoked_uvcis, &summary_json, &create)?;
    sink.batch.status = "done".into();
    sink.batch.summary = Some(summary_json.clone());
    sink.store.record_run_counts(
        &sink.run_id,
        &crate::corrections::run_counts(&facility.signer.facility_code, &summary.tally()),
    )?;
    sink.store.save_batch(&sink.batch, now.unix_timestamp())?;

    if args.timings {
        let mut t = format!(
            "{:>8.2} s  {:<44} peak RSS so far {:>6} MiB\n",
            registry_time.as_secs_f64(),
            "load the registry",
            registry_peak >> 20
        );
        if summary.spilled_runs > 0 {
            t.push_str(&format!("          rows spilled to disk in {} sorted runs\n", summary.spilled_runs));
        }
        for (i, (phase, d)) in summary.phases.iter().enumerate() {
            match summary.phase_peaks.get(i) {
                Some(&peak) if peak > 0 => t.push_str(&format!(
                    "{:>8.2} s  {phase:<44} peak RSS so far {:>6} MiB\n",
                    d.as_secs_f64(),
                    peak >> 20
                )),
                _ => t.push_str(&format!("{:>8.2} s  {phase}\n", d.as_secs_f64())),
            }
        }
        eprint!("{t}");
    }
    if args.json {
        super::write_stdout(format!("{}\n", serde_json::to_string(&summary)?).as_bytes())?;
    } else {
        super::write_stdout(human(&summary, &args.out).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes a run's outputs durable and puts them in place: `rejected.csv` and
/// `passports.jsonl` (written as `.NAME.partial` meanwhile), `revoked.csv` and
/// `summary.json`. Durable before they replace anything, and the old summary goes first: a
/// kill between the renames leaves no summary beside mixed outputs, so the run is visibly
/// unfinished.
pub(super) fn finish_outputs(
    out: &Path,
    rejected: BufWriter<File>,
    passports: File,
    revoked: &[String],
    summary_json: &str,
    create: &dyn Fn(&str) -> anyhow::Result<BufWriter<File>>,
) -> anyhow::Result<()> {
    let rejected = rejected.into_inner().map_err(|e| anyhow::anyhow!("writing rejected.csv: {e}"))?;
    rejected.sync_all().context("writing rejected.csv")?;
    passports.sync_all().context("writing passports.jsonl")?;
    let mut csv = csv::Writer::from_writer(create("revoked.csv")?);
    csv.write_record(["uvci", "reason"])?;
    for uvci in revoked {
        csv.write_record([csv_safe_cell(uvci).as_bytes(), b"corrected"])?;
    }
    let revoked_file = csv.into_inner().map_err(|e| anyhow::anyhow!("writing revoked.csv: {e}"))?;
    let revoked_file = revoked_file.into_inner().map_err(|e| anyhow::anyhow!("writing revoked.csv: {e}"))?;
    revoked_file.sync_all().context("writing revoked.csv")?;
    let mut summary = create("summary.json")?;
    summary.write_all(format!("{summary_json}\n").as_bytes()).context("writing summary.json")?;
    let summary = summary.into_inner().map_err(|e| anyhow::anyhow!("writing summary.json: {e}"))?;
    summary.sync_all().context("writing summary.json")?;
    match std::fs::remove_file(out.join("summary.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).context("replacing summary.json"),
        _ => {}
    }
    for name in ["passports.jsonl", "rejected.csv", "revoked.csv", "summary.json"] {
        std::fs::rename(tmp(out, name), out.join(name))
            .with_context(|| format!("{}: cannot write", out.join(name).display()))?;
    }
    Ok(())
}

fn human(s: &Summary, out: &Path) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} rows: {} signed into {} passports, {} rejected",
        s.input_rows, s.signed_rows, s.passports, s.rejected_rows
    );
    if s.reused > 0 {
        let _ = writeln!(t, "  ({} passports were already current and reused)", s.reused);
    }
    if s.revoked + s.superseded > 0 {
        let _ = writeln!(
            t,
            "  earlier passports: {} revoked (they carried a corrected dose, name or birth date; see revoked.csv), \
             {} superseded (still valid)",
            s.revoked, s.superseded
        );
    }
    let mut reasons: Vec<(&String, &u64)> = s.by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (code, n) in reasons {
        let _ = writeln!(t, "  {n:>9}  {code}");
    }
    let _ = writeln!(t, "outputs in {}", out.display());
    t
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("800MiB"), Ok(800 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("96KiB"), Ok(96 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err() && parse_size("0").is_err() && parse_size("1.5PiB").is_err());
    }
}
