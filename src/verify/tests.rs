//! One test per verification reason code, on a hierarchy issued at a fixed clock.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use time::OffsetDateTime;
use time::macros::{date, datetime};

use super::*;
use crate::passport::{Algorithm, Dose, PassportContent, Person, Uvci, number_doses, vaccines};
use crate::pki::{CaFiles, Certificate, SigningKey, parse_certificates};

/// 2022-05-11: the day the EU recognised Vietnam's certificates; the hierarchy is issued then.
const T0: OffsetDateTime = datetime!(2022-05-11 00:00:00 UTC);
const DAY: i64 = 86_400;

struct Facility {
    key: SigningKey,
    cert: Certificate,
    dir: PathBuf,
}

struct Hierarchy {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ca: PathBuf,
    facility: Facility,
}

fn issue_hierarchy(code: &str) -> Hierarchy {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root = pki::init_root("Test Root", 7305, T0 - time::Duration::days(1)).unwrap();
    pki::write_issued(&d.join("root"), &root).unwrap();
    let root_ca = CaFiles::load(&d.join("root/key.pem"), &d.join("root/cert.pem")).unwrap();
    let ca = pki::issue_ca(&root_ca, &code[..2], 3652, T0 - time::Duration::days(1)).unwrap();
    pki::write_issued(&d.join("ca"), &ca).unwrap();
    let ca_files = CaFiles::load(&d.join("ca/key.pem"), &d.join("ca/cert.pem")).unwrap();
    let fac = pki::issue_facility(&ca_files, code, "Trạm Y tế", 730, T0).unwrap();
    pki::write_issued(&d.join("facility"), &fac).unwrap();
    let facility = load_facility(&d.join("facility"));
    Hierarchy { root: d.join("root"), ca: d.join("ca"), facility, _tmp: tmp }
}

fn load_facility(dir: &Path) -> Facility {
    let key = SigningKey::load(&dir.join("key.pem")).unwrap();
    let cert = parse_certificates(&std::fs::read(dir.join("cert.pem")).unwrap(), true).unwrap().remove(0);
    Facility { key, cert, dir: dir.to_owned() }
}

fn shared() -> &'static Hierarchy {
    static H: OnceLock<Hierarchy> = OnceLock::new();
    H.get_or_init(|| issue_hierarchy("01001"))
}

fn passport(f: &Facility, kid: &[u8], iat: i64, exp: i64) -> String {
    let doses = [Dose { vaccine: vaccines::lookup("Vero Cell").unwrap(), date: date!(2021 - 10 - 01) }];
    let content = PassportContent {
        person: Person { full_name: "Bùi Thị Thu-Hà".into(), dob: "1990".into() },
        doses: number_doses(&doses),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: Uvci::new("01001", "TESTTESTTESTTEST").unwrap(),
        issued_at: iat,
        expires_at: exp,
        include_history: true,
    };
    passport::sign(&content, Algorithm::Es256, kid, |m| f.key.sign(m)).unwrap().unwrap()
}

fn standard_passport(h: &Hierarchy) -> String {
    let t0 = T0.unix_timestamp();
    passport(&h.facility, &h.facility.cert.kid.0, t0, t0 + 365 * DAY)
}

fn chained_verifier(h: &Hierarchy, revocations: Revocations) -> Verifier {
    let mut trust = TrustStore::new();
    for dir in [&h.root, &h.ca, &h.facility.dir] {
        trust.load_trusted(&dir.join("cert.pem")).unwrap();
    }
    Verifier::new(trust, revocations)
}

fn at(offset_secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(offset_secs)
}

#[track_caller]
fn assert_reason(v: &Verdict, reason: ReasonCode) {
    assert_eq!(v.reason, reason, "detail: {:?}", v.detail);
    assert_eq!(v.valid, reason == ReasonCode::Ok);
}

#[test]
fn passport_chained_to_root_is_ok_with_its_chain() {
    let h = shared();
    let v = chained_verifier(h, Revocations::default()).verify(&standard_passport(h), at(DAY));
    assert_reason(&v, ReasonCode::Ok);
    let signer = v.signer.unwrap();
    assert_eq!(signer.facility_code.as_deref(), Some("01001"));
    assert_eq!(signer.chain.len(), 3);
    assert!(signer.chain[2].contains("Test Root"));
    assert_eq!(v.payload.unwrap()["nam"]["gnt"], "THI<THU<HA");
}

