//! `cargo +nightly fuzz run trust_bundle`: see `vaxpass_fuzz::trust_bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::trust_bundle(data));
