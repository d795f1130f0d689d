//! The border verdict (SPEC §6): decode → candidates by kid → signature → claims and schema →
//! signer validity → chain → signer revocation → EKU → `iat`/`exp` → passport revocation.
//! This module owns the order of the reason codes; it knows nothing of CSV, storage or HTTP.
//!
//! The signature is checked before any content is trusted: the claims are decoded earlier
//! only to show them (`payload` is reported even when the verdict is false).
//!
//! SPEC §9.1: the text's format is detected first; SMART Health Cards (`shc.rs`) and ICAO
//! VDS-NC seals (`vdsnc.rs`) are verified by their own modules into the same [`Verdict`],
//! with the holder and vaccinations normalised (`normalised.rs`) for every format.

mod json;
mod normalised;
mod reason;
mod shc;
mod vdsnc;

pub use normalised::{Format, Holder, Vaccination};
pub use reason::ReasonCode;
pub use shc::{DirectoryError, MAX_SHC_INFLATED_LEN, SHC_PREFIX, ShcDirectory};
pub use vdsnc::MAX_SEAL_LEN;

/// A signed SMART Health Card and the issuer directory (JSON) that trusts it, for the
/// shells' tests.
#[cfg(test)]
pub(crate) use shc::tests::signed_test_card;

use serde::Serialize;
use time::OffsetDateTime;

use crate::passport::{self, CertificateKind, Claims, CoseSign1, DecodeError};
use crate::pki::{self, ChainError, Kid, Revocations, TrustStore, policy::Purpose};

/// Who signed a passport, as far as the trust store knows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignerInfo {
    /// kid, base64.
    pub kid: String,
    /// The DSC's subject.
    pub subject: String,
    /// The facility code of a vaxpass facility DSC.
    pub facility_code: Option<String>,
    /// Subjects from the DSC up to the root (the DSC alone for a pinned signer).
    pub chain: Vec<String>,
}

/// The outcome of verifying one passport text: the `verify --json` object of SPEC §6, with
/// the format and the normalised holder and vaccinations of SPEC §9.1.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `reason == OK`.
    pub valid: bool,
    /// The first check that failed, or `OK`.
    pub reason: ReasonCode,
    /// The detected format; `null` when the text is none of them (`UNSUPPORTED_FORMAT`).
    pub format: Option<Format>,
    /// The holder, whenever the content could be read (even when not valid).
    pub holder: Option<Holder>,
    /// The vaccinations, oldest first (empty when none could be read).
    pub vaccinations: Vec<Vaccination>,
    /// A sentence for people, without personal data, saying what exactly failed (for
    /// example that a text is too long to have come from a QR code). Serialised as
    /// `detail` only when the verdict is not valid, so the SPEC §6 object of a valid
    /// passport keeps exactly its keys; readers of the object ignore keys they do not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The format's own content whenever it could be decoded (even when not valid): the
    /// DCC, the SHC JWS payload, or the VDS-NC seal's `data`.
    pub payload: Option<serde_json::Value>,
    /// The earlier doses (claim −65537), when present.
    pub history: Option<serde_json::Value>,
    /// The signer, once a candidate's signature verified.
    pub signer: Option<SignerInfo>,
    /// `iat`, Unix seconds.
    pub iat: Option<f64>,
    /// `exp`, Unix seconds.
    pub exp: Option<f64>,
    /// The entry decision of SPEC §9.2, when entry rules were evaluated (valid
    /// certificates only: rules never read content whose signature did not verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::rules::Entry>,
}

impl Verdict {
    /// The UVCI (`ci`) of the certificate's entry, when the payload could be read.
    pub fn uvci(&self) -> Option<&str> {
        if self.format != Some(Format::Dcc) {
            return None;
        }
        uvci_of(self.payload.as_ref()?)
    }

    /// The DCC-shaped payload the entry rules evaluate (SPEC §9.2): a DCC's own payload; for
    /// SHC and VDS-NC one built from the normalised holder and latest vaccination. `None`
    /// when nothing could be read.
    pub fn dcc_shaped_payload(&self) -> Option<serde_json::Value> {
        let issuer = self.signer.as_ref().map(|s| s.subject.as_str());
        normalised::dcc_shaped(self.format, self.payload.as_ref(), self.holder.as_ref(), &self.vaccinations, issuer)
    }