#[test]
fn validity_bounds_are_inclusive() {
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let text = standard_passport(h);
    assert_reason(&verifier.verify(&text, at(0)), ReasonCode::Ok);
    assert_reason(&verifier.verify(&text, at(365 * DAY)), ReasonCode::Ok);
    assert_reason(&verifier.verify(&text, at(365 * DAY + 1)), ReasonCode::Expired);
    let early = passport(&h.facility, &h.facility.cert.kid.0, T0.unix_timestamp() + 10, T0.unix_timestamp() + DAY);
    assert_reason(&verifier.verify(&early, at(9)), ReasonCode::NotYetValid);
}

#[test]
fn expired_signer_is_signer_expired() {
    let h = shared();
    let t0 = T0.unix_timestamp();
    let text = passport(&h.facility, &h.facility.cert.kid.0, t0, t0 + 1000 * DAY);
    let v = chained_verifier(h, Revocations::default()).verify(&text, at(800 * DAY));
    assert_reason(&v, ReasonCode::SignerExpired);
}

#[test]
fn signer_before_its_not_before_is_not_yet_valid() {
    let h = shared();
    let t0 = T0.unix_timestamp();
    let text = passport(&h.facility, &h.facility.cert.kid.0, t0 - 3 * 3600, t0 + DAY);
    let v = chained_verifier(h, Revocations::default()).verify(&text, at(-2 * 3600));
    assert_reason(&v, ReasonCode::SignerNotYetValid);
}

#[test]
fn dsc_of_another_root_is_chain_invalid() {
    let h = shared();
    let other = issue_hierarchy("79001");
    let mut trust = TrustStore::new();
    for dir in [&h.root, &h.ca, &other.facility.dir] {
        trust.load_trusted(&dir.join("cert.pem")).unwrap();
    }
    let v = Verifier::new(trust, Revocations::default()).verify(&standard_passport(&other), at(DAY));
    assert_reason(&v, ReasonCode::ChainInvalid);
}

#[test]
fn unknown_kid_is_key_not_in_trust_list() {
    let h = shared();
    let other = issue_hierarchy("79001");
    let v = chained_verifier(h, Revocations::default()).verify(&standard_passport(&other), at(DAY));
    assert_reason(&v, ReasonCode::KeyNotInTrustList);
}

#[test]
fn wrong_key_under_a_known_kid_is_signature_invalid() {
    let h = shared();
    let other = issue_hierarchy("79001");
    let t0 = T0.unix_timestamp();
    let forged = passport(&other.facility, &h.facility.cert.kid.0, t0, t0 + DAY);
    let v = chained_verifier(h, Revocations::default()).verify(&forged, at(10));
    assert_reason(&v, ReasonCode::SignatureInvalid);
    assert!(v.payload.is_some(), "payload is shown even when the verdict is false");
    assert!(v.signer.is_none());
}

#[test]
fn revoked_facility_is_signer_revoked_and_revoked_passport_is_revoked() {
    let h = shared();
    let mut r = Revocations::default();
    r.revoke_facility(h.facility.cert.kid);
    assert_reason(&chained_verifier(h, r).verify(&standard_passport(h), at(DAY)), ReasonCode::SignerRevoked);

    let text = standard_passport(h);
    let uvci = decode_uvci(&text);
    let mut r = Revocations::default();
    r.revoke_passport(&uvci);
    assert_reason(&chained_verifier(h, r).verify(&text, at(DAY)), ReasonCode::Revoked);
}

fn decode_uvci(text: &str) -> String {
    let c = passport::decode(text).unwrap().claims().unwrap();
    c.dcc["v"][0]["ci"].as_str().unwrap().to_owned()
}

