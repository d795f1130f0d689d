//! SMART Health Cards (SPEC §9.1; SMART Health Cards Framework 1.x): `shc:/` numeric QR
//! text → compact JWS (ES256, raw r‖s) → raw-DEFLATE payload → the issuer's key by `kid`
//! (RFC 7638 thumbprint) → `nbf`/`exp` → `rid` revocation → FHIR immunizations.
//!
//! The issuer (`iss`) is inside the signed payload, so the payload is inflated and read
//! before the signature is checked; nothing in it is trusted until the signature verified.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use flate2::{Decompress, FlushDecompress, Status};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::Value;
use time::OffsetDateTime;

use super::normalised::{self, Failure, Format, Holder, Read, Vaccination};
use super::{ReasonCode, SignerInfo, Verdict, json};
use crate::pki::FileError;

/// The text prefix of a SMART Health Card QR code.
pub const SHC_PREFIX: &str = "shc:/";

/// The most digits a QR code holds in numeric mode (version 40, ECC L: 7,089); anything
/// longer was not read from one QR code and is not decoded.
const MAX_DIGITS: usize = 7089;
/// Largest inflated payload. The specification's largest single-QR JWS (1,195 characters)
/// carries ~880 compressed bytes; real cards inflate to 2–6 KB. 64 KiB bounds a DEFLATE bomb
/// (up to 1,032:1) while leaving ten times the room a card needs.
pub const MAX_SHC_INFLATED_LEN: usize = 64 * 1024;
/// The verifiable-credential type every health card carries.
const HEALTH_CARD_TYPE: &str = "https://smarthealth.cards#health-card";

/// Why an issuer directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Not the JSON shape of SPEC §9.1.
    #[error("not an issuer directory: {0}")]
    Shape(String),
}

/// A revoked `rid`, with the optional `.<unix-seconds>` bound of the SHC revocation spec.
#[derive(Debug, Clone)]
struct RevokedRid {
    rid: String,
    /// Only cards whose `nbf` is before this time are revoked.
    before: Option<f64>,
}

#[derive(Debug, Default)]
struct Issuer {
    name: String,
    /// RFC 7638 thumbprint → uncompressed P-256 point.
    keys: HashMap<String, Vec<u8>>,
    /// kid → revoked rids.
    revoked: HashMap<String, Vec<RevokedRid>>,
}

/// Trusted SMART Health Card issuers (`--trust-issuers`): the VCI directory shape with each
/// issuer's JWK set and revocation lists.
#[derive(Debug, Default)]
pub struct ShcDirectory {
    issuers: HashMap<String, Issuer>,
}

impl ShcDirectory {
    /// Reads `{"participating_issuers": [{"iss", "name", "keys": [JWK…], "crls": [CRL…]}]}`.
    /// Keys that are not EC P-256 are skipped (an SHC is ES256 only); a key's `kid` is its
    /// RFC 7638 thumbprint, computed here, whatever the JWK's own `kid` says.
    pub fn from_json(bytes: &[u8]) -> Result<ShcDirectory, DirectoryError> {
        let shape = |s: &str| DirectoryError::Shape(s.to_owned());
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| DirectoryError::Shape(e.to_string()))?;
        let list = doc
            .get("participating_issuers")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no participating_issuers array"))?;
        let mut dir = ShcDirectory::default();
        for entry in list {
            let iss = entry.get("iss").and_then(Value::as_str).ok_or_else(|| shape("an issuer has no iss"))?;
            let issuer = dir.issuers.entry(iss.to_owned()).or_default();
            if let Some(name) = entry.get("name").and_then(Value::as_str) {
                name.clone_into(&mut issuer.name);
            }
            for jwk in entry.get("keys").and_then(Value::as_array).into_iter().flatten() {
                if let Some((kid, point)) = p256_jwk(jwk) {
                    issuer.keys.insert(kid, point);
                }
            }
            for crl in entry.get("crls").and_then(Value::as_array).into_iter().flatten() {
                let Some(kid) = crl.get("kid").and_then(Value::as_str) else { continue };
                if crl.get("method").and_then(Value::as_str).is_some_and(|m| m != "rid") {
                    continue;
                }
                let rids = crl.get("rids").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
                issuer.revoked.entry(kid.to_owned()).or_default().extend(rids.map(parse_rid));
            }
        }
        Ok(dir)
    }

    /// Loads `--trust-issuers FILE`.
    pub fn load(path: &Path) -> Result<ShcDirectory, FileError> {
        let bytes = crate::pki::read_file(path)?;
        ShcDirectory::from_json(&bytes).map_err(|e| FileError::content(path, e.to_string()))
    }

    /// Adds another directory's issuers (keys and revocations of an `iss` in both are joined).
    pub fn merge(&mut self, other: ShcDirectory) {
        for (iss, issuer) in other.issuers {
            let mine = self.issuers.entry(iss).or_default();
            if mine.name.is_empty() {
                mine.name = issuer.name;
            }
            mine.keys.extend(issuer.keys);
            for (kid, rids) in issuer.revoked {
                mine.revoked.entry(kid).or_default().extend(rids);
            }
        }
    }

    /// How many issuers the directory trusts.
    pub fn len(&self) -> usize {
        self.issuers.len()
    }

    /// Whether no issuer is trusted.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }
}

