//! [`ReportStore`] on SQLite.

use rusqlite::{OptionalExtension as _, params};

use super::SqliteStore;
use crate::corrections::{CountRow, Queue, Request, RequestTiming, Status};
use crate::store::{
    QueueParam, REQUEST_COLUMNS, ReportStore, StoreError, count_deltas, queue_sql, request_row, to_i64,
};

fn request_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Request, StoreError>> {
    Ok(request_row(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        &r.get::<_, String>(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        &r.get::<_, String>(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn count_row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<CountRow> {
    Ok(CountRow { facility_code: r.get(0)?, counter: r.get(1)?, n: r.get::<_, i64>(2)?.max(0) as u64 })
}

impl ReportStore for SqliteStore {
    fn add_correction(&mut self, q: &Request) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO correction_requests ({REQUEST_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
            params![
                q.request_id,
                q.code_hash,
                q.facility_code,
                q.kind.as_str(),
                q.sealed,
                q.created_at,
                q.due_at,
                q.status.as_str(),
                q.closed_at,
                q.closed_by,
                q.note_sealed
            ],
        )?;
        Ok(())
    }

    fn correction(&mut self, request_id: &str) -> Result<Option<Request>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {REQUEST_COLUMNS} FROM correction_requests WHERE request_id = ?1"),
                [request_id],
                request_from,
            )
            .optional()?
            .transpose()
    }

    fn corrections(&mut self, queue: &Queue) -> Result<Vec<Request>, StoreError> {
        let (sql, params) = queue_sql(queue);
        let values: Vec<rusqlite::types::Value> = params
            .into_iter()
            .map(|p| match p {
                QueueParam::Text(t) => rusqlite::types::Value::Text(t),
                QueueParam::Int(i) => rusqlite::types::Value::Integer(i),
            })
            .collect();
        let mut stmt = self.conn.prepare(&sql.replace('$', "?"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), request_from)?;
        rows.map(|r| r?).collect()
    }

    fn close_correction(
        &mut self,
        request_id: &str,
        status: Status,
        closed_at: i64,
        closed_by: &str,
        note_sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE correction_requests SET status = ?2, closed_at = ?3, closed_by = ?4, note_sealed = ?5 \
             WHERE request_id = ?1 AND status = 'open'",
            params![request_id, status.as_str(), closed_at, closed_by, note_sealed],
        )?;
        Ok(n == 1)
    }

    fn request_timings(&mut self) -> Result<Vec<RequestTiming>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT facility_code, status, created_at, due_at, closed_at FROM correction_requests")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        rows.map(|r| {
            let (facility_code, status, created_at, due_at, closed_at) = r?;
            let status = Status::parse(&status).ok_or(StoreError::Corrupt("correction status"))?;
            Ok(RequestTiming { facility_code, status, created_at, due_at, closed_at })
        })
        .collect()
    }

    fn record_run_counts(&mut self, run_id: &str, rows: &[CountRow]) -> Result<(), StoreError> {
        // IMMEDIATE: the read of the run's old rows and the writes are one unit even when
        // another process writes meanwhile (a deferred transaction would fail to upgrade).
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut rows = rows.to_vec();
        {
            let mut stmt = tx.prepare(
                "SELECT facility_code, 'passports', COUNT(*) FROM passports WHERE batch_id = ?1 GROUP BY facility_code",
            )?;
            for r in stmt.query_map([run_id], count_row_from)? {
                rows.push(r?);
            }
        }
        let rows = &rows[..];
        let old = {
            let mut stmt = tx.prepare("SELECT facility_code, counter, n FROM run_counts WHERE run_id = ?1")?;
            let rows = stmt.query_map([run_id], count_row_from)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.execute("DELETE FROM run_counts WHERE run_id = ?1", [run_id])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO run_counts (run_id, facility_code, counter, n) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (run_id, facility_code, counter) DO UPDATE SET n = run_counts.n + excluded.n",
            )?;
            for r in rows {
                insert.execute(params![run_id, r.facility_code, r.counter, to_i64(r.n)])?;
            }
            let mut bump = tx.prepare(
                "INSERT INTO facility_counts (facility_code, counter, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (facility_code, counter) DO UPDATE SET n = facility_counts.n + excluded.n",
            )?;
            for (facility, counter, delta) in count_deltas(&old, rows) {
                bump.execute(params![facility, counter, delta])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn facility_counts(&mut self) -> Result<Vec<CountRow>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT facility_code, counter, n FROM facility_counts WHERE n <> 0")?;
        let rows = stmt.query_map([], count_row_from)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
