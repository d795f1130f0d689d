//! Station uploads (SPEC §7): `POST /api/v1/batches` takes a `doses.csv` from a facility
//! authenticated by its token and signs it with that facility's own key, through the same
//! gate as the CLI; `GET /api/v1/batches/{id}` shows progress, the summary, the passports
//! (with their claim codes) and the rejected rows, to that facility only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest as _, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::gate::{
    self, BatchSink, DoseReader, FacilitySigner, GateError, RejectReason, Rejection, SignedPassport, SignerError,
    SigningFacility,
};
use crate::ledger::Ledger;
use crate::store::{BatchRecord, BatchRejection, Store};

/// Rows of passports and rejections a batch answer lists at most.
const MAX_LISTED: u64 = 100_000;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/batches", post(upload)).route("/api/v1/batches/{id}", get(status))
}

/// The facility a bearer token belongs to; 401 for none or an unknown one.
pub(super) async fn require_facility(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    // Looked up by hash: the table holds no token, and the lookup is an index probe on a
    // hash, which reveals nothing about near-miss tokens.
    let hash = super::bearer_token_hash(headers).ok_or(ApiError::Unauthorized)?;
    let now = state.now().unix_timestamp();
    state.with_store(move |s| s.facility_of_token(&hash, now)).await?.ok_or(ApiError::Unauthorized)
}

/// Loads the facility's own key and DSC from the hierarchy directory.
pub(super) fn facility_signer(state: &AppState, code: &str) -> Result<SigningFacility, ApiError> {
    let dir = state.config().keys.join(format!("facility-{code}"));
    let missing = || ApiError::Conflict(format!("this server holds no signing key for facility {code}"));
    // A key configured by code (a token, SPEC §10) wins over the hierarchy's key.pem.
    let key_arg = match state.config().facility_keys.get(code) {
        Some(k) => std::path::PathBuf::from(k),
        None => dir.join("key.pem"),
    };
    if !crate::pki::pkcs11::is_pkcs11_uri(&key_arg.to_string_lossy()) && !key_arg.exists() {
        return Err(missing());
    }
    let now = state.now();
    let cert = dir.join("cert.pem");
    let signer = FacilitySigner::load(&key_arg, &cert, None, now.unix_timestamp()).map_err(|e| match e {
        SignerError::NoCertificate { .. } => missing(),
        // Expired, not yet valid or not a passport signer: the ministry's to fix, not a fault.
        e if e.is_policy() => ApiError::Conflict(e.to_string()),
        e => ApiError::internal(e),
    })?;
    if signer.facility_code != code {
        return Err(ApiError::internal(format!(
            "{}: the certificate names facility {}",
            cert.display(),
            signer.facility_code
        )));
    }
    // A revoked DSC signs nothing more here (its tokens were disabled with it; this also
    // covers a revocation made through another instance or before a token was created).
    if state.verifier().revocations().is_facility_revoked(&signer.cert.kid) {
        return Err(ApiError::Forbidden("this facility's signing certificate is revoked".into()));
    }
    Ok(SigningFacility::new(signer, state.inner.secret.clone(), now))
}

/// Why a batch failed when its instance stopped: what the station reads.
const LEASE_EXPIRED: &str =
    "the service instance signing this batch stopped before it finished (its lease expired): upload the file again";

/// Feeds a service batch's results into the store through a connection of the batch's own:
/// the ledger, the listing and the progress (a batch's reads and chunk transactions must
/// not queue behind lookups, nor lookups behind them on the store thread).
struct StoreSink {
    state: AppState,
    batch: BatchRecord,
    ledger: Box<dyn Store>,
    /// Rejections until they are recorded (all rows are read before signing starts).
    rejections: Vec<BatchRejection>,
    /// Set by the heartbeat when another instance declared the batch failed: signing stops.
    lease_lost: Arc<AtomicBool>,
}

/// What a facility may learn of the registry through the service (issue #8 item 7): enough
/// to see what to fix, not a copy of a stranger's identity. Names become the initial of each
/// word ("Nguyễn Văn An" → "N. V. A."), birth dates their year; sex is kept (one of two).
fn mask_suggestion(reason: RejectReason, suggestion: &str) -> String {
    match reason {
        RejectReason::NameMismatch => suggestion
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .map(|c| format!("{c}."))
            .collect::<Vec<_>>()
            .join(" "),
        RejectReason::DobMismatch => suggestion.get(..4).unwrap_or_default().to_owned(),
        _ => suggestion.to_owned(),
    }
}

