//! The border official's other certificates (SPEC §9.1) through `vaxpass verify`: a SMART
//! Health Card with `--trust-issuers`, an ICAO VDS-NC seal with its CSCA as `--trust-cert`,
//! EU trust material as a PEM bundle and as a gateway trust-list export, and texts of no
//! known format.

use std::io::Write as _;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::util::{FULL_NAME, Vaxpass, assert_reason, keys_example, keys_example_passport, rfc3339, tempdir};

const ISS: &str = "https://issuer.example.org/shc";
const NBF: i64 = 1_650_000_000;

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A signed single-QR SMART Health Card and the issuer directory that trusts its key.
fn health_card() -> (String, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref();
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..]));
    let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = b64url(ring::digest::digest(&ring::digest::SHA256, thumbprint.as_bytes()).as_ref());
    let payload = json!({"iss": ISS, "nbf": NBF, "vc": {
        "type": ["https://smarthealth.cards#health-card"],
        "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {"resourceType": "Bundle", "type": "collection",
            "entry": [
                {"fullUrl": "resource:0", "resource": {"resourceType": "Patient",
                    "name": [{"family": "Anyperson", "given": ["Jane", "C."]}], "birthDate": "1961-01-20"}},
                {"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "status": "completed",
                    "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
                    "patient": {"reference": "resource:0"}, "occurrenceDateTime": "2021-04-01"}}]}}}});
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(payload.to_string().as_bytes()).unwrap();
    let header = json!({"zip": "DEF", "alg": "ES256", "kid": kid});
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(&deflate.finish().unwrap()));
    let jws = format!("{input}.{}", b64url(key.sign(&rng, input.as_bytes()).unwrap().as_ref()));
    let numeric: String = jws.bytes().map(|c| format!("{:02}", c - 45)).collect();
    let directory = json!({"participating_issuers": [{"iss": ISS, "name": "Example issuer",
        "keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"}]}]});
    (format!("shc:/{numeric}"), directory)
}

#[test]
fn a_smart_health_card_verifies_against_its_issuer_directory() {
    let (card, directory) = health_card();
    let tmp = tempdir();
    let issuers = tmp.path().join("issuers.json");
    std::fs::write(&issuers, directory.to_string()).unwrap();
    let at = rfc3339(NBF + 86_400);
    let v = Vaxpass::new(["verify", "--json", "--at", &at, "--trust-issuers"])
        .arg(&issuers)
        .arg("-")
        .stdin(card.clone())
        .verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["format"], "shc");
    assert_eq!(v["holder"], json!({"name": "Jane C. Anyperson", "dob": "1961-01-20"}));
    assert_eq!(v["vaccinations"][0]["product"], "EU/1/20/1528");
    assert_eq!(v["payload"]["iss"], ISS);
    let human = Vaxpass::new(["verify", "--at", &at, "--trust-issuers"]).arg(&issuers).arg(&card).succeeds();
    assert!(
        human.stdout.starts_with("VALID\n  format:  SMART Health Card\n  name:    Jane C. Anyperson\n"),
        "{}",
        human.stdout
    );
    // Without the directory the card's key is unknown; before its nbf it is not yet valid.
    assert_reason(&Vaxpass::new(["verify", "--json", "--at", &at]).arg(&card).verdict(), "KEY_NOT_IN_TRUST_LIST");
    let early = rfc3339(NBF - 1);
    let v = Vaxpass::new(["verify", "--json", "--at", &early, "--trust-issuers"]).arg(&issuers).arg(&card).verdict();
    assert_reason(&v, "NOT_YET_VALID");
    // Two chunks of a deprecated multi-QR card, one per line.
    let chunked = "shc:/1/2/5676290952\nshc:/2/2/4320603460\n";
    let v = Vaxpass::new(["verify", "--json", "--trust-issuers"]).arg(&issuers).arg("-").stdin(chunked).verdict();
    assert_reason(&v, "UNSUPPORTED_FORMAT");
    // A directory that is not one is a usage error.
    std::fs::write(&issuers, "[]").unwrap();
    let line = Vaxpass::new(["verify", "--trust-issuers"]).arg(&issuers).arg(&card).fails();
    assert!(line.contains("issuers.json"), "{line}");
}

