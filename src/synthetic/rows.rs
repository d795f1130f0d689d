//! Building a `doses.csv` row from a person, a dose and a fault.

use super::*;

/// A dose row being built; `day` is the real vaccination date (the sort key), which a
/// date fault may type differently.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) day: Date,
    pub(super) product: usize,
    pub(super) facility: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) dob: String,
    pub(super) sex: String,
    pub(super) nationality: &'static str,
    pub(super) phone: String,
    pub(super) vaccine: String,
    pub(super) lot: String,
    pub(super) dose_number: String,
    pub(super) vaccination_date: String,
    pub(super) fault: Fault,
    /// The code from the checks before duplicates and sequence, if the row fails one.
    pub(super) stage: Option<&'static str>,
    pub(super) expected: &'static str,
    pub(super) person_key: String,
}

/// A clean row for dose `number` (0: an extra row) of product `product` on `day`.
pub(super) fn base_row(p: &Person, rng: &mut Rng, product: usize, day: Date, number: usize) -> Row {
    let spec = &PRODUCTS[product];
    let facility = match rng.below(100) {
        0 => format!("{}{:03}", rng.pick(&["97", "98"]), 1 + rng.below(60)),
        1..=3 => format!("{}{:03}", PROVINCES[rng.index(PROVINCES.len())].0, 1 + rng.below(150)),
        4..=14 => format!("{}{:03}", p.province_code(), 1 + rng.below(150)),
        _ => format!("{}{:03}", p.province_code(), p.facility),
    };
    let dob = match p.precision {
        Precision::Full => typed_date(rng, p.dob),
        Precision::Year | Precision::YearMonth => p.dob_registry(),
    };
    let dose_number = match rng.below(100) {
        _ if number == 0 => String::new(),
        0..=84 => number.to_string(),
        85..=92 => String::new(),
        _ => (1 + (number + rng.index(3)) % 4).to_string(),
    };
    Row {
        day,
        product,
        facility,
        id: p.cccd.clone(),
        name: p.name.clone(),
        dob,
        sex: typed_sex(rng, p.female),
        nationality: if rng.chance(750_000) { "" } else { "VN" },
        phone: if rng.chance(900_000) { p.phone.clone() } else { String::new() },
        vaccine: (*rng.weighted(spec.typed)).to_owned(),
        lot: lot(rng, spec),
        dose_number,
        vaccination_date: typed_date(rng, day),
        fault: Fault::Clean,
        stage: None,
        expected: SIGN,
        person_key: String::new(),
    }
}

pub(super) fn lot(rng: &mut Rng, spec: &Product) -> String {
    if rng.chance(50_000) { String::new() } else { format!("{}{}", spec.lot_prefix, rng.digits(4)) }
}

pub(super) fn typed_sex(rng: &mut Rng, female: bool) -> String {
    let spelling = if female {
        rng.weighted(&[
            ("Nữ", 55),
            ("NỮ", 8),
            ("nữ", 5),
            ("F", 12),
            ("f", 2),
            ("Female", 6),
            ("female", 4),
            ("Nu", 3),
            ("Nu\u{31b}\u{303}", 2),
        ])
    } else {
        rng.weighted(&[("Nam", 55), ("NAM", 8), ("nam", 5), ("M", 12), ("m", 2), ("Male", 6), ("male", 4), ("MALE", 2)])
    };
    (*spelling).to_owned()
}

/// `dd/mm/yyyy` mostly, sometimes `d/m/yyyy` or `yyyy-mm-dd` (SPEC §4).
pub(super) fn typed_date(rng: &mut Rng, d: Date) -> String {
    match rng.below(10) {
        0 => format!("{}/{}/{}", d.day(), d.month() as u8, d.year()),
        1 => iso(d),
        _ => dmy(d),
    }
}

pub(super) fn dmy(d: Date) -> String {
    format!("{:02}/{:02}/{:04}", d.day(), d.month() as u8, d.year())
}

pub(super) fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

pub(super) fn first_of(year: i32, month: Month) -> Date {
    Date::from_calendar_date(year, month, 1).unwrap_or(AGE_REFERENCE)
}

pub(super) fn uniform_date(rng: &mut Rng, from: Date, to: Date) -> Date {
    let (a, b) = (from.to_julian_day(), to.to_julian_day().max(from.to_julian_day()));
    let jd = rng.range(i64::from(a), i64::from(b));
    Date::from_julian_day(i32::try_from(jd).unwrap_or(a)).unwrap_or(from)
}

/// A birth date for an age drawn from `AGE_BANDS`, counted at `AGE_REFERENCE`.
pub(super) fn birth_date(rng: &mut Rng) -> Date {
    let weights: [(usize, u32); 19] = std::array::from_fn(|k| (k, AGE_BANDS[k].2));
    let (from, to, _) = AGE_BANDS[*rng.weighted(&weights)];
    let days_back = rng.range(from * 36525 / 100, to * 36525 / 100 - 1);
    let jd = i64::from(AGE_REFERENCE.to_julian_day()) - days_back;
    Date::from_julian_day(i32::try_from(jd).unwrap_or(0)).unwrap_or(AGE_REFERENCE)
}

pub(super) fn date_in_year(rng: &mut Rng, year: i32) -> Date {
    let from = first_of(year, Month::January);
    let to = first_of(year, Month::December).replace_day(31).unwrap_or(from);
    uniform_date(rng, from, to.min(AGE_REFERENCE))
}
