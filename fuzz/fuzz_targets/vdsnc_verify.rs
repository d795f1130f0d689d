//! `cargo +nightly fuzz run vdsnc_verify`: see `vaxpass_fuzz::vdsnc_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::vdsnc_verify(data));
