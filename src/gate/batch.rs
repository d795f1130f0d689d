//! Running a batch: read and check every row, group persons, then sign their passports in
//! parallel, reusing passports the sink already has (a resumed or repeated run re-signs
//! nothing, so it ends with the same passports).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use rayon::prelude::*;

use serde::Serialize;
use time::OffsetDateTime;

use super::checks::{AcceptedRow, PersonKey, RowIdentity, check_row};
use super::registry::Registry;
use super::rows::{DoseReader, RawRow};
use super::signer::{FacilitySigner, ISSUER};
use super::spill::{BatchRow, RowSorter, SortedRows, Stored};
use super::{GateError, Rejection, people};
use crate::ledger::{Ledger, LedgerDose, SignedPassport};
use crate::passport;
use crate::pki::SignatureAlgorithm;
use crate::secret::DerivationKey;

/// Default passport lifetime: 365 days (SPEC §3; Decision 5772: valid 12 months).
pub(super) const PASSPORT_LIFETIME_SECS: i64 = 365 * 86_400;

/// Default persons signed per round trip to the sink (one database transaction), and the
/// least [`persons_per_commit`] gives. The identity-hash index takes keys in random order, so
/// each transaction rewrites most of the index pages it touches: 32 768 passports per
/// transaction measured 1.8× cheaper per passport than 4 096 at 1 million persons. A killed
/// run loses at most two chunks of signing. The service's uploads keep this size: a shorter
/// transaction holds the database's write lock for less time.
pub const PERSONS_PER_COMMIT: usize = 32_768;

/// The most persons per transaction [`persons_per_commit`] gives.
pub const MAX_PERSONS_PER_COMMIT: usize = 131_072;

/// Persons per transaction for a `vaxpass sign` run with `memory_budget`: the budget over
/// 48 KiB, between [`PERSONS_PER_COMMIT`] and [`MAX_PERSONS_PER_COMMIT`] (87 381 at the
/// default 4 GiB; 32 768 at 1.5 GiB and below, as before).
///
/// Why larger chunks: in a database that already holds a million persons, every transaction
/// rewrites nearly every page of the indexes that take random keys (UVCIs, identity hashes,
/// record ids), whatever its size, so fewer transactions write less. Measured with
/// `scripts/bench-follow-up 1000000` (2 cores): the SQLite follow-up's writer was busy 26.6 s
/// with 32 768 persons a chunk and 20.6 s with 131 072. The price is memory: three chunks are
/// in flight, about 6–8 KiB of peak memory per person of chunk (SQLite follow-up peak 740 MiB
/// at 32 768, 1,167 MiB at 87 381, 1,510 MiB at 131 072), so a chunk takes at most a sixth
/// of the budget.
pub fn persons_per_commit(memory_budget: u64) -> usize {
    let by_budget = usize::try_from(memory_budget / (48 << 10)).unwrap_or(usize::MAX);
    by_budget.clamp(PERSONS_PER_COMMIT, MAX_PERSONS_PER_COMMIT)
}

/// The signing facility: its key, DSC and code, loaded and checked once.
pub struct SigningFacility {
    /// Who signs: the facility's key, DSC and code.
    pub signer: FacilitySigner,
    /// The derivation key.
    pub secret: DerivationKey,
    /// `is` of every passport.
    pub issuer: String,
    /// Whether to write the dose history claim.
    pub include_history: bool,
    /// The signing time (`iat`).
    pub now: OffsetDateTime,
    /// Persons signed per round trip to the sink (one database transaction); at least 1.
    pub persons_per_commit: usize,
    /// What the run may hold in memory, in bytes: a third of it for the accepted rows, the
    /// rest for the registry's index, the chunks in flight and the allocator's slack. Rows
    /// beyond their share are sorted into runs on disk (issue #11 part 3).
    pub memory_budget: u64,
    /// Where rows beyond the budget go (files created 0600 and unlinked at once).
    pub spill_dir: std::path::PathBuf,
}

/// The default memory budget: 4 GiB. A first batch of 1 million persons (2.1 million rows)
/// holds about 160 MB of sorted rows, well inside a third of it, so it never touches disk.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

