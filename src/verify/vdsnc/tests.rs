use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

/// 2021-01-01 .. 2031-01-01 for the CSCA, 2021-06-01 .. 2026-06-01 for the signer.
const CSCA_FROM: i64 = 1_609_459_200;
const SIGNER_FROM: i64 = 1_622_505_600;
const SIGNER_UNTIL: i64 = 1_780_272_000;

struct Pki {
    csca_der: Vec<u8>,
    dsc_der: Vec<u8>,
    dsc_pkcs8: Vec<u8>,
}

fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn pki(country: &str, csca_alg: &'static rcgen::SignatureAlgorithm) -> Pki {
    let csca_key = KeyPair::generate_for(csca_alg).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CountryName, country);
    p.distinguished_name.push(DnType::CommonName, "Test CSCA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = ts(CSCA_FROM);
    p.not_after = ts(CSCA_FROM + 10 * 365 * 86_400);
    let csca = p.self_signed(&csca_key).unwrap();
    let dsc_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut d = CertificateParams::default();
    d.distinguished_name.push(DnType::CountryName, country);
    d.distinguished_name.push(DnType::CommonName, "Test seal signer");
    d.not_before = ts(SIGNER_FROM);
    d.not_after = ts(SIGNER_UNTIL);
    let issuer = Issuer::from_ca_cert_der(csca.der(), &csca_key).unwrap();
    let dsc = d.signed_by(&dsc_key, &issuer).unwrap();
    Pki { csca_der: csca.der().to_vec(), dsc_der: dsc.der().to_vec(), dsc_pkcs8: dsc_key.serialize_der() }
}

