//! The PostgreSQL store, for several service instances sharing one database. Same schema and
//! behaviour as SQLite.

use std::collections::HashMap;

use postgres::{Client, NoTls, Statement};

use super::{
    BatchRecord, BatchRejection, BatchResults, LedgerChange, Revocation, RunChanges, STATUS_SQL, Store, StoreError,
    StoredPassport, TokenSelector, VERSION_TABLE, audit_records, covered_json, ledger_row, passport_record,
    pending_migrations, to_i64,
};
use crate::ledger::{LedgerDose, PassportRecord, PassportStatus, PersonHash, iso};

pub(crate) mod instances;
mod reports;

/// The `NOTIFY` channel told of every new revocation, in the inserting transaction.
const REVOCATION_CHANNEL: &str = "vaxpass_revocations";

pub(super) struct PostgresStore {
    client: Client,
    /// The write path's statements, prepared once per connection.
    statements: Option<Statements>,
}

/// The statements of [`Store::apply`]: each takes a whole chunk as arrays.
#[derive(Clone)]
struct Statements {
    doses: Statement,
    retract: Statement,
    retractions: Statement,
    audit: Statement,
    audit_sign: Statement,
    persons: Statement,
    revoke: Statement,
    superseded: Statement,
    currents: Statement,
    revocations: Statement,
    passports: Statement,
    join_ledger: Statement,
    hc1_of: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> Result<Statements, StoreError> {
        Ok(Statements {
            doses: c.prepare(
                "INSERT INTO doses (record_id, person_hash, facility_code, mp, vaccinated_on, batch_id, recorded_at) \
                 SELECT r, p, f, m, v, $6::text, $7::bigint \
                 FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[]) AS t(r, p, f, m, v) \
                 ON CONFLICT (record_id) DO UPDATE SET \
                 person_hash = excluded.person_hash, facility_code = excluded.facility_code, mp = excluded.mp, \
                 vaccinated_on = excluded.vaccinated_on, batch_id = excluded.batch_id, recorded_at = excluded.recorded_at",
            )?,
            retract: c.prepare("DELETE FROM doses WHERE record_id = ANY($1::text[])")?,
            retractions: c.prepare(
                "INSERT INTO retractions (record_id, run_id, person_hash, facility_code, reason, at) \
                 SELECT r, $5::text, p, f, why, $6::bigint \
                 FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::text[]) AS t(r, p, f, why)",
            )?,
            audit: c.prepare(
                "INSERT INTO audit_log (at, facility_code, kid, action, uvci, batch_id, detail) \
                 SELECT $1::bigint, $2::text, $3::text, $4::text, u, $6::text, d \
                 FROM UNNEST($5::text[], $7::text[]) WITH ORDINALITY AS t(u, d, n) ORDER BY n",
            )?,
            audit_sign: c.prepare(
                "INSERT INTO audit_log (at, facility_code, kid, action, uvci, batch_id, detail) \
                 SELECT $1::bigint, $2::text, k, 'sign', u, $5::text, d \
                 FROM UNNEST($3::text[], $4::text[], $6::text[]) WITH ORDINALITY AS t(k, u, d, n) ORDER BY n",
            )?,
            persons: c.prepare(
                "INSERT INTO persons (person_hash, sealed) SELECT h, s FROM UNNEST($1::bytea[], $2::bytea[]) AS t(h, s) \
                 ON CONFLICT (person_hash) DO UPDATE SET sealed = excluded.sealed",
            )?,
            revoke: c.prepare(
                "UPDATE passports SET status = 'revoked', changed_by = $2::text, changed_at = $3::bigint \
                 WHERE uvci = ANY($1::text[]) AND status <> 'revoked' RETURNING uvci",
            )?,
            superseded: c.prepare("INSERT INTO run_superseded (run_id, n) VALUES ($1::text, $2::bigint)")?,
            currents: c.prepare(
                "UPDATE persons AS s SET current_uvci = t.u \
                 FROM UNNEST($1::bytea[], $2::text[]) AS t(h, u) WHERE s.person_hash = t.h",
            )?,
            revocations: c.prepare(
                "INSERT INTO revocations (kind, value, revoked_at) SELECT 'passport', v, $2::bigint \
                 FROM UNNEST($1::text[]) AS t(v) ON CONFLICT (kind, value) DO NOTHING",
            )?,
            passports: c.prepare(
                "INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at, \
                 person_hash, holder_hash, content_hash, doses, status) \
                 SELECT u, i, ch, $4::text, k, h, $7::text, $8::bigint, p, hh, cth, d, 'current' \
                 FROM UNNEST($1::text[], $2::bytea[], $3::bytea[], $5::text[], $6::text[], $9::bytea[], $10::bytea[], \
                 $11::bytea[], $12::text[]) WITH ORDINALITY AS t(u, i, ch, k, h, p, hh, cth, d, n) ORDER BY n \
                 ON CONFLICT (uvci) DO NOTHING RETURNING uvci",
            )?,
            join_ledger: c.prepare(
                "UPDATE passports AS p SET person_hash = t.who, holder_hash = t.hh, content_hash = t.cth, doses = t.d \
                 FROM UNNEST($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[]) AS t(u, who, hh, cth, d) \
                 WHERE p.uvci = t.u AND p.person_hash IS NULL",
            )?,
            hc1_of: c.prepare("SELECT uvci, hc1 FROM passports WHERE uvci = ANY($1::text[])")?,
        })
    }
}

