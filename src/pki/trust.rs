//! The `TrustStore`: Ministry roots, provincial CAs and facility DSCs to be chained to them,
//! and pinned signer certificates (the EU "flat" trust list model); kid → candidates; chain
//! validation cached per signer certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::ChainError;
use super::cert::{Certificate, Kid, parse_certificates};
use super::chain::{PathSet, ValidatedPath};
use super::keys::{FileError, read_file};

/// How many signers one kid may name before we stop trying. kids are 8 bytes of a hash, so
/// real collisions come in pairs; a trust list with more is broken, and each try costs a
/// signature verification (~110 µs).
pub const MAX_KID_CANDIDATES: usize = 8;

/// A certificate that may sign passports.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The DSC.
    pub cert: Certificate,
    /// Pinned (trusted as is) rather than chained to a root.
    pub pinned: bool,
}

/// Trust anchors, intermediates and signers.
pub struct TrustStore {
    anchors: Vec<Certificate>,
    intermediates: Vec<Certificate>,
    signers: Vec<Signer>,
    by_kid: HashMap<Kid, Vec<usize>>,
    paths: PathSet,
    /// Validated paths by signer index; reused while `at` lies in the path's validity.
    cache: RwLock<HashMap<usize, Arc<ValidatedPath>>>,
    /// Path validations actually run (not served from the cache); for tests and metrics.
    validations: std::sync::atomic::AtomicU64,
}

impl Default for TrustStore {
    fn default() -> Self {
        TrustStore {
            anchors: Vec::new(),
            intermediates: Vec::new(),
            signers: Vec::new(),
            by_kid: HashMap::new(),
            paths: PathSet::new(&[], &[]),
            cache: RwLock::new(HashMap::new()),
            validations: Default::default(),
        }
    }
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("signers", &self.signers.len())
            .finish()
    }
}

/// Certificate file names a trust directory is searched for.
fn is_certificate_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    // Private keys share the .pem extension; never read them as trust material.
    if name.starts_with("key") || name.ends_with(".key") {
        return false;
    }
    matches!(p.extension().and_then(|e| e.to_str()), Some("pem" | "crt" | "cer" | "der"))
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let meta = std::fs::metadata(path).map_err(|source| FileError::Io { path: path.to_owned(), cause: source })?;
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|source| FileError::Io { path: path.to_owned(), cause: source })?;
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            if child.is_dir() {
                collect_files(&child, out)?;
            } else if is_certificate_file(&child) {
                out.push(child);
            }
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

