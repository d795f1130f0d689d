//! Issuing and verifying a passport against the bare ring signature operations they wrap.
//!
//! Run on one core (the machine has two; the second would only add noise):
//!
//! ```text
//! taskset -c 0 cargo bench --bench passport
//! ```
//!
//! (`cargo bench --bench passport` alone works too.) Before criterion starts, the binary
//! prints one line per dose count with the `HC1:` length and the QR version it needs at
//! ECC Q, e.g. `qr: 3 doses: 672 chars, version 20`.
//!
//! Criterion then reports two groups, each a pair of a raw ring operation and the pipeline
//! that wraps it, so the medians sit next to each other:
//!
//! - `sign/raw/ring_es256_sign` — `EcdsaKeyPair::sign` (ES256, fixed r‖s) over the real
//!   Sig_structure of the 1-dose passport (~300 bytes; the binary prints its size), with the
//!   key loaded once; `sign/passport/sign_1_dose`, `sign/passport/sign_3_doses` —
//!   [`vaxpass::passport::sign`] with the same key: CBOR claims (with history) + COSE + the
//!   ring signature + zlib + Base45.
//! - `verify/raw/ring_es256_verify` — `UnparsedPublicKey::verify` (ES256) of that
//!   signature with the DSC's public point; `verify/passport/verify_1_dose`,
//!   `verify/passport/verify_3_doses` — [`vaxpass::verify::Verifier::verify`] with the
//!   keys-example trust store at a fixed time: decode, signature, claims, schema, chain
//!   validation (cached after the first call), validity, times and revocation.
//!
//! How to read the ratios (issue goal, one core):
//!
//! - issuing overhead = `sign_1_dose / ring_es256_sign`; goal ≤ 1.3;
//! - verifying overhead = `verify_1_dose / ring_es256_verify`; goal ≤ 1.15.
//!
//! The middle figure of criterion's `time: [low estimate high]` is its estimate of the time
//! per iteration (a regression slope, close to the mean), which a few slow samples pull up.
//! Prefer the medians criterion writes to
//! `target/criterion/<group>/<name>/new/estimates.json` (nanoseconds), e.g.
//!
//! ```text
//! jq .median.point_estimate target/criterion/sign/passport_sign_1_dose/new/estimates.json
//! jq .median.point_estimate target/criterion/sign/raw_ring_es256_sign/new/estimates.json
//! ```
//!
//! and divide them yourself; this binary deliberately prints no ratio.
//!
//! The 3-dose rows show how the overhead grows with the history claim. Single runs vary by
//! up to ±25 % on this kind of machine (STACK.md): compare medians from the same run only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use time::OffsetDateTime;
use time::macros::date;
use vaxpass::passport::{self, Algorithm, Dose, PassportContent, Person, vaccines};
use vaxpass::pki::{self, Certificate, Revocations, SignerKey, SigningKey, TrustStore};
use vaxpass::verify::{ReasonCode, Verifier};
use vaxpass::{render, verify};

/// One year, the passport lifetime used here (well past any benchmark run).
const ONE_YEAR_SECS: i64 = 365 * 86_400;

fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example")
}

fn dose(name: &str, date: time::Date) -> Dose {
    Dose { vaccine: vaccines::lookup(name).expect("known vaccine"), date }
}

/// The dose series used for `n` doses: AstraZeneca ×2, then a Pfizer and a Moderna booster,
/// each at least 14 days after the previous one.
fn doses(n: usize) -> Vec<Dose> {
    let all = [
        dose("AstraZeneca", date!(2021 - 08 - 02)),
        dose("AstraZeneca", date!(2021 - 10 - 25)),
        dose("Pfizer", date!(2022 - 04 - 11)),
        dose("Moderna", date!(2022 - 11 - 14)),
    ];
    all[..n].to_vec()
}

fn content(n: usize, now: OffsetDateTime) -> PassportContent {
    PassportContent {
        person: Person { full_name: "Nguyễn Thị Ngọc Ánh".into(), dob: "1987-03-09".into() },
        doses: passport::number_doses(&doses(n)),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: passport::Uvci::new("01001", "0123456789ABCDEF").unwrap(),
        issued_at: now.unix_timestamp(),
        expires_at: now.unix_timestamp() + ONE_YEAR_SECS,
        include_history: true,
    }
}

