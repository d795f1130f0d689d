//! Evaluating Viet Nam's entry rules (SPEC §9.2) for one certificate, beside raw ring ES256
//! verification measured in the same run.
//!
//! ```text
//! taskset -c 0 cargo bench --bench rules
//! ```
//!
//! - `rules/viet_nam_passed` — [`vaxpass::rules::RuleSet::evaluate`] of the shipped rule set
//!   (`rules/vn`, 8 rules and 5 EU value sets) over a valid 2/2 AstraZeneca payload: rule
//!   choice (country, type, window, version), the data context, every rule's CertLogic.
//!   Goal (issue #12): ≤ 20 µs.
//! - `rules/viet_nam_failed` — the same over a 1/2 dose given 3 days before the clock, so
//!   two rules fail and their bilingual descriptions are copied into the answer.
//! - `rules/raw_ring_es256_verify` — `UnparsedPublicKey::verify` (ES256) of a fresh
//!   signature over 300 bytes: how the rules compare with the signature check every
//!   verification already pays.
//!
//! Medians: `jq .median.point_estimate target/criterion/rules/<name>/new/estimates.json`
//! (nanoseconds).
//!
//! Measured 2026-11-30 on core 0 of this 2-core machine, shared with other builders (load
//! average ~11): `viet_nam_passed` 11.3 µs, `viet_nam_failed` 12.6 µs,
//! `raw_ring_es256_verify` 94.4 µs (the rules cost 0.12× a bare signature check).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey,
};
use serde_json::json;
use time::macros::datetime;
use vaxpass::rules::{EntryResult, External, RuleSet};

fn payload(dn: u32, dt: &str) -> serde_json::Value {
    json!({"ver": "1.3.0", "nam": {"fn": "Nguyễn", "gn": "Văn An", "fnt": "NGUYEN", "gnt": "VAN<AN"}, "dob": "1990-05-02",
        "v": [{"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/21/1529", "ma": "ORG-100001699", "dn": dn, "sd": 2,
               "dt": dt, "co": "VN", "is": "Ministry of Health Viet Nam", "ci": "URN:UVCI:01:VN:01001/0123456789ABCDEF#Q"}]})
}

fn main() {
    let rules = RuleSet::viet_nam();
    // 2021-09-01: 31 days after the passing payload's dose.
    let mut external = External::at(datetime!(2021-09-01 00:00 UTC), "VN");
    external.issuer_country_code = Some("VN".into());
    external.iat = Some(1_627_776_000.0);
    external.exp = Some(1_659_312_000.0);
    let passed = payload(2, "2021-08-01");
    let failed = payload(1, "2021-08-29");
    assert_eq!(rules.evaluate(&passed, &external).result, EntryResult::Passed);
    assert_eq!(rules.evaluate(&failed, &external).failed.len(), 2);

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let message = [7u8; 300];
    let signature = key.sign(&rng, &message).unwrap();
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref().to_vec());

    let mut c = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let mut group = c.benchmark_group("rules");
    group.bench_function("viet_nam_passed", |b| b.iter(|| rules.evaluate(black_box(&passed), black_box(&external))));
    group.bench_function("viet_nam_failed", |b| b.iter(|| rules.evaluate(black_box(&failed), black_box(&external))));
    group.bench_function("raw_ring_es256_verify", |b| {
        b.iter(|| public.verify(black_box(&message), black_box(signature.as_ref())).unwrap())
    });
    group.finish();
    c.final_summary();
}
