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
use super::{GateError, Rejection, people};
use crate::ledger::{Ledger, SignedPassport};
use crate::passport;
use crate::pki::SignatureAlgorithm;
use crate::secret::DerivationKey;

/// Default passport lifetime: 365 days (SPEC §3; Decision 5772: valid 12 months).
pub(super) const PASSPORT_LIFETIME_SECS: i64 = 365 * 86_400;

/// Default persons signed per round trip to the sink (one database transaction). The
/// identity-hash index takes keys in random order, so each transaction rewrites most of the
/// index pages it touches: 32 768 passports per transaction measured 1.8× cheaper per
/// passport than 4 096 at 1 million persons. A killed run loses at most two chunks of signing.
pub const PERSONS_PER_COMMIT: usize = 32_768;

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
}

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
        }
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
/// Memory: the accepted rows (about 80 bytes each plus the record id) and one UVCI per
/// person are held until signing, because a person's rows may be anywhere in the file;
/// rejected rows go straight to the sink.
pub fn run<R: Read + Send>(
    doses: DoseReader<R>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
) -> Result<Summary, GateError> {
    let today = facility.now.date();
    let mut summary = Summary::default();
    let mut clock = std::time::Instant::now();
    let mut lap = |summary: &mut Summary, phase: &'static str| {
        let now = std::time::Instant::now();
        summary.phases.push((phase, now - clock));
        summary.phase_peaks.push(peak_rss());
        clock = now;
    };
    let (accepted, identities) = check_rows(doses, registry, today, sink, &mut summary)?;
    lap(&mut summary, "read and check rows");
    // From the first read of the ledger to the last write, this run holds it alone.
    let recorded = people::from_batch(accepted, registry, &identities, facility, sink, &mut summary).and_then(|work| {
        lap(&mut summary, "merge with the ledger");
        people::sign_and_record(work, facility, None, sink, &mut summary)
    });
    let unlocked = sink.ledger().unlock_runs().map_err(|e| GateError::sink("releasing the ledger", e));
    let (_, writer_busy) = recorded?;
    unlocked?;
    lap(&mut summary, "sign and record");
    summary.phases.push(("  of which the writer was busy recording", writer_busy));
    summary.phase_peaks.push(peak_rss());
    Ok(summary)
}

/// The first phase of a run: every row of `doses` parsed and checked on its own (SPEC §5 up
/// to `BAD_DATE`; the per-person checks come with the ledger), rejections counted and handed
/// to the sink in file order. Returns the accepted rows and the first identity each person
/// was typed with.
fn check_rows<R: Read + Send>(
    mut doses: DoseReader<R>,
    registry: Option<&Registry>,
    today: time::Date,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<(Vec<AcceptedRow>, HashMap<PersonKey, RowIdentity>), GateError> {
    let mut accepted = Vec::new();
    let mut identities: HashMap<PersonKey, RowIdentity> = HashMap::new();
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
            let checked: Vec<_> = block
                .into_par_iter()
                .enumerate()
                .map(|(i, raw)| match raw {
                    RawRow::Record(record) => {
                        parser.parse(&record).and_then(|row| check_row(&row, first + i as u64, registry, today))
                    }
                    RawRow::Unreadable(r) => Err(r),
                })
                .collect();
            outcome = checked.into_iter().try_for_each(|c| match c {
                Ok((acc, identity)) => {
                    if let Some(identity) = identity {
                        identities.entry(acc.person.clone()).or_insert(identity);
                    }
                    accepted.push(acc);
                    Ok(())
                }
                Err(r) => reject(summary, &r, sink),
            });
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver (on an error above) stops the reader at its next block.
        let read = reader.join().map_err(|_| GateError::Invariant("the reader thread panicked"))?;
        outcome.and(read)
    })?;
    Ok((accepted, identities))
}

/// Counts a rejected row and hands it to the sink.
pub(super) fn reject(summary: &mut Summary, r: &Rejection, sink: &mut dyn BatchSink) -> Result<(), GateError> {
    summary.rejected_rows += 1;
    *summary.by_reason.entry(r.reason.as_str().to_owned()).or_default() += 1;
    sink.rejected(r)
}
