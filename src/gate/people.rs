//! Persons across runs (SPEC §8): a batch's accepted rows merged with each person's ledger
//! doses, or a retraction's records taken out of them; then, per person, the passport that
//! covers all their doses (reused when nothing it says changed, else signed anew) and the fate
//! of their earlier passports, recorded one chunk of persons per transaction.
//!
//! A batch's persons come one chunk at a time ([`ChunkSource`]), in the order of their ledger
//! key, from rows sorted by that key (`spill.rs`): a chunk's ledger doses and passports are
//! read, merged, decided and signed when its turn comes, so memory holds a few chunks, not the
//! batch (issue 11 part 3; before, 1 million persons peaked at 1.9 GiB, 1.2 GiB of it the
//! whole batch's merged persons).
//!
//! Why chunks hold whole "families": a correction that moves a dose from person A to person B
//! changes both. Their ledger entries, B's new passport and A's revocation and re-issue are
//! written in one transaction, so a run killed at any point leaves either all of it or none,
//! and the run started again finds the same work (nothing revoked without its replacement,
//! nothing re-issued twice).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::{BatchSink, IntakeFacts, PASSPORT_LIFETIME_SECS, SigningFacility, Summary, fingerprint};
use super::checks::{PersonKey, RowIdentity};
use super::registry::Registry;
use super::spill::{BatchRow, Merge, SortedRows, Stored};
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

fn sink_error(e: impl Into<crate::gate::Cause>) -> GateError {
    GateError::sink("reading or writing the ledger", e)
}

