//! Follow-up batches for `vaxpass gen --weeks W` (issue #9, SPEC §8): a station's weeks after
//! the week-0 export, with the truth a dose ledger must reach.
//!
//! # Files
//!
//! With `W >= 1`, `registry.csv` gains a sixth column `previous_ids` (SPEC §8.4; empty for
//! most persons, `;`-separated earlier 12-digit numbers for ≈ 0.5 %), and for each week
//! `k = 1..=W` the folder `week-KK/` (`week-01`, …) holds:
//!
//! - `doses.csv`: a follow-up batch, same columns and typing as the week-0 `doses.csv`, rows
//!   in vaccination-date order across persons (one person's rows in date order).
//! - `truth.csv` (`record_id,expected,person_key,error_kind`): one line per row of
//!   `doses.csv`, in file order. `expected` is `SIGN` or the SPEC §5 code; `person_key` is who
//!   really received the dose (the registry's *current* `id_number`, also for rows typed with
//!   an earlier number, or `FOREIGN:<nat>:<passport>`); `error_kind` is what was generated:
//!   `booster` (a later dose, new record id), `correction_date` / `correction_product` /
//!   `correction_person` (an existing signed record id with corrected content; for
//!   `correction_person` the row carries the identity of the person who really received the
//!   dose), `retyped` (a row rejected earlier for an identity error, typed again correctly with
//!   the same record id), `repeat` (an exact repeat of a signed row: known, nothing changes),
//!   `previous_id` (a later dose typed with the person's earlier number, SPEC §8.4), or a fault
//!   name: the week-0 faults of the module above applied to new doses, plus `duplicate_row`
//!   (a new row repeated under another new record id in the same batch), `ledger_duplicate`
//!   (a ledger dose re-entered under a new record id) and `too_soon` (1–13 days after a
//!   ledger dose).
//! - `retract.txt`: record ids to retract after this week's batch, one per line (LF).
//! - `retract_truth.csv` (`record_id,expected,person_key,reason,facility_code`), one line per
//!   line of `retract.txt`, same order: `retracted` (`never_given`, `wrong_person`) or
//!   `unknown` (`never_signed`: a row that exists but never passed the gate;
//!   `no_such_record`), and the facility that entered the record (SPEC §8.3: a facility may
//!   retract only its own; the truth assumes the ministry, or that facility, retracts).
//! - `expected.csv` (`id_number,doses`): after weeks `0..=k` (each week: batch, then its
//!   retractions), one line per person with at least one ledger dose, in generation order:
//!   the registry's current number (or `FOREIGN:<nat>:<passport>`) and the doses, distinct by
//!   (date, product), sorted by date, as `yyyy-mm-dd/<mp>` joined by `;`. This is what the
//!   person's current passport must carry.
//!
//! Week `k` covers the seven days from [`week_first_day`]`(k)` (Monday 2023-01-02 for week 1)
//! to [`week_last_day`]`(k)`; no follow-up dose lies after the week's last day, so any signing
//! clock at or after it gives the truth (typed future dates are a century off).
//!
//! # Ledger rules the truth follows (SPEC §8.1)
//!
//! For each person, the batch's rows that pass the gate's checks up to `BAD_DATE` are taken in
//! date order (ties in file order): a record id already in the ledger with the same person,
//! product and date is known (`SIGN`, nothing changes); otherwise the row is
//! `DUPLICATE_DOSE` when a kept dose has the same date and product, `DOSE_SEQUENCE` when a
//! kept dose lies less than 14 days away (before or after), else `SIGN` (new, or a correction
//! replacing its record's entry). Kept doses are the person's ledger entries and the batch's
//! rows accepted so far; the entry a correction replaces does not count against it (it is
//! the same dose). Retractions apply after the batch; an id not in the ledger is `unknown`.
//!
//! Follow-ups keep clear of fine points: a booster lies at least 60 days after every dose the
//! person ever had (signed or not); a corrected date lies at least 21 days from every other
//! date of the person, the old one included; a record touched by an event is touched by no
//! other event that week; a `correction_person` moves the dose to a later, unvaccinated adult
//! who gets no other row. A retracted or never-signed id is never used again.
//!
//! # Re-issued numbers (SPEC §8.4)
//!
//! An earlier number is the CCCD the person would have had with the other sex or another
//! birth year (`0PP G YY` from the old values, the same six random digits rule), so it is
//! unique and never another person's current number. It is also chosen so that no registry
//! number lies one digit (of the last six) or one province code away from it: the week-0 and
//! follow-up `mistyped_id_*` and `wrong_province` rows can then never land on it, and their
//! truth does not change when the registry gains `previous_ids`.

use std::collections::BTreeMap;
use std::io::Write as _;

use super::{
    AGE_REFERENCE, BLOCK, BOOSTER_PRODUCTS, CsvOut, DOSE_SEQUENCE, DOSES_HEADER, DUPLICATE_DOSE, GenError,
    ID_BAD_FORMAT, ID_INCONSISTENT, ID_MISSING, NAME_MISMATCH, NOT_IN_REGISTRY, PFIZER, PRODUCTS, PROGRAM_START,
    Pending, Person, Row, SIGN, TRUTH_HEADER, World, base_row, csv_create, iso, stream, uniform_date,
};
use super::{AZ, DOB_MISMATCH, MODERNA, SEX_MISMATCH, VERO};
use crate::provinces::PROVINCES;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use time::macros::date;
use time::{Date, Duration};

/// Most follow-up weeks (`--weeks`): a year of a station's weeks. Each week keeps five files
/// and a row window open while generating.
pub(crate) const MAX_WEEKS: u32 = 52;

