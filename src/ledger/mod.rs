//! The dose ledger (SPEC §8.1–§8.3): what a batch row does to a person's doses, which doses a
//! person's passport covers, and what becomes of their earlier passports. Pure decisions over
//! what the store returns, so they can be tested (and property-tested) without a database;
//! the gate feeds them, the store keeps their results.

use std::collections::{HashMap, HashSet};

use time::Date;

use crate::passport::{Dose, Vaccine};

/// Minimum days between two doses (SPEC §5 `DOSE_SEQUENCE`).
pub const MIN_DOSE_INTERVAL_DAYS: i64 = 14;

/// A person as the ledger keys them: the keyed hash of their identity (16 bytes), never the
/// number itself.
pub type PersonHash = Vec<u8>;

/// One accepted dose row as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDose {
    /// The vaccination platform's `record_id`, unique nationally: the ledger's key.
    pub record_id: String,
    /// Whose dose.
    pub person: PersonHash,
    /// The facility that gave the dose (`facility_code` of the row).
    pub facility_code: String,
    /// The dose.
    pub dose: Dose,
}

impl LedgerDose {
    /// Whether `other` says the same thing of the same record: person, product and date
    /// (SPEC §8.1; the facility is not part of the dose's content).
    pub fn same_dose(&self, other: &LedgerDose) -> bool {
        self.record_id == other.record_id
            && self.person == other.person
            && self.dose.date == other.dose.date
            && self.dose.vaccine.mp == other.dose.vaccine.mp
    }
}

/// What a batch row is to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A record id the ledger does not hold: a new dose.
    New,
    /// The ledger holds this record with the same person, product and date: nothing changes.
    Known,
    /// The ledger holds this record with another person, product or date: the row corrects
    /// it (once it passed the gate).
    Correction {
        /// The entry it replaces.
        previous: LedgerDose,
    },
}

/// Classifies `row` against the ledger's entry under its record id.
pub fn classify(row: &LedgerDose, existing: Option<&LedgerDose>) -> RowKind {
    match existing {
        None => RowKind::New,
        Some(e) if e.same_dose(row) => RowKind::Known,
        Some(e) => RowKind::Correction { previous: e.clone() },
    }
}

/// Why a batch row was not added to a person's doses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesRejection {
    /// The same product and date as a dose already kept (`DUPLICATE_DOSE`).
    Duplicate,
    /// Less than [`MIN_DOSE_INTERVAL_DAYS`] from a dose already kept (`DOSE_SEQUENCE`).
    TooSoon,
}

/// One batch row of a person, for [`merge`].
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Position in the file, for "later row in file order".
    pub order: u64,
    /// The row as a ledger entry.
    pub entry: LedgerDose,
    /// What it is to the ledger.
    pub kind: RowKind,
}

/// A person's doses after a batch: what [`merge`] decided.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// The person's doses: the kept ledger entries and the accepted rows, distinct by
    /// (date, product), in date order.
    pub doses: Vec<LedgerDose>,
    /// Indexes (into the candidates) of the rows accepted: known, new or corrections.
    pub accepted: Vec<usize>,
    /// Indexes of the rows refused, with the reason.
    pub rejected: Vec<(usize, SeriesRejection)>,
}