/// Who a registry, foreign or offline person is: the registry's person, or the identity of
/// their first row (SPEC §5 "Grouping").
fn identify(key: &PersonKey, registry: Option<&Registry>, identity: Option<&RowIdentity>) -> Option<Holder> {
    match key {
        PersonKey::Registry(i) => {
            let p = registry?.person(*i)?;
            Some(Holder {
                name: p.full_name,
                dob: p.dob.to_iso(),
                id_number: p.id_number.clone(),
                key_text: p.id_number,
            })
        }
        PersonKey::Foreign(nat, no) => {
            let ident = identity?;
            Some(Holder {
                name: ident.person.full_name.clone(),
                dob: ident.person.dob.clone(),
                id_number: ident.id_number.clone(),
                key_text: format!("F:{nat}:{no}"),
            })
        }
        PersonKey::Offline(_) => {
            let ident = identity?;
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

/// A person of a chunk before their ledger is read: their key and, for a batch person, their
/// rows in file order (repeats of an earlier row's record id taken out).
struct Planned {
    hash: [u8; 16],
    rows: Option<Vec<BatchRow>>,
}

/// A batch's persons, planned (SPEC §8.1): the rows come sorted by person from the intake;
/// persons outside the batch whom a correction takes a dose from, or whom a killed run of
/// this batch touched, are merged in by key, and persons linked by a correction come
/// together. Each chunk's ledger doses and passports are read, merged and decided only when
/// its turn comes ([`ChunkSource::next_chunk`]), so that a person's rows, [`PersonWork`] and
/// decision exist for a few chunks at a time, not for the batch.
pub(super) struct BatchPlan<'a> {
    registry: Option<&'a Registry>,
    rows: Merge<'a>,
    /// The next batch person of `rows`, read ahead.
    next_person: Option<Vec<BatchRow>>,
    /// Persons outside the batch, sorted, with no family.
    others: std::vec::IntoIter<[u8; 16]>,
    next_other: Option<[u8; 16]>,
    /// Sets of persons linked by corrections, by their smallest key.
    families: std::vec::IntoIter<Vec<[u8; 16]>>,
    next_family: Option<Vec<[u8; 16]>>,
    /// Members of a family (who are left out of `rows` and `others`), with their rows.
    family_rows: HashMap<[u8; 16], Vec<BatchRow>>,
    /// Later rows of a record id, rejected as repeats: a person whose rows are all repeats
    /// is not a batch person.
    repeats: HashSet<u64>,
    /// Rows that would rewrite another facility's record, rejected: their person stays.
    foreign: HashSet<u64>,
    /// Persons linked to another by a correction (members of `families`).
    in_family: HashSet<[u8; 16]>,
    /// What the ledger holds under a record id, when it differs from the row: the row's
    /// kind, by its position in the file.
    kinds: HashMap<u64, RowKind>,
    /// Earlier numbers' keys (SPEC §8.4) → the re-issued batch person's key.
    alias_of: HashMap<PersonHash, PersonHash>,
    /// A re-issued batch person's key → their earlier numbers' keys.
    aliases: HashMap<PersonHash, Vec<PersonHash>>,
    /// Record ids that a correction of this batch takes from whoever holds them.
    reassigned: HashSet<String>,
    size: usize,
    total: u64,
    /// Rows refused by the per-person checks, with their position in the file: written
    /// after the last chunk, in file order, as they were when every person was merged first.
    held: Vec<(u64, Rejection)>,
}

fn key16(h: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = h.len().min(16);
    k[..n].copy_from_slice(&h[..n]);
    k
}

/// Plans a batch from its intake (SPEC §8.1): repeated record ids and rows that would rewrite
/// another facility's record are rejected here, in that order; duplicates and the 14-day rule
/// are judged per chunk against the person's ledger doses too. The ledger is already held.
pub(super) fn from_batch<'a>(
    rows: &'a SortedRows,
    facts: IntakeFacts,
    registry: Option<&'a Registry>,
    facility: &SigningFacility,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
) -> Result<BatchPlan<'a>, GateError> {
    // A record id is one dose (SPEC §4: unique per row): a later row of the file that repeats
    // it, for whoever, is a repeat of that dose, whatever it says. Ids whose fingerprints
    // collide are compared in full on the pass below.
    let suspects: HashSet<u64> = {
        let mut f = facts.fingerprints;
        f.par_sort_unstable();
        f.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect()
    };

    // A person whose number was re-issued (SPEC §8.4) may have ledger entries and passports
    // under the key of an earlier number: they are read with the person's and re-keyed.
    let alias_of: HashMap<PersonHash, PersonHash> = match registry {
        Some(reg) => reg
            .previous_ids()
            .filter(|(_, i)| facts.in_registry.get(*i as usize / 64).is_some_and(|w| w >> (i % 64) & 1 == 1))
            .filter_map(|(number, i)| {
                reg.person(i).map(|p| (facility.secret.id_hash(&number), facility.secret.id_hash(&p.id_number)))
            })
            .collect(),
        None => HashMap::new(),
    };
    let mut aliases: HashMap<PersonHash, Vec<PersonHash>> = HashMap::new();
    for (earlier, person) in &alias_of {
        aliases.entry(person.clone()).or_default().push(earlier.clone());
    }
    for a in aliases.values_mut() {
        a.sort_unstable();
    }
    let canonical = |mut d: LedgerDose| {
        if let Some(h) = alias_of.get(&d.person) {
            d.person.clone_from(h);
        }
        d
    };
    // The rows whose record id the ledger holds otherwise: known under an earlier number's
    // key, corrections, or rows of another facility's record.
    let mut kinds: HashMap<u64, RowKind> = HashMap::new();
    let mut foreign: Vec<(&PersonKey, u64, &str)> = Vec::new();
    for (row, stored) in &facts.differs {
        let entry = LedgerDose {
            record_id: row.record_id.clone(),
            person: row.hash.to_vec(),
            facility_code: row.facility_code.clone(),
            dose: row.dose,
        };
        let kind = ledger::classify(&entry, Some(&canonical(stored.clone())));
        // A record belongs to the facility that gave the dose: a row naming another facility
        // cannot rewrite it (nor, through it, take the right to retract it).
        if let RowKind::Correction { previous } = &kind
            && previous.facility_code != entry.facility_code
        {
            foreign.push((&row.person, row.order, &row.record_id));
        }
        kinds.insert(row.order, kind);
    }
    let run_id = sink.run_id().to_owned();
    let run_persons: Vec<[u8; 16]> =
        sink.ledger().persons_of_run(&run_id).map_err(sink_error)?.into_iter().map(|h| key16(&h)).collect();
    let mut candidates_of_others: Vec<[u8; 16]> = kinds
        .values()
        .filter_map(|k| match k {
            RowKind::Correction { previous } => Some(key16(&previous.person)),
            _ => None,
        })
        .chain(run_persons.iter().copied())
        .collect();
    candidates_of_others.sort_unstable();
    candidates_of_others.dedup();

    // One pass over the rows: the repeated ids, which possible others are batch persons,
    // and how many batch persons there are.
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    let mut batch_others = HashSet::new();
    let mut persons = 0u64;
    // Persons whose every row may be a repeat: they are batch persons only if one is not.
    let mut maybe_repeats_only: Vec<([u8; 16], Vec<u64>)> = Vec::new();
    {
        let mut rows = rows.iter()?;
        let mut next_other = 0;
        while let Some(p) = rows.next_person()? {
            let hash = p[0].hash;
            persons += 1;
            let mut all_suspect = true;
            for r in &p {
                if suspects.contains(&fingerprint(&r.record_id)) {
                    by_id.entry(r.record_id.clone()).or_default().push(r.order);
                } else {
                    all_suspect = false;
                }
            }
            if all_suspect {
                maybe_repeats_only.push((hash, p.iter().map(|r| r.order).collect()));
            }
            while candidates_of_others.get(next_other).is_some_and(|o| *o < hash) {
                next_other += 1;
            }
            if candidates_of_others.get(next_other) == Some(&hash) {
                batch_others.insert(hash);
            }
        }
    }
    let mut repeats: Vec<u64> = Vec::new();
    for orders in by_id.values_mut() {
        orders.sort_unstable();
        repeats.extend_from_slice(&orders[1..]);
    }
    drop(by_id);
    let repeated: HashSet<u64> = repeats.iter().copied().collect();
    for (hash, orders) in &maybe_repeats_only {
        if orders.iter().all(|o| repeated.contains(o)) {
            persons -= 1;
            batch_others.remove(hash);
        }
    }
    // Rejected in file order, as the per-row checks are; their ids come from the pass below.
    repeats.sort_unstable();
    {
        let wanted: HashSet<u64> = repeats.iter().copied().collect();
        let mut ids: HashMap<u64, String> = HashMap::new();
        if !wanted.is_empty() {
            let mut rows = rows.iter()?;
            while let Some(r) = rows.next_row()? {
                if wanted.contains(&r.order) {
                    ids.insert(r.order, r.record_id);
                }
            }
        }
        for order in &repeats {
            let record_id = ids.remove(order).ok_or(GateError::Invariant("a repeated row went missing"))?;
            let r = Rejection {
                record_id,
                reason: RejectReason::DuplicateDose,
                detail: "the record_id of an earlier row of this file".into(),
                suggestion: String::new(),
            };
            super::batch::reject(summary, &r, sink)?;
        }
    }
    // Then rows of another facility's record, by person and file order.
    foreign.retain(|(_, order, _)| !repeated.contains(order));
    foreign.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
    let mut foreign_rows = HashSet::new();
    for (_, order, record_id) in &foreign {
        foreign_rows.insert(*order);
        let r = Rejection {
            record_id: (*record_id).to_owned(),
            reason: RejectReason::BadRow,
            detail: "the record_id is another facility's dose record; only rows of that facility correct it".into(),
            suggestion: String::new(),
        };
        super::batch::reject(summary, &r, sink)?;
    }
    kinds.retain(|order, _| !repeated.contains(order) && !foreign_rows.contains(order));
    let reassigned: HashSet<String> = facts
        .differs
        .iter()
        .filter(|(row, _)| matches!(kinds.get(&row.order), Some(RowKind::Correction { .. })))
        .map(|(row, _)| row.record_id.clone())
        .collect();
    // Persons outside the batch whom a correction may take a dose from, and those a killed
    // run of this batch already touched.
    let mut others: Vec<[u8; 16]> = kinds
        .values()
        .filter_map(|k| match k {
            RowKind::Correction { previous } => Some(key16(&previous.person)),
            _ => None,
        })
        .chain(run_persons)
        .filter(|h| !batch_others.contains(h))
        .collect();
    others.sort_unstable();
    others.dedup();
    let total = persons + others.len() as u64;

    // A correction that moves a dose from one person to another puts both in one chunk (one
    // transaction). Every such correction links them, even one the per-person checks will
    // refuse: the chunks are cut before any person is merged.
    let mut parent: HashMap<[u8; 16], [u8; 16]> = HashMap::new();
    fn root(parent: &mut HashMap<[u8; 16], [u8; 16]>, mut h: [u8; 16]) -> [u8; 16] {
        while let Some(&p) = parent.get(&h) {
            if p == h {
                break;
            }
            h = p;
        }
        h
    }
    for (row, _) in &facts.differs {
        if let Some(RowKind::Correction { previous }) = kinds.get(&row.order)
            && previous.person != row.hash
        {
            let (a, b) = (root(&mut parent, row.hash), root(&mut parent, key16(&previous.person)));
            parent.entry(a).or_insert(a);
            parent.entry(b).or_insert(b);
            if a != b {
                parent.insert(a.max(b), a.min(b));
            }
        }
    }
    let mut members: HashMap<[u8; 16], Vec<[u8; 16]>> = HashMap::new();
    let linked: Vec<[u8; 16]> = parent.keys().copied().collect();
    for h in linked {
        let r = root(&mut parent, h);
        members.entry(r).or_default().push(h);
    }
    let mut families: Vec<Vec<[u8; 16]>> = members
        .into_values()
        .map(|mut m| {
            m.sort_unstable();
            m
        })
        .collect();
    families.sort_unstable();
    let in_family: HashSet<[u8; 16]> = families.iter().flatten().copied().collect();
    let mut family_rows: HashMap<[u8; 16], Vec<BatchRow>> = HashMap::new();
    if !in_family.is_empty() {
        let mut rows = rows.iter()?;
        while let Some(r) = rows.next_row()? {
            if in_family.contains(&r.hash) {
                family_rows.entry(r.hash).or_default().push(r);
            }
        }
    }
    others.retain(|h| !in_family.contains(h));

    let mut plan = BatchPlan {
        registry,
        rows: rows.iter()?,
        next_person: None,
        others: others.into_iter(),
        next_other: None,
        families: families.into_iter(),
        next_family: None,
        family_rows,
        repeats: repeated,
        foreign: foreign_rows,
        in_family,
        kinds,
        alias_of,
        aliases,
        reassigned,
        size: facility.persons_per_commit.max(1),
        total,
        held: Vec::new(),
    };
    plan.next_other = plan.others.next();
    plan.next_family = plan.families.next();
    plan.advance_rows()?;
    Ok(plan)
}