/// The DSCs of an EU gateway trust-list export. Each entry's `rawData` is the DER in
/// standard base64; its `kid` is not trusted but recomputed from the DER (hcert §3.3.1).
fn gateway_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    use base64::Engine as _;
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not a trust-list export: {e}"))?;
    let items = doc
        .as_array()
        .or_else(|| doc.get("certificates").and_then(serde_json::Value::as_array))
        .ok_or("not a trust-list export: expected a JSON array of {kid, country, certificateType, rawData}")?;
    let mut certs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item.get("certificateType").and_then(serde_json::Value::as_str).unwrap_or("DSC");
        if !kind.eq_ignore_ascii_case("DSC") {
            continue;
        }
        let raw = item
            .get("rawData")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("trust-list entry {i} has no rawData"))?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| format!("trust-list entry {i}: rawData is not base64"))?;
        certs.push(Certificate::from_der(&der).map_err(|e| format!("trust-list entry {i}: {e}"))?);
    }
    Ok(certs)
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Adds certificates to chain: self-issued CAs become anchors, other CAs intermediates,
    /// everything else a signer that must chain to an anchor.
    pub fn add_trusted(&mut self, certs: Vec<Certificate>) {
        for cert in certs {
            if self.contains(&cert) {
                continue;
            }
            if cert.is_ca && cert.self_issued {
                self.anchors.push(cert);
            } else if cert.is_ca {
                self.intermediates.push(cert);
            } else {
                self.push_signer(Signer { cert, pinned: false });
            }
        }
        self.rebuild();
    }

    /// Pins a signer certificate: passports it signed are trusted without a chain.
    pub fn add_pinned(&mut self, cert: Certificate) {
        if let Some(s) = self.signers.iter_mut().find(|s| s.cert.der() == cert.der()) {
            s.pinned = true;
            return;
        }
        self.push_signer(Signer { cert, pinned: true });
    }

    /// Loads `--trust FILE|DIR`: PEM or DER certificates; a directory is searched
    /// recursively for `*.pem`, `*.crt`, `*.cer`, `*.der` (skipping `key*` files).
    /// Returns how many certificates were read.
    pub fn load_trusted(&mut self, path: &Path) -> Result<usize, FileError> {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        let mut n = 0;
        for f in files {
            let bytes = read_file(&f)?;
            let certs = parse_certificates(&bytes, true).map_err(|e| FileError::content(&f, e.to_string()))?;
            n += certs.len();
            self.add_trusted(certs);
        }
        Ok(n)
    }

    /// Loads `--trust-cert FILE`: signer certificates trusted as they are, parsed tolerantly:
    /// one DER certificate, PEM (a bundle of any number of certificates), or an EU gateway
    /// trust-list export (a JSON array of `{kid, country, certificateType, rawData}`, or an
    /// object holding it as `certificates`), of which the `DSC` entries are taken.
    pub fn load_pinned(&mut self, path: &Path) -> Result<(), FileError> {
        let bytes = read_file(path)?;
        let certs = if matches!(bytes.trim_ascii_start().first(), Some(b'[' | b'{')) {
            gateway_certificates(&bytes).map_err(|e| FileError::content(path, e))?
        } else {
            parse_certificates(&bytes, false).map_err(|e| FileError::content(path, e.to_string()))?
        };
        if certs.is_empty() {
            return Err(FileError::content(path, "no certificate found"));
        }
        for c in certs {
            self.add_pinned(c);
        }
        Ok(())
    }

    fn contains(&self, cert: &Certificate) -> bool {
        self.anchors
            .iter()
            .chain(&self.intermediates)
            .chain(self.signers.iter().map(|s| &s.cert))
            .any(|c| c.der() == cert.der())
    }

    fn push_signer(&mut self, signer: Signer) {
        let kid = signer.cert.kid;
        self.signers.push(signer);
        self.by_kid.entry(kid).or_default().push(self.signers.len() - 1);
    }

    fn rebuild(&mut self) {
        self.paths = PathSet::new(&self.anchors, &self.intermediates);
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }

    /// Signers whose kid is `kid`, at most [`MAX_KID_CANDIDATES`].
    pub fn candidates(&self, kid: &Kid) -> impl Iterator<Item = (usize, &Signer)> {
        self.by_kid
            .get(kid)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(MAX_KID_CANDIDATES)
            .filter_map(|&i| self.signers.get(i).map(|s| (i, s)))
    }

    /// Every signer.
    pub fn signers(&self) -> &[Signer] {
        &self.signers
    }

    /// Roots and intermediates, for publishing a trust list.
    pub fn authorities(&self) -> impl Iterator<Item = &Certificate> {
        self.anchors.iter().chain(&self.intermediates)
    }

    /// How many path validations ran (cache misses) since the store was built.
    pub fn path_validations(&self) -> u64 {
        self.validations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Validates the path of signer `index` at `at` (Unix seconds), reusing an earlier result
    /// while `at` lies in every certificate's validity. Pinned signers need no path. Whether
    /// a chained signer may sign passports is [`super::check_passport_signer`]'s business (the
    /// trust-list signer chains the same way).
    pub fn validate_signer(&self, index: usize, at: i64) -> Result<Arc<ValidatedPath>, ChainError> {
        let signer =
            self.signers.get(index).ok_or_else(|| ChainError::ChainInvalid { detail: "unknown signer".into() })?;
        if signer.pinned {
            return Ok(Arc::new(ValidatedPath {
                subjects: vec![signer.cert.subject.clone()],
                valid_from: signer.cert.validity.map_or(i64::MIN, |v| v.0),
                valid_until: signer.cert.validity.map_or(i64::MAX, |v| v.1),
            }));
        }
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&index).cloned())
            && hit.valid_from <= at
            && at <= hit.valid_until
        {
            return Ok(hit);
        }
        self.validations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = Arc::new(self.paths.validate(&signer.cert, &self.anchors, &self.intermediates, at)?);
        if let Ok(mut c) = self.cache.write() {
            c.insert(index, Arc::clone(&path));
        }
        Ok(path)
    }
}
