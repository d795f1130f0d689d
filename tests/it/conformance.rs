//! The public EU DCC conformance vectors (tests/data/dcc-vectors.jsonl), graded like
//! shared/conformance/score.py: a false gating flag means "reject", all present gating flags
//! true means "accept" with the decoded payload equal to the case's JSON; cases annotated
//! ambiguous, or with no gating flag, are not graded.

use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;
use vaxpass::pki::{Certificate, Revocations, TrustStore};
use vaxpass::verify::Verifier;

const GATING: [&str; 7] = [
    "EXPECTEDUNPREFIX",
    "EXPECTEDB45DECODE",
    "EXPECTEDCOMPRESSION",
    "EXPECTEDDECODE",
    "EXPECTEDVERIFY",
    "EXPECTEDEXPIRATIONCHECK",
    "EXPECTEDKEYUSAGE",
];

#[derive(Debug, PartialEq)]
enum Expect {
    Accept { compare_payload: bool },
    Reject,
    Ungraded,
}

fn expectation(case: &Value) -> Expect {
    let e = &case["expected"];
    if case.get("ambiguous").is_some_and(|a| !a.is_null()) {
        return Expect::Ungraded;
    }
    if GATING.iter().any(|k| e.get(*k) == Some(&Value::Bool(false))) {
        return Expect::Reject;
    }
    if !GATING.iter().any(|k| e.get(*k).is_some()) {
        return Expect::Ungraded;
    }
    let valid_json = match e.get("EXPECTEDVALIDJSON") {
        Some(v) => v == &Value::Bool(true),
        None => e.get("EXPECTEDDECODE") == Some(&Value::Bool(true)),
    };
    let mismatch = case.get("json_mismatch").is_some_and(|m| !m.is_null() && m != &Value::Bool(false));
    Expect::Accept { compare_payload: case.get("json").is_some_and(|j| !j.is_null()) && valid_json && !mismatch }
}

/// Seconds since the epoch of an ISO 8601 date-time with a time part, as score.py reads it.
fn instant(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix(['T', ' '])?;
    let tz_start = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, tz) = rest.split_at(tz_start);
    let clock = clock.split('.').next()?;
    let clock = if clock.len() == 5 { format!("{clock}:00") } else { clock.to_owned() };
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base = time::PrimitiveDateTime::parse(&format!("{date}T{clock}"), &fmt).ok()?.assume_utc();
    let offset = match tz {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let digits: String = tz.chars().filter(char::is_ascii_digit).collect();
            let h: i64 = digits.get(..2)?.parse().ok()?;
            let m: i64 = digits.get(2..4).unwrap_or("0").parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(base.unix_timestamp() - offset)
}

/// Equality under score.py's normalisation: nulls dropped, numbers by value, date-times as
/// instants.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let g: Vec<_> = g.iter().filter(|(_, v)| !v.is_null()).collect();
            let w: Vec<_> = w.iter().filter(|(_, v)| !v.is_null()).collect();
            g.len() == w.len() && w.iter().all(|(k, wv)| g.iter().any(|(gk, gv)| gk == k && same(gv, wv)))
        }
        (Value::Array(g), Value::Array(w)) => g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same(a, b)),
        (Value::Number(g), Value::Number(w)) => g.as_f64() == w.as_f64(),
        (Value::String(g), Value::String(w)) => {
            g == w || matches!((instant(g), instant(w)), (Some(a), Some(b)) if a == b)
        }
        _ => got == want,
    }
}

#[test]
fn every_graded_eu_vector_passes() {
    let data = include_str!("../data/dcc-vectors.jsonl");
    let (mut graded, mut failures) = (0, Vec::new());
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap().to_owned();
        let expect = expectation(&case);
        if expect == Expect::Ungraded {
            continue;
        }
        graded += 1;
        let der = base64::engine::general_purpose::STANDARD.decode(case["dsc_der_b64"].as_str().unwrap_or("")).unwrap();
        let mut trust = TrustStore::new();
        if let Ok(cert) = Certificate::from_der(&der) {
            trust.add_pinned(cert);
        }
        let at = OffsetDateTime::from_unix_timestamp(case["validation_clock_unix"].as_i64().unwrap()).unwrap();
        let verdict =
            Verifier::new(trust, Revocations::default()).verify(case["prefix_text"].as_str().unwrap_or(""), at);
        match expect {
            Expect::Reject if verdict.valid => failures.push(format!("{id}: accepted, expected rejection")),
            Expect::Accept { .. } if !verdict.valid => failures.push(format!("{id}: rejected with {}", verdict.reason)),
            Expect::Accept { compare_payload: true }
                if !verdict.payload.as_ref().is_some_and(|p| same(p, &case["json"])) =>
            {
                failures.push(format!("{id}: payload differs from the case's JSON"));
            }
            _ => {}
        }
    }
    assert!(graded >= 100, "only {graded} graded cases");
    assert!(failures.is_empty(), "{} of {graded} failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn instants_compare_like_the_scorer() {
    assert_eq!(instant("2021-05-03T18:00:00Z"), instant("2021-05-03T20:00:00+02:00"));
    assert_eq!(instant("2021-05-03T18:00Z"), Some(1_620_064_800));
    assert_eq!(instant("2021-05-03"), None);
    assert!(same(&serde_json::json!({"a": 1, "b": null}), &serde_json::json!({"a": 1.0})));
}
