//! `POST /api/v1/verify` (SPEC §7): a QR text in, the `verify --json` object of SPEC §6 out.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ApiError, AppState};
use crate::verify::Verdict;

/// Largest verification request: a QR text is at most 4,296 characters; JSON adds little.
const MAX_VERIFY_JSON: usize = 16 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/verify", post(verify)).layer(axum::extract::DefaultBodyLimit::max(MAX_VERIFY_JSON))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    qr: String,
}

/// `POST /api/v1/verify` — border official, public. Bad input is a verdict, never a 5xx.
async fn verify(
    State(state): State<AppState>,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Json<Verdict>, ApiError> {
    let Json(req) = body?;
    // ~60 µs of ECDSA: cheaper to run here than to hand to the blocking pool.
    let verdict = state.verifier().verify(&req.qr, OffsetDateTime::now_utc());
    state.inner.metrics.verification(verdict.reason.as_str());
    Ok(Json(verdict))
}
