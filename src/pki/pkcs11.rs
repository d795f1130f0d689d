//! Keys in hardware tokens and HSMs (SPEC §10), reached through PKCS#11 with `cryptoki`:
//! RFC 7512 `pkcs11:` URIs, one logged-in token per URI, one session per signing thread, and
//! key pairs generated inside the token. The private key never leaves the token.
//!
//! - ES256: `CKM_ECDSA` over a SHA-256 digest computed here; the token returns the raw
//!   r‖s form COSE uses (PKCS#11 v2.40 §2.3.1), which certificates get as DER.
//! - PS256: `CKM_RSA_PKCS_PSS` over a SHA-256 digest, MGF1-SHA-256, 32-byte salt (RFC 8230
//!   §2, what ring's `RSA_PSS_SHA256` verifies). Certificates signed by an RSA CA key use
//!   `CKM_RSA_PKCS` over a SHA-256 DigestInfo (sha256WithRSAEncryption, RFC 4055).
//!
//! A PKCS#11 session must not be used by two threads at once (cryptoki's `Session` is not
//! `Sync`), so a [`TokenKey`] keeps a pool: a signing thread takes a session, signs and puts
//! it back, and the pool grows to the number of threads signing at once (`--jobs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::cert::SignerKey;

/// Longest PIN file read: PINs are a few dozen characters at most.
const MAX_PIN_FILE_BYTES: u64 = 4096;
/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of our EC keys.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The DigestInfo prefix of a SHA-256 hash (RFC 8017 §9.2 note 1), for PKCS#1 v1.5.
const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
/// Smallest RSA modulus accepted for signing (SPEC §10: RSA-2048+).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// Why a token key could not be used. One clear line each; the PIN never appears.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The `pkcs11:` URI is malformed or lacks what vaxpass needs (RFC 7512).
    #[error("PKCS#11 URI: {problem}")]
    Uri {
        /// What is wrong.
        problem: String,
    },
    /// The PKCS#11 module (shared library) could not be loaded or initialised.
    #[error("PKCS#11 module {module}: cannot be loaded ({cause})")]
    ModuleNotLoadable {
        /// The module path.
        module: PathBuf,
        /// The loader's reason.
        cause: String,
    },
    /// No slot holds a token with this label.
    #[error("PKCS#11 module {module}: no token labelled {token:?}")]
    NoSuchToken {
        /// The token label.
        token: String,
        /// The module path.
        module: PathBuf,
    },
    /// The token holds no private key with this label (and id).
    #[error("PKCS#11 token {token:?}: no private key labelled {object:?}")]
    NoSuchObject {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
    },
    /// Several private keys match the URI.
    #[error("PKCS#11 token {token:?}: {count} private keys labelled {object:?}; add id= to the URI")]
    Ambiguous {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
        /// How many matched.
        count: usize,
    },
    /// An object with this label exists already (`pki csr` never replaces a key).
    #[error("PKCS#11 token {token:?}: a key labelled {object:?} exists already; refusing to replace it")]
    ObjectExists {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
    },
    /// The token refused the user PIN (`CKR_PIN_INCORRECT`).
    #[error("PKCS#11 token {token:?}: wrong PIN")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The user PIN is locked after too many wrong attempts (`CKR_PIN_LOCKED`).
    #[error("PKCS#11 token {token:?}: the PIN is locked")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// The PIN file could not be read.
    #[error("PKCS#11 pin-source {path}: {cause}")]
    PinSource {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// The key is neither P-256 nor RSA-2048+.
    #[error("PKCS#11 token {token:?}: key {object:?} is {kind}; vaxpass signs with ECDSA P-256 or RSA-2048+ keys")]
    UnsupportedKey {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
        /// What it is.
        kind: String,
    },
    /// Any other failure reported by the module.
    #[error("PKCS#11 {function}: {code}")]
    Device {
        /// The PKCS#11 function.
        function: String,
        /// The CKR_* code.
        code: String,
    },
}

fn device(e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(rv, function) => TokenError::Device { function: function.to_string(), code: format!("{rv:?}") },
        other => TokenError::Device { function: "call".into(), code: other.to_string() },
    }
}

