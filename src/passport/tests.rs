//! Round trips and hostile input for the passport format.

use proptest::prelude::*;
use std::path::Path;
use time::macros::date;

use super::*;
use crate::pki::SigningKey;

fn key() -> SigningKey {
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    SigningKey::from_pem(Path::new("test"), pem.as_bytes()).unwrap()
}

fn content(doses: &[(&str, time::Date)], history: bool) -> PassportContent {
    let doses: Vec<Dose> =
        doses.iter().map(|(v, d)| Dose { vaccine: vaccines::lookup(v).unwrap(), date: *d }).collect();
    PassportContent {
        person: Person { full_name: "Đặng Thị Ngọc Ánh".into(), dob: "1985-03-04".into() },
        doses: number_doses(&doses),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: Uvci::new("01001", "ABCDEFGH23456789").unwrap(),
        // 2022-05-11: EU equivalence date
        issued_at: 1_652_227_200,
        expires_at: 1_652_227_200 + 365 * 86_400,
        include_history: history,
    }
}

fn sign_with(k: &SigningKey, c: &PassportContent) -> String {
    sign(c, Algorithm::Es256, b"kid12345", |m| k.sign(m)).unwrap().unwrap()
}

fn three_doses() -> Vec<(&'static str, time::Date)> {
    vec![
        ("AstraZeneca", date!(2021 - 07 - 01)),
        ("Astra Zeneca", date!(2021 - 09 - 20)),
        ("Pfizer", date!(2022 - 01 - 10)),
    ]
}

#[test]
fn signed_passport_decodes_to_what_was_signed() {
    let k = key();
    let text = sign_with(&k, &content(&three_doses(), true));
    assert!(text.starts_with("HC1:"));
    let msg = decode(&text).unwrap();
    assert_eq!(msg.alg, Ok(Algorithm::Es256));
    assert_eq!(msg.kid.as_deref(), Some(&b"kid12345"[..]));
    assert!(msg.verify_signature(PublicKey::EcP256(k.public_point())));

    let claims = msg.claims().unwrap();
    assert_eq!(claims.issuer.as_deref(), Some("VN"));
    assert_eq!(claims.issued_at, Some(1_652_227_200.0));
    let dcc = &claims.dcc;
    assert_eq!(dcc["ver"], "1.3.0");
    assert_eq!(dcc["nam"]["fn"], "Đặng");
    assert_eq!(dcc["nam"]["gn"], "Thị Ngọc Ánh");
    assert_eq!(dcc["nam"]["fnt"], "DANG");
    assert_eq!(dcc["nam"]["gnt"], "THI<NGOC<ANH");
    assert_eq!(dcc["dob"], "1985-03-04");
    let v = &dcc["v"][0];
    assert_eq!(v["mp"], "EU/1/20/1528");
    assert_eq!(v["ma"], "ORG-100030215");
    assert_eq!(v["vp"], "1119349007");
    assert_eq!((v["dn"].as_u64(), v["sd"].as_u64()), (Some(3), Some(3)));
    assert_eq!(v["dt"], "2022-01-10");
    assert_eq!(v["co"], "VN");
    assert_eq!(v["tg"], "840539006");
    assert!(v["ci"].as_str().unwrap().starts_with("URN:UVCI:01:VN:01001/"));
    assert_eq!(check_schema(dcc), Ok(CertificateKind::Vaccination));

    let history = claims.history.unwrap();
    let h = history.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["dt"], "2021-07-01");
    assert_eq!((h[1]["dn"].as_u64(), h[1]["sd"].as_u64()), (Some(2), Some(2)));
    assert_eq!(h[0]["mp"], "EU/1/21/1529");
    assert!(h[0].get("ci").is_none(), "history entries carry no UVCI");
}

#[test]
fn no_history_leaves_the_claim_out() {
    let k = key();
    let claims = decode(&sign_with(&k, &content(&three_doses(), false))).unwrap().claims().unwrap();
    assert!(claims.history.is_none());
    assert_eq!(claims.dcc["v"][0]["dn"], 3);
}

