//! Dates as typed in `doses.csv` and stored in `registry.csv` (SPEC §4), and the date-of-birth
//! matching rule (SPEC §5 "Dates of birth").
//!
//! This module owns parsing the five accepted forms into a [`PartialDate`], its ISO form (the
//! DCC `dob` format), and [`dob_matches`]. It knows nothing about the clock: whether a
//! vaccination date lies in the future is decided by the caller, who holds the time.

use std::fmt;

use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

/// Earliest year accepted in any date. Nobody alive was born before it, and it rejects
/// two-digit-year slips such as `0990`.
const MIN_YEAR: i32 = 1850;
/// Latest year accepted: the last century the CCCD century/sex digit encodes (DOMAIN §2).
const MAX_YEAR: i32 = 2200;

/// A date known to a year, a month or a day. The registry stores elderly people's births as a
/// bare year (or year and month); SPEC §4 accepts the same forms in `doses.csv`.
///
/// `Debug` is written by hand and shows only the precision (STYLE §3: a date of birth is
/// personal data); use [`PartialDate::to_iso`] where the value is meant to be seen.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartialDate {
    /// Only the year is known (`yyyy`).
    Year(i32),
    /// Year and month (1–12) are known (`yyyy-mm`).
    YearMonth(i32, u8),
    /// A full calendar date (`yyyy-mm-dd`, `dd/mm/yyyy`, `d/m/yyyy`).
    Full(Date),
}

impl fmt::Debug for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PartialDate::Year(_) => "Year(****)",
            PartialDate::YearMonth(..) => "YearMonth(****-**)",
            PartialDate::Full(_) => "Full(****-**-**)",
        })
    }
}

impl PartialDate {
    /// The ISO 8601 form at this date's precision: `yyyy`, `yyyy-mm` or `yyyy-mm-dd`, which is
    /// also the EU DCC `dob` format (SPEC §3).
    pub fn to_iso(&self) -> String {
        match self {
            PartialDate::Year(y) => format!("{y:04}"),
            PartialDate::YearMonth(y, m) => format!("{y:04}-{m:02}"),
            PartialDate::Full(d) => {
                format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
            }
        }
    }

    /// The year, which every precision has.
    pub fn year(&self) -> i32 {
        match self {
            PartialDate::Year(y) | PartialDate::YearMonth(y, _) => *y,
            PartialDate::Full(d) => d.year(),
        }
    }

    /// The full date, or `None` for a year or year-month. A vaccination date must be full
    /// (SPEC §4).
    pub fn as_full(&self) -> Option<Date> {
        match self {
            PartialDate::Full(d) => Some(*d),
            PartialDate::Year(_) | PartialDate::YearMonth(..) => None,
        }
    }
}