/// A self-signed signer with the given EKU arcs, pinned.
/// Returns the signer, its certificate and its key's PKCS#8 PEM.
fn pinned_signer(eku_last_arcs: &[u64], not_after: OffsetDateTime) -> (Facility, Certificate, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.not_before = T0 - time::Duration::days(1);
    p.not_after = not_after;
    p.extended_key_usages = eku_last_arcs
        .iter()
        .map(|a| rcgen::ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 1847, 2021, 1, *a]))
        .collect();
    let cert = p.self_signed(&key).unwrap();
    let parsed = Certificate::from_der(cert.der()).unwrap();
    let signing = SigningKey::from_pem(Path::new("k"), key.serialize_pem().as_bytes()).unwrap();
    (Facility { key: signing, cert: parsed.clone(), dir: PathBuf::new() }, parsed, key.serialize_pem())
}

#[test]
fn eku_for_tests_only_cannot_sign_vaccinations() {
    let (f, cert, _) = pinned_signer(&[1], T0 + time::Duration::days(30));
    let mut trust = TrustStore::new();
    trust.add_pinned(cert.clone());
    let t0 = T0.unix_timestamp();
    let v = Verifier::new(trust, Revocations::default()).verify(&passport(&f, &cert.kid.0, t0, t0 + DAY), at(10));
    assert_reason(&v, ReasonCode::KeyUsageMismatch);
}

#[test]
fn kid_collision_tries_every_candidate() {
    let (f, real, _) = pinned_signer(&[2], T0 + time::Duration::days(30));
    let (_, mut impostor, _) = pinned_signer(&[2], T0 + time::Duration::days(30));
    impostor.kid = real.kid;
    let mut trust = TrustStore::new();
    trust.add_pinned(impostor);
    trust.add_pinned(real.clone());
    assert_eq!(trust.candidates(&real.kid).count(), 2);
    let t0 = T0.unix_timestamp();
    let v = Verifier::new(trust, Revocations::default()).verify(&passport(&f, &real.kid.0, t0, t0 + DAY), at(10));
    assert_reason(&v, ReasonCode::Ok);
}

#[test]
fn collision_reports_the_most_specific_failure() {
    // Two certificates for one key share a kid; one has expired. The valid one wins; alone,
    // the expired one explains the rejection better than SIGNATURE_INVALID would.
    let (f, valid, key_pem) = pinned_signer(&[2], T0 + time::Duration::days(30));
    let expired_der = {
        let mut p = rcgen::CertificateParams::default();
        p.not_before = T0 - time::Duration::days(10);
        p.not_after = T0 - time::Duration::days(1);
        let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    };
    let mut expired = Certificate::from_der(&expired_der).unwrap();
    expired.kid = valid.kid;
    let t0 = T0.unix_timestamp();
    let text = passport(&f, &valid.kid.0, t0, t0 + DAY);

    let mut both = TrustStore::new();
    both.add_pinned(expired.clone());
    both.add_pinned(valid.clone());
    assert_reason(&Verifier::new(both, Revocations::default()).verify(&text, at(10)), ReasonCode::Ok);

    let mut only_expired = TrustStore::new();
    only_expired.add_pinned(expired);
    assert_reason(
        &Verifier::new(only_expired, Revocations::default()).verify(&text, at(10)),
        ReasonCode::SignerExpired,
    );
}

#[test]
fn untagged_cose_verifies_like_tagged() {
    let h = shared();
    let text = standard_passport(h);
    let z = base45::decode(&text[4..]).unwrap();
    let mut cose = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut cose).unwrap();
    assert_eq!(cose[0], 0xd2, "tag 18");
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &cose[1..]).unwrap();
    let untagged = format!("HC1:{}", base45::encode(e.finish().unwrap()));
    assert_reason(&chained_verifier(h, Revocations::default()).verify(&untagged, at(DAY)), ReasonCode::Ok);
}

#[test]
fn unsupported_algorithm_is_reported() {
    use ciborium::Value;
    let mut protected = Vec::new();
    ciborium::ser::into_writer(
        &Value::Map(vec![(1.into(), (-8).into()), (4.into(), Value::Bytes(vec![0; 8]))]),
        &mut protected,
    )
    .unwrap();
    let msg = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Bytes(vec![0xa0]),
            Value::Bytes(vec![0; 64]),
        ])),
    );
    let mut cose = Vec::new();
    ciborium::ser::into_writer(&msg, &mut cose).unwrap();
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &cose).unwrap();
    let text = format!("HC1:{}", base45::encode(e.finish().unwrap()));
    assert_reason(&Verifier::default().verify(&text, at(0)), ReasonCode::UnsupportedAlgorithm);
}

