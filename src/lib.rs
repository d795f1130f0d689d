//! vaxpass turns verified COVID-19 vaccination records into signed, EU-compatible QR vaccine
//! passports for Viet Nam, and verifies them at the border.
//!
//! Signing a passport:
//! 1. A facility's key and DSC are loaded once ([`pki::SigningKey`], [`pki::Certificate`]).
//! 2. The person's verified doses are numbered ([`passport::number_doses`]).
//! 3. [`passport::sign`] builds the CWT, signs its COSE_Sign1 with the key, and encodes
//!    zlib → Base45 → `HC1:`.
//!
//! Verifying a passport ([`verify::Verifier::verify`]):
//! 1. decode `HC1:` → Base45 → zlib → COSE_Sign1 ([`passport::decode`]);
//! 2. find the signers with the kid in the [`pki::TrustStore`] and check the signature;
//! 3. decode the claims and check their shape;
//! 4. check the signer's validity, its chain to the Ministry root (cached), revocation and EKU;
//! 5. check `iat ≤ now ≤ exp` and the passport's own revocation.
//!
//! Modules, bottom up: [`passport`] (the format), [`pki`] (certificates and keys), [`secret`]
//! (the deployment secret's keyed hashes and seals), [`dates`] and `provinces`; [`ledger`]
//! (the dose ledger's decisions) and [`corrections`] (citizens' requests and the report
//! arithmetic); [`gate`] (checks, persons, signing runs) and [`store`] (SQLite and PostgreSQL)
//! side by side, meeting only through [`ledger::Ledger`]; [`verify`] (the verdict) and
//! [`rules`] (entry rules), [`render`] (QR images, PDF), [`scan`] (QR codes in photos);
//! [`service`] (the HTTP service); `cli` (the `vaxpass` command, private behind [`Cli`] and [`run_command`]); `synthetic` (`vaxpass gen`, private).
//! `main.rs` only parses arguments and prints one error line.
//!
//! ```
//! use vaxpass::{passport, pki, verify};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
//! let key = pki::SigningKey::load(&dir.join("facility-01001/key.pem"))?;
//! let dsc = pki::parse_certificates(&std::fs::read(dir.join("facility-01001/cert.pem"))?, true)?.remove(0);
//! // A fixed clock inside keys-example's validity (2026-11-30 to 2028-11-29): the example
//! // runs as a doc test whatever the date.
//! let now = time::macros::datetime!(2027-06-01 0:00 UTC);
//! let doses = [passport::Dose {
//!     vaccine: passport::vaccines::lookup("AstraZeneca").ok_or("vaccine")?,
//!     date: time::macros::date!(2021 - 08 - 01),
//! }];
//! let content = passport::PassportContent {
//!     person: passport::Person { full_name: "Nguyễn Văn An".into(), dob: "1990-01-02".into() },
//!     doses: passport::number_doses(&doses),
//!     issuer: "Ministry of Health Viet Nam".into(),
//!     uvci: passport::Uvci::new("01001", "0123456789ABCDEF")?,
//!     issued_at: now.unix_timestamp(),
//!     expires_at: now.unix_timestamp() + 86_400,
//!     include_history: true,
//! };
//! let text = passport::sign(&content, passport::Algorithm::Es256, &dsc.kid.0, |m| key.sign(m))?.ok_or("no dose")?;
//!
//! let mut trust = pki::TrustStore::new();
//! trust.load_trusted(&dir)?;
//! let verdict = verify::Verifier::new(trust, pki::Revocations::default()).verify(&text, now);
//! assert_eq!(verdict.reason, verify::ReasonCode::Ok);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Every `pub` item is reachable from outside, or says `pub(crate)`: what users of the
// library get is what the modules below re-export, as in rustls-webpki.
#![warn(unreachable_pub)]

mod cli;
pub mod corrections;
pub mod dates;
pub mod gate;
pub mod ledger;
pub mod passport;
pub mod pki;
mod provinces;
pub mod render;
pub mod rules;
pub mod scan;
pub mod secret;
pub mod service;
pub mod store;
mod synthetic;
pub mod verify;

/// The `vaxpass` command: its arguments, and running them (the binary is only these two).
pub use cli::{Cli, run as run_command};

/// An error and its causes on one line, `a: b: c`, for logs: no error here repeats its
/// `source()` in its own message (as in ripgrep), so each cause prints once. The binary
/// prints anyhow's `{err:#}`, the same line.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
