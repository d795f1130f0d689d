//! The signing gate (SPEC §4–§5): `doses.csv` and `registry.csv` rows → checks in SPEC order →
//! persons and their dose series → signed passports, pushed into a [`BatchSink`]. Every input
//! row ends in exactly one place: a passport or one [`Rejection`].
//!
//! The gate knows nothing of HTTP, SQL or output file formats: it reads and records the dose
//! ledger through [`crate::ledger::Ledger`], and its sink writes the outputs (files for the
//! CLI, the batch's listing for the service).

mod batch;
mod checks;
pub(crate) mod identity;
pub(crate) mod names;
pub(crate) mod output;
mod people;
mod registry;
mod rows;
mod signer;
mod spill;

pub use crate::ledger::{MIN_DOSE_INTERVAL_DAYS, SignedPassport};
pub use crate::secret::{DerivationKey, SealError};
pub use batch::{
    BatchSink, DEFAULT_MEMORY_BUDGET, MAX_PERSONS_PER_COMMIT, PERSONS_PER_COMMIT, SigningFacility, Summary, peak_rss,
    persons_per_commit, run,
};
pub use checks::{PROGRAMME_START, PersonKey};
pub use people::{RetractScope, Retraction, retract, retraction_run_id};
pub use registry::{Registry, RegistryPerson};
pub use rows::{DoseReader, DoseRow};
pub use signer::{FacilitySigner, ISSUER, SignerError};

use serde::Serialize;

/// Why a row was not signed: the codes of SPEC §5, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    /// The row cannot be parsed.
    BadRow,
    /// No identity number.
    IdMissing,
    /// Not a CCCD, CMND or passport number, even after repairs.
    IdBadFormat,
    /// A CCCD whose province, century/sex or year digits disagree with the row.
    IdInconsistent,
    /// The registry has no such person.
    NotInRegistry,
    /// The registry person's name differs.
    NameMismatch,
    /// The registry person's date of birth differs.
    DobMismatch,
    /// The registry person's sex differs.
    SexMismatch,
    /// Not one of the licensed products.
    UnknownVaccine,
    /// An impossible vaccination date.
    BadDate,
    /// A repeat of an accepted dose.
    DuplicateDose,
    /// Less than 14 days after the previous accepted dose.
    DoseSequence,
}

impl RejectReason {
    /// The code as SPEC §5 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadRow => "BAD_ROW",
            RejectReason::IdMissing => "ID_MISSING",
            RejectReason::IdBadFormat => "ID_BAD_FORMAT",
            RejectReason::IdInconsistent => "ID_INCONSISTENT",
            RejectReason::NotInRegistry => "NOT_IN_REGISTRY",
            RejectReason::NameMismatch => "NAME_MISMATCH",
            RejectReason::DobMismatch => "DOB_MISMATCH",
            RejectReason::SexMismatch => "SEX_MISMATCH",
            RejectReason::UnknownVaccine => "UNKNOWN_VACCINE",
            RejectReason::BadDate => "BAD_DATE",
            RejectReason::DuplicateDose => "DUPLICATE_DOSE",
            RejectReason::DoseSequence => "DOSE_SEQUENCE",
        }
    }
}

/// One `rejected.csv` row: which record, why, and for mismatches the registry's value for
/// the commune team to confirm.
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `record_id`, or `line:<N>` when it could not be read.
    pub record_id: String,
    /// The reason code.
    pub reason: RejectReason,
    /// What exactly, without personal data.
    pub detail: String,
    /// The registry's value (name, birth date or sex) for mismatches; empty otherwise.
    pub suggestion: String,
}

impl std::fmt::Debug for Rejection {
    // The suggestion is personal data (a registry name or birth date).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rejection {{ record_id: {:?}, reason: {:?}, detail: {:?} }}",
            self.record_id, self.reason, self.detail
        )
    }
}

/// What stops a batch (as opposed to rejecting a row).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// An input file is unusable as a whole; names the file.
    #[error("{file}: {problem}")]
    Input {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// Reading the input failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The sink (output files, database) failed.
    #[error("{context}")]
    Sink {
        /// What was being done.
        context: &'static str,
        /// Why it failed, when another error says.
        #[source]
        source: Option<Cause>,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::pki::SignError),
    /// The signing facility's DSC is revoked in the store: whatever it signed now would
    /// verify as revoked, so nothing is signed.
    #[error("the signing certificate (kid {kid}) is revoked: nothing was signed; sign with a new key and certificate")]
    SignerRevoked {
        /// The revoked DSC's kid, base64.
        kid: String,
    },
    /// A state the gate itself should never reach; the run stops rather than lose rows.
    #[error("internal error: {0}")]
    Invariant(&'static str),
}

/// Any error that caused another, as the sinks and the ledger report them.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl GateError {
    pub(crate) fn input(file: &str, problem: impl Into<String>) -> GateError {
        GateError::Input { file: file.to_owned(), problem: problem.into() }
    }

    /// The sink failed at `context` because of `source`.
    pub fn sink(context: &'static str, source: impl Into<Cause>) -> GateError {
        GateError::Sink { context, source: Some(source.into()) }
    }
}

/// Reads a whole `doses.csv` and runs every row through the per-row checks (no signing, no
/// per-person checks), counting `(accepted, rejected)` rows. For fuzzing and the corpus
/// replay: the path a batch takes from bytes to a checked dose.
pub fn check_dose_rows(csv: &[u8], registry: Option<&Registry>, today: time::Date) -> Result<(u64, u64), GateError> {
    let mut reader = DoseReader::new(csv, "doses.csv")?;
    let (mut accepted, mut rejected, mut order) = (0, 0, 0);
    while let Some(row) = reader.next_row()? {
        match row.and_then(|r| checks::check_row(&r, order, registry, today)) {
            Ok(_) => accepted += 1,
            Err(_) => rejected += 1,
        }
        order += 1;
    }
    Ok((accepted, rejected))
}

#[cfg(test)]
mod tests;
