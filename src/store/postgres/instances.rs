//! What several service instances on one PostgreSQL database share beyond the store: the
//! rate-limit counters and the revocation notifications (issue 11).

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, NoTls};

use super::REVOCATION_CHANNEL;
use crate::store::StoreError;

/// The database's clock in milliseconds: one clock for every instance, whatever theirs say.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Rate-limit counters in the `rate_limits` table, on a connection of their own (a
/// lookup's checks do not queue behind the store's other work). Keys are keyed hashes.
pub struct SharedCounters {
    url: String,
    client: Client,
}

impl SharedCounters {
    /// Connects; the schema is the store's (opened first, which migrates).
    pub fn connect(url: &str) -> Result<SharedCounters, StoreError> {
        Ok(SharedCounters { url: url.to_owned(), client: Client::connect(url, NoTls)? })
    }

    /// The connection, opened again if it was lost (a database restart).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.is_closed() {
            self.client = Client::connect(&self.url, NoTls)?;
        }
        Ok(&mut self.client)
    }

    /// Counts one attempt under each key (distinct keys) in its window of `window`,
    /// started by its first attempt, and returns the attempts now in each window, in the
    /// order given. One round trip.
    pub fn count(&mut self, keys: &[Vec<u8>], window: Duration) -> Result<Vec<u32>, StoreError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        // `excluded.window_end - $2` is the statement's "now": a window that ended restarts.
        let sql = format!(
            "INSERT INTO rate_limits (key_hash, window_end, n) SELECT k, {NOW_MS} + $2, 1 \
             FROM UNNEST($1::bytea[]) AS t(k) ON CONFLICT (key_hash) DO UPDATE SET \
             n = CASE WHEN rate_limits.window_end <= excluded.window_end - $2 THEN 1 ELSE rate_limits.n + 1 END, \
             window_end = CASE WHEN rate_limits.window_end <= excluded.window_end - $2 \
             THEN excluded.window_end ELSE rate_limits.window_end END \
             RETURNING key_hash, n"
        );
        let rows = self.client()?.query(&sql, &[&keys, &window_ms])?;
        Ok(in_order(keys, &rows))
    }

    /// The attempts counted under each key in its current window, without counting one.
    pub fn counted(&mut self, keys: &[Vec<u8>]) -> Result<Vec<u32>, StoreError> {
        let sql = format!("SELECT key_hash, n FROM rate_limits WHERE key_hash = ANY($1) AND window_end > {NOW_MS}");
        let rows = self.client()?.query(&sql, &[&keys])?;
        Ok(in_order(keys, &rows))
    }

    /// Deletes the counters whose window ended; returns how many.
    pub fn sweep(&mut self) -> Result<u64, StoreError> {
        let sql = format!("DELETE FROM rate_limits WHERE window_end <= {NOW_MS}");
        Ok(self.client()?.execute(&sql, &[])?)
    }
}

/// The counts of `rows` (key, n) in the order of `keys`; 0 for a key without a row.
fn in_order(keys: &[Vec<u8>], rows: &[postgres::Row]) -> Vec<u32> {
    let found: std::collections::HashMap<Vec<u8>, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    keys.iter().map(|k| found.get(k).map_or(0, |n| u32::try_from(*n).unwrap_or(u32::MAX))).collect()
}

/// First and longest pause before connecting again after the listening connection failed.
const RECONNECT_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// How long the listener waits for a notification before checking that its connection is
/// alive: a database host that vanished without closing the socket is noticed within this
/// plus the check's own timeout.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(15);

/// The listening connection's `application_name`.
pub const LISTENER_NAME: &str = "vaxpass-revocations";

/// Listens for revocation notifications on a connection of its own and calls `changed`
/// once per burst of them, and once after each (re)connection (revocations may have been
/// made while it was not listening). Reconnects with exponential backoff; runs until
/// `changed` returns false.
pub fn listen_revocations(url: &str, mut changed: impl FnMut() -> bool) {
    let mut backoff = RECONNECT_BACKOFF.0;
    loop {
        match listen_once(url, &mut changed) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "revocation listener disconnected");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(RECONNECT_BACKOFF.1);
    }
}

/// One listening connection: `Ok` when `changed` asked to stop, `Err` when the connection
/// failed.
fn listen_once(url: &str, changed: &mut impl FnMut() -> bool) -> Result<(), StoreError> {
    // Named, for operators (pg_stat_activity) and for the test that cuts it.
    let mut client = url.parse::<postgres::Config>()?.application_name(LISTENER_NAME).connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {REVOCATION_CHANNEL}"))?;
    tracing::info!("listening for revocations");
    if !changed() {
        return Ok(());
    }
    loop {
        let got = client.notifications().timeout_iter(LIVENESS_INTERVAL).next()?;
        if got.is_some() {
            // One refresh reads every revocation so far: the rest of a burst is drained.
            while client.notifications().iter().next()?.is_some() {}
            if !changed() {
                return Ok(());
            }
        } else {
            client.is_valid(Duration::from_secs(5))?;
        }
    }
}