/// Applies the status changes of earlier passports: revocations are written (those revoked
/// now are returned, in the order given, each once); passports superseded are counted for
/// the run, their holders' pointers moving with `currents`.
fn apply_fates(
    tx: &mut postgres::Transaction<'_>,
    st: &Statements,
    c: &LedgerChange<'_>,
) -> Result<Vec<String>, StoreError> {
    let superseded = c.fates.iter().filter(|(_, s)| *s == PassportStatus::Superseded).count();
    if superseded > 0 {
        tx.execute(&st.superseded, &[&c.run_id, &i64::try_from(superseded).unwrap_or(i64::MAX)])?;
    }
    let uvcis: Vec<&str> = c.fates.iter().filter(|(_, s)| *s == PassportStatus::Revoked).map(|(u, _)| *u).collect();
    if uvcis.is_empty() {
        return Ok(Vec::new());
    }
    let now_revoked: std::collections::HashSet<String> =
        tx.query(&st.revoke, &[&uvcis, &c.run_id, &c.at])?.iter().map(|r| r.get(0)).collect();
    let mut seen = std::collections::HashSet::with_capacity(now_revoked.len());
    Ok(uvcis.into_iter().filter(|u| now_revoked.contains(*u) && seen.insert(*u)).map(str::to_owned).collect())
}

impl PostgresStore {
    pub(super) fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut client = Client::connect(url, NoTls)?;
        // No JIT: a chunk's queries take arrays of 32,768 keys, which PostgreSQL's cost
        // estimates rate as worth compiling, and compiling costs more than these short
        // queries run.
        client.batch_execute("SET jit = off")?;
        // Serialise migrations between instances starting at once.
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(727001)", &[])?;
        tx.batch_execute(VERSION_TABLE)?;
        let version: Option<i64> = tx.query_one("SELECT MAX(version) FROM schema_version", &[])?.get(0);
        let version = u32::try_from(version.unwrap_or(0)).map_err(|_| StoreError::Corrupt("schema_version"))?;
        for (reached, sql) in pending_migrations(version)? {
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&i64::from(reached)])?;
        }
        tx.commit()?;
        Ok(PostgresStore { client, statements: None })
    }
}