    /// Evaluates entry rules for arrival in `country` at `at` over the payload of a valid
    /// verdict and records the decision in `entry`; a verdict that is not valid is left
    /// without one.
    pub fn check_entry(&mut self, rules: &crate::rules::RuleSet, country: &str, at: OffsetDateTime) {
        if !self.valid {
            return;
        }
        // SHC and VDS-NC vaccinations as a DCC-shaped payload (SPEC §9.2).
        let Some(payload) = self.dcc_shaped_payload() else { return };
        let issuer = ["v", "t", "r"].iter().find_map(|k| payload.get(k)?.get(0)?.get("co")?.as_str());
        let external = crate::rules::External {
            validation_clock: at,
            country_code: country.to_owned(),
            issuer_country_code: issuer.map(str::to_owned),
            exp: self.exp,
            iat: self.iat,
        };
        self.entry = Some(rules.evaluate(&payload, &external));
    }

    fn rejected(reason: ReasonCode, detail: impl Into<String>) -> Verdict {
        Verdict {
            valid: false,
            reason,
            format: None,
            holder: None,
            vaccinations: Vec::new(),
            detail: Some(detail.into()),
            payload: None,
            history: None,
            signer: None,
            iat: None,
            exp: None,
            entry: None,
        }
    }
}

/// The DCC-shaped payload of a verdict (SPEC §9.2); see [`Verdict::dcc_shaped_payload`].
pub fn dcc_shaped_payload(verdict: &Verdict) -> Option<serde_json::Value> {
    verdict.dcc_shaped_payload()
}

/// Verifies passports against a trust store and a revocation list.
#[derive(Debug, Default)]
pub struct Verifier {
    trust: std::sync::Arc<TrustStore>,
    revocations: Revocations,
    /// Trusted SMART Health Card issuers.
    issuers: std::sync::Arc<ShcDirectory>,
    /// The pinned certificates as country signing CAs for VDS-NC seals, and checked signers.
    seals: std::sync::Arc<vdsnc::SealTrust>,
}

/// The outcome of trying one candidate signer whose signature verified.
struct CandidateOutcome {
    signer: SignerInfo,
    failure: Option<(ReasonCode, String)>,
}

impl Verifier {
    /// A verifier over `trust` and `revocations`.
    pub fn new(trust: impl Into<std::sync::Arc<TrustStore>>, revocations: Revocations) -> Verifier {
        let trust: std::sync::Arc<TrustStore> = trust.into();
        let pinned = trust.signers().iter().filter(|s| s.pinned).map(|s| s.cert.der());
        let seals = std::sync::Arc::new(vdsnc::SealTrust::new(pinned));
        Verifier { trust, revocations, issuers: Default::default(), seals }
    }

    /// The same verifier trusting the SMART Health Card issuers of `issuers`.
    pub fn with_issuers(mut self, issuers: impl Into<std::sync::Arc<ShcDirectory>>) -> Verifier {
        self.issuers = issuers.into();
        self
    }

