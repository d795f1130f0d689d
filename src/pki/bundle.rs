//! The signed trust list (SPEC §7 `GET /api/v1/trust-list`): roots, intermediates, facility
//! DSCs and revocations with a version, signed ES256 by a trust-list certificate that chains
//! to the Ministry root, so offline verifier devices can update safely.
//!
//! Envelope: `{"bundle": base64(JSON), "signature": base64(r‖s over the bundle bytes),
//! "certificate": PEM}`. Bundle: `{"version", "issued_at", "roots", "intermediates", "dscs",
//! "revocations"}`, certificates in PEM, revocations in the revocation file format.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::cert::{Certificate, SignerKey, parse_certificates};
use super::keys::{SignError, SigningKey};
use super::revocation::Revocations;
use super::trust::TrustStore;

/// Largest trust list accepted: 100,000 DSCs of ~1 KB in PEM.
pub const MAX_BUNDLE_BYTES: usize = 128 * 1024 * 1024;

/// A trust list's content.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    /// Monotonic version (the service uses the issue time in seconds); a device refuses a
    /// version lower than one it used.
    pub version: u64,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// Ministry roots.
    pub roots: Vec<Certificate>,
    /// Provincial CAs.
    pub intermediates: Vec<Certificate>,
    /// Facility DSCs.
    pub dscs: Vec<Certificate>,
    /// Revocations.
    pub revocations: Revocations,
}

#[derive(Serialize, Deserialize)]
struct BundleJson {
    version: u64,
    issued_at: i64,
    roots: Vec<String>,
    intermediates: Vec<String>,
    dscs: Vec<String>,
    revocations: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    bundle: String,
    signature: String,
    certificate: String,
}

/// Why a trust list is refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not the envelope or bundle format.
    #[error("not a vaxpass trust list ({0})")]
    Format(String),
    /// The signer certificate does not chain to a trusted root.
    #[error("the trust list's signer does not chain to a trusted root: {0}")]
    Chain(String),
    /// The signature does not verify.
    #[error("the trust list's signature does not verify")]
    Signature,
    /// Older than a version already used.
    #[error("trust list version {got} is older than version {have}, already in use")]
    Rollback {
        /// The bundle's version.
        got: u64,
        /// The version already used.
        have: u64,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

fn pems(certs: &[Certificate]) -> Vec<String> {
    certs.iter().map(Certificate::to_pem).collect()
}

/// Seals a bundle: the JSON envelope a service publishes.
pub fn seal(bundle: &TrustBundle, key: &SigningKey, signer_cert_pem: &str) -> Result<String, BundleError> {
    let json = BundleJson {
        version: bundle.version,
        issued_at: bundle.issued_at,
        roots: pems(&bundle.roots),
        intermediates: pems(&bundle.intermediates),
        dscs: pems(&bundle.dscs),
        revocations: serde_json::from_str(&bundle.revocations.to_json())
            .map_err(|e| BundleError::Format(e.to_string()))?,
    };
    let bytes = serde_json::to_vec(&json).map_err(|e| BundleError::Format(e.to_string()))?;
    let signature = key.sign(&bytes)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = Envelope {
        bundle: b64.encode(&bytes),
        signature: b64.encode(signature),
        certificate: signer_cert_pem.to_owned(),
    };
    serde_json::to_string(&envelope).map_err(|e| BundleError::Format(e.to_string()))
}

fn certs_of(pems: &[String], what: &str) -> Result<Vec<Certificate>, BundleError> {
    let mut out = Vec::new();
    for p in pems {
        out.extend(parse_certificates(p.as_bytes(), true).map_err(|e| BundleError::Format(format!("{what}: {e}")))?);
    }
    Ok(out)
}

/// Opens an envelope: the signer must chain to a root of `anchors` at `at` (Unix seconds)
/// and the signature must verify; `have` is the highest version already used (rollback).
pub fn open(envelope: &[u8], anchors: &TrustStore, at: i64, have: Option<u64>) -> Result<TrustBundle, BundleError> {
    if envelope.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::Format("too large".into()));
    }
    let env: Envelope = serde_json::from_slice(envelope).map_err(|e| BundleError::Format(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64.decode(&env.bundle).map_err(|e| BundleError::Format(format!("bundle: {e}")))?;
    let signature = b64.decode(&env.signature).map_err(|e| BundleError::Format(format!("signature: {e}")))?;
    let signer = certs_of(std::slice::from_ref(&env.certificate), "certificate")?
        .into_iter()
        .next()
        .ok_or_else(|| BundleError::Format("no signer certificate".into()))?;

    // The signer is checked like a DSC: against the device's own roots only.
    let mut chain = TrustStore::new();
    chain.add_trusted(anchors.authorities().filter(|c| c.self_issued).cloned().collect());
    chain.add_trusted(vec![signer.clone()]);
    let index = chain
        .signers()
        .iter()
        .position(|s| s.cert.der() == signer.der())
        .ok_or_else(|| BundleError::Chain("the signer is a CA".into()))?;
    if !super::policy::may_sign_trust_list(signer.ekus.as_deref()) {
        return Err(BundleError::Chain("the signer is not a trust-list signer (document-signing EKU)".into()));
    }
    super::check_validity(&signer, at).map_err(|e| BundleError::Chain(e.to_string()))?;
    chain.validate_signer(index, at).map_err(|e| BundleError::Chain(e.to_string()))?;
    let SignerKey::EcP256(point) = &signer.key else { return Err(BundleError::Signature) };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(&bytes, &signature)
        .map_err(|_| BundleError::Signature)?;

    let json: BundleJson = serde_json::from_slice(&bytes).map_err(|e| BundleError::Format(e.to_string()))?;
    if let Some(have) = have
        && json.version < have
    {
        return Err(BundleError::Rollback { got: json.version, have });
    }
    let revocations = Revocations::from_json(json.revocations.to_string().as_bytes()).map_err(BundleError::Format)?;
    Ok(TrustBundle {
        version: json.version,
        issued_at: json.issued_at,
        roots: certs_of(&json.roots, "roots")?,
        intermediates: certs_of(&json.intermediates, "intermediates")?,
        dscs: certs_of(&json.dscs, "dscs")?,
        revocations,
    })
}