impl PostgresStore {
    fn statements(&mut self) -> Result<Statements, StoreError> {
        let st = match self.statements.take() {
            Some(st) => st,
            None => Statements::prepare(&mut self.client)?,
        };
        self.statements = Some(st.clone());
        Ok(st)
    }
}

fn ledger_from(r: &postgres::Row) -> Result<LedgerDose, StoreError> {
    ledger_row(r.get(0), r.get(1), r.get(2), r.get::<_, &str>(3), r.get::<_, &str>(4))
        .ok_or(StoreError::Corrupt("doses"))
}

fn bytes_list(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

impl Store for PostgresStore {
    fn lock_runs(&mut self) -> Result<(), StoreError> {
        // A session-level advisory lock: held until this connection closes, also when the
        // process dies, so a killed run never leaves the ledger locked.
        self.client.execute("SELECT pg_advisory_lock(727002)", &[])?;
        Ok(())
    }

    fn unlock_runs(&mut self) -> Result<(), StoreError> {
        self.client.execute("SELECT pg_advisory_unlock_all()", &[])?;
        Ok(())
    }

    fn apply(&mut self, c: &LedgerChange<'_>) -> Result<HashMap<String, String>, StoreError> {
        // One statement per kind of change, each taking the whole chunk as arrays (UNNEST):
        // a handful of round trips per chunk instead of two per passport (issue #11: 0.14× the
        // SQLite rate with one statement per row). Statements run in the order the rows did
        // one by one, so the audit log reads the same.
        let st = self.statements()?;
        let mut kept = HashMap::new();
        let mut tx = self.client.transaction()?;
        if !c.doses.is_empty() {
            // An upsert may touch a row once per statement: of two writes of one record, the
            // later stands, as it did row by row.
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(c.doses.len());
            for (i, d) in c.doses.iter().enumerate() {
                last.insert(d.record_id.as_str(), i);
            }
            // In record-id order: neighbouring keys land on the same index pages.
            let mut doses: Vec<&LedgerDose> =
                c.doses.iter().enumerate().filter(|(i, d)| last[d.record_id.as_str()] == *i).map(|(_, d)| *d).collect();
            doses.sort_unstable_by(|a, b| a.record_id.cmp(&b.record_id));
            let ids: Vec<&str> = doses.iter().map(|d| d.record_id.as_str()).collect();
            let persons: Vec<&[u8]> = doses.iter().map(|d| d.person.as_slice()).collect();
            let facilities: Vec<&str> = doses.iter().map(|d| d.facility_code.as_str()).collect();
            let mps: Vec<&str> = doses.iter().map(|d| d.dose.vaccine.mp).collect();
            let dates: Vec<String> = doses.iter().map(|d| iso(d.dose.date)).collect();
            tx.execute(&st.doses, &[&ids, &persons, &facilities, &mps, &dates, &c.run_id, &c.at])?;
        }
        if !c.retracted.is_empty() {
            let ids: Vec<&str> = c.retracted.iter().map(|(d, _)| d.record_id.as_str()).collect();
            let persons: Vec<&[u8]> = c.retracted.iter().map(|(d, _)| d.person.as_slice()).collect();
            let facilities: Vec<&str> = c.retracted.iter().map(|(d, _)| d.facility_code.as_str()).collect();
            let reasons: Vec<&str> = c.retracted.iter().map(|(_, r)| *r).collect();
            tx.execute(&st.retract, &[&ids])?;
            tx.execute(&st.retractions, &[&ids, &persons, &facilities, &reasons, &c.run_id, &c.at])?;
            tx.execute(&st.audit, &[&c.at, &c.actor(), &c.kid, &"retract", &vec![""; ids.len()], &c.run_id, &ids])?;
        }
        if !c.persons.is_empty() {
            let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(c.persons.len());
            for (i, (h, _)) in c.persons.iter().enumerate() {
                last.insert(h, i);
            }
            let mut persons: Vec<(&[u8], &[u8])> =
                c.persons.iter().enumerate().filter(|(i, (h, _))| last[h] == *i).map(|(_, p)| *p).collect();
            persons.sort_unstable();
            let hashes: Vec<&[u8]> = persons.iter().map(|p| p.0).collect();
            let sealed: Vec<&[u8]> = persons.iter().map(|p| p.1).collect();
            tx.execute(&st.persons, &[&hashes, &sealed])?;
        }
        if !c.fates.is_empty() {
            let revoked = apply_fates(&mut tx, &st, c)?;
            if !revoked.is_empty() {
                let hex: Vec<String> = revoked.iter().map(|u| crate::pki::revocation_hex(u)).collect();
                let n = revoked.len();
                tx.execute(
                    &st.audit,
                    &[&c.at, &c.actor(), &c.kid, &"revoke", &revoked, &c.run_id, &vec!["corrected"; n]],
                )?;
                tx.execute(&st.revocations, &[&hex, &c.at])?;
                tx.execute("SELECT pg_notify($1, '')", &[&REVOCATION_CHANNEL])?;
            }
        }
        if !c.passports.is_empty() {
            let ps = &c.passports;
            let uvcis: Vec<&str> = ps.iter().map(|p| p.uvci.as_str()).collect();
            let id_hashes: Vec<&[u8]> = ps.iter().map(|p| p.id_hash.as_slice()).collect();
            let claim_hashes: Vec<&[u8]> = ps.iter().map(|p| p.claim_hash.as_slice()).collect();
            let kids: Vec<&str> = ps.iter().map(|p| p.kid.as_str()).collect();
            let hc1s: Vec<&str> = ps.iter().map(|p| p.hc1.as_str()).collect();
            let persons: Vec<Option<&[u8]>> =
                ps.iter().map(|p| (!p.person_hash.is_empty()).then_some(p.person_hash.as_slice())).collect();
            let holders: Vec<&[u8]> = ps.iter().map(|p| p.holder_hash.as_slice()).collect();
            let contents: Vec<&[u8]> = ps.iter().map(|p| p.content_hash.as_slice()).collect();
            let covered: Vec<String> = ps.iter().map(|p| covered_json(p)).collect();
            let inserted: std::collections::HashSet<String> = tx
                .query(
                    &st.passports,
                    &[
                        &uvcis,
                        &id_hashes,
                        &claim_hashes,
                        &c.facility_code,
                        &kids,
                        &hc1s,
                        &c.run_id,
                        &c.at,
                        &persons,
                        &holders,
                        &contents,
                        &covered,
                    ],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            // Of a UVCI given twice, the first is inserted and the second finds it stored.
            let mut audited = std::collections::HashSet::with_capacity(inserted.len());
            let (mut signed, mut present) = (Vec::new(), Vec::new());
            for (i, p) in ps.iter().enumerate() {
                if inserted.contains(&p.uvci) && audited.insert(p.uvci.as_str()) {
                    signed.push(i);
                } else {
                    present.push(i);
                }
            }
            if !signed.is_empty() {
                let uvcis: Vec<&str> = signed.iter().map(|&i| ps[i].uvci.as_str()).collect();
                let kids: Vec<&str> = signed.iter().map(|&i| ps[i].kid.as_str()).collect();
                let records: Vec<String> = signed
                    .iter()
                    .map(|&i| {
                        let ids: Vec<&str> = ps[i].record_ids.iter().map(String::as_str).collect();
                        audit_records(&ids)
                    })
                    .collect();
                tx.execute(&st.audit_sign, &[&c.at, &c.facility_code, &kids, &uvcis, &c.run_id, &records])?;
            }
            if !present.is_empty() {
                // The same passport signed before the ledger existed (schema 1): it joins the
                // person's history now, as their current passport.
                let joining: Vec<usize> = present.iter().copied().filter(|&i| persons[i].is_some()).collect();
                if !joining.is_empty() {
                    let u: Vec<&str> = joining.iter().map(|&i| uvcis[i]).collect();
                    let who: Vec<&[u8]> = joining.iter().filter_map(|&i| persons[i]).collect();
                    let hh: Vec<&[u8]> = joining.iter().map(|&i| holders[i]).collect();
                    let cth: Vec<&[u8]> = joining.iter().map(|&i| contents[i]).collect();
                    let cov: Vec<&str> = joining.iter().map(|&i| covered[i].as_str()).collect();
                    tx.execute(&st.join_ledger, &[&u, &who, &hh, &cth, &cov])?;
                }
                let u: Vec<&str> = present.iter().map(|&i| uvcis[i]).collect();
                for r in tx.query(&st.hc1_of, &[&u])? {
                    kept.insert(r.get(0), r.get(1));
                }
            }
        }
        if !c.currents.is_empty() {
            let persons: Vec<&[u8]> = c.currents.iter().map(|(h, _)| *h).collect();
            let uvcis: Vec<&str> = c.currents.iter().map(|(_, u)| *u).collect();
            if tx.execute(&st.currents, &[&persons, &uvcis])? != c.currents.len() as u64 {
                return Err(StoreError::Corrupt("persons: a current passport for a person not stored"));
            }
        }
        tx.commit()?;
        Ok(kept)
    }

    fn ledger_by_record(&mut self, record_ids: &[&str]) -> Result<Vec<LedgerDose>, StoreError> {
        let list: Vec<&str> = record_ids.to_vec();
        let rows = self.client.query(
            "SELECT record_id, person_hash, facility_code, mp, vaccinated_on FROM doses WHERE record_id = ANY($1)",
            &[&list],
        )?;
        rows.iter().map(ledger_from).collect()
    }

    fn ledger_by_person(&mut self, persons: &[&[u8]]) -> Result<Vec<LedgerDose>, StoreError> {
        let rows = self.client.query(
            "SELECT record_id, person_hash, facility_code, mp, vaccinated_on FROM doses WHERE person_hash = ANY($1)",
            &[&bytes_list(persons)],
        )?;
        rows.iter().map(ledger_from).collect()
    }

    fn sealed_persons(&mut self, persons: &[&[u8]]) -> Result<HashMap<PersonHash, Vec<u8>>, StoreError> {
        let rows = self
            .client
            .query("SELECT person_hash, sealed FROM persons WHERE person_hash = ANY($1)", &[&bytes_list(persons)])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn passports_of_persons(&mut self, persons: &[&[u8]]) -> Result<Vec<PassportRecord>, StoreError> {
        let rows = self.client.query(
            &format!(
                "SELECT p.uvci, p.person_hash, p.holder_hash, p.content_hash, p.doses, {STATUS_SQL}, p.kid, '', \
                 p.signed_at FROM passports p WHERE p.person_hash = ANY($1) ORDER BY p.signed_at, p.uvci"
            ),
            &[&bytes_list(persons)],
        )?;
        rows.iter()
            .map(|r| {
                passport_record(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                )
            })
            .collect()
    }

    fn persons_of_run(&mut self, run_id: &str) -> Result<Vec<PersonHash>, StoreError> {
        let rows = self.client.query(
            "SELECT person_hash FROM passports WHERE batch_id = $1 AND person_hash IS NOT NULL \
             UNION SELECT person_hash FROM passports WHERE changed_by = $1 AND person_hash IS NOT NULL \
             UNION SELECT person_hash FROM retractions WHERE run_id = $1",
            &[&run_id],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn retracted_by_run(&mut self, run_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            self.client.query("SELECT record_id FROM retractions WHERE run_id = $1 ORDER BY record_id", &[&run_id])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn run_changes(&mut self, run_id: &str) -> Result<RunChanges, StoreError> {
        let rows = self.client.query(
            "SELECT uvci, status FROM passports WHERE changed_by = $1 AND status <> 'current' ORDER BY uvci",
            &[&run_id],
        )?;
        // Passports stored 'superseded' were so marked by runs before schema version 5.
        let mut out = RunChanges::default();
        for r in &rows {
            if r.get::<_, &str>(1) == "revoked" {
                out.revoked.push(r.get(0));
            } else {
                out.superseded += 1;
            }
        }
        let counted: i64 = self
            .client
            .query_one("SELECT COALESCE(SUM(n), 0)::bigint FROM run_superseded WHERE run_id = $1", &[&run_id])?
            .get(0);
        out.superseded += u64::try_from(counted).map_err(|_| StoreError::Corrupt("run_superseded"))?;
        Ok(out)
    }

    fn hc1_by_uvci(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, StoreError> {
        let list: Vec<String> = uvcis.iter().map(|s| (*s).to_owned()).collect();
        let rows = self.client.query("SELECT uvci, hc1 FROM passports WHERE uvci = ANY($1)", &[&list])?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect())
    }

    fn save_batch(&mut self, b: &BatchRecord, at: i64) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO batches (batch_id, facility_code, status, persons_total, persons_done, summary, started_at, \
             updated_at, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (batch_id) DO UPDATE SET \
             status = excluded.status, persons_total = excluded.persons_total, persons_done = excluded.persons_done, \
             summary = excluded.summary, updated_at = excluded.updated_at, error = excluded.error \
             WHERE batches.lease_expires_at IS NULL OR batches.status = 'running'",
            &[
                &b.batch_id,
                &b.facility_code,
                &b.status,
                &to_i64(b.persons_total),
                &to_i64(b.persons_done),
                &b.summary,
                &at,
                &b.error,
            ],
        )?;
        Ok(())
    }

    fn renew_lease(&mut self, batch_id: &str, owner: &str, until: i64) -> Result<bool, StoreError> {
        Ok(self.client.execute(
            "UPDATE batches SET lease_owner = $2, lease_expires_at = $3 WHERE batch_id = $1 AND status = 'running' \
             AND (lease_owner IS NULL OR lease_owner = $2)",
            &[&batch_id, &owner, &until],
        )? == 1)
    }

    fn expire_leases(&mut self, at: i64, error: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.client.query(
            "UPDATE batches SET status = 'failed', error = $2, updated_at = $1 \
             WHERE status = 'running' AND lease_expires_at < $1 RETURNING batch_id",
            &[&at, &error],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn batch(&mut self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let row = self.client.query_opt(
            "SELECT batch_id, facility_code, status, persons_total, persons_done, summary, error FROM batches \
             WHERE batch_id = $1",
            &[&batch_id],
        )?;
        Ok(row.map(|r| BatchRecord {
            batch_id: r.get(0),
            facility_code: r.get(1),
            status: r.get(2),
            persons_total: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            persons_done: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
            summary: r.get(5),
            error: r.get(6),
        }))
    }

    fn passport_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.client.query_one("SELECT COUNT(*) FROM passports", &[])?.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<(String, PassportStatus)>, StoreError> {
        self.client
            .query_opt(&format!("SELECT p.hc1, {STATUS_SQL} FROM passports p WHERE p.uvci = $1"), &[&uvci])?
            .map(|r| Ok((r.get(0), PassportStatus::parse(r.get(1)).ok_or(StoreError::Corrupt("status"))?)))
            .transpose()
    }

    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError> {
        let rows = self.client.query(
            &format!(
                "SELECT p.uvci, p.claim_hash, p.hc1, {STATUS_SQL} FROM passports p \
                 WHERE p.id_hash = $1 ORDER BY p.signed_at, p.uvci"
            ),
            &[&id_hash],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredPassport {
                    uvci: r.get(0),
                    status: PassportStatus::parse(r.get(3)).ok_or(StoreError::Corrupt("status"))?,
                    claim_hash: r.get(1),
                    hc1: r.get(2),
                })
            })
            .collect()
    }

    fn revoke(&mut self, revocation: &Revocation, at: i64) -> Result<(), StoreError> {
        // The notification leaves at commit, with the row: a listener that refreshes on it
        // reads the revocation.
        let mut tx = self.client.transaction()?;
        tx.execute(
            "INSERT INTO revocations (kind, value, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (kind, value) DO NOTHING",
            &[&revocation.kind(), &revocation.value(), &at],
        )?;
        tx.execute("SELECT pg_notify($1, '')", &[&REVOCATION_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }

    fn revocations(&mut self) -> Result<Vec<Revocation>, StoreError> {
        let rows = self.client.query("SELECT kind, value FROM revocations ORDER BY revoked_at, kind, value", &[])?;
        Ok(rows.iter().filter_map(|r| Revocation::from_row(r.get::<_, &str>(0), r.get(1))).collect())
    }

    fn revoked_facilities(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = self.client.query("SELECT value FROM revocations WHERE kind = 'facility'", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn add_facility_token(
        &mut self,
        token_hash: &[u8],
        facility_code: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO facility_tokens (token_hash, facility_code, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &facility_code, &at, &expires_at],
        )?;
        Ok(())
    }

    fn facility_of_token(&mut self, token_hash: &[u8], at: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .client
            .query_opt(
                "SELECT facility_code FROM facility_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
                &[&token_hash, &at],
            )?
            .map(|r| r.get(0)))
    }

    fn revoke_tokens(&mut self, which: TokenSelector<'_>, at: i64) -> Result<u64, StoreError> {
        Ok(match which {
            TokenSelector::Hash(h) => self.client.execute(
                "UPDATE facility_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&h, &at],
            )?,
            TokenSelector::Facility(code) => self.client.execute(
                "UPDATE facility_tokens SET revoked_at = $2 WHERE facility_code = $1 AND revoked_at IS NULL",
                &[&code, &at],
            )?,
        })
    }

    fn add_batch_results(
        &mut self,
        batch_id: &str,
        passports: &[(String, Vec<String>)],
        rejections: &[BatchRejection],
    ) -> Result<(), StoreError> {
        let mut tx = self.client.transaction()?;
        let p = tx.prepare("INSERT INTO batch_passports (batch_id, uvci, record_ids) VALUES ($1, $2, $3)")?;
        for (uvci, ids) in passports {
            tx.execute(&p, &[&batch_id, uvci, &serde_json::to_string(ids).unwrap_or_default()])?;
        }
        let r = tx.prepare(
            "INSERT INTO batch_rejections (batch_id, record_id, reason, detail, suggestion) VALUES ($1, $2, $3, $4, $5)",
        )?;
        for x in rejections {
            tx.execute(&r, &[&batch_id, &x.record_id, &x.reason, &x.detail, &x.suggestion])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn batch_results(&mut self, batch_id: &str, limit: u64) -> Result<BatchResults, StoreError> {
        let limit = to_i64(limit);
        let passports = self
            .client
            .query(
                "SELECT b.uvci, b.record_ids, p.person_hash FROM batch_passports b \
                 LEFT JOIN passports p ON p.uvci = b.uvci WHERE b.batch_id = $1 LIMIT $2",
                &[&batch_id, &limit],
            )?
            .iter()
            .map(|r| (r.get(0), serde_json::from_str(r.get::<_, &str>(1)).unwrap_or_default(), r.get(2)))
            .collect();
        let rejections = self
            .client
            .query(
                "SELECT record_id, reason, detail, suggestion FROM batch_rejections WHERE batch_id = $1 LIMIT $2",
                &[&batch_id, &limit],
            )?
            .iter()
            .map(|r| BatchRejection { record_id: r.get(0), reason: r.get(1), detail: r.get(2), suggestion: r.get(3) })
            .collect();
        Ok(BatchResults { passports, rejections })
    }
}
