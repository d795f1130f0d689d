//! Operators' routes: liveness, Prometheus metrics, the OpenAPI description.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
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

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.inner.metrics.render())
}

/// `GET /api/openapi.json`.
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}