fn parse_rid(s: &str) -> RevokedRid {
    match s.split_once('.') {
        Some((rid, ts)) => RevokedRid { rid: rid.to_owned(), before: ts.parse::<f64>().ok() },
        None => RevokedRid { rid: s.to_owned(), before: None },
    }
}

/// The value under a path of member names (or array indexes written as digits):
/// `Value::pointer` without its per-call parsing and `~` unescaping of every segment
/// (measured 5.6 % of a card's verification instructions with callgrind).
fn member<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| match v {
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => v.get(*key),
    })
}

fn b64url(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// The RFC 7638 thumbprint and the uncompressed point of an EC P-256 JWK.
fn p256_jwk(jwk: &Value) -> Option<(String, Vec<u8>)> {
    let field = |k: &str| jwk.get(k).and_then(Value::as_str);
    if field("kty")? != "EC" || field("crv")? != "P-256" {
        return None;
    }
    let (x, y) = (field("x")?, field("y")?);
    let (xb, yb) = (b64url(x)?, b64url(y)?);
    if xb.len() != 32 || yb.len() != 32 {
        return None;
    }
    // RFC 7638 §3.2: the required members in lexicographic order, no white space.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&xb);
    point.extend_from_slice(&yb);
    Some((kid, point))
}

fn invalid(detail: &str) -> Failure {
    (ReasonCode::FormatInvalid, detail.to_owned())
}

/// `shc:/` + digits → the JWS text (two digits per character, value + 45), as bytes: every
/// one is in 45..=122, ASCII, so no UTF-8 check of a `String` is needed.
fn numeric_to_jws(text: &str) -> Result<Vec<u8>, Failure> {
    let body = text.strip_prefix(SHC_PREFIX).ok_or_else(|| invalid("the text does not start with shc:/"))?;
    // Deprecated chunking `shc:/N/M/…`: one chunk of one (`1/1`) is read, sets are not.
    let body = match chunk_header(body) {
        Some((1, 1, rest)) => rest,
        Some(_) => {
            return Err((
                ReasonCode::UnsupportedFormat,
                "a SMART Health Card split over several QR codes (deprecated chunking) is not supported".into(),
            ));
        }
        None => body,
    };
    if body.len() > MAX_DIGITS {
        return Err(invalid("the numeric text is longer than a QR code holds"));
    }
    let not_digits = || invalid("the text after shc:/ is not an even number of digits");
    if body.is_empty() || body.len() % 2 != 0 {
        return Err(not_digits());
    }
    // Checks folded without early exits and one pass over the pairs: 18.5 k → 6.5 k
    // instructions for a 2-dose card's 2,400 digits (callgrind).
    if body.bytes().fold(false, |bad, b| bad | (b.wrapping_sub(b'0') > 9)) {
        return Err(not_digits());
    }
    let (pairs, _) = body.as_bytes().as_chunks::<2>();
    // At most 99 + 45: no overflow once every byte is a digit.
    let jws: Vec<u8> = pairs.iter().map(|&[hi, lo]| (hi - b'0') * 10 + (lo - b'0') + 45).collect();
    if jws.iter().fold(false, |bad, &c| bad | (c > b'z')) {
        return Err(invalid("a digit pair is above 77, outside the JWS alphabet"));
    }
    Ok(jws)
}

/// `N/M/rest` of a chunked SHC, when `body` starts with one.
fn chunk_header(body: &str) -> Option<(u32, u32, &str)> {
    let (n, rest) = body.split_once('/')?;
    let (m, rest) = rest.split_once('/')?;
    if n.is_empty() || m.is_empty() || n.len() > 3 || m.len() > 3 {
        return None;
    }
    Some((n.parse().ok()?, m.parse().ok()?, rest))
}

thread_local! {
    /// One raw-DEFLATE state per thread, reset per card: setting one up costs about a tenth
    /// of what a card's verification adds to its signature check (callgrind, 2.3 % of all).
    static INFLATE: std::cell::RefCell<Decompress> = std::cell::RefCell::new(Decompress::new(false));
}

/// Inflates raw DEFLATE (RFC 1951), refusing output past [`MAX_SHC_INFLATED_LEN`],
/// truncated streams and trailing bytes.
fn inflate_raw(data: &[u8]) -> Option<Vec<u8>> {
    INFLATE.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        inflate_with(&mut d, data)
    })
}