#[test]
fn chain_validation_is_cached_per_signer() {
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let text = standard_passport(h);
    for i in 0..5 {
        assert_reason(&verifier.verify(&text, at(DAY + i)), ReasonCode::Ok);
    }
    assert_eq!(verifier.trust().path_validations(), 1);
}

#[test]
fn decode_failures_have_their_codes() {
    let v = Verifier::default();
    assert_reason(&v.verify("NCF123", at(0)), ReasonCode::InvalidPrefix);
    assert_reason(&v.verify("HC1:a", at(0)), ReasonCode::Base45DecodingFailed);
    assert_reason(&v.verify("HC1:6BF", at(0)), ReasonCode::DecompressionFailed);
}

/// The claims of a standard passport as a CBOR map, to tamper with before signing them again.
fn standard_claims(h: &Hierarchy) -> Vec<(ciborium::Value, ciborium::Value)> {
    let msg = passport::decode(&standard_passport(h)).unwrap();
    match ciborium::de::from_reader(&msg.payload[..]).unwrap() {
        ciborium::Value::Map(m) => m,
        other => panic!("claims are not a map: {other:?}"),
    }
}

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

/// Signs `claims` validly with the shared facility's key, under `protected` and `unprotected`.
fn sign_claims(
    h: &Hierarchy,
    protected: &[u8],
    unprotected: &ciborium::Value,
    claims: Vec<(ciborium::Value, ciborium::Value)>,
) -> String {
    let payload = cbor(&ciborium::Value::Map(claims));
    passport::sign_raw(protected, &cbor(unprotected), &payload, |m| h.facility.key.sign(m).unwrap())
}

fn our_protected(h: &Hierarchy) -> Vec<u8> {
    passport::protected_header(Algorithm::Es256, &h.facility.cert.kid.0)
}

fn no_unprotected() -> ciborium::Value {
    ciborium::Value::Map(vec![])
}

// Issue #8, "also seen": https://github.com/vaxpass/vaxpass/issues/8
#[test]
fn validly_signed_passport_without_exp_is_cwt_decoding_failed() {
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let claims = standard_claims(h);
    // The control: the same claims re-signed verify.
    let text = sign_claims(h, &our_protected(h), &no_unprotected(), claims.clone());
    assert_reason(&verifier.verify(&text, at(DAY)), ReasonCode::Ok);
    let without_exp: Vec<_> = claims.into_iter().filter(|(k, _)| *k != ciborium::Value::from(4)).collect();
    let text = sign_claims(h, &our_protected(h), &no_unprotected(), without_exp);
    // 100 years later it would otherwise still be valid.
    let v = verifier.verify(&text, at(36_500 * DAY));
    assert_reason(&v, ReasonCode::CwtDecodingFailed);
    assert_eq!(v.detail.as_deref(), Some("the CWT cannot be decoded: no expiry (exp, claim 4)"));
}

