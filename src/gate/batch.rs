//! Running a batch: read and check every row, group persons, then sign their passports in
//! parallel, reusing passports the sink already has (a resumed or repeated run re-signs
//! nothing, so it ends with the same passports).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use rayon::prelude::*;
use ring::{aead, hmac};
use serde::Serialize;
use time::OffsetDateTime;

use super::checks::{AcceptedRow, PersonKey, RowIdentity, check_row};
use super::registry::Registry;
use super::rows::{DoseReader, RawRow};
use super::signer::{FacilitySigner, ISSUER};
use super::{GateError, Rejection, people};
use crate::ledger::{Ledger, SignedPassport};
use crate::passport;
use crate::pki::SignatureAlgorithm;

/// Default passport lifetime: 365 days (SPEC §3; Decision 5772: valid 12 months).
pub const PASSPORT_LIFETIME_SECS: i64 = 365 * 86_400;

/// Default persons signed per round trip to the sink (one database transaction). The
/// identity-hash index takes keys in random order, so each transaction rewrites most of the
/// index pages it touches: 32 768 passports per transaction measured 1.8× cheaper per
/// passport than 4 096 at 1 million persons. A killed run loses at most two chunks of signing.
pub const PERSONS_PER_COMMIT: usize = 32_768;

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
    pub(super) fn uvci_opaque(&self, person: &[&[u8]], doses: &[passport::Dose]) -> String {
        passport::uvci::opaque_from_digest(self.tag("vaxpass/uvci/v2", &with_doses(person, doses)).as_ref())
    }

    /// What a passport says that can change, without the signing key: a person whose current
    /// passport has the same content hash keeps it, whoever signs the next batch.
    pub(super) fn content_hash(&self, person: &[&[u8]], doses: &[passport::Dose]) -> Vec<u8> {
        self.tag("vaxpass/content/v1", &with_doses(person, doses)).as_ref()[..16].to_vec()
    }

    /// The name and birth date a passport carries (SPEC §8.2: a passport naming another
    /// holder than the newest is revoked).
    pub(super) fn holder_hash(&self, name: &str, dob: &str) -> Vec<u8> {
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

/// The signing facility: its key, DSC and code, loaded and checked once.
pub struct SigningFacility {
    /// Who signs: the facility's key, DSC and code.
    pub signer: FacilitySigner,
    /// The derivation key.
    pub secret: DerivationKey,
    /// `is` of every passport.
    pub issuer: String,
    /// Whether to write the dose history claim.
    pub include_history: bool,
    /// The signing time (`iat`).
    pub now: OffsetDateTime,
    /// Persons signed per round trip to the sink (one database transaction); at least 1.
    pub persons_per_commit: usize,
}

impl SigningFacility {
    /// A run of `signer` at `now` with the deployment's `secret` and the defaults: issuer
    /// [`ISSUER`], the dose history written, [`PERSONS_PER_COMMIT`] persons per transaction.
    pub fn new(signer: FacilitySigner, secret: DerivationKey, now: OffsetDateTime) -> SigningFacility {
        SigningFacility {
            signer,
            secret,
            issuer: ISSUER.to_owned(),
            include_history: true,
            now,
            persons_per_commit: PERSONS_PER_COMMIT,
        }
    }

    /// The passport algorithm the facility's key implies (SPEC §10): P-256 keys sign ES256,
    /// RSA keys PS256.
    pub(crate) fn algorithm(&self) -> passport::Algorithm {
        match self.signer.key.algorithm() {
            SignatureAlgorithm::Es256 => passport::Algorithm::Es256,
            SignatureAlgorithm::Ps256 => passport::Algorithm::Ps256,
        }
    }
}

impl std::fmt::Debug for SigningFacility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningFacility {{ facility_code: {:?} }}", self.signer.facility_code)
    }
}

/// Where a batch's results go. `Send`, because it is fed from a writer thread while the
/// next chunk is being signed.
pub trait BatchSink: Send {
    /// The run's identifier (a batch id, a retraction's id): the same when the same run is
    /// started again, so that it finds what it already did.
    fn run_id(&self) -> &str;
    /// The ledger the run reads and records into (SPEC §8).
    fn ledger(&mut self) -> &mut dyn Ledger;
    /// A rejected row.
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), GateError>;
    /// Passports of one chunk, in a stable order, once the ledger recorded them; `fresh[i]`
    /// says whether `passports[i]` was signed just now or was the person's current passport
    /// already. Owned, so that a sink can hand them on to another thread without copying.
    fn signed(&mut self, passports: Vec<SignedPassport>, fresh: Vec<bool>) -> Result<(), GateError>;
    /// Progress after each chunk: persons done of total.
    fn progress(&mut self, _done: u64, _total: u64) {}
}