fn inflate_with(d: &mut Decompress, data: &[u8]) -> Option<Vec<u8>> {
    let limit = MAX_SHC_INFLATED_LEN + 1;
    let mut out = Vec::with_capacity((data.len() * 4).clamp(64, limit));
    loop {
        if out.len() >= limit {
            return None;
        }
        if out.len() == out.capacity() {
            let grown = (out.capacity() * 2).min(limit);
            out.reserve_exact(grown - out.len());
        }
        let consumed = d.total_in() as usize;
        let input = data.get(consumed..)?;
        let before_out = out.len();
        match d.decompress_vec(input, &mut out, FlushDecompress::Finish).ok()? {
            Status::StreamEnd => {
                return (out.len() <= MAX_SHC_INFLATED_LEN && d.total_in() as usize == data.len()).then_some(out);
            }
            Status::Ok | Status::BufError => {
                let progressed = d.total_in() as usize > consumed || out.len() > before_out;
                if !progressed && out.len() < out.capacity() {
                    return None;
                }
            }
        }
    }
}

/// Verifies a SMART Health Card text at `at` against `dir`.
pub(crate) fn verify(text: &str, dir: &ShcDirectory, at: OffsetDateTime) -> Verdict {
    let mut read = Read::default();
    let mut payload = None;
    let outcome = check(text, dir, at, &mut read, &mut payload);
    read.into_verdict(Format::Shc, outcome, payload)
}