#[test]
fn one_word_name_has_no_given_name() {
    let k = key();
    let mut c = content(&three_doses(), true);
    c.person.full_name = "Mường".into();
    let claims = decode(&sign_with(&k, &c)).unwrap().claims().unwrap();
    assert_eq!(claims.dcc["nam"], serde_json::json!({"fn": "Mường", "fnt": "MUONG"}));
}

#[test]
fn no_dose_signs_nothing() {
    let mut c = content(&three_doses(), true);
    c.doses.clear();
    let called = std::cell::Cell::new(false);
    let r = sign(&c, Algorithm::Es256, b"k", |_| {
        called.set(true);
        Ok::<_, ()>(vec![])
    });
    assert_eq!(r, Ok(None));
    assert!(!called.get());
}

#[test]
fn signature_fails_with_another_key_or_algorithm() {
    let (k1, k2) = (key(), key());
    let msg = decode(&sign_with(&k1, &content(&three_doses(), true))).unwrap();
    assert!(!msg.verify_signature(PublicKey::EcP256(k2.public_point())));
    assert!(!msg.verify_signature(PublicKey::Rsa(k1.public_point())));
}

#[test]
fn passport_with_four_doses_fits_a_qr_code() {
    let k = key();
    let mut doses = three_doses();
    doses.push(("Moderna", date!(2022 - 06 - 01)));
    let text = sign_with(&k, &content(&doses, true));
    assert!(text.len() < 1000, "{} chars", text.len());
    assert!(crate::render::qr_version(&text).unwrap() <= 25);
}

fn valid_text() -> (String, Vec<u8>) {
    thread_local! {
        static CACHE: (String, Vec<u8>) = {
            let k = key();
            (sign_with(&k, &content(&three_doses(), true)), k.public_point().to_vec())
        };
    }
    CACHE.with(|c| c.clone())
}

const BASE45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn any_text_decodes_or_errs_without_panic(s in ".{0,600}") {
        let _ = decode(&s).map(|m| m.claims());
        let _ = decode(&format!("HC1:{s}")).map(|m| m.claims());
    }

    #[test]
    fn any_bytes_behind_zlib_decode_or_err(bytes in prop::collection::vec(any::<u8>(), 0..800)) {
        let z = super::hc1::encode(&bytes);
        if let Ok(m) = decode(&z) {
            let _ = m.claims().map(|c| check_schema(&c.dcc));
        }
    }

    #[test]
    fn one_changed_character_never_verifies(pos in 4usize..400, c in 0usize..45) {
        let (text, point) = valid_text();
        let pos = pos % text.len().max(5);
        let mut bytes = text.clone().into_bytes();
        prop_assume!(pos >= 4 && bytes[pos] != BASE45[c]);
        bytes[pos] = BASE45[c];
        let mutated = String::from_utf8(bytes).unwrap();
        if let Ok(m) = decode(&mutated) {
            prop_assert!(!m.verify_signature(PublicKey::EcP256(&point)));
        }
    }

    #[test]
    fn truncated_passport_never_decodes(cut in 0usize..2000) {
        let (text, _) = valid_text();
        let cut = cut % text.len();
        prop_assert!(decode(&text[..cut]).is_err());
    }
}

#[test]
fn estimated_length_is_within_the_margin_of_the_signed_length() {
    let k = key();
    for n in [1usize, 4, 40, 60] {
        let doses: Vec<(&str, time::Date)> = (0..n)
            .map(|i| {
                (
                    ["Pfizer", "Moderna", "AstraZeneca", "Vero Cell"][i % 4],
                    date!(2021 - 04 - 01) + time::Duration::days(14 * i as i64),
                )
            })
            .collect();
        let c = content(&doses, true);
        let estimate = estimated_hc1_len(&c, Algorithm::Es256, b"kid12345").unwrap();
        for _ in 0..50 {
            let real = sign_with(&k, &c).len();
            // Never more than half the margin over the estimate; with 40 and 60 doses the
            // message is compressed and the estimate is close on both sides.
            assert!(real <= estimate + HC1_LEN_ESTIMATE_MARGIN / 2, "{n} doses: {real} > {estimate}");
            if n >= 40 {
                assert!(real + HC1_LEN_ESTIMATE_MARGIN / 2 >= estimate, "{n} doses: {real} < {estimate}");
            }
        }
    }
}