    /// The same trust store (and its cache of validated chains) with another revocation
    /// list: how a service applies a revocation at once.
    pub fn with_revocations(&self, revocations: Revocations) -> Verifier {
        Verifier {
            trust: std::sync::Arc::clone(&self.trust),
            revocations,
            issuers: std::sync::Arc::clone(&self.issuers),
            seals: std::sync::Arc::clone(&self.seals),
        }
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Verifies a certificate text of any supported format (SPEC §9.1) at time `at`.
    pub fn verify(&self, text: &str, at: OffsetDateTime) -> Verdict {
        // Scanners and stdin add line ends; a UTF-8 byte order mark comes from files.
        let trimmed = text.trim_start_matches('\u{feff}').trim_matches(|c: char| c.is_ascii_whitespace());
        match detect(trimmed) {
            Some(Format::Dcc) => self.verify_dcc(text, at),
            Some(Format::Shc) => shc::verify(trimmed, &self.issuers, at),
            Some(Format::VdsNc) => vdsnc::verify(trimmed, &self.seals, at),
            None => Verdict::rejected(
                ReasonCode::UnsupportedFormat,
                "the text is none of the supported formats (EU DCC HC1:, SMART Health Card shc:/, ICAO VDS-NC seal)",
            ),
        }
    }

    /// Verifies an EU DCC text (SPEC §3, §6).
    fn verify_dcc(&self, text: &str, at: OffsetDateTime) -> Verdict {
        let message = match passport::decode(text) {
            Ok(m) => m,
            Err(e) => {
                let mut v = Verdict::rejected(ReasonCode::from(&e), e.to_string());
                v.format = Some(Format::Dcc);
                return v;
            }
        };
        // Decoded for display only; nothing below trusts it before the signature verified.
        let claims = message.claims();
        let at_secs = at.unix_timestamp();
        let mut signer = None;
        let outcome = self.check(&message, &claims, at, at_secs, &mut signer);
        let (reason, detail) = match outcome {
            Ok(()) => (ReasonCode::Ok, None),
            Err((r, d)) => (r, Some(d)),
        };
        let mut verdict = Verdict::rejected(reason, "");
        verdict.valid = reason == ReasonCode::Ok;
        verdict.detail = detail;
        verdict.signer = signer;
        verdict.format = Some(Format::Dcc);
        // Moved, not cloned: the verdict is the claims' last user.
        if let Ok(c) = claims {
            (verdict.holder, verdict.vaccinations) = normalised::from_dcc(&c.dcc, c.history.as_ref());
            verdict.payload = Some(c.dcc);
            verdict.history = c.history;
            verdict.iat = c.issued_at;
            verdict.exp = c.expires_at;
        }
        verdict
    }

    fn check(
        &self,
        message: &CoseSign1,
        claims: &Result<Claims, DecodeError>,
        at: OffsetDateTime,
        at_secs: i64,
        signer_out: &mut Option<SignerInfo>,
    ) -> Result<(), (ReasonCode, String)> {
        if let Err(id) = message.alg {
            let detail = match id {
                Some(id) => format!("COSE algorithm {id} is not ES256 (-7) or PS256 (-37)"),
                None => "no COSE algorithm in the headers".to_owned(),
            };
            return Err((ReasonCode::UnsupportedAlgorithm, detail));
        }
        let kid = message
            .kid
            .as_deref()
            .and_then(Kid::from_slice)
            .ok_or((ReasonCode::KeyNotInTrustList, "no 8-byte kid in the COSE headers".to_owned()))?;

        // Every candidate whose signature verifies is evaluated; the best outcome wins, so a
        // kid collision with an unrelated (or expired) DSC never hides the right one.
        let mut any_candidate = false;
        let mut best: Option<CandidateOutcome> = None;
        for (index, signer) in self.trust.candidates(&kid) {
            any_candidate = true;
            let Some(key) = signer.cert.key.as_public_key() else { continue };
            if !message.verify_signature(key) {
                continue;
            }
            let outcome = self.evaluate(index, signer, claims, at, at_secs);
            let better = match &best {
                None => true,
                Some(b) => rank(&outcome) > rank(b),
            };
            if better {
                best = Some(outcome);
            }
        }
        let Some(best) = best else {
            return Err(if any_candidate {
                (ReasonCode::SignatureInvalid, "the signature does not verify with any signer of this kid".into())
            } else {
                (ReasonCode::KeyNotInTrustList, format!("no trusted signer has kid {}", kid.to_base64()))
            });
        };
        *signer_out = Some(best.signer);
        match best.failure {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }

    /// The checks after a verified signature, in SPEC §6 order.
    fn evaluate(
        &self,
        index: usize,
        signer: &pki::Signer,
        claims: &Result<Claims, DecodeError>,
        at: OffsetDateTime,
        at_secs: i64,
    ) -> CandidateOutcome {
        let cert = &signer.cert;
        let mut info = SignerInfo {
            kid: cert.kid.to_base64(),
            subject: cert.subject.clone(),
            facility_code: cert.facility_code.clone(),
            chain: vec![cert.subject.clone()],
        };
        let failure = (|| {
            let claims = claims.as_ref().map_err(|e| (ReasonCode::from(e), e.to_string()))?;
            let kind = passport::check_schema(&claims.dcc).map_err(|e| (ReasonCode::from(&e), e.to_string()))?;
            pki::check_validity(cert, at_secs).map_err(chain_failure)?;
            let path = self.trust.validate_signer(index, at_secs).map_err(chain_failure)?;
            // Under the Ministry hierarchy only a facility DSC signs passports (issue #8 item
            // 11); pinned foreign DSCs keep the EU model, without facility codes.
            if !signer.pinned {
                pki::check_passport_signer(cert).map_err(|e| chain_failure(e.into()))?;
            }
            info.chain.clone_from(&path.subjects);
            if self.revocations.is_facility_revoked(&cert.kid) {
                return Err(chain_failure(ChainError::SignerRevoked));
            }
            pki::check_eku(cert, purpose(kind)).map_err(chain_failure)?;
            check_times(claims, at)?;
            if let Some(uvci) = uvci_of(&claims.dcc)
                && self.revocations.is_passport_revoked(uvci)
            {
                return Err((ReasonCode::Revoked, "this passport has been revoked".into()));
            }
            Ok(())
        })()
        .err();
        CandidateOutcome { signer: info, failure }
    }
}

/// The format of a (trimmed) text. A text that looks like a DCC with a missing or wrong
/// context identifier (`HC2:`, or bare Base45) is read as a DCC, so it gets SPEC §6's
/// `INVALID_PREFIX`; `shc:` without its slash is a malformed SMART Health Card.
fn detect(text: &str) -> Option<Format> {
    let b = text.as_bytes();
    if b.len() >= 3 && b[..2].eq_ignore_ascii_case(b"HC") && b[2].is_ascii_digit() {
        return Some(Format::Dcc);
    }
    if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"shc:") {
        return Some(Format::Shc);
    }
    // A seal's JSON, or a one-element array holding it.
    let json_start = if b.first() == Some(&b'[') { text[1..].trim_start().as_bytes().first() } else { b.first() };
    if json_start == Some(&b'{') {
        return Some(Format::VdsNc);
    }
    let base45 = |c: &u8| c.is_ascii_digit() || c.is_ascii_uppercase() || b" $%*+-./:".contains(c);
    (!b.is_empty() && b.iter().all(base45)).then_some(Format::Dcc)
}

/// Higher is better: OK above any failure, later checks above earlier ones (a candidate that
/// got further is the more specific explanation; STYLE §3 "most specific").
fn rank(o: &CandidateOutcome) -> usize {
    match &o.failure {
        None => usize::MAX,
        Some((r, _)) => r.order(),
    }
}

fn chain_failure(e: ChainError) -> (ReasonCode, String) {
    (ReasonCode::from(&e), e.to_string())
}

fn purpose(kind: CertificateKind) -> Purpose {
    match kind {
        CertificateKind::Test => Purpose::Test,
        CertificateKind::Vaccination => Purpose::Vaccination,
        CertificateKind::Recovery => Purpose::Recovery,
    }
}

/// `iat ≤ at ≤ exp`, both ends inclusive (hcert spec; the EU test data validates at exactly
/// `iat`). Fractional seconds of `at` count.
fn check_times(claims: &Claims, at: OffsetDateTime) -> Result<(), (ReasonCode, String)> {
    let now = at.unix_timestamp_nanos() as f64 / 1e9;
    if let Some(iat) = claims.issued_at
        && now < iat
    {
        return Err((ReasonCode::NotYetValid, "the passport's issue time (iat) is in the future".into()));
    }
    if let Some(exp) = claims.expires_at
        && now > exp
    {
        return Err((ReasonCode::Expired, "the passport has expired (exp)".into()));
    }
    Ok(())
}

/// The UVCI (`ci`) of the certificate's entry.
fn uvci_of(dcc: &serde_json::Value) -> Option<&str> {
    ["v", "t", "r"].iter().find_map(|k| dcc.get(k)?.get(0)?.get("ci")?.as_str())
}

#[cfg(test)]
mod tests;
