//! The card and the seal `benches/border.rs` and `examples/border_count.rs` verify: a 2-dose
//! SMART Health Card like the specification's example 00 and a 2-dose Australian seal, each
//! with fresh keys.

use std::io::Write as _;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::json;
use time::OffsetDateTime;

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A signed SMART Health Card and what raw verification of its JWS needs.
pub struct Card {
    /// The `shc:/` text.
    pub text: String,
    /// The issuer directory trusting its key.
    pub directory: serde_json::Value,
    /// The JWS signing input.
    pub signed: Vec<u8>,
    /// The r‖s signature.
    pub signature: Vec<u8>,
    /// The issuer's uncompressed P-256 point.
    pub point: Vec<u8>,
}

/// A 2-dose card signed by a fresh issuer key.
pub fn card() -> Card {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref().to_vec();
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
    let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = b64url(ring::digest::digest(&ring::digest::SHA256, thumbprint.as_bytes()).as_ref());
    let iss = "https://spec.smarthealth.cards/examples/issuer";
    let imm = |date: &str, lot: &str| {
        json!({"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
            "patient": {"reference": "resource:0"}, "occurrenceDateTime": date,
            "performer": [{"actor": {"display": "ABC General Hospital"}}], "lotNumber": lot}})
    };
    let payload = json!({"iss": iss, "nbf": 1_650_000_000, "vc": {
        "type": ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization",
            "https://smarthealth.cards#covid19"],
        "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {"resourceType": "Bundle", "type": "collection",
            "entry": [
                {"fullUrl": "resource:0", "resource": {"resourceType": "Patient",
                    "name": [{"family": "Anyperson", "given": ["John", "B."]}], "birthDate": "1951-01-20"}},
                imm("2021-01-01", "0000001"), imm("2021-01-29", "0000007")]}}}});
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(payload.to_string().as_bytes()).unwrap();
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": kid});
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(&deflate.finish().unwrap()));
    let signature = key.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec();
    let jws = format!("{input}.{}", b64url(&signature));
    let text = format!("shc:/{}", jws.bytes().map(|c| format!("{:02}", c - 45)).collect::<String>());
    let directory = json!({"participating_issuers": [{"iss": iss, "name": "Example",
        "keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid}]}]});
    Card { text, directory, signed: input.into_bytes(), signature, point }
}

/// A 2-dose seal (its JSON text) and the DER of the CSCA that certified its signer.
pub fn seal() -> (String, Vec<u8>) {
    let ts = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
    let csca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CountryName, "AU");
    p.distinguished_name.push(DnType::CommonName, "Bench CSCA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = ts(1_600_000_000);
    p.not_after = ts(1_900_000_000);
    let csca = p.self_signed(&csca_key).unwrap();
    let signer_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut d = CertificateParams::default();
    d.distinguished_name.push(DnType::CountryName, "AU");
    d.distinguished_name.push(DnType::CommonName, "DFAT");
    d.not_before = ts(1_600_000_000);
    d.not_after = ts(1_900_000_000);
    let signer = d.signed_by(&signer_key, &Issuer::from_ca_cert_der(csca.der(), &csca_key).unwrap()).unwrap();
    let data = json!({"hdr": {"is": "AUS", "t": "icao.vacc", "v": 1},
        "msg": {"pid": {"dob": "1961-05-15", "i": "PA0941262", "n": "CITIZEN  JANE SUE", "sex": "F"},
            "uvci": "VB0009990012",
            "ve": [{"des": "XM68M6", "dis": "RA01.0", "nam": "AstraZeneca Vaxzevria",
                "vd": [{"adm": "General Practitioner", "ctr": "AUS", "dvc": "2021-09-15", "lot": "300157P", "seq": 1}]},
                {"des": "XM68M6", "dis": "RA01.0", "nam": "Moderna Spikevax",
                "vd": [{"adm": "Primary Health", "ctr": "AUS", "dvc": "2021-10-03", "lot": "Not recorded", "seq": 2}]}]}});
    let canonical = serde_json_canonicalizer::to_vec(&data).unwrap();
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &signer_key.serialize_der(), &rng).unwrap();
    let sig = key.sign(&rng, &canonical).unwrap();
    let seal =
        json!({"data": data, "sig": {"alg": "ES256", "cer": b64url(signer.der()), "sigvl": b64url(sig.as_ref())}});
    (seal.to_string(), csca.der().to_vec())
}
