//! `POST /api/v1/revocations` (SPEC §7): the Ministry revokes a passport (by UVCI) or a
//! facility DSC (by kid). Verification in this instance fails at once; other instances
//! re-read revocations when notified (PostgreSQL) or every [`super::REVOCATION_REFRESH`]
//! (SQLite); the next trust list carries it.

use axum::extract::{FromRequest as _, Request, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::{ApiError, AppState};
use crate::pki::{Kid, revocation_hex};
use crate::store::Revocation;

pub(super) fn router() -> Router<AppState> {
    // A revocation is a UVCI or a kid: a few hundred bytes.
    Router::new().route("/api/v1/revocations", post(revoke)).layer(axum::extract::DefaultBodyLimit::max(4096))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    uvci: Option<String>,
    kid: Option<String>,
}

/// Checks `Authorization: Bearer <admin token>` in constant time against the configured hash.
pub(super) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = super::bearer_token_hash(headers).ok_or(ApiError::Unauthorized)?;
    let Some(expected) = &state.inner.admin_token_hash else { return Err(ApiError::Unauthorized) };
    if bool::from(given.ct_eq(expected)) { Ok(()) } else { Err(ApiError::Unauthorized) }
}

/// `POST /api/v1/revocations` — ministry, authenticated. Body `{"uvci": …}` or `{"kid": …}`.
/// The token is checked before the body is read (OWASP: authenticate before doing work).
async fn revoke(State(state): State<AppState>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, request.headers())?;
    let Json(req) = Json::<RevokeRequest>::from_request(request, &state).await?;
    let revocation = match (req.uvci, req.kid) {
        (Some(uvci), None) if !uvci.trim().is_empty() => Revocation::Passport(revocation_hex(uvci.trim())),
        (None, Some(kid)) => {
            let kid = Kid::from_base64(&kid)
                .ok_or_else(|| ApiError::BadRequest("kid is not a base64 8-byte key id".into()))?;
            Revocation::Facility(kid.to_base64())
        }
        _ => return Err(ApiError::BadRequest("give exactly one of uvci and kid".into())),
    };
    let at = state.now().unix_timestamp();
    let stored = revocation.clone();
    // A revoked facility DSC also loses its upload tokens (issue #8 item 4), in the same
    // store job, so no batch can slip in between.
    let codes: Vec<String> = match &revocation {
        Revocation::Facility(kid) => Kid::from_base64(kid)
            .map(|k| {
                let verifier = state.verifier();
                let mut codes: Vec<String> =
                    verifier.trust().candidates(&k).filter_map(|(_, s)| s.cert.facility_code.clone()).collect();
                codes.sort_unstable();
                codes.dedup();
                codes
            })
            .unwrap_or_default(),
        Revocation::Passport(_) => Vec::new(),
    };
    state
        .with_store(move |s| {
            s.revoke(&stored, at)?;
            for code in &codes {
                s.revoke_tokens(crate::store::TokenSelector::Facility(code), at)?;
            }
            Ok(())
        })
        .await?;
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.refresh_revocations()).await.map_err(ApiError::internal)??;
    let version = state.verifier().revocations().version;
    tracing::info!(
        kind = match revocation {
            Revocation::Passport(_) => "passport",
            Revocation::Facility(_) => "facility",
        },
        version,
        "revoked"
    );
    Ok(Json(serde_json::json!({"revoked": true, "version": version + 1})))
}
