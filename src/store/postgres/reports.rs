//! [`ReportStore`] on PostgreSQL.

use super::PostgresStore;
use crate::corrections::{CountRow, Queue, Request, RequestTiming, Status};
use crate::store::{
    QueueParam, REQUEST_COLUMNS, ReportStore, StoreError, count_deltas, queue_sql, request_row, to_i64,
};

fn request_from(r: &postgres::Row) -> Result<Request, StoreError> {
    request_row(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get::<_, &str>(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get::<_, &str>(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
    )
}

fn count_row_from(r: &postgres::Row) -> Result<CountRow, StoreError> {
    Ok(CountRow { facility_code: r.try_get(0)?, counter: r.try_get(1)?, n: r.try_get::<_, i64>(2)?.max(0) as u64 })
}

impl ReportStore for PostgresStore {
    fn add_correction(&mut self, q: &Request) -> Result<(), StoreError> {
        self.client.execute(
            &format!("INSERT INTO correction_requests ({REQUEST_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"),
            &[
                &q.request_id,
                &q.code_hash,
                &q.facility_code,
                &q.kind.as_str(),
                &q.sealed,
                &q.created_at,
                &q.due_at,
                &q.status.as_str(),
                &q.closed_at,
                &q.closed_by,
                &q.note_sealed,
            ],
        )?;
        Ok(())
    }

    fn correction(&mut self, request_id: &str) -> Result<Option<Request>, StoreError> {
        self.client
            .query_opt(
                &format!("SELECT {REQUEST_COLUMNS} FROM correction_requests WHERE request_id = $1"),
                &[&request_id],
            )?
            .as_ref()
            .map(request_from)
            .transpose()
    }

    fn corrections(&mut self, queue: &Queue) -> Result<Vec<Request>, StoreError> {
        let (sql, params) = queue_sql(queue);
        let params: Vec<Box<dyn postgres::types::ToSql + Sync>> = params
            .into_iter()
            .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
                match p {
                    QueueParam::Text(t) => Box::new(t),
                    QueueParam::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.client.query(&sql, &refs)?.iter().map(request_from).collect()
    }

    fn close_correction(
        &mut self,
        request_id: &str,
        status: Status,
        closed_at: i64,
        closed_by: &str,
        note_sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let n = self.client.execute(
            "UPDATE correction_requests SET status = $2, closed_at = $3, closed_by = $4, note_sealed = $5 \
             WHERE request_id = $1 AND status = 'open'",
            &[&request_id, &status.as_str(), &closed_at, &closed_by, &note_sealed],
        )?;
        Ok(n == 1)
    }

    fn request_timings(&mut self) -> Result<Vec<RequestTiming>, StoreError> {
        self.client
            .query("SELECT facility_code, status, created_at, due_at, closed_at FROM correction_requests", &[])?
            .iter()
            .map(|r| {
                let status = Status::parse(r.try_get::<_, &str>(1)?).ok_or(StoreError::Corrupt("correction status"))?;
                Ok(RequestTiming {
                    facility_code: r.try_get(0)?,
                    status,
                    created_at: r.try_get(2)?,
                    due_at: r.try_get(3)?,
                    closed_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn record_run_counts(&mut self, run_id: &str, rows: &[CountRow]) -> Result<(), StoreError> {
        let mut tx = self.client.transaction()?;
        // Two instances recording the same run serialise on its rows.
        tx.execute("SELECT pg_advisory_xact_lock(727003)", &[])?;
        let old = tx
            .query("SELECT facility_code, counter, n FROM run_counts WHERE run_id = $1", &[&run_id])?
            .iter()
            .map(count_row_from)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut rows = rows.to_vec();
        for r in &tx.query(
            "SELECT facility_code, 'passports', COUNT(*) FROM passports WHERE batch_id = $1 GROUP BY facility_code",
            &[&run_id],
        )? {
            rows.push(count_row_from(r)?);
        }
        let rows = &rows[..];
        tx.execute("DELETE FROM run_counts WHERE run_id = $1", &[&run_id])?;
        let insert = tx.prepare(
            "INSERT INTO run_counts (run_id, facility_code, counter, n) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id, facility_code, counter) DO UPDATE SET n = run_counts.n + excluded.n",
        )?;
        for r in rows {
            tx.execute(&insert, &[&run_id, &r.facility_code, &r.counter, &to_i64(r.n)])?;
        }
        let bump = tx.prepare(
            "INSERT INTO facility_counts (facility_code, counter, n) VALUES ($1, $2, $3) \
             ON CONFLICT (facility_code, counter) DO UPDATE SET n = facility_counts.n + excluded.n",
        )?;
        for (facility, counter, delta) in count_deltas(&old, rows) {
            tx.execute(&bump, &[&facility, &counter, &delta])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn facility_counts(&mut self) -> Result<Vec<CountRow>, StoreError> {
        self.client
            .query("SELECT facility_code, counter, n FROM facility_counts WHERE n <> 0", &[])?
            .iter()
            .map(count_row_from)
            .collect()
    }
}
