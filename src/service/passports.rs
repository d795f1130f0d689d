//! The traveller's routes (SPEC §7): `POST /api/v1/passports/lookup` with identity number,
//! date of birth and claim code, then `GET /api/v1/passports/{uvci}.{png,svg,pdf}` with the
//! short-lived token the lookup gave.
//!
//! Wrong data and absent data get the same answer (`{"passports": []}`) after the same time
//! (a floor of `lookup_floor_ms`); claim codes are compared as keyed hashes in constant time;
//! attempts are limited per client address, and failures per identity number and client.
//!
//! Why failures per identity *and client*: counting them per identity alone let anyone lock a
//! traveller out for an hour with ten wrong lookups (issue #8). Past
//! `identity_failures_before_slowdown` failures from all clients, lookups of that identity
//! slow down but a fully correct triple is still answered (OWASP authentication cheat sheet:
//! throttle rather than lock accounts out).

use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::{ApiError, AppState};
use crate::dates::parse_date;
use crate::gate::identity::parse_id;
use crate::ledger::PassportStatus;
use crate::render::{QrFormat, certificate_pdf, render_qr};

/// Lifetime of a download token.
pub(super) const DOWNLOAD_TOKEN_SECS: i64 = 15 * 60;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/passports/lookup", post(lookup))
        .route("/api/v1/passports/{file}", get(download))
        .layer(axum::extract::DefaultBodyLimit::max(4096))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRequest {
    id_number: String,
    dob: String,
    claim_code: String,
}

#[derive(Serialize)]
struct LookupAnswer {
    passports: Vec<Found>,
}

#[derive(Serialize)]
struct Found {
    uvci: String,
    /// The person's newest passport; an earlier one that only lacks later doses is still
    /// valid and listed after it with `false` (SPEC §8.2).
    current: bool,
    token: String,
    token_expires_at: i64,
    png: String,
    svg: String,
    pdf: String,
}

/// The identity number as the gate repairs it (CCCD/CMND), or a foreigner's passport number.
fn normalise_id(raw: &str) -> String {
    parse_id(raw, "VN")
        .or_else(|_| parse_id(raw, "ZZ"))
        .map(|id| id.as_str().to_owned())
        .unwrap_or_else(|_| raw.trim().to_ascii_uppercase())
}

/// The window of the failure counters.
const FAILURE_WINDOW: Duration = Duration::from_secs(3600);

/// `POST /api/v1/passports/lookup` — traveller.
async fn lookup(
    State(state): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    body: Result<Json<LookupRequest>, JsonRejection>,
) -> Result<Json<LookupAnswer>, ApiError> {
    let start = Instant::now();
    let config = state.config();
    let Json(req) = body?;
    let client = state.client_key(&ext, &headers);
    if !state.allow(format!("client:{client}"), config.lookups_per_client_per_minute, Duration::from_secs(60)).await? {
        return Err(ApiError::TooManyRequests);
    }
    let id = normalise_id(&req.id_number);
    let id_hash = state.inner.secret.id_hash(&id);
    // Keys hold a hash of the identity number, never the number.
    let identity = crate::pki::revocation_hex(&id);
    let (pair_key, identity_key) = (format!("idc:{identity}:{client}"), format!("id:{identity}"));
    // Refused without looking: past its limit, this client learns nothing more on this
    // identity, right or wrong.
    let counted = state.counted(&[&pair_key, &identity_key]).await?;
    if counted[0] >= config.lookups_per_identity_per_hour {
        return Err(ApiError::TooManyRequests);
    }
    let floor = if counted[1] >= config.identity_failures_before_slowdown {
        Duration::from_millis(config.lookup_slowdown_ms.max(config.lookup_floor_ms))
    } else {
        Duration::from_millis(config.lookup_floor_ms)
    };
    let claim_hash = state.inner.secret.claim_hash(req.claim_code.trim().to_ascii_uppercase().as_str());
    let dob = parse_date(&req.dob).map(|d| d.to_iso()).unwrap_or_default();
    let stored = state.with_store(move |s| s.passports_by_id_hash(&id_hash)).await?;
    let now = state.now().unix_timestamp();
    let mut found = Vec::new();
    // Never a revoked passport; the current one first, then superseded ones, newest first.
    let mut stored: Vec<_> = stored.into_iter().filter(|p| p.status != PassportStatus::Revoked).collect();
    stored.reverse();
    stored.sort_by_key(|p| p.status != PassportStatus::Current);
    let verifier = state.verifier();
    for p in stored {
        let claim_ok = bool::from(p.claim_hash.ct_eq(&claim_hash));
        let message = crate::passport::decode(&p.hc1).ok();
        // Our own passports: the date of birth is read from the signed content.
        let dob_ok = message
            .as_ref()
            .and_then(|m| m.claims().ok())
            .and_then(|c| c.dcc.get("dob").and_then(|d| d.as_str()).map(|d| d == dob))
            .unwrap_or(false);
        // Nor one whose signer's DSC was revoked since: it would verify as revoked.
        let signer_revoked = message.as_ref().is_some_and(|m| signer_is_revoked(verifier.revocations(), m));
        if claim_ok && dob_ok && !signer_revoked {
            let expires = now + DOWNLOAD_TOKEN_SECS;
            let token = format!(
                "{expires}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(state.inner.secret.download_tag(&p.uvci, expires))
            );
            let path = format!("/api/v1/passports/{}", percent_encode(&p.uvci));
            found.push(Found {
                png: format!("{path}.png?token={token}"),
                svg: format!("{path}.svg?token={token}"),
                pdf: format!("{path}.pdf?token={token}"),
                current: p.status == PassportStatus::Current,
                uvci: p.uvci,
                token,
                token_expires_at: expires,
            });
        }
    }
    if found.is_empty() {
        // Counted whatever happens to the counters: an error here must not shorten the floor.
        if let Err(e) = state.count(vec![pair_key, identity_key], FAILURE_WINDOW).await {
            tracing::error!(error = %e, "cannot count a failed lookup");
        }
    }
    // The same time whether the person exists, the code is wrong, or it all matched.
    tokio::time::sleep(floor.saturating_sub(start.elapsed())).await;
    Ok(Json(LookupAnswer { passports: found }))
}