/// Merges a person's batch rows into the doses the ledger keeps for them (SPEC §8.1).
///
/// `kept` are the person's ledger entries that stay (the caller has taken out those that a
/// correction in this batch reassigns). Ledger doses are never refused: they were accepted
/// before. The new rows and corrections are taken in date order (ties in file order) and
/// refused as `Duplicate` when a kept dose has the same date and product, as `TooSoon` when
/// a kept dose lies less than 14 days away — before or after, since a late entry may fall
/// between doses already kept. Without ledger doses this is SPEC §5's rule: of two doses too
/// close together, the earlier is kept. A known row is the kept entry itself.
pub fn merge(kept: Vec<LedgerDose>, candidates: &[Candidate]) -> Merged {
    let mut out = Merged { doses: kept, ..Merged::default() };
    let known: HashSet<&str> = out.doses.iter().map(|d| d.record_id.as_str()).collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        x.entry.dose.date.cmp(&y.entry.dose.date).then(x.order.cmp(&y.order))
    });
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut added = Vec::new();
    for i in order {
        let c = &candidates[i];
        let id = c.entry.record_id.as_str();
        if c.kind == RowKind::Known && known.contains(id) && seen_ids.insert(id) {
            out.accepted.push(i);
            continue;
        }
        let d = &c.entry.dose;
        let all = out.doses.iter().chain(added.iter());
        let mut verdict = None;
        for k in all {
            let k: &LedgerDose = k;
            if k.dose.date == d.date && k.dose.vaccine.mp == d.vaccine.mp {
                verdict = Some(SeriesRejection::Duplicate);
                break;
            }
            if (k.dose.date - d.date).whole_days().abs() < MIN_DOSE_INTERVAL_DAYS {
                verdict = verdict.or(Some(SeriesRejection::TooSoon));
            }
        }
        // The same record id twice in one batch: the first row stands.
        if verdict.is_none() && !seen_ids.insert(id) {
            verdict = Some(SeriesRejection::Duplicate);
        }
        match verdict {
            Some(v) => out.rejected.push((i, v)),
            None => {
                out.accepted.push(i);
                added.push(c.entry.clone());
            }
        }
    }
    out.doses.extend(added);
    out.doses.sort_by(|a, b| {
        a.dose.date.cmp(&b.dose.date).then(a.dose.vaccine.mp.cmp(b.dose.vaccine.mp)).then(a.record_id.cmp(&b.record_id))
    });
    out.doses.dedup_by(|a, b| a.dose.date == b.dose.date && a.dose.vaccine.mp == b.dose.vaccine.mp);
    out.accepted.sort_unstable();
    out.rejected.sort_unstable_by_key(|r| r.0);
    out
}

/// The status of a stored passport (SPEC §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassportStatus {
    /// The person's newest passport.
    Current,
    /// An earlier passport that only lacks doses the newer one adds: still valid.
    Superseded,
    /// Carries a dose, name or birth date that is no longer true: revoked (`corrected`).
    Revoked,
}

impl PassportStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PassportStatus::Current => "current",
            PassportStatus::Superseded => "superseded",
            PassportStatus::Revoked => "revoked",
        }
    }

    /// From its stored form.
    pub fn parse(s: &str) -> Option<PassportStatus> {
        match s {
            "current" => Some(PassportStatus::Current),
            "superseded" => Some(PassportStatus::Superseded),
            "revoked" => Some(PassportStatus::Revoked),
            _ => None,
        }
    }
}

/// One dose as a passport carries it: the record and what the passport says of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoveredDose {
    /// `record_id`.
    pub record_id: String,
    /// `dt`, `yyyy-mm-dd`.
    pub date: String,
    /// `mp`.
    pub mp: String,
}

impl CoveredDose {
    /// What a passport says of a ledger entry.
    pub fn of(d: &LedgerDose) -> CoveredDose {
        CoveredDose { record_id: d.record_id.clone(), date: iso(d.dose.date), mp: d.dose.vaccine.mp.to_owned() }
    }

    /// Whether this is what a passport says of `d`: `self == &CoveredDose::of(d)`, without
    /// building it.
    pub fn says(&self, d: &LedgerDose) -> bool {
        self.record_id == d.record_id && self.mp == d.dose.vaccine.mp && iso_is(&self.date, d.dose.date)
    }
}

/// Whether `text` is [`iso`]`(date)`.
fn iso_is(text: &str, date: Date) -> bool {
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return text == iso(date);
    }
    let (y, m, d) = (year as u32, u32::from(u8::from(date.month())), u32::from(date.day()));
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let expected = [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(d / 10),
        digit(d),
    ];
    text.as_bytes() == expected
}

