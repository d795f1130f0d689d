//! `POST /api/v1/tokens/revoke` (issue #8 item 4): the Ministry revokes one facility token,
//! or every token of a facility, without revoking the facility's certificate.

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::store::TokenSelector;

/// The largest body this route reads (a token or a facility code).
const MAX_BODY: usize = 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tokens/revoke", post(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeTokens {
    /// The token itself.
    token: Option<String>,
    /// Or its SHA-256 (hex), as `vaxpass token` prints it.
    token_sha256: Option<String>,
    /// Or every token of this facility.
    facility: Option<String>,
}

/// `POST /api/v1/tokens/revoke` — ministry. One of `token`, `token_sha256`, `facility`.
async fn revoke(State(state): State<AppState>, request: Request) -> Result<Json<Value>, ApiError> {
    // The admin token is checked before a byte of the body is read.
    super::revocations::require_admin(&state, request.headers())?;
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let req: RevokeTokens = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let at = state.now().unix_timestamp();
    let revoked = match (req.token, req.token_sha256, req.facility) {
        (Some(token), None, None) => {
            let hash = super::token_hash(&token);
            state.with_store(move |s| s.revoke_tokens(TokenSelector::Hash(&hash), at)).await?
        }
        (None, Some(hex), None) => {
            let hash = crate::pki::unhex32(hex.trim())
                .ok_or_else(|| ApiError::BadRequest("token_sha256 is not 64 hex digits".into()))?;
            state.with_store(move |s| s.revoke_tokens(TokenSelector::Hash(&hash), at)).await?
        }
        (None, None, Some(code)) => {
            if !crate::provinces::is_facility_code(&code) {
                return Err(ApiError::BadRequest("facility is not a PPNNN facility code".into()));
            }
            state.with_store(move |s| s.revoke_tokens(TokenSelector::Facility(&code), at)).await?
        }
        _ => return Err(ApiError::BadRequest("give exactly one of token, token_sha256 and facility".into())),
    };
    tracing::info!(revoked, "facility tokens revoked");
    Ok(Json(json!({"revoked": revoked})))
}