/// Monday of follow-up week 1, the first Monday after the last week-0 dose (2022-12-31).
const WEEK1_START: Date = date!(2023 - 01 - 02);

/// First day of follow-up week `k` (1-based).
pub(crate) fn week_first_day(k: u32) -> Date {
    WEEK1_START + Duration::weeks(i64::from(k.saturating_sub(1)))
}

/// Last day of follow-up week `k`: no follow-up dose of week `k` is dated after it.
pub(crate) fn week_last_day(k: u32) -> Date {
    week_first_day(k) + Duration::days(6)
}

/// What one follow-up week holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WeekSummary {
    /// `k`, 1-based (`week-KK/`).
    pub week: u32,
    /// [`week_first_day`].
    pub first_day: Date,
    /// [`week_last_day`].
    pub last_day: Date,
    /// Rows of `doses.csv` (and `truth.csv`).
    pub dose_rows: u64,
    /// Lines of `retract.txt`.
    pub retractions: u64,
    /// Lines of `expected.csv` (persons with at least one ledger dose after the week).
    pub expected_persons: u64,
    /// Rows by expected outcome.
    pub by_truth: BTreeMap<String, u64>,
    /// Rows by `error_kind`.
    pub by_kind: BTreeMap<String, u64>,
    /// Retractions by `expected` (`retracted`, `unknown`).
    pub retract_by_outcome: BTreeMap<String, u64>,
}

// Rates. Per vaccinated person and week unless said otherwise; chosen so that a few thousand
// persons and a few weeks show every kind (the tests print the counts), while most persons'
// weeks bring nothing, as at a real station.
/// Registry persons with an earlier identity number (issue #9: ≈ 0.5 %).
const PREVIOUS_ID_PPM: u32 = 5_000;
/// Of those, persons with two earlier numbers (sex and birth year corrected separately).
const TWO_PREVIOUS_PPM: u32 = 100_000;
/// Vaccinated persons with an earlier number who come for a booster with their old card.
const PREVIOUS_ID_BOOSTER_PPM: u32 = 700_000;
const BOOSTER_PPM: u32 = 25_000;
const CORRECTION_DATE_PPM: u32 = 8_000;
const CORRECTION_PRODUCT_PPM: u32 = 5_000;
const CORRECTION_PERSON_PPM: u32 = 3_000;
const REPEAT_PPM: u32 = 10_000;
/// Per identity-rejected row and week: the commune team re-types it.
const RETYPE_PPM: u32 = 80_000;
const RETRACT_PPM: u32 = 4_000;
const NEVER_SIGNED_PPM: u32 = 2_000;
const LEDGER_DUPLICATE_PPM: u32 = 3_000;
const TOO_SOON_PPM: u32 = 3_000;
/// Per booster row: typed twice in the same batch.
const DUPLICATE_ROW_PPM: u32 = 100_000;

/// Days between a booster and every earlier dose of the person: far above the 14-day rule,
/// so a booster's truth never depends on how the gate counts the distance.
const BOOSTER_GAP: i64 = 60;
/// Days between a corrected date and every other date of the person (its old date included).
const CORRECTION_MARGIN: i64 = 21;
/// Minimum interval of SPEC §5 `DOSE_SEQUENCE`.
const MIN_INTERVAL: i64 = 14;
/// How far ahead (in persons) the receiver of a `correction_person` dose is looked for:
/// bounds the doses held for persons not yet generated.
const RECEIVER_SEARCH: u64 = 64;
/// Rows held back per week to interleave persons by date (as the week-0 window does).
const WEEK_WINDOW: usize = 1_024;
/// Unknown ids that never existed, per week: at least this many.
const NO_SUCH_RECORD_MIN: u64 = 2;

const TAG_WEEKS: u64 = 10;
const TAG_PREVIOUS: u64 = 11;

// -------------------------------------------------------------------------------------------
// Earlier identity numbers

/// The earlier numbers of `p` (SPEC §8.4), usually none.
fn previous_ids(world: &World, p: &Person) -> Vec<String> {
    let mut rng = stream(world.seed, TAG_PREVIOUS, p.index);
    if !rng.chance(PREVIOUS_ID_PPM) {
        return Vec::new();
    }
    let year = p.dob.year();
    let other_year = |rng: &mut super::Rng| {
        let delta = rng.range(1, 9);
        let y = if rng.chance(500_000) { year + delta as i32 } else { year - delta as i32 };
        if (1926..=2022).contains(&y) { y } else { year - delta as i32 }
    };
    let candidates: Vec<(bool, i32)> = if rng.chance(TWO_PREVIOUS_PPM) {
        vec![(!p.female, year), (p.female, other_year(&mut rng))]
    } else if rng.chance(500_000) {
        vec![(!p.female, year)]
    } else {
        vec![(p.female, other_year(&mut rng))]
    };
    candidates
        .into_iter()
        .filter(|(female, y)| (*female, *y) != (p.female, year))
        .map(|(female, y)| world.compose_cccd(p.province, female, y, p.index % BLOCK))
        .filter(|o| isolated(world, o))
        .collect()
}

/// Whether no registry person holds `number`, nor a number one digit (of the last six) or one
/// province code away from it: no mistyped row of anyone can then carry `number`.
fn isolated(world: &World, number: &str) -> bool {
    if world.owner(number).is_some() {
        return false;
    }
    let bytes = number.as_bytes();
    for at in 6..12 {
        for d in b'0'..=b'9' {
            if d == bytes[at] {
                continue;
            }
            let mut v = bytes.to_vec();
            v[at] = d;
            if world.owner(&String::from_utf8_lossy(&v)).is_some() {
                return false;
            }
        }
    }
    PROVINCES
        .iter()
        .filter(|(code, _)| code.as_bytes() != &bytes[1..3])
        .all(|(code, _)| world.owner(&format!("0{code}{}", &number[3..])).is_none())
}

