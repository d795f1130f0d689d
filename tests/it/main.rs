//! Integration tests: user flows through the real `vaxpass` binary (STYLE §5). One test
//! binary, one module per flow; shared helpers in `util`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod border_formats;
mod conformance;
mod corrections_store;
mod fuzz_corpus;
mod gen_weeks;
mod ledger_replay;
mod pdf_certificate;
mod pkcs11_token;
mod pki_expiry;
mod pki_hierarchy;
mod render_cli;
mod rules_cli;
mod service_instances;
mod service_limits;
mod service_multi;
mod sign_batch;
mod sign_ledger;
mod sign_memory;
mod sign_resume;
mod sign_truth;
mod store_postgres;
mod trust_list;
mod util;
mod verify_cli;
