//! The PostgreSQL store, for several service instances sharing one database. Same schema and
//! behaviour as SQLite.

use std::collections::HashMap;

use postgres::{Client, NoTls};

use super::{BatchRecord, BatchRejection, BatchResults, Revocation, SCHEMA, Store, StoreError, StoredPassport, to_i64};
use crate::gate::SignedPassport;

pub(super) struct PostgresStore {
    client: Client,
}

impl PostgresStore {
    pub(super) fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let mut client = Client::connect(url, NoTls)?;
        // Serialise schema creation between instances starting at once.
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(727001)", &[])?;
        tx.batch_execute(SCHEMA)?;
        tx.commit()?;
        Ok(PostgresStore { client })
    }
}

impl Store for PostgresStore {
    fn hc1_by_uvci(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, StoreError> {
        let list: Vec<String> = uvcis.iter().map(|s| (*s).to_owned()).collect();
        let rows = self.client.query("SELECT uvci, hc1 FROM passports WHERE uvci = ANY($1)", &[&list])?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect())
    }

    fn insert_passports(
        &mut self,
        batch_id: &str,
        facility_code: &str,
        at: i64,
        passports: &[&SignedPassport],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut kept = HashMap::new();
        let mut tx = self.client.transaction()?;
        let ins = tx.prepare(
            "INSERT INTO passports (uvci, id_hash, claim_hash, facility_code, kid, hc1, batch_id, signed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (uvci) DO NOTHING",
        )?;
        let audit = tx.prepare(
            "INSERT INTO audit_log (at, facility_code, kid, action, uvci, batch_id) VALUES ($1, $2, $3, 'sign', $4, $5)",
        )?;
        for p in passports {
            let n = tx
                .execute(&ins, &[&p.uvci, &p.id_hash, &p.claim_hash, &facility_code, &p.kid, &p.hc1, &batch_id, &at])?;
            if n == 1 {
                tx.execute(&audit, &[&at, &facility_code, &p.kid, &p.uvci, &batch_id])?;
            } else {
                let stored: String = tx.query_one("SELECT hc1 FROM passports WHERE uvci = $1", &[&p.uvci])?.get(0);
                kept.insert(p.uvci.clone(), stored);
            }
        }
        tx.commit()?;
        Ok(kept)
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

    fn passport_by_uvci(&mut self, uvci: &str) -> Result<Option<String>, StoreError> {
        Ok(self.client.query_opt("SELECT hc1 FROM passports WHERE uvci = $1", &[&uvci])?.map(|r| r.get(0)))
    }

    fn passports_by_id_hash(&mut self, id_hash: &[u8]) -> Result<Vec<StoredPassport>, StoreError> {
        let rows = self.client.query(
            "SELECT uvci, claim_hash, hc1 FROM passports WHERE id_hash = $1 ORDER BY signed_at, uvci",
            &[&id_hash],
        )?;
        Ok(rows.iter().map(|r| StoredPassport { uvci: r.get(0), claim_hash: r.get(1), hc1: r.get(2) }).collect())
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

    fn add_facility_token(&mut self, token_hash: &[u8], facility_code: &str, at: i64) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO facility_tokens (token_hash, facility_code, created_at) VALUES ($1, $2, $3)",
            &[&token_hash, &facility_code, &at],
        )?;
        Ok(())
    }

    fn facility_of_token(&mut self, token_hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT facility_code FROM facility_tokens WHERE token_hash = $1", &[&token_hash])?
            .map(|r| r.get(0)))
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
            .query("SELECT uvci, record_ids FROM batch_passports WHERE batch_id = $1 LIMIT $2", &[&batch_id, &limit])?
            .iter()
            .map(|r| (r.get(0), serde_json::from_str(r.get::<_, &str>(1)).unwrap_or_default()))
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