/// Parses `dd/mm/yyyy`, `d/m/yyyy`, `yyyy-mm-dd`, `yyyy-mm` or `yyyy` (surrounding white space
/// ignored, full-width digits accepted). Returns `None` for any other form, a date that is not
/// on the calendar (31/02), or a year outside 1850..=2200.
pub fn parse_date(raw: &str) -> Option<PartialDate> {
    // NFKC leaves ASCII unchanged; only full-width digits need it.
    let text: std::borrow::Cow<'_, str> =
        if raw.is_ascii() { std::borrow::Cow::Borrowed(raw) } else { std::borrow::Cow::Owned(raw.nfkc().collect()) };
    let text = text.trim();
    if let Some((day, rest)) = text.split_once('/') {
        let (month, year) = rest.split_once('/')?;
        return full(number(year, 4, 4)?, number(month, 1, 2)?, number(day, 1, 2)?);
    }
    let mut parts = text.split('-');
    let year = number(parts.next()?, 4, 4)?;
    let month = match parts.next() {
        Some(m) => Some(number(m, 2, 2)?),
        None => None,
    };
    let day = match parts.next() {
        Some(d) => Some(number(d, 2, 2)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    match (month, day) {
        (None, _) => year_in_range(year).map(PartialDate::Year),
        (Some(month), None) => {
            let year = year_in_range(year)?;
            let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
            Some(PartialDate::YearMonth(year, u8::from(month)))
        }
        (Some(month), Some(day)) => full(year, month, day),
    }
}

/// A number of `min..=max` ASCII digits.
fn number(s: &str, min: usize, max: usize) -> Option<u32> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

/// The year if it lies in `MIN_YEAR..=MAX_YEAR`.
fn year_in_range(year: u32) -> Option<i32> {
    i32::try_from(year).ok().filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
}

/// A real calendar date in range.
fn full(year: u32, month: u32, day: u32) -> Option<PartialDate> {
    let year = year_in_range(year)?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    Some(PartialDate::Full(date))
}

/// Whether a typed date of birth matches the registry's (SPEC §5 "Dates of birth"): they are
/// equal, or the registry knows only the year (or year and month) and the facility typed the
/// placeholder for it, 01/01 of that year (or the 1st of that month).
///
/// Nothing else matches: not a day/month swap, not a typed year against a full registry date.
pub fn dob_matches(typed: &PartialDate, registry: &PartialDate) -> bool {
    if typed == registry {
        return true;
    }
    match (registry, typed) {
        (PartialDate::Year(y), PartialDate::Full(d)) => d.year() == *y && d.month() == Month::January && d.day() == 1,
        (PartialDate::YearMonth(y, m), PartialDate::Full(d)) => {
            d.year() == *y && u8::from(d.month()) == *m && d.day() == 1
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    #[track_caller]
    fn iso(raw: &str) -> String {
        match parse_date(raw) {
            Some(d) => d.to_iso(),
            None => panic!("{raw:?} did not parse"),
        }
    }

    #[test]
    fn accepted_forms_parse() {
        assert_eq!(parse_date("05/03/1990"), Some(PartialDate::Full(date!(1990 - 03 - 05))));
        assert_eq!(parse_date("5/3/1990"), Some(PartialDate::Full(date!(1990 - 03 - 05))));
        assert_eq!(parse_date("1990-03-05"), Some(PartialDate::Full(date!(1990 - 03 - 05))));
        assert_eq!(parse_date("1990-03"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("1990"), Some(PartialDate::Year(1990)));
        assert_eq!(parse_date(" \u{a0}1990-03-05\t"), Some(PartialDate::Full(date!(1990 - 03 - 05))));
        assert_eq!(parse_date("１９９０"), Some(PartialDate::Year(1990)));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for raw in ["31/02/1990", "29/02/1990", "1990-13", "1990-00", "00/01/1990", "1990-02-30"] {
            assert_eq!(parse_date(raw), None, "{raw:?}");
        }
        assert_eq!(iso("29/02/2000"), "2000-02-29");
    }

    #[test]
    fn years_outside_range_are_rejected() {
        for raw in ["1849", "2201", "0990", "01/01/1849", "1849-12"] {
            assert_eq!(parse_date(raw), None, "{raw:?}");
        }
        assert_eq!(iso("1850"), "1850");
        assert_eq!(iso("31/12/2200"), "2200-12-31");
    }

    #[test]
    fn other_forms_are_rejected() {
        for raw in [
            "",
            "90",
            "05/03/90",
            "1990/03/05",
            "1990-3-5",
            "1990-03-05-01",
            "05-03-1990",
            "005/03/1990",
            "05/03/1990/1",
            "03/1990",
            "1990-03-05T00:00",
            "+1990",
            "năm 1990",
        ] {
            assert_eq!(parse_date(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn iso_form_keeps_precision() {
        assert_eq!(iso("5/3/1990"), "1990-03-05");
        assert_eq!(iso("1990-03"), "1990-03");
        assert_eq!(iso("1990"), "1990");
    }

    #[test]
    fn year_and_full_date_are_available() {
        assert_eq!(PartialDate::YearMonth(1950, 7).year(), 1950);
        assert_eq!(PartialDate::Full(date!(1950 - 07 - 01)).year(), 1950);
        assert_eq!(PartialDate::Year(1950).as_full(), None);
        assert_eq!(PartialDate::Full(date!(2021 - 03 - 08)).as_full(), Some(date!(2021 - 03 - 08)));
    }

    #[test]
    fn debug_output_hides_the_date() {
        assert_eq!(format!("{:?}", PartialDate::Full(date!(1990 - 03 - 05))), "Full(****-**-**)");
        assert_eq!(format!("{:?}", PartialDate::Year(1950)), "Year(****)");
    }

    #[track_caller]
    fn matches(typed: &str, registry: &str) -> bool {
        match (parse_date(typed), parse_date(registry)) {
            (Some(t), Some(r)) => dob_matches(&t, &r),
            _ => panic!("test dates must parse"),
        }
    }

    #[test]
    fn equal_dates_match() {
        assert!(matches("05/03/1990", "1990-03-05"));
        assert!(matches("1950", "1950"));
        assert!(matches("1950-07", "1950-07"));
    }

    #[test]
    fn placeholder_for_year_only_registry_date_matches() {
        assert!(matches("01/01/1950", "1950"));
        assert!(matches("1950-01-01", "1950"));
        assert!(!matches("02/01/1950", "1950"));
        assert!(!matches("01/01/1951", "1950"));
        assert!(!matches("1950-01", "1950"));
    }

    #[test]
    fn placeholder_for_year_month_registry_date_matches() {
        assert!(matches("01/07/1950", "1950-07"));
        assert!(!matches("01/01/1950", "1950-07"));
        assert!(!matches("15/07/1950", "1950-07"));
        assert!(!matches("1950", "1950-07"));
    }

    #[test]
    fn day_month_swap_does_not_match() {
        assert!(!matches("03/05/1990", "1990-03-05"));
    }

    #[test]
    fn less_precise_typed_date_does_not_match_full_registry_date() {
        assert!(!matches("1990", "1990-01-01"));
        assert!(!matches("1990-01", "1990-01-01"));
    }

    proptest! {
        #[test]
        fn parse_date_never_panics(raw in "\\PC{0,16}") {
            let _ = parse_date(&raw);
        }

        #[test]
        fn iso_form_parses_back_to_the_same_date(raw in "[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}|[0-9]{4}(-[0-9]{2}){0,2}") {
            if let Some(d) = parse_date(&raw) {
                prop_assert_eq!(parse_date(&d.to_iso()), Some(d));
                prop_assert!((MIN_YEAR..=MAX_YEAR).contains(&d.year()));
            }
        }
    }
}
