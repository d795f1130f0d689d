use super::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use std::io::Write as _;

const ISS: &str = "https://issuer.example.org";
const NBF: i64 = 1_640_000_000;

struct Issuer {
    key: EcdsaKeyPair,
    kid: String,
    jwk: Value,
}

fn issuer() -> Issuer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref();
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": enc(&point[1..33]), "y": enc(&point[33..]), "use": "sig", "alg": "ES256"});
    let (kid, _) = p256_jwk(&jwk).unwrap();
    Issuer { key, kid, jwk }
}

fn directory(i: &Issuer, rids: &[&str]) -> ShcDirectory {
    let doc = json!({"participating_issuers": [{"iss": ISS, "name": "Example", "keys": [i.jwk],
        "crls": [{"kid": i.kid, "method": "rid", "ctr": 1, "rids": rids}]}]});
    ShcDirectory::from_json(doc.to_string().as_bytes()).unwrap()
}

fn payload() -> Value {
    json!({
        "iss": ISS, "nbf": NBF,
        "vc": {"type": ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization"],
            "rid": "abc123",
            "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {"resourceType": "Bundle", "type": "collection",
                "entry": [
                    {"fullUrl": "resource:0", "resource": {"resourceType": "Patient",
                        "name": [{"family": "Anyperson", "given": ["John", "B."]}], "birthDate": "1951-01-20"}},
                    {"fullUrl": "resource:2", "resource": {"resourceType": "Immunization", "status": "completed",
                        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                        "patient": {"reference": "resource:0"}, "occurrenceDateTime": "2021-01-29"}},
                    {"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "status": "completed",
                        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                        "patient": {"reference": "resource:0"}, "occurrenceDateTime": "2021-01-01"}}
                ]}}}
    })
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn numeric(jws: &str) -> String {
    let mut s = SHC_PREFIX.to_owned();
    for c in jws.bytes() {
        s.push_str(&format!("{:02}", c - 45));
    }
    s
}

/// A card: header, raw DEFLATE of `body`, signed by `sign` (the JWS signing input in).
fn card_with(header: &Value, body: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!("{}.{}", enc(header.to_string().as_bytes()), enc(&deflate(body)));
    let sig = sign(input.as_bytes());
    numeric(&format!("{input}.{}", enc(&sig)))
}

fn card(i: &Issuer, p: &Value) -> String {
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": i.kid});
    card_with(&header, p.to_string().as_bytes(), |m| i.key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec())
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// A card signed by a fresh issuer, valid from [`NBF`] without end, and the issuer directory
/// (JSON) that trusts it: for tests of the shells (service, CLI).
pub(crate) fn signed_test_card() -> (String, String) {
    let i = issuer();
    let doc = json!({"participating_issuers": [{"iss": ISS, "name": "Example", "keys": [i.jwk]}]});
    (card(&i, &payload()), doc.to_string())
}

#[test]
fn a_signed_card_verifies_with_its_holder_and_doses_oldest_first() {
    let i = issuer();
    let v = verify(&card(&i, &payload()), &directory(&i, &[]), at(NBF + 10));
    assert_eq!(v.reason, ReasonCode::Ok, "{:?}", v.detail);
    assert!(v.valid);
    assert_eq!(v.format, Some(Format::Shc));
    assert_eq!(v.holder.as_ref().unwrap().name, "John B. Anyperson");
    assert_eq!(v.holder.as_ref().unwrap().dob.as_deref(), Some("1951-01-20"));
    let dates: Vec<_> = v.vaccinations.iter().map(|d| (d.date.as_str(), d.dose, d.product.as_str())).collect();
    assert_eq!(dates, [("2021-01-01", Some(1), "EU/1/20/1507"), ("2021-01-29", Some(2), "EU/1/20/1507")]);
    assert_eq!(v.payload.as_ref().unwrap()["iss"], ISS);
    assert_eq!(v.signer.as_ref().unwrap().kid, i.kid);
    let shaped = v.dcc_shaped_payload().unwrap();
    assert_eq!(shaped["v"][0]["dt"], "2021-01-29");
    assert_eq!(shaped["nam"]["fn"], "Anyperson");
}

#[test]
fn kid_is_the_rfc_7638_thumbprint() {
    // The SMART Health Cards specification's example issuer key and its published kid.
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ignored", "x": "11XvRWy1I2S0EyJlyf_bWfw_TQ5CJJNLw78bHXNxcgw",
        "y": "eZXwxvO1hvCY0KucrPfKo7yAyMT6Ajc3N7OkAB6VYy8"});
    assert_eq!(p256_jwk(&jwk).unwrap().0, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s");
    assert!(p256_jwk(&json!({"kty": "RSA", "n": "x", "e": "AQAB"})).is_none());
}

