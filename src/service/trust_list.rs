//! `GET /api/v1/trust-list` (SPEC §7): roots, intermediates, facility DSCs and revocations in
//! one bundle with a version, signed by a trust-list key whose certificate chains to the
//! Ministry root, so that offline verifiers can update safely.
//!
//! The answer is `{"bundle": base64(JSON), "signature": base64(ES256 r‖s over the bundle
//! bytes), "certificate": PEM}`; the bundle is
//! `{"version", "issued_at", "roots", "intermediates", "dscs", "revocations"}` with PEM
//! certificates and the revocation file format of the README.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;

use super::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/trust-list", get(trust_list))
}

#[derive(Serialize)]
struct Bundle {
    version: u64,
    issued_at: i64,
    roots: Vec<String>,
    intermediates: Vec<String>,
    dscs: Vec<String>,
    revocations: serde_json::Value,
}

/// The signed envelope.
#[derive(Serialize)]
pub(super) struct SignedTrustList {
    bundle: String,
    signature: String,
    certificate: String,
}

/// `GET /api/v1/trust-list` — verifier devices, public.
async fn trust_list(State(state): State<AppState>) -> Result<Json<SignedTrustList>, ApiError> {
    let verifier = state.verifier();
    let trust = verifier.trust();
    let (roots, intermediates): (Vec<_>, Vec<_>) = trust.authorities().partition(|c| c.self_issued);
    let revocations = verifier.revocations();
    let bundle = Bundle {
        version: revocations.version + 1,
        issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        roots: roots.iter().map(|c| c.to_pem()).collect(),
        intermediates: intermediates.iter().map(|c| c.to_pem()).collect(),
        dscs: trust.signers().iter().map(|s| s.cert.to_pem()).collect(),
        revocations: serde_json::from_str(&revocations.to_json()).map_err(ApiError::internal)?,
    };
    let bytes = serde_json::to_vec(&bundle).map_err(ApiError::internal)?;
    let Some((key, cert_pem)) = &state.inner.list_signer else {
        return Err(ApiError::internal("no trust-list signing key configured"));
    };
    let signature = key.sign(&bytes).map_err(ApiError::internal)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(Json(SignedTrustList {
        bundle: b64.encode(&bytes),
        signature: b64.encode(signature),
        certificate: cert_pem.clone(),
    }))
}
