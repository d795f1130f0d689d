//! Private keys: PKCS#8 PEM files, created with mode 0600 and never overwritten.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

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
pub fn pkcs8_from_pem(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, FileError> {
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

/// The signing operation failed (ring gives no detail: in practice, no system randomness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing failed (no system randomness?)")]
pub struct SignError;

/// A facility's ECDSA P-256 signing key, loaded once and reused for every passport (loading
/// costs ~19 µs, almost a signature).
pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey { .. }")
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM P-256 key file.
    pub fn load(path: &Path) -> Result<SigningKey, FileError> {
        let bytes = read_file(path)?;
        Self::from_pem(path, &bytes)
    }

    /// Parses PKCS#8 PEM bytes; `path` only names the source in errors.
    pub fn from_pem(path: &Path, bytes: &[u8]) -> Result<SigningKey, FileError> {
        let der = pkcs8_from_pem(path, bytes)?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| FileError::content(path, format!("not an ECDSA P-256 PKCS#8 key ({e})")))?;
        Ok(SigningKey { pair, rng })
    }

    /// Signs `msg` with ECDSA P-256/SHA-256, returning the 64-byte r‖s form COSE uses.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.pair.sign(&self.rng, msg).map_err(|_| SignError)?.as_ref().to_vec())
    }

    /// The uncompressed public point, to compare with a certificate.
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
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