impl SigningFacility {
    /// A run of `signer` at `now` with the deployment's `secret` and the defaults: issuer
    /// [`ISSUER`], the dose history written, [`PERSONS_PER_COMMIT`] persons per transaction.
    pub fn new(signer: FacilitySigner, secret: DerivationKey, now: OffsetDateTime) -> SigningFacility {
        SigningFacility {
            signer,
            secret,
            issuer: ISSUER.to_owned(),
            include_history: true,
            now,
            persons_per_commit: PERSONS_PER_COMMIT,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            spill_dir: std::env::temp_dir(),
        }
    }

    /// Bytes of sorted rows held in memory before they go to disk: a third of the budget.
    pub(crate) fn rows_in_memory(&self) -> usize {
        usize::try_from(self.memory_budget / 3).unwrap_or(usize::MAX)
    }

    /// The passport algorithm the facility's key implies (SPEC §10): P-256 keys sign ES256,
    /// RSA keys PS256.
    pub(crate) fn algorithm(&self) -> passport::Algorithm {
        match self.signer.key.algorithm() {
            SignatureAlgorithm::Es256 => passport::Algorithm::Es256,
            SignatureAlgorithm::Ps256 => passport::Algorithm::Ps256,
        }
    }
}

impl std::fmt::Debug for SigningFacility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningFacility {{ facility_code: {:?} }}", self.signer.facility_code)
    }
}

/// Where a batch's results go. `Send`, because it is fed from a writer thread while the
/// next chunk is being signed.
pub trait BatchSink: Send {
    /// The run's identifier (a batch id, a retraction's id): the same when the same run is
    /// started again, so that it finds what it already did.
    fn run_id(&self) -> &str;
    /// The ledger the run reads and records into (SPEC §8).
    fn ledger(&mut self) -> &mut dyn Ledger;
    /// A rejected row.
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), GateError>;
    /// Passports of one chunk, in a stable order, once the ledger recorded them; `fresh[i]`
    /// says whether `passports[i]` was signed just now or was the person's current passport
    /// already. Owned, so that a sink can hand them on to another thread without copying.
    fn signed(&mut self, passports: Vec<SignedPassport>, fresh: Vec<bool>) -> Result<(), GateError>;
    /// Progress after each chunk: persons done of total.
    fn progress(&mut self, _done: u64, _total: u64) {}
}

/// The counts of `summary.json` (SPEC §6).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Rows read.
    pub input_rows: u64,
    /// Rows that went into a passport.
    pub signed_rows: u64,
    /// Rows rejected.
    pub rejected_rows: u64,
    /// Passports (persons).
    pub passports: u64,
    /// Rejected rows by reason code.
    pub by_reason: BTreeMap<String, u64>,
    /// Earlier passports this run revoked (SPEC §8.2).
    pub revoked: u64,
    /// Earlier passports this run superseded.
    pub superseded: u64,
    /// The UVCIs revoked, sorted (for `revoked.csv`).
    #[serde(skip)]
    pub revoked_uvcis: Vec<String>,
    /// Passports reused from an earlier run rather than signed now.
    #[serde(skip)]
    pub reused: u64,
    /// Sorted runs of rows written to disk because they exceeded the memory budget.
    #[serde(skip)]
    pub spilled_runs: u64,
    /// Wall time of each phase of the run, in order (for `--timings` and benchmarks).
    #[serde(skip)]
    pub phases: Vec<(&'static str, std::time::Duration)>,
    /// The process's peak resident memory (bytes) at the end of each phase of `phases`, where
    /// the system says (Linux `VmHWM`): where a run's memory goes.
    #[serde(skip)]
    pub phase_peaks: Vec<u64>,
}

/// The process's peak resident set so far (Linux `VmHWM`), in bytes; 0 where unknown.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl Summary {
    /// What the run did, as the Ministry's reports count it.
    pub fn tally(&self) -> crate::corrections::RunTally<'_> {
        crate::corrections::RunTally {
            signed_rows: self.signed_rows,
            rejected: &self.by_reason,
            retracted: 0,
            revoked: &self.revoked_uvcis,
        }
    }
}

/// Rows checked per parallel block: large enough to keep both cores busy, small enough
/// that memory is bounded by the accepted rows, not by the input file.
const CHECK_BLOCK: usize = 16_384;

