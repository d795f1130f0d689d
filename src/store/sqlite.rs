//! The embedded SQLite store (rusqlite, bundled).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    BatchRecord, BatchRejection, BatchResults, LedgerChange, Revocation, RunChanges, STATUS_SQL, Store, StoreError,
    StoredPassport, TokenSelector, VERSION_TABLE, audit_records, covered_json, ledger_row, passport_record,
    pending_migrations, to_i64,
};
use crate::ledger::{LedgerDose, PassportRecord, PassportStatus, PersonHash, iso};

mod reports;

pub(super) struct SqliteStore {
    conn: Connection,
    _checkpointer: Option<Checkpointer>,
    /// The database file's path (empty in memory), for the run lock beside it.
    path: String,
    /// `PATH.ledger-lock`, locked while a run holds the ledger; unlocked when dropped.
    run_lock: Option<std::fs::File>,
}

/// Copies the write-ahead log back into the database file from a connection on a thread of
/// its own, every 100 ms: the copy and its fsync then overlap with the writer's next
/// transactions instead of stalling it (SQLite otherwise checkpoints inside a commit).
/// The writer's own auto-checkpoint stays on as a backstop.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &str) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vaxpass-wal".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(std::time::Duration::from_millis(100))
                {
                    // PASSIVE never blocks the writer; a busy result just means "next time".
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Checkpointer { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    pub(super) fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let in_memory = path.is_empty() || path == ":memory:";
        if !in_memory {
            create_private_db_file(path)?;
        }
        let mut conn = Connection::open(path)?;
        // 16 KiB pages (only takes effect on a new database, before WAL): the indexes take
        // random keys, and fewer, larger pages mean fewer pages written per transaction
        // (measured 38 % cheaper batch inserts than 4 KiB at 1 million passports).
        conn.pragma_update(None, "page_size", 16384)?;
        // WAL: readers (the service) do not block the batch writer; NORMAL sync is durable
        // across process kills, which is what resumption needs.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A 256 MiB page cache: batch inserts touch pages all over the identity-hash index.
        // 1 GiB was no faster in the one run tried (1 M-person follow-up 55.6 s against 41.8 s).
        // The auto-checkpoint (every 4096 pages, 64 MiB of WAL) is a backstop for the
        // checkpointer thread.
        conn.pragma_update(None, "cache_size", -262_144)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4096)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        migrate(&mut conn)?;
        let checkpointer = if in_memory { None } else { Some(Checkpointer::start(path)?) };
        Ok(SqliteStore {
            conn,
            _checkpointer: checkpointer,
            path: if in_memory { String::new() } else { path.to_owned() },
            run_lock: None,
        })
    }
}

/// Creates a missing database file empty with mode 0600 before SQLite opens it: the
/// database holds identity hashes, claim-code hashes and passports, and SQLite would create
/// it 0644 under the usual umask 022. SQLite gives its `-wal` and `-shm` files the main
/// file's permissions (os_unix.c `findCreateFileMode`), so they are 0600 too. An existing
/// file keeps the mode its operator gave it.
fn create_private_db_file(path: &str) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // Reported as SQLite would report a file it cannot open, naming the file.
        Err(e) => Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("{path}: cannot create: {e}")),
        ))),
    }
}

/// Brings the schema to [`super::SCHEMA_VERSION`], refusing a newer database.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening one new file at once migrate one after the other.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(VERSION_TABLE)?;
    let version: Option<i64> = tx.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?;
    let version = u32::try_from(version.unwrap_or(0)).map_err(|_| StoreError::Corrupt("schema_version"))?;
    for (reached, sql) in pending_migrations(version)? {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i64::from(reached)])?;
    }
    tx.commit()?;
    Ok(())
}

/// `?,?,…` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

/// Keys a thousand at a time: one statement step per thousand index probes.
const PER_QUERY: usize = 1000;

