//! Running a batch: read and check every row, group persons, then sign their passports in
//! parallel, reusing passports the sink already has (a resumed or repeated run re-signs
//! nothing, so it ends with the same passports).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use rayon::prelude::*;
use ring::hmac;
use serde::Serialize;
use time::OffsetDateTime;

use super::checks::{PersonKey, RowIdentity, check_row};
use super::registry::Registry;
use super::rows::{DoseReader, RawRow, bad_row};
use super::series::{DoseSeries, group};
use super::{GateError, Rejection};
use crate::passport::{self, Algorithm, MAX_HC1_LEN_Q, PassportContent, Person, Uvci, number_doses};
use crate::pki::{Certificate, SigningKey};

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

    fn tag(&self, domain: &str, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(domain.as_bytes());
        for p in parts {
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

    /// The claim code of a passport: derived, so a resumed run prints the same one.
    pub fn claim_code(&self, uvci: &str) -> String {
        let tag = self.tag("vaxpass/claim-code/v1", &[uvci.as_bytes()]);
        tag.as_ref()
            .iter()
            .take(CLAIM_LEN)
            .map(|b| char::from(CLAIM_ALPHABET[usize::from(*b) % CLAIM_ALPHABET.len()]))
            .collect()
    }

    /// Hash of a claim code, as stored.
    pub fn claim_hash(&self, claim_code: &str) -> Vec<u8> {
        self.tag("vaxpass/claim-hash/v1", &[claim_code.as_bytes()]).as_ref().to_vec()
    }

    /// The opaque part of a UVCI: a keyed hash of everything the passport says that can
    /// change (the person's number, name and birth date as signed, the doses, whether the
    /// history is included) and of the signing key, so that a re-run maps to the same UVCI,
    /// and a corrected name or a new key to a new passport.
    fn uvci_opaque(&self, person: &[&[u8]], doses: &[passport::Dose]) -> String {
        let mut parts: Vec<Vec<u8>> = person.iter().map(|p| p.to_vec()).collect();
        for d in doses {
            parts.push(format!("{}|{}", d.date, d.vaccine.mp).into_bytes());
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        passport::uvci::opaque_from_digest(self.tag("vaxpass/uvci/v2", &refs).as_ref())
    }
}

/// The signing facility: its key, DSC and code, loaded and checked once.
pub struct SigningFacility {
    /// The facility's key.
    pub key: SigningKey,
    /// Its DSC.
    pub cert: Certificate,
    /// Its facility code (from the DSC).
    pub facility_code: String,
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

impl std::fmt::Debug for SigningFacility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningFacility {{ facility_code: {:?} }}", self.facility_code)
    }
}

/// A signed passport as `passports.jsonl` lists it (SPEC §6), plus the keyed hashes the
/// store keeps (not serialised).
#[derive(Clone, Serialize)]
pub struct SignedPassport {
    /// `ci`.
    pub uvci: String,
    /// The registry's 12-digit number (or the foreigner's passport number).
    pub id_number: String,
    /// The rows it was signed from.
    pub record_ids: Vec<String>,
    /// The QR text.
    pub hc1: String,
    /// kid, base64.
    pub kid: String,
    /// The one-time code the facility gives the person.
    pub claim_code: String,
    /// Keyed hash of `id_number`.
    #[serde(skip)]
    pub id_hash: Vec<u8>,
    /// Hash of `claim_code`.
    #[serde(skip)]
    pub claim_hash: Vec<u8>,
}

impl std::fmt::Debug for SignedPassport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedPassport {{ uvci: {:?}, .. }}", self.uvci)
    }
}