/// Signs `content`, returning the `HC1:` text and the Sig_structure that was signed.
fn sign_capturing(content: &PassportContent, key: &SigningKey, kid: &[u8]) -> (String, Vec<u8>) {
    let mut tbs = Vec::new();
    let text = passport::sign(content, Algorithm::Es256, kid, |m| {
        tbs = m.to_vec();
        key.sign(m)
    })
    .unwrap()
    .expect("at least one dose");
    (text, tbs)
}

fn main() {
    let dir = keys_dir();
    let key = SigningKey::load(&dir.join("facility-01001/key.pem")).unwrap();
    let dsc: Certificate =
        pki::parse_certificates(&std::fs::read(dir.join("facility-01001/cert.pem")).unwrap(), true).unwrap().remove(0);
    let SignerKey::EcP256(point) = dsc.key.clone() else { panic!("the facility DSC is not a P-256 key") };
    assert_eq!(point.as_slice(), key.public_point(), "key.pem and cert.pem do not match");
    let kid = dsc.kid.0;

    // One fixed verification time inside the keys-example validity (2026-11-30 to
    // 2028-11-29), whatever the machine's date.
    let now = time::macros::datetime!(2027-06-01 0:00 UTC);
    let mut trust = TrustStore::new();
    trust.load_trusted(&dir).unwrap();
    let verifier = Verifier::new(trust, Revocations::default());

    let content_1 = content(1, now);
    let content_3 = content(3, now);
    let (text_1, tbs_1) = sign_capturing(&content_1, &key, &kid);
    let (text_3, _) = sign_capturing(&content_3, &key, &kid);

    // QR sizes, outside criterion.
    for n in [1, 3, 4] {
        let (text, _) = sign_capturing(&content(n, now), &key, &kid);
        let version = render::qr_version(&text).unwrap();
        println!("qr: {n} dose{}: {} chars, version {version}", if n == 1 { "" } else { "s" }, text.len());
    }

    // Sanity before timing: both passports verify, and the raw pair is the real one.
    for text in [&text_1, &text_3] {
        let verdict: verify::Verdict = verifier.verify(text, now);
        assert_eq!(verdict.reason, ReasonCode::Ok, "{:?}", verdict.detail);
    }
    let sig_1 = passport::decode(&text_1).unwrap().signature;
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_slice());
    public.verify(&tbs_1, &sig_1).unwrap();
    println!("raw message (Sig_structure of the 1-dose passport): {} bytes", tbs_1.len());

    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    {
        let mut g = c.benchmark_group("sign");
        g.bench_function("raw/ring_es256_sign", |b| b.iter(|| key.sign(black_box(&tbs_1)).unwrap()));
        for (name, content) in [("passport/sign_1_dose", &content_1), ("passport/sign_3_doses", &content_3)] {
            g.bench_function(name, |b| {
                b.iter(|| passport::sign(black_box(content), Algorithm::Es256, &kid, |m| key.sign(m)).unwrap())
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("verify");
        g.bench_function("raw/ring_es256_verify", |b| {
            b.iter(|| {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(point.as_slice()))
                    .verify(black_box(&tbs_1), black_box(&sig_1))
                    .unwrap();
            })
        });
        for (name, text) in [("passport/verify_1_dose", &text_1), ("passport/verify_3_doses", &text_3)] {
            g.bench_function(name, |b| b.iter(|| verifier.verify(black_box(text), black_box(now))));
        }
        g.finish();
    }

    {
        // Issue #4: verifying from a phone-sized photo in <= 50 ms. A 1,280 x 960 JPEG with the
        // 3-dose passport's QR code scaled 1.5x and set off-centre on a grey background.
        let photo = photo_of(&text_3);
        assert_eq!(vaxpass::scan::qr_text_from_photo(&photo).unwrap(), text_3);
        let mut g = c.benchmark_group("photo");
        g.sample_size(20);
        g.bench_function("scan_and_verify_1280x960_jpeg", |b| {
            b.iter(|| verifier.verify(&vaxpass::scan::qr_text_from_photo(black_box(&photo)).unwrap(), now))
        });
        g.finish();
    }

    c.final_summary();
}

fn photo_of(text: &str) -> Vec<u8> {
    let png = render::render_qr(text, render::QrFormat::Png).unwrap();
    let qr = image::load_from_memory(&png).unwrap().to_luma8();
    let qr =
        image::imageops::resize(&qr, qr.width() * 3 / 2, qr.height() * 3 / 2, image::imageops::FilterType::Triangle);
    let mut canvas = image::GrayImage::from_pixel(1280, 960, image::Luma([200]));
    image::imageops::overlay(&mut canvas, &qr, 300, 150);
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(canvas)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}