impl SqliteStore {
    /// Runs `sql` (with one `IN ({})` list) over `keys` in groups, collecting `map`'s rows.
    fn query_in<K: rusqlite::ToSql + Ord + Clone, T>(
        &mut self,
        sql: &str,
        keys: &[K],
        map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        // Probed in key order: neighbouring probes then read neighbouring index pages
        // (a follow-up batch's reads at 1 million persons: 21.5 s in batch order).
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        let mut out = Vec::new();
        let tx = self.conn.transaction()?;
        for group in keys.chunks(PER_QUERY) {
            let mut stmt = tx.prepare_cached(&sql.replace("{}", &placeholders(group.len())))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(group), &map)?;
            for row in rows {
                out.push(row?);
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

fn ledger_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<LedgerDose>> {
    let mp: String = r.get(3)?;
    let date: String = r.get(4)?;
    Ok(ledger_row(r.get(0)?, r.get(1)?, r.get(2)?, &mp, &date))
}

const LEDGER_COLUMNS: &str = "record_id, person_hash, facility_code, mp, vaccinated_on";

impl Store for SqliteStore {
    fn lock_runs(&mut self) -> Result<(), StoreError> {
        if self.path.is_empty() || self.run_lock.is_some() {
            return Ok(());
        }
        // An advisory file lock beside the database: the kernel drops it when the process
        // dies, so a killed run never leaves the ledger locked.
        let path = format!("{}.ledger-lock", self.path);
        let io = |e: std::io::Error| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("{path}: {e}")),
            ))
        };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!("waiting for another run on this database to finish");
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        self.run_lock = Some(file);
        Ok(())
    }

    fn unlock_runs(&mut self) -> Result<(), StoreError> {
        // Closing the file releases its lock.
        self.run_lock = None;
        Ok(())
    }

    fn apply(&mut self, c: &LedgerChange<'_>) -> Result<HashMap<String, String>, StoreError> {
        let mut kept = HashMap::new();
        let tx = self.conn.transaction()?;
        {
            let mut audit = tx.prepare_cached(
                "INSERT INTO audit_log (at, facility_code, kid, action, uvci, batch_id, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut dose = tx.prepare_cached(
                "INSERT INTO doses (record_id, person_hash, facility_code, mp, vaccinated_on, batch_id, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (record_id) DO UPDATE SET \
                 person_hash = excluded.person_hash, facility_code = excluded.facility_code, mp = excluded.mp, \
                 vaccinated_on = excluded.vaccinated_on, batch_id = excluded.batch_id, recorded_at = excluded.recorded_at",
            )?;
            for d in &c.doses {
                dose.execute(params![
                    d.record_id,
                    d.person,
                    d.facility_code,
                    d.dose.vaccine.mp,
                    iso(d.dose.date),
                    c.run_id,
                    c.at
                ])?;
            }
            let mut retract = tx.prepare_cached("DELETE FROM doses WHERE record_id = ?1")?;
            let mut retraction = tx.prepare_cached(
                "INSERT INTO retractions (record_id, run_id, person_hash, facility_code, reason, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (d, reason) in &c.retracted {
                retract.execute([&d.record_id])?;
                retraction.execute(params![d.record_id, c.run_id, d.person, d.facility_code, reason, c.at])?;
                audit.execute(params![c.at, c.actor(), c.kid, "retract", "", c.run_id, d.record_id])?;
            }
            let mut person = tx.prepare_cached(
                "INSERT INTO persons (person_hash, sealed) VALUES (?1, ?2) \
                 ON CONFLICT (person_hash) DO UPDATE SET sealed = excluded.sealed",
            )?;
            for (hash, sealed) in &c.persons {
                person.execute(params![hash, sealed])?;
            }
            let mut revoke = tx.prepare_cached(
                "UPDATE passports SET status = 'revoked', changed_by = ?2, changed_at = ?3 \
                 WHERE uvci = ?1 AND status <> 'revoked'",
            )?;
            let mut revocation = tx.prepare_cached(
                "INSERT INTO revocations (kind, value, revoked_at) VALUES ('passport', ?1, ?2) \
                 ON CONFLICT (kind, value) DO NOTHING",
            )?;
            let mut superseded = 0i64;
            for (uvci, status) in &c.fates {
                match status {
                    // Only revocations are audited (and listed); a superseded passport stays
                    // valid, and `currents` below moves its holder's pointer off it.
                    PassportStatus::Revoked => {
                        if revoke.execute(params![uvci, c.run_id, c.at])? == 1 {
                            audit.execute(params![c.at, c.actor(), c.kid, "revoke", uvci, c.run_id, "corrected"])?;
                            revocation.execute(params![crate::pki::revocation_hex(uvci), c.at])?;
                        }
                    }
                    PassportStatus::Superseded => superseded += 1,
                    PassportStatus::Current => {}
                }
            }
            if superseded > 0 {
                tx.prepare_cached("INSERT INTO run_superseded (run_id, n) VALUES (?1, ?2)")?
                    .execute(params![c.run_id, superseded])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at, \
                 person_hash, holder_hash, content_hash, doses, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'current') ON CONFLICT (uvci) DO NOTHING",
            )?;
            // In identity-hash order: that index takes random keys, and neighbouring inserts
            // then land on the same pages (measured 20 % less insert time at 1 million).
            let mut passports = c.passports.clone();
            passports.sort_unstable_by(|a, b| a.id_hash.cmp(&b.id_hash));
            for p in passports {
                let person = (!p.person_hash.is_empty()).then_some(&p.person_hash);
                let n = ins.execute(params![
                    p.uvci,
                    p.id_hash,
                    p.claim_hash,
                    c.facility_code,
                    p.kid,
                    p.hc1,
                    c.run_id,
                    c.at,
                    person,
                    p.holder_hash,
                    p.content_hash,
                    covered_json(p),
                ])?;
                if n == 1 {
                    let records: Vec<&str> = p.record_ids.iter().map(String::as_str).collect();
                    audit.execute(params![
                        c.at,
                        c.facility_code,
                        p.kid,
                        "sign",
                        p.uvci,
                        c.run_id,
                        audit_records(&records)
                    ])?;
                } else {
                    // The same passport signed before the ledger existed (schema 1): it joins
                    // the person's history now, as their current passport.
                    if person.is_some() {
                        tx.execute(
                            "UPDATE passports SET person_hash = ?2, holder_hash = ?3, content_hash = ?4, doses = ?5 \
                             WHERE uvci = ?1 AND person_hash IS NULL",
                            params![p.uvci, person, p.holder_hash, p.content_hash, covered_json(p)],
                        )?;
                    }
                    let stored: String =
                        tx.query_row("SELECT hc1 FROM passports WHERE uvci = ?1", [&p.uvci], |r| r.get(0))?;
                    kept.insert(p.uvci.clone(), stored);
                }
            }
            let mut current = tx.prepare_cached("UPDATE persons SET current_uvci = ?2 WHERE person_hash = ?1")?;
            for (person, uvci) in &c.currents {
                if current.execute(params![person, uvci])? != 1 {
                    return Err(StoreError::Corrupt("persons: a current passport for a person not stored"));
                }
            }
        }
        tx.commit()?;
        Ok(kept)
    }

    fn ledger_by_record(&mut self, record_ids: &[&str]) -> Result<Vec<LedgerDose>, StoreError> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM doses WHERE record_id IN ({{}})");
        let rows = self.query_in(&sql, record_ids, ledger_from)?;
        rows.into_iter().map(|r| r.ok_or(StoreError::Corrupt("doses"))).collect()
    }

    fn ledger_by_person(&mut self, persons: &[&[u8]]) -> Result<Vec<LedgerDose>, StoreError> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM doses WHERE person_hash IN ({{}})");
        let rows = self.query_in(&sql, persons, ledger_from)?;
        rows.into_iter().map(|r| r.ok_or(StoreError::Corrupt("doses"))).collect()
    }

    fn sealed_persons(&mut self, persons: &[&[u8]]) -> Result<HashMap<PersonHash, Vec<u8>>, StoreError> {
        let rows =
            self.query_in("SELECT person_hash, sealed FROM persons WHERE person_hash IN ({})", persons, |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(rows.into_iter().collect())
    }

    fn passports_of_persons(&mut self, persons: &[&[u8]]) -> Result<Vec<PassportRecord>, StoreError> {
        let rows = self.query_in(
            &format!(
                "SELECT p.uvci, p.person_hash, p.holder_hash, p.content_hash, p.doses, {STATUS_SQL}, p.kid, '', \
                 p.signed_at FROM passports p WHERE p.person_hash IN ({{}}) ORDER BY p.signed_at, p.uvci"
            ),
            persons,
            |r| {
                let status: String = r.get(5)?;
                Ok(passport_record(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    &status,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )?;
        rows.into_iter().collect()
    }

    fn persons_of_run(&mut self, run_id: &str) -> Result<Vec<PersonHash>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT person_hash FROM passports WHERE batch_id = ?1 AND person_hash IS NOT NULL \
             UNION SELECT person_hash FROM passports WHERE changed_by = ?1 AND person_hash IS NOT NULL \
             UNION SELECT person_hash FROM retractions WHERE run_id = ?1",
        )?;
        let rows = stmt.query_map([run_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn retracted_by_run(&mut self, run_id: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT record_id FROM retractions WHERE run_id = ?1 ORDER BY record_id")?;
        let rows = stmt.query_map([run_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn run_changes(&mut self, run_id: &str) -> Result<RunChanges, StoreError> {
        // Passports stored 'superseded' were so marked by runs before schema version 5.
        let mut stmt = self.conn.prepare_cached(
            "SELECT uvci, status FROM passports WHERE changed_by = ?1 AND status <> 'current' ORDER BY uvci",
        )?;
        let rows = stmt.query_map([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = RunChanges::default();
        for row in rows {
            let (uvci, status) = row?;
            if status == "revoked" {
                out.revoked.push(uvci);
            } else {
                out.superseded += 1;
            }
        }
        let counted: i64 =
            self.conn.query_row("SELECT COALESCE(SUM(n), 0) FROM run_superseded WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })?;
        out.superseded += u64::try_from(counted).map_err(|_| StoreError::Corrupt("run_superseded"))?;
        Ok(out)
    }

    fn hc1_by_uvci(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, StoreError> {
        // UVCIs a thousand at a time: one statement step per thousand index probes instead of
        // one per UVCI.
        const PER_QUERY: usize = 1000;
        let mut out = HashMap::new();
        let tx = self.conn.transaction()?;
        {
            for group in uvcis.chunks(PER_QUERY) {
                let sql =
                    format!("SELECT uvci, hc1 FROM passports WHERE uvci IN ({})", vec!["?"; group.len()].join(","));
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(group), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (uvci, hc1) = row?;
                    out.insert(uvci, hc1);
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn save_batch(&mut self, b: &BatchRecord, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO batches (batch_id, facility_code, status, persons_total, persons_done, summary, started_at, \
             updated_at, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) ON CONFLICT (batch_id) DO UPDATE SET \
             status = excluded.status, persons_total = excluded.persons_total, persons_done = excluded.persons_done, \
             summary = excluded.summary, updated_at = excluded.updated_at, error = excluded.error \
             WHERE batches.lease_expires_at IS NULL OR batches.status = 'running'",
            params![
                b.batch_id,
                b.facility_code,
                b.status,
                to_i64(b.persons_total),
                to_i64(b.persons_done),
                b.summary,
                at,
                b.error
            ],
        )?;
        Ok(())
    }

    fn renew_lease(&mut self, batch_id: &str, owner: &str, until: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE batches SET lease_owner = ?2, lease_expires_at = ?3 WHERE batch_id = ?1 AND status = 'running' \
             AND (lease_owner IS NULL OR lease_owner = ?2)",
            params![batch_id, owner, until],
        )? == 1)
    }

    fn expire_leases(&mut self, at: i64, error: &str) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare(
            "UPDATE batches SET status = 'failed', error = ?2, updated_at = ?1 \
             WHERE status = 'running' AND lease_expires_at < ?1 RETURNING batch_id",
        )?;
        let ids = st.query_map(params![at, error], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    fn batch(&mut self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT batch_id, facility_code, status, persons_total, persons_done, summary, error FROM batches \
                 WHERE batch_id = ?1",
                [batch_id],
                |r| {
                    Ok(BatchRecord {
                        batch_id: r.get(0)?,
                        facility_code: r.get(1)?,
                        status: r.get(2)?,
                        persons_total: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                        persons_done: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        summary: r.get(5)?,
                        error: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    fn passport_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM passports", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<(String, PassportStatus)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(&format!("SELECT p.hc1, {STATUS_SQL} FROM passports p WHERE p.uvci = ?1"), [uvci], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(hc1, status)| Ok((hc1, PassportStatus::parse(&status).ok_or(StoreError::Corrupt("status"))?)))
            .transpose()
    }

    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT p.uvci, p.claim_hash, p.hc1, {STATUS_SQL} FROM passports p \
             WHERE p.id_hash = ?1 ORDER BY p.signed_at, p.uvci"
        ))?;
        let rows = stmt.query_map([id_hash], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (uvci, claim_hash, hc1, status) = row?;
            let status = PassportStatus::parse(&status).ok_or(StoreError::Corrupt("status"))?;
            out.push(StoredPassport { uvci, status, claim_hash, hc1 });
        }
        Ok(out)
    }

    fn revoke(&mut self, revocation: &Revocation, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO revocations (kind, value, revoked_at) VALUES (?1, ?2, ?3) ON CONFLICT (kind, value) DO NOTHING",
            params![revocation.kind(), revocation.value(), at],
        )?;
        Ok(())
    }

    fn revocations(&mut self) -> Result<Vec<Revocation>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT kind, value FROM revocations ORDER BY revoked_at, kind, value")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, value) = row?;
            out.extend(Revocation::from_row(&kind, value));
        }
        Ok(out)
    }

    fn revoked_facilities(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT value FROM revocations WHERE kind = 'facility'")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_facility_token(
        &mut self,
        token_hash: &[u8],
        facility_code: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO facility_tokens (token_hash, facility_code, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, facility_code, at, expires_at],
        )?;
        Ok(())
    }

    fn facility_of_token(&mut self, token_hash: &[u8], at: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT facility_code FROM facility_tokens WHERE token_hash = ?1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > ?2)",
                params![token_hash, at],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn revoke_tokens(&mut self, which: TokenSelector<'_>, at: i64) -> Result<u64, StoreError> {
        let n = match which {
            TokenSelector::Hash(h) => self.conn.execute(
                "UPDATE facility_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
                params![h, at],
            )?,
            TokenSelector::Facility(code) => self.conn.execute(
                "UPDATE facility_tokens SET revoked_at = ?2 WHERE facility_code = ?1 AND revoked_at IS NULL",
                params![code, at],
            )?,
        };
        Ok(n as u64)
    }

    fn add_batch_results(
        &mut self,
        batch_id: &str,
        passports: &[(String, Vec<String>)],
        rejections: &[BatchRejection],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut p =
                tx.prepare_cached("INSERT INTO batch_passports (batch_id, uvci, record_ids) VALUES (?1, ?2, ?3)")?;
            for (uvci, ids) in passports {
                p.execute(params![batch_id, uvci, serde_json::to_string(ids).unwrap_or_default()])?;
            }
            let mut r = tx.prepare_cached(
                "INSERT INTO batch_rejections (batch_id, record_id, reason, detail, suggestion) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for x in rejections {
                r.execute(params![batch_id, x.record_id, x.reason, x.detail, x.suggestion])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn batch_results(&mut self, batch_id: &str, limit: u64) -> Result<BatchResults, StoreError> {
        let limit = to_i64(limit);
        let mut p = self.conn.prepare_cached(
            "SELECT b.uvci, b.record_ids, p.person_hash FROM batch_passports b \
             LEFT JOIN passports p ON p.uvci = b.uvci WHERE b.batch_id = ?1 LIMIT ?2",
        )?;
        let passports = p
            .query_map(params![batch_id, limit], |r| {
                let ids: String = r.get(1)?;
                Ok((r.get(0)?, serde_json::from_str(&ids).unwrap_or_default(), r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut q = self.conn.prepare_cached(
            "SELECT record_id, reason, detail, suggestion FROM batch_rejections WHERE batch_id = ?1 LIMIT ?2",
        )?;
        let rejections = q
            .query_map(params![batch_id, limit], |r| {
                Ok(BatchRejection { record_id: r.get(0)?, reason: r.get(1)?, detail: r.get(2)?, suggestion: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(BatchResults { passports, rejections })
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    // Issue #8, item 12: https://github.com/vaxpass/vaxpass/issues/8
    #[test]
    fn new_database_and_its_wal_and_shm_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        let mut store = SqliteStore::open(db.to_str().unwrap()).unwrap();
        // A write makes SQLite create the -wal and -shm files, while the store is open.
        let batch = BatchRecord {
            batch_id: "b".into(),
            facility_code: "01001".into(),
            status: "running".into(),
            persons_total: 0,
            persons_done: 0,
            summary: None,
            error: None,
        };
        store.save_batch(&batch, 0).unwrap();
        for name in ["v.db", "v.db-wal", "v.db-shm"] {
            assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn an_existing_database_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        drop(SqliteStore::open(db.to_str().unwrap()).unwrap());
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(SqliteStore::open(db.to_str().unwrap()).unwrap());
        assert_eq!(mode(&db), 0o640, "the operator's choice stays");
    }
}