/// The counts of `summary.json` (SPEC §6).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Rows read.
    pub input_rows: u64,
    /// Rows that went into a passport.
    pub signed_rows: u64,
    /// Rows rejected.
    pub rejected_rows: u64,
    /// Passports (persons).
    pub passports: u64,
    /// Rejected rows by reason code.
    pub by_reason: BTreeMap<String, u64>,
    /// Earlier passports this run revoked (SPEC §8.2).
    pub revoked: u64,
    /// Earlier passports this run superseded.
    pub superseded: u64,
    /// The UVCIs revoked, sorted (for `revoked.csv`).
    #[serde(skip)]
    pub revoked_uvcis: Vec<String>,
    /// Passports reused from an earlier run rather than signed now.
    #[serde(skip)]
    pub reused: u64,
    /// Wall time of each phase of the run, in order (for `--timings` and benchmarks).
    #[serde(skip)]
    pub phases: Vec<(&'static str, std::time::Duration)>,
}

/// Rows checked per parallel block: large enough to keep both cores busy, small enough
/// that memory is bounded by the accepted rows, not by the input file.
const CHECK_BLOCK: usize = 16_384;

/// Runs a batch over `doses`, checking against `registry` when given.
///
/// Memory: the accepted rows (about 80 bytes each plus the record id) and one UVCI per
/// person are held until signing, because a person's rows may be anywhere in the file;
/// rejected rows go straight to the sink.
pub fn run<R: Read + Send>(
    doses: DoseReader<R>,
    registry: Option<&Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
) -> Result<Summary, GateError> {
    let today = facility.now.date();
    let mut summary = Summary::default();
    let mut clock = std::time::Instant::now();
    let mut lap = |summary: &mut Summary, phase: &'static str| {
        let now = std::time::Instant::now();
        summary.phases.push((phase, now - clock));
        clock = now;
    };
    let (accepted, identities) = check_rows(doses, registry, today, sink, &mut summary)?;
    lap(&mut summary, "read and check rows");
    // From the first read of the ledger to the last write, this run holds it alone.
    let recorded = people::from_batch(accepted, registry, &identities, facility, sink, &mut summary).and_then(|work| {
        lap(&mut summary, "merge with the ledger");
        people::sign_and_record(work, facility, None, sink, &mut summary)
    });
    let unlocked = sink.ledger().unlock_runs().map_err(|e| GateError::sink("releasing the ledger", e));
    let (_, writer_busy) = recorded?;
    unlocked?;
    lap(&mut summary, "sign and record");
    summary.phases.push(("  of which the writer was busy recording", writer_busy));
    Ok(summary)
}

/// The first phase of a run: every row of `doses` parsed and checked on its own (SPEC §5 up
/// to `BAD_DATE`; the per-person checks come with the ledger), rejections counted and handed
/// to the sink in file order. Returns the accepted rows and the first identity each person
/// was typed with.
fn check_rows<R: Read + Send>(
    mut doses: DoseReader<R>,
    registry: Option<&Registry>,
    today: time::Date,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<(Vec<AcceptedRow>, HashMap<PersonKey, RowIdentity>), GateError> {
    let mut accepted = Vec::new();
    let mut identities: HashMap<PersonKey, RowIdentity> = HashMap::new();
    // One thread splits the file into rows, block by block; the pool parses and checks the
    // previous block meanwhile. Rows are accounted in file order.
    let parser = doses.parser();
    std::thread::scope(|scope| -> Result<(), GateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(2);
        let reader = std::thread::Builder::new()
            .name("vaxpass-reader".into())
            .spawn_scoped(scope, move || -> Result<(), GateError> {
                loop {
                    let mut block = Vec::with_capacity(CHECK_BLOCK);
                    while block.len() < CHECK_BLOCK {
                        match doses.next_raw()? {
                            Some(raw) => block.push(raw),
                            None => break,
                        }
                    }
                    if block.is_empty() || tx.send(block).is_err() {
                        return Ok(());
                    }
                }
            })
            .map_err(|source| GateError::Io { context: "cannot start the reader thread", source })?;
        let mut outcome = Ok(());
        for block in rx {
            let first = summary.input_rows;
            summary.input_rows += block.len() as u64;
            let checked: Vec<_> = block
                .into_par_iter()
                .enumerate()
                .map(|(i, raw)| match raw {
                    RawRow::Record(record) => {
                        parser.parse(&record).and_then(|row| check_row(&row, first + i as u64, registry, today))
                    }
                    RawRow::Unreadable(r) => Err(r),
                })
                .collect();
            outcome = checked.into_iter().try_for_each(|c| match c {
                Ok((acc, identity)) => {
                    if let Some(identity) = identity {
                        identities.entry(acc.person.clone()).or_insert(identity);
                    }
                    accepted.push(acc);
                    Ok(())
                }
                Err(r) => reject(summary, &r, sink),
            });
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver (on an error above) stops the reader at its next block.
        let read = reader.join().map_err(|_| GateError::Invariant("the reader thread panicked"))?;
        outcome.and(read)
    })?;
    Ok((accepted, identities))
}

/// Counts a rejected row and hands it to the sink.
pub(super) fn reject(summary: &mut Summary, r: &Rejection, sink: &mut dyn BatchSink) -> Result<(), GateError> {
    summary.rejected_rows += 1;
    *summary.by_reason.entry(r.reason.as_str().to_owned()).or_default() += 1;
    sink.rejected(r)
}
