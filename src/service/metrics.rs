//! Prometheus metrics, kept in a few maps behind one mutex: requests and latency by route
//! (the matched route, never the raw path, which may hold a UVCI), verifications by reason and
//! passports signed, and each facility certificate's days to expiry.
//!
//! Every label value comes from a fixed set (issue #8: random 200 KB method strings grew the
//! server by 97 MiB in 0.4 s when the method was a label): methods through [`method_label`],
//! routes as the router's templates or `unmatched`, statuses as numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The service's counters.
#[derive(Default)]
pub(super) struct Metrics {
    inner: Mutex<Inner>,
}

/// The label for a request method: one of the methods the service knows, else `other`.
pub(super) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    verifications: BTreeMap<&'static str, u64>,
    passports_signed: u64,
    corrections_filed: u64,
}

impl Metrics {
    /// Counts one request; `route` is a route template or `unmatched`, never a raw path.
    pub(super) fn request(&self, method: &axum::http::Method, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((method_label(method), route.to_owned(), status)).or_default() += 1;
            let h = m.latency.entry(route.to_owned()).or_default();
            let secs = elapsed.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Counts one verification by its reason code.
    pub(super) fn verification(&self, reason: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.verifications.entry(reason).or_default() += 1;
        }
    }

    /// Counts passports signed through the service.
    pub(super) fn passports_signed(&self, n: u64) {
        if let Ok(mut m) = self.inner.lock() {
            m.passports_signed += n;
        }
    }

    /// Counts one correction request filed by a citizen.
    pub(super) fn correction_filed(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.corrections_filed += 1;
        }
    }

    /// The Prometheus text exposition.
    pub(super) fn render(&self) -> String {
        let Ok(m) = self.inner.lock() else { return String::new() };
        let mut out = String::new();
        let _ = writeln!(out, "# HELP vaxpass_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE vaxpass_http_requests_total counter");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "vaxpass_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP vaxpass_http_request_duration_seconds Request latency by route.");
        let _ = writeln!(out, "# TYPE vaxpass_http_request_duration_seconds histogram");
        for (route, h) in &m.latency {
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ =
                    writeln!(out, "vaxpass_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "vaxpass_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "vaxpass_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "vaxpass_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let _ = writeln!(out, "# HELP vaxpass_verifications_total Passport verifications by reason code.");
        let _ = writeln!(out, "# TYPE vaxpass_verifications_total counter");
        for (reason, n) in &m.verifications {
            let _ = writeln!(out, "vaxpass_verifications_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP vaxpass_passports_signed_total Passports signed by this instance.");
        let _ = writeln!(out, "# TYPE vaxpass_passports_signed_total counter");
        let _ = writeln!(out, "vaxpass_passports_signed_total {}", m.passports_signed);
        let _ = writeln!(out, "# HELP vaxpass_corrections_filed_total Correction requests filed with this instance.");
        let _ = writeln!(out, "# TYPE vaxpass_corrections_filed_total counter");
        let _ = writeln!(out, "vaxpass_corrections_filed_total {}", m.corrections_filed);
        out
    }
}

/// The gauge `vaxpass_facility_certificate_days_to_expiry{facility="PPNNN"}` (issue 11 §4):
/// whole days from `now` to the notAfter of each facility's DSC, negative once expired, so
/// that an alert fires well before a facility can no longer sign. A facility with several
/// certificates (a key rollover) shows its latest one, the one signing relies on. Facility
/// codes are public (they are in every UVCI), not personal data.
pub(super) fn facility_expiry<'a>(certs: impl Iterator<Item = &'a crate::pki::Certificate>, now: i64) -> String {
    let mut days: BTreeMap<&str, i64> = BTreeMap::new();
    for cert in certs {
        let (Some(code), Some(d)) = (cert.facility_code.as_deref(), crate::pki::days_to_expiry(cert, now)) else {
            continue;
        };
        // Codes come from our own parsing (5 digits), so they are safe as label values.
        if !crate::provinces::is_facility_code(code) {
            continue;
        }
        let e = days.entry(code).or_insert(d);
        *e = (*e).max(d);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP vaxpass_facility_certificate_days_to_expiry Days until each facility's signing certificate expires."
    );
    let _ = writeln!(out, "# TYPE vaxpass_facility_certificate_days_to_expiry gauge");
    for (code, d) in days {
        let _ = writeln!(out, "vaxpass_facility_certificate_days_to_expiry{{facility=\"{code}\"}} {d}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_days_to_expiry_are_whole_days_per_facility() {
        let pem = std::fs::read("keys-example/facility-01001/cert.pem").unwrap();
        let cert = crate::pki::parse_certificates(&pem, true).unwrap().remove(0);
        let (_, not_after) = cert.validity.unwrap();
        // 10 days and one second before notAfter: 10 whole days.
        let text = facility_expiry([&cert].into_iter(), not_after - 10 * 86_400 - 1);
        assert!(text.contains("vaxpass_facility_certificate_days_to_expiry{facility=\"01001\"} 10\n"), "{text}");
        // A day after notAfter: -1.
        let text = facility_expiry([&cert].into_iter(), not_after + 86_400);
        assert!(text.contains("{facility=\"01001\"} -1\n"), "{text}");
        // CAs carry no facility code and give no series.
        let ca = crate::pki::parse_certificates(&std::fs::read("keys-example/ca-01/cert.pem").unwrap(), true).unwrap();
        assert!(!facility_expiry(ca.iter(), not_after).contains("{facility="));
    }
}
