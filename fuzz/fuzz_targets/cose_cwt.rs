//! `cargo +nightly fuzz run cose_cwt`: see `vaxpass_fuzz::cose_cwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::cose_cwt(data));
