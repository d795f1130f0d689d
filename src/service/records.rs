//! `POST /api/v1/records/retract` (SPEC §8.3): a facility retracts records of doses it gave,
//! the ministry any record; the passports that carried them are revoked and their holders
//! re-signed in the same run.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::gate::{self, BatchSink, GateError, Rejection, RetractScope, SignedPassport};
use crate::ledger::Ledger;
use crate::store::Store;

/// The largest body: 10,000 record ids of up to ~60 bytes.
const MAX_BODY: usize = 640 * 1024;
/// Record ids one request retracts at most.
const MAX_RECORDS: usize = 10_000;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/records/retract", post(retract))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetractRequest {
    record_ids: Vec<String>,
    #[serde(default)]
    reason: String,
    /// The ministry only: whose key re-signs the affected persons (default: the facility that
    /// gave one of the retracted doses).
    facility: Option<String>,
}

struct Sink {
    run_id: String,
    ledger: Box<dyn Store>,
}

impl BatchSink for Sink {
    fn run_id(&self) -> &str {
        &self.run_id
    }
    fn ledger(&mut self) -> &mut dyn Ledger {
        &mut self.ledger
    }
    fn rejected(&mut self, _: &Rejection) -> Result<(), GateError> {
        Err(GateError::Invariant("a retraction rejects no rows"))
    }
    fn signed(&mut self, _: Vec<SignedPassport>, _: Vec<bool>) -> Result<(), GateError> {
        Ok(())
    }
}

/// Who is asking: a facility (by token) or the ministry (admin token).
enum Caller {
    Facility(String),
    Ministry,
}

async fn caller(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
    if super::revocations::require_admin(state, headers).is_ok() {
        return Ok(Caller::Ministry);
    }
    Ok(Caller::Facility(super::batches::require_facility(state, headers).await?))
}

/// `POST /api/v1/records/retract` — facility (own records) or ministry (any).
async fn retract(State(state): State<AppState>, request: Request) -> Result<Json<Value>, ApiError> {
    // Authenticated before a byte of the body is read.
    let who = caller(&state, request.headers()).await?;
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let req: RetractRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req.record_ids.is_empty() || req.record_ids.len() > MAX_RECORDS {
        return Err(ApiError::BadRequest(format!("give 1 to {MAX_RECORDS} record_ids")));
    }
    let reason = if req.reason.trim().is_empty() { "retracted".to_owned() } else { req.reason.trim().to_owned() };
    let ids = req.record_ids;
    let signer_code = match (&who, req.facility) {
        (Caller::Facility(code), None) => code.clone(),
        (Caller::Facility(_), Some(_)) => {
            return Err(ApiError::BadRequest("facility is for the ministry; a facility signs with its own key".into()));
        }
        (Caller::Ministry, Some(code)) => code,
        (Caller::Ministry, None) => {
            let first = ids.clone();
            let found = state
                .with_store(move |s| s.ledger_by_record(&first.iter().map(String::as_str).collect::<Vec<_>>()))
                .await?;
            match found.first() {
                Some(d) => d.facility_code.clone(),
                None => {
                    return Ok(Json(
                        serde_json::to_value(gate::Retraction { unknown: ids, ..Default::default() })
                            .map_err(ApiError::internal)?,
                    ));
                }
            }
        }
    };
    let facility = super::batches::facility_signer(&state, &signer_code)?;
    // Re-signing takes the cores a batch takes: retractions share the batches' slots.
    let slot = Arc::clone(&state.inner.batch_slots).try_acquire_owned().map_err(|_| ApiError::TooManyRequests)?;
    let scope_code = match &who {
        Caller::Facility(code) => Some(code.clone()),
        Caller::Ministry => None,
    };
    let run_id = gate::retraction_run_id(scope_code.as_deref().unwrap_or("ministry"), &ids, &reason);
    let db = state.config().db.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<gate::Retraction, ApiError> {
        let mut sink = Sink { run_id, ledger: crate::store::open(&db).map_err(ApiError::internal)? };
        let scope = match &scope_code {
            Some(code) => RetractScope::Facility(code),
            None => RetractScope::Ministry,
        };
        let done = gate::retract(&ids, &reason, scope, &facility, &mut sink).map_err(ApiError::internal);
        if let Ok(outcome) = &done {
            let counts = crate::corrections::run_counts(&facility.signer.facility_code, &outcome.tally());
            sink.ledger.record_run_counts(&sink.run_id, &counts).map_err(ApiError::internal)?;
        }
        drop(slot);
        done
    })
    .await
    .map_err(ApiError::internal)??;
    // The revocations take effect here at once, elsewhere within the refresh interval.
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.refresh_revocations()).await.map_err(ApiError::internal)??;
    tracing::info!(
        who = match &who {
            Caller::Facility(code) => code.as_str(),
            Caller::Ministry => "ministry",
        },
        retracted = outcome.retracted,
        revoked = outcome.revoked.len(),
        "records retracted"
    );
    Ok(Json(serde_json::to_value(outcome).map_err(ApiError::internal)?))
}
