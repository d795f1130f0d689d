//! The PKI of SPEC §2: X.509 parsing and issuing (root, provincial CA, facility DSC, CSR),
//! PKCS#8 keys written 0600, kids, path validation with the EKU/validity policy, revocation
//! lists and the [`TrustStore`]. It knows nothing of COSE, passports or HTTP.

pub mod bundle;
mod cert;
mod chain;
pub mod der;
mod issue;
mod issued;
mod keys;
pub mod policy;
mod revocation;
mod trust;

pub use cert::{CertError, Certificate, Kid, SignerKey, parse_certificates};
pub use chain::ValidatedPath;
pub use issue::{
    CaFiles, DEFAULT_CA_DAYS, DEFAULT_ROOT_CN, DEFAULT_ROOT_DAYS, IssueError, Issued, MAX_FACILITY_DAYS, init_root,
    issue_ca, issue_facility, issue_trust_list_signer, make_csr, sign_csr, write_issued,
};
pub use issued::{ISSUED_LOG_NAME, IssuedEntry, IssuedLog, IssuedLogError};
pub use keys::{FileError, SignError, SigningKey, ensure_absent, read_file, write_new_file};
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
