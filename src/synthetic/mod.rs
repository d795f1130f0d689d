//! Synthetic registry and dose files for `vaxpass gen` (SPEC §6), with the verdict the signing
//! gate must reach for every dose row.
//!
//! [`generate`] writes three RFC 4180 files (UTF-8, header row, CRLF):
//! - `registry.csv` (`id_number,old_id,full_name,dob,sex`): the population registry extract of
//!   SPEC §4, one row per person, in a shuffled order;
//! - `doses.csv`: the SPEC §4 dose export, typed the way facility staff type (DOMAIN §2, §4);
//! - `truth.csv` (`record_id,expected,person_key,error_kind`): for each dose row, in the same
//!   order, what the gate must answer (`SIGN` or the SPEC §5 reason code), who really received
//!   the dose (registry `id_number`, `FOREIGN:<nat>:<passport>` or `UNREGISTERED:<n>`), and
//!   what was injected.
//!
//! With [`GenOptions::weeks`] ≥ 1 (`--weeks W`, issue #9), `registry.csv` gains a
//! `previous_ids` column and each follow-up week gets a folder `week-KK/` with a batch, its
//! truth, the retractions and each person's expected doses: see [`weeks`]. Without it the
//! three files above are byte for byte what they were before follow-ups existed.
//!
//! # Error model
//!
//! Each dose row of a registry person gets at most one injected fault, drawn per row. The
//! nominal rates, per 10 000 ordinary rows, are below; a fault that does not apply to the
//! person (no CMND, no `oa`/`uy` word, a birth day above 12, …) falls back to `clean`, so the
//! measured rates are somewhat lower (the tests print them).
//!
//! | fault | per 10 000 | expected |
//! |---|---|---|
//! | `clean` | 7 190 | `SIGN` |
//! | `no_diacritics`, `all_caps`, `nfd`, `extra_spaces`, `old_tone_placement` | 220, 160, 70, 90, 60 | `SIGN` |
//! | `cmnd_typed`, `leading_zero_lost`, `id_dots_spaces`, `cccd_prefix`, `fullwidth_digits` | 180, 80, 70, 50, 20 | `SIGN` |
//! | `scientific_notation`, `health_insurance_number`, `phone_as_id` | 90, 60, 60 | `ID_BAD_FORMAT` |
//! | `id_missing_text`, `blank_id` | 100, 200 | `ID_MISSING` |
//! | `wrong_province` | 60 | `ID_INCONSISTENT` (code that does not exist) or `NOT_IN_REGISTRY` |
//! | `mistyped_id_nobody` | 100 | `NOT_IN_REGISTRY` |
//! | `mistyped_id_other_person` | 110 (`mistyped_id_nobody` when the person has no neighbour) | `NAME_MISMATCH` |
//! | `name_typo`, `dropped_middle_name`, `swapped_name_order` | 350, 120, 60 | `NAME_MISMATCH` |
//! | `dob_day_month_swap` | 160 | `DOB_MISMATCH` |
//! | `wrong_sex` | 90 | `ID_INCONSISTENT` (typed with the CCCD) or `SEX_MISMATCH` (typed with the CMND) |
//! | `future_date`, `date_before_birth`, `date_before_program` | 40, 30, 40 | `BAD_DATE` |
//! | `bad_row` | 70 | `BAD_ROW` |
//!
//! Besides these, per person or as extra rows:
//! - `dob_placeholder`: a registry person born before 1950 has a year-only (or year-month) date
//!   of birth with probability 2 %; 80 % of their otherwise clean rows type the `01/01/yyyy`
//!   placeholder → `SIGN`.
//! - `borrowed_identity`: 10 % of vaccinated children aged 5–13 have every dose typed with a
//!   registry adult's number but their own name, birth date and sex. Through the adult's CMND
//!   the registry finds the adult → `NAME_MISMATCH`; through the adult's CCCD the century/sex
//!   and year digits disagree with the child's row, which SPEC §5 checks first →
//!   `ID_INCONSISTENT`. Never `SIGN`.
//! - `duplicate_row` (1.2 % of signed rows): an exact re-entry later in file order →
//!   `DUPLICATE_DOSE`; `too_soon` (0.6 % of signed rows): an extra dose 1–13 days after an
//!   accepted one → `DOSE_SEQUENCE`; `unknown_vaccine` (1.2 % of vaccinated persons): an extra
//!   row naming Nanocovax, Covaxin, CoronaVac, … → `UNKNOWN_VACCINE`.
//! - `foreigner` (≈ 0.3 % of rows): a foreign national with a passport number → `SIGN`;
//!   `unregistered_person` (≈ 0.8 % of rows): a Vietnamese person missing from the registry →
//!   `NOT_IN_REGISTRY`.
//!
//! Expected codes follow the SPEC §5 check order and matching rules. Faults are built so that
//! the outcome does not depend on fine points of the matching: a name that must mismatch
//! differs from the registry's in its letters once diacritics are removed; a name that must
//! match only loses diacritics, changes case, normalisation, spacing or tone placement; a
//! mistyped number is checked against the registry (nobody, or a known "neighbour" whose
//! name differs). A row rejected for identity, vaccine or date does not count as an accepted
//! dose for later duplicate and sequence checks.
//!
//! # Persons and identity numbers
//!
//! Person `i` is a pure function of `(seed, i)`, so the generator holds no table of persons:
//! it streams each person's registry row and dose rows as it makes them, keeping only two
//! bounded windows (a shuffle buffer for the registry, a date-ordered heap that interleaves
//! the dose rows of a few thousand persons). A person's own rows keep their date order.
//!
//! CCCD numbers (`PPP G YY RRRRRR`, DOMAIN §2) are unique by construction: the six random
//! digits encode `i mod 1 000 000` through a keyed bijection, and persons in the same residue
//! class live in different provinces (the province of person `i` is rotated by
//! `i / 1 000 000`). That caps a run at [`MAX_PERSONS`]. Some persons are "neighbours" of the
//! previous one (same province, sex and birth year, CCCD differing in one of the last six
//! digits): they give mistyped numbers that land on another real person.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use time::macros::date;
use time::{Date, Duration, Month};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::provinces::PROVINCES;