fn data(is: &str) -> Value {
    json!({"hdr": {"t": "icao.vacc", "v": 1, "is": is},
        "msg": {"uvci": "VB0009990012", "pid": {"n": "CITIZEN  JANE SUE", "dob": "1961-05-15", "sex": "F"},
            "ve": [{"des": "XM68M6", "dis": "RA01.0", "nam": "AstraZeneca Vaxzevria",
                "vd": [{"adm": "GP", "ctr": "AUS", "dvc": "2021-09-15", "lot": "300157P", "seq": 1}]},
                {"des": "XM68M6", "dis": "RA01.0", "nam": "Moderna Spikevax",
                "vd": [{"adm": "GP", "ctr": "AUS", "dvc": "2021-06-15", "lot": "1", "seq": 1}]}]}})
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A seal of `data` signed by the pki's signer, the signature raw (r‖s) or DER.
fn seal(pki: &Pki, data: &Value, der_signature: bool) -> String {
    let canonical = serde_json_canonicalizer::to_vec(data).unwrap();
    let rng = SystemRandom::new();
    let alg = if der_signature { &ECDSA_P256_SHA256_ASN1_SIGNING } else { &ECDSA_P256_SHA256_FIXED_SIGNING };
    let key = EcdsaKeyPair::from_pkcs8(alg, &pki.dsc_pkcs8, &rng).unwrap();
    let sig = key.sign(&rng, &canonical).unwrap();
    json!({"data": data, "sig": {"alg": "ES256", "cer": b64url(&pki.dsc_der), "sigvl": b64url(sig.as_ref())}})
        .to_string()
}

fn trust(pki: &Pki) -> SealTrust {
    SealTrust::new(std::iter::once(pki.csca_der.as_slice()))
}

const AT: i64 = SIGNER_FROM + 86_400;

#[test]
fn canonical_form_matches_rfc_8785() {
    // RFC 8785 §3.2.3's example and its expected output.
    let input = r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],
        "string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#;
    let v: Value = serde_json::from_str(input).unwrap();
    let out = serde_json_canonicalizer::to_string(&v).unwrap();
    assert_eq!(
        out,
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
         \"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
    // Member order by UTF-16 code units (RFC 8785 §3.2.3's sorting example).
    let v: Value = serde_json::from_str(r#"{"\u20ac":1,"\r":2,"1":3,"\ud83d\ude00":4,"\u00f6":5,"a":6}"#).unwrap();
    assert_eq!(
        serde_json_canonicalizer::to_string(&v).unwrap(),
        "{\"\\r\":2,\"1\":3,\"a\":6,\"ö\":5,\"€\":1,\"😀\":4}"
    );
}

#[test]
fn a_seal_verifies_in_raw_and_der_form_and_after_reformatting() {
    let p = pki("AU", &rcgen::PKCS_ECDSA_P384_SHA384);
    let t = trust(&p);
    for der in [false, true] {
        let v = verify(&seal(&p, &data("AUS"), der), &t, ts(AT));
        assert_eq!(v.reason, ReasonCode::Ok, "{:?}", v.detail);
        assert_eq!(v.format, Some(Format::VdsNc));
        assert_eq!(v.holder.as_ref().unwrap().name, "CITIZEN JANE SUE");
        assert_eq!(v.payload.as_ref().unwrap()["msg"]["pid"]["n"], "CITIZEN  JANE SUE");
        let doses: Vec<_> = v.vaccinations.iter().map(|d| (d.date.as_str(), d.product.as_str())).collect();
        assert_eq!(doses, [("2021-06-15", "EU/1/20/1507"), ("2021-09-15", "EU/1/21/1529")]);
        assert_eq!(v.vaccinations[0].country.as_deref(), Some("AU"));
        assert_eq!(v.signer.as_ref().unwrap().chain.len(), 2);
    }
    // Members reordered and pretty-printed: the canonical form is the same.
    let text = seal(&p, &data("AUS"), false);
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    assert_eq!(verify(&pretty, &t, ts(AT)).reason, ReasonCode::Ok);
}

#[test]
fn changed_content_or_untrusted_signer_is_refused() {
    let p = pki("AU", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = trust(&p);
    let text = seal(&p, &data("AUS"), false);
    let tampered = text.replace("CITIZEN  JANE", "CITIZEN  JOHN");
    assert_eq!(verify(&tampered, &t, ts(AT)).reason, ReasonCode::SignatureInvalid);
    // A seal signed under another CSCA.
    let other = pki("AU", &rcgen::PKCS_ECDSA_P256_SHA256);
    assert_eq!(verify(&seal(&other, &data("AUS"), false), &t, ts(AT)).reason, ReasonCode::ChainInvalid);
    assert_eq!(verify(&text, &SealTrust::default(), ts(AT)).reason, ReasonCode::ChainInvalid);
    // Issuing country other than the signer's.
    assert_eq!(verify(&seal(&p, &data("JPN"), false), &t, ts(AT)).reason, ReasonCode::ChainInvalid);
    assert_eq!(verify(&seal(&p, &data("XXX"), false), &t, ts(AT)).reason, ReasonCode::ChainInvalid);
}

#[test]
fn the_signer_must_be_valid_at_the_clock() {
    let p = pki("JP", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = trust(&p);
    let text = seal(&p, &data("JPN"), false);
    assert_eq!(verify(&text, &t, ts(AT)).reason, ReasonCode::Ok);
    assert_eq!(verify(&text, &t, ts(SIGNER_FROM - 1)).reason, ReasonCode::SignerNotYetValid);
    assert_eq!(verify(&text, &t, ts(SIGNER_UNTIL + 1)).reason, ReasonCode::SignerExpired);
}

#[test]
fn malformed_seals_get_a_reason() {
    let p = pki("AU", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = trust(&p);
    let good: Value = serde_json::from_str(&seal(&p, &data("AUS"), false)).unwrap();
    let without = |k: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(k);
        v.to_string()
    };
    let with_sig = |k: &str, val: Value| {
        let mut v = good.clone();
        v["sig"][k] = val;
        v.to_string()
    };
    let cases = [
        (without("sig"), ReasonCode::FormatInvalid),
        (without("data"), ReasonCode::FormatInvalid),
        ("{".to_owned(), ReasonCode::FormatInvalid),
        ("{\"data\":{},\"data\":{}}".to_owned(), ReasonCode::FormatInvalid),
        (with_sig("alg", json!("ES512")), ReasonCode::UnsupportedAlgorithm),
        (with_sig("cer", json!("bm90IGEgY2VydA")), ReasonCode::FormatInvalid),
        (with_sig("sigvl", json!("%%%")), ReasonCode::FormatInvalid),
        (with_sig("sigvl", json!(b64url(&[1; 64]))), ReasonCode::SignatureInvalid),
        (format!("{}{}", good, " ".repeat(MAX_SEAL_LEN)), ReasonCode::FormatInvalid),
    ];
    for (text, reason) in cases {
        assert_eq!(verify(&text, &t, ts(AT)).reason, reason, "{}", &text[..text.len().min(80)]);
    }
    // Signed content without the seal's shape.
    let mut d = data("AUS");
    d["hdr"]["t"] = json!("icao.other");
    assert_eq!(verify(&seal(&p, &d, false), &t, ts(AT)).reason, ReasonCode::SchemaValidationFailed);
}

#[test]
fn the_signer_cache_stays_bounded() {
    let p = pki("AU", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = trust(&p);
    for _ in 0..3 {
        assert_eq!(verify(&seal(&p, &data("AUS"), false), &t, ts(AT)).reason, ReasonCode::Ok);
    }
    assert_eq!(t.signers.read().unwrap().len(), 1);
}

/// Japan's e-passport CSCA (serial E3, from KDE khealthcertificate's src/lib/icao/certs) gives
/// its P-384 curve as explicit parameters, and its seal signer (the Digital Agency, from the
/// WHO DDCC validator's ICAOJPQR1Contents.txt) writes ecdsa-with-SHA384 with NULL parameters.
#[test]
fn explicit_curve_parameters_of_a_real_csca_are_understood() {
    let (_, csca) = X509Certificate::from_der(include_bytes!("jp-csca.der")).unwrap();
    let key = key_of(csca.public_key());
    assert!(matches!(&key, Key::Ec(Curve::P384, p) if p.len() == 97), "{key:?}");
    let (_, signer) = X509Certificate::from_der(include_bytes!("jp-digital-agency.der")).unwrap();
    assert!(matches!(key_of(signer.public_key()), Key::Ec(Curve::P256, _)));
    assert!(issued_by(&signer, &key));
    let other = pki("JP", &rcgen::PKCS_ECDSA_P384_SHA384);
    let (_, other_csca) = X509Certificate::from_der(&other.csca_der).unwrap();
    assert!(!issued_by(&signer, &key_of(other_csca.public_key())));
    let t = SealTrust::new(std::iter::once(include_bytes!("jp-csca.der").as_slice()));
    let s = t.signer(include_bytes!("jp-digital-agency.der")).unwrap();
    assert_eq!(s.country.as_deref(), Some("JP"));
    assert!(s.csca.is_some());
}
