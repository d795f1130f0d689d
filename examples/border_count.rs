//! Instruction counts of the border verifications (issue #12's goals, SHC ≤ 1.2× and
//! VDS-NC ≤ 1.3× of raw ring ES256): the wall-clock bench `benches/border.rs` is noisy on a
//! shared machine, callgrind's counts are not. Verifies the bench's card and seal N times
//! each, and the card's bare signature N times, each loop in its own function:
//!
//! ```text
//! cargo build --release --example border_count
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/border.cg target/release/examples/border_count 200
//! callgrind_annotate --inclusive=yes /tmp/border.cg | grep border_count::run_
//! ```
//!
//! The ratios are `run_shc / run_raw` and `run_vdsnc / run_raw`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use time::OffsetDateTime;
use vaxpass::pki::{Certificate, Revocations, TrustStore};
use vaxpass::verify::{ReasonCode, ShcDirectory, Verifier};

/// As in `benches/border.rs`: the `vaxpass` binary's allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "common/border_fixtures.rs"]
mod fixtures;

#[inline(never)]
fn run_raw(n: usize, card: &fixtures::Card) {
    for _ in 0..n {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(card.point.as_slice()))
            .verify(black_box(&card.signed), black_box(&card.signature))
            .unwrap();
    }
}

#[inline(never)]
fn run_shc(n: usize, verifier: &Verifier, text: &str, at: OffsetDateTime) -> usize {
    // Counts differently from `run_vdsnc` so the two are not folded into one function.
    (0..n).filter(|_| verifier.verify(black_box(text), black_box(at)).valid).count()
}

#[inline(never)]
fn run_vdsnc(n: usize, verifier: &Verifier, text: &str, at: OffsetDateTime) -> usize {
    (0..n).filter(|_| verifier.verify(black_box(text), black_box(at)).vaccinations.len() == 2).count()
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(200, |a| a.parse().unwrap());
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let card = fixtures::card();
    let shc = Verifier::new(TrustStore::new(), Revocations::default())
        .with_issuers(ShcDirectory::from_json(card.directory.to_string().as_bytes()).unwrap());
    let (seal, csca) = fixtures::seal();
    let mut trust = TrustStore::new();
    trust.add_pinned(Certificate::from_der(&csca).unwrap());
    let vds = Verifier::new(trust, Revocations::default());
    // Also warms the caches (the seal signer's CSCA check, the inflate state).
    assert_eq!(shc.verify(&card.text, at).reason, ReasonCode::Ok);
    assert_eq!(vds.verify(&seal, at).reason, ReasonCode::Ok);
    run_raw(n, &card);
    let shc_valid = run_shc(n, &shc, &card.text, at);
    let vds_read = run_vdsnc(n, &vds, &seal, at);
    assert_eq!((shc_valid, vds_read), (n, n));
    println!("{n} verifications each");
}
