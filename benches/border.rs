//! Verifying a SMART Health Card and an ICAO VDS-NC seal beside the bare ring ES256
//! verification they wrap (issue #12 goals, one core: SHC ≤ 1.2×, VDS-NC ≤ 1.3×).
//!
//! ```text
//! taskset -c 0 cargo bench --bench border
//! ```
//!
//! Group `border`:
//! - `raw/ring_es256_verify` — `UnparsedPublicKey::verify` (ES256, r‖s) of the SHC's JWS
//!   signature over its signing input (~1 KB), the key parsed per call as in the verifier;
//! - `shc/verify` — [`vaxpass::verify::Verifier::verify`] of the `shc:/` text (a 2-dose card
//!   like the specification's example 00): numeric decoding, base64url, raw inflate, JSON,
//!   issuer and kid lookup, the signature, content checks, times, revocation, normalising;
//! - `vds_nc/verify` — the same for a 2-dose seal: JSON, RFC 8785 canonicalisation of
//!   `data`, the signer certificate (its CSCA check cached after the first call), the
//!   signature, the country and validity checks, normalising.
//!
//! Ratios: `shc/verify / raw/ring_es256_verify` and `vds_nc/verify / raw/ring_es256_verify`
//! from the medians in `target/criterion/border/*/new/estimates.json` of the same run.
//!
//! Wall-clock on a shared machine is noisy; `examples/border_count` counts the instructions
//! of the same three loops under callgrind (same card, seal and allocator). Per verification,
//! raw 766 k: a card 893.6 k (1.166×; 917.4 k, 1.198×, before the December 2026 changes), a
//! seal 820.1 k (1.070×; 938.3 k, 1.225×, before). What a card costs beyond its signature
//! (128 k): raw inflate 42 k (a third of it Huffman tables), JSON into the payload `Value` 38 k
//! and dropping it 10 k, the FHIR checks and normalising 15 k, digits and base64url 12 k.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use time::OffsetDateTime;
use vaxpass::pki::{Certificate, Revocations, TrustStore};
use vaxpass::verify::{ReasonCode, ShcDirectory, Verifier};

/// The allocator of the `vaxpass` binary (src/main.rs), so the verifications are measured as
/// the service and the CLI run them: with glibc's malloc a card's verification takes 34 k more
/// instructions (1.210× raw instead of 1.166×) and a seal's 12 k more (1.089× instead of
/// 1.074×; callgrind, examples/border_count); the raw signature check allocates nothing.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../examples/common/border_fixtures.rs"]
mod fixtures;
use fixtures::{card, seal};

fn main() {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let card = card();
    let shc = Verifier::new(TrustStore::new(), Revocations::default())
        .with_issuers(ShcDirectory::from_json(card.directory.to_string().as_bytes()).unwrap());
    let (seal, csca) = seal();
    let mut trust = TrustStore::new();
    trust.add_pinned(Certificate::from_der(&csca).unwrap());
    let vds = Verifier::new(trust, Revocations::default());
    assert_eq!(shc.verify(&card.text, at).reason, ReasonCode::Ok);
    assert_eq!(vds.verify(&seal, at).reason, ReasonCode::Ok);
    println!(
        "shc: {} characters; seal: {} bytes; JWS signing input: {} bytes",
        card.text.len(),
        seal.len(),
        card.signed.len()
    );

    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("border");
    g.bench_function("raw/ring_es256_verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(card.point.as_slice()))
                .verify(black_box(&card.signed), black_box(&card.signature))
                .unwrap();
        })
    });
    g.bench_function("shc/verify", |b| b.iter(|| shc.verify(black_box(&card.text), black_box(at))));
    g.bench_function("vds_nc/verify", |b| b.iter(|| vds.verify(black_box(&seal), black_box(at))));
    g.finish();
    c.final_summary();
}
