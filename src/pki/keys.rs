//! Private keys: PKCS#8 PEM files, created with mode 0600 and never overwritten, and the
//! [`SigningKey`] that signs passports and trust lists with a file key or a token key.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PSS_SHA256, RsaKeyPair};

use super::cert::SignerKey;
use super::pkcs11::{Pkcs11Uri, Purpose, TokenError, TokenKey, is_pkcs11_uri};

/// A problem with a key or certificate file; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not `source()`, so it prints once).
        cause: std::io::Error,
    },
    /// Refusing to overwrite an existing file (keys are never replaced silently).
    #[error("{path}: already exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file's content is not what it should be.
    #[error("{path}: {problem}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one phrase.
        problem: String,
    },
}

impl FileError {
    /// A content problem with `path`.
    pub fn content(path: &Path, problem: impl Into<String>) -> FileError {
        FileError::Content { path: path.to_owned(), problem: problem.into() }
    }
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    fs::read(path).map_err(|source| FileError::Io { path: path.to_owned(), cause: source })
}

/// Creates `path` with `contents`, failing if it exists. `private` files get mode 0600 from
/// the moment they exist (no window in which another user could open them).
pub fn write_new_file(path: &Path, contents: &[u8], private: bool) -> Result<(), FileError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => FileError::Exists { path: path.to_owned() },
        _ => FileError::Io { path: path.to_owned(), cause: source },
    })?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|source| FileError::Io { path: path.to_owned(), cause: source })
}

/// Fails if any of `paths` exists, so that a command writes all of its files or none.
pub fn ensure_absent(paths: &[&Path]) -> Result<(), FileError> {
    for p in paths {
        if p.exists() {
            return Err(FileError::Exists { path: p.to_path_buf() });
        }
    }
    Ok(())
}

/// Extracts the PKCS#8 DER from a PEM key file, with a clear message for the usual mistakes.
pub(super) fn pkcs8_from_pem(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    let blocks = pem::parse_many(bytes).map_err(|e| FileError::content(path, format!("not a PEM file ({e})")))?;
    let mut found_other = None;
    for b in blocks {
        match b.tag() {
            "PRIVATE KEY" => return Ok(b.contents().to_vec()),
            "EC PRIVATE KEY" => {
                return Err(FileError::content(
                    path,
                    "SEC1 'EC PRIVATE KEY'; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`",
                ));
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(FileError::content(path, "encrypted keys are not supported; decrypt to PKCS#8 first"));
            }
            other => found_other = Some(other.to_owned()),
        }
    }
    Err(FileError::content(
        path,
        match found_other {
            Some(tag) => format!("holds a '{tag}' block, not a 'PRIVATE KEY'"),
            None => "no PEM block found".into(),
        },
    ))
}

/// A signature could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// ring gives no detail: in practice, no system randomness.
    #[error("signing failed (no system randomness?)")]
    Randomness,
    /// The token refused or failed (SPEC §10).
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A key file or token key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A PEM file.
    #[error(transparent)]
    File(#[from] FileError),
    /// A PKCS#11 token (SPEC §10).
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The passport signature algorithm a key implies (SPEC §2, §10): ECDSA P-256 keys sign
/// ES256, RSA keys (2048+) sign PS256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256, 64-byte r‖s (COSE -7).
    Es256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (COSE -37).
    Ps256,
}

enum KeyKind {
    FileEc(EcdsaKeyPair),
    FileRsa(RsaKeyPair),
    Token(TokenKey),
}

/// A facility's (or the trust-list signer's) signing key: a PKCS#8 PEM file (ECDSA P-256 or
/// RSA-2048+) or a key in a PKCS#11 token. Loaded once and reused for every passport
/// (loading a file key costs ~19 µs, almost a signature). `Sync`: the signing threads share
/// it; a token key gives each thread a session of its own.
pub struct SigningKey {
    kind: KeyKind,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey { .. }")
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM key file (ECDSA P-256 or RSA-2048+).
    pub fn load(path: &Path) -> Result<SigningKey, FileError> {
        let bytes = read_file(path)?;
        Self::from_pem(path, &bytes)
    }

    /// Opens a key argument: a `pkcs11:` URI (SPEC §10) or a PKCS#8 PEM file.
    pub fn open(arg: &Path) -> Result<SigningKey, KeyError> {
        match arg.to_str() {
            Some(uri) if is_pkcs11_uri(uri) => Ok(Self::from_token(TokenKey::open(&Pkcs11Uri::parse(uri)?)?)),
            _ => Ok(Self::load(arg)?),
        }
    }

