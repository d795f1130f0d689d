//! The per-row checks of SPEC §5, in the table's order: identity format, CCCD consistency,
//! registry match (number, then name, birth date, sex), vaccine, vaccination date. The
//! per-person checks (duplicates, 14-day sequence) are in `series.rs`.

use time::Date;
use time::macros::date;

use super::identity::{IdNumber, IdProblem, Sex, check_cccd_consistency, parse_id, parse_sex};
use super::names::names_match;
use super::registry::{Registry, RegistryPerson};
use super::rows::{DoseRow, bad_row};
use super::{RejectReason, Rejection};
use crate::dates::{PartialDate, parse_date};
use crate::passport::translit::{MAX_NAME_PART_LEN, normalise_name, overlong_name_part};
use crate::passport::{Dose, Person, vaccines};

/// COVID-19 vaccination in Viet Nam began on 2021-03-08 (SPEC §5 `BAD_DATE`).
pub const PROGRAMME_START: Date = date!(2021 - 03 - 08);

/// Whose dose a row is: the key doses are grouped by into one passport.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PersonKey {
    /// A registry person (by index), whether typed with the CCCD or the old CMND.
    Registry(u32),
    /// A foreign national: nationality and passport number.
    Foreign(String, String),
    /// Without a registry: the repaired identity number.
    Offline(String),
}

/// A row that passed the per-row checks.
#[derive(Debug, Clone)]
pub(super) struct AcceptedRow {
    /// Position in the file (0-based), for "later row in file order".
    pub order: u64,
    /// `record_id`.
    pub record_id: String,
    /// `facility_code`: the facility that gave the dose.
    pub facility_code: String,
    /// Whose dose.
    pub person: PersonKey,
    /// The dose.
    pub dose: Dose,
}

/// Who a passport names and which number `passports.jsonl` lists, for persons the registry
/// does not give (foreigners, offline runs): from the row (SPEC §5 "Grouping").
#[derive(Debug, Clone)]
pub(super) struct RowIdentity {
    /// The person as the passport will name them.
    pub person: Person,
    /// `id_number` of `passports.jsonl`.
    pub id_number: String,
}

fn reject(
    row: &DoseRow<'_>,
    reason: RejectReason,
    detail: impl Into<String>,
    suggestion: impl Into<String>,
) -> Rejection {
    Rejection { record_id: row.record_id.to_string(), reason, detail: detail.into(), suggestion: suggestion.into() }
}

fn id_rejection(row: &DoseRow<'_>, p: IdProblem) -> Rejection {
    match p {
        IdProblem::Missing => reject(row, RejectReason::IdMissing, "no identity number", ""),
        IdProblem::BadFormat { detail } => reject(row, RejectReason::IdBadFormat, detail, ""),
        IdProblem::Inconsistent { detail } => reject(row, RejectReason::IdInconsistent, detail, ""),
    }
}

fn earliest_day(d: &PartialDate) -> Option<Date> {
    match *d {
        PartialDate::Full(d) => Some(d),
        PartialDate::YearMonth(y, m) => Date::from_calendar_date(y, time::Month::try_from(m).ok()?, 1).ok(),
        PartialDate::Year(y) => Date::from_calendar_date(y, time::Month::January, 1).ok(),
    }
}

fn sex_word(s: Sex) -> &'static str {
    match s {
        Sex::Male => "M",
        Sex::Female => "F",
    }
}

/// The registry person a row names, or the reason it does not match (SPEC §5).
fn match_registry(
    row: &DoseRow<'_>,
    id: &IdNumber,
    dob: &PartialDate,
    sex: Sex,
    registry: &Registry,
) -> Result<(u32, RegistryPerson), Rejection> {
    let found = match id {
        // A re-issued person typed with their earlier number is the same person (SPEC §8.4).
        IdNumber::Cccd(n) => registry.by_id(n).or_else(|| registry.by_previous_id(n)),
        IdNumber::Cmnd(n) => {
            // Old CMNDs are not unique: prefer the person who matches entirely, else the first.
            let mut first = None;
            let mut full = None;
            for (i, p) in registry.by_old_id(n) {
                if names_match(row.full_name, &p.full_name) && crate::dates::dob_matches(dob, &p.dob) && p.sex == sex {
                    full = Some((i, p));
                    break;
                }
                if first.is_none() {
                    first = Some((i, p));
                }
            }
            full.or(first)
        }
        IdNumber::Foreign(_) => None,
    };
    let Some((index, person)) = found else {
        return Err(reject(row, RejectReason::NotInRegistry, "no registry person has this number", ""));
    };
    if !names_match(row.full_name, &person.full_name) {
        return Err(reject(row, RejectReason::NameMismatch, "the name differs from the registry", person.full_name));
    }
    if !crate::dates::dob_matches(dob, &person.dob) {
        return Err(reject(
            row,
            RejectReason::DobMismatch,
            "the date of birth differs from the registry",
            person.dob.to_iso(),
        ));
    }
    if person.sex != sex {
        return Err(reject(row, RejectReason::SexMismatch, "the sex differs from the registry", sex_word(person.sex)));
    }
    Ok((index, person))
}