/// Percent-encodes a UVCI for one path segment (it contains `:`, `/` and `#`).
pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

fn check_token(state: &AppState, uvci: &str, token: &str, now: i64) -> Result<(), ApiError> {
    let (exp, tag) = token.split_once('.').ok_or(ApiError::NotFound)?;
    let exp: i64 = exp.parse().map_err(|_| ApiError::NotFound)?;
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).map_err(|_| ApiError::NotFound)?;
    let expected = state.inner.secret.download_tag(uvci, exp);
    if exp < now || !bool::from(tag.ct_eq(&expected)) {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// `GET /api/v1/passports/{uvci}.{png,svg,pdf}?token=…` — traveller, with the lookup's token.
async fn download(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let (uvci, ext) = file.rsplit_once('.').ok_or(ApiError::NotFound)?;
    let format = match ext {
        "png" => Some(QrFormat::Png),
        "svg" => Some(QrFormat::Svg),
        "pdf" => None,
        _ => return Err(ApiError::NotFound),
    };
    check_token(&state, uvci, &q.token, state.now().unix_timestamp())?;
    if state.verifier().revocations().is_passport_revoked(uvci) {
        return Err(ApiError::Gone("this passport has been revoked"));
    }
    let uvci = uvci.to_owned();
    let (hc1, status) = state.with_store(move |s| s.passport_by_uvci(&uvci)).await?.ok_or(ApiError::NotFound)?;
    if status == PassportStatus::Revoked {
        return Err(ApiError::Gone("this passport has been revoked"));
    }
    if crate::passport::decode(&hc1).is_ok_and(|m| signer_is_revoked(state.verifier().revocations(), &m)) {
        return Err(ApiError::Gone("the certificate that signed this passport has been revoked"));
    }
    // QR encoding and PDF layout take milliseconds: off the async workers.
    let bytes = tokio::task::spawn_blocking(move || match format {
        Some(f) => render_qr(&hc1, f),
        None => certificate_pdf(&hc1),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let content_type = match format {
        Some(QrFormat::Png) => "image/png",
        Some(QrFormat::Svg) => "image/svg+xml",
        None => "application/pdf",
    };
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], bytes).into_response())
}

/// Whether the DSC that signed `message` (by its kid) is revoked.
fn signer_is_revoked(revocations: &crate::pki::Revocations, message: &crate::passport::CoseSign1) -> bool {
    message
        .kid
        .as_deref()
        .and_then(|k| <[u8; 8]>::try_from(k).ok())
        .is_some_and(|k| revocations.is_facility_revoked(&crate::pki::Kid(k)))
}