/// Where a batch's results go. `Send`, because it is fed from a writer thread while the
/// next chunk is being signed.
pub trait BatchSink: Send {
    /// A rejected row.
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), GateError>;
    /// The QR texts (`hc1`) already signed under these UVCIs, by an earlier or interrupted
    /// run: reused as they are, so the run ends with the same passports. Called once, with
    /// every UVCI of the batch, before signing starts.
    fn already_signed(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, GateError>;
    /// Passports of one chunk, in a stable order; `fresh[i]` says whether `passports[i]` was
    /// signed just now (and must be recorded) or reused. Owned, so that a sink can hand them
    /// on to another thread without copying.
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
    mut doses: DoseReader<R>,
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
    let mut accepted = Vec::new();
    let mut identities: HashMap<PersonKey, RowIdentity> = HashMap::new();
    let reject = |summary: &mut Summary, r: &Rejection, sink: &mut dyn BatchSink| -> Result<(), GateError> {
        summary.rejected_rows += 1;
        *summary.by_reason.entry(r.reason.as_str().to_owned()).or_default() += 1;
        sink.rejected(r)
    };
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
            .map_err(|e| GateError::Io(format!("cannot start the reader: {e}")))?;
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
                Err(r) => reject(&mut summary, &r, sink),
            });
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver (on an error above) stops the reader at its next block.
        let read = reader.join().map_err(|_| GateError::Io("the reader panicked".into()))?;
        outcome.and(read)
    })?;
    lap(&mut summary, "read and check rows");
    let (grouped, late_rejections) = group(accepted);
    for r in &late_rejections {
        reject(&mut summary, r, sink)?;
    }

    // UVCIs only, for every person: the one lookup of passports already signed needs them
    // all; the passports' content is built chunk by chunk, to bound memory.
    // A person without a UVCI would leave their rows in neither output: stop instead.
    // With each UVCI, the length the passport will have: one that no QR code at level Q
    // holds cannot be printed, so its rows are rejected now, before anything is signed or
    // looked up (issue #8, item 13). Estimated without signing ([`passport::estimated_hc1_len`]):
    // a passport of ordinary size is bounded without even compressing it.
    let uvcis: Vec<(Uvci, usize)> = grouped
        .par_iter()
        .map(|s| {
            let identity = identify(s, registry, &identities)?;
            let uvci = uvci_for(&identity, s, facility)?;
            let content = passport_content(identity.person, s, uvci.clone(), facility);
            let len = passport::estimated_hc1_len(&content, Algorithm::Es256, &facility.cert.kid.0)?;
            Some((uvci, len))
        })
        .collect::<Option<_>>()
        .ok_or(GateError::Invariant("a person's UVCI could not be derived"))?;
    let mut persons: Vec<(Uvci, DoseSeries)> = Vec::with_capacity(grouped.len());
    for ((uvci, len), s) in uvcis.into_iter().zip(grouped) {
        if len + passport::HC1_LEN_ESTIMATE_MARGIN <= MAX_HC1_LEN_Q {
            persons.push((uvci, s));
            continue;
        }
        for record_id in s.record_ids {
            let detail = format!(
                "the passport would be about {len} characters; a QR code at error correction level Q holds {MAX_HC1_LEN_Q}"
            );
            reject(&mut summary, &bad_row(record_id, detail), sink)?;
        }
    }
    lap(&mut summary, "group and derive UVCIs");
    // Signed in UVCI order, so that the store's UVCI index grows at one end instead of taking
    // keys all over its pages (in an insert test at 1 million, a randomly filled UVCI index
    // took half the insert time).
    persons.par_sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let existing = {
        let all: Vec<&str> = persons.iter().map(|(u, _)| u.as_str()).collect();
        sink.already_signed(&all)?
    };
    lap(&mut summary, "sort by UVCI and look up passports already signed");

    let total = persons.len() as u64;
    // The pool signs chunk n while a writer thread records chunk n−1 (database first, then
    // the output file), so storage waits overlap with signing.
    let writer_busy = std::thread::scope(|scope| -> Result<std::time::Duration, GateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<SignedPassport>, Vec<bool>, Vec<Rejection>, u64)>(1);
        let writer = std::thread::Builder::new()
            .name("vaxpass-writer".into())
            .spawn_scoped(scope, move || -> Result<std::time::Duration, GateError> {
                let mut busy = std::time::Duration::ZERO;
                for (passports, fresh, too_long, done) in rx {
                    let start = std::time::Instant::now();
                    for r in &too_long {
                        sink.rejected(r)?;
                    }
                    sink.signed(passports, fresh)?;
                    sink.progress(done, total);
                    busy += start.elapsed();
                }
                Ok(busy)
            })
            .map_err(|e| GateError::Sink(format!("cannot start the output writer: {e}")))?;
        let mut done = 0u64;
        let kid = facility.cert.kid.to_base64();
        for chunk in persons.chunks_mut(facility.persons_per_commit.max(1)) {
            let results: Vec<Result<(SignedPassport, bool), GateError>> = chunk
                .par_iter_mut()
                .map(|(uvci, s)| {
                    let p = plan(s, uvci.clone(), registry, &identities, facility)
                        .ok_or(GateError::Invariant("a person's passport content could not be built"))?;
                    match existing.get(p.content.uvci.as_str()) {
                        Some(hc1) => Ok((finish(p, facility, &kid, hc1.clone()), false)),
                        None => Ok((sign_one(p, facility, &kid)?, true)),
                    }
                })
                .collect();
            let mut passports = Vec::with_capacity(results.len());
            let mut fresh = Vec::with_capacity(results.len());
            let mut too_long = Vec::new();
            for r in results {
                let (p, f) = r?;
                // Backstop: the estimate above keeps a margin three times the spread
                // measured, so no passport should get here. Its rows are still rejected
                // rather than a passport that cannot be printed handed out.
                if p.hc1.len() > MAX_HC1_LEN_Q {
                    for record_id in p.record_ids {
                        let r = bad_row(
                            record_id,
                            format!(
                                "the passport would be {} characters, more than a QR code holds at error correction level Q ({MAX_HC1_LEN_Q})",
                                p.hc1.len()
                            ),
                        );
                        summary.rejected_rows += 1;
                        *summary.by_reason.entry(r.reason.as_str().to_owned()).or_default() += 1;
                        too_long.push(r);
                    }
                    continue;
                }
                summary.signed_rows += p.record_ids.len() as u64;
                summary.reused += u64::from(!f);
                passports.push(p);
                fresh.push(f);
            }
            summary.passports += passports.len() as u64;
            done += chunk.len() as u64;
            if tx.send((passports, fresh, too_long, done)).is_err() {
                // The writer stopped on an error; it is reported below.
                break;
            }
        }
        drop(tx);
        writer.join().map_err(|_| GateError::Sink("the output writer panicked".into()))?
    })?;
    lap(&mut summary, "sign and record");
    summary.phases.push(("  of which the writer was busy recording", writer_busy));
    Ok(summary)
}

