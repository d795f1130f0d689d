//! `cargo +nightly fuzz run photo`: see `vaxpass_fuzz::photo`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaxpass_fuzz::photo(data));