#[test]
fn trust_failures_name_the_step() {
    let i = issuer();
    let other = issuer();
    let text = card(&i, &payload());
    let v = verify(&text, &directory(&other, &[]), at(NBF));
    assert_eq!(v.reason, ReasonCode::KeyNotInTrustList);
    assert!(v.payload.is_some(), "the content is shown even when not trusted");
    assert_eq!(verify(&text, &ShcDirectory::default(), at(NBF)).reason, ReasonCode::KeyNotInTrustList);
    // A directory entry for the card's iss with another key: the kid is not among its keys.
    let doc = json!({"participating_issuers": [{"iss": ISS, "keys": [other.jwk]}]});
    let dir = ShcDirectory::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(verify(&text, &dir, at(NBF)).reason, ReasonCode::KeyNotInTrustList);
}

#[test]
fn tampered_or_der_signed_cards_are_signature_invalid() {
    let i = issuer();
    let dir = directory(&i, &[]);
    // Signed by another key under this issuer's kid.
    let impostor = issuer();
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": i.kid});
    let forged = card_with(&header, payload().to_string().as_bytes(), |m| {
        impostor.key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()
    });
    assert_eq!(verify(&forged, &dir, at(NBF)).reason, ReasonCode::SignatureInvalid);
    // The right key, but a DER (ASN.1) signature: not a JWS ES256 signature.
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let der_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = der_key.public_key().as_ref();
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": enc(&point[1..33]), "y": enc(&point[33..])});
    let kid = p256_jwk(&jwk).unwrap().0;
    let dir =
        ShcDirectory::from_json(json!({"participating_issuers": [{"iss": ISS, "keys": [jwk]}]}).to_string().as_bytes())
            .unwrap();
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": kid});
    let der =
        card_with(&header, payload().to_string().as_bytes(), |m| der_key.sign(&rng, m).unwrap().as_ref().to_vec());
    assert_eq!(verify(&der, &dir, at(NBF)).reason, ReasonCode::SignatureInvalid);
}

#[test]
fn times_and_revocation_are_checked_after_the_signature() {
    let i = issuer();
    let dir = directory(&i, &[]);
    assert_eq!(verify(&card(&i, &payload()), &dir, at(NBF - 1)).reason, ReasonCode::NotYetValid);
    let mut p = payload();
    p["exp"] = json!(NBF + 100);
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF + 100)).reason, ReasonCode::Ok);
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF + 101)).reason, ReasonCode::Expired);
    let text = card(&i, &payload());
    assert_eq!(verify(&text, &directory(&i, &["abc123"]), at(NBF)).reason, ReasonCode::Revoked);
    // A timestamped rid revokes only cards issued (nbf) before it.
    let later = format!("abc123.{}", NBF + 1);
    assert_eq!(verify(&text, &directory(&i, &[&later]), at(NBF)).reason, ReasonCode::Revoked);
    let earlier = format!("abc123.{}", NBF - 1);
    assert_eq!(verify(&text, &directory(&i, &[&earlier]), at(NBF)).reason, ReasonCode::Ok);
    assert_eq!(verify(&text, &directory(&i, &["other"]), at(NBF)).reason, ReasonCode::Ok);
}