#[test]
fn validly_signed_repeated_claim_keys_are_cwt_decoding_failed() {
    use ciborium::Value;
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let claims = standard_claims(h);
    let hcert = claims.iter().find(|(k, _)| *k == Value::from(-260)).unwrap().1.clone();
    let Value::Map(hcert_map) = &hcert else { panic!("hcert is not a map") };
    let Value::Map(dcc) = &hcert_map[0].1 else { panic!("the DCC is not a map") };
    let mut other_dcc = dcc.clone();
    for (k, v) in &mut other_dcc {
        if *k == Value::from("dob") {
            *v = Value::from("1950");
        }
    }
    // Two -260 claims: the last one used to win.
    let mut two_hcerts = claims.clone();
    two_hcerts.push((Value::from(-260), Value::Map(vec![(Value::from(1), Value::Map(other_dcc.clone()))])));
    // Two DCCs inside one -260.
    let mut two_dccs = claims.clone();
    for (k, v) in &mut two_dccs {
        if *k == Value::from(-260) {
            *v = Value::Map(vec![(1.into(), Value::Map(dcc.clone())), (1.into(), Value::Map(other_dcc.clone()))]);
        }
    }
    // Two exp claims, and two dob keys inside the DCC.
    let mut two_exps = claims.clone();
    two_exps.push((Value::from(4), Value::from(i64::MAX / 2)));
    let mut two_dobs = claims.clone();
    let mut dcc_two_dobs = dcc.clone();
    dcc_two_dobs.push((Value::from("dob"), Value::from("1950")));
    for (k, v) in &mut two_dobs {
        if *k == Value::from(-260) {
            *v = Value::Map(vec![(1.into(), Value::Map(dcc_two_dobs.clone()))]);
        }
    }
    for (name, claims) in [("-260", two_hcerts), ("1 in -260", two_dccs), ("exp", two_exps), ("dob", two_dobs)] {
        let text = sign_claims(h, &our_protected(h), &no_unprotected(), claims);
        let v = verifier.verify(&text, at(DAY));
        assert_eq!(v.reason, ReasonCode::CwtDecodingFailed, "repeated {name}: {:?}", v.detail);
        assert_eq!(v.detail.as_deref(), Some("the CWT cannot be decoded: a map in the payload repeats a key"));
    }
}

#[test]
fn validly_signed_repeated_header_labels_are_cose_decoding_failed() {
    use ciborium::Value;
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let kid = Value::Bytes(h.facility.cert.kid.0.to_vec());
    let protected_twice_kid =
        cbor(&Value::Map(vec![(1.into(), (-7).into()), (4.into(), kid.clone()), (4.into(), Value::Bytes(vec![0; 8]))]));
    let text = sign_claims(h, &protected_twice_kid, &no_unprotected(), standard_claims(h));
    assert_reason(&verifier.verify(&text, at(DAY)), ReasonCode::CoseDecodingFailed);
    let unprotected_twice = Value::Map(vec![(4.into(), kid.clone()), (4.into(), kid)]);
    let text = sign_claims(h, &our_protected(h), &unprotected_twice, standard_claims(h));
    assert_reason(&verifier.verify(&text, at(DAY)), ReasonCode::CoseDecodingFailed);
}

// Issue #12 item 3: schema 1.0.x writers put `null` for the groups a certificate lacks.
#[test]
fn validly_signed_null_groups_read_as_absent() {
    use ciborium::Value;
    let h = shared();
    let verifier = chained_verifier(h, Revocations::default());
    let mut claims = standard_claims(h);
    for (k, v) in claims.iter_mut() {
        if *k == Value::from(-260)
            && let Value::Map(hcert) = v
            && let Some((_, Value::Map(dcc))) = hcert.first_mut()
        {
            dcc.push((Value::Text("t".into()), Value::Null));
            dcc.push((Value::Text("r".into()), Value::Null));
        }
    }
    let text = sign_claims(h, &our_protected(h), &no_unprotected(), claims);
    let v = verifier.verify(&text, at(DAY));
    assert_reason(&v, ReasonCode::Ok);
    assert_eq!(v.payload.as_ref().unwrap()["t"], serde_json::Value::Null);
    assert_eq!(v.format, Some(Format::Dcc));
    assert_eq!(v.holder.as_ref().unwrap().name, "Bùi Thị Thu-Hà");
    assert_eq!(v.vaccinations.len(), 1);
    assert_eq!(v.vaccinations[0].product, "BBIBP-CorV");
    assert_eq!(v.dcc_shaped_payload().as_ref(), v.payload.as_ref());
}

#[test]
fn texts_of_no_known_format_are_unsupported() {
    let v = Verifier::default();
    for text in ["", "hello", "https://example.org", "[1,2]"] {
        let verdict = v.verify(text, at(0));
        assert_reason(&verdict, ReasonCode::UnsupportedFormat);
        assert_eq!(verdict.format, None);
        assert!(verdict.dcc_shaped_payload().is_none());
    }
    assert_eq!(v.verify("shc:/56", at(0)).format, Some(Format::Shc));
    assert_eq!(v.verify(" {\"data\":1}\n", at(0)).reason, ReasonCode::FormatInvalid);
    assert_eq!(v.verify("HC1:6BF", at(0)).format, Some(Format::Dcc));
}
