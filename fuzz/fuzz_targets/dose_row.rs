//! `cargo +nightly fuzz run dose_row`: see `vaxpass_fuzz::dose_row`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::dose_row(data));
