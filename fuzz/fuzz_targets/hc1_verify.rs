//! `cargo +nightly fuzz run hc1_verify`: see `vaxpass_fuzz::hc1_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::hc1_verify(data));