/// A CSCA (country AU) and a seal signed by its document signer, valid 2021-06-01..2026-06-01.
fn seal() -> (String, String) {
    let ts = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let csca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CountryName, "AU");
    p.distinguished_name.push(DnType::CommonName, "Test Country Signing CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = ts(1_600_000_000);
    p.not_after = ts(1_900_000_000);
    let csca = p.self_signed(&csca_key).unwrap();
    let signer_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut d = CertificateParams::default();
    d.distinguished_name.push(DnType::CountryName, "AU");
    d.distinguished_name.push(DnType::CommonName, "Test seal signer");
    d.not_before = ts(1_622_505_600);
    d.not_after = ts(1_780_272_000);
    let signer = d.signed_by(&signer_key, &Issuer::from_ca_cert_der(csca.der(), &csca_key).unwrap()).unwrap();
    let data = json!({"hdr": {"t": "icao.vacc", "v": 1, "is": "AUS"},
        "msg": {"uvci": "VB0009990012", "pid": {"n": "CITIZEN  JANE SUE", "dob": "1961-05-15"},
            "ve": [{"des": "XM68M6", "dis": "RA01.0", "nam": "AstraZeneca Vaxzevria",
                "vd": [{"adm": "GP", "ctr": "AUS", "dvc": "2021-09-15", "lot": "300157P", "seq": 1}]}]}});
    let canonical = serde_json_canonicalizer::to_vec(&data).unwrap();
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &signer_key.serialize_der(), &rng).unwrap();
    let sig = key.sign(&rng, &canonical).unwrap();
    let seal =
        json!({"data": data, "sig": {"alg": "ES256", "cer": b64url(signer.der()), "sigvl": b64url(sig.as_ref())}});
    (serde_json::to_string_pretty(&seal).unwrap(), csca.pem())
}

#[test]
fn a_vds_nc_seal_verifies_against_its_country_signing_ca() {
    let (seal, csca_pem) = seal();
    let tmp = tempdir();
    let csca = tmp.path().join("csca.pem");
    std::fs::write(&csca, &csca_pem).unwrap();
    let at = rfc3339(1_650_000_000);
    let v = Vaxpass::new(["verify", "--json", "--at", &at, "--trust-cert"])
        .arg(&csca)
        .arg("-")
        .stdin(seal.clone())
        .verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["format"], "vds-nc");
    assert_eq!(v["holder"], json!({"name": "CITIZEN JANE SUE", "dob": "1961-05-15"}));
    assert_eq!(v["payload"]["msg"]["pid"]["n"], "CITIZEN  JANE SUE");
    assert_eq!(
        v["vaccinations"],
        json!([{"date": "2021-09-15", "product": "EU/1/21/1529", "dose": 1, "series": 2, "country": "AU"}])
    );
    let tampered = seal.replace("2021-09-15", "2021-09-14");
    let v =
        Vaxpass::new(["verify", "--json", "--at", &at, "--trust-cert"]).arg(&csca).arg("-").stdin(tampered).verdict();
    assert_reason(&v, "SIGNATURE_INVALID");
    // Another CSCA (the keys-example root) is no anchor for it; after the signer's notAfter
    // the seal is refused.
    let v = Vaxpass::new(["verify", "--json", "--at", &at, "--trust-cert"])
        .arg(keys_example().join("root/cert.pem"))
        .arg("-")
        .stdin(seal.clone())
        .verdict();
    assert_reason(&v, "CHAIN_INVALID");
    let late = rfc3339(1_780_272_001);
    let v = Vaxpass::new(["verify", "--json", "--at", &late, "--trust-cert"]).arg(&csca).arg("-").stdin(seal).verdict();
    assert_reason(&v, "SIGNER_EXPIRED");
}

#[test]
fn eu_trust_material_comes_as_a_pem_bundle_or_a_gateway_export() {
    let p = keys_example_passport();
    let at = rfc3339(p.iat + 60);
    // chain.pem: the DSC followed by its CA, pinned as they are.
    let bundle = keys_example().join("facility-01001/chain.pem");
    let v = Vaxpass::new(["verify", "--json", "--at", &at, "--trust-cert"]).arg(&bundle).arg(&p.text).verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["holder"]["name"], FULL_NAME);
    let tmp = tempdir();
    let export = tmp.path().join("trustlist.json");
    let raw = base64::engine::general_purpose::STANDARD.encode(p.dsc.der());
    let list = json!([
        {"kid": "AAAAAAAAAAA=", "country": "VN", "certificateType": "CSCA", "rawData": "bm90IHVzZWQ="},
        {"kid": p.dsc.kid.to_base64(), "country": "VN", "certificateType": "DSC", "rawData": raw}
    ]);
    std::fs::write(&export, list.to_string()).unwrap();
    let v = Vaxpass::new(["verify", "--json", "--at", &at, "--trust-cert"]).arg(&export).arg(&p.text).verdict();
    assert_reason(&v, "OK");
    std::fs::write(&export, r#"[{"kid": "x", "certificateType": "DSC", "rawData": "%%"}]"#).unwrap();
    let line = Vaxpass::new(["verify", "--trust-cert"]).arg(&export).arg(&p.text).fails();
    assert!(line.contains("rawData is not base64"), "{line}");
}
