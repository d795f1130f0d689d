//! The deployment secret: one key from which vaxpass derives UVCIs, claim codes, the keyed
//! hashes of identity numbers and holders, download tokens, and the AEAD seals of personal
//! data at rest. Below the gate, the store and the correction requests, which all use it.

use ring::{aead, hmac};

use crate::passport;

/// Alphabet of claim codes: no 0/O, 1/I/L, so they can be read out over the phone.
const CLAIM_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Claim code length: 31^10 ≈ 8·10^14 combinations, with lookups rate-limited.
const CLAIM_LEN: usize = 10;

/// The deployment secret that derives UVCIs, claim codes and identity-number hashes. Keyed
/// hashing makes UVCIs stable across re-runs (idempotence) while revealing nothing about the
/// person, and makes stored identity hashes useless without the key.
#[derive(Clone)]
pub struct DerivationKey(hmac::Key);

impl std::fmt::Debug for DerivationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivationKey(..)")
    }
}

impl DerivationKey {
    /// From secret bytes (at least 32 of them).
    pub fn new(secret: &[u8]) -> DerivationKey {
        DerivationKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// Loads the deployment secret file (hex), creating it (32 random bytes, mode 0600) on
    /// first use. Returns whether it was created.
    ///
    /// A secret that group or others may read or write is refused, as OpenSSH refuses such a
    /// private key and PostgreSQL such a server key: whoever reads it can recompute every
    /// identity-number hash and claim code (issue #8, item 12). A warning would scroll past
    /// in a batch log while the exposure stayed.
    pub fn load_or_create(path: &std::path::Path) -> Result<(DerivationKey, bool), crate::pki::FileError> {
        use crate::pki::FileError;
        let created = !path.exists();
        #[cfg(unix)]
        if !created {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(|cause| FileError::Io { path: path.to_owned(), cause })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(FileError::content(
                    path,
                    format!(
                        "the deployment secret has mode {:03o}: group or others can use it; run `chmod 600` on it",
                        mode & 0o777
                    ),
                ));
            }
        }
        if created {
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| FileError::content(path, "no system randomness to create it"))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            crate::pki::write_new_file(path, format!("{hex}\n").as_bytes(), true)?;
        }
        let text = String::from_utf8(crate::pki::read_file(path)?)
            .map_err(|_| FileError::content(path, "not a secret of at least 64 hex digits"))?;
        let text = text.trim();
        if text.len() < 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FileError::content(path, "not a secret of at least 64 hex digits"));
        }
        Ok((DerivationKey::new(text.as_bytes()), created))
    }

    /// The tag of a short-lived download token for `uvci`, valid until `expires` (Unix s).
    pub fn download_tag(&self, uvci: &str, expires: i64) -> Vec<u8> {
        self.tag("vaxpass/download/v1", &[uvci.as_bytes(), &expires.to_be_bytes()]).as_ref().to_vec()
    }

    fn tag<P: AsRef<[u8]>>(&self, domain: &str, parts: &[P]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(domain.as_bytes());
        for p in parts {
            let p = p.as_ref();
            // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        ctx.sign()
    }

    /// Keyed hash of an identity number, as stored (SPEC §7: never in clear). 128 bits:
    /// collisions are out of reach at any population, and the smaller index entries make
    /// batch inserts cheaper.
    pub fn id_hash(&self, id_number: &str) -> Vec<u8> {
        self.tag("vaxpass/id-number/v1", &[id_number.as_bytes()]).as_ref()[..16].to_vec()
    }

    /// The claim code of a passport signed before the ledger existed (one per UVCI); see
    /// [`DerivationKey::person_claim_code`].
    pub fn claim_code(&self, uvci: &str) -> String {
        claim_code_of(&self.tag("vaxpass/claim-code/v1", &[uvci.as_bytes()]))
    }

    /// The claim code of a person in the ledger: one code for all their passports, so the
    /// code a traveller was given still finds the passport re-issued after a correction or
    /// retraction (a code per passport would leave a re-issued one unclaimable).
    pub fn person_claim_code(&self, person: &[u8]) -> String {
        claim_code_of(&self.tag("vaxpass/claim-code/person/v1", &[person]))
    }

    /// Hash of a claim code, as stored.
    pub fn claim_hash(&self, claim_code: &str) -> Vec<u8> {
        self.tag("vaxpass/claim-hash/v1", &[claim_code.as_bytes()]).as_ref().to_vec()
    }

    /// The opaque part of a UVCI: a keyed hash of everything the passport says that can
    /// change (the person's number, name and birth date as signed, the doses, whether the
    /// history is included) and of the signing key, so that a re-run maps to the same UVCI,
    /// and a corrected name or a new key to a new passport.
    pub(crate) fn uvci_opaque(&self, person: &[&[u8]], doses: &[passport::Dose]) -> String {
        passport::uvci::opaque_from_digest(self.tag("vaxpass/uvci/v2", &with_doses(person, doses)).as_ref())
    }

    /// What a passport says that can change, without the signing key: a person whose current
    /// passport has the same content hash keeps it, whoever signs the next batch.
    pub(crate) fn content_hash(&self, person: &[&[u8]], doses: &[passport::Dose]) -> Vec<u8> {
        self.tag("vaxpass/content/v1", &with_doses(person, doses)).as_ref()[..16].to_vec()
    }

    /// The name and birth date a passport carries (SPEC §8.2: a passport naming another
    /// holder than the newest is revoked).
    pub(crate) fn holder_hash(&self, name: &str, dob: &str) -> Vec<u8> {
        self.tag("vaxpass/holder/v1", &[name.as_bytes(), dob.as_bytes()]).as_ref()[..16].to_vec()
    }

    /// The AEAD key for personal data at rest, derived from the deployment secret and apart
    /// from every other use of it.
    fn sealing_key(&self) -> aead::LessSafeKey {
        let tag = self.tag::<&[u8]>("vaxpass/seal-key/v1", &[]);
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &tag.as_ref()[..32])
            .unwrap_or_else(|_| unreachable!("32 bytes is ChaCha20-Poly1305's key length"));
        aead::LessSafeKey::new(unbound)
    }

    /// Encrypts personal data for storage: a random 96-bit nonce, then ChaCha20-Poly1305.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_bound(&[], plain)
    }

    /// A keyed hash under its own domain, for other modules' stored secrets (such as a
    /// correction request's status code).
    pub fn tag_of(&self, domain: &str, parts: &[&[u8]]) -> Vec<u8> {
        self.tag(domain, parts).as_ref().to_vec()
    }

    /// As [`DerivationKey::seal`], bound to `context` (authenticated, not stored): what was
    /// sealed for one record does not open as another's.
    pub fn seal_bound(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(|_| SealError)?;
        let mut out = plain.to_vec();
        self.sealing_key()
            .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(context), &mut out)
            .map_err(|_| SealError)?;
        let mut sealed = nonce.to_vec();
        sealed.extend(out);
        Ok(sealed)
    }

    /// Decrypts what [`DerivationKey::seal_bound`] sealed for the same `context`.
    pub fn open_bound(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(aead::NONCE_LEN)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self.sealing_key().open_in_place(nonce, aead::Aad::from(context), &mut body).ok()?;
        Some(plain.to_vec())
    }

    /// Decrypts what [`DerivationKey::seal`] made; `None` if it was not made with this secret
    /// or was altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_bound(&[], sealed)
    }
}

/// A claim code from a keyed hash: [`CLAIM_LEN`] characters of [`CLAIM_ALPHABET`].
fn claim_code_of(tag: &hmac::Tag) -> String {
    tag.as_ref()
        .iter()
        .take(CLAIM_LEN)
        .map(|b| char::from(CLAIM_ALPHABET[usize::from(*b) % CLAIM_ALPHABET.len()]))
        .collect()
}

/// No system randomness to seal with.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no system randomness to encrypt personal data")]
pub struct SealError;

fn with_doses<'a>(person: &[&'a [u8]], doses: &[passport::Dose]) -> Vec<std::borrow::Cow<'a, [u8]>> {
    let mut parts: Vec<std::borrow::Cow<'a, [u8]>> = person.iter().map(|p| std::borrow::Cow::Borrowed(*p)).collect();
    for d in doses {
        parts.push(std::borrow::Cow::Owned(format!("{}|{}", d.date, d.vaccine.mp).into_bytes()));
    }
    parts
}
