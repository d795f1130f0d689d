//! `cargo +nightly fuzz run shc_verify`: see `vaxpass_fuzz::shc_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::shc_verify(data));