pub(crate) mod corrections;
pub(crate) mod weeks;

pub(crate) use weeks::{MAX_WEEKS, WeekSummary};

/// Options of `vaxpass gen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GenOptions {
    /// Registry persons to generate (`--persons N`).
    pub persons: u64,
    /// PRNG seed (`--seed S`); the same `(persons, seed, weeks)` gives byte-identical files.
    pub seed: u64,
    /// Follow-up batches to write (`--weeks W`, at most [`MAX_WEEKS`]); 0 writes exactly the
    /// week-0 files (see [`weeks`] for what `W >= 1` adds).
    pub weeks: u32,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenSummary {
    /// Registry persons generated.
    pub persons: u64,
    /// Rows of `doses.csv` (and of `truth.csv`), header excluded.
    pub dose_rows: u64,
    /// Rows of `registry.csv`, header excluded.
    pub registry_rows: u64,
    /// Dose rows by expected outcome: `SIGN` or a SPEC §5 reason code.
    pub by_truth: BTreeMap<String, u64>,
    /// Dose rows by `error_kind` (what was generated).
    pub by_kind: BTreeMap<String, u64>,
    /// Registry persons given earlier identity numbers (`previous_ids`, only with `--weeks`).
    pub persons_with_previous_ids: u64,
    /// One entry per follow-up week, in order (empty without `--weeks`).
    pub weeks: Vec<WeekSummary>,
}

