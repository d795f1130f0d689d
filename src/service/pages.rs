//! The two public web pages (SPEC §7), in Vietnamese with English, sized for a phone and
//! served by the binary itself: `/verify` (paste the QR text, or take or upload a photo) and
//! `/passport` (look up and download). Plain HTML and a little JavaScript over the JSON API.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/verify", get(|| page(include_str!("pages/verify.html"))))
        .route("/passport", get(|| page(include_str!("pages/passport.html"))))
        .route("/", get(|| page(include_str!("pages/passport.html"))))
}

async fn page(html: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Only our own script and the API: no third-party content, no framing.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        html,
    )
}