    /// A key held in a token.
    pub fn from_token(key: TokenKey) -> SigningKey {
        SigningKey { kind: KeyKind::Token(key), rng: SystemRandom::new() }
    }

    /// Parses PKCS#8 PEM bytes; `path` only names the source in errors.
    pub fn from_pem(path: &Path, bytes: &[u8]) -> Result<SigningKey, FileError> {
        let der = pkcs8_from_pem(path, bytes)?;
        let rng = SystemRandom::new();
        let kind = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng) {
            Ok(pair) => KeyKind::FileEc(pair),
            Err(ec) => match RsaKeyPair::from_pkcs8(&der) {
                Ok(pair) => KeyKind::FileRsa(pair),
                // ring refuses RSA keys under 2048 bits the same way as garbage.
                Err(rsa) => {
                    return Err(FileError::content(
                        path,
                        format!("not an ECDSA P-256 ({ec}) or RSA-2048+ ({rsa}) PKCS#8 key"),
                    ));
                }
            },
        };
        Ok(SigningKey { kind, rng })
    }

    /// Signs `msg`: ES256 as the 64-byte r‖s form COSE uses, PS256 as the RSA signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.kind {
            KeyKind::FileEc(pair) => {
                Ok(pair.sign(&self.rng, msg).map_err(|_| SignError::Randomness)?.as_ref().to_vec())
            }
            KeyKind::FileRsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PSS_SHA256, &self.rng, msg, &mut sig).map_err(|_| SignError::Randomness)?;
                Ok(sig)
            }
            KeyKind::Token(key) => Ok(key.sign(msg, Purpose::Cose)?),
        }
    }

    /// The algorithm this key signs passports with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.public_key() {
            SignerKey::EcP256(_) => SignatureAlgorithm::Es256,
            _ => SignatureAlgorithm::Ps256,
        }
    }

    /// The length of a signature: 64 for ES256, the modulus length for PS256.
    pub fn signature_len(&self) -> usize {
        match self.public_key() {
            SignerKey::Rsa(der) => rsa_modulus_len(&der),
            _ => 64,
        }
    }

    /// The public key, to compare with a certificate's.
    pub fn public_key(&self) -> SignerKey {
        match &self.kind {
            KeyKind::FileEc(pair) => SignerKey::EcP256(pair.public_key().as_ref().to_vec()),
            KeyKind::FileRsa(pair) => SignerKey::Rsa(pair.public().as_ref().to_vec()),
            KeyKind::Token(key) => key.public_key().clone(),
        }
    }

    /// The uncompressed public point of a P-256 key (empty for an RSA key).
    pub fn public_point(&self) -> &[u8] {
        match &self.kind {
            KeyKind::FileEc(pair) => pair.public_key().as_ref(),
            KeyKind::Token(key) => match key.public_key() {
                SignerKey::EcP256(p) => p,
                _ => &[],
            },
            KeyKind::FileRsa(_) => &[],
        }
    }

    /// The token key, if the key is in a token.
    pub fn token(&self) -> Option<&TokenKey> {
        match &self.kind {
            KeyKind::Token(k) => Some(k),
            _ => None,
        }
    }
}

/// The modulus length in bytes of a PKCS#1 RSAPublicKey DER (256 for RSA-2048).
fn rsa_modulus_len(der: &[u8]) -> usize {
    use x509_parser::prelude::FromDer as _;
    x509_parser::public_key::RSAPublicKey::from_der(der)
        .map(|(_, k)| k.modulus.iter().skip_while(|b| **b == 0).count())
        .unwrap_or(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_private_file_is_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_new_file(&p, b"secret", true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let err = write_new_file(&p, b"other", true).unwrap_err();
        assert!(matches!(err, FileError::Exists { .. }));
        assert_eq!(fs::read(&p).unwrap(), b"secret");
    }

    #[test]
    fn sec1_key_gets_a_conversion_hint() {
        let pem = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let err = SigningKey::from_pem(Path::new("k.pem"), pem).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("k.pem: SEC1"), "{msg}");
    }

    #[test]
    fn certificate_instead_of_key_is_named() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let msg = SigningKey::from_pem(Path::new("c.pem"), pem).unwrap_err().to_string();
        assert_eq!(msg, "c.pem: holds a 'CERTIFICATE' block, not a 'PRIVATE KEY'");
    }
}