impl BatchPlan<'_> {
    /// Reads the next batch person outside every family with a row to merge.
    fn advance_rows(&mut self) -> Result<(), GateError> {
        self.next_person = None;
        while let Some(p) = self.rows.next_person()? {
            if self.in_family.contains(&p[0].hash) || p.iter().all(|r| self.repeats.contains(&r.order)) {
                continue;
            }
            self.next_person = Some(p);
            break;
        }
        Ok(())
    }

    /// The persons of the next chunk, in key order, a family where its smallest key falls.
    fn next_planned(&mut self) -> Result<Vec<Planned>, GateError> {
        let mut chunk = Vec::new();
        while chunk.len() < self.size {
            let person = self.next_person.as_ref().map(|p| p[0].hash);
            let family = self.next_family.as_ref().map(|f| f[0]);
            let smallest = [person, self.next_other, family].into_iter().flatten().min();
            let Some(smallest) = smallest else { break };
            if person == Some(smallest) {
                let rows = self.next_person.take();
                chunk.push(Planned { hash: smallest, rows });
                self.advance_rows()?;
            } else if self.next_other == Some(smallest) {
                chunk.push(Planned { hash: smallest, rows: None });
                self.next_other = self.others.next();
            } else {
                let members = self.next_family.take().unwrap_or_default();
                for h in members {
                    let rows =
                        self.family_rows.remove(&h).filter(|r| r.iter().any(|r| !self.repeats.contains(&r.order)));
                    chunk.push(Planned { hash: h, rows });
                }
                self.next_family = self.families.next();
            }
        }
        Ok(chunk)
    }
}

