//! The web pages (SPEC §7, §8.6), in Vietnamese with English, sized for a phone and served by
//! the binary itself: `/verify` (paste the QR text, or take or upload a photo), `/passport`
//! (look up and download; report a problem and check on it), `/station` (a facility signs a
//! batch and closes correction requests) and `/dashboard` (the Ministry's charts). Plain HTML
//! and a little JavaScript over the JSON API; the staff pages keep their token in the
//! browser session only.
//!
//! Scripts and styles are separate files from this origin, so the pages' Content Security
//! Policy allows no inline script or style at all (OWASP CSP cheat sheet: `'unsafe-inline'`
//! voids the policy's protection against injected markup).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

/// The pages' policy: only this origin's scripts, styles and the API; images from this
/// origin (the QR codes) and `data:`; no plugins, no framing, no `<base>` rewriting, forms
/// only to this origin.
pub(super) const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/verify", get(|| page(include_str!("pages/verify.html"))))
        .route("/passport", get(|| page(include_str!("pages/passport.html"))))
        .route("/", get(|| page(include_str!("pages/passport.html"))))
        .route("/station", get(|| page(include_str!("pages/station.html"))))
        .route("/dashboard", get(|| page(include_str!("pages/dashboard.html"))))
        .route("/station.js", get(|| asset("text/javascript; charset=utf-8", include_str!("pages/station.js"))))
        .route("/dashboard.js", get(|| asset("text/javascript; charset=utf-8", include_str!("pages/dashboard.js"))))
        .route("/staff.css", get(|| asset("text/css; charset=utf-8", include_str!("pages/staff.css"))))
        .route("/verify.js", get(|| asset("text/javascript; charset=utf-8", include_str!("pages/verify.js"))))
        .route("/passport.js", get(|| asset("text/javascript; charset=utf-8", include_str!("pages/passport.js"))))
        .route("/verify.css", get(|| asset("text/css; charset=utf-8", include_str!("pages/verify.css"))))
        .route("/passport.css", get(|| asset("text/css; charset=utf-8", include_str!("pages/passport.css"))))
}

async fn page(html: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, PAGE_CSP)], html)
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}
