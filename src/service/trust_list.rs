//! `GET /api/v1/trust-list` (SPEC §7): roots, intermediates, facility DSCs and revocations in
//! one bundle with a version, signed by a trust-list key whose certificate chains to the
//! Ministry root, so that offline verifiers can update safely.
//!
//! The answer is `{"bundle": base64(JSON), "signature": base64(ES256 r‖s over the bundle
//! bytes), "certificate": PEM}`; the bundle is
//! `{"version", "issued_at", "roots", "intermediates", "dscs", "revocations"}` with PEM
//! certificates and the revocation file format of the README.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ApiError, AppState};
use crate::pki::bundle::{TrustBundle, seal};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/trust-list", get(trust_list))
}

/// `GET /api/v1/trust-list` — verifier devices, public.
async fn trust_list(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let verifier = state.verifier();
    let trust = verifier.trust();
    let (roots, intermediates): (Vec<_>, Vec<_>) = trust.authorities().cloned().partition(|c| c.self_issued);
    let revocations = verifier.revocations().clone();
    let issued_at = state.now().unix_timestamp();
    let bundle = TrustBundle {
        // The issue time: it grows with every change of content (DSCs as well as
        // revocations), so a device refuses any older bundle replayed to it.
        version: u64::try_from(issued_at).unwrap_or(0),
        issued_at,
        roots,
        intermediates,
        // Pinned signers (foreign DSCs) do not chain to the Ministry root: devices refuse a
        // list carrying them (issue #8 item 9), and they trust their own pins.
        dscs: trust.signers().iter().filter(|s| !s.pinned).map(|s| s.cert.clone()).collect(),
        revocations,
    };
    let Some((key, cert_pem)) = &state.inner.list_signer else {
        return Err(ApiError::internal("no trust-list signing key configured"));
    };
    let envelope = seal(&bundle, key, cert_pem).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], envelope))
}