/// Where the chunks of persons to sign come from: a batch's plan, or a retraction's few
/// persons.
pub(super) trait ChunkSource {
    /// Persons in all chunks.
    fn total(&self) -> u64;
    /// The next chunk's persons, read from the ledger and merged; `None` after the last.
    /// Rejections of rows it refuses are held until [`ChunkSource::finish`].
    fn next_chunk(
        &mut self,
        facility: &SigningFacility,
        sink: &mut dyn BatchSink,
        summary: &mut Summary,
    ) -> Result<Option<Vec<PersonWork>>, GateError>;
    /// After the last chunk: the rejections held, in file order.
    fn finish(&mut self, _sink: &mut dyn BatchSink, _summary: &mut Summary) -> Result<(), GateError> {
        Ok(())
    }
}

impl ChunkSource for BatchPlan<'_> {
    fn total(&self) -> u64 {
        self.total
    }

    fn next_chunk(
        &mut self,
        facility: &SigningFacility,
        sink: &mut dyn BatchSink,
        summary: &mut Summary,
    ) -> Result<Option<Vec<PersonWork>>, GateError> {
        let planned = self.next_planned()?;
        if planned.is_empty() {
            return Ok(None);
        }
        let hashes: Vec<PersonHash> = planned.iter().map(|p| p.hash.to_vec()).collect();
        let alias_of = &self.alias_of;
        let canonical = |mut d: LedgerDose| {
            if let Some(h) = alias_of.get(&d.person) {
                d.person.clone_from(h);
            }
            d
        };
        let ledger = sink.ledger();
        let mut all: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        for h in &hashes {
            if let Some(earlier) = self.aliases.get(h) {
                all.extend(earlier.iter().map(Vec::as_slice));
            }
        }
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
        let other_refs: Vec<&[u8]> =
            planned.iter().zip(&hashes).filter(|(p, _)| p.rows.is_none()).map(|(_, h)| h.as_slice()).collect();
        let sealed = if other_refs.is_empty() {
            HashMap::new()
        } else {
            ledger.sealed_persons(&other_refs).map_err(sink_error)?
        };
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
        drop(all);

        // The batch persons' rows as ledger candidates.
        let mut members = Vec::new();
        let mut keys = Vec::new();
        let mut candidates: Vec<Vec<Candidate>> = Vec::new();
        let mut identities: Vec<Option<RowIdentity>> = Vec::new();
        for (j, p) in planned.into_iter().enumerate() {
            let Some(rows) = p.rows else { continue };
            let mut rows = rows.into_iter();
            let Some(first) = rows.next() else { continue };
            members.push(j);
            keys.push(first.person.clone());
            identities.push(first.identity.clone());
            let mut cands = Vec::new();
            for r in std::iter::once(first).chain(rows) {
                if self.repeats.contains(&r.order) || self.foreign.contains(&r.order) {
                    continue;
                }
                let kind = match r.stored {
                    Stored::New => RowKind::New,
                    Stored::Same => RowKind::Known,
                    Stored::Differs => {
                        self.kinds.remove(&r.order).ok_or(GateError::Invariant("a row's ledger entry went missing"))?
                    }
                };
                let entry = LedgerDose {
                    record_id: r.record_id,
                    person: hashes[j].clone(),
                    facility_code: r.facility_code,
                    dose: r.dose,
                };
                cands.push(Candidate { order: r.order, entry, kind });
            }
            candidates.push(cands);
        }
        let registry = self.registry;
        let holders: Vec<Holder> = keys
            .par_iter()
            .zip(&identities)
            .map(|(k, ident)| identify(k, registry, ident.as_ref()))
            .collect::<Option<_>>()
            .ok_or(GateError::Invariant("a person's identity could not be derived"))?;
        drop(identities);
        let reassigned = &self.reassigned;
        let merged: Vec<ledger::Merged> = candidates
            .par_iter()
            .zip(&members)
            .map(|(cands, &j)| {
                let kept: Vec<LedgerDose> = doses
                    .get(&hashes[j])
                    .map(|d| d.iter().filter(|e| !reassigned.contains(e.record_id.as_str())).cloned().collect())
                    .unwrap_or_default();
                ledger::merge(kept, cands)
            })
            .collect();
        // A passport no QR code at level Q holds cannot be printed (issue #8 item 13): the
        // rows that would make it so are refused before anything is signed or recorded.
        // Estimated without signing ([`passport::estimated_hc1_len`]).
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
        let mut moved: HashSet<String> = HashSet::new();
        let mut writes: Vec<Vec<LedgerDose>> = vec![Vec::new(); members.len()];
        for (m_i, (m, cands)) in merged.iter().zip(&candidates).enumerate() {
            for &a in &m.accepted {
                let c = &cands[a];
                if let (Some(len), false) = (too_long[m_i], c.kind == RowKind::Known) {
                    let detail = format!(
                        "the passport would be about {len} characters; a QR code at error correction level Q holds {MAX_HC1_LEN_Q}"
                    );
                    self.held.push((c.order, rejection(c, RejectReason::BadRow, detail)));
                    continue;
                }
                summary.signed_rows += 1;
                if c.kind == RowKind::Known {
                    continue;
                }
                if matches!(c.kind, RowKind::Correction { .. }) {
                    moved.insert(c.entry.record_id.clone());
                }
                writes[m_i].push(c.entry.clone());
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
                self.held.push((cands[r].order, rejection(&cands[r], reason, detail)));
            }
        }
        drop(merged);
        drop(candidates);

        let mut batch_persons = members.into_iter().zip(holders.into_iter().zip(writes)).peekable();
        let mut persons = Vec::with_capacity(hashes.len());
        for (j, hash) in hashes.into_iter().enumerate() {
            let mut rest: Vec<LedgerDose> =
                doses.remove(&hash).unwrap_or_default().into_iter().filter(|d| !moved.contains(&d.record_id)).collect();
            let passports = passports.remove(&hash).unwrap_or_default();
            if batch_persons.peek().is_some_and(|(m, _)| *m == j) {
                let Some((_, (holder, mut own_writes))) = batch_persons.next() else { break };
                rest.extend(own_writes.iter().cloned());
                normalise(&mut rest);
                own_writes.extend(
                    rekeyed.remove(&hash).unwrap_or_default().into_iter().filter(|d| !moved.contains(&d.record_id)),
                );
                persons.push(PersonWork {
                    reseal: self.aliases.contains_key(&hash),
                    aliases: aliases.remove(&hash).unwrap_or_default(),
                    hash,
                    holder,
                    doses: rest,
                    writes: own_writes,
                    retracted: Vec::new(),
                    passports,
                });
            } else {
                let holder = unseal(facility, &sealed, &hash)?;
                normalise(&mut rest);
                persons.push(PersonWork {
                    hash,
                    holder,
                    doses: rest,
                    writes: Vec::new(),
                    retracted: Vec::new(),
                    passports,
                    reseal: false,
                    aliases: Vec::new(),
                });
            }
        }
        Ok(Some(persons))
    }

    fn finish(&mut self, sink: &mut dyn BatchSink, summary: &mut Summary) -> Result<(), GateError> {
        // Rejected in file order, as the per-row checks are.
        self.held.sort_by_key(|r| r.0);
        for (_, r) in std::mem::take(&mut self.held) {
            super::batch::reject(summary, &r, sink)?;
        }
        Ok(())
    }
}