/// Key type generated by `pki csr --key pkcs11:…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKeyType {
    /// ECDSA P-256 (ES256), the default.
    EcP256,
    /// RSA-3072 (PS256).
    Rsa3072,
}

/// A parsed RFC 7512 `pkcs11:` URI, reduced to what vaxpass uses.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: String,
    /// `object=`: the key label.
    pub object: String,
    /// `id=`: the key's CKA_ID, when given.
    pub id: Option<Vec<u8>>,
    /// `module-path=`: the PKCS#11 library.
    pub module: PathBuf,
    pin: Option<Pin>,
}

#[derive(Clone, PartialEq, Eq)]
enum Pin {
    Value(String),
    File(PathBuf),
}

impl std::fmt::Debug for Pkcs11Uri {
    // The PIN stays out of logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("object", &self.object)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

/// Whether a key argument is a PKCS#11 URI rather than a file.
pub(crate) fn is_pkcs11_uri(arg: &str) -> bool {
    arg.len() >= 7 && arg[..7].eq_ignore_ascii_case("pkcs11:")
}

fn uri_err(problem: impl Into<String>) -> TokenError {
    TokenError::Uri { problem: problem.into() }
}

/// RFC 3986 percent-decoding.
fn percent_decode(s: &str) -> Result<Vec<u8>, TokenError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or_else(|| uri_err("truncated %-escape"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| uri_err("bad %-escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| uri_err(format!("bad %-escape %{hex}")))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_text(name: &str, s: &str) -> Result<String, TokenError> {
    String::from_utf8(percent_decode(s)?).map_err(|_| uri_err(format!("{name} is not UTF-8")))
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=…;object=…?module-path=…&pin-source=file:…` (RFC 7512 §2.3).
    /// Path attributes vaxpass does not use are refused, so that a typo cannot select another
    /// key than the one meant.
    pub fn parse(uri: &str) -> Result<Pkcs11Uri, TokenError> {
        if !is_pkcs11_uri(uri) {
            return Err(uri_err("does not start with pkcs11:"));
        }
        let rest = &uri[7..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut id, mut module, mut pin) = (None, None, None, None, None);
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').ok_or_else(|| uri_err(format!("path attribute {attr:?} has no '='")))?;
            match k {
                "token" => token = Some(decode_text(k, v)?),
                "object" => object = Some(decode_text(k, v)?),
                "id" => id = Some(percent_decode(v)?),
                "type" if v == "private" => {}
                "type" => return Err(uri_err(format!("type={v}: only private keys sign"))),
                _ => return Err(uri_err(format!("unsupported path attribute {k:?} (use token, object, id)"))),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').ok_or_else(|| uri_err(format!("query attribute {attr:?} has no '='")))?;
            match k {
                "module-path" => module = Some(PathBuf::from(decode_text(k, v)?)),
                "pin-value" => pin = Some(Pin::Value(decode_text(k, v)?)),
                "pin-source" => {
                    let v = decode_text(k, v)?;
                    // RFC 7512 §2.3: a URI; a file: URI or a plain path is what a CLI meets.
                    let path = v.strip_prefix("file://").or_else(|| v.strip_prefix("file:")).unwrap_or(&v);
                    pin = Some(Pin::File(PathBuf::from(path)));
                }
                "module-name" => return Err(uri_err("module-name is not supported; give module-path")),
                _ => return Err(uri_err(format!("unsupported query attribute {k:?}"))),
            }
        }
        Ok(Pkcs11Uri {
            token: token.ok_or_else(|| uri_err("no token= attribute"))?,
            object: object.ok_or_else(|| uri_err("no object= attribute"))?,
            id,
            module: module.ok_or_else(|| uri_err("no module-path= attribute"))?,
            pin,
        })
    }

    fn pin(&self) -> Result<Option<AuthPin>, TokenError> {
        match &self.pin {
            None => Ok(None),
            Some(Pin::Value(v)) => Ok(Some(AuthPin::from(v.clone()))),
            Some(Pin::File(path)) => {
                use std::io::Read as _;
                let err = |cause: String| TokenError::PinSource { path: path.clone(), cause };
                let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
                let mut text = String::new();
                f.take(MAX_PIN_FILE_BYTES).read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
                // A trailing newline is how editors and `echo` end the file, not part of the PIN.
                let pin = text.trim_end_matches(['\n', '\r']);
                Ok(Some(AuthPin::from(pin.to_owned())))
            }
        }
    }
}

/// Loaded modules, one context per library for the life of the process: `C_Initialize`
/// may run once per process, and `C_Finalize` would end every other user's sessions.
fn module(path: &Path) -> Result<Pkcs11, TokenError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let not_loadable = |cause: String| TokenError::ModuleNotLoadable { module: path.to_owned(), cause };
    if !path.is_file() {
        return Err(not_loadable("no such file".into()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| match e {
        CkError::LibraryLoading(e) => not_loadable(e.to_string()),
        other => not_loadable(other.to_string()),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(not_loadable(e.to_string())),
    }
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, TokenError> {
    for slot in ctx.get_slots_with_token().map_err(device)? {
        let info = ctx.get_token_info(slot).map_err(device)?;
        if info.label().trim_end() == uri.token {
            return Ok(slot);
        }
    }
    Err(TokenError::NoSuchToken { token: uri.token.clone(), module: uri.module.clone() })
}

/// Logs the user in; every session of this process on the token shares the login.
fn login(session: &Session, uri: &Pkcs11Uri) -> Result<(), TokenError> {
    let pin = uri.pin()?;
    match session.login(UserType::User, pin.as_ref()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(TokenError::WrongPin { token: uri.token.clone() }),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked { token: uri.token.clone() }),
        Err(e) => Err(device(e)),
    }
}

fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class), Attribute::Label(uri.object.as_bytes().to_vec())];
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// The public key of a token key pair, read from its public object (or, for RSA, from the
/// private object's modulus and exponent, which tokens keep readable).
fn public_key(session: &Session, uri: &Pkcs11Uri, private: ObjectHandle) -> Result<SignerKey, TokenError> {
    let kind = session.get_attributes(private, &[AttributeType::KeyType]).map_err(device)?;
    let key_type = kind.iter().find_map(|a| if let Attribute::KeyType(k) = a { Some(*k) } else { None });
    let unsupported =
        |kind: String| TokenError::UnsupportedKey { token: uri.token.clone(), object: uri.object.clone(), kind };
    let public = session.find_objects(&template(uri, ObjectClass::PUBLIC_KEY)).map_err(device)?;
    match key_type {
        Some(k) if k == KeyType::EC => {
            let pub_obj =
                public.first().ok_or_else(|| unsupported("an EC key without its public key object".into()))?;
            let attrs =
                session.get_attributes(*pub_obj, &[AttributeType::EcParams, AttributeType::EcPoint]).map_err(device)?;
            let mut point = None;
            for a in attrs {
                match a {
                    Attribute::EcParams(p) if p != P256_PARAMS => {
                        return Err(unsupported("an EC key on another curve".into()));
                    }
                    Attribute::EcPoint(p) => point = Some(p),
                    _ => {}
                }
            }
            // CKA_EC_POINT is the DER OCTET STRING wrapping the uncompressed point (v2.40);
            // some modules give the bare point.
            let point = point.ok_or_else(|| unsupported("an EC key without CKA_EC_POINT".into()))?;
            let raw = match point.as_slice() {
                [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest.to_vec(),
                p if p.len() == 65 && p[0] == 0x04 => p.to_vec(),
                _ => return Err(unsupported("an EC key whose point is not uncompressed P-256".into())),
            };
            Ok(SignerKey::EcP256(raw))
        }
        Some(k) if k == KeyType::RSA => {
            let from = public.first().copied().unwrap_or(private);
            let attrs = session
                .get_attributes(from, &[AttributeType::Modulus, AttributeType::PublicExponent])
                .map_err(device)?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => n = Some(m),
                    Attribute::PublicExponent(x) => e = Some(x),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else { return Err(unsupported("an RSA key without its modulus".into())) };
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_BITS {
                return Err(unsupported(format!("RSA-{bits}")));
            }
            Ok(SignerKey::Rsa(rsa_public_key_der(&n, &e)))
        }
        Some(k) => Err(unsupported(format!("a {k} key"))),
        None => Err(unsupported("a key of unknown type".into())),
    }
}

/// DER length octets.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// A DER INTEGER from big-endian unsigned bytes.
fn der_uint(b: &[u8], out: &mut Vec<u8>) {
    let b: &[u8] = {
        let first = b.iter().position(|x| *x != 0).unwrap_or(b.len().saturating_sub(1));
        &b[first.min(b.len())..]
    };
    let pad = b.first().is_none_or(|x| x & 0x80 != 0);
    out.push(0x02);
    der_len(b.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(b);
}

fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }` (RFC 8017 §A.1.1).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    der_uint(n, &mut c);
    der_uint(e, &mut c);
    der_sequence(&c)
}

/// The X.509 form of an ECDSA signature (`Ecdsa-Sig-Value`, RFC 3279 §2.2.3) from r‖s.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut c = Vec::new();
    der_uint(r, &mut c);
    der_uint(s, &mut c);
    der_sequence(&c)
}

/// What a token signature is for: a passport or trust list (COSE form) or a certificate
/// (X.509 form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// ES256 r‖s or PS256.
    Cose,
    /// ECDSA as DER, or RSA PKCS#1 v1.5 (sha256WithRSAEncryption).
    X509,
}

/// A private key in a token, with a pool of logged-in sessions (one per signing thread).
pub struct TokenKey {
    uri: Pkcs11Uri,
    ctx: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    public: SignerKey,
    sessions: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey {{ token: {:?}, object: {:?} }}", self.uri.token, self.uri.object)
    }
}

