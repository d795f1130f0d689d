//! Citizens' correction requests (SPEC §8.5) and the Ministry's figures (SPEC §8.6):
//!
//! - `POST /api/v1/corrections` — public: file a request; the answer never says whether the
//!   person exists (nothing is looked up), and filings are rate-limited per client as lookups.
//! - `GET /api/v1/corrections/{id}?code=` — public: the citizen checks their request; a wrong
//!   code is 404 after the same work as an unknown id.
//! - `GET /api/v1/corrections` — a facility's queue (its own requests, decrypted) or the
//!   Ministry's (all, by province or facility), oldest due first.
//! - `POST /api/v1/corrections/{id}/resolve` — the facility the request names, or the Ministry.
//! - `GET /api/v1/stats?by=province|facility` — the Ministry: counts only.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::corrections::{self, By, Filing, Queue, QueueStatus, Status};

/// The largest filing: a 1,000-character message of 4-byte characters, and the rest.
const MAX_FILING: usize = 8 * 1024;
/// The largest resolution body.
const MAX_RESOLUTION: usize = 8 * 1024;
/// Requests a queue lists by default, and at most.
const DEFAULT_LISTED: u32 = 200;
const MAX_LISTED: u32 = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/corrections", post(file).get(queue))
        .route("/api/v1/corrections/{id}", get(check))
        .route("/api/v1/corrections/{id}/resolve", post(resolve))
        .route("/api/v1/stats", get(stats))
}

/// Who reads a queue or resolves a request.
enum Staff {
    Facility(String),
    Ministry,
}

impl Staff {
    fn name(&self) -> &str {
        match self {
            Staff::Facility(code) => code,
            Staff::Ministry => "ministry",
        }
    }

    fn may_see(&self, facility_code: &str) -> bool {
        match self {
            Staff::Facility(code) => code == facility_code,
            Staff::Ministry => true,
        }
    }
}

async fn staff(state: &AppState, headers: &HeaderMap) -> Result<Staff, ApiError> {
    if super::revocations::require_admin(state, headers).is_ok() {
        return Ok(Staff::Ministry);
    }
    Ok(Staff::Facility(super::batches::require_facility(state, headers).await?))
}

/// A JSON body: syntax errors are 400, well-formed JSON of the wrong shape 422.
async fn json_body<T: serde::de::DeserializeOwned>(request: Request, limit: usize) -> Result<T, ApiError> {
    let body = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| ApiError::PayloadTooLarge)?;
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    })
}

