//! Storage: passports (UVCI unique), keyed hashes of identity numbers and claim codes, the
//! audit log of what each facility key signed, and batch progress. One schema
//! (`schema.sql`) and one behaviour on SQLite (the embedded default) and PostgreSQL (several
//! service instances sharing one database). It stores what it is given: no business rules.

mod postgres;
mod sqlite;

use std::collections::HashMap;

use crate::gate::SignedPassport;

/// The schema, applied idempotently when a store opens.
const SCHEMA: &str = include_str!("schema.sql");

/// Default database when `--db` is omitted: `vaxpass.db` in the working directory (SPEC §7).
pub const DEFAULT_DB_URL: &str = "sqlite://vaxpass.db";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://FILE` nor `postgres://…`.
    #[error("database URL {0:?} is neither sqlite://FILE nor postgres://…")]
    Url(String),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// A store thread could not be started.
    #[error("cannot start a database thread: {0}")]
    Thread(String),
}

/// Progress of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Derived from the input and the signing facility.
    pub batch_id: String,
    /// The signing facility.
    pub facility_code: String,
    /// `running` or `done`.
    pub status: String,
    /// Persons to sign.
    pub persons_total: u64,
    /// Persons signed so far.
    pub persons_done: u64,
    /// `summary.json`, once done.
    pub summary: Option<String>,
}

/// The operations vaxpass needs of a database.
pub trait Store: Send {
    /// `hc1` of the passports already stored under these UVCIs.
    fn hc1_by_uvci(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, StoreError>;
    /// Inserts newly signed passports with their audit entries, in one transaction. A UVCI
    /// already present (another run signed it meanwhile) is left as it is, and its stored
    /// `hc1` is returned, so that the caller hands out the passport the store holds.
    fn insert_passports(
        &mut self,
        batch_id: &str,
        facility_code: &str,
        at: i64,
        passports: &[&SignedPassport],
    ) -> Result<HashMap<String, String>, StoreError>;
    /// Creates or updates a batch's progress.
    fn save_batch(&mut self, batch: &BatchRecord, at: i64) -> Result<(), StoreError>;
    /// A batch's progress.
    fn batch(&mut self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError>;
    /// How many passports are stored (for tests and operators).
    fn passport_count(&mut self) -> Result<u64, StoreError>;
    /// `hc1` of one passport.
    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<String>, StoreError>;
    /// Passports of the person with this identity hash: (UVCI, claim-code hash, hc1).
    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError>;
    /// Records a revocation; revoking twice is a no-op.
    fn revoke(&mut self, revocation: &Revocation, at: i64) -> Result<(), StoreError>;
    /// Every revocation, oldest first.
    fn revocations(&mut self) -> Result<Vec<Revocation>, StoreError>;
    /// Stores a facility token's hash.
    fn add_facility_token(&mut self, token_hash: &[u8], facility_code: &str, at: i64) -> Result<(), StoreError>;
    /// The facility a token hash belongs to.
    fn facility_of_token(&mut self, token_hash: &[u8]) -> Result<Option<String>, StoreError>;
    /// Records what a service batch produced: passports (UVCI, record ids) and rejections.
    fn add_batch_results(
        &mut self,
        batch_id: &str,
        passports: &[(String, Vec<String>)],
        rejections: &[BatchRejection],
    ) -> Result<(), StoreError>;
    /// A service batch's passports and rejections, at most `limit` each.
    fn batch_results(&mut self, batch_id: &str, limit: u64) -> Result<BatchResults, StoreError>;
}

/// What a service batch produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResults {
    /// (UVCI, record ids) of each passport.
    pub passports: Vec<(String, Vec<String>)>,
    /// The rejected rows.
    pub rejections: Vec<BatchRejection>,
}

/// A rejected row as stored for `GET /api/v1/batches/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchRejection {
    /// `record_id`.
    pub record_id: String,
    /// The reason code.
    pub reason: String,
    /// What exactly.
    pub detail: String,
    /// The registry's value, for mismatches.
    pub suggestion: String,
}

/// A stored passport as the traveller lookup needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassport {
    /// `ci`.
    pub uvci: String,
    /// Hash of the claim code.
    pub claim_hash: Vec<u8>,
    /// The QR text.
    pub hc1: String,
}

impl std::fmt::Debug for StoredPassport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredPassport {{ uvci: {:?}, .. }}", self.uvci)
    }
}

/// A revocation: a passport by the SHA-256 of its UVCI (hex), or a facility DSC by kid
/// (base64), as in the revocation file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// Lowercase hex SHA-256 of the UVCI.
    Passport(String),
    /// kid, base64.
    Facility(String),
}

impl Revocation {
    fn kind(&self) -> &'static str {
        match self {
            Revocation::Passport(_) => "passport",
            Revocation::Facility(_) => "facility",
        }
    }

    fn value(&self) -> &str {
        match self {
            Revocation::Passport(v) | Revocation::Facility(v) => v,
        }
    }

    fn from_row(kind: &str, value: String) -> Option<Revocation> {
        match kind {
            "passport" => Some(Revocation::Passport(value)),
            "facility" => Some(Revocation::Facility(value)),
            _ => None,
        }
    }
}

/// Opens the store a URL names, creating the schema if needed.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(sqlite::SqliteStore::open(path)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::PostgresStore::open(url)?))
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