impl BatchSink for StoreSink {
    fn run_id(&self) -> &str {
        &self.batch.batch_id
    }

    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut self.ledger
    }

    fn rejected(&mut self, r: &Rejection) -> Result<(), GateError> {
        if matches!(r.reason, RejectReason::NameMismatch | RejectReason::DobMismatch | RejectReason::SexMismatch) {
            // Which facility looked up which mismatching record: a facility probing the
            // registry with numbers of people it never vaccinated shows up here.
            tracing::info!(
                facility = %self.batch.facility_code,
                batch_id = %self.batch.batch_id,
                reason = r.reason.as_str(),
                "registry mismatch answered"
            );
        }
        self.rejections.push(BatchRejection {
            record_id: r.record_id.clone(),
            reason: r.reason.as_str().to_owned(),
            detail: r.detail.clone(),
            suggestion: mask_suggestion(r.reason, &r.suggestion),
        });
        Ok(())
    }

    fn signed(&mut self, passports: Vec<SignedPassport>, fresh: Vec<bool>) -> Result<(), GateError> {
        // The first chunk comes once every row has been read and merged: the rejections are
        // all known, so they are recorded with it rather than when the batch ends.
        let rejections = std::mem::take(&mut self.rejections);
        let listed: Vec<(String, Vec<String>)> =
            passports.iter().map(|p| (p.uvci.clone(), p.record_ids.clone())).collect();
        let count = fresh.iter().filter(|f| **f).count() as u64;
        self.ledger
            .add_batch_results(&self.batch.batch_id, &listed, &rejections)
            .map_err(|e| GateError::sink("recording the batch's results", e))?;
        if self.lease_lost.load(Ordering::Relaxed) {
            return Err(GateError::Sink {
                context: "another instance marked this batch failed (its lease expired)",
                source: None,
            });
        }
        self.state.inner.metrics.passports_signed(count);
        Ok(())
    }

    fn progress(&mut self, done: u64, total: u64) {
        self.batch.persons_done = done;
        self.batch.persons_total = total;
        let at = self.state.now().unix_timestamp();
        // Advisory: a failure here must not stop signing.
        let _ = self.ledger.save_batch(&self.batch, at);
    }
}

/// `POST /api/v1/batches` — facility, authenticated. Body: the `doses.csv` file, read only
/// once the token is known good, so an anonymous client holds no body in memory.
async fn upload(State(state): State<AppState>, request: Request) -> Result<(StatusCode, Json<Value>), ApiError> {
    let facility_code = require_facility(&state, request.headers()).await?;
    let body = Bytes::from_request(request, &state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })?;
    let slot = Arc::clone(&state.inner.batch_slots).try_acquire_owned().map_err(|_| ApiError::TooManyRequests)?;
    let facility = facility_signer(&state, &facility_code)?;
    // A file without the required columns is refused now, not in the background.
    DoseReader::new(&body[..], "doses.csv").map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut id = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| ApiError::internal("no randomness"))?;
    let batch_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let batch = BatchRecord {
        batch_id: batch_id.clone(),
        facility_code: facility_code.clone(),
        status: "running".into(),
        persons_total: 0,
        persons_done: 0,
        summary: None,
        error: None,
    };
    let first = batch.clone();
    let at = state.now().unix_timestamp();
    let (owner, lease) = (state.inner.instance_id.clone(), lease_secs(&state));
    state
        .with_store(move |s| {
            s.save_batch(&first, at)?;
            s.renew_lease(&first.batch_id, &owner, at.saturating_add(lease))
        })
        .await?;

    let lease_lost = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(heartbeat(state.clone(), batch_id.clone(), Arc::clone(&lease_lost), done_rx));
    let worker = state.clone();
    std::thread::Builder::new()
        .name(format!("batch-{batch_id}"))
        .spawn(move || {
            run_batch(worker, facility, batch, body, lease_lost, done_tx);
            drop(slot);
        })
        .map_err(ApiError::internal)?;
    tracing::info!(facility = %facility_code, %batch_id, "batch accepted");
    Ok((StatusCode::ACCEPTED, Json(json!({"batch_id": batch_id, "status": "running"}))))
}