/// A stored passport as the ledger's decisions need it.
#[derive(Clone, PartialEq, Eq)]
pub struct PassportRecord {
    /// `ci`.
    pub uvci: String,
    /// Whose.
    pub person: PersonHash,
    /// Keyed hash of the name and birth date it carries.
    pub holder_hash: Vec<u8>,
    /// Keyed hash of everything it says that can change (holder, doses, history).
    pub content_hash: Vec<u8>,
    /// The doses it carries.
    pub doses: Vec<CoveredDose>,
    /// Its status.
    pub status: PassportStatus,
    /// The DSC's kid, base64.
    pub kid: String,
    /// The QR text: empty as [`Ledger::passports_of`] returns it (a batch reads every person's
    /// passports but hands out only the few it reuses; see [`Ledger::hc1_of`]).
    pub hc1: String,
    /// When it was signed (`iat`, Unix seconds).
    pub signed_at: i64,
}

impl std::fmt::Debug for PassportRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassportRecord {{ uvci: {:?}, status: {:?}, .. }}", self.uvci, self.status)
    }
}

/// What becomes of an earlier passport once the person's doses are `doses` and their new
/// passport names `holder_hash` (SPEC §8.2): superseded when every dose it carries is still
/// in the ledger unchanged and it names the same holder; revoked otherwise.
pub fn fate(earlier: &PassportRecord, doses: &[LedgerDose], holder_hash: Option<&[u8]>) -> PassportStatus {
    if earlier.status == PassportStatus::Revoked {
        return PassportStatus::Revoked;
    }
    // Compared in place: a follow-up batch decides this for every earlier passport of every
    // person, and building each person's doses as `CoveredDose`s (three strings each) was
    // most of the allocations of its merge (`perf`, 1 million persons). A person has a
    // handful of doses, so a scan beats a map; the last entry of a record stands, as in a map.
    let unchanged = earlier
        .doses
        .iter()
        .all(|c| doses.iter().rev().find(|d| d.record_id == c.record_id).is_some_and(|d| c.says(d)));
    if unchanged && holder_hash == Some(earlier.holder_hash.as_slice()) {
        PassportStatus::Superseded
    } else {
        PassportStatus::Revoked
    }
}

/// One transaction's worth of a run's changes (see [`Ledger::apply`]).
#[derive(Debug, Default)]
pub struct LedgerChange<'a> {
    /// The batch or retraction run.
    pub run_id: &'a str,
    /// The signing facility's code (of new passports).
    pub facility_code: &'a str,
    /// Who retracts and revokes, when not the signing facility: `ministry`.
    pub acting_for: Option<&'a str>,
    /// The signing key's kid (base64), or `admin`.
    pub kid: &'a str,
    /// When (Unix seconds).
    pub at: i64,
    /// Ledger entries to write (new records and corrections), with the batch that brought them.
    pub doses: Vec<&'a LedgerDose>,
    /// Records to retract, with their owner and why.
    pub retracted: Vec<(&'a LedgerDose, &'a str)>,
    /// Sealed identities of the persons concerned.
    pub persons: Vec<(&'a [u8], &'a [u8])>,
    /// New passports.
    pub passports: Vec<&'a SignedPassport>,
    /// Earlier passports whose status changes. A revocation is written to the passport; a
    /// passport superseded is only counted, because `currents` moves its holder's pointer.
    pub fates: Vec<(&'a str, PassportStatus)>,
    /// Persons whose current passport is now this UVCI (a passport signed for them now).
    pub currents: Vec<(&'a [u8], &'a str)>,
}

impl LedgerChange<'_> {
    /// Who the audit log names for retractions and revocations.
    pub fn actor(&self) -> &str {
        self.acting_for.unwrap_or(self.facility_code)
    }
}

/// What a run did to earlier passports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunChanges {
    /// UVCIs revoked, sorted.
    pub revoked: Vec<String>,
    /// How many were superseded.
    pub superseded: u64,
}