/// Runs a batch over `doses`, checking against `registry` when given.
///
/// Memory: the accepted rows are held sorted by person, in memory up to a third of
/// `facility.memory_budget` and in sorted runs on disk beyond it (a person's rows may be
/// anywhere in the file); then the persons are merged, signed and recorded a chunk at a time.
/// Rejected rows go straight to the sink.
pub fn run<R: Read + Send>(
    doses: DoseReader<R>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
) -> Result<Summary, GateError> {
    let mut summary = Summary::default();
    // From the first read of the ledger (the rows' record ids, as they are checked) to the
    // last write, this run holds it alone.
    let locked = sink.ledger().lock_runs().map_err(|e| GateError::sink("reading or writing the ledger", e));
    let recorded = locked.and_then(|()| run_locked(doses, registry, facility, sink, &mut summary));
    let unlocked = sink.ledger().unlock_runs().map_err(|e| GateError::sink("releasing the ledger", e));
    recorded?;
    unlocked?;
    Ok(summary)
}

fn run_locked<R: Read + Send>(
    doses: DoseReader<R>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<(), GateError> {
    let mut clock = std::time::Instant::now();
    let mut lap = |summary: &mut Summary, phase: &'static str| {
        let now = std::time::Instant::now();
        summary.phases.push((phase, now - clock));
        summary.phase_peaks.push(peak_rss());
        clock = now;
    };
    let Intake { rows, facts } = check_rows(doses, registry, facility, sink, summary)?;
    lap(summary, "read and check rows");
    let mut plan = people::from_batch(&rows, facts, registry, facility, sink, summary)?;
    lap(summary, "plan persons against the ledger");
    let (_, writer_busy) = people::sign_and_record(&mut plan, facility, None, sink, summary, false)?;
    lap(summary, "merge, sign and record, chunk by chunk");
    summary.phases.push(("  of which the writer was busy recording", writer_busy));
    summary.phase_peaks.push(peak_rss());
    Ok(())
}

/// What the first phase of a run leaves: every accepted row sorted by person (in memory or
/// spilled), and the little the planning needs besides.
pub(super) struct Intake {
    /// The accepted rows, by person key then file order.
    pub rows: SortedRows,
    /// What else was learnt on the way.
    pub facts: IntakeFacts,
}

/// What the first phase learns of the accepted rows besides the rows.
pub(super) struct IntakeFacts {
    /// A fingerprint of each accepted row's record id, for finding repeated ids.
    pub fingerprints: Vec<u64>,
    /// Rows whose record id the ledger holds with other content, with that content.
    pub differs: Vec<(BatchRow, LedgerDose)>,
    /// Which registry persons have rows (one bit each).
    pub in_registry: Vec<u64>,
}

/// A record id's fingerprint: equal ids have equal fingerprints; equal fingerprints are
/// compared by their ids before a row is called a repeat.
pub(super) fn fingerprint(record_id: &str) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(record_id)
}

