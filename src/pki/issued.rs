//! The issuance record of a CA: one JSON line per facility certificate it issued, appended
//! by `vaxpass pki issue-facility` / `sign-csr`, so that a second certificate for a facility
//! code that still has a valid one is refused unless asked for (issue #8 item 16).
//!
//! It lives beside the issuer's certificate (`issued.jsonl`), as OpenSSL's `ca` keeps its
//! `index.txt` in the CA's directory and boulder records every issuance before it returns a
//! certificate: the record travels with the offline CA it describes. It is append-only; a
//! line is never rewritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cert::Certificate;
use super::keys::{FileError, read_file};

/// The record's file name, beside the issuer certificate.
pub const ISSUED_LOG_NAME: &str = "issued.jsonl";
/// Largest record read: ~250 bytes a line, so about 250,000 issued certificates.
pub(super) const MAX_ISSUED_LOG_BYTES: usize = 64 * 1024 * 1024;

/// One issued facility certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedEntry {
    /// The facility code.
    pub code: String,
    /// The certificate's kid (base64).
    pub kid: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

/// Why the record refuses or cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuedLogError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// A line is not an entry (the file was edited by hand or truncated).
    #[error("{}: line {line} is not an issuance record", path.display())]
    Malformed {
        /// The record.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// Larger than `MAX_ISSUED_LOG_BYTES`.
    #[error("{}: larger than {MAX_ISSUED_LOG_BYTES} bytes", path.display())]
    TooLarge {
        /// The record.
        path: PathBuf,
    },
    /// The code already has a certificate valid at the time of issue.
    #[error(
        "facility {code} already has a valid certificate (kid {kid}, until {not_after}); \
         pass --allow-duplicate-code to issue another"
    )]
    DuplicateCode {
        /// The facility code.
        code: String,
        /// The existing certificate's kid.
        kid: String,
        /// Its notAfter, Unix seconds.
        not_after: i64,
    },
}

/// A CA's issuance record, read into memory.
#[derive(Debug)]
pub struct IssuedLog {
    path: PathBuf,
    entries: Vec<IssuedEntry>,
}

impl IssuedLog {
    /// The default place of the record of the CA whose certificate is `issuer_cert`.
    pub fn beside(issuer_cert: &Path) -> PathBuf {
        issuer_cert.parent().unwrap_or(Path::new(".")).join(ISSUED_LOG_NAME)
    }

    /// Reads the record at `path`; a missing file is an empty record.
    pub fn open(path: &Path) -> Result<IssuedLog, IssuedLogError> {
        let path = path.to_owned();
        let bytes = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Ok(m) if m.len() > MAX_ISSUED_LOG_BYTES as u64 => return Err(IssuedLogError::TooLarge { path }),
            _ => read_file(&path)?,
        };
        let mut entries = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let entry = serde_json::from_slice(line)
                .map_err(|_| IssuedLogError::Malformed { path: path.clone(), line: i + 1 })?;
            entries.push(entry);
        }
        Ok(IssuedLog { path, entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[IssuedEntry] {
        &self.entries
    }

    /// Refuses `code` if a certificate for it is valid at `at` (Unix seconds).
    pub fn check_code(&self, code: &str, at: i64) -> Result<(), IssuedLogError> {
        match self.entries.iter().rev().find(|e| e.code == code && e.not_before <= at && at <= e.not_after) {
            Some(e) => {
                Err(IssuedLogError::DuplicateCode { code: code.to_owned(), kid: e.kid.clone(), not_after: e.not_after })
            }
            None => Ok(()),
        }
    }

    /// Appends the facility certificate `cert` (synced to disk before returning).
    pub fn append(&mut self, cert: &Certificate) -> Result<(), IssuedLogError> {
        let (Some(code), Some((not_before, not_after))) = (&cert.facility_code, cert.validity) else {
            return Err(FileError::content(&self.path, "not a facility certificate").into());
        };
        let entry = IssuedEntry { code: code.clone(), kid: cert.kid.to_base64(), not_before, not_after };
        let mut line = serde_json::to_vec(&entry).map_err(|e| FileError::content(&self.path, e.to_string()))?;
        line.push(b'\n');
        let io = |cause| FileError::Io { path: self.path.clone(), cause };
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&self.path).map_err(io)?;
        f.write_all(&line).map_err(io)?;
        f.sync_all().map_err(io)?;
        self.entries.push(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_with_a_valid_certificate_is_refused_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ISSUED_LOG_NAME);
        std::fs::write(&path, "{\"code\":\"01001\",\"kid\":\"AAAAAAAAAAA=\",\"not_before\":100,\"not_after\":200}\n")
            .unwrap();
        let log = IssuedLog::open(&path).unwrap();
        assert!(matches!(log.check_code("01001", 150), Err(IssuedLogError::DuplicateCode { .. })));
        log.check_code("01001", 201).unwrap();
        log.check_code("01002", 150).unwrap();
        IssuedLog::open(&dir.path().join("missing.jsonl")).unwrap().check_code("01001", 150).unwrap();
        std::fs::write(&path, "not json\n").unwrap();
        assert!(matches!(IssuedLog::open(&path), Err(IssuedLogError::Malformed { line: 1, .. })));
    }
}
