//! `cargo +nightly fuzz run cbor_json`: see `vaxpass_fuzz::cbor_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::cbor_json(data));
