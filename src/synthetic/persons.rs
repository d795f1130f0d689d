//! Persons: who they are in the registry, their doses, and how the world applies faults to
//! their rows.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Precision {
    Full,
    Year,
    YearMonth,
}

#[derive(Debug, Clone)]
pub(super) struct Person {
    pub(super) index: u64,
    /// Index into `PROVINCES`.
    pub(super) province: usize,
    pub(super) female: bool,
    pub(super) dob: Date,
    pub(super) precision: Precision,
    /// NFC, family name first.
    pub(super) name: String,
    pub(super) cccd: String,
    /// Registry `old_id`.
    pub(super) cmnd: Option<String>,
    /// `cmnd` was copied from person `index - 1` (a shared CMND).
    pub(super) cmnd_copied: bool,
    pub(super) phone: String,
    /// `NNN` of the facility the person usually goes to.
    pub(super) facility: u64,
    /// Same province, sex and birth year as person `index - 1`, CCCD one digit away.
    pub(super) neighbour_of_prev: bool,
    /// For a neighbour: its name's letters differ from the previous person's.
    pub(super) distinct_from_prev: bool,
}

impl Person {
    pub(super) fn province_code(&self) -> &'static str {
        PROVINCES[self.province].0
    }

    pub(super) fn age_at(&self, at: Date) -> i32 {
        let mut age = at.year() - self.dob.year();
        if (at.month() as u8, at.day()) < (self.dob.month() as u8, self.dob.day()) {
            age -= 1;
        }
        age
    }

    /// The first day the registry's birth date allows.
    pub(super) fn birth_floor(&self) -> Date {
        match self.precision {
            Precision::Full => self.dob,
            Precision::Year => first_of(self.dob.year(), Month::January),
            Precision::YearMonth => first_of(self.dob.year(), self.dob.month()),
        }
    }

    pub(super) fn dob_registry(&self) -> String {
        match self.precision {
            Precision::Full => iso(self.dob),
            Precision::Year => format!("{:04}", self.dob.year()),
            Precision::YearMonth => format!("{:04}-{:02}", self.dob.year(), self.dob.month() as u8),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Lane {
    /// Province index before the per-block rotation.
    pub(super) province: usize,
    pub(super) neighbour: bool,
}

/// Everything derived from the seed; persons are computed from it on demand.
pub(super) struct World {
    pub(super) seed: u64,
    pub(super) persons: u64,
    pub(super) perm5: Perm5,
    pub(super) cmnd_a: u64,
    pub(super) cmnd_b: u64,
    pub(super) passport_a: u64,
    pub(super) passport_b: u64,
    pub(super) province_weights: Vec<(usize, u32)>,
}

impl World {
    pub(super) fn new(seed: u64, persons: u64) -> Self {
        let mut keys = stream(seed, TAG_KEYS, 0);
        let perm5 = Perm5::new(&mut keys);
        let (cmnd_a, _) = unit_mod(&mut keys, 1_000_000_000);
        let cmnd_b = keys.below(1_000_000_000);
        let (passport_a, _) = unit_mod(&mut keys, 10_000_000);
        let passport_b = keys.below(10_000_000);
        let province_weights = PROVINCES.iter().enumerate().map(|(i, (code, _))| (i, province_weight(code))).collect();
        World { seed, persons, perm5, cmnd_a, cmnd_b, passport_a, passport_b, province_weights }
    }

    pub(super) fn lane(&self, lo: u64) -> Lane {
        let mut rng = stream(self.seed, TAG_LANE, lo);
        let province = *rng.weighted(&self.province_weights);
        let neighbour = lo % 2 == 1 && rng.chance(NEIGHBOUR_PPM);
        Lane { province, neighbour }
    }

    /// The digit offset of a group of ten lanes.
    pub(super) fn group_offset(&self, group: u64) -> u64 {
        stream(self.seed, TAG_GROUP, group).below(10)
    }

    /// Person `i` (registry persons are `0..persons`; unregistered ones are numbered after).
    pub(super) fn person(&self, i: u64) -> Person {
        let lo = i % BLOCK;
        let lane = self.lane(lo);
        let mut rng = stream(self.seed, TAG_PERSON, i);
        let prev = (lane.neighbour && i > 0).then(|| self.person(i - 1));
        let (province, female, dob) = match &prev {
            Some(p) => (p.province, p.female, date_in_year(&mut rng, p.dob.year())),
            None => {
                let rotation = ((i / BLOCK) % PROVINCES.len() as u64) as usize;
                let province = (lane.province + rotation) % PROVINCES.len();
                (province, rng.chance(505_000), birth_date(&mut rng))
            }
        };
        let precision = if dob.year() < 1950 && rng.chance(PARTIAL_DOB_PPM) {
            if rng.chance(700_000) { Precision::Year } else { Precision::YearMonth }
        } else {
            Precision::Full
        };
        let mut name = draw_name(&mut rng, female, PROVINCES[province].0);
        let mut distinct_from_prev = true;
        if let Some(p) = &prev {
            let theirs = skeleton(&p.name);
            let mut tries = 0;
            while skeleton(&name) == theirs {
                tries += 1;
                if tries > 16 {
                    distinct_from_prev = false;
                    break;
                }
                name = draw_name(&mut rng, female, PROVINCES[province].0);
            }
        }
        let cccd = self.compose_cccd(province, female, dob.year(), lo);
        let adult = AGE_REFERENCE.year() - dob.year() > 18;
        let (cmnd, cmnd_copied) = if adult && rng.chance(CMND_PPM) {
            let own = self.cmnd_of(i);
            if i % 2 == 1 && rng.chance(SHARED_CMND_PPM) {
                let p = prev.clone().unwrap_or_else(|| self.person(i - 1));
                match p.cmnd {
                    Some(theirs) if skeleton(&p.name) != skeleton(&name) => (Some(theirs), true),
                    _ => (Some(own), false),
                }
            } else {
                (Some(own), false)
            }
        } else {
            (None, false)
        };
        let phone = format!("{}{}", rng.pick(&PHONE_PREFIXES), rng.digits(7));
        let facility = 1 + rng.below(150);
        Person {
            index: i,
            province,
            female,
            dob,
            precision,
            name,
            cccd,
            cmnd,
            cmnd_copied,
            phone,
            facility,
            neighbour_of_prev: prev.is_some(),
            distinct_from_prev,
        }
    }

    pub(super) fn cmnd_of(&self, i: u64) -> String {
        let v = (u128::from(self.cmnd_a) * u128::from(i) + u128::from(self.cmnd_b)) % 1_000_000_000;
        format!("{v:09}")
    }

    /// `0PP G YY RRRRRR`: the six random digits are the five of `perm5(lane / 10)` with the
    /// lane's last digit (offset per group) inserted at a position that depends on the prefix,
    /// so that neighbours (lanes `10g+t-1`, `10g+t`) differ in one digit of the last six.
    pub(super) fn compose_cccd(&self, province: usize, female: bool, year: i32, lo: u64) -> String {
        let century = u64::try_from((year / 100 - 19).clamp(0, 3)).unwrap_or(0);
        let g = century * 2 + u64::from(female);
        let yy = u64::try_from(year.rem_euclid(100)).unwrap_or(0);
        let pos = ((yy + province as u64) % 6) as usize;
        let group = lo / 10;
        let digit = (lo % 10 + self.group_offset(group)) % 10;
        let five = format!("{:05}", self.perm5.apply(group));
        let mut random = String::with_capacity(6);
        random.push_str(&five[..pos]);
        random.push(char::from(b'0' + digit as u8));
        random.push_str(&five[pos..]);
        format!("0{}{g}{yy:02}{random}", PROVINCES[province].0)
    }

    /// The registry person whose CCCD is `cccd`, if any.
    pub(super) fn owner(&self, cccd: &str) -> Option<u64> {
        let b = cccd.as_bytes();
        if b.len() != 12 || !b.iter().all(u8::is_ascii_digit) || b[0] != b'0' {
            return None;
        }
        let province = PROVINCES.iter().position(|(c, _)| c.as_bytes() == &b[1..3])?;
        let yy = u64::from((b[4] - b'0') * 10 + (b[5] - b'0'));
        let pos = ((yy + province as u64) % 6) as usize;
        let random = &cccd[6..];
        let digit = u64::from(random.as_bytes()[pos] - b'0');
        let five: String = random[..pos].chars().chain(random[pos + 1..].chars()).collect();
        let group = self.perm5.invert(five.parse().ok()?);
        let lo = group * 10 + (digit + 10 - self.group_offset(group)) % 10;
        (0..=self.persons / BLOCK)
            .map(|hi| hi * BLOCK + lo)
            .take_while(|i| *i < self.persons)
            // The province is cheap to derive and rules out almost every candidate before the
            // whole person is built (earlier numbers check ~120 near numbers each).
            .find(|i| self.province_of(*i) == province && self.person(*i).cccd == cccd)
    }

    /// `self.person(i).province`, without building the person.
    pub(super) fn province_of(&self, i: u64) -> usize {
        let lo = i % BLOCK;
        let lane = self.lane(lo);
        if lane.neighbour && i > 0 {
            return self.province_of(i - 1);
        }
        let rotation = ((i / BLOCK) % PROVINCES.len() as u64) as usize;
        (lane.province + rotation) % PROVINCES.len()
    }

    /// Whether registry person `i`'s CMND is held by two persons.
    pub(super) fn cmnd_shared(&self, i: u64) -> bool {
        let copied = |k: u64| k < self.persons && self.person(k).cmnd_copied;
        copied(i) || copied(i + 1)
    }

    // -----------------------------------------------------------------------------------------
    // Dose schedules

    /// The doses person `p` really received, in date order.
    pub(super) fn schedule(&self, p: &Person) -> Vec<(usize, Date)> {
        let mut rng = stream(self.seed, TAG_DOSE, p.index);
        let born = p.dob;
        let (products, start, boosters): (&[(usize, u32)], Date, u32) = if born <= date!(2003 - 10 - 01) {
            if !rng.chance(900_000) {
                return Vec::new();
            }
            let start = match rng.below(10) {
                0 => uniform_date(&mut rng, PROGRAM_START, date!(2021 - 06 - 30)),
                1 | 2 => uniform_date(&mut rng, date!(2021 - 11 - 01), date!(2022 - 03 - 31)),
                _ => uniform_date(&mut rng, date!(2021 - 07 - 01), date!(2021 - 10 - 31)),
            };
            let boosters = if p.age_at(AGE_REFERENCE) >= 50 { 2 } else { 1 };
            (&ADULT_PRODUCTS, start, boosters)
        } else if born <= date!(2009 - 10 - 01) {
            if !rng.chance(900_000) {
                return Vec::new();
            }
            let start = uniform_date(&mut rng, date!(2021 - 10 - 15), date!(2022 - 02 - 28));
            (&CHILD_PRODUCTS, start, 1)
        } else if born <= date!(2017 - 04 - 14) {
            if !rng.chance(500_000) {
                return Vec::new();
            }
            let fifth = first_of(born.year() + 5, born.month());
            let from = fifth.max(date!(2022 - 04 - 14));
            (&CHILD_PRODUCTS, uniform_date(&mut rng, from, from + Duration::days(150)), 0)
        } else {
            return Vec::new();
        };
        let product = *rng.weighted(products);
        let spec = &PRODUCTS[product];
        let mut doses = vec![(product, start)];
        let mut day = start;
        for _ in 1..spec.primary {
            if !rng.chance(950_000) {
                return doses;
            }
            day += Duration::days(rng.range(spec.interval.0, spec.interval.1));
            if day > LAST_DOSE {
                return doses;
            }
            doses.push((product, day));
        }
        let wanted = match boosters {
            0 => 0,
            1 if rng.chance(if products.len() > 2 { 700_000 } else { 400_000 }) => 1,
            2 if rng.chance(700_000) => 1 + u32::from(rng.chance(450_000)),
            _ => 0,
        };
        for k in 0..wanted {
            if doses.len() >= 4 {
                break;
            }
            let gap = if k == 0 { (90, 200) } else { (120, 200) };
            day += Duration::days(rng.range(gap.0, gap.1));
            if day > LAST_DOSE {
                break;
            }
            let booster = if products.len() > 2 { *rng.weighted(&BOOSTER_PRODUCTS) } else { PFIZER };
            doses.push((booster, day));
        }
        doses
    }

    // -----------------------------------------------------------------------------------------
    // Rows

    /// The dose rows of registry person `p`, in the order the gate will read them.
    pub(super) fn rows_for_registry_person(&self, p: &Person) -> Vec<Row> {
        let doses = self.schedule(p);
        if doses.is_empty() {
            return Vec::new();
        }
        let mut rng = stream(self.seed, TAG_ROWS, p.index);
        let borrowed = self.borrowed_identity(p, &mut rng);
        let mut drafts = Vec::with_capacity(doses.len() + 2);
        for (k, (product, day)) in doses.iter().enumerate() {
            let mut row = base_row(p, &mut rng, *product, *day, k + 1);
            match &borrowed {
                Some((id, code)) => {
                    row.id.clone_from(id);
                    row.fault = Fault::BorrowedIdentity;
                    row.stage = Some(code);
                }
                None => self.inject(p, &mut rng, &mut row),
            }
            drafts.push(row);
        }
        if borrowed.is_none() && rng.chance(UNKNOWN_VACCINE_PPM) {
            let first = doses.first().map_or(PROGRAM_START, |(_, d)| *d);
            let day = uniform_date(&mut rng, first, (first + Duration::days(120)).min(LAST_DOSE));
            let mut row = base_row(p, &mut rng, PFIZER, day, 0);
            row.vaccine = (*rng.pick(&UNKNOWN_VACCINES)).to_owned();
            row.lot.clear();
            row.fault = Fault::UnknownVaccine;
            row.stage = Some(UNKNOWN_VACCINE);
            drafts.push(row);
        }
        drafts.sort_by_key(|r| r.day);
        let mut rows = Vec::with_capacity(drafts.len() + 2);
        let mut series = Series::default();
        for row in drafts {
            let (day, product) = (row.day, row.product);
            if !series.settle(row, &mut rows) {
                continue;
            }
            if rng.chance(DUPLICATE_PPM)
                && let Some(original) = rows.last()
            {
                let mut dup = original.clone();
                dup.fault = Fault::DuplicateRow;
                series.settle(dup, &mut rows);
            }
            if rng.chance(TOO_SOON_PPM) {
                let day = day + Duration::days(rng.range(1, 13));
                if day <= LAST_DOSE {
                    let booster = *rng.weighted(&BOOSTER_PRODUCTS);
                    let product = if rng.chance(500_000) { product } else { booster };
                    let mut extra = base_row(p, &mut rng, product, day, 0);
                    extra.fault = Fault::TooSoon;
                    series.settle(extra, &mut rows);
                }
            }
        }
        let key = p.cccd.clone();
        for row in &mut rows {
            row.person_key.clone_from(&key);
        }
        rows.sort_by_key(|r| r.day);
        rows
    }

    /// For a vaccinated child aged 5–13, sometimes: the adult identity number every one of
    /// their rows carries, and the code that gives.
    pub(super) fn borrowed_identity(&self, p: &Person, rng: &mut Rng) -> Option<(String, &'static str)> {
        let age = p.age_at(AGE_REFERENCE);
        if !(5..=13).contains(&age) || p.index >= self.persons || !rng.chance(BORROWED_PPM) {
            return None;
        }
        for _ in 0..8 {
            let j = rng.below(self.persons);
            let adult = self.person(j);
            if adult.age_at(AGE_REFERENCE) < 22 {
                continue;
            }
            let via_cmnd = rng.chance(500_000);
            // A unique CMND: the registry finds the adult, whose name's letters differ.
            if let Some(cmnd) = &adult.cmnd
                && via_cmnd
                && !self.cmnd_shared(j)
                && skeleton(&adult.name) != skeleton(&p.name)
            {
                return Some((cmnd.clone(), NAME_MISMATCH));
            }
            // The adult's century/year digits cannot agree with a child's birth year.
            if !cccd_consistent(&adult.cccd, p.dob.year(), p.female) {
                return Some((adult.cccd.clone(), ID_INCONSISTENT));
            }
        }
        None
    }

    /// Draws one fault for an ordinary row and applies it; sets `row.stage` to the code the
    /// row gets before the duplicate and sequence checks, if any.
    pub(super) fn inject(&self, p: &Person, rng: &mut Rng, row: &mut Row) {
        let fault = *rng.weighted(&ROW_FAULTS);
        let (fault, stage) = self.apply(p, rng, row, fault);
        let (fault, stage) = if fault == Fault::Clean && p.precision != Precision::Full && rng.chance(PLACEHOLDER_PPM) {
            let month = if p.precision == Precision::Year { Month::January } else { p.dob.month() };
            row.dob = dmy(first_of(p.dob.year(), month));
            (Fault::DobPlaceholder, None)
        } else {
            (fault, stage)
        };
        row.fault = fault;
        row.stage = stage;
    }

    /// Applies `fault`; returns the fault really applied (`Clean` when it does not fit this
    /// person) and the early code.
    pub(super) fn apply(
        &self,
        p: &Person,
        rng: &mut Rng,
        row: &mut Row,
        fault: Fault,
    ) -> (Fault, Option<&'static str>) {
        let none = (Fault::Clean, None);
        match fault {
            Fault::NoDiacritics => row.name = strip_diacritics(&p.name),
            Fault::AllCaps => {
                row.name =
                    if rng.chance(500_000) { p.name.to_uppercase() } else { strip_diacritics(&p.name).to_uppercase() }
            }
            Fault::Nfd => row.name = p.name.nfd().collect(),
            Fault::ExtraSpaces => row.name = extra_spaces(rng, &p.name),
            Fault::OldTonePlacement => match new_tone_placement(&p.name) {
                Some(name) => row.name = name,
                None => return none,
            },
            Fault::CmndTyped => match &p.cmnd {
                Some(cmnd) if rng.chance(800_000) => row.id.clone_from(cmnd),
                Some(cmnd) => row.id = format!("CMND: {cmnd}"),
                None => return none,
            },
            Fault::LeadingZeroLost => row.id = p.cccd.trim_start_matches('0').to_owned(),
            Fault::IdDotsSpaces => {
                let sep = *rng.pick(&[" ", ".", "-", "\u{a0}"]);
                let c = &p.cccd;
                row.id = format!("{}{sep}{}{sep}{}{sep}{}", &c[..3], &c[3..6], &c[6..9], &c[9..]);
            }
            Fault::CccdPrefix => {
                let label = *rng.pick(&["CCCD: ", "CCCD ", "cccd:", "CCCD:"]);
                row.id = format!("{label}{}", p.cccd);
            }
            Fault::FullwidthDigits => {
                row.id = p
                    .cccd
                    .chars()
                    .map(|c| c.to_digit(10).and_then(|d| char::from_u32(0xFF10 + d)).unwrap_or(c))
                    .collect();
            }
            Fault::ScientificNotation => {
                row.id = scientific(&p.cccd);
                return (fault, Some(ID_BAD_FORMAT));
            }
            Fault::HealthInsuranceNumber => {
                let kind = *rng.pick(&["DN", "HS", "GD", "HT", "TE", "CH", "HN", "CN"]);
                row.id = format!("{kind}{}{}{}", 1 + rng.below(5), p.province_code(), rng.digits(10));
                return (fault, Some(ID_BAD_FORMAT));
            }
            Fault::PhoneAsId => {
                row.id.clone_from(&p.phone);
                return (fault, Some(ID_BAD_FORMAT));
            }
            Fault::IdMissingText => {
                let text =
                    *rng.pick(&["không có", "chưa có", "KHONG CO", "Không", "-", "x", "N/A", "0", "000000000000"]);
                row.id = text.to_owned();
                return (fault, Some(ID_MISSING));
            }
            Fault::BlankId => {
                row.id.clear();
                return (fault, Some(ID_MISSING));
            }
            Fault::WrongProvince => {
                if rng.chance(500_000) {
                    for _ in 0..4 {
                        let other = rng.index(PROVINCES.len());
                        let cccd = format!("0{}{}", PROVINCES[other].0, &p.cccd[3..]);
                        if other != p.province && self.owner(&cccd).is_none() {
                            row.id = cccd;
                            return (fault, Some(NOT_IN_REGISTRY));
                        }
                    }
                }
                row.id = format!("0{}{}", rng.pick(&NO_SUCH_PROVINCE), &p.cccd[3..]);
                return (fault, Some(ID_INCONSISTENT));
            }
            Fault::MistypedIdOtherPerson => match self.neighbour_of(p) {
                Some(cccd) => {
                    row.id = cccd;
                    return (fault, Some(NAME_MISMATCH));
                }
                None => return self.apply(p, rng, row, Fault::MistypedIdNobody),
            },
            Fault::MistypedIdNobody => {
                for _ in 0..8 {
                    let at = 6 + rng.index(6);
                    let mut digits = p.cccd.clone().into_bytes();
                    let old = digits[at];
                    let new = b'0' + ((old - b'0') + 1 + rng.below(9) as u8) % 10;
                    digits[at] = new;
                    let cccd = String::from_utf8(digits).unwrap_or_default();
                    if self.owner(&cccd).is_none() {
                        row.id = cccd;
                        return (fault, Some(NOT_IN_REGISTRY));
                    }
                }
                return none;
            }
            Fault::NameTypo => {
                row.name = name_typo(rng, &p.name);
                return (fault, Some(NAME_MISMATCH));
            }
            Fault::DroppedMiddleName => {
                let words: Vec<&str> = p.name.split(' ').collect();
                if words.len() < 3 {
                    return self.apply(p, rng, row, Fault::NameTypo);
                }
                let drop = 1 + rng.index(words.len() - 2);
                row.name =
                    words.iter().enumerate().filter(|(k, _)| *k != drop).map(|(_, w)| *w).collect::<Vec<_>>().join(" ");
                return (fault, Some(NAME_MISMATCH));
            }
            Fault::SwappedNameOrder => {
                let words: Vec<&str> = p.name.split(' ').collect();
                let swapped = match words.split_last() {
                    Some((given, rest)) => std::iter::once(*given).chain(rest.iter().copied()).collect::<Vec<_>>(),
                    None => words.clone(),
                }
                .join(" ");
                if skeleton(&swapped) == skeleton(&p.name) {
                    return self.apply(p, rng, row, Fault::NameTypo);
                }
                row.name = swapped;
                return (fault, Some(NAME_MISMATCH));
            }
            Fault::DobDayMonthSwap => {
                let (day, month) = (p.dob.day(), p.dob.month() as u8);
                if p.precision != Precision::Full || day > 12 || day == month {
                    return none;
                }
                row.dob = format!("{month:02}/{day:02}/{}", p.dob.year());
                return (fault, Some(DOB_MISMATCH));
            }
            Fault::WrongSex => {
                row.sex = typed_sex(rng, !p.female);
                return match &p.cmnd {
                    Some(cmnd) if rng.chance(400_000) && !self.cmnd_shared(p.index) => {
                        row.id.clone_from(cmnd);
                        (fault, Some(SEX_MISMATCH))
                    }
                    // The century/sex digit disagrees with the typed sex.
                    _ => (fault, Some(ID_INCONSISTENT)),
                };
            }
            Fault::FutureDate => {
                let typo =
                    Date::from_calendar_date(row.day.year() + 100, row.day.month(), 1).unwrap_or(date!(2121 - 01 - 01));
                row.vaccination_date = dmy(typo.replace_day(row.day.day()).unwrap_or(typo));
                return (fault, Some(BAD_DATE));
            }
            Fault::DateBeforeBirth => {
                let day = p.birth_floor() - Duration::days(rng.range(1, 400));
                row.vaccination_date = dmy(day);
                return (fault, Some(BAD_DATE));
            }
            Fault::DateBeforeProgram => {
                let day = uniform_date(rng, date!(2020 - 01 - 01), date!(2021 - 03 - 07));
                row.vaccination_date = dmy(day);
                return (fault, Some(BAD_DATE));
            }
            Fault::BadRow => {
                match rng.below(7) {
                    0 => row.name.clear(),
                    1 => row.dob.clear(),
                    2 => row.vaccine.clear(),
                    3 => row.vaccination_date.clear(),
                    4 => row.facility.clear(),
                    5 => row.sex = "  ".to_owned(),
                    _ => row.sex = (*rng.pick(&["X", "Khác", "?", "0", "1"])).to_owned(),
                }
                return (fault, Some(BAD_ROW));
            }
            Fault::Clean
            | Fault::DobPlaceholder
            | Fault::BorrowedIdentity
            | Fault::UnknownVaccine
            | Fault::DuplicateRow
            | Fault::TooSoon
            | Fault::Foreigner
            | Fault::UnregisteredPerson => return none,
        }
        (fault, None)
    }

    /// The CCCD of a registry neighbour of `p` whose name differs from `p`'s in its letters.
    pub(super) fn neighbour_of(&self, p: &Person) -> Option<String> {
        let i = p.index;
        if i >= self.persons {
            return None;
        }
        if p.neighbour_of_prev && p.distinct_from_prev {
            return Some(self.person(i - 1).cccd);
        }
        let next = i + 1;
        if next < self.persons && !next.is_multiple_of(BLOCK) && self.lane(next % BLOCK).neighbour {
            let q = self.person(next);
            if q.distinct_from_prev {
                return Some(q.cccd);
            }
        }
        None
    }

    /// Rows of the `n`-th foreign national: passport number, own name, always signable.
    pub(super) fn rows_for_foreigner(&self, n: u64) -> Vec<Row> {
        let mut rng = stream(self.seed, TAG_FOREIGN, n);
        let (nat, families, givens, family_first) = rng.pick(&FOREIGN);
        let family = *rng.pick(families);
        let given_at = rng.index(givens.len());
        let given = givens.get(given_at).copied().unwrap_or_default();
        let female = given_at % 2 == 1;
        let name = if *family_first { format!("{family} {given}") } else { format!("{given} {family}") };
        let name = if rng.chance(400_000) { name.to_uppercase() } else { name };
        let v = (u128::from(self.passport_a) * u128::from(n) + u128::from(self.passport_b)) % 10_000_000;
        let letter = char::from(b'A' + ((n / 10_000_000) % 26) as u8);
        let passport = format!("{letter}{v:07}");
        let dob = uniform_date(&mut rng, date!(1950 - 01 - 01), date!(2001 - 12 - 31));
        let product = *rng.pick(&[PFIZER, MODERNA, AZ, JANSSEN]);
        let spec = &PRODUCTS[product];
        let count = if spec.primary == 1 { 1 } else { 1 + rng.below(3) };
        let mut day = uniform_date(&mut rng, date!(2021 - 07 - 01), date!(2022 - 03 - 31));
        let facility = format!("{}{:03}", PROVINCES[rng.index(PROVINCES.len())].0, 1 + rng.below(150));
        let key = format!("FOREIGN:{nat}:{passport}");
        let mut rows = Vec::new();
        let mut series = Series::default();
        for k in 0..count {
            if k > 0 {
                let gap = if k == 1 { spec.interval } else { (120, 200) };
                day += Duration::days(rng.range(gap.0.max(21), gap.1.max(28)));
            }
            if day > LAST_DOSE {
                break;
            }
            let row = Row {
                day,
                product,
                facility: facility.clone(),
                id: passport.clone(),
                name: name.clone(),
                dob: dmy(dob),
                sex: typed_sex(&mut rng, female),
                nationality: nat,
                phone: String::new(),
                vaccine: (*rng.weighted(spec.typed)).to_owned(),
                lot: lot(&mut rng, spec),
                dose_number: (k + 1).to_string(),
                vaccination_date: dmy(day),
                fault: Fault::Foreigner,
                stage: None,
                expected: SIGN,
                person_key: key.clone(),
            };
            series.settle(row, &mut rows);
        }
        rows
    }

    /// Rows of the `n`-th Vietnamese person missing from the registry.
    pub(super) fn rows_for_unregistered(&self, n: u64) -> Vec<Row> {
        let index = self.persons + n - 1;
        let p = self.person(index);
        if self.owner(&p.cccd).is_some() {
            return Vec::new();
        }
        let mut rng = stream(self.seed, TAG_ROWS, index);
        self.schedule(&p)
            .iter()
            .enumerate()
            .map(|(k, (product, day))| {
                let mut row = base_row(&p, &mut rng, *product, *day, k + 1);
                row.fault = Fault::UnregisteredPerson;
                row.stage = Some(NOT_IN_REGISTRY);
                row.expected = NOT_IN_REGISTRY;
                row.person_key = format!("UNREGISTERED:{n}");
                row
            })
            .collect()
    }
}

/// The gate's per-person state for the duplicate and sequence checks (SPEC §5).
#[derive(Default)]
pub(super) struct Series {
    /// Accepted doses by product (`mp`) and date.
    pub(super) accepted: Vec<(&'static str, Date)>,
    pub(super) last: Option<Date>,
}

impl Series {
    /// Decides `row.expected` and appends the row; true if it is signed.
    pub(super) fn settle(&mut self, mut row: Row, out: &mut Vec<Row>) -> bool {
        let dose = (PRODUCTS[row.product].mp, row.day);
        row.expected = match row.stage {
            Some(code) => code,
            None if self.accepted.contains(&dose) => DUPLICATE_DOSE,
            None if self.last.is_some_and(|l| (row.day - l).whole_days() < 14) => DOSE_SEQUENCE,
            None => {
                self.accepted.push(dose);
                self.last = Some(row.day);
                SIGN
            }
        };
        let signed = row.expected == SIGN;
        out.push(row);
        signed
    }
}