/// An answer holding personal data or a request's status: never kept by a cache on the way.
fn private(answer: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

fn rfc3339(at: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// `POST /api/v1/corrections` — public.
async fn file(State(state): State<AppState>, ext: Extensions, request: Request) -> Result<Response, ApiError> {
    let client = state.client_key(&ext, request.headers());
    let per_minute = state.config().lookups_per_client_per_minute;
    if !state.allow(format!("correction:{client}"), per_minute, Duration::from_secs(60)).await? {
        return Err(ApiError::TooManyRequests);
    }
    let filing: Filing = json_body(request, MAX_FILING).await?;
    let valid = corrections::validate(filing).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    // Any facility of a province is accepted, whether or not this instance holds its key:
    // the Ministry's queue shows every request, so one naming a facility that signs
    // elsewhere (or nowhere) still reaches someone who can act on it.
    let now = state.now().unix_timestamp();
    let (request, status_code) = corrections::file(&state.inner.secret, &valid, now).map_err(ApiError::internal)?;
    let answer = json!({
        "request_id": request.request_id,
        "status_code": status_code,
        "due_at": rfc3339(request.due_at),
    });
    let (facility, kind) = (request.facility_code.clone(), request.kind.as_str());
    state.with_store(move |s| s.add_correction(&request)).await?;
    state.inner.metrics.correction_filed();
    tracing::info!(facility = %facility, kind, "correction request filed");
    // The status code is shown once: no cache on the way keeps it.
    Ok((StatusCode::ACCEPTED, private(answer)).into_response())
}

#[derive(Deserialize)]
struct CodeQuery {
    #[serde(default)]
    code: String,
}

/// `GET /api/v1/corrections/{id}?code=` — public.
async fn check(
    State(state): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, ApiError> {
    let client = state.client_key(&ext, &headers);
    let per_minute = state.config().lookups_per_client_per_minute;
    if !state.allow(format!("correction-check:{client}"), per_minute, Duration::from_secs(60)).await? {
        return Err(ApiError::TooManyRequests);
    }
    if !corrections::is_request_id(&id) {
        return Err(ApiError::NotFound);
    }
    let lookup = id.clone();
    let found = state.with_store(move |s| s.correction(&lookup)).await?;
    // An unknown id pays for the same keyed hash as a wrong code.
    let Some(request) = found else {
        let _ = corrections::code_hash(&state.inner.secret, &id, &q.code);
        return Err(ApiError::NotFound);
    };
    if !corrections::code_matches(&state.inner.secret, &request, &q.code) {
        return Err(ApiError::NotFound);
    }
    Ok(private(json!({
        "request_id": request.request_id,
        "status": request.status.as_str(),
        "kind": request.kind.as_str(),
        "facility_code": request.facility_code,
        "due_at": rfc3339(request.due_at),
        "closed_at": request.closed_at.map_or(Value::Null, rfc3339),
        "note": corrections::open_note(&state.inner.secret, &request),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    #[serde(default)]
    status: QueueStatus,
    province: Option<String>,
    facility: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/corrections` — a facility (its own) or the Ministry (all).
async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let who = staff(&state, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if let Some(p) = &q.province
        && crate::provinces::prefix_name(p).is_none()
    {
        return Err(ApiError::BadRequest("province must be a province's two digits (or 97, 98)".into()));
    }
    if let Some(f) = &q.facility
        && !crate::provinces::is_facility_code(f)
    {
        return Err(ApiError::BadRequest("facility must be a facility code PPNNN".into()));
    }
    let facility = match (&who, q.facility) {
        (Staff::Facility(own), Some(asked)) if asked != *own => {
            return Err(ApiError::Forbidden("a facility sees its own requests only".into()));
        }
        (Staff::Facility(own), _) => Some(own.clone()),
        (Staff::Ministry, asked) => asked,
    };
    let now = state.now().unix_timestamp();
    let filter = Queue {
        facility,
        province: q.province,
        status: q.status,
        now,
        limit: q.limit.unwrap_or(DEFAULT_LISTED).clamp(1, MAX_LISTED),
    };
    let requests = state.with_store(move |s| s.corrections(&filter)).await?;
    let key = &state.inner.secret;
    let listed: Vec<Value> = requests
        .iter()
        .filter(|r| who.may_see(&r.facility_code))
        .map(|r| {
            let personal = corrections::open_personal(key, r);
            json!({
                "request_id": r.request_id,
                "facility_code": r.facility_code,
                "kind": r.kind.as_str(),
                "status": r.status.as_str(),
                "created_at": rfc3339(r.created_at),
                "due_at": rfc3339(r.due_at),
                "seconds_left": r.due_at - now,
                "overdue": r.overdue(now),
                "closed_at": r.closed_at.map_or(Value::Null, rfc3339),
                "late": r.late(),
                "id_number": personal.as_ref().map(|p| p.id_number.clone()),
                "dob": personal.as_ref().map(|p| p.dob.clone()),
                "message": personal.as_ref().map(|p| p.message.clone()),
                "contact": personal.as_ref().and_then(|p| p.contact.clone()),
                "note": corrections::open_note(key, r),
            })
        })
        .collect();
    Ok(private(json!({"requests": listed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolution {
    outcome: String,
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/corrections/{id}/resolve` — the facility the request names, or the Ministry.
async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // Authenticated before a byte of the body is read.
    let who = staff(&state, request.headers()).await?;
    let resolution: Resolution = json_body(request, MAX_RESOLUTION).await?;
    let status = match resolution.outcome.as_str() {
        "resolved" => Status::Resolved,
        "rejected" => Status::Rejected,
        _ => return Err(ApiError::Unprocessable("outcome must be resolved or rejected".into())),
    };
    let note = corrections::validate_note(&resolution.note).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if !corrections::is_request_id(&id) {
        return Err(ApiError::NotFound);
    }
    let lookup = id.clone();
    // Another facility's request is as absent as an unknown one.
    let request = state
        .with_store(move |s| s.correction(&lookup))
        .await?
        .filter(|r| who.may_see(&r.facility_code))
        .ok_or(ApiError::NotFound)?;
    if request.status != Status::Open {
        return Err(ApiError::Conflict(format!("the request is already {}", request.status.as_str())));
    }
    let now = state.now().unix_timestamp();
    let sealed = corrections::seal_note(&state.inner.secret, &id, &note).map_err(ApiError::internal)?;
    let by = who.name().to_owned();
    let closed = state.with_store(move |s| s.close_correction(&id, status, now, &by, &sealed)).await?;
    if !closed {
        // Closed by someone else between the read and the write.
        return Err(ApiError::Conflict("the request is already closed".into()));
    }
    let late = now > request.due_at;
    tracing::info!(facility = %request.facility_code, by = who.name(), outcome = status.as_str(), late, "correction request closed");
    Ok(Json(json!({
        "request_id": request.request_id,
        "status": status.as_str(),
        "closed_at": rfc3339(now),
        "late": late,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    #[serde(default)]
    by: By,
}

/// `GET /api/v1/stats?by=province|facility` — the Ministry.
async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    super::revocations::require_admin(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = state.now().unix_timestamp();
    let (counts, timings) = state.with_store(|s| Ok((s.facility_counts()?, s.request_timings()?))).await?;
    let groups = corrections::group_reports(q.by, &counts, &timings, now);
    let total = corrections::group_reports(corrections::By::All, &counts, &timings, now).pop();
    Ok(Json(json!({
        "by": match q.by { By::Province => "province", By::Facility => "facility", By::All => "all" },
        "at": rfc3339(now),
        "groups": groups,
        "total": total,
    })))
}