/// Runs the per-row checks. `today` bounds vaccination dates (nothing in the future).
pub(super) fn check_row(
    row: &DoseRow<'_>,
    order: u64,
    registry: Option<&Registry>,
    today: Date,
) -> Result<(AcceptedRow, Option<RowIdentity>), Rejection> {
    let sex = parse_sex(row.sex)
        .ok_or_else(|| bad_row(row.record_id.to_string(), "sex is none of Nam, Nữ, M, F, male, female"))?;
    let dob = parse_date(row.dob)
        .ok_or_else(|| bad_row(row.record_id.to_string(), "dob is not dd/mm/yyyy, yyyy-mm-dd, yyyy-mm or yyyy"))?;
    let nationality: std::borrow::Cow<'_, str> = match row.nationality {
        "" | "VN" => "VN".into(),
        other => other.to_ascii_uppercase().into(),
    };
    if nationality.len() != 2 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad_row(row.record_id.to_string(), "nationality is not an ISO 3166 alpha-2 code"));
    }
    // A name the DCC schema cannot carry (issue #8, item 13: a 3,200-character name was signed
    // into a passport no QR code holds).
    if let Some((part, len)) = overlong_name_part(row.full_name) {
        return Err(bad_row(
            row.record_id.to_string(),
            format!("full_name: {part} would be {len} characters, more than the DCC schema's {MAX_NAME_PART_LEN}"),
        ));
    }

    let id = parse_id(row.id_number, &nationality).map_err(|p| id_rejection(row, p))?;
    if let IdNumber::Cccd(n) = &id {
        // An earlier number of a re-issued person encodes the birth year or sex that was
        // corrected, so its digits are not checked (SPEC §8.4); the registry comparison
        // below still checks the row's name, birth date and sex.
        let earlier_number = registry.is_some_and(|r| r.is_previous_id(n));
        if !earlier_number {
            check_cccd_consistency(n, Some(dob.year()), Some(sex)).map_err(|p| id_rejection(row, p))?;
        }
    }

    let (person, identity, birth) = match (&id, registry) {
        (IdNumber::Foreign(passport_no), _) => {
            let identity = RowIdentity {
                person: Person { full_name: normalise_name(row.full_name), dob: dob.to_iso() },
                id_number: passport_no.clone(),
            };
            (PersonKey::Foreign(nationality.into_owned(), passport_no.clone()), Some(identity), dob)
        }
        (_, Some(registry)) => {
            let (index, p) = match_registry(row, &id, &dob, sex, registry)?;
            // The passport carries the registry's spelling, which must fit the schema too.
            // Names only match word for word, so the row's own bound above catches this
            // first today; this one keeps holding if matching ever tolerates more.
            if let Some((part, len)) = overlong_name_part(&p.full_name) {
                return Err(bad_row(
                    row.record_id.to_string(),
                    format!(
                        "the registry's full_name: {part} would be {len} characters, more than the DCC schema's {MAX_NAME_PART_LEN}"
                    ),
                ));
            }
            (PersonKey::Registry(index), None, p.dob)
        }
        (_, None) => {
            let identity = RowIdentity {
                person: Person { full_name: normalise_name(row.full_name), dob: dob.to_iso() },
                id_number: id.as_str().to_owned(),
            };
            (PersonKey::Offline(id.as_str().to_owned()), Some(identity), dob)
        }
    };

    let vaccine = vaccines::lookup(row.vaccine).ok_or_else(|| {
        reject(row, RejectReason::UnknownVaccine, "not one of the 8 products licensed for the passport", "")
    })?;
    let date = parse_date(row.vaccination_date)
        .and_then(|d| d.as_full())
        .ok_or_else(|| reject(row, RejectReason::BadDate, "vaccination_date is not a full date", ""))?;
    if date > today {
        return Err(reject(row, RejectReason::BadDate, "vaccination_date is in the future", ""));
    }
    if earliest_day(&birth).is_some_and(|b| date < b) {
        return Err(reject(row, RejectReason::BadDate, "vaccination_date precedes the date of birth", ""));
    }
    if date < PROGRAMME_START {
        return Err(reject(row, RejectReason::BadDate, "vaccination_date precedes 2021-03-08", ""));
    }
    Ok((
        AcceptedRow {
            order,
            record_id: row.record_id.to_string(),
            facility_code: row.facility_code.trim().to_owned(),
            person,
            dose: Dose { vaccine, date },
        },
        identity,
    ))
}
