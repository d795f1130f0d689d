//! Storage: passports (UVCI unique) and their status, the dose ledger, keyed hashes of
//! identity numbers and claim codes, the audit log of what each facility key signed or
//! revoked, and batch progress. One schema (`migrations/`) and one behaviour on SQLite (the
//! embedded default) and PostgreSQL (several service instances sharing one database). It
//! stores what it is given: no business rules.

mod postgres;
mod sqlite;

pub use postgres::instances::{LISTENER_NAME, SharedCounters, listen_revocations};

use std::collections::{HashMap, HashSet};

use crate::corrections::{CountRow, Kind, Queue, Request, RequestTiming, Status};
pub use crate::ledger::{LedgerChange, RunChanges};
use crate::ledger::{LedgerDose, PassportRecord, PassportStatus, PersonHash, SignedPassport};

/// The schema's forward migrations, in order: migration `n` (1-based) brings a database to
/// schema version `n`. Each runs once, in a transaction with the version it records; a
/// database made before versions were recorded is at version 1 (its tables match
/// `0001_initial.sql`, whose statements are all `IF NOT EXISTS`).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_ledger.sql"),
    include_str!("migrations/0003_corrections.sql"),
    include_str!("migrations/0004_instances.sql"),
    include_str!("migrations/0005_current_pointer.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The migrations a database at `version` still needs, as (version reached, SQL).
fn pending_migrations(version: u32) -> Result<impl Iterator<Item = (u32, &'static str)>, StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version, supported: SCHEMA_VERSION });
    }
    Ok(MIGRATIONS.iter().enumerate().skip(version as usize).map(|(i, sql)| (i as u32 + 1, *sql)))
}

/// A passport's status as read (SPEC §8.2): the stored `p.status`, except that a passport
/// stored 'current' which its holder's row (persons) no longer points at is superseded
/// (migration 0005). A correlated lookup by the persons key, not a join: for a chunk of
/// 32,768 persons PostgreSQL planned the join as a hash of the whole persons table, read
/// again for every chunk.
const STATUS_SQL: &str = "CASE WHEN p.status = 'current' AND EXISTS (SELECT 1 FROM persons s \
     WHERE s.person_hash = p.person_hash AND s.current_uvci <> p.uvci) THEN 'superseded' ELSE p.status END";

/// Records the schema version; created before anything else.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)";

/// Default database when `--db` is omitted: `vaxpass.db` in the working directory (SPEC §7).
pub const DEFAULT_DB_URL: &str = "sqlite://vaxpass.db";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://FILE` nor `postgres://…`.
    #[error("database URL {0:?} is neither sqlite://FILE nor postgres://…")]
    Url(String),
    /// SQLite failed (the cause in the message, not `source()`, so that it prints once).
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL failed (the cause and its own causes in the message, not `source()`: its
    /// "error connecting to server" says why only in its source).
    #[error("postgres: {}", crate::Chain(.0))]
    Postgres(::postgres::Error),
    /// A store thread could not be started.
    #[error("cannot start a database thread: {0}")]
    Thread(String),
    /// The database was written by a newer vaxpass.
    #[error(
        "the database has schema version {found}, newer than the {supported} this vaxpass knows: \
         use the vaxpass that wrote it, or a newer one"
    )]
    TooNew {
        /// The database's version.
        found: u32,
        /// The newest this binary knows.
        supported: u32,
    },
    /// A stored value vaxpass never writes.
    #[error("the database holds a value vaxpass does not write ({0})")]
    Corrupt(&'static str),
}

/// Progress of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Derived from the input and the signing facility.
    pub batch_id: String,
    /// The signing facility.
    pub facility_code: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Persons to sign.
    pub persons_total: u64,
    /// Persons signed so far.
    pub persons_done: u64,
    /// `summary.json`, once done.
    pub summary: Option<String>,
    /// Why a service batch failed, when vaxpass can say it without personal data (its
    /// instance stopped: its lease expired).
    pub error: Option<String>,
}

