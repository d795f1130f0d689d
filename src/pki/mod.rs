//! The PKI of SPEC §2: X.509 parsing and issuing (root, provincial CA, facility DSC, CSR),
//! PKCS#8 keys written 0600, kids, path validation with the EKU/validity policy, revocation
//! lists, the [`TrustStore`], and signing keys in files or PKCS#11 tokens (SPEC §10). It
//! knows nothing of COSE, passports or HTTP.

pub mod bundle;
mod cert;
mod chain;
pub mod der;
mod issue;
mod issued;
mod keys;
pub(crate) mod pkcs11;
pub(crate) mod policy;
mod revocation;
mod trust;

pub use cert::{CertError, Certificate, Kid, SignerKey, parse_certificates};
pub use chain::ValidatedPath;
pub use issue::{
    CaFiles, DEFAULT_CA_DAYS, DEFAULT_ROOT_CN, DEFAULT_ROOT_DAYS, IssueError, Issued, IssuerKey, MAX_FACILITY_DAYS,
    init_root, init_root_with_key, issue_ca, issue_facility, issue_trust_list_signer, make_csr, make_token_csr,
    sign_csr, write_issued,
};
pub use issued::{ISSUED_LOG_NAME, IssuedEntry, IssuedLog, IssuedLogError};
pub use keys::{
    FileError, KeyError, SignError, SignatureAlgorithm, SigningKey, ensure_absent, read_file, write_new_file,
};
pub use pkcs11::{Pkcs11Uri, TokenError, TokenKey, TokenKeyType};
pub use policy::{SignerPolicyError, check_issuer_province, check_passport_signer};
pub(crate) use revocation::unhex32;
pub use revocation::{Revocations, revocation_hex, uvci_hash};
pub use trust::{MAX_KID_CANDIDATES, Signer, TrustStore};

/// Why a signer certificate is not acceptable. Each variant is one SPEC §6 reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No valid path to a trusted root (RFC 5280 §6) → `CHAIN_INVALID`.
    #[error("certificate chain invalid: {detail}")]
    ChainInvalid {
        /// What failed, without personal data.
        detail: String,
    },
    /// The DSC's notBefore is after the verification time → `SIGNER_NOT_YET_VALID`.
    #[error("the signer certificate is not valid before {not_before}")]
    SignerNotYetValid {
        /// notBefore, Unix seconds.
        not_before: i64,
    },
    /// The DSC's notAfter is before the verification time → `SIGNER_EXPIRED`.
    #[error("the signer certificate expired at {not_after}")]
    SignerExpired {
        /// notAfter, Unix seconds.
        not_after: i64,
    },
    /// The DSC is on the revocation list → `SIGNER_REVOKED`.
    #[error("the signer certificate is revoked")]
    SignerRevoked,
    /// The DSC's EKUs exclude the passport's type (SPEC §2) → `KEY_USAGE_MISMATCH`.
    #[error("the signer certificate's extended key usage does not allow this certificate type")]
    KeyUsageMismatch,
}

/// Checks a signer's own validity at `at` (Unix seconds; both ends inclusive).
pub fn check_validity(cert: &Certificate, at: i64) -> Result<(), ChainError> {
    match cert.validity {
        Some((not_before, _)) if at < not_before => Err(ChainError::SignerNotYetValid { not_before }),
        Some((_, not_after)) if at > not_after => Err(ChainError::SignerExpired { not_after }),
        _ => Ok(()),
    }
}

/// Checks that a signer's EKUs allow `purpose` (SPEC §2).
pub fn check_eku(cert: &Certificate, purpose: policy::Purpose) -> Result<(), ChainError> {
    if policy::allows(cert.ekus.as_deref(), purpose) { Ok(()) } else { Err(ChainError::KeyUsageMismatch) }
}

/// A certificate this close to its notAfter gets a warning when `vaxpass pki` reads it
/// (issue 11 §4): 90 days leave time to certify a new key and install it at the facility.
pub const EXPIRY_WARNING_DAYS: i64 = 90;

/// Whole days from `at` to a certificate's notAfter (negative once expired); `None` for a
/// certificate read without its validity.
pub fn days_to_expiry(cert: &Certificate, at: i64) -> Option<i64> {
    cert.validity.map(|(_, not_after)| (not_after - at).div_euclid(86_400))
}

/// One warning line if `cert` expires within [`EXPIRY_WARNING_DAYS`] of `at` (or has
/// expired), naming it by subject (no personal data: CAs and facilities).
pub fn expiry_warning(cert: &Certificate, at: i64) -> Option<String> {
    let days = days_to_expiry(cert, at)?;
    if days >= EXPIRY_WARNING_DAYS {
        return None;
    }
    let end = cert
        .validity
        .and_then(|(_, t)| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    Some(if days < 0 {
        format!("warning: certificate {:?} expired at {end}", cert.subject)
    } else {
        format!("warning: certificate {:?} expires in {days} days ({end})", cert.subject)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warning_starts_90_days_before_not_after() {
        let pem = std::fs::read("keys-example/facility-01001/cert.pem").unwrap();
        let cert = parse_certificates(&pem, true).unwrap().remove(0);
        let (_, end) = cert.validity.unwrap();
        assert_eq!(expiry_warning(&cert, end - 90 * 86_400), None);
        let w = expiry_warning(&cert, end - 90 * 86_400 + 1).unwrap();
        assert!(w.starts_with("warning: certificate \"") && w.contains("expires in 89 days ("), "{w}");
        assert!(expiry_warning(&cert, end + 1).unwrap().contains("expired at"));
        assert_eq!(days_to_expiry(&cert, end + 1), Some(-1));
    }
}
