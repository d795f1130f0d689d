//! Persons across runs (SPEC §8): a batch's accepted rows merged with each person's ledger
//! doses, or a retraction's records taken out of them; then, per person, the passport that
//! covers all their doses (reused when nothing it says changed, else signed anew) and the fate
//! of their earlier passports, recorded one chunk of persons per transaction.
//!
//! Why chunks hold whole "families": a correction that moves a dose from person A to person B
//! changes both. Their ledger entries, B's new passport and A's revocation and re-issue are
//! written in one transaction, so a run killed at any point leaves either all of it or none,
//! and the run started again finds the same work (nothing revoked without its replacement,
//! nothing re-issued twice).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::{BatchSink, PASSPORT_LIFETIME_SECS, SigningFacility, Summary};
use super::checks::{AcceptedRow, PersonKey, RowIdentity};
use super::registry::Registry;
use super::{GateError, RejectReason, Rejection};
use crate::ledger::{
    self, Candidate, CoveredDose, LedgerChange, LedgerDose, PassportRecord, PassportStatus, PersonHash, RowKind,
    SeriesRejection, SignedPassport,
};
use crate::passport::{self, Dose, MAX_HC1_LEN_Q, PassportContent, Person, Uvci, number_doses};

/// Who a passport names, as the ledger keeps it (sealed) so that a person can be re-issued
/// without the registry.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Holder {
    /// Name as the passport carries it.
    pub name: String,
    /// Birth date as the passport carries it.
    pub dob: String,
    /// `id_number` of `passports.jsonl`.
    pub id_number: String,
    /// What the person is keyed by: the registry number, `F:<nat>:<passport>` or the
    /// repaired number of an offline run.
    pub key_text: String,
}

/// One person's part of a run.
pub(super) struct PersonWork {
    pub hash: PersonHash,
    pub holder: Holder,
    /// All their doses after the run, date order, distinct by (date, product).
    pub doses: Vec<LedgerDose>,
    /// Ledger entries this run writes for them (new records, corrections).
    pub writes: Vec<LedgerDose>,
    /// Ledger entries this run retracts.
    pub retracted: Vec<LedgerDose>,
    /// Their passports so far.
    pub passports: Vec<PassportRecord>,
    /// Whether their sealed identity must be written whatever their current passport says
    /// (their ledger key changed with a re-issued number).
    pub reseal: bool,
    /// The ledger keys of their earlier numbers that hold some of `passports` (SPEC §8.4):
    /// a new passport becomes current for those keys too, so that the earlier number's
    /// passport reads as superseded.
    pub aliases: Vec<PersonHash>,
}

/// A run's persons, and which of them must share a transaction.
pub(super) struct Work {
    pub persons: Vec<PersonWork>,
    /// Pairs of persons (indexes) linked by a dose moved from one to the other.
    pub links: Vec<(usize, usize)>,
}

fn sink_error(e: impl Into<crate::gate::Cause>) -> GateError {
    GateError::sink("reading or writing the ledger", e)
}

/// Who a registry, foreign or offline person is.
fn identify(
    key: &PersonKey,
    registry: Option<&Registry>,
    identities: &HashMap<PersonKey, RowIdentity>,
) -> Option<Holder> {
    match key {
        PersonKey::Registry(i) => {
            let p = registry?.person(*i)?;
            Some(Holder {
                name: p.full_name.clone(),
                dob: p.dob.to_iso(),
                id_number: p.id_number.clone(),
                key_text: p.id_number.clone(),
            })
        }
        PersonKey::Foreign(nat, no) => {
            let ident = identities.get(key)?;
            Some(Holder {
                name: ident.person.full_name.clone(),
                dob: ident.person.dob.clone(),
                id_number: ident.id_number.clone(),
                key_text: format!("F:{nat}:{no}"),
            })
        }
        PersonKey::Offline(_) => {
            let ident = identities.get(key)?;
            Some(Holder {
                name: ident.person.full_name.clone(),
                dob: ident.person.dob.clone(),
                id_number: ident.id_number.clone(),
                key_text: ident.id_number.clone(),
            })
        }
    }
}

/// Groups a doses map by person.
fn by_person(entries: Vec<LedgerDose>) -> HashMap<PersonHash, Vec<LedgerDose>> {
    let mut out: HashMap<PersonHash, Vec<LedgerDose>> = HashMap::new();
    for e in entries {
        out.entry(e.person.clone()).or_default().push(e);
    }
    out
}

/// Passports by person.
fn passports_by_person(records: Vec<PassportRecord>) -> HashMap<PersonHash, Vec<PassportRecord>> {
    let mut out: HashMap<PersonHash, Vec<PassportRecord>> = HashMap::new();
    for r in records {
        out.entry(r.person.clone()).or_default().push(r);
    }
    out
}