// -------------------------------------------------------------------------------------------
// A person's ledger and a week's plan

/// A ledger entry: the record and the row that last set it (for exact repeats).
#[derive(Debug, Clone)]
struct Entry {
    record_id: String,
    row: Row,
}

/// A follow-up row with its record id and `error_kind`.
#[derive(Debug, Clone)]
struct Planned {
    record_id: String,
    row: Row,
    kind: &'static str,
}

/// A line of `retract.txt` with its truth.
struct Retraction {
    record_id: String,
    expected: &'static str,
    person_key: String,
    reason: &'static str,
    /// The facility that entered the record (empty for `no_such_record`): SPEC §8.3 lets a
    /// facility retract only its own records.
    facility_code: String,
}

/// Week-0 and follow-up codes of the identity checks: a row rejected with one of them can be
/// typed again correctly (`retyped`).
fn identity_code(code: &str) -> bool {
    [ID_MISSING, ID_BAD_FORMAT, ID_INCONSISTENT, NOT_IN_REGISTRY, NAME_MISMATCH, DOB_MISMATCH, SEX_MISMATCH]
        .contains(&code)
}

/// SPEC §8.1 for one person's rows of one batch (already in date order, ties in file order),
/// against the person's ledger entries before the batch: sets `row.expected`.
fn judge(ledger: &[Entry], batch: &mut [Planned]) {
    let mut accepted: Vec<(&'static str, Date)> = Vec::new();
    for item in batch.iter_mut() {
        let row = &mut item.row;
        if let Some(code) = row.stage {
            row.expected = code;
            continue;
        }
        let own = ledger.iter().find(|e| e.record_id == item.record_id);
        if own
            .is_some_and(|e| e.row.person_key == row.person_key && e.row.product == row.product && e.row.day == row.day)
        {
            row.expected = SIGN;
            continue;
        }
        let mp = PRODUCTS[row.product].mp;
        let kept = ledger
            .iter()
            .filter(|e| e.record_id != item.record_id)
            .map(|e| (PRODUCTS[e.row.product].mp, e.row.day))
            .chain(accepted.iter().copied());
        let (mut duplicate, mut near) = (false, false);
        for (kmp, day) in kept {
            duplicate |= kmp == mp && day == row.day;
            near |= (day - row.day).whole_days().abs() < MIN_INTERVAL;
        }
        row.expected = if duplicate {
            DUPLICATE_DOSE
        } else if near {
            DOSE_SEQUENCE
        } else {
            accepted.push((mp, row.day));
            SIGN
        };
    }
}

/// Whether `day` lies at least `gap` days from every date in `dates`.
fn clear_of(day: Date, dates: &[Date], gap: i64) -> bool {
    dates.iter().all(|d| (*d - day).whole_days().abs() >= gap)
}

/// `d` moved by `months` calendar months (day clamped to 28 when needed): a month typed wrong.
fn shift_months(d: Date, months: i32) -> Option<Date> {
    let m0 = i32::from(d.month() as u8) - 1 + months;
    let year = d.year() + m0.div_euclid(12);
    let month = time::Month::try_from(u8::try_from(m0.rem_euclid(12) + 1).ok()?).ok()?;
    Date::from_calendar_date(year, month, d.day()).or_else(|_| Date::from_calendar_date(year, month, 28)).ok()
}

/// The doses of a person's expected line: distinct by (date, product), sorted by date.
fn doses_field<'a>(rows: impl Iterator<Item = &'a Row>) -> String {
    let mut doses: Vec<(Date, &'static str)> = rows.map(|r| (r.day, PRODUCTS[r.product].mp)).collect();
    doses.sort_unstable();
    doses.dedup();
    doses.iter().map(|(d, mp)| format!("{}/{mp}", iso(*d))).collect::<Vec<_>>().join(";")
}

// -------------------------------------------------------------------------------------------
// Output per week

/// The files of one follow-up week and its counts.
struct WeekOut {
    summary: WeekSummary,
    doses: CsvOut,
    truth: CsvOut,
    expected: CsvOut,
    retract_truth: CsvOut,
    retract: BufWriter<File>,
    paths: [PathBuf; 5],
    window: BinaryHeap<Pending<Planned>>,
    pushed: u64,
    new_ids: u64,
}

impl WeekOut {
    fn create(dir: &Path, k: u32) -> Result<Self, GenError> {
        let dir = dir.join(format!("week-{k:02}"));
        std::fs::create_dir_all(&dir).map_err(|cause| GenError::Io { path: dir.clone(), cause })?;
        let cap = 1 << 14;
        let (doses, p1) = csv_create(&dir, "doses.csv", &DOSES_HEADER, cap)?;
        let (truth, p2) = csv_create(&dir, "truth.csv", &TRUTH_HEADER, cap)?;
        let (expected, p3) = csv_create(&dir, "expected.csv", &["id_number", "doses"], cap)?;
        let (retract_truth, p4) = csv_create(
            &dir,
            "retract_truth.csv",
            &["record_id", "expected", "person_key", "reason", "facility_code"],
            cap,
        )?;
        let p5 = dir.join("retract.txt");
        let file = File::create(&p5).map_err(|cause| GenError::Io { path: p5.clone(), cause })?;
        Ok(WeekOut {
            summary: WeekSummary {
                week: k,
                first_day: week_first_day(k),
                last_day: week_last_day(k),
                dose_rows: 0,
                retractions: 0,
                expected_persons: 0,
                by_truth: BTreeMap::new(),
                by_kind: BTreeMap::new(),
                retract_by_outcome: BTreeMap::new(),
            },
            doses,
            truth,
            expected,
            retract_truth,
            retract: BufWriter::with_capacity(cap, file),
            paths: [p1, p2, p3, p4, p5],
            window: BinaryHeap::new(),
            pushed: 0,
            new_ids: 0,
        })
    }

    /// A record id never used before: `W<KK>-<8 digits>` (week-0 ids are `R<8 digits>`).
    fn new_id(&mut self) -> String {
        self.new_ids += 1;
        format!("W{:02}-{:08}", self.summary.week, self.new_ids)
    }

    fn push(&mut self, item: Planned) -> Result<(), GenError> {
        self.pushed += 1;
        self.window.push(Pending { julian: item.row.day.to_julian_day(), seq: self.pushed, item: Box::new(item) });
        while self.window.len() > WEEK_WINDOW {
            if let Some(p) = self.window.pop() {
                self.write_row(&p.item)?;
            }
        }
        Ok(())
    }

    fn write_row(&mut self, item: &Planned) -> Result<(), GenError> {
        let row = &item.row;
        self.doses.write_record([
            item.record_id.as_str(),
            &row.facility,
            &row.id,
            &row.name,
            &row.dob,
            &row.sex,
            row.nationality,
            &row.phone,
            &row.vaccine,
            &row.lot,
            &row.dose_number,
            &row.vaccination_date,
        ])?;
        self.truth.write_record([item.record_id.as_str(), row.expected, &row.person_key, item.kind])?;
        self.summary.dose_rows += 1;
        *self.summary.by_truth.entry(row.expected.to_owned()).or_insert(0) += 1;
        *self.summary.by_kind.entry(item.kind.to_owned()).or_insert(0) += 1;
        Ok(())
    }

    fn write_retraction(&mut self, r: &Retraction) -> Result<(), GenError> {
        writeln!(self.retract, "{}", r.record_id)
            .map_err(|cause| GenError::Io { path: self.paths[4].clone(), cause })?;
        self.retract_truth.write_record([
            r.record_id.as_str(),
            r.expected,
            &r.person_key,
            r.reason,
            &r.facility_code,
        ])?;
        self.summary.retractions += 1;
        *self.summary.retract_by_outcome.entry(r.expected.to_owned()).or_insert(0) += 1;
        Ok(())
    }

    fn write_expected<'a>(&mut self, key: &str, rows: impl Iterator<Item = &'a Row>) -> Result<(), GenError> {
        let doses = doses_field(rows);
        if !doses.is_empty() {
            self.expected.write_record([key, doses.as_str()])?;
            self.summary.expected_persons += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<WeekSummary, GenError> {
        while let Some(p) = self.window.pop() {
            self.write_row(&p.item)?;
        }
        let [p1, p2, p3, p4, p5] = &self.paths;
        for (w, path) in
            [(&mut self.doses, p1), (&mut self.truth, p2), (&mut self.expected, p3), (&mut self.retract_truth, p4)]
        {
            w.flush().map_err(|cause| GenError::Io { path: path.clone(), cause })?;
        }
        self.retract.flush().map_err(|cause| GenError::Io { path: p5.clone(), cause })?;
        Ok(self.summary)
    }
}

// -------------------------------------------------------------------------------------------
// The planner

/// Plans and writes every follow-up week while [`super::generate`] streams the persons.
pub(super) struct FollowUps {
    weeks: Vec<WeekOut>,
    /// Doses moved by a `correction_person` to a person not generated yet: by person index,
    /// (week, entry). Bounded by [`RECEIVER_SEARCH`] persons ahead.
    incoming: BTreeMap<u64, Vec<(u32, Entry)>>,
    with_previous: u64,
    /// Registry persons (`--persons`), which sets how many unknown ids each week lists.
    persons: u64,
}

impl FollowUps {
    pub(super) fn create(dir: &Path, weeks: u32, persons: u64) -> Result<Self, GenError> {
        let weeks = (1..=weeks).map(|k| WeekOut::create(dir, k)).collect::<Result<_, _>>()?;
        Ok(FollowUps { weeks, incoming: BTreeMap::new(), with_previous: 0, persons })
    }

    /// Plans registry person `p`'s follow-ups from their week-0 `rows` (whose record ids are
    /// `R<base_seq + 1>`, … in order), writes them, and returns the `previous_ids` field.
    pub(super) fn plan_person(
        &mut self,
        world: &World,
        p: &Person,
        rows: &[Row],
        base_seq: u64,
    ) -> Result<String, GenError> {
        let previous = previous_ids(world, p);
        if !previous.is_empty() {
            self.with_previous += 1;
        }
        let mut incoming = self.incoming.remove(&p.index).unwrap_or_default();
        let mut rng = stream(world.seed, TAG_WEEKS, p.index);
        let mut ledger: Vec<Entry> = Vec::new();
        let mut retype: Vec<Entry> = Vec::new();
        // (record id, facility code) of rows that never passed the gate and never will.
        let mut never_signed: Vec<(String, String)> = Vec::new();
        // Every date the person ever had a dose on, signed or not, old values of corrected
        // records included: boosters and corrections keep clear of all of them.
        let mut known: Vec<Date> = Vec::new();
        for (k, row) in rows.iter().enumerate() {
            let record_id = format!("R{:08}", base_seq + k as u64 + 1);
            known.push(row.day);
            let entry = Entry { record_id, row: row.clone() };
            if row.expected == SIGN {
                ledger.push(entry);
            } else if identity_code(row.expected) {
                retype.push(entry);
            } else {
                never_signed.push((entry.record_id, entry.row.facility));
            }
        }
        let vaccinated = !rows.is_empty();
        if !vaccinated && incoming.is_empty() {
            // Nothing to plan and no line in any expected.csv (most unvaccinated persons).
            return Ok(previous.join(";"));
        }
        let forced_week = (!previous.is_empty() && vaccinated && rng.chance(PREVIOUS_ID_BOOSTER_PPM))
            .then(|| 1 + rng.below(self.weeks.len() as u64) as u32);
        for w in 0..self.weeks.len() {
            let k = w as u32 + 1;
            let (first, last) = (week_first_day(k), week_last_day(k));
            incoming.retain(|(week, entry)| {
                if *week == k {
                    ledger.push(entry.clone());
                }
                *week != k
            });
            let mut batch: Vec<Planned> = Vec::new();
            let mut moved: Option<(Planned, Person)> = None;
            let mut retractions: Vec<Retraction> = Vec::new();
            if vaccinated {
                let mut touched: Vec<String> = Vec::new();
                let ledger_dates: Vec<Date> = ledger.iter().map(|e| e.row.day).collect();
                // Retyped rows: the real dose, typed correctly, under its old record id.
                let mut k_r = 0;
                while k_r < retype.len() {
                    let c = &retype[k_r];
                    if rng.chance(RETYPE_PPM) && clear_of(c.row.day, &ledger_dates, MIN_INTERVAL) && c.row.day <= last {
                        let c = retype.remove(k_r);
                        let mut row = base_row(p, &mut rng, c.row.product, c.row.day, 0);
                        row.facility = c.row.facility.clone();
                        row.person_key.clone_from(&p.cccd);
                        touched.push(c.record_id.clone());
                        batch.push(Planned { record_id: c.record_id, row, kind: "retyped" });
                    } else {
                        k_r += 1;
                    }
                }
                let batch_dates: Vec<Date> = batch.iter().map(|b| b.row.day).collect();
                // Corrections of signed records.
                if rng.chance(CORRECTION_DATE_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    let old = e.row.day;
                    let shifts = [1, -1, 2, -2];
                    let start = rng.index(shifts.len());
                    let new = (0..shifts.len())
                        .filter_map(|t| shift_months(old, shifts[(start + t) % shifts.len()]))
                        .find(|d| {
                            *d >= PROGRAM_START
                                && *d >= p.birth_floor()
                                && *d <= last
                                && clear_of(*d, &known, CORRECTION_MARGIN)
                                && clear_of(*d, &batch_dates, CORRECTION_MARGIN)
                        });
                    if let Some(new) = new {
                        let mut row = base_row(p, &mut rng, e.row.product, new, 0);
                        row.facility = e.row.facility.clone();
                        row.person_key.clone_from(&p.cccd);
                        touched.push(e.record_id.clone());
                        known.push(new);
                        batch.push(Planned { record_id: e.record_id.clone(), row, kind: "correction_date" });
                    }
                }
                if rng.chance(CORRECTION_PRODUCT_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    let choices = [AZ, VERO, PFIZER, MODERNA];
                    let start = rng.index(choices.len());
                    let product = (0..choices.len())
                        .map(|t| choices[(start + t) % choices.len()])
                        .find(|c| PRODUCTS[*c].mp != PRODUCTS[e.row.product].mp)
                        .unwrap_or(PFIZER);
                    let mut row = base_row(p, &mut rng, product, e.row.day, 0);
                    row.facility = e.row.facility.clone();
                    row.person_key.clone_from(&p.cccd);
                    touched.push(e.record_id.clone());
                    batch.push(Planned { record_id: e.record_id.clone(), row, kind: "correction_product" });
                }
                if rng.chance(CORRECTION_PERSON_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                    && let Some(q) = self.receiver(world, p.index, &mut rng, e.row.day)
                {
                    let mut row = base_row(&q, &mut rng, e.row.product, e.row.day, 0);
                    row.facility = e.row.facility.clone();
                    row.person_key.clone_from(&q.cccd);
                    touched.push(e.record_id.clone());
                    moved = Some((Planned { record_id: e.record_id.clone(), row, kind: "correction_person" }, q));
                }
                if rng.chance(REPEAT_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    touched.push(e.record_id.clone());
                    batch.push(Planned { record_id: e.record_id.clone(), row: e.row.clone(), kind: "repeat" });
                }
                // A later dose.
                let forced = forced_week == Some(k);
                let earliest = known.iter().max().map(|d| *d + Duration::days(BOOSTER_GAP));
                if (forced || rng.chance(BOOSTER_PPM))
                    && let Some(earliest) = earliest
                    && earliest <= last
                {
                    let day = if rng.chance(800_000) {
                        uniform_date(&mut rng, earliest.max(first), last)
                    } else {
                        uniform_date(&mut rng, earliest, last)
                    };
                    let adult = p.age_at(day) >= 18;
                    let product = if adult { *rng.weighted(&BOOSTER_PRODUCTS) } else { PFIZER };
                    let number = ledger.len() + 1;
                    let mut row = base_row(p, &mut rng, product, day, number);
                    row.person_key.clone_from(&p.cccd);
                    let kind = match previous.first() {
                        Some(old) if forced => {
                            row.id.clone_from(old);
                            "previous_id"
                        }
                        _ => {
                            world.inject(p, &mut rng, &mut row);
                            if row.stage.is_some() { row.fault.label() } else { "booster" }
                        }
                    };
                    known.push(day);
                    let id = self.weeks[w].new_id();
                    if rng.chance(DUPLICATE_ROW_PPM) {
                        let dup = self.weeks[w].new_id();
                        never_signed.push((dup.clone(), row.facility.clone()));
                        batch.push(Planned { record_id: id.clone(), row: row.clone(), kind });
                        batch.push(Planned { record_id: dup, row, kind: "duplicate_row" });
                    } else {
                        batch.push(Planned { record_id: id, row, kind });
                    }
                }
                // Faults against the ledger.
                if rng.chance(LEDGER_DUPLICATE_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    let id = self.weeks[w].new_id();
                    never_signed.push((id.clone(), e.row.facility.clone()));
                    batch.push(Planned { record_id: id, row: e.row.clone(), kind: "ledger_duplicate" });
                }
                if rng.chance(TOO_SOON_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    let room = (last - e.row.day).whole_days().min(MIN_INTERVAL - 1);
                    if room >= 1 {
                        let day = e.row.day + Duration::days(rng.range(1, room));
                        let product = *rng.weighted(&BOOSTER_PRODUCTS);
                        let mut row = base_row(p, &mut rng, product, day, 0);
                        row.person_key.clone_from(&p.cccd);
                        let id = self.weeks[w].new_id();
                        never_signed.push((id.clone(), row.facility.clone()));
                        touched.push(e.record_id.clone());
                        batch.push(Planned { record_id: id, row, kind: "too_soon" });
                    }
                }
                // Retractions after the batch: a signed record, or an id never signed.
                if rng.chance(RETRACT_PPM)
                    && let Some(e) = pick_untouched(&mut rng, &ledger, &touched)
                {
                    touched.push(e.record_id.clone());
                    let reason = if rng.chance(500_000) { "never_given" } else { "wrong_person" };
                    retractions.push(Retraction {
                        record_id: e.record_id.clone(),
                        expected: "retracted",
                        person_key: p.cccd.clone(),
                        reason,
                        facility_code: e.row.facility.clone(),
                    });
                }
                if rng.chance(NEVER_SIGNED_PPM) && !never_signed.is_empty() {
                    let (id, facility_code) = never_signed.remove(rng.index(never_signed.len()));
                    retractions.push(Retraction {
                        record_id: id,
                        expected: "unknown",
                        person_key: p.cccd.clone(),
                        reason: "never_signed",
                        facility_code,
                    });
                }
            }
            // Judge in date order (ties in push order), then apply.
            batch.sort_by_key(|b| b.row.day);
            judge(&ledger, &mut batch);
            // Every row was judged against the ledger before the batch; now apply it.
            for item in &batch {
                if item.row.expected != SIGN {
                    match item.kind {
                        // Their ids are in the ledger (none of these is generated to fail).
                        "correction_date" | "correction_product" | "repeat" => {}
                        // Already counted as never signed when made.
                        "duplicate_row" | "ledger_duplicate" | "too_soon" => {}
                        "retyped" => never_signed.push((item.record_id.clone(), item.row.facility.clone())),
                        // A new dose with an identity fault: re-typed in a later week, maybe.
                        _ if item.row.stage.is_some_and(identity_code) => {
                            retype.push(Entry { record_id: item.record_id.clone(), row: item.row.clone() });
                        }
                        _ => never_signed.push((item.record_id.clone(), item.row.facility.clone())),
                    }
                    continue;
                }
                match ledger.iter_mut().find(|e| e.record_id == item.record_id) {
                    Some(e) => e.row = item.row.clone(),
                    None => ledger.push(Entry { record_id: item.record_id.clone(), row: item.row.clone() }),
                }
            }
            if let Some((mut item, q)) = moved {
                let mut alone = [item.clone()];
                judge(&[], &mut alone);
                item.row.expected = alone[0].row.expected;
                if item.row.expected == SIGN {
                    ledger.retain(|e| e.record_id != item.record_id);
                    self.incoming
                        .entry(q.index)
                        .or_default()
                        .push((k, Entry { record_id: item.record_id.clone(), row: item.row.clone() }));
                }
                batch.push(item);
            }
            for item in batch {
                self.weeks[w].push(item)?;
            }
            for r in &retractions {
                ledger.retain(|e| e.record_id != r.record_id);
                self.weeks[w].write_retraction(r)?;
            }
            self.weeks[w].write_expected(&p.cccd, ledger.iter().map(|e| &e.row))?;
        }
        Ok(previous.join(";"))
    }

    /// A later registry person, an unvaccinated adult not yet receiving a moved dose, who
    /// really received a dose given on `day`.
    fn receiver(&self, world: &World, from: u64, rng: &mut super::Rng, day: Date) -> Option<Person> {
        for _ in 0..8 {
            let j = from + 1 + rng.below(RECEIVER_SEARCH);
            if j >= world.persons || self.incoming.contains_key(&j) {
                continue;
            }
            let q = world.person(j);
            if q.age_at(AGE_REFERENCE) < 18 || q.birth_floor() >= day || !world.schedule(&q).is_empty() {
                continue;
            }
            return Some(q);
        }
        None
    }

    /// A foreign national's week-0 rows: no follow-ups, but a line in every `expected.csv`.
    pub(super) fn foreigner(&mut self, rows: &[Row]) -> Result<(), GenError> {
        let Some(key) = rows.first().map(|r| r.person_key.clone()) else {
            return Ok(());
        };
        for week in &mut self.weeks {
            week.write_expected(&key, rows.iter().filter(|r| r.expected == SIGN))?;
        }
        Ok(())
    }

    /// Adds the ids that never existed (after the `week0_rows` week-0 ids), flushes every
    /// week, and returns the summaries and the count of persons with earlier numbers.
    pub(super) fn finish(self, week0_rows: u64) -> Result<(Vec<WeekSummary>, u64), GenError> {
        let per_week = NO_SUCH_RECORD_MIN.max(self.persons / 20_000);
        let mut out = Vec::with_capacity(self.weeks.len());
        for mut week in self.weeks {
            let first = week0_rows + 1 + u64::from(week.summary.week - 1) * per_week;
            for n in first..first + per_week {
                // Ids of records that do not exist: past the last week-0 id.
                week.write_retraction(&Retraction {
                    record_id: format!("R{n:08}"),
                    expected: "unknown",
                    person_key: String::new(),
                    reason: "no_such_record",
                    facility_code: String::new(),
                })?;
            }
            out.push(week.finish()?);
        }
        Ok((out, self.with_previous))
    }
}

/// A ledger entry not yet touched this week, at random.
fn pick_untouched(rng: &mut super::Rng, ledger: &[Entry], touched: &[String]) -> Option<Entry> {
    let free: Vec<&Entry> = ledger.iter().filter(|e| !touched.contains(&e.record_id)).collect();
    free.get(rng.index(free.len())).map(|e| (*e).clone())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::tests::{Cols, Replay, read};
    use super::super::{GenOptions, GenSummary, Rng, generate};
    use super::*;

    fn run(persons: u64, seed: u64, weeks: u32) -> (tempfile::TempDir, GenSummary) {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(&GenOptions { persons, seed, weeks }, dir.path()).unwrap();
        (dir, summary)
    }

    fn planned(record_id: &str, product: usize, day: Date) -> Planned {
        let world = World::new(1, 10);
        let p = world.person(3);
        let mut row = base_row(&p, &mut Rng(5), product, day, 0);
        row.person_key.clone_from(&p.cccd);
        Planned { record_id: record_id.to_owned(), row, kind: "booster" }
    }

    fn entry(record_id: &str, product: usize, day: Date) -> Entry {
        let p = planned(record_id, product, day);
        Entry { record_id: p.record_id, row: p.row }
    }

    fn verdicts(ledger: &[Entry], mut batch: Vec<Planned>) -> Vec<&'static str> {
        batch.sort_by_key(|b| b.row.day);
        judge(ledger, &mut batch);
        batch.iter().map(|b| b.row.expected).collect()
    }

    #[test]
    fn judge_applies_the_ledger_rules() {
        let d = date!(2022 - 03 - 01);
        let ledger = [entry("R1", PFIZER, d)];
        // Known: same record, person, product and date.
        assert_eq!(verdicts(&ledger, vec![planned("R1", PFIZER, d)]), [SIGN]);
        // The same dose under another record id.
        assert_eq!(verdicts(&ledger, vec![planned("R2", PFIZER, d)]), [DUPLICATE_DOSE]);
        // Less than 14 days away, before or after; 14 days is allowed.
        assert_eq!(verdicts(&ledger, vec![planned("R2", MODERNA, d + Duration::days(13))]), [DOSE_SEQUENCE]);
        assert_eq!(verdicts(&ledger, vec![planned("R2", MODERNA, d - Duration::days(13))]), [DOSE_SEQUENCE]);
        assert_eq!(verdicts(&ledger, vec![planned("R2", MODERNA, d + Duration::days(14))]), [SIGN]);
        // A correction of R1 is not judged against R1's own entry.
        assert_eq!(verdicts(&ledger, vec![planned("R1", MODERNA, d)]), [SIGN]);
        assert_eq!(verdicts(&ledger, vec![planned("R1", PFIZER, d + Duration::days(3))]), [SIGN]);
        // The batch in date order: the earlier of two close new doses is kept.
        let later = planned("R3", MODERNA, d + Duration::days(70));
        let earlier = planned("R4", PFIZER, d + Duration::days(60));
        let mut batch = vec![later, earlier];
        batch.sort_by_key(|b| b.row.day);
        judge(&ledger, &mut batch);
        assert_eq!((batch[0].record_id.as_str(), batch[0].row.expected), ("R4", SIGN));
        assert_eq!((batch[1].record_id.as_str(), batch[1].row.expected), ("R3", DOSE_SEQUENCE));
    }

    #[test]
    fn previous_ids_are_unique_isolated_and_nobody_elses() {
        let world = World::new(4, 200_000);
        let mut seen = std::collections::HashSet::new();
        let mut persons = 0;
        for i in 0..200_000 {
            let p = world.person(i);
            let old = previous_ids(&world, &p);
            persons += usize::from(!old.is_empty());
            for o in old {
                assert_eq!(world.owner(&o), None);
                assert!(isolated(&world, &o));
                assert_ne!(o[..6], p.cccd[..6], "the sex/century or year digits differ");
                assert_eq!(o[..3], p.cccd[..3], "same birth province");
                assert!(seen.insert(o));
            }
        }
        // ≈ 0.5 %, less the few numbers that are not isolated.
        assert!((600..1_200).contains(&persons), "{persons}");
    }

    /// Replays every week with the gate's own checks (previous numbers included) and the
    /// ledger rules of SPEC §8.1, independently of the planner, and compares each verdict,
    /// person and `expected.csv` with the generated truth.
    #[test]
    fn gate_and_ledger_replay_agrees_with_every_week() {
        const WEEKS: u32 = 4;
        let (dir, summary) = run(8_000, 31, WEEKS);
        let dir = dir.path();
        let replay = Replay::load(dir);
        let mut ledger: HashMap<String, (String, &'static str, Date)> = HashMap::new();
        let (header, doses) = read(&dir.join("doses.csv"));
        let (_, truth) = read(&dir.join("truth.csv"));
        let cols = Cols::of(&header);
        for (row, t) in doses.iter().zip(&truth) {
            if &t[1] == SIGN {
                ledger.insert(row[0].to_owned(), replay.stage(row, &cols).unwrap());
            }
        }
        let mut kinds: BTreeMap<(String, String), u64> = BTreeMap::new();
        for k in 1..=WEEKS {
            let wd = dir.join(format!("week-{k:02}"));
            let (header, doses) = read(&wd.join("doses.csv"));
            let (_, truth) = read(&wd.join("truth.csv"));
            let cols = Cols::of(&header);
            let mut verdict: Vec<Result<String, &'static str>> = Vec::new();
            let mut by_person: BTreeMap<String, Vec<(Date, usize, &'static str)>> = BTreeMap::new();
            for (n, row) in doses.iter().enumerate() {
                match replay.stage(row, &cols) {
                    Ok((key, mp, day)) => {
                        by_person.entry(key.clone()).or_default().push((day, n, mp));
                        verdict.push(Ok(key));
                    }
                    Err(code) => verdict.push(Err(code)),
                }
            }
            let mut signed: Vec<(String, (String, &'static str, Date))> = Vec::new();
            let mut entries_of: HashMap<&str, Vec<(&str, &'static str, Date)>> = HashMap::new();
            for (id, (key, mp, d)) in &ledger {
                entries_of.entry(key.as_str()).or_default().push((id.as_str(), *mp, *d));
            }
            for (key, mut rows) in by_person {
                rows.sort();
                let entries = entries_of.get(key.as_str()).cloned().unwrap_or_default();
                let mut accepted: Vec<(&'static str, Date)> = Vec::new();
                for (day, n, mp) in rows {
                    let id = &doses[n][0];
                    if ledger.get(id) == Some(&(key.clone(), mp, day)) {
                        continue;
                    }
                    let kept = entries
                        .iter()
                        .filter(|(rid, ..)| *rid != id)
                        .map(|(_, m, d)| (*m, *d))
                        .chain(accepted.iter().copied());
                    let (mut dup, mut near) = (false, false);
                    for (m, d) in kept {
                        dup |= m == mp && d == day;
                        near |= (d - day).whole_days().abs() < 14;
                    }
                    if dup {
                        verdict[n] = Err(DUPLICATE_DOSE);
                    } else if near {
                        verdict[n] = Err(DOSE_SEQUENCE);
                    } else {
                        accepted.push((mp, day));
                        signed.push((id.to_owned(), (key.clone(), mp, day)));
                    }
                }
            }
            let mut wrong = Vec::new();
            for ((row, t), v) in doses.iter().zip(&truth).zip(&verdict) {
                let (got, key_ok) = match v {
                    Ok(key) => (SIGN, key == &t[2]),
                    Err(code) => (*code, true),
                };
                *kinds.entry((t[3].to_owned(), t[1].to_owned())).or_default() += 1;
                if got != &t[1] || !key_ok {
                    wrong.push(format!("week {k}: {} got {got} want {} ({})", &row[0], &t[1], &t[3]));
                }
                let intended = match &t[3] {
                    "booster" | "previous_id" | "retyped" | "repeat" => Some(SIGN),
                    "correction_date" | "correction_product" | "correction_person" => Some(SIGN),
                    "ledger_duplicate" => Some(DUPLICATE_DOSE),
                    "too_soon" => Some(DOSE_SEQUENCE),
                    _ => None,
                };
                if let Some(want) = intended {
                    assert_eq!(&t[1], want, "week {k}: {} ({}) is generated to give {want}", &row[0], &t[3]);
                }
            }
            assert!(
                wrong.is_empty(),
                "{} rows disagree, e.g.\n{}",
                wrong.len(),
                wrong[..wrong.len().min(20)].join("\n")
            );
            ledger.extend(signed);
            let retract = std::fs::read_to_string(wd.join("retract.txt")).unwrap();
            for id in retract.lines() {
                ledger.remove(id);
            }
            let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut doses_of: BTreeMap<&String, Vec<(Date, &'static str)>> = BTreeMap::new();
            for (key, mp, day) in ledger.values() {
                doses_of.entry(key).or_default().push((*day, *mp));
            }
            for (key, mut d) in doses_of {
                d.sort_unstable();
                d.dedup();
                want.insert(key.clone(), d.iter().map(|(day, mp)| format!("{}/{mp}", iso(*day))).collect());
            }
            let (_, expected) = read(&wd.join("expected.csv"));
            let got: BTreeMap<String, Vec<String>> =
                expected.iter().map(|r| (r[0].to_owned(), r[1].split(';').map(str::to_owned).collect())).collect();
            assert_eq!(got, want, "week {k}: expected.csv");
            assert_eq!(summary.weeks[(k - 1) as usize].expected_persons as usize, expected.len());
        }
        for ((kind, expected), n) in &kinds {
            println!("{kind:26} {expected:16} {n:6}");
        }
    }

    /// Not a timed assertion: run with `--ignored --nocapture` to see the cost of the weeks.
    #[test]
    #[ignore = "slow: generates 100 000 persons twice"]
    fn throughput_with_and_without_weeks() {
        for weeks in [0, 4] {
            let start = std::time::Instant::now();
            let (_dir, summary) = run(100_000, 1, weeks);
            let rows: u64 = summary.weeks.iter().map(|w| w.dose_rows).sum();
            println!(
                "--weeks {weeks}: {} week-0 rows, {rows} follow-up rows in {:.2} s",
                summary.dose_rows,
                start.elapsed().as_secs_f64()
            );
        }
    }
}