fn check(
    text: &str,
    dir: &ShcDirectory,
    at: OffsetDateTime,
    read: &mut Read,
    payload_out: &mut Option<Value>,
) -> Result<(), Failure> {
    let jws = numeric_to_jws(text)?;
    let mut parts = jws.split(|&b| b == b'.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("not a compact JWS (three dot-separated parts)"));
    };
    let header = b64url(h64)
        .and_then(|h| json::parse_strict(&h))
        .filter(Value::is_object)
        .ok_or_else(|| invalid("the JWS header is not base64url JSON"))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => {}
        Some(other) => {
            return Err((ReasonCode::UnsupportedAlgorithm, format!("JWS algorithm {other:.20} is not ES256")));
        }
        None => return Err(invalid("the JWS header has no alg")),
    }
    if header.get("zip").and_then(Value::as_str) != Some("DEF") {
        return Err(invalid("the JWS header does not say zip DEF"));
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or_else(|| invalid("the JWS header has no kid"))?;
    let compressed = b64url(p64).ok_or_else(|| invalid("the JWS payload is not base64url"))?;
    let inflated = inflate_raw(&compressed)
        .ok_or_else(|| invalid("the JWS payload is not raw DEFLATE, or inflates past the bound"))?;
    let payload = json::parse_strict(&inflated).ok_or_else(|| invalid("the JWS payload is not one JSON object"))?;
    if !payload.is_object() {
        return Err(invalid("the JWS payload is not a JSON object"));
    }
    normalise(&payload, read);
    // For display whatever the verdict; trusted only after the signature below.
    let payload = &*payload_out.insert(payload);
    let iss = payload.get("iss").and_then(Value::as_str).ok_or_else(|| invalid("the payload has no iss"))?;

    let issuer = dir
        .issuers
        .get(iss)
        .ok_or_else(|| (ReasonCode::KeyNotInTrustList, "the card's issuer is not a trusted issuer".to_owned()))?;
    let point = issuer
        .keys
        .get(kid)
        .ok_or_else(|| (ReasonCode::KeyNotInTrustList, "no key of the card's issuer has the card's kid".to_owned()))?;
    let signature = b64url(s64).ok_or_else(|| invalid("the JWS signature is not base64url"))?;
    // JWS ES256 is the 64-byte r‖s (RFC 7518 §3.4); a DER signature is not a JWS signature.
    let signed = &jws[..h64.len() + 1 + p64.len()];
    if signature.len() != 64
        || UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(signed, &signature).is_err()
    {
        return Err((ReasonCode::SignatureInvalid, "the JWS signature does not verify with the issuer's key".into()));
    }
    read.signer = Some(SignerInfo {
        kid: kid.to_owned(),
        subject: if issuer.name.is_empty() { iss.to_owned() } else { issuer.name.clone() },
        facility_code: None,
        chain: vec![iss.to_owned()],
    });

    check_content(payload, read)?;
    let now = at.unix_timestamp_nanos() as f64 / 1e9;
    if read.iat.is_some_and(|nbf| now < nbf) {
        return Err((ReasonCode::NotYetValid, "the card's nbf is in the future".into()));
    }
    if read.exp.is_some_and(|exp| now > exp) {
        return Err((ReasonCode::Expired, "the card has expired (exp)".into()));
    }
    let rid = member(payload, &["vc", "rid"]).and_then(Value::as_str);
    if let (Some(rid), Some(list)) = (rid, issuer.revoked.get(kid))
        && list.iter().any(|r| r.rid == rid && r.before.is_none_or(|t| read.iat.is_some_and(|nbf| nbf < t)))
    {
        return Err((ReasonCode::Revoked, "the issuer has revoked this card".into()));
    }
    Ok(())
}

/// The signed content's shape (SHC 1.x and FHIR R4 JSON): `nbf`, the health-card type, a
/// FHIR Bundle without empty values, completed immunizations with a code and a date.
fn check_content(payload: &Value, read: &mut Read) -> Result<(), Failure> {
    let schema = |d: &str| (ReasonCode::SchemaValidationFailed, d.to_owned());
    read.iat =
        Some(payload.get("nbf").and_then(Value::as_f64).ok_or_else(|| schema("nbf is missing or not a number"))?);
    read.exp = match payload.get("exp") {
        None => None,
        Some(e) => Some(e.as_f64().ok_or_else(|| schema("exp is not a number"))?),
    };
    let types =
        member(payload, &["vc", "type"]).and_then(Value::as_array).ok_or_else(|| schema("vc.type is missing"))?;
    if !types.iter().any(|t| t.as_str() == Some(HEALTH_CARD_TYPE)) {
        return Err(schema("vc.type does not include https://smarthealth.cards#health-card"));
    }
    let bundle = member(payload, &["vc", "credentialSubject", "fhirBundle"])
        .filter(|b| b.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
        .ok_or_else(|| schema("vc.credentialSubject.fhirBundle is not a FHIR Bundle"))?;
    if has_empty_value(bundle, 0) {
        return Err(schema("the FHIR Bundle has an empty value (FHIR JSON forbids them)"));
    }
    let entries = bundle.get("entry").and_then(Value::as_array).ok_or_else(|| schema("the Bundle has no entry"))?;
    for resource in entries.iter().filter_map(|e| e.get("resource")) {
        if resource.get("resourceType").and_then(Value::as_str) != Some("Immunization") {
            continue;
        }
        if resource.get("status").and_then(Value::as_str) != Some("completed") {
            return Err(schema("an Immunization's status is not completed"));
        }
        let coded = member(resource, &["vaccineCode", "coding"])
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c.get("code").is_some_and(Value::is_string)));
        if !coded {
            return Err(schema("an Immunization has no vaccineCode coding"));
        }
        if !resource.get("occurrenceDateTime").is_some_and(Value::is_string) {
            return Err(schema("an Immunization has no occurrenceDateTime"));
        }
        // occurrence[x] is a FHIR choice: one of its forms only.
        let forms = resource.as_object().map_or(0, |o| o.keys().filter(|k| k.starts_with("occurrence")).count());
        if forms > 1 {
            return Err(schema("an Immunization has more than one occurrence[x]"));
        }
    }
    Ok(())
}

