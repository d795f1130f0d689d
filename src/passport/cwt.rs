//! CWT claims (RFC 8392) of a health certificate, decoded from untrusted bytes.
//!
//! The DCC itself is kept as JSON exactly as it was signed, so that a foreign passport's
//! fields survive untouched into `verify --json`; only its shape is checked here
//! ([`check_schema`]). The content checks that matter for a verdict (times, type) read the
//! few claims they need.

use super::DecodeError;
use std::collections::HashSet;

use super::cbor_json::{Head, Malformed, Reader};

/// CWT claim keys (RFC 8392 §3.1; hcert spec §3.3.3).
pub(crate) mod key {
    pub(crate) const ISSUER: i64 = 1;
    pub(crate) const EXPIRES: i64 = 4;
    pub(crate) const ISSUED_AT: i64 = 6;
    /// `hcert`, holding `{1: DCC}`.
    pub(crate) const HCERT: i64 = -260;
    /// The DCC inside `hcert`.
    pub(crate) const HCERT_DCC: i64 = 1;
    /// vaxpass's private-use claim with the earlier doses, oldest first (SPEC §3).
    pub(crate) const DOSE_HISTORY: i64 = -65537;
}

/// What kind of event a certificate attests; decides the EKU a signer needs (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// `t`: a test result.
    Test,
    /// `v`: a vaccination.
    Vaccination,
    /// `r`: a recovery.
    Recovery,
}

/// The claims of a decoded passport. Times are seconds since the epoch; the EU data has
/// both integers and floats, so they are kept as `f64` (exact for every integer time up to
/// year 285,000,000).
#[derive(Debug, Clone)]
pub struct Claims {
    /// `iss` (1): issuing country.
    pub issuer: Option<String>,
    /// `iat` (6).
    pub issued_at: Option<f64>,
    /// `exp` (4).
    pub expires_at: Option<f64>,
    /// The DCC (`-260` → `1`) as JSON.
    pub dcc: serde_json::Value,
    /// Claim −65537, the earlier doses, when present.
    pub history: Option<serde_json::Value>,
}

/// The message of a CBOR reading failure in the claims.
fn cwt_error(e: Malformed) -> DecodeError {
    match e {
        Malformed::Syntax => DecodeError::Cwt("the payload is not well-formed CBOR"),
        Malformed::DuplicateKey => DecodeError::Cwt("a map in the payload repeats a key"),
    }
}

/// The keys of one map read so far. RFC 8949 §5.6 makes a map with a repeated key
/// invalid, and a decoder that let the last `-260` win would verify a DCC other verifiers
/// do not see (issue #8). Integer keys (all the claims we know) are kept without
/// allocating; others as their JSON text. Hashed, so a hostile map of thousands of keys
/// costs linear time.
#[derive(Default)]
struct SeenKeys {
    integers: HashSet<i128>,
    others: HashSet<String>,
}

impl SeenKeys {
    /// Records the key whose head was just read, reading the key itself unless it is an
    /// integer; refuses it the second time. Returns the integer key, if it is one.
    fn check_new(&mut self, r: &mut Reader<'_>, head: Head, depth: usize) -> Result<Option<i128>, DecodeError> {
        let new = match Reader::integer(head) {
            Some(k) => self.integers.insert(k),
            None => self.others.insert(r.json_after_head(head, depth).map_err(cwt_error)?.to_string()),
        };
        if !new {
            return Err(cwt_error(Malformed::DuplicateKey));
        }
        Ok(Reader::integer(head))
    }
}