/// What one passport will say, before signing.
struct Plan {
    content: PassportContent,
    id_number: String,
    record_ids: Vec<String>,
}

/// Who a series belongs to, as the passport names them.
struct Identity {
    person: Person,
    /// `id_number` of `passports.jsonl`.
    id_number: String,
    /// What the UVCI is derived from: the registry number, or nationality and passport.
    key_text: String,
}

fn identify(
    s: &DoseSeries,
    registry: Option<&Registry>,
    identities: &HashMap<PersonKey, RowIdentity>,
) -> Option<Identity> {
    match &s.person {
        PersonKey::Registry(i) => {
            let p = registry?.person(*i)?;
            Some(Identity {
                person: Person { full_name: p.full_name.clone(), dob: p.dob.to_iso() },
                id_number: p.id_number.clone(),
                key_text: p.id_number.clone(),
            })
        }
        key @ (PersonKey::Foreign(..) | PersonKey::Offline(_)) => {
            let ident = identities.get(key)?;
            let key_text = match key {
                PersonKey::Foreign(nat, no) => format!("F:{nat}:{no}"),
                _ => ident.id_number.clone(),
            };
            Some(Identity { person: ident.person.clone(), id_number: ident.id_number.clone(), key_text })
        }
    }
}

fn uvci_for(identity: &Identity, s: &DoseSeries, facility: &SigningFacility) -> Option<Uvci> {
    let history = [u8::from(facility.include_history)];
    let opaque = facility.secret.uvci_opaque(
        &[
            identity.key_text.as_bytes(),
            identity.person.full_name.as_bytes(),
            identity.person.dob.as_bytes(),
            &history,
            &facility.cert.kid.0,
        ],
        &s.doses,
    );
    Uvci::new(&facility.facility_code, &opaque).ok()
}

/// What a person's passport will say. Takes the series' record ids: each series is signed once.
fn plan(
    s: &mut DoseSeries,
    uvci: Uvci,
    registry: Option<&Registry>,
    identities: &HashMap<PersonKey, RowIdentity>,
    facility: &SigningFacility,
) -> Option<Plan> {
    let Identity { person, id_number, .. } = identify(s, registry, identities)?;
    Some(Plan {
        content: passport_content(person, s, uvci, facility),
        id_number,
        record_ids: std::mem::take(&mut s.record_ids),
    })
}

/// What the passport of `person` for series `s` says.
fn passport_content(person: Person, s: &DoseSeries, uvci: Uvci, facility: &SigningFacility) -> PassportContent {
    let iat = facility.now.unix_timestamp();
    let not_after = facility.cert.validity.map_or(i64::MAX, |v| v.1);
    PassportContent {
        person,
        doses: number_doses(&s.doses),
        issuer: facility.issuer.clone(),
        uvci,
        issued_at: iat,
        // Never past the DSC's notAfter (SPEC §3).
        expires_at: (iat + PASSPORT_LIFETIME_SECS).min(not_after),
        include_history: facility.include_history,
    }
}

/// Signs a planned passport; `kid` is the DSC's kid in base64.
fn sign_one(p: Plan, facility: &SigningFacility, kid: &str) -> Result<SignedPassport, GateError> {
    let hc1 = passport::sign(&p.content, Algorithm::Es256, &facility.cert.kid.0, |m| facility.key.sign(m))?
        .ok_or(GateError::Invariant("a passport without doses"))?;
    Ok(finish(p, facility, kid, hc1))
}

fn finish(p: Plan, facility: &SigningFacility, kid: &str, hc1: String) -> SignedPassport {
    let uvci = p.content.uvci.as_str().to_owned();
    let claim_code = facility.secret.claim_code(&uvci);
    SignedPassport {
        id_hash: facility.secret.id_hash(&p.id_number),
        claim_hash: facility.secret.claim_hash(&claim_code),
        uvci,
        id_number: p.id_number,
        record_ids: p.record_ids,
        hc1,
        kid: kid.to_owned(),
        claim_code,
    }
}