/// The operations vaxpass needs of a database.
pub trait Store: Send + ReportStore {
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
    ) -> Result<HashMap<String, String>, StoreError> {
        let change = LedgerChange {
            run_id: batch_id,
            facility_code,
            kid: "",
            at,
            passports: passports.to_vec(),
            ..LedgerChange::default()
        };
        self.apply(&change)
    }
    /// Applies one chunk of a run in one transaction (SPEC §8): ledger entries written and
    /// retracted, persons' sealed identities, new passports with their audit entries, and
    /// earlier passports superseded or revoked (a revocation is also recorded for the trust
    /// list). Returns, as [`Store::insert_passports`] does, the stored `hc1` of UVCIs that
    /// were already present.
    fn apply(&mut self, change: &LedgerChange<'_>) -> Result<HashMap<String, String>, StoreError>;
    /// Holds the ledger for one run at a time until this store is dropped (see
    /// [`crate::ledger::Ledger::lock_runs`]).
    fn lock_runs(&mut self) -> Result<(), StoreError>;
    /// Releases the run lock.
    fn unlock_runs(&mut self) -> Result<(), StoreError>;
    /// Ledger entries under these record ids.
    fn ledger_by_record(&mut self, record_ids: &[&str]) -> Result<Vec<LedgerDose>, StoreError>;
    /// Ledger entries of these persons.
    fn ledger_by_person(&mut self, persons: &[&[u8]]) -> Result<Vec<LedgerDose>, StoreError>;
    /// The sealed identities of these persons.
    fn sealed_persons(&mut self, persons: &[&[u8]]) -> Result<HashMap<PersonHash, Vec<u8>>, StoreError>;
    /// Every passport of these persons signed since the ledger exists, whatever its status,
    /// without its `hc1` (empty).
    fn passports_of_persons(&mut self, persons: &[&[u8]]) -> Result<Vec<PassportRecord>, StoreError>;
    /// The persons whose passports a run (batch or retraction) signed or changed, and the
    /// owners of the records it retracted: a run started again after a kill takes them up.
    fn persons_of_run(&mut self, run_id: &str) -> Result<Vec<PersonHash>, StoreError>;
    /// Records a retraction run already removed (found again when it is started again).
    fn retracted_by_run(&mut self, run_id: &str) -> Result<Vec<String>, StoreError>;
    /// What a run did to earlier passports: revoked UVCIs (sorted) and how many it superseded.
    fn run_changes(&mut self, run_id: &str) -> Result<RunChanges, StoreError>;
    /// Creates or updates a batch's progress. A leased batch (a service batch) that is no
    /// longer `running` is left as it is: a batch another instance marked failed after its
    /// lease expired stays failed.
    fn save_batch(&mut self, batch: &BatchRecord, at: i64) -> Result<(), StoreError>;
    /// Takes or renews the lease of a running batch for `owner` until `until` (Unix
    /// seconds); false if the batch is no longer running or another owner holds it.
    fn renew_lease(&mut self, batch_id: &str, owner: &str, until: i64) -> Result<bool, StoreError>;
    /// Marks every running batch whose lease ended before `at` failed with `error`;
    /// returns their ids.
    fn expire_leases(&mut self, at: i64, error: &str) -> Result<Vec<String>, StoreError>;
    /// A batch's progress.
    fn batch(&mut self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError>;
    /// How many passports are stored (for tests and operators).
    fn passport_count(&mut self) -> Result<u64, StoreError>;
    /// `hc1` and status of one passport.
    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<(String, PassportStatus)>, StoreError>;
    /// Passports of the person with this identity hash: (UVCI, claim-code hash, hc1).
    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError>;
    /// Records a revocation; revoking twice is a no-op.
    fn revoke(&mut self, revocation: &Revocation, at: i64) -> Result<(), StoreError>;
    /// Every revocation, oldest first.
    fn revocations(&mut self) -> Result<Vec<Revocation>, StoreError>;
    /// The kids (base64) of revoked facility DSCs alone: a run reads them, not the passport
    /// revocations, which number in the millions after a year of corrections.
    fn revoked_facilities(&mut self) -> Result<Vec<String>, StoreError>;
    /// Stores a facility token's hash, valid until `expires_at` (Unix seconds) if given.
    fn add_facility_token(
        &mut self,
        token_hash: &[u8],
        facility_code: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError>;
    /// The facility a token hash belongs to, if the token is neither revoked nor expired at `at`.
    fn facility_of_token(&mut self, token_hash: &[u8], at: i64) -> Result<Option<String>, StoreError>;
    /// Revokes one token (by hash) or every token of a facility; returns how many were live.
    fn revoke_tokens(&mut self, which: TokenSelector<'_>, at: i64) -> Result<u64, StoreError>;
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

/// Correction requests (SPEC §8.5) and the counters of the reports (SPEC §8.6).
pub trait ReportStore {
    /// Stores a new request.
    fn add_correction(&mut self, request: &Request) -> Result<(), StoreError>;
    /// One request.
    fn correction(&mut self, request_id: &str) -> Result<Option<Request>, StoreError>;
    /// A queue: the requests the filter selects, oldest due first.
    fn corrections(&mut self, queue: &Queue) -> Result<Vec<Request>, StoreError>;
    /// Closes an open request; false if it is not open (closed already, or absent).
    fn close_correction(
        &mut self,
        request_id: &str,
        status: Status,
        closed_at: i64,
        closed_by: &str,
        note_sealed: &[u8],
    ) -> Result<bool, StoreError>;
    /// The times of every request, for the reports (no personal field).
    fn request_timings(&mut self) -> Result<Vec<RequestTiming>, StoreError>;
    /// Records what a run counted, replacing what the same run recorded before (a run
    /// started again), and updates the running totals, in one transaction. The `passports`
    /// counter is the store's own: the passports stored under `run_id`, by facility.
    fn record_run_counts(&mut self, run_id: &str, rows: &[CountRow]) -> Result<(), StoreError>;
    /// The running totals per facility.
    fn facility_counts(&mut self) -> Result<Vec<CountRow>, StoreError>;
}

/// What replacing a run's `old` rows by its `new` rows changes in the running totals:
/// `(facility, counter, delta)`, zero deltas left out.
fn count_deltas(old: &[CountRow], new: &[CountRow]) -> Vec<(String, String, i64)> {
    let mut deltas: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for r in old {
        *deltas.entry((&r.facility_code, &r.counter)).or_default() -= to_i64(r.n);
    }
    for r in new {
        *deltas.entry((&r.facility_code, &r.counter)).or_default() += to_i64(r.n);
    }
    deltas.into_iter().filter(|(_, d)| *d != 0).map(|((f, c), d)| (f.to_owned(), c.to_owned(), d)).collect()
}

/// The columns of `correction_requests`, in [`request_row`]'s order.
const REQUEST_COLUMNS: &str =
    "request_id, code_hash, facility_code, kind, sealed, created_at, due_at, status, closed_at, closed_by, note_sealed";

/// The `WHERE … ORDER BY … LIMIT` of a queue, with `$n` placeholders from `first`, and its
/// parameters in order: facility, province bounds, now, limit.
fn queue_sql(queue: &Queue) -> (String, Vec<QueueParam>) {
    use crate::corrections::QueueStatus;
    let mut clauses = vec![match queue.status {
        QueueStatus::Open | QueueStatus::Overdue => "status = 'open'".to_owned(),
        QueueStatus::Closed => "status <> 'open'".to_owned(),
    }];
    let mut params = Vec::new();
    if let Some(f) = &queue.facility {
        params.push(QueueParam::Text(f.clone()));
        clauses.push(format!("facility_code = ${}", params.len()));
    }
    if let Some(p) = &queue.province {
        let (lo, hi) = province_range(p);
        params.push(QueueParam::Text(lo));
        params.push(QueueParam::Text(hi));
        clauses.push(format!("facility_code >= ${} AND facility_code < ${}", params.len() - 1, params.len()));
    }
    if queue.status == QueueStatus::Overdue {
        params.push(QueueParam::Int(queue.now));
        clauses.push(format!("due_at < ${}", params.len()));
    }
    params.push(QueueParam::Int(i64::from(queue.limit)));
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM correction_requests WHERE {} ORDER BY due_at, request_id LIMIT ${}",
        clauses.join(" AND "),
        params.len()
    );
    (sql, params)
}

/// A parameter of [`queue_sql`].
enum QueueParam {
    Text(String),
    Int(i64),
}

/// A request read back; `None` for what vaxpass never writes.
#[allow(clippy::too_many_arguments)]
fn request_row(
    request_id: String,
    code_hash: Vec<u8>,
    facility_code: String,
    kind: &str,
    sealed: Vec<u8>,
    created_at: i64,
    due_at: i64,
    status: &str,
    closed_at: Option<i64>,
    closed_by: Option<String>,
    note_sealed: Option<Vec<u8>>,
) -> Result<Request, StoreError> {
    Ok(Request {
        request_id,
        code_hash,
        facility_code,
        kind: Kind::parse(kind).ok_or(StoreError::Corrupt("correction kind"))?,
        sealed,
        created_at,
        due_at,
        status: Status::parse(status).ok_or(StoreError::Corrupt("correction status"))?,
        closed_at,
        closed_by,
        note_sealed,
    })
}

/// The province bounds of a queue filter, as a facility-code range `[lo, hi)`.
fn province_range(province: &str) -> (String, String) {
    (format!("{province}000"), format!("{province}999~"))
}

/// Which facility tokens to revoke.
#[derive(Debug, Clone, Copy)]
pub enum TokenSelector<'a> {
    /// One token, by its SHA-256.
    Hash(&'a [u8]),
    /// Every token of a facility.
    Facility(&'a str),
}

/// What a service batch produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResults {
    /// (UVCI, record ids, the holder's ledger key if the passport has one) of each passport.
    pub passports: Vec<(String, Vec<String>, Option<PersonHash>)>,
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
    /// Current, superseded or revoked.
    pub status: PassportStatus,
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

/// Every store is a ledger: the gate and retraction reach storage through
/// [`crate::ledger::Ledger`] only.
impl crate::ledger::Ledger for Box<dyn Store> {
    fn lock_runs(&mut self) -> Result<(), crate::ledger::LedgerError> {
        Ok(Store::lock_runs(self.as_mut())?)
    }
    fn unlock_runs(&mut self) -> Result<(), crate::ledger::LedgerError> {
        Ok(Store::unlock_runs(self.as_mut())?)
    }
    fn by_record(&mut self, record_ids: &[&str]) -> Result<Vec<LedgerDose>, crate::ledger::LedgerError> {
        Ok(self.ledger_by_record(record_ids)?)
    }
    fn by_person(&mut self, persons: &[&[u8]]) -> Result<Vec<LedgerDose>, crate::ledger::LedgerError> {
        Ok(self.ledger_by_person(persons)?)
    }
    fn sealed_persons(
        &mut self,
        persons: &[&[u8]],
    ) -> Result<HashMap<PersonHash, Vec<u8>>, crate::ledger::LedgerError> {
        Ok(Store::sealed_persons(self.as_mut(), persons)?)
    }
    fn passports_of(&mut self, persons: &[&[u8]]) -> Result<Vec<PassportRecord>, crate::ledger::LedgerError> {
        Ok(self.passports_of_persons(persons)?)
    }
    fn hc1_of(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, crate::ledger::LedgerError> {
        Ok(self.hc1_by_uvci(uvcis)?)
    }
    fn persons_of_run(&mut self, run_id: &str) -> Result<Vec<PersonHash>, crate::ledger::LedgerError> {
        Ok(Store::persons_of_run(self.as_mut(), run_id)?)
    }
    fn retracted_by_run(&mut self, run_id: &str) -> Result<Vec<String>, crate::ledger::LedgerError> {
        Ok(Store::retracted_by_run(self.as_mut(), run_id)?)
    }
    fn run_changes(&mut self, run_id: &str) -> Result<RunChanges, crate::ledger::LedgerError> {
        Ok(Store::run_changes(self.as_mut(), run_id)?)
    }
    fn revoked_signers(&mut self) -> Result<HashSet<String>, crate::ledger::LedgerError> {
        Ok(self.revoked_facilities()?.into_iter().collect())
    }
    fn apply(&mut self, change: &LedgerChange<'_>) -> Result<HashMap<String, String>, crate::ledger::LedgerError> {
        Ok(Store::apply(self.as_mut(), change)?)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        StoreError::Postgres(e)
    }
}

/// Opens the store a URL names, creating the schema if needed.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(sqlite::SqliteStore::open(path)?))
    } else if is_postgres(url) {
        Ok(Box::new(postgres::PostgresStore::open(url)?))
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}

/// Whether a database URL names PostgreSQL (shared by several instances).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Comma-separated record ids for the audit log.
fn audit_records(ids: &[&str]) -> String {
    ids.join(",")
}

/// The covered doses of a passport as stored (JSON).
fn covered_json(p: &SignedPassport) -> String {
    serde_json::to_string(&p.covered).unwrap_or_default()
}

/// A ledger entry read back; `None` for what vaxpass never writes.
fn ledger_row(record_id: String, person: Vec<u8>, facility_code: String, mp: &str, date: &str) -> Option<LedgerDose> {
    Some(LedgerDose { record_id, person, facility_code, dose: crate::ledger::parse_dose(date, mp)? })
}

/// Builds a `PassportRecord` from stored columns.
#[allow(clippy::too_many_arguments)]
fn passport_record(
    uvci: String,
    person: Vec<u8>,
    holder_hash: Option<Vec<u8>>,
    content_hash: Option<Vec<u8>>,
    doses: Option<String>,
    status: &str,
    kid: String,
    hc1: String,
    signed_at: i64,
) -> Result<PassportRecord, StoreError> {
    Ok(PassportRecord {
        uvci,
        person,
        holder_hash: holder_hash.unwrap_or_default(),
        content_hash: content_hash.unwrap_or_default(),
        doses: serde_json::from_str(doses.as_deref().unwrap_or("[]")).map_err(|_| StoreError::Corrupt("doses"))?,
        status: PassportStatus::parse(status).ok_or(StoreError::Corrupt("status"))?,
        kid,
        hc1,
        signed_at,
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