/// The first phase of a run: every row of `doses` parsed and checked on its own (SPEC §5 up
/// to `BAD_DATE`; the per-person checks come with the ledger), rejections counted and handed
/// to the sink in file order. The accepted rows are looked up in the ledger a block at a time
/// and sorted by person, within `facility`'s memory budget.
fn check_rows<R: Read + Send>(
    mut doses: DoseReader<R>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<Intake, GateError> {
    let today = facility.now.date();
    let mut sorter = RowSorter::new(facility.rows_in_memory(), facility.spill_dir.clone());
    let mut facts = IntakeFacts {
        fingerprints: Vec::new(),
        differs: Vec::new(),
        in_registry: vec![0u64; registry.map_or(0, |r| r.len().div_ceil(64))],
    };
    // One thread splits the file into rows, block by block; the pool parses and checks the
    // previous block meanwhile. Rows are accounted in file order.
    let parser = doses.parser();
    std::thread::scope(|scope| -> Result<(), GateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(2);
        let reader = std::thread::Builder::new()
            .name("vaxpass-reader".into())
            .spawn_scoped(scope, move || -> Result<(), GateError> {
                loop {
                    let mut block = Vec::with_capacity(CHECK_BLOCK);
                    while block.len() < CHECK_BLOCK {
                        match doses.next_raw()? {
                            Some(raw) => block.push(raw),
                            None => break,
                        }
                    }
                    if block.is_empty() || tx.send(block).is_err() {
                        return Ok(());
                    }
                }
            })
            .map_err(|source| GateError::Io { context: "cannot start the reader thread", source })?;
        let mut outcome = Ok(());
        for block in rx {
            let first = summary.input_rows;
            summary.input_rows += block.len() as u64;
            let checked: Vec<Result<Option<BatchRow>, Rejection>> = block
                .into_par_iter()
                .enumerate()
                .map(|(i, raw)| match raw {
                    RawRow::Record(record) => parser
                        .parse(&record)
                        .and_then(|row| check_row(&row, first + i as u64, registry, today))
                        .map(|(acc, identity)| batch_row(acc, identity, registry, facility)),
                    RawRow::Unreadable(r) => Err(r),
                })
                .collect();
            outcome = intake_block(checked, sink, summary, &mut sorter, &mut facts);
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver (on an error above) stops the reader at its next block.
        let read = reader.join().map_err(|_| GateError::Invariant("the reader thread panicked"))?;
        outcome.and(read)
    })?;
    summary.spilled_runs = sorter.runs() as u64;
    Ok(Intake { rows: sorter.finish(), facts })
}

/// An accepted row with its person's ledger key; `None` when the key cannot be derived.
fn batch_row(
    acc: AcceptedRow,
    identity: Option<RowIdentity>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
) -> Option<BatchRow> {
    let key_text = match (&acc.person, &identity) {
        (PersonKey::Registry(i), _) => registry?.person(*i)?.id_number,
        (PersonKey::Foreign(nat, no), _) => format!("F:{nat}:{no}"),
        (PersonKey::Offline(_), Some(ident)) => ident.id_number.clone(),
        (PersonKey::Offline(_), None) => return None,
    };
    let hash = <[u8; 16]>::try_from(facility.secret.id_hash(&key_text).as_slice()).ok()?;
    Some(BatchRow {
        hash,
        order: acc.order,
        person: acc.person,
        record_id: acc.record_id,
        facility_code: acc.facility_code,
        dose: acc.dose,
        identity,
        stored: Stored::New,
    })
}

/// Accounts one checked block: rejections to the sink, accepted rows looked up in the ledger
/// and sorted.
fn intake_block(
    checked: Vec<Result<Option<BatchRow>, Rejection>>,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
    sorter: &mut RowSorter,
    facts: &mut IntakeFacts,
) -> Result<(), GateError> {
    let mut accepted = Vec::with_capacity(checked.len());
    for c in checked {
        match c {
            Ok(Some(row)) => accepted.push(row),
            // A person without an identity would leave their rows in neither output: stop.
            Ok(None) => return Err(GateError::Invariant("a person's identity could not be derived")),
            Err(r) => reject(summary, &r, sink)?,
        }
    }
    if accepted.is_empty() {
        return Ok(());
    }
    let record_ids: Vec<&str> = accepted.iter().map(|r| r.record_id.as_str()).collect();
    let stored: HashMap<String, LedgerDose> = sink
        .ledger()
        .by_record(&record_ids)
        .map_err(|e| GateError::sink("reading or writing the ledger", e))?
        .into_iter()
        .map(|d| (d.record_id.clone(), d))
        .collect();
    drop(record_ids);
    for mut row in accepted {
        facts.fingerprints.push(fingerprint(&row.record_id));
        if let PersonKey::Registry(i) = row.person
            && let Some(word) = facts.in_registry.get_mut(i as usize / 64)
        {
            *word |= 1 << (i % 64);
        }
        if let Some(entry) = stored.get(&row.record_id) {
            let same = entry.person.as_slice() == row.hash
                && entry.dose.date == row.dose.date
                && entry.dose.vaccine.mp == row.dose.vaccine.mp;
            row.stored = if same { Stored::Same } else { Stored::Differs };
            if !same {
                facts.differs.push((row.clone(), entry.clone()));
            }
        }
        sorter.push(&row)?;
    }
    Ok(())
}

/// Counts a rejected row and hands it to the sink.
pub(super) fn reject(summary: &mut Summary, r: &Rejection, sink: &mut dyn BatchSink) -> Result<(), GateError> {
    summary.rejected_rows += 1;
    *summary.by_reason.entry(r.reason.as_str().to_owned()).or_default() += 1;
    sink.rejected(r)
}