/// Sorts a person's doses by date and keeps one per (date, product).
fn normalise(doses: &mut Vec<LedgerDose>) {
    doses.sort_by(|a, b| {
        a.dose.date.cmp(&b.dose.date).then(a.dose.vaccine.mp.cmp(b.dose.vaccine.mp)).then(a.record_id.cmp(&b.record_id))
    });
    doses.dedup_by(|a, b| a.dose.date == b.dose.date && a.dose.vaccine.mp == b.dose.vaccine.mp);
}

/// Unseals the identities of persons known only to the ledger.
fn unseal(
    facility: &SigningFacility,
    sealed: &HashMap<PersonHash, Vec<u8>>,
    hash: &PersonHash,
) -> Result<Holder, GateError> {
    let bytes = sealed.get(hash).ok_or(GateError::Invariant("a person in the ledger without a sealed identity"))?;
    let plain = facility.secret.open(bytes).ok_or(GateError::Sink {
        context: "a sealed identity does not open with this deployment secret",
        source: None,
    })?;
    serde_json::from_slice(&plain).map_err(|_| GateError::Invariant("a sealed identity that does not parse"))
}

/// Merges a batch's accepted rows with the ledger (SPEC §8.1): rows already in the ledger
/// unchanged change nothing, others are new doses or corrections, judged for duplicates and
/// the 14-day rule against the person's ledger doses too. Rejections go to the sink.
pub(super) fn from_batch(
    mut accepted: Vec<AcceptedRow>,
    registry: Option<&Registry>,
    identities: &HashMap<PersonKey, RowIdentity>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<Work, GateError> {
    // A record id is one dose (SPEC §4: unique per row): a later row of the file that repeats
    // it, for whoever, is a repeat of that dose, whatever it says.
    let mut first_rows: HashSet<String> = HashSet::with_capacity(accepted.len());
    let mut repeats = Vec::new();
    accepted.retain(|r| {
        let first = first_rows.insert(r.record_id.clone());
        if !first {
            repeats.push(Rejection {
                record_id: r.record_id.clone(),
                reason: RejectReason::DuplicateDose,
                detail: "the record_id of an earlier row of this file".into(),
                suggestion: String::new(),
            });
        }
        first
    });
    drop(first_rows);
    for r in &repeats {
        super::batch::reject(summary, r, sink)?;
    }
    accepted.par_sort_unstable_by(|a, b| a.person.cmp(&b.person).then(a.order.cmp(&b.order)));
    let mut groups: Vec<(PersonKey, Vec<AcceptedRow>)> = Vec::new();
    for row in accepted {
        match groups.last_mut() {
            Some((k, rows)) if *k == row.person => rows.push(row),
            _ => groups.push((row.person.clone(), vec![row])),
        }
    }
    // A person without an identity would leave their rows in neither output: stop instead.
    let holders: Vec<Holder> = groups
        .par_iter()
        .map(|(k, _)| identify(k, registry, identities))
        .collect::<Option<_>>()
        .ok_or(GateError::Invariant("a person's identity could not be derived"))?;
    let hashes: Vec<PersonHash> = holders.par_iter().map(|h| facility.secret.id_hash(&h.key_text)).collect();

    // A person whose number was re-issued (SPEC §8.4) may have ledger entries and passports
    // under the key of an earlier number: they are read with the person's and re-keyed.
    let alias_of: HashMap<PersonHash, PersonHash> = match registry {
        Some(reg) => {
            let batch_index: HashMap<u32, usize> = groups
                .iter()
                .enumerate()
                .filter_map(|(g, (k, _))| match k {
                    PersonKey::Registry(i) => Some((*i, g)),
                    _ => None,
                })
                .collect();
            reg.previous_ids()
                .filter_map(|(number, i)| {
                    batch_index.get(&i).map(|&g| (facility.secret.id_hash(&number), hashes[g].clone()))
                })
                .collect()
        }
        None => HashMap::new(),
    };
    let canonical = |mut d: LedgerDose| {
        if let Some(h) = alias_of.get(&d.person) {
            d.person.clone_from(h);
        }
        d
    };
    let run_id = sink.run_id().to_owned();
    let ledger = sink.ledger();
    ledger.lock_runs().map_err(sink_error)?;
    let record_ids: Vec<&str> = groups.iter().flat_map(|(_, rows)| rows.iter().map(|r| r.record_id.as_str())).collect();
    let stored: HashMap<String, LedgerDose> = ledger
        .by_record(&record_ids)
        .map_err(sink_error)?
        .into_iter()
        .map(|d| (d.record_id.clone(), canonical(d)))
        .collect();
    drop(record_ids);
    // The rows become candidates (their strings moved, not copied: at 1 million persons the
    // batch's rows are the largest thing held).
    let n_groups = groups.len();
    let mut candidates: Vec<Vec<Candidate>> = Vec::with_capacity(n_groups);
    let mut foreign_records = Vec::new();
    for ((_, rows), hash) in groups.into_iter().zip(&hashes) {
        let mut cands = Vec::with_capacity(rows.len());
        for r in rows {
            let entry = LedgerDose {
                record_id: r.record_id,
                person: hash.clone(),
                facility_code: r.facility_code,
                dose: r.dose,
            };
            let kind = ledger::classify(&entry, stored.get(&entry.record_id));
            // A record belongs to the facility that gave the dose: a row naming another
            // facility cannot rewrite it (nor, through it, take the right to retract it).
            if let RowKind::Correction { previous } = &kind
                && previous.facility_code != entry.facility_code
            {
                foreign_records.push(Rejection {
                    record_id: entry.record_id,
                    reason: RejectReason::BadRow,
                    detail: "the record_id is another facility's dose record; only rows of that facility correct it"
                        .into(),
                    suggestion: String::new(),
                });
                continue;
            }
            cands.push(Candidate { order: r.order, entry, kind });
        }
        candidates.push(cands);
    }
    for r in &foreign_records {
        super::batch::reject(summary, r, sink)?;
    }
    let ledger = sink.ledger();
    let reassigned: HashSet<&str> = candidates
        .iter()
        .flatten()
        .filter(|c| matches!(c.kind, RowKind::Correction { .. }))
        .map(|c| c.entry.record_id.as_str())
        .collect();
    let in_batch: HashMap<&PersonHash, usize> = hashes.iter().enumerate().map(|(i, h)| (h, i)).collect();
    // Persons outside the batch whom a correction may take a dose from, and those a killed
    // run of this batch already touched.
    let mut others: Vec<PersonHash> = candidates
        .iter()
        .flatten()
        .filter_map(|c| match &c.kind {
            RowKind::Correction { previous } if !in_batch.contains_key(&previous.person) => {
                Some(previous.person.clone())
            }
            _ => None,
        })
        .chain(ledger.persons_of_run(&run_id).map_err(sink_error)?.into_iter().filter(|h| !in_batch.contains_key(h)))
        .collect();
    others.sort_unstable();
    others.dedup();
    let all: Vec<&[u8]> = hashes.iter().chain(&others).chain(alias_of.keys()).map(Vec::as_slice).collect();
    let found = ledger.by_person(&all).map_err(sink_error)?;
    // Entries under an earlier number's key are written again under the person's own.
    let mut rekeyed: HashMap<PersonHash, Vec<LedgerDose>> = HashMap::new();
    let found = found
        .into_iter()
        .map(|d| {
            let moved = alias_of.contains_key(&d.person);
            let d = canonical(d);
            if moved {
                rekeyed.entry(d.person.clone()).or_default().push(d.clone());
            }
            d
        })
        .collect();
    let mut doses = by_person(found);
    let rekeyed_persons: HashSet<PersonHash> = alias_of.values().cloned().collect();
    let other_refs: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    let sealed = ledger.sealed_persons(&other_refs).map_err(sink_error)?;
    let mut aliases: HashMap<PersonHash, Vec<PersonHash>> = HashMap::new();
    let mut passports = passports_by_person(
        ledger
            .passports_of(&all)
            .map_err(sink_error)?
            .into_iter()
            .map(|mut r| {
                if let Some(h) = alias_of.get(&r.person) {
                    let earlier = std::mem::replace(&mut r.person, h.clone());
                    let of = aliases.entry(r.person.clone()).or_default();
                    if !of.contains(&earlier) {
                        of.push(earlier);
                    }
                }
                r
            })
            .collect(),
    );

    // Decide each batch person's rows against their ledger doses.
    let merged: Vec<ledger::Merged> = candidates
        .par_iter()
        .zip(&hashes)
        .map(|(cands, hash)| {
            let kept: Vec<LedgerDose> = doses
                .get(hash)
                .map(|d| d.iter().filter(|e| !reassigned.contains(e.record_id.as_str())).cloned().collect())
                .unwrap_or_default();
            ledger::merge(kept, cands)
        })
        .collect();
    let mut moved: HashSet<String> = HashSet::new();
    let mut links = Vec::new();
    let mut writes: Vec<Vec<LedgerDose>> = vec![Vec::new(); n_groups];
    let mut rejections: Vec<(u64, String, RejectReason, String)> = Vec::new();
    // A passport no QR code at level Q holds cannot be printed (issue #8 item 13): the rows
    // that would make it so are refused before anything is signed or recorded. Estimated
    // without signing ([`passport::estimated_hc1_len`]).
    let too_long: Vec<Option<usize>> = merged
        .par_iter()
        .zip(&holders)
        .map(|(m, holder)| -> Result<Option<usize>, GateError> {
            let doses: Vec<Dose> = m.doses.iter().map(|d| d.dose).collect();
            // A person left with no dose (their only rows refused) gets no passport.
            if doses.is_empty() {
                return Ok(None);
            }
            let uvci = Uvci::new(&facility.signer.facility_code, &facility.secret.uvci_opaque(&[], &doses))
                .map_err(|_| GateError::Invariant("a UVCI could not be built"))?;
            let content = content_of(holder, &doses, uvci, facility);
            let (alg, sig_len) = (facility.algorithm(), facility.signer.key.signature_len());
            let len = passport::estimated_hc1_len_with(&content, alg, sig_len, &facility.signer.cert.kid.0)
                .ok_or(GateError::Invariant("a passport's length could not be estimated"))?;
            Ok((len + passport::HC1_LEN_ESTIMATE_MARGIN > MAX_HC1_LEN_Q).then_some(len))
        })
        .collect::<Result<_, _>>()?;
    for (i, (m, cands)) in merged.iter().zip(&candidates).enumerate() {
        for &a in &m.accepted {
            let c = &cands[a];
            if let (Some(len), false) = (too_long[i], c.kind == RowKind::Known) {
                let detail = format!(
                    "the passport would be about {len} characters; a QR code at error correction level Q holds {MAX_HC1_LEN_Q}"
                );
                rejections.push((c.order, c.entry.record_id.clone(), RejectReason::BadRow, detail));
                continue;
            }
            summary.signed_rows += 1;
            if c.kind == RowKind::Known {
                continue;
            }
            if let RowKind::Correction { previous } = &c.kind {
                moved.insert(c.entry.record_id.clone());
                if previous.person != c.entry.person {
                    links.push((i, previous.person.clone()));
                }
            }
            writes[i].push(c.entry.clone());
        }
        for &(r, why) in &m.rejected {
            let (reason, detail) = match why {
                SeriesRejection::Duplicate => {
                    (RejectReason::DuplicateDose, "same person, product and date as an accepted dose".to_owned())
                }
                SeriesRejection::TooSoon => (
                    RejectReason::DoseSequence,
                    format!("less than {} days from another accepted dose", ledger::MIN_DOSE_INTERVAL_DAYS),
                ),
            };
            rejections.push((cands[r].order, cands[r].entry.record_id.clone(), reason, detail));
        }
    }
    // Their ledger entries are in `writes` and `doses` now; the copies go before the persons
    // are built.
    drop(merged);
    drop(candidates);
    drop(stored);
    // Rejected in file order, as the per-row checks are.
    rejections.sort_by_key(|r| r.0);
    for (_, record_id, reason, detail) in rejections {
        super::batch::reject(summary, &Rejection { record_id, reason, detail, suggestion: String::new() }, sink)?;
    }

    let mut persons: Vec<PersonWork> = Vec::with_capacity(n_groups + others.len());
    for (i, (holder, hash)) in holders.into_iter().zip(hashes).enumerate() {
        let mut all_doses: Vec<LedgerDose> =
            doses.remove(&hash).unwrap_or_default().into_iter().filter(|d| !moved.contains(&d.record_id)).collect();
        all_doses.extend(writes[i].iter().cloned());
        normalise(&mut all_doses);
        let passports = passports.remove(&hash).unwrap_or_default();
        let mut own_writes = std::mem::take(&mut writes[i]);
        own_writes
            .extend(rekeyed.remove(&hash).unwrap_or_default().into_iter().filter(|d| !moved.contains(&d.record_id)));
        let reseal = rekeyed_persons.contains(&hash);
        persons.push(PersonWork {
            aliases: aliases.remove(&hash).unwrap_or_default(),
            reseal,
            hash,
            holder,
            doses: all_doses,
            writes: own_writes,
            retracted: Vec::new(),
            passports,
        });
    }
    let mut index: HashMap<PersonHash, usize> = HashMap::new();
    for h in others {
        let holder = unseal(facility, &sealed, &h)?;
        let mut rest: Vec<LedgerDose> =
            doses.remove(&h).unwrap_or_default().into_iter().filter(|d| !moved.contains(&d.record_id)).collect();
        normalise(&mut rest);
        index.insert(h.clone(), persons.len());
        let passports = passports.remove(&h).unwrap_or_default();
        persons.push(PersonWork {
            hash: h,
            holder,
            doses: rest,
            writes: Vec::new(),
            retracted: Vec::new(),
            passports,
            reseal: false,
            aliases: Vec::new(),
        });
    }
    for (i, p) in persons.iter().enumerate() {
        index.entry(p.hash.clone()).or_insert(i);
    }
    let links = links.into_iter().filter_map(|(a, h)| index.get(&h).map(|&b| (a, b))).collect();
    Ok(Work { persons, links })
}

/// Which records a retraction may remove (SPEC §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetractScope<'a> {
    /// A facility: only records of doses it gave.
    Facility(&'a str),
    /// The ministry: any record.
    Ministry,
}

/// What a retraction did (SPEC §8.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retraction {
    /// Records removed from the ledger.
    pub retracted: u64,
    /// Passports revoked, sorted.
    pub revoked: Vec<String>,
    /// Passports signed for the affected persons who still have doses, sorted.
    pub reissued: Vec<String>,
    /// Ids that are not in the ledger or belong to another facility's doses (not said which).
    pub unknown: Vec<String>,
}