/// Decodes the CWT claims. Structural problems are `CWT_DECODING_FAILED`, and so is a
/// missing `exp`: the hcert specification (§3.3.3 "Expiration Time ... MUST be present")
/// requires it, and without it a passport would be valid forever (issue #8).
pub(crate) fn parse_claims(payload: &[u8]) -> Result<Claims, DecodeError> {
    let mut r = Reader::new(payload);
    let head = r.head().map_err(cwt_error)?;
    if head.major != 5 {
        return Err(DecodeError::Cwt("the payload is not a CBOR map"));
    }
    let mut claims =
        Claims { issuer: None, issued_at: None, expires_at: None, dcc: serde_json::Value::Null, history: None };
    let mut dcc = None;
    let mut seen = SeenKeys::default();
    let mut entries = head.arg;
    while r.next_entry(&mut entries) {
        let key_head = r.head().map_err(cwt_error)?;
        let Some(key) = seen.check_new(&mut r, key_head, 1)?.and_then(|k| i64::try_from(k).ok()) else {
            // A text or other key: not a claim we read.
            r.skip(1).map_err(cwt_error)?;
            continue;
        };
        match key {
            key::ISSUER => {
                let h = r.head().map_err(cwt_error)?;
                claims.issuer = Some(r.text(h).map_err(|_| DecodeError::Cwt("iss is not text"))?);
            }
            key::ISSUED_AT => {
                claims.issued_at =
                    Some(r.number(1).map_err(cwt_error)?.ok_or(DecodeError::Cwt("iat is not a number"))?);
            }
            key::EXPIRES => {
                claims.expires_at =
                    Some(r.number(1).map_err(cwt_error)?.ok_or(DecodeError::Cwt("exp is not a number"))?);
            }
            key::HCERT => dcc = Some(hcert_dcc(&mut r)?),
            key::DOSE_HISTORY => claims.history = Some(r.json(1).map_err(cwt_error)?),
            _ => r.skip(1).map_err(cwt_error)?,
        }
    }
    if !r.at_end() {
        return Err(DecodeError::Cwt("trailing bytes after the claims"));
    }
    claims.dcc =
        dcc.ok_or(DecodeError::Cwt("no hcert claim (-260)"))?.ok_or(DecodeError::Cwt("hcert has no DCC (key 1)"))?;
    if claims.expires_at.is_none() {
        return Err(DecodeError::Cwt("no expiry (exp, claim 4)"));
    }
    Ok(claims)
}

/// Reads the `hcert` map and returns its DCC (key 1), if any.
fn hcert_dcc(r: &mut Reader<'_>) -> Result<Option<serde_json::Value>, DecodeError> {
    let head = r.head().map_err(cwt_error)?;
    if head.major != 5 {
        return Err(DecodeError::Cwt("no hcert claim (-260)"));
    }
    let mut dcc = None;
    let mut seen = SeenKeys::default();
    let mut entries = head.arg;
    while r.next_entry(&mut entries) {
        let key_head = r.head().map_err(cwt_error)?;
        if seen.check_new(r, key_head, 2)? == Some(i128::from(key::HCERT_DCC)) {
            dcc = Some(r.json(2).map_err(cwt_error)?);
        } else {
            r.skip(2).map_err(cwt_error)?;
        }
    }
    Ok(dcc)
}

