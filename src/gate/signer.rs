//! A facility's signing identity: its key, its DSC and the facility code the DSC names,
//! loaded and checked in one place for the `sign` and `retract` commands, the service's
//! station uploads and the tests.

use std::path::{Path, PathBuf};

use crate::pki::{self, CertError, Certificate, ChainError, FileError, KeyError, SignerPolicyError, SigningKey};

/// `is` of every passport vaxpass signs (SPEC §3).
pub const ISSUER: &str = "Ministry of Health Viet Nam";

/// A facility's key and DSC, checked to belong together, to name a facility, to be a
/// passport signer and to be valid at the time they were loaded for.
pub struct FacilitySigner {
    /// The facility's key (a PEM file or a PKCS#11 token key).
    pub key: SigningKey,
    /// Its DSC.
    pub cert: Certificate,
    /// The facility code the DSC names (`serialNumber=PPNNN`).
    pub facility_code: String,
}

/// Why a facility's key and DSC cannot sign; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key could not be loaded (a file or a token).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A certificate file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A certificate file does not parse (the cause in the message, not `source()`).
    #[error("{}: {cause}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: CertError,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the certificate's.
    #[error("{}: does not match the certificate {}", key.display(), cert.display())]
    Mismatch {
        /// The key file or token URI.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The certificate names no facility.
    #[error("{}: not a facility DSC (no serialNumber=PPNNN facility code)", cert.display())]
    NotAFacility {
        /// The certificate file.
        cert: PathBuf,
    },
    /// The certificate may not sign passports (a CA, or the wrong key usage).
    #[error("{}: {cause}", cert.display())]
    Policy {
        /// The certificate file.
        cert: PathBuf,
        /// Why (in the message, not `source()`).
        cause: SignerPolicyError,
    },
    /// The certificate is not valid at the signing time.
    #[error("{}: {cause}", cert.display())]
    Validity {
        /// The certificate file.
        cert: PathBuf,
        /// Why (in the message, not `source()`).
        cause: ChainError,
    },
    /// The chain file does not start with the facility's certificate.
    #[error("{}: does not start with the certificate {}", chain.display(), cert.display())]
    Chain {
        /// The chain file.
        chain: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
}

impl SignerError {
    /// Whether the files are fine but the certificate may not sign now (expired, not yet
    /// valid, not a passport signer): the operator's to fix, not a broken installation.
    pub fn is_policy(&self) -> bool {
        matches!(self, SignerError::Policy { .. } | SignerError::Validity { .. })
    }
}

impl FacilitySigner {
    /// Loads a facility's key (a PEM file or a `pkcs11:` URI) and DSC, and checks that they
    /// belong together, that the DSC names a facility, may sign passports and is valid at
    /// `at` (Unix seconds), and that `chain`, if given, starts with it.
    pub fn load(key: &Path, cert: &Path, chain: Option<&Path>, at: i64) -> Result<FacilitySigner, SignerError> {
        let signing_key = SigningKey::open(key)?;
        let parse = |path: &Path| -> Result<Vec<Certificate>, SignerError> {
            pki::parse_certificates(&pki::read_file(path)?, true)
                .map_err(|cause| SignerError::Cert { path: path.to_owned(), cause })
        };
        let certificate =
            parse(cert)?.into_iter().next().ok_or_else(|| SignerError::NoCertificate { path: cert.to_owned() })?;
        if certificate.key != signing_key.public_key() {
            return Err(SignerError::Mismatch { key: key.to_owned(), cert: cert.to_owned() });
        }
        let facility_code =
            certificate.facility_code.clone().ok_or_else(|| SignerError::NotAFacility { cert: cert.to_owned() })?;
        pki::check_passport_signer(&certificate)
            .map_err(|cause| SignerError::Policy { cert: cert.to_owned(), cause })?;
        pki::check_validity(&certificate, at)
            .map_err(|cause| SignerError::Validity { cert: cert.to_owned(), cause })?;
        if let Some(chain) = chain
            && parse(chain)?.first().map(Certificate::der) != Some(certificate.der())
        {
            return Err(SignerError::Chain { chain: chain.to_owned(), cert: cert.to_owned() });
        }
        Ok(FacilitySigner { key: signing_key, cert: certificate, facility_code })
    }

    /// The development facility `code` of `keys-example/`, for tests: its key and DSC,
    /// loaded without the checks (a test may run at any clock).
    #[cfg(test)]
    pub(crate) fn example(code: &str) -> FacilitySigner {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("keys-example/facility-{code}"));
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
        let key = SigningKey::from_pem(&dir.join("key.pem"), &read("key.pem"));
        let cert = pki::parse_certificates(&read("cert.pem"), true).ok().and_then(|c| c.into_iter().next());
        match (key, cert) {
            (Ok(key), Some(cert)) => FacilitySigner { key, cert, facility_code: code.to_owned() },
            _ => panic!("keys-example/facility-{code} is not a facility's key and certificate"),
        }
    }
}

impl std::fmt::Debug for FacilitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FacilitySigner {{ facility_code: {:?} }}", self.facility_code)
    }
}