/// Why [`generate`] stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GenError {
    /// Creating or writing a file or the output directory failed.
    #[error("cannot write {}: {cause}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error (in the message, not `source()`, so it prints once).
        cause: std::io::Error,
    },
    /// Writing a CSV record failed (the cause in the message, not `source()`).
    #[error("cannot write CSV: {0}")]
    Csv(csv::Error),
    /// More follow-up weeks were asked for than [`MAX_WEEKS`].
    #[error("at most {max} follow-up weeks can be generated, {requested} were requested")]
    TooManyWeeks {
        /// `--weeks` as given.
        requested: u32,
        /// [`MAX_WEEKS`].
        max: u32,
    },
    /// More persons were asked for than unique CCCD numbers can be built for (see
    /// [`MAX_PERSONS`]).
    #[error("at most {max} persons can be generated, {requested} were requested")]
    TooManyPersons {
        /// `--persons` as given.
        requested: u64,
        /// [`MAX_PERSONS`].
        max: u64,
    },
}

/// Largest `--persons`: 63 provinces × 1 000 000 values of the six random CCCD digits, less
/// room for the unregistered persons, who get numbers from the same space.
pub(crate) const MAX_PERSONS: u64 = 60_000_000;

/// Writes `registry.csv`, `doses.csv` and `truth.csv` for `opts.persons` synthetic persons
/// into `out_dir` (created if missing), streaming: memory does not grow with the number of
/// persons. See the module documentation for what is injected and what the gate must answer.
pub(crate) fn generate(opts: &GenOptions, out_dir: &Path) -> Result<GenSummary, GenError> {
    if opts.persons > MAX_PERSONS {
        return Err(GenError::TooManyPersons { requested: opts.persons, max: MAX_PERSONS });
    }
    if opts.weeks > MAX_WEEKS {
        return Err(GenError::TooManyWeeks { requested: opts.weeks, max: MAX_WEEKS });
    }
    std::fs::create_dir_all(out_dir).map_err(|source| GenError::Io { path: out_dir.to_path_buf(), cause: source })?;
    let mut out = Outputs::create(out_dir, opts.weeks > 0)?;
    let world = World::new(opts.seed, opts.persons);
    let mut registry = RegistryShuffle::new(opts.seed, if opts.weeks > 0 { 6 } else { 5 });
    let mut doses = DoseWindow::default();
    let mut follow =
        (opts.weeks > 0).then(|| weeks::FollowUps::create(out_dir, opts.weeks, opts.persons)).transpose()?;
    let mut foreigners = 0_u64;
    let mut unregistered = 0_u64;
    for i in 0..opts.persons {
        let person = world.person(i);
        let rows = world.rows_for_registry_person(&person);
        let previous = match &mut follow {
            Some(follow) => follow.plan_person(&world, &person, &rows, doses.next_seq)?,
            None => String::new(),
        };
        doses.push_person(rows, &mut out)?;
        registry.push(registry_record(person, previous), &mut out.registry)?;
        let mut extra = stream(opts.seed, TAG_EXTRA, i);
        if extra.chance(FOREIGNER_PPM) {
            foreigners += 1;
            let rows = world.rows_for_foreigner(foreigners);
            if let Some(follow) = &mut follow {
                follow.foreigner(&rows)?;
            }
            doses.push_person(rows, &mut out)?;
        }
        if extra.chance(UNREGISTERED_PPM) {
            unregistered += 1;
            let rows = world.rows_for_unregistered(unregistered);
            doses.push_person(rows, &mut out)?;
        }
    }
    registry.finish(&mut out.registry)?;
    doses.finish(&mut out)?;
    out.flush()?;
    let (weeks, persons_with_previous_ids) = match follow {
        Some(follow) => follow.finish(out.dose_rows)?,
        None => (Vec::new(), 0),
    };
    Ok(GenSummary {
        persons: opts.persons,
        dose_rows: out.dose_rows,
        registry_rows: opts.persons,
        by_truth: out.by_truth,
        by_kind: out.by_kind,
        persons_with_previous_ids,
        weeks,
    })
}

// The generator's parts, bottom up: rng and bijection (numbers), dates, tables, names and
// identity (how people and numbers are typed), faults, persons, rows, output.
mod bijection;
mod dates;
mod faults;
mod identity;
mod names;
mod output;
mod persons;
mod rng;
mod rows;
mod tables;
use self::{
    bijection::*, dates::*, faults::*, identity::*, names::*, output::*, persons::*, rng::*, rows::*, tables::*,
};

#[cfg(test)]
mod tests;