/// Converts a ciborium value to JSON the way the CBOR reader reads CBOR: the oracle of the
/// reader's property test.
#[cfg(test)]
pub(crate) fn to_json(v: &ciborium::Value) -> serde_json::Value {
    use ciborium::Value;
    use serde_json::Value as J;
    match v {
        Value::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(n) = i64::try_from(i) {
                J::from(n)
            } else if let Ok(n) = u64::try_from(i) {
                J::from(n)
            } else {
                J::from(i as f64)
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => {
            use base64::Engine as _;
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(_, inner) => to_json(inner),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(s) => s.clone(),
                        Value::Integer(i) => i128::from(*i).to_string(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

/// Checks the DCC's shape (schema 1.x): an object with `ver`, `nam` (an object) and `dob`,
/// and exactly one of `v`, `t`, `r` as a non-empty array of objects. Values are not judged:
/// the EU test data signs `dob` "1963-00" and empty codes and expects them accepted.
pub fn check_schema(dcc: &serde_json::Value) -> Result<CertificateKind, DecodeError> {
    let obj = dcc.as_object().ok_or(DecodeError::Schema("the DCC is not an object"))?;
    if !obj.get("ver").is_some_and(|v| v.is_string()) {
        return Err(DecodeError::Schema("ver is missing or not text"));
    }
    if !obj.get("nam").is_some_and(|v| v.is_object()) {
        return Err(DecodeError::Schema("nam is missing or not an object"));
    }
    if !obj.get("dob").is_some_and(|v| v.is_string()) {
        return Err(DecodeError::Schema("dob is missing or not text"));
    }
    let mut kind = None;
    for (field, k) in
        [("v", CertificateKind::Vaccination), ("t", CertificateKind::Test), ("r", CertificateKind::Recovery)]
    {
        // Schema 1.0.x writers put `null` for the absent groups (`"t": null`): absent.
        let Some(entries) = obj.get(field).filter(|e| !e.is_null()) else { continue };
        let ok = entries.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|e| e.is_object()));
        if !ok {
            return Err(DecodeError::Schema("v/t/r is not a non-empty array of objects"));
        }
        if kind.replace(k).is_some() {
            return Err(DecodeError::Schema("more than one of v, t and r"));
        }
    }
    kind.ok_or(DecodeError::Schema("none of v, t and r"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passport::cbor::CborWriter;
    use serde_json::json;

    fn claims_with(times: impl Fn(&mut CborWriter)) -> Vec<u8> {
        let mut w = CborWriter::default();
        w.map(3);
        times(&mut w);
        w.int(key::HCERT).map(1).int(1).map(1).text("ver").text("1.3.0");
        w.into_bytes()
    }

    #[test]
    fn integer_and_float_times_are_read() {
        let bytes = claims_with(|w| {
            w.int(key::ISSUED_AT).int(1_620_000_000);
            // 1.6e9 + 0.5 as a CBOR double
            w.raw(&[0x04, 0xfb]).raw(&1_630_000_000.5f64.to_be_bytes());
        });
        let c = parse_claims(&bytes).unwrap();
        assert_eq!(c.issued_at, Some(1_620_000_000.0));
        assert_eq!(c.expires_at, Some(1_630_000_000.5));
        assert_eq!(c.dcc, json!({"ver": "1.3.0"}));
    }

    #[test]
    fn text_time_is_a_cwt_error() {
        let bytes = claims_with(|w| {
            w.int(key::ISSUED_AT).text("yesterday").int(key::EXPIRES).int(1);
        });
        assert!(matches!(parse_claims(&bytes), Err(DecodeError::Cwt(_))));
    }

    #[test]
    fn repeated_text_claim_keys_are_refused_and_distinct_from_integers() {
        let bytes = claims_with(|w| {
            w.text("x").int(1).text("x").int(2);
        });
        assert_eq!(parse_claims(&bytes).err(), Some(DecodeError::Cwt("a map in the payload repeats a key")));
        // The text "4" is not the claim 4: both may be present.
        let mut w = CborWriter::default();
        w.map(3).int(key::EXPIRES).int(1).text("4").int(2);
        w.int(key::HCERT).map(1).int(1).map(1).text("ver").text("1.3.0");
        assert_eq!(parse_claims(&w.into_bytes()).unwrap().expires_at, Some(1.0));
    }

    #[test]
    fn many_distinct_claim_keys_are_read_and_one_repeat_among_them_is_found() {
        // 10,000 distinct keys, and the same with one repeated at the end. Keys are hashed,
        // not compared pairwise (5·10^7 comparisons): both parse in ~22 ms in a debug build.
        let n = 10_000;
        let mut w = CborWriter::default();
        w.map(n + 2).int(key::EXPIRES).int(1).int(key::HCERT).map(1).int(1).map(1).text("ver").text("1.3.0");
        for k in 0..n {
            w.int(1000 + k as i64).int(0);
        }
        assert!(parse_claims(&w.into_bytes()).is_ok());
        let mut w = CborWriter::default();
        w.map(n + 1).int(key::HCERT).map(1).int(1).map(0);
        for k in 0..n {
            w.int(1000 + (k as i64 % (n as i64 - 1))).int(0);
        }
        assert_eq!(parse_claims(&w.into_bytes()).err(), Some(DecodeError::Cwt("a map in the payload repeats a key")));
    }

    #[test]
    fn missing_hcert_is_a_cwt_error() {
        let mut w = CborWriter::default();
        w.map(1).int(1).text("VN");
        assert!(matches!(parse_claims(&w.into_bytes()), Err(DecodeError::Cwt(_))));
        assert!(matches!(parse_claims(b"\x01"), Err(DecodeError::Cwt(_))));
    }

    #[test]
    fn schema_accepts_odd_values_but_not_odd_shapes() {
        let ok = json!({"ver": "1.0.0", "nam": {"fnt": "X"}, "dob": "1963-00", "v": [{"dn": 0}]});
        assert_eq!(check_schema(&ok), Ok(CertificateKind::Vaccination));
        let t = json!({"ver": "1.0.0", "nam": {}, "dob": "", "t": [{}]});
        assert_eq!(check_schema(&t), Ok(CertificateKind::Test));
        let nulls = json!({"ver": "1.0.0", "nam": {}, "dob": "", "v": [{}], "t": null, "r": null});
        assert_eq!(check_schema(&nulls), Ok(CertificateKind::Vaccination));
        for bad in [
            json!([]),
            json!({"nam": {}, "dob": "", "v": [{}]}),
            json!({"ver": "1", "nam": "x", "dob": "", "v": [{}]}),
            json!({"ver": "1", "nam": {}, "dob": "", "v": []}),
            json!({"ver": "1", "nam": {}, "dob": "", "v": [{}], "r": [{}]}),
            json!({"ver": "1", "nam": {}, "dob": ""}),
        ] {
            assert!(matches!(check_schema(&bad), Err(DecodeError::Schema(_))), "{bad}");
        }
    }
}
