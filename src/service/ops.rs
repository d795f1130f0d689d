//! Operators' routes: liveness, Prometheus metrics, the OpenAPI description.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq as _;

use super::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_with_token))
        .route("/api/openapi.json", get(openapi))
}

/// The routes of `metrics_listen`, an address reachable by operators only: no token.
pub(super) fn operators_router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics))
}

/// `GET /healthz`: the process answers and its database does.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.with_store(|s| s.passport_count()).await {
        Ok(_) => (axum::http::StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(_) => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "database unavailable"})))
        }
    }
}

/// `GET /metrics` on the public address: with the metrics token only, and not at all when
/// `metrics_listen` serves it. Request counts by route and status tell an outsider what the
/// service is doing (OWASP: do not expose monitoring endpoints).
async fn metrics_with_token(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if state.config().metrics_listen.is_some() {
        return Err(ApiError::NotFound);
    }
    let given = super::bearer_token_hash(&headers).ok_or(ApiError::Unauthorized)?;
    let Some(expected) = &state.inner.metrics_token_hash else { return Err(ApiError::Unauthorized) };
    if !bool::from(given.ct_eq(expected)) {
        return Err(ApiError::Unauthorized);
    }
    Ok(metrics(State(state)).await)
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let now = state.now().unix_timestamp();
    let verifier = state.verifier();
    let facilities = super::metrics::facility_expiry(verifier.trust().signers().iter().map(|s| &s.cert), now);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], format!("{}{facilities}", state.inner.metrics.render()))
}

/// `GET /api/openapi.json`.
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}