impl TokenKey {
    /// Opens the key a URI names: loads the module, finds the token, logs in and finds the
    /// private key and its public half. Each step fails with its own [`TokenError`].
    pub fn open(uri: &Pkcs11Uri) -> Result<TokenKey, TokenError> {
        let ctx = module(&uri.module)?;
        let slot = find_slot(&ctx, uri)?;
        let session = ctx.open_ro_session(slot).map_err(device)?;
        login(&session, uri)?;
        let keys = session.find_objects(&template(uri, ObjectClass::PRIVATE_KEY)).map_err(device)?;
        let key = match keys.as_slice() {
            [] => return Err(TokenError::NoSuchObject { token: uri.token.clone(), object: uri.object.clone() }),
            [k] => *k,
            many => {
                return Err(TokenError::Ambiguous {
                    token: uri.token.clone(),
                    object: uri.object.clone(),
                    count: many.len(),
                });
            }
        };
        let public = public_key(&session, uri, key)?;
        Ok(TokenKey { uri: uri.clone(), ctx, slot, key, public, sessions: Mutex::new(vec![session]) })
    }

    /// Generates a non-extractable, sensitive key pair in the token under `uri`'s label
    /// (refusing if one exists) and opens it.
    pub fn generate(uri: &Pkcs11Uri, kind: TokenKeyType) -> Result<TokenKey, TokenError> {
        let ctx = module(&uri.module)?;
        let slot = find_slot(&ctx, uri)?;
        let session = ctx.open_rw_session(slot).map_err(device)?;
        login(&session, uri)?;
        let mut existing = session.find_objects(&template(uri, ObjectClass::PRIVATE_KEY)).map_err(device)?;
        existing.extend(session.find_objects(&template(uri, ObjectClass::PUBLIC_KEY)).map_err(device)?);
        if !existing.is_empty() {
            return Err(TokenError::ObjectExists { token: uri.token.clone(), object: uri.object.clone() });
        }
        let label = Attribute::Label(uri.object.as_bytes().to_vec());
        // CKA_ID ties the two halves together for other tools (p11tool, OpenSC); random
        // unless the URI gives one.
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
                    .map_err(|_| TokenError::Device { function: "id".into(), code: "no system randomness".into() })?;
                id
            }
        };
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            label.clone(),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label,
            Attribute::Id(id),
        ];
        let mechanism = match kind {
            TokenKeyType::EcP256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            TokenKeyType::Rsa3072 => {
                public.push(Attribute::ModulusBits(3072u64.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        session.generate_key_pair(&mechanism, &public, &private).map_err(device)?;
        drop(session);
        TokenKey::open(uri)
    }

    /// The public key, to compare with a certificate.
    pub fn public_key(&self) -> &SignerKey {
        &self.public
    }

    /// Signs `msg` (hashing it with SHA-256 here) in a session of this thread's own.
    pub(crate) fn sign(&self, msg: &[u8], purpose: Purpose) -> Result<Vec<u8>, TokenError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, msg);
        let session = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let session = match session {
            Some(s) => s,
            None => self.ctx.open_ro_session(self.slot).map_err(device)?,
        };
        let signed = match (&self.public, purpose) {
            (SignerKey::EcP256(_), _) => session.sign(&Mechanism::Ecdsa, self.key, digest.as_ref()),
            (_, Purpose::Cose) => {
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32u64.into(),
                };
                session.sign(&Mechanism::RsaPkcsPss(params), self.key, digest.as_ref())
            }
            (_, Purpose::X509) => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(digest.as_ref());
                session.sign(&Mechanism::RsaPkcs, self.key, &info)
            }
        };
        // A session whose operation failed is closed rather than reused; it may be broken.
        let signature = signed.map_err(device)?;
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(session);
        match (&self.public, purpose) {
            (SignerKey::EcP256(_), Purpose::X509) => Ok(ecdsa_raw_to_der(&signature)),
            _ => Ok(signature),
        }
    }

    /// Sessions opened so far (at most the number of threads that signed at once).
    pub fn sessions(&self) -> usize {
        self.sessions.lock().map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_uri_parses() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Facility%2001001;object=dsc-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(u.token, "Facility 01001");
        assert_eq!(u.object, "dsc-2026");
        assert_eq!(u.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert!(u.pin == Some(Pin::File("/run/pin".into())));
    }

    #[test]
    fn pin_value_is_accepted_and_never_printed() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;object=o;id=%01%02?module-path=/m.so&pin-value=123456").unwrap();
        assert_eq!(u.id, Some(vec![1, 2]));
        assert!(!format!("{u:?}").contains("123456"));
    }

    #[test]
    fn incomplete_or_unknown_uris_are_refused() {
        for (uri, problem) in [
            ("pkcs11:object=o?module-path=/m.so", "no token= attribute"),
            ("pkcs11:token=t?module-path=/m.so", "no object= attribute"),
            ("pkcs11:token=t;object=o", "no module-path= attribute"),
            (
                "pkcs11:token=t;object=o;serial=1?module-path=/m",
                "unsupported path attribute \"serial\" (use token, object, id)",
            ),
            ("pkcs11:token=t;object=o;type=cert?module-path=/m", "type=cert: only private keys sign"),
            ("pkcs11:token=%zz;object=o?module-path=/m", "bad %-escape %zz"),
        ] {
            assert_eq!(Pkcs11Uri::parse(uri), Err(TokenError::Uri { problem: problem.into() }), "{uri}");
        }
    }

    #[test]
    fn missing_module_is_one_clear_line() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;object=o?module-path=/nonexistent/libnothing.so").unwrap();
        let e = TokenKey::open(&u).unwrap_err();
        assert_eq!(e.to_string(), "PKCS#11 module /nonexistent/libnothing.so: cannot be loaded (no such file)");
    }

    #[test]
    fn ecdsa_der_form_is_minimal() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[33] = 0x01; // s has leading zeros to drop
        let der = ecdsa_raw_to_der(&raw);
        assert_eq!(&der[..5], &[0x30, 0x44, 0x02, 0x21, 0x00]);
        assert_eq!(&der[37..39], &[0x02, 0x1f]);
        crate::pki::der::check_strict(&der).unwrap();
    }
}
