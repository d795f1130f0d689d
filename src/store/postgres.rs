//! The PostgreSQL store, for several service instances sharing one database. Same schema and
//! behaviour as SQLite.

use std::collections::HashMap;

use postgres::{Client, NoTls};

use super::{
    BatchRecord, BatchRejection, BatchResults, LedgerChange, Revocation, RunChanges, Store, StoreError, StoredPassport,
    TokenSelector, VERSION_TABLE, audit_records, covered_json, ledger_row, passport_record, pending_migrations, to_i64,
};
use crate::ledger::{LedgerDose, PassportRecord, PassportStatus, PersonHash, iso};

mod reports;

pub(super) struct PostgresStore {
    client: Client,
}

impl PostgresStore {
    pub(super) fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut client = Client::connect(url, NoTls)?;
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
        Ok(PostgresStore { client })
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
        let mut kept = HashMap::new();
        let mut tx = self.client.transaction()?;
        let audit = tx.prepare(
            "INSERT INTO audit_log (at, facility_code, kid, action, uvci, batch_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )?;
        let dose = tx.prepare(
            "INSERT INTO doses (record_id, person_hash, facility_code, mp, vaccinated_on, batch_id, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (record_id) DO UPDATE SET \
             person_hash = excluded.person_hash, facility_code = excluded.facility_code, mp = excluded.mp, \
             vaccinated_on = excluded.vaccinated_on, batch_id = excluded.batch_id, recorded_at = excluded.recorded_at",
        )?;
        for d in &c.doses {
            tx.execute(
                &dose,
                &[&d.record_id, &d.person, &d.facility_code, &d.dose.vaccine.mp, &iso(d.dose.date), &c.run_id, &c.at],
            )?;
        }
        let retract = tx.prepare("DELETE FROM doses WHERE record_id = $1")?;
        let retraction = tx.prepare(
            "INSERT INTO retractions (record_id, run_id, person_hash, facility_code, reason, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )?;
        for (d, reason) in &c.retracted {
            tx.execute(&retract, &[&d.record_id])?;
            tx.execute(&retraction, &[&d.record_id, &c.run_id, &d.person, &d.facility_code, reason, &c.at])?;
            tx.execute(&audit, &[&c.at, &c.actor(), &c.kid, &"retract", &"", &c.run_id, &d.record_id])?;
        }
        let person = tx.prepare(
            "INSERT INTO persons (person_hash, sealed) VALUES ($1, $2) ON CONFLICT (person_hash) DO UPDATE SET sealed = excluded.sealed",
        )?;
        for (hash, sealed) in &c.persons {
            tx.execute(&person, &[hash, sealed])?;
        }
        let fate = tx.prepare(
            "UPDATE passports SET status = $2, changed_by = $3, changed_at = $4 WHERE uvci = $1 AND status <> $2 AND status <> 'revoked'",
        )?;
        let revocation = tx.prepare(
            "INSERT INTO revocations (kind, value, revoked_at) VALUES ('passport', $1, $2) ON CONFLICT (kind, value) DO NOTHING",
        )?;
        for (uvci, status) in &c.fates {
            // A superseded passport stays valid: only revocations are audited (and listed).
            if tx.execute(&fate, &[uvci, &status.as_str(), &c.run_id, &c.at])? == 1
                && *status == PassportStatus::Revoked
            {
                tx.execute(&audit, &[&c.at, &c.actor(), &c.kid, &"revoke", uvci, &c.run_id, &"corrected"])?;
                tx.execute(&revocation, &[&crate::pki::revocation_hex(uvci), &c.at])?;
            }
        }
        let ins = tx.prepare(
            "INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at, \
             person_hash, holder_hash, content_hash, doses, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'current') ON CONFLICT (uvci) DO NOTHING",
        )?;
        for p in &c.passports {
            let person = (!p.person_hash.is_empty()).then_some(&p.person_hash);
            let n = tx.execute(
                &ins,
                &[
                    &p.uvci,
                    &p.id_hash,
                    &p.claim_hash,
                    &c.facility_code,
                    &p.kid,
                    &p.hc1,
                    &c.run_id,
                    &c.at,
                    &person,
                    &p.holder_hash,
                    &p.content_hash,
                    &covered_json(p),
                ],
            )?;
            if n == 1 {
                let records: Vec<&str> = p.record_ids.iter().map(String::as_str).collect();
                tx.execute(
                    &audit,
                    &[&c.at, &c.facility_code, &p.kid, &"sign", &p.uvci, &c.run_id, &audit_records(&records)],
                )?;
            } else {
                // The same passport signed before the ledger existed (schema 1): it joins the
                // person's history now, as their current passport.
                if person.is_some() {
                    tx.execute(
                        "UPDATE passports SET person_hash = $2, holder_hash = $3, content_hash = $4, doses = $5 \
                         WHERE uvci = $1 AND person_hash IS NULL",
                        &[&p.uvci, &person, &p.holder_hash, &p.content_hash, &covered_json(p)],
                    )?;
                }
                let stored: String = tx.query_one("SELECT hc1 FROM passports WHERE uvci = $1", &[&p.uvci])?.get(0);
                kept.insert(p.uvci.clone(), stored);
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
            "SELECT uvci, person_hash, holder_hash, content_hash, doses, status, kid, '', signed_at \
             FROM passports WHERE person_hash = ANY($1) ORDER BY signed_at, uvci",
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
        let mut out = RunChanges::default();
        for r in &rows {
            if r.get::<_, &str>(1) == "revoked" {
                out.revoked.push(r.get(0));
            } else {
                out.superseded += 1;
            }
        }
        Ok(out)
    }

    fn hc1_by_uvci(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, StoreError> {
        let list: Vec<String> = uvcis.iter().map(|s| (*s).to_owned()).collect();
        let rows = self.client.query("SELECT uvci, hc1 FROM passports WHERE uvci = ANY($1)", &[&list])?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect())
    }

    fn save_batch(&mut self, b: &BatchRecord, at: i64) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO batches (batch_id, facility_code, status, persons_total, persons_done, summary, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (batch_id) DO UPDATE SET status = excluded.status, \
             persons_total = excluded.persons_total, persons_done = excluded.persons_done, summary = excluded.summary, \
             updated_at = excluded.updated_at",
            &[&b.batch_id, &b.facility_code, &b.status, &to_i64(b.persons_total), &to_i64(b.persons_done), &b.summary, &at],
        )?;
        Ok(())
    }

    fn batch(&mut self, batch_id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let row = self.client.query_opt(
            "SELECT batch_id, facility_code, status, persons_total, persons_done, summary FROM batches WHERE batch_id = $1",
            &[&batch_id],
        )?;
        Ok(row.map(|r| BatchRecord {
            batch_id: r.get(0),
            facility_code: r.get(1),
            status: r.get(2),
            persons_total: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            persons_done: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
            summary: r.get(5),
        }))
    }

    fn passport_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.client.query_one("SELECT COUNT(*) FROM passports", &[])?.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<(String, PassportStatus)>, StoreError> {
        self.client
            .query_opt("SELECT hc1, status FROM passports WHERE uvci = $1", &[&uvci])?
            .map(|r| Ok((r.get(0), PassportStatus::parse(r.get(1)).ok_or(StoreError::Corrupt("status"))?)))
            .transpose()
    }

    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError> {
        let rows = self.client.query(
            "SELECT uvci, claim_hash, hc1, status FROM passports WHERE id_hash = $1 ORDER BY signed_at, uvci",
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
        self.client.execute(
            "INSERT INTO revocations (kind, value, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (kind, value) DO NOTHING",
            &[&revocation.kind(), &revocation.value(), &at],
        )?;
        Ok(())
    }

    fn revocations(&mut self) -> Result<Vec<Revocation>, StoreError> {
        let rows = self.client.query("SELECT kind, value FROM revocations ORDER BY revoked_at, kind, value", &[])?;
        Ok(rows.iter().filter_map(|r| Revocation::from_row(r.get::<_, &str>(0), r.get(1))).collect())
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