/// FHIR JSON: "empty objects, arrays and strings are not allowed" (R4 §2.6.2).
fn has_empty_value(v: &Value, depth: usize) -> bool {
    if depth > 64 {
        return true;
    }
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty() || a.iter().any(|x| has_empty_value(x, depth + 1)),
        Value::Object(o) => o.is_empty() || o.values().any(|x| has_empty_value(x, depth + 1)),
        _ => false,
    }
}

/// The Patient's first name and birth date, and the immunizations, oldest first.
fn normalise(payload: &Value, read: &mut Read) {
    let Some(entries) = member(payload, &["vc", "credentialSubject", "fhirBundle", "entry"]).and_then(Value::as_array)
    else {
        return;
    };
    let resources = entries.iter().filter_map(|e| e.get("resource"));
    for r in resources {
        match r.get("resourceType").and_then(Value::as_str) {
            Some("Patient") if read.holder.is_none() => {
                let name = member(r, &["name", "0"]);
                let given = name
                    .and_then(|n| n.get("given"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str);
                // FHIR R4 `family` is a string; some early cards wrote an array.
                let family: Vec<&str> = match name.and_then(|n| n.get("family")) {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                let text = name.and_then(|n| n.get("text")).and_then(Value::as_str);
                let mut parts: Vec<&str> = given.chain(family).collect();
                if parts.is_empty() {
                    parts.extend(text);
                }
                read.holder = Some(Holder {
                    name: parts.join(" "),
                    dob: r.get("birthDate").and_then(Value::as_str).map(str::to_owned),
                });
            }
            Some("Immunization") => {
                let Some(date) = r.get("occurrenceDateTime").and_then(Value::as_str).and_then(normalised::date_part)
                else {
                    continue;
                };
                let codings = member(r, &["vaccineCode", "coding"]).and_then(Value::as_array);
                let coding = codings.and_then(|c| c.first());
                let system = coding.and_then(|c| c.get("system")).and_then(Value::as_str).unwrap_or_default();
                let code = coding.and_then(|c| c.get("code")).and_then(Value::as_str).unwrap_or_default();
                let cvx = codings.into_iter().flatten().find_map(|c| {
                    (c.get("system").and_then(Value::as_str) == Some("http://hl7.org/fhir/sid/cvx"))
                        .then(|| c.get("code").and_then(Value::as_str))
                        .flatten()
                        .and_then(normalised::mp_of_cvx)
                });
                let display = coding.and_then(|c| c.get("display")).and_then(Value::as_str);
                let product = cvx
                    .or_else(|| display.and_then(normalised::mp_of_name))
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{system}|{code}"));
                let dose = member(r, &["protocolApplied", "0", "doseNumberPositiveInt"])
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok());
                read.vaccinations.push(Vaccination { date, product, dose, series: None, country: None });
            }
            _ => {}
        }
    }
    normalised::oldest_first(&mut read.vaccinations);
    normalised::fill_numbers(&mut read.vaccinations);
}

#[cfg(test)]
pub(crate) mod tests;