/// A signed passport as `passports.jsonl` lists it (SPEC §6), plus what the store keeps of
/// it (not serialised): keyed hashes, and the doses it covers for later decisions.
#[derive(Clone, serde::Serialize)]
pub struct SignedPassport {
    /// `ci`.
    pub uvci: String,
    /// The registry's 12-digit number (or the foreigner's passport number).
    pub id_number: String,
    /// Every record the passport covers, from whichever batch it came (SPEC §8.1).
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
    /// The ledger's key of the holder (empty for passports signed outside the ledger).
    #[serde(skip)]
    pub person_hash: PersonHash,
    /// Keyed hash of the name and birth date it carries.
    #[serde(skip)]
    pub holder_hash: Vec<u8>,
    /// Keyed hash of all it says that can change.
    #[serde(skip)]
    pub content_hash: Vec<u8>,
    /// The doses it carries.
    #[serde(skip)]
    pub covered: Vec<CoveredDose>,
}

impl std::fmt::Debug for SignedPassport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedPassport {{ uvci: {:?}, .. }}", self.uvci)
    }
}

/// A failure of the storage behind a [`Ledger`].
pub type LedgerError = Box<dyn std::error::Error + Send + Sync>;

/// What the ledger's users need of storage: the store implements it, the gate and the
/// retraction use it, neither knowing the other.
pub trait Ledger: Send {
    /// Waits until no other run (another process, another service instance) holds the
    /// ledger, then holds it until [`Ledger::unlock_runs`] or until this handle is dropped. A run reads every person's doses
    /// and passports once and records its decisions minutes later: two runs touching the
    /// same persons at once would each decide from a state the other changes.
    fn lock_runs(&mut self) -> Result<(), LedgerError>;
    /// Releases what [`Ledger::lock_runs`] holds, at the end of a run.
    fn unlock_runs(&mut self) -> Result<(), LedgerError>;
    /// Ledger entries under these record ids.
    fn by_record(&mut self, record_ids: &[&str]) -> Result<Vec<LedgerDose>, LedgerError>;
    /// Ledger entries of these persons.
    fn by_person(&mut self, persons: &[&[u8]]) -> Result<Vec<LedgerDose>, LedgerError>;
    /// The sealed identities of these persons.
    fn sealed_persons(&mut self, persons: &[&[u8]]) -> Result<HashMap<PersonHash, Vec<u8>>, LedgerError>;
    /// Every passport of these persons signed since the ledger exists, without its `hc1`.
    fn passports_of(&mut self, persons: &[&[u8]]) -> Result<Vec<PassportRecord>, LedgerError>;
    /// The QR texts of these passports.
    fn hc1_of(&mut self, uvcis: &[&str]) -> Result<HashMap<String, String>, LedgerError>;
    /// Persons a run already touched (a run started again after a kill takes them up).
    fn persons_of_run(&mut self, run_id: &str) -> Result<Vec<PersonHash>, LedgerError>;
    /// Records a retraction run already removed.
    fn retracted_by_run(&mut self, run_id: &str) -> Result<Vec<String>, LedgerError>;
    /// What a run did to earlier passports.
    fn run_changes(&mut self, run_id: &str) -> Result<RunChanges, LedgerError>;
    /// The kids (base64) of revoked facility DSCs: a passport they signed is never handed out
    /// again as a person's current one.
    fn revoked_signers(&mut self) -> Result<HashSet<String>, LedgerError>;
    /// Applies one chunk atomically; returns the stored `hc1` of UVCIs already present.
    fn apply(&mut self, change: &LedgerChange<'_>) -> Result<HashMap<String, String>, LedgerError>;
}

/// `yyyy-mm-dd`.
pub fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses a stored `yyyy-mm-dd` and `mp` back into a dose; `None` for what vaxpass never
/// writes.
pub fn parse_dose(date: &str, mp: &str) -> Option<Dose> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(date, format).ok()?;
    let vaccine: &'static Vaccine = crate::passport::vaccines::by_mp(mp)?;
    Some(Dose { vaccine, date })
}

#[cfg(test)]
mod tests;
