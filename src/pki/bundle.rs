//! The signed trust list (SPEC §7 `GET /api/v1/trust-list`): roots, intermediates, facility
//! DSCs and revocations with a version, signed ES256 by a trust-list certificate that chains
//! to the Ministry root, so offline verifier devices can update safely.
//!
//! A device pins its roots (`verify --trust ROOT`); a bundle is only as strong as those
//! roots (issue #8 item 9): every certificate it carries must be one of them or chain to
//! them, it must be recent ([`DEFAULT_MAX_AGE_SECS`]) and not dated in the future, and its
//! version may not exceed its issue time, so that no version can pin a device for ever.
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

/// Default oldest trust list a device accepts: 3 days. EU verifier apps stop trusting a DSC
/// list that has not been refreshed for a set time; 3 days covers a border post offline over
/// a weekend, and bounds how long a replayed old list can keep a revoked DSC trusted.
pub const DEFAULT_MAX_AGE_SECS: i64 = 3 * 86_400;

/// How far in the future a list's issue time may be: device clocks drift (Kerberos allows the
/// same 5 minutes).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

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
    /// Issued more than the maximum age before the verification time.
    #[error("the trust list was issued at {issued_at}, more than {max_age} s before {at}: too old")]
    Stale {
        /// issued_at, Unix seconds.
        issued_at: i64,
        /// The verification time.
        at: i64,
        /// The maximum age, seconds.
        max_age: i64,
    },
    /// Issued after the verification time (beyond the clock skew).
    #[error("the trust list is dated {issued_at}, after {at}: in the future")]
    Future {
        /// issued_at, Unix seconds.
        issued_at: i64,
        /// The verification time.
        at: i64,
    },
    /// The version exceeds the issue time in seconds.
    #[error("trust list version {version} exceeds its issue time {issued_at}")]
    VersionBeyondIssueTime {
        /// The bundle's version.
        version: u64,
        /// issued_at, Unix seconds.
        issued_at: i64,
    },
    /// A certificate of the list is not a pinned root and does not chain to one.
    #[error("the trust list's {what} {subject:?} does not chain to a root this device trusts")]
    Unchained {
        /// "root", "intermediate" or "DSC".
        what: &'static str,
        /// Its subject.
        subject: String,
    },
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

fn parse(c: &Certificate) -> Option<x509_parser::certificate::X509Certificate<'_>> {
    use x509_parser::prelude::FromDer as _;
    x509_parser::certificate::X509Certificate::from_der(c.der()).ok().map(|(_, x)| x)
}

/// Whether `child` is signed by one of `parents` (issuer name and signature; validity is the
/// verifier's business at verification time, for every certificate on the path).
fn issued_by(child: &Certificate, parents: &[x509_parser::certificate::X509Certificate<'_>]) -> bool {
    use x509_parser::prelude::FromDer as _;
    let Ok((_, c)) = x509_parser::certificate::X509Certificate::from_der(child.der()) else { return false };
    parents
        .iter()
        .filter(|p| p.subject().as_raw() == c.issuer().as_raw())
        .any(|p| c.verify_signature(Some(p.public_key())).is_ok())
}

/// Roots, intermediates and DSCs that passed [`check_chained`].
type Chained = (Vec<Certificate>, Vec<Certificate>, Vec<Certificate>);

/// Checks that every certificate of `json` is a pinned root of `anchors` or chains to one:
/// roots must be pinned already, intermediates CAs signed by a pinned root, DSCs end
/// entities signed by a pinned root or an intermediate (the device's or the list's).
fn check_chained(json: &BundleJson, anchors: &TrustStore) -> Result<Chained, BundleError> {
    let pinned: Vec<&Certificate> = anchors.authorities().filter(|c| c.self_issued).collect();
    let unchained = |what, c: &Certificate| BundleError::Unchained { what, subject: c.subject.clone() };

    let roots = certs_of(&json.roots, "roots")?;
    if let Some(r) = roots.iter().find(|r| !pinned.iter().any(|p| p.der() == r.der())) {
        return Err(unchained("root", r));
    }
    let pinned_parsed: Vec<_> = pinned.iter().copied().filter_map(parse).collect();
    let intermediates = certs_of(&json.intermediates, "intermediates")?;
    if let Some(i) = intermediates.iter().find(|i| !i.is_ca || i.self_issued || !issued_by(i, &pinned_parsed)) {
        return Err(unchained("intermediate", i));
    }
    let own_intermediates: Vec<&Certificate> = anchors.authorities().filter(|c| !c.self_issued).collect();
    let mut parents = pinned_parsed;
    parents.extend(intermediates.iter().chain(own_intermediates).filter_map(parse));
    let dscs = certs_of(&json.dscs, "dscs")?;
    if let Some(d) = dscs.iter().find(|d| d.is_ca || !issued_by(d, &parents)) {
        return Err(unchained("DSC", d));
    }
    Ok((roots, intermediates, dscs))
}

/// Opens an envelope at `at` (Unix seconds): the signer must chain to a root of `anchors`
/// and the signature must verify; the list must be at most `max_age` seconds old and not
/// in the future, its version at most its issue time and not below `have`, the highest
/// version already used (rollback); and every certificate it carries must chain to the roots
/// of `anchors`.
pub fn open(
    envelope: &[u8],
    anchors: &TrustStore,
    at: i64,
    have: Option<u64>,
    max_age: i64,
) -> Result<TrustBundle, BundleError> {
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
    // The signer's key implies the algorithm, as for passports: ES256 or (an RSA key, e.g.
    // in an HSM) PS256 (SPEC §10).
    let verified = match &signer.key {
        SignerKey::EcP256(point) => {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(&bytes, &signature)
        }
        SignerKey::Rsa(der) => ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, der)
            .verify(&bytes, &signature),
        SignerKey::Unsupported => return Err(BundleError::Signature),
    };
    verified.map_err(|_| BundleError::Signature)?;

    let json: BundleJson = serde_json::from_slice(&bytes).map_err(|e| BundleError::Format(e.to_string()))?;
    if json.issued_at < at.saturating_sub(max_age) {
        return Err(BundleError::Stale { issued_at: json.issued_at, at, max_age });
    }
    if json.issued_at > at.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(BundleError::Future { issued_at: json.issued_at, at });
    }
    // The service's version is the issue time; a larger one could pin a device for ever.
    if !u64::try_from(json.issued_at).is_ok_and(|t| json.version <= t) {
        return Err(BundleError::VersionBeyondIssueTime { version: json.version, issued_at: json.issued_at });
    }
    if let Some(have) = have
        && json.version < have
    {
        return Err(BundleError::Rollback { got: json.version, have });
    }
    let revocations = Revocations::from_json(json.revocations.to_string().as_bytes()).map_err(BundleError::Format)?;
    let (roots, intermediates, dscs) = check_chained(&json, anchors)?;
    Ok(TrustBundle { version: json.version, issued_at: json.issued_at, roots, intermediates, dscs, revocations })
}