#[test]
fn signed_content_without_the_health_card_shape_is_refused() {
    let i = issuer();
    let dir = directory(&i, &[]);
    let mut p = payload();
    p["vc"]["type"] = json!(["https://smarthealth.cards#immunization"]);
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
    let mut p = payload();
    p["vc"]["credentialSubject"]["fhirBundle"]["entry"][1]["resource"]["status"] = json!("entered-in-error");
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
    let mut p = payload();
    p["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["birthDate"] = json!("");
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
    let mut p = payload();
    p["vc"]["credentialSubject"]["fhirBundle"]["entry"][1]["resource"]["occurrenceString"] = json!("2021-01-29");
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
    let mut p = payload();
    p["vc"]["credentialSubject"]["fhirBundle"]["entry"][1]["resource"]["vaccineCode"] = json!({"text": "COVID-19"});
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
    let mut p = payload();
    p.as_object_mut().unwrap().remove("nbf");
    assert_eq!(verify(&card(&i, &p), &dir, at(NBF)).reason, ReasonCode::SchemaValidationFailed);
}

#[test]
fn malformed_cards_get_a_reason() {
    let i = issuer();
    let dir = directory(&i, &[]);
    let good = card(&i, &payload());
    let cases = [
        ("shc:/", ReasonCode::FormatInvalid),
        ("shc:/123", ReasonCode::FormatInvalid),
        ("shc:/7899", ReasonCode::FormatInvalid),
        ("shc:/12a4", ReasonCode::FormatInvalid),
        ("shc:5676", ReasonCode::FormatInvalid),
        ("shc:/2/3/5676", ReasonCode::UnsupportedFormat),
    ];
    for (text, reason) in cases {
        assert_eq!(verify(text, &dir, at(NBF)).reason, reason, "{text}");
    }
    // A one-of-one chunk header is one QR code.
    let one = good.replacen(SHC_PREFIX, "shc:/1/1/", 1);
    assert_eq!(verify(&one, &dir, at(NBF)).reason, ReasonCode::Ok);
    // Trailing digits break the signature part; a truncated text the JWS.
    assert_ne!(verify(&format!("{good}00"), &dir, at(NBF)).reason, ReasonCode::Ok);
    assert_eq!(verify(&good[..good.len() / 2 * 2 / 2], &dir, at(NBF)).reason, ReasonCode::FormatInvalid);
    let header = json!({"zip": "DEF", "alg": "ES384", "kid": i.kid});
    let es384 = card_with(&header, payload().to_string().as_bytes(), |_| vec![0; 96]);
    assert_eq!(verify(&es384, &dir, at(NBF)).reason, ReasonCode::UnsupportedAlgorithm);
    let header = json!({"alg": "ES256", "kid": i.kid});
    assert_eq!(verify(&card_with(&header, b"{}", |_| vec![0; 64]), &dir, at(NBF)).reason, ReasonCode::FormatInvalid);
    // A DEFLATE bomb: 10 MB of zeros compress to ~10 KB; refused at the bound.
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": i.kid});
    let bomb = card_with(&header, &vec![b' '; MAX_SHC_INFLATED_LEN + 1], |_| vec![0; 64]);
    assert_eq!(verify(&bomb, &dir, at(NBF)).reason, ReasonCode::FormatInvalid);
    let bom =
        card_with(&header, &[b"\xef\xbb\xbf".as_slice(), payload().to_string().as_bytes()].concat(), |_| vec![0; 64]);
    assert_eq!(verify(&bom, &dir, at(NBF)).reason, ReasonCode::FormatInvalid);
}

#[test]
fn a_directory_that_is_not_one_is_refused() {
    assert!(ShcDirectory::from_json(b"[]").is_err());
    assert!(ShcDirectory::from_json(br#"{"participating_issuers": [{"name": "x"}]}"#).is_err());
    let d = ShcDirectory::from_json(br#"{"participating_issuers": []}"#).unwrap();
    assert!(d.is_empty());
}

#[test]
fn digits_decode_to_the_jws_alphabet_and_errors_keep_their_order() {
    assert_eq!(numeric_to_jws("shc:/00771245").unwrap(), b"-z9Z");
    let detail = |t: &str| numeric_to_jws(t).unwrap_err().1;
    let not_digits = "the text after shc:/ is not an even number of digits";
    // A non-digit anywhere is reported before a pair above 77, as before the folds.
    assert_eq!(detail("shc:/781a"), not_digits);
    assert_eq!(detail("shc:/0078"), "a digit pair is above 77, outside the JWS alphabet");
    assert_eq!(detail("shc:/99"), "a digit pair is above 77, outside the JWS alphabet");
    // The bytes either side of '0'..='9'.
    assert_eq!(detail("shc:/00:0"), not_digits);
    assert_eq!(detail("shc:/0/00"), not_digits);
    assert_eq!(detail("shc:/0"), not_digits);
}