/// The rejection of a candidate row by the per-person checks.
fn rejection(c: &Candidate, reason: RejectReason, detail: String) -> Rejection {
    Rejection { record_id: c.entry.record_id.clone(), reason, detail, suggestion: String::new() }
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
    let mut source = Prepared::new(persons, facility.persons_per_commit);
    let (listed, _) = sign_and_record(&mut source, facility, Some((reason, scope)), sink, &mut summary, true)?;
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
fn chunks(hashes: &[PersonHash], links: &[(usize, usize)], size: usize) -> Vec<Vec<usize>> {
    let n = hashes.len();
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
    order.par_sort_unstable_by(|&a, &b| hashes[a].cmp(&hashes[b]).then(a.cmp(&b)));
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

/// A retraction's persons, few and all read at once, cut into chunks.
struct Prepared {
    persons: Vec<Option<PersonWork>>,
    plan: std::vec::IntoIter<Vec<usize>>,
}

impl Prepared {
    fn new(persons: Vec<PersonWork>, size: usize) -> Prepared {
        let hashes: Vec<PersonHash> = persons.iter().map(|p| p.hash.clone()).collect();
        let plan = chunks(&hashes, &[], size.max(1));
        Prepared { persons: persons.into_iter().map(Some).collect(), plan: plan.into_iter() }
    }
}

impl ChunkSource for Prepared {
    fn total(&self) -> u64 {
        self.persons.len() as u64
    }

    fn next_chunk(
        &mut self,
        _facility: &SigningFacility,
        _sink: &mut dyn BatchSink,
        _summary: &mut Summary,
    ) -> Result<Option<Vec<PersonWork>>, GateError> {
        let Some(chunk) = self.plan.next() else { return Ok(None) };
        chunk
            .into_iter()
            .map(|i| self.persons[i].take().ok_or(GateError::Invariant("a person planned in two chunks")))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// What every chunk of a run records besides its own changes.
struct Recording<'a> {
    run_id: &'a str,
    facility_code: &'a str,
    acting_for: Option<&'a str>,
    kid: &'a str,
    at: i64,
    reason: &'a str,
    total: u64,
}

/// Records one chunk in one transaction, then hands its passports to the sink. Returns how
/// long it took.
fn record(mut w: ChunkWrite, r: &Recording<'_>, sink: &mut dyn BatchSink) -> Result<std::time::Duration, GateError> {
    let start = std::time::Instant::now();
    let change = LedgerChange {
        run_id: r.run_id,
        facility_code: r.facility_code,
        acting_for: r.acting_for,
        kid: r.kid,
        at: r.at,
        doses: w.doses.iter().collect(),
        retracted: w.retracted.iter().map(|d| (d, r.reason)).collect(),
        persons: w.persons.iter().map(|(h, s)| (h.as_slice(), s.as_slice())).collect(),
        passports: w.passports.iter().zip(&w.fresh).filter(|(_, f)| **f).map(|(p, _)| p).collect(),
        fates: w.fates.iter().map(|(u, s)| (u.as_str(), *s)).collect(),
        currents: w.currents.iter().map(|(h, u)| (h.as_slice(), u.as_str())).collect(),
    };
    let stored_meanwhile = sink.ledger().apply(&change).map_err(sink_error)?;
    drop(change);
    // Reused passports come without their QR text (see `Ledger::passports_of`).
    let reused: Vec<&str> = w.passports.iter().filter(|p| p.hc1.is_empty()).map(|p| p.uvci.as_str()).collect();
    if !reused.is_empty() {
        let texts = sink.ledger().hc1_of(&reused).map_err(sink_error)?;
        for p in w.passports.iter_mut().filter(|p| p.hc1.is_empty()) {
            p.hc1 = texts.get(&p.uvci).cloned().ok_or(GateError::Invariant("a reused passport without its QR text"))?;
        }
    }
    // Another run stored some of these UVCIs first: hand out what the store holds.
    for p in &mut w.passports {
        if let Some(hc1) = stored_meanwhile.get(&p.uvci) {
            p.hc1.clone_from(hc1);
        }
    }
    sink.signed(w.passports, w.fresh)?;
    sink.progress(w.done, r.total);
    Ok(start.elapsed())
}

/// One person of a chunk, decided and (when needed) signed.
type Signed = (Decided, Option<(SignedPassport, bool)>);

/// Decides and signs one chunk's persons on the pool.
fn decide_and_sign(
    persons: &[PersonWork],
    facility: &SigningFacility,
    revoked_signers: &HashSet<String>,
    kid: &str,
) -> Result<Vec<Signed>, GateError> {
    persons
        .par_iter()
        .map(|p| -> Result<Signed, GateError> {
            let d = decide(p, facility, revoked_signers)?;
            let signed = match &d.decision {
                Decision::Nothing => None,
                Decision::Reuse(r) => Some((finish(p, &d, facility, &r.kid, r.uvci.clone(), String::new()), false)),
                Decision::Sign(uvci) => {
                    let content = content_of(&p.holder, &plain_doses(&p.doses), uvci.clone(), facility);
                    let hc1 = passport::sign(&content, facility.algorithm(), &facility.signer.cert.kid.0, |m| {
                        facility.signer.key.sign(m)
                    })?
                    .ok_or(GateError::Invariant("a passport without doses"))?;
                    // The estimate's margin is three times the spread measured; a passport
                    // past it stops the run rather than being handed out.
                    if hc1.len() > MAX_HC1_LEN_Q {
                        return Err(GateError::Invariant("a passport longer than a QR code holds"));
                    }
                    Some((finish(p, &d, facility, kid, content.uvci.as_str().to_owned(), hc1), true))
                }
            };
            Ok((d, signed))
        })
        .collect()
}

/// Signs what must be signed and records each chunk (ledger, passports, fates) in one
/// transaction before the sink writes it out, chunk after chunk from `source`: a chunk's
/// persons are read, merged, decided and signed only when its turn comes, so memory holds a
/// few chunks, not the run. Returns the UVCIs listed, sorted, when `list` (a retraction's
/// answer; a batch's would grow with the population), and how long the writer was busy
/// recording.
pub(super) fn sign_and_record(
    source: &mut dyn ChunkSource,
    facility: &SigningFacility,
    retraction: Option<(&str, RetractScope<'_>)>,
    sink: &mut dyn BatchSink,
    summary: &mut Summary,
    list: bool,
) -> Result<(Vec<String>, std::time::Duration), GateError> {
    let revoked_signers = sink.ledger().revoked_signers().map_err(sink_error)?;
    let kid = facility.signer.cert.kid.to_base64();
    if revoked_signers.contains(&kid) {
        return Err(GateError::SignerRevoked { kid });
    }
    let run_id = sink.run_id().to_owned();
    let facility_code = facility.signer.facility_code.clone();
    let recording = Recording {
        run_id: &run_id,
        facility_code: &facility_code,
        // The audit log names the ministry when it retracts, not the facility whose key
        // re-signs.
        acting_for: match retraction {
            Some((_, RetractScope::Ministry)) => Some("ministry"),
            _ => None,
        },
        kid: &kid,
        at: facility.now.unix_timestamp(),
        reason: retraction.map_or("", |r| r.0),
        total: source.total(),
    };
    let mut listed = Vec::new();
    let mut busy = std::time::Duration::ZERO;
    let mut done = 0u64;
    let mut pending: Option<ChunkWrite> = None;
    loop {
        // Read while no chunk is being recorded: the ledger is the sink's one connection.
        // Reading chunk n+1 before chunk n is recorded reads what an uninterrupted run would:
        // chunks share no person, and a correction's two persons share a chunk.
        let Some(persons) = source.next_chunk(facility, sink, summary)? else { break };
        // The pool signs chunk n+1 while a writer thread records chunk n (database first,
        // then the outputs), so storage waits overlap with signing.
        let (signed, recorded) = std::thread::scope(|scope| -> Result<_, GateError> {
            let writer = match pending.take() {
                Some(w) => {
                    let (sink, recording) = (&mut *sink, &recording);
                    Some(
                        std::thread::Builder::new()
                            .name("vaxpass-writer".into())
                            .spawn_scoped(scope, move || record(w, recording, sink))
                            .map_err(|e| GateError::sink("cannot start the output writer thread", e))?,
                    )
                }
                None => None,
            };
            let signed = decide_and_sign(&persons, facility, &revoked_signers, &kid);
            let recorded = match writer {
                Some(h) => h.join().map_err(|_| GateError::Invariant("the output writer thread panicked"))?,
                None => Ok(std::time::Duration::ZERO),
            };
            Ok((signed, recorded))
        })?;
        busy += recorded?;
        let signed = signed?;
        let mut w = ChunkWrite {
            doses: Vec::new(),
            retracted: Vec::new(),
            persons: Vec::with_capacity(persons.len()),
            passports: Vec::with_capacity(persons.len()),
            fresh: Vec::with_capacity(persons.len()),
            fates: Vec::new(),
            currents: Vec::new(),
            done: 0,
        };
        for (p, (d, s)) in persons.iter().zip(signed) {
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
            w.fates.extend(d.fates);
            if let Some((passport, fresh)) = s {
                summary.reused += u64::from(!fresh);
                if fresh {
                    for h in std::iter::once(&p.hash).chain(&p.aliases) {
                        w.currents.push((h.clone(), passport.uvci.clone()));
                    }
                }
                if list {
                    listed.push(passport.uvci.clone());
                }
                w.passports.push(passport);
                w.fresh.push(fresh);
            }
        }
        summary.passports += w.passports.len() as u64;
        done += persons.len() as u64;
        w.done = done;
        pending = Some(w);
    }
    if let Some(w) = pending {
        busy += record(w, &recording, sink)?;
    }
    source.finish(sink, summary)?;
    let changes = sink.ledger().run_changes(&run_id).map_err(sink_error)?;
    summary.revoked = changes.revoked.len() as u64;
    summary.superseded = changes.superseded;
    summary.revoked_uvcis = changes.revoked;
    listed.sort_unstable();
    Ok((listed, busy))
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
