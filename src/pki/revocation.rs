//! Revocations: passports by a hash of their UVCI, facility DSCs by kid.
//!
//! File format (JSON, documented in README "Revocation file"):
//!
//! ```json
//! {"version": 3,
//!  "passports": ["<lowercase hex SHA-256 of the UVCI exactly as in `ci`>", ...],
//!  "facilities": ["<kid, standard base64 of the 8 bytes>", ...]}
//! ```
//!
//! Hashing the UVCI (as the EU revocation scheme does) lets the list travel to offline
//! devices without listing whose certificates were revoked.

use std::collections::HashSet;
use std::path::Path;

use ring::digest;
use serde::{Deserialize, Serialize};

use super::cert::Kid;
use super::keys::{FileError, read_file};

/// A revocation list.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    /// Monotonic version of the list (0 when unknown).
    pub version: u64,
    passports: HashSet<[u8; 32]>,
    facilities: HashSet<Kid>,
}

#[derive(Serialize, Deserialize)]
struct RevocationFile {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    passports: Vec<String>,
    #[serde(default)]
    facilities: Vec<String>,
}

/// SHA-256 of a UVCI, the key passports are revoked by.
pub fn uvci_hash(uvci: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(digest::digest(&digest::SHA256, uvci.as_bytes()).as_ref());
    h
}

/// The revocation key of a UVCI as stored and published: lowercase hex SHA-256.
pub fn revocation_hex(uvci: &str) -> String {
    hex(&uvci_hash(uvci))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses 64 hex digits (surrounding white space ignored).
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Revocations {
    /// Loads a revocation file, naming it and the bad entry on error.
    pub fn load(path: &Path) -> Result<Revocations, FileError> {
        let bytes = read_file(path)?;
        Self::from_json(&bytes).map_err(|problem| FileError::content(path, problem))
    }

    /// Parses the JSON form.
    pub fn from_json(bytes: &[u8]) -> Result<Revocations, String> {
        let f: RevocationFile = serde_json::from_slice(bytes).map_err(|e| format!("not a revocation file ({e})"))?;
        let mut r = Revocations { version: f.version, ..Default::default() };
        for (i, p) in f.passports.iter().enumerate() {
            r.passports.insert(unhex32(p).ok_or_else(|| format!("passports[{i}] is not 64 hex digits"))?);
        }
        for (i, k) in f.facilities.iter().enumerate() {
            r.facilities
                .insert(Kid::from_base64(k).ok_or_else(|| format!("facilities[{i}] is not a base64 8-byte kid"))?);
        }
        Ok(r)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let mut passports: Vec<String> = self.passports.iter().map(|h| hex(h)).collect();
        passports.sort();
        let mut facilities: Vec<String> = self.facilities.iter().map(Kid::to_base64).collect();
        facilities.sort();
        let f = RevocationFile { version: self.version, passports, facilities };
        serde_json::to_string_pretty(&f).unwrap_or_default()
    }

    /// Adds every revocation of `other` (the version becomes the larger one).
    pub fn merge(&mut self, other: &Revocations) {
        self.version = self.version.max(other.version);
        self.passports.extend(other.passports.iter().copied());
        self.facilities.extend(other.facilities.iter().copied());
    }

    /// Revokes a passport by UVCI.
    pub fn revoke_passport(&mut self, uvci: &str) {
        self.passports.insert(uvci_hash(uvci));
    }

    /// Revokes a passport by the hex SHA-256 of its UVCI (as stored and published);
    /// anything else is ignored.
    pub fn revoke_passport_hash_hex(&mut self, hex: &str) {
        if let Some(h) = unhex32(hex) {
            self.passports.insert(h);
        }
    }

    /// Revokes a facility DSC by kid.
    pub fn revoke_facility(&mut self, kid: Kid) {
        self.facilities.insert(kid);
    }

    /// Whether the passport with this UVCI is revoked.
    pub fn is_passport_revoked(&self, uvci: &str) -> bool {
        self.passports.contains(&uvci_hash(uvci))
    }

    /// Whether the signer with this kid is revoked.
    pub fn is_facility_revoked(&self, kid: &Kid) -> bool {
        self.facilities.contains(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut r = Revocations { version: 7, ..Default::default() };
        r.revoke_passport("URN:UVCI:01:VN:01001/ABC#X");
        r.revoke_facility(Kid([1, 2, 3, 4, 5, 6, 7, 8]));
        let back = Revocations::from_json(r.to_json().as_bytes()).unwrap();
        assert_eq!(back.version, 7);
        assert!(back.is_passport_revoked("URN:UVCI:01:VN:01001/ABC#X"));
        assert!(!back.is_passport_revoked("URN:UVCI:01:VN:01001/ABD#X"));
        assert!(back.is_facility_revoked(&Kid([1, 2, 3, 4, 5, 6, 7, 8])));
    }

    #[test]
    fn bad_entry_is_named() {
        let err = Revocations::from_json(br#"{"passports": ["zz"]}"#).unwrap_err();
        assert_eq!(err, "passports[0] is not 64 hex digits");
    }
}