/// [`super::Config::batch_lease_secs`], at least 3 (a renewal each second).
fn lease_secs(state: &AppState) -> i64 {
    i64::try_from(state.config().batch_lease_secs.max(3)).unwrap_or(i64::MAX)
}

/// Renews a running batch's lease every third of its length until the batch ends (`done`
/// resolves when its thread drops the sender). A renewal the store refuses means another
/// instance marked the batch failed: `lost` stops the run at its next chunk.
async fn heartbeat(
    state: AppState,
    batch_id: String,
    lost: Arc<AtomicBool>,
    mut done: tokio::sync::oneshot::Receiver<()>,
) {
    let lease = lease_secs(&state);
    let mut tick = tokio::time::interval(Duration::from_secs(lease.unsigned_abs() / 3));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut done => return,
            _ = tick.tick() => {}
        }
        let (id, owner, until) =
            (batch_id.clone(), state.inner.instance_id.clone(), state.now().unix_timestamp().saturating_add(lease));
        match state.with_lease_store(move |s| s.renew_lease(&id, &owner, until)).await {
            Ok(true) => {}
            // The batch ended meanwhile: its final save came first.
            Ok(false) if matches!(done.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Closed)) => return,
            Ok(false) => {
                tracing::error!(%batch_id, "batch lease lost: another instance marked it failed; stopping it");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            // The lease may still be renewed in time: the next tick tries again.
            Err(e) => tracing::warn!(%batch_id, error = %e, "cannot renew a batch lease"),
        }
    }
}

/// Marks failed, every third of a lease, the running batches whose lease expired: their
/// instance stopped (killed, or lost its database) and will not finish them.
///
/// Failed rather than signed again here: the upload is not stored (it holds identity
/// numbers and names; keeping it in the database only for this would copy personal data
/// in clear), and this instance may not hold that facility's key. The station uploads the
/// file again; passports the stopped run signed are already in the ledger and reused.
pub(super) async fn sweep_leases(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(lease_secs(&state).unsigned_abs() / 3));
    loop {
        tick.tick().await;
        let at = state.now().unix_timestamp();
        match state.with_lease_store(move |s| s.expire_leases(at, LEASE_EXPIRED)).await {
            Ok(ids) => {
                for batch_id in ids {
                    tracing::warn!(%batch_id, "batch failed: its instance stopped (lease expired)");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check batch leases"),
        }
    }
}

/// Signs an upload; `heartbeat` is dropped (the lease no longer renewed) just before the
/// final save, which the lease's remaining two thirds cover, so that a renewal never meets
/// the batch already `done` and takes that for a lost lease.
fn run_batch(
    state: AppState,
    facility: SigningFacility,
    batch: BatchRecord,
    body: Bytes,
    lease_lost: Arc<AtomicBool>,
    heartbeat: tokio::sync::oneshot::Sender<()>,
) {
    let ledger = match crate::store::open(&state.config().db) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(batch_id = %batch.batch_id, error = %e, "batch failed: cannot open the database");
            let mut batch = batch;
            batch.status = "failed".into();
            let at = state.now().unix_timestamp();
            let _ = state.with_store_blocking(move |s| s.save_batch(&batch, at));
            return;
        }
    };
    let mut sink = StoreSink { state: state.clone(), batch, ledger, rejections: Vec::new(), lease_lost };
    let outcome = DoseReader::new(&body[..], "doses.csv")
        .and_then(|reader| gate::run(reader, state.inner.registry.as_deref(), &facility, &mut sink));
    let mut batch = sink.batch.clone();
    let mut counts = Vec::new();
    match outcome {
        Ok(summary) => {
            batch.status = "done".into();
            counts = crate::corrections::run_counts(&batch.facility_code, &summary.tally());
            batch.summary = serde_json::to_string(&summary).ok();
            // Passports the batch revoked verify as REVOKED here at once (SPEC §8.2), before
            // the batch reports itself done; other instances when notified (or refreshed).
            if summary.revoked > 0
                && let Err(e) = state.refresh_revocations()
            {
                tracing::warn!(error = %e, "revocation refresh after a batch failed");
            }
        }
        Err(e) => {
            tracing::error!(batch_id = %batch.batch_id, error = %crate::Chain(&e), "batch failed");
            batch.status = "failed".into();
            // What the station may read: the error's own message, its causes (database
            // details) only in the log.
            batch.error = Some(e.to_string());
        }
    }
    // Rejections not yet recorded (a run that stopped before signing).
    let (id, rejections) = (batch.batch_id.clone(), std::mem::take(&mut sink.rejections));
    let at = state.now().unix_timestamp();
    drop(heartbeat);
    let s = &mut sink.ledger;
    let saved = s.add_batch_results(&id, &[], &rejections).and_then(|()| s.save_batch(&batch, at)).map(|()| {
        // After the batch's status: a report that cannot count it must not leave the
        // station waiting for a batch that is done.
        if let Err(e) = s.record_run_counts(&id, &counts) {
            tracing::error!(error = %e, "cannot record a batch's counts for the reports");
        }
    });
    if let Err(e) = saved {
        tracing::error!(error = %e, "cannot record a batch's results");
    }
}