/// No rows, so no rejections.
static NO_REJECTIONS: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();

impl Retraction {
    /// What the retraction did, as the Ministry's reports count it.
    pub fn tally(&self) -> crate::corrections::RunTally<'_> {
        crate::corrections::RunTally {
            signed_rows: 0,
            rejected: &NO_REJECTIONS,
            retracted: self.retracted,
            revoked: &self.revoked,
        }
    }
}

/// The run id of a retraction: the same actor (a facility code or `ministry`), ids (in any
/// order) and reason give the same id, so a retraction started again finds what it did.
pub fn retraction_run_id(actor: &str, ids: &[String], reason: &str) -> String {
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [actor, reason].into_iter().chain(sorted) {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    format!("retract-{}", ctx.finish().as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
}

/// Removes `record_ids` from the ledger, revokes every passport that carries one, and
/// re-signs each affected person who still has doses with `facility`'s key.
pub fn retract(
    record_ids: &[String],
    reason: &str,
    scope: RetractScope<'_>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
) -> Result<Retraction, GateError> {
    // From the first read of the ledger to the last write, this run holds it alone.
    let done = retract_locked(record_ids, reason, scope, facility, sink);
    let unlocked = sink.ledger().unlock_runs().map_err(sink_error);
    let done = done?;
    unlocked?;
    Ok(done)
}

fn retract_locked(
    record_ids: &[String],
    reason: &str,
    scope: RetractScope<'_>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
) -> Result<Retraction, GateError> {
    let run_id = sink.run_id().to_owned();
    let ledger = sink.ledger();
    ledger.lock_runs().map_err(sink_error)?;
    let mut ids: Vec<&str> = record_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let found = ledger.by_record(&ids).map_err(sink_error)?;
    let done: HashSet<String> = ledger.retracted_by_run(&run_id).map_err(sink_error)?.into_iter().collect();
    let allowed = |d: &LedgerDose| match scope {
        RetractScope::Ministry => true,
        RetractScope::Facility(code) => d.facility_code == code,
    };
    let targets: Vec<LedgerDose> = found.into_iter().filter(allowed).collect();
    let target_ids: HashSet<&str> = targets.iter().map(|d| d.record_id.as_str()).collect();
    let unknown: Vec<String> =
        ids.iter().filter(|id| !target_ids.contains(*id) && !done.contains(**id)).map(|id| (*id).to_owned()).collect();
    let mut hashes: Vec<PersonHash> = targets.iter().map(|d| d.person.clone()).collect();
    hashes.extend(ledger.persons_of_run(&run_id).map_err(sink_error)?);
    hashes.sort_unstable();
    hashes.dedup();
    let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
    let mut doses = by_person(ledger.by_person(&refs).map_err(sink_error)?);
    let sealed = ledger.sealed_persons(&refs).map_err(sink_error)?;
    let mut passports = passports_by_person(ledger.passports_of(&refs).map_err(sink_error)?);
    let mut persons = Vec::with_capacity(hashes.len());
    for h in hashes {
        let (retracted, mut rest): (Vec<LedgerDose>, Vec<LedgerDose>) =
            doses.remove(&h).unwrap_or_default().into_iter().partition(|d| target_ids.contains(d.record_id.as_str()));
        normalise(&mut rest);
        let holder = unseal(facility, &sealed, &h)?;
        let passports = passports.remove(&h).unwrap_or_default();
        persons.push(PersonWork {
            holder,
            doses: rest,
            writes: Vec::new(),
            retracted,
            passports,
            hash: h,
            reseal: false,
            aliases: Vec::new(),
        });
    }
    let mut summary = Summary::default();
    let (listed, _) =
        sign_and_record(Work { persons, links: Vec::new() }, facility, Some((reason, scope)), sink, &mut summary)?;
    Ok(Retraction {
        retracted: (target_ids.len() + done.iter().filter(|d| !target_ids.contains(d.as_str())).count()) as u64,
        revoked: summary.revoked_uvcis,
        reissued: listed,
        unknown,
    })
}

/// What becomes of one person.
enum Decision {
    /// No doses left: no passport.
    Nothing,
    /// Their current passport already says all of it.
    Reuse(PassportRecord),
    /// A new passport.
    /// A new passport under this UVCI; its content is built in its chunk, to bound memory.
    Sign(Uvci),
}

/// A person's decision and the status changes of their earlier passports.
struct Decided {
    decision: Decision,
    fates: Vec<(String, PassportStatus)>,
    holder_hash: Vec<u8>,
    content_hash: Vec<u8>,
}

fn plain_doses(doses: &[LedgerDose]) -> Vec<Dose> {
    doses.iter().map(|d| d.dose).collect()
}

/// `revoked_signers`: kids (base64) of revoked facility DSCs.
fn decide(p: &PersonWork, facility: &SigningFacility, revoked_signers: &HashSet<String>) -> Result<Decided, GateError> {
    let holder_hash = facility.secret.holder_hash(&p.holder.name, &p.holder.dob);
    let live = || p.passports.iter().filter(|r| r.status != PassportStatus::Revoked);
    if p.doses.is_empty() {
        return Ok(Decided {
            decision: Decision::Nothing,
            fates: live().map(|r| (r.uvci.clone(), PassportStatus::Revoked)).collect(),
            holder_hash,
            content_hash: Vec::new(),
        });
    }
    let doses = plain_doses(&p.doses);
    let person = [
        p.holder.key_text.as_bytes(),
        p.holder.name.as_bytes(),
        p.holder.dob.as_bytes(),
        &[u8::from(facility.include_history)],
    ];
    let content_hash = facility.secret.content_hash(&person, &doses);
    let fates_except = |keep: &str| -> Vec<(String, PassportStatus)> {
        live()
            .filter(|r| r.uvci != keep)
            .filter_map(|r| {
                let f = ledger::fate(r, &p.doses, Some(&holder_hash));
                (f != r.status).then(|| (r.uvci.clone(), f))
            })
            .collect()
    };
    // The current passport is kept when it says the same, has not expired and its signer's
    // DSC is not revoked: a person whose passport ran out, or whose facility's key was
    // revoked, gets a new one from the next run that includes them.
    let usable = |r: &PassportRecord| {
        r.signed_at.saturating_add(PASSPORT_LIFETIME_SECS) > facility.now.unix_timestamp()
            && !revoked_signers.contains(&r.kid)
    };
    if let Some(current) =
        live().find(|r| r.status == PassportStatus::Current && r.content_hash == content_hash && usable(r))
    {
        return Ok(Decided {
            fates: fates_except(&current.uvci),
            decision: Decision::Reuse(current.clone()),
            holder_hash,
            content_hash,
        });
    }
    // The UVCI of this content under this key; a generation is added only when that UVCI
    // was already used for this person (the same doses again after a retraction), because a
    // revoked UVCI can never be handed out again.
    let taken: HashSet<&str> = p.passports.iter().map(|r| r.uvci.as_str()).collect();
    let mut uvci = None;
    for generation in 0u32..64 {
        let mut parts: Vec<&[u8]> = person.to_vec();
        parts.push(&facility.signer.cert.kid.0);
        let g = generation.to_be_bytes();
        if generation > 0 {
            parts.push(&g);
        }
        let candidate = Uvci::new(&facility.signer.facility_code, &facility.secret.uvci_opaque(&parts, &doses))
            .map_err(|_| GateError::Invariant("a UVCI could not be built"))?;
        if !taken.contains(candidate.as_str()) {
            uvci = Some(candidate);
            break;
        }
    }
    let uvci = uvci.ok_or(GateError::Invariant("no free UVCI for a person"))?;
    Ok(Decided { fates: fates_except(""), decision: Decision::Sign(uvci), holder_hash, content_hash })
}

/// What a passport of `holder` with `doses` says when `facility` signs it now.
fn content_of(holder: &Holder, doses: &[Dose], uvci: Uvci, facility: &SigningFacility) -> PassportContent {
    let iat = facility.now.unix_timestamp();
    let not_after = facility.signer.cert.validity.map_or(i64::MAX, |v| v.1);
    PassportContent {
        person: Person { full_name: holder.name.clone(), dob: holder.dob.clone() },
        doses: number_doses(doses),
        issuer: facility.issuer.clone(),
        uvci,
        issued_at: iat,
        // Never past the DSC's notAfter (SPEC §3).
        expires_at: (iat + PASSPORT_LIFETIME_SECS).min(not_after),
        include_history: facility.include_history,
    }
}

/// One chunk on its way to the store and the outputs.
struct ChunkWrite {
    doses: Vec<LedgerDose>,
    retracted: Vec<LedgerDose>,
    persons: Vec<(PersonHash, Vec<u8>)>,
    passports: Vec<SignedPassport>,
    fresh: Vec<bool>,
    fates: Vec<(String, PassportStatus)>,
    /// Persons signed a new passport now, and its UVCI: their current one from this chunk on.
    currents: Vec<(PersonHash, String)>,
    done: u64,
}

/// Orders persons by their ledger key and cuts chunks of about `size` persons that never
/// split a set of linked persons. Every table and index keyed by person (their doses, sealed
/// identity and passports, the passports' identity hashes) then takes each chunk's keys in
/// one narrow range, after the previous chunk's: a first batch appends to them and a
/// follow-up batch rewrites one slice of them per chunk, where keys in a random order make
/// every transaction rewrite nearly every page of each of them (at 1 million persons those
/// four indexes made up most of the writer's pages). Earlier passports, stored in the same
/// order, are superseded or revoked in neighbouring rows too.
fn chunks(persons: &[PersonWork], links: &[(usize, usize)], size: usize) -> Vec<Vec<usize>> {
    let n = persons.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for &(a, b) in links {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by(|&a, &b| persons[a].hash.cmp(&persons[b].hash).then(a.cmp(&b)));
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    if !links.is_empty() {
        for &i in &order {
            let r = root(&mut parent, i);
            members.entry(r).or_default().push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut placed = vec![false; n];
    for &i in &order {
        if placed[i] {
            continue;
        }
        let family = members.get(&root(&mut parent, i)).cloned().unwrap_or_else(|| vec![i]);
        for j in family {
            placed[j] = true;
            current.push(j);
        }
        if current.len() >= size {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Signs what must be signed and records each chunk (ledger, passports, fates) in one
/// transaction before the sink writes it out. Returns the UVCIs listed, sorted, and how long
/// the writer was busy recording.
pub(super) fn sign_and_record(
    work: Work,
    facility: &SigningFacility,
    retraction: Option<(&str, RetractScope<'_>)>,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<(Vec<String>, std::time::Duration), GateError> {
    let Work { persons, links } = work;
    let revoked_signers = sink.ledger().revoked_signers().map_err(sink_error)?;
    let kid = facility.signer.cert.kid.to_base64();
    if revoked_signers.contains(&kid) {
        return Err(GateError::SignerRevoked { kid });
    }
    let decided: Vec<Decided> =
        persons.par_iter().map(|p| decide(p, facility, &revoked_signers)).collect::<Result<_, _>>()?;
    let plan = chunks(&persons, &links, facility.persons_per_commit.max(1));
    let total = persons.len() as u64;
    let run_id = sink.run_id().to_owned();
    let facility_code = facility.signer.facility_code.clone();
    let reason = retraction.map_or("", |r| r.0);
    // The audit log names the ministry when it retracts, not the facility whose key re-signs.
    let acting_for = match retraction {
        Some((_, RetractScope::Ministry)) => Some("ministry"),
        _ => None,
    };
    let at = facility.now.unix_timestamp();
    let mut listed = Vec::new();
    // The pool signs chunk n while a writer thread records chunk n−1 (database first, then
    // the outputs), so storage waits overlap with signing.
    let writing = &mut *sink;
    let writer_busy = std::thread::scope(|scope| -> Result<std::time::Duration, GateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ChunkWrite>(1);
        let (run_id, kid, facility_code) = (&run_id, &kid, &facility_code);
        let sink = writing;
        let writer = std::thread::Builder::new()
            .name("vaxpass-writer".into())
            .spawn_scoped(scope, move || -> Result<std::time::Duration, GateError> {
                let mut busy = std::time::Duration::ZERO;
                for mut w in rx {
                    let start = std::time::Instant::now();
                    let change = LedgerChange {
                        run_id,
                        facility_code,
                        acting_for,
                        kid,
                        at,
                        doses: w.doses.iter().collect(),
                        retracted: w.retracted.iter().map(|d| (d, reason)).collect(),
                        persons: w.persons.iter().map(|(h, s)| (h.as_slice(), s.as_slice())).collect(),
                        passports: w.passports.iter().zip(&w.fresh).filter(|(_, f)| **f).map(|(p, _)| p).collect(),
                        fates: w.fates.iter().map(|(u, s)| (u.as_str(), *s)).collect(),
                        currents: w.currents.iter().map(|(h, u)| (h.as_slice(), u.as_str())).collect(),
                    };
                    let stored_meanwhile = sink.ledger().apply(&change).map_err(sink_error)?;
                    drop(change);
                    // Reused passports come without their QR text (see `Ledger::passports_of`).
                    let reused: Vec<&str> =
                        w.passports.iter().filter(|p| p.hc1.is_empty()).map(|p| p.uvci.as_str()).collect();
                    if !reused.is_empty() {
                        let texts = sink.ledger().hc1_of(&reused).map_err(sink_error)?;
                        for p in w.passports.iter_mut().filter(|p| p.hc1.is_empty()) {
                            p.hc1 = texts
                                .get(&p.uvci)
                                .cloned()
                                .ok_or(GateError::Invariant("a reused passport without its QR text"))?;
                        }
                    }
                    // Another run stored some of these UVCIs first: hand out what the store holds.
                    for p in &mut w.passports {
                        if let Some(hc1) = stored_meanwhile.get(&p.uvci) {
                            p.hc1.clone_from(hc1);
                        }
                    }
                    sink.signed(w.passports, w.fresh)?;
                    sink.progress(w.done, total);
                    busy += start.elapsed();
                }
                Ok(busy)
            })
            .map_err(|e| GateError::sink("cannot start the output writer thread", e))?;
        let mut done = 0u64;
        for chunk in plan {
            let signed: Vec<Option<(SignedPassport, bool)>> = chunk
                .par_iter()
                .map(|&i| -> Result<Option<(SignedPassport, bool)>, GateError> {
                    let (p, d) = (&persons[i], &decided[i]);
                    let signed = match &d.decision {
                        Decision::Nothing => return Ok(None),
                        Decision::Reuse(r) => (finish(p, d, facility, &r.kid, r.uvci.clone(), String::new()), false),
                        Decision::Sign(uvci) => {
                            let content = content_of(&p.holder, &plain_doses(&p.doses), uvci.clone(), facility);
                            let hc1 =
                                passport::sign(&content, facility.algorithm(), &facility.signer.cert.kid.0, |m| {
                                    facility.signer.key.sign(m)
                                })?
                                .ok_or(GateError::Invariant("a passport without doses"))?;
                            // The estimate's margin is three times the spread measured; a
                            // passport past it stops the run rather than being handed out.
                            if hc1.len() > MAX_HC1_LEN_Q {
                                return Err(GateError::Invariant("a passport longer than a QR code holds"));
                            }
                            (finish(p, d, facility, kid, content.uvci.as_str().to_owned(), hc1), true)
                        }
                    };
                    Ok(Some(signed))
                })
                .collect::<Result<_, _>>()?;
            let mut w = ChunkWrite {
                doses: Vec::new(),
                retracted: Vec::new(),
                persons: Vec::with_capacity(chunk.len()),
                passports: Vec::with_capacity(chunk.len()),
                fresh: Vec::with_capacity(chunk.len()),
                fates: Vec::new(),
                currents: Vec::new(),
                done: 0,
            };
            for (&i, s) in chunk.iter().zip(signed) {
                let (p, d) = (&persons[i], &decided[i]);
                w.doses.extend(p.writes.iter().cloned());
                w.retracted.extend(p.retracted.iter().cloned());
                // The sealed identity is written unless the person's current passport already
                // names this holder (it was sealed together with that passport). Comparing with
                // any earlier passport would keep a stale name after An → Anh → An.
                let current = p.passports.iter().find(|r| r.status == PassportStatus::Current);
                if p.reseal || current.is_none_or(|r| r.holder_hash != d.holder_hash) {
                    let identity = serde_json::to_vec(&p.holder).map_err(sink_error)?;
                    w.persons.push((p.hash.clone(), facility.secret.seal(&identity).map_err(sink_error)?));
                }
                w.fates.extend(d.fates.iter().cloned());
                if let Some((passport, fresh)) = s {
                    summary.reused += u64::from(!fresh);
                    if fresh {
                        for h in std::iter::once(&p.hash).chain(&p.aliases) {
                            w.currents.push((h.clone(), passport.uvci.clone()));
                        }
                    }
                    listed.push(passport.uvci.clone());
                    w.passports.push(passport);
                    w.fresh.push(fresh);
                }
            }
            summary.passports += w.passports.len() as u64;
            done += chunk.len() as u64;
            w.done = done;
            if tx.send(w).is_err() {
                // The writer stopped on an error; it is reported below.
                break;
            }
        }
        drop(tx);
        writer.join().map_err(|_| GateError::Invariant("the output writer thread panicked"))?
    })?;
    let changes = sink.ledger().run_changes(&run_id).map_err(sink_error)?;
    summary.revoked = changes.revoked.len() as u64;
    summary.superseded = changes.superseded;
    summary.revoked_uvcis = changes.revoked;
    listed.sort_unstable();
    Ok((listed, writer_busy))
}

/// The passport as `passports.jsonl` lists it and the store keeps it.
fn finish(
    p: &PersonWork,
    d: &Decided,
    facility: &SigningFacility,
    kid: &str,
    uvci: String,
    hc1: String,
) -> SignedPassport {
    let claim_code = facility.secret.person_claim_code(&p.hash);
    SignedPassport {
        id_hash: facility.secret.id_hash(&p.holder.id_number),
        claim_hash: facility.secret.claim_hash(&claim_code),
        uvci,
        id_number: p.holder.id_number.clone(),
        record_ids: p.doses.iter().map(|d| d.record_id.clone()).collect(),
        hc1,
        kid: kid.to_owned(),
        claim_code,
        person_hash: p.hash.clone(),
        holder_hash: d.holder_hash.clone(),
        content_hash: d.content_hash.clone(),
        covered: p.doses.iter().map(CoveredDose::of).collect(),
    }
}

#[cfg(test)]
#[path = "people_tests.rs"]
mod tests;
