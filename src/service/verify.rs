//! `POST /api/v1/verify` (SPEC §7): a QR text (JSON `{"qr": …}`) or a photo of a QR code
//! (multipart upload, decoded here) in, the `verify --json` object of SPEC §6 out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::scan::{ScanError, qr_text_from_photo_cancellable};
use crate::verify::Verdict;

/// Largest JSON verification request: a QR text is at most 4,296 characters.
const MAX_VERIFY_JSON: usize = 16 * 1024;
/// Largest photo upload: a 12 MP phone JPEG is 3–6 MB.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/verify", post(verify)).layer(axum::extract::DefaultBodyLimit::max(MAX_PHOTO_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    qr: String,
}

/// `POST /api/v1/verify` — border official, public. Bad input is a verdict or a 4xx, never
/// a 5xx.
async fn verify(State(state): State<AppState>, request: Request) -> Result<Json<Verdict>, ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let text = if content_type.starts_with("multipart/form-data") {
        let photo = photo_field(
            Multipart::from_request(request, &state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?,
        )
        .await?;
        // ~30 ms and up to 64 MB of image work: off the async workers, one per core at most.
        // The slot moves into the blocking work and is released when that work ends, not
        // when the request is answered (issue #8: a 408 released the slot while the decode
        // ran on, and 15 decodes shared 2 cores). If the request is dropped (timeout,
        // client gone, shutdown) the decode is told to stop at its next stage.
        let slot = Arc::clone(&state.inner.photo_slots).acquire_owned().await.map_err(ApiError::internal)?;
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&cancel.0);
        tokio::task::spawn_blocking(move || {
            let text = qr_text_from_photo_cancellable(&photo, &flag);
            drop(slot);
            text
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            ScanError::TooLarge => ApiError::PayloadTooLarge,
            ScanError::NotAnImage | ScanError::NoQrCode | ScanError::TooManyPatterns | ScanError::Cancelled => {
                ApiError::Unprocessable(e.to_string())
            }
        })?
    } else {
        // JSON is bounded far below the photo limit, with or without a Content-Length.
        let bytes =
            axum::body::to_bytes(request.into_body(), MAX_VERIFY_JSON).await.map_err(|_| ApiError::PayloadTooLarge)?;
        let req: VerifyRequest = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("expected a JSON body {{\"qr\": \"HC1:…\"}} ({e})")))?;
        req.qr
    };
    // ~60 µs of ECDSA and a few µs of entry rules: cheaper to run here than to hand to the
    // blocking pool.
    let now = state.now();
    let mut verdict = state.verifier().verify(&text, now);
    if let Some(rules) = &state.inner.rules {
        verdict.check_entry(rules, &state.inner.config.rules_country, now);
    }
    state.inner.metrics.verification(verdict.reason.as_str());
    Ok(Json(verdict))
}

/// Sets its flag when dropped: the handler's future is dropped when the request times out.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The first file field (or the field named `image`) of the upload.
async fn photo_field(mut multipart: Multipart) -> Result<Vec<u8>, ApiError> {
    while let Some(field) = multipart.next_field().await.map_err(|e| ApiError::BadRequest(e.body_text()))? {
        if field.file_name().is_some() || field.name() == Some("image") {
            return Ok(field.bytes().await.map_err(|e| ApiError::BadRequest(e.body_text()))?.to_vec());
        }
    }
    Err(ApiError::BadRequest("the upload has no image field".into()))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt as _;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use crate::service::{AppState, Config, router};

    async fn answer(state: &AppState, request: Request<Body>) -> Value {
        let res = router(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }

    /// SPEC §9.1 through the service: a SMART Health Card's text and a photo of it are
    /// detected and verified against the configured issuers.
    #[tokio::test]
    async fn a_smart_health_card_is_verified_from_text_and_from_a_photo() {
        let dir = tempfile::tempdir().unwrap();
        let (card, issuers) = crate::verify::signed_test_card();
        std::fs::write(dir.path().join("issuers.json"), issuers).unwrap();
        let config = Config {
            db: format!("sqlite://{}", dir.path().join("v.db").display()),
            keys: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example"),
            secret: dir.path().join("secret"),
            trust_issuers: vec![dir.path().join("issuers.json")],
            // After the card's nbf, whatever the machine's date.
            clock: crate::service::Clock::starting_at(time::macros::datetime!(2027-01-10 00:00 UTC)),
            ..Config::default()
        };
        let now = config.clock.now();
        let state = AppState::open(config, now).unwrap();
        let body = json!({"qr": card}).to_string();
        let request = Request::post("/api/v1/verify").header(header::CONTENT_TYPE, "application/json");
        let v = answer(&state, request.body(Body::from(body)).unwrap()).await;
        assert_eq!(
            (v["valid"].clone(), v["reason"].clone(), v["format"].clone()),
            (json!(true), json!("OK"), json!("shc"))
        );
        assert_eq!(v["holder"]["name"], "John B. Anyperson");

        // The QR image itself (a card of ~1,400 digits is too large for the test photo's frame).
        let photo = crate::render::render_qr(&card, crate::render::QrFormat::Png).unwrap();
        let boundary = "vaxpass-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"card.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&photo);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = Request::post("/api/v1/verify")
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap();
        let v = answer(&state, request).await;
        assert_eq!((v["reason"].clone(), v["format"].clone()), (json!("OK"), json!("shc")));
    }
}