/// `GET /api/v1/batches/{id}` — the facility that uploaded it.
async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let facility_code = require_facility(&state, &headers).await?;
    let lookup = id.clone();
    let batch = state.with_store(move |s| s.batch(&lookup)).await?;
    // Another facility's batch is "not found", not "forbidden": ids are not confirmed.
    let batch = batch.filter(|b| b.facility_code == facility_code).ok_or(ApiError::NotFound)?;
    let changes_of = id.clone();
    let results = state.with_store(move |s| s.batch_results(&id, MAX_LISTED)).await?;
    // What revoked.csv lists for a CLI run (SPEC §8.2).
    let changes = state.with_store(move |s| s.run_changes(&changes_of)).await?;
    let rejected = results.rejections;
    let passports: Vec<Value> = results
        .passports
        .into_iter()
        .map(|(uvci, record_ids, person)| {
            let claim_code = match person {
                Some(person) => state.inner.secret.person_claim_code(&person),
                None => state.inner.secret.claim_code(&uvci),
            };
            json!({"claim_code": claim_code, "uvci": uvci, "record_ids": record_ids})
        })
        .collect();
    Ok(Json(json!({
        "batch_id": batch.batch_id,
        "status": batch.status,
        "persons_total": batch.persons_total,
        "persons_done": batch.persons_done,
        "summary": batch.summary.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
        "error": batch.error,
        "passports": passports,
        "rejected": rejected,
        "revoked": changes.revoked.iter().map(|u| json!({"uvci": u, "reason": "corrected"})).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Config;

    fn state_with(facility_key: &str) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
        let config = Config {
            db: format!("sqlite://{}", dir.path().join("v.db").display()),
            keys,
            secret: dir.path().join("secret"),
            facility_keys: [("01001".to_owned(), facility_key.to_owned())].into(),
            // keys-example's DSCs are valid then, whatever the machine's date.
            clock: crate::service::Clock::starting_at(time::macros::datetime!(2027-01-10 00:00 UTC)),
            ..Config::default()
        };
        let now = config.clock.now();
        let state = AppState::open(config, now).unwrap();
        (dir, state)
    }

    #[test]
    fn configured_facility_key_is_the_one_that_signs() {
        let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
        // 01001's own key, configured explicitly: accepted.
        let (_d, state) = state_with(&keys.join("facility-01001/key.pem").display().to_string());
        assert_eq!(facility_signer(&state, "01001").unwrap().signer.facility_code, "01001");
        // Another facility's key for 01001's certificate: refused.
        let (_d, state) = state_with(&keys.join("facility-01100/key.pem").display().to_string());
        let Err(ApiError::Internal(e)) = facility_signer(&state, "01001") else { panic!("a mismatched key was used") };
        assert!(e.contains("does not match the certificate"), "{e}");
        // A token URI whose module is missing: the token's one-line reason.
        let (_d, state) = state_with("pkcs11:token=t;object=dsc?module-path=/nonexistent/libp11.so&pin-value=1");
        let Err(ApiError::Internal(e)) = facility_signer(&state, "01001") else { panic!("an unloadable key was used") };
        assert_eq!(e, "PKCS#11 module /nonexistent/libp11.so: cannot be loaded (no such file)");
    }
}
