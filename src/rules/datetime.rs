//! CertLogic date-times: milliseconds since the Unix epoch, UTC, as JavaScript's `Date` holds
//! them, because the specification defines `plusTime` by the `Date.setUTC*` methods
//! (certlogic/specification/README.md, "Offset date-time"). Parsing follows certlogic-js
//! `dateFromString`/`roundUpPartialDate`, the reference the test suite was written against.

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Years beyond which a date-time is refused: JavaScript's `Date` range is ±100,000,000 days
/// (ECMA-262 §21.4.1.22), and no certificate needs more than four-digit years.
const MAX_YEAR: i64 = 9999;

/// A CertLogic time unit (`plusTime`'s third operand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Year,
    Month,
    Day,
    Hour,
}

impl TimeUnit {
    pub(crate) fn parse(s: &str) -> Option<TimeUnit> {
        match s {
            "year" => Some(TimeUnit::Year),
            "month" => Some(TimeUnit::Month),
            "day" => Some(TimeUnit::Day),
            "hour" => Some(TimeUnit::Hour),
            _ => None,
        }
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date; `month` is 1-based and may be
/// any value, `day` too (they overflow into the next month or year as `Date.UTC` does).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Normalise the month first (MakeDay: ym = y + floor(m / 12), mn = m mod 12).
    let m0 = month - 1;
    let year = year + m0.div_euclid(12);
    let month = m0.rem_euclid(12) + 1;
    // Howard Hinnant's days_from_civil for the first of that month, then add the days.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let yoe_days = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + yoe_days - 719_468 + (day - 1)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    days_from_civil(year, month + 1, 1) - days_from_civil(year, month, 1)
}

/// `n` ASCII digits at the start of `s`, as a number.
fn digits(s: &[u8], n: usize) -> Option<i64> {
    let part = s.get(..n)?;
    part.iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
}

/// A valid calendar date as a day count; JavaScript's ISO parser refuses out-of-range fields.
fn date_days(year: i64, month: i64, day: i64) -> Option<i64> {
    ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
        .then(|| days_from_civil(year, month, day))
}

/// certlogic-js `roundUpPartialDate`: `YYYY` → 31 December, `YYYY-MM` → the month's last
/// day, midnight UTC; anything else is not a partial date.
fn round_up_partial_date(s: &str) -> Option<Result<i64, ()>> {
    let b = s.as_bytes();
    match b.len() {
        4 => {
            let year = digits(b, 4)?;
            Some(date_days(year, 12, 31).map(|d| d * DAY_MS).ok_or(()))
        }
        7 if b[4] == b'-' => {
            let year = digits(b, 4)?;
            let month = digits(&b[5..], 2)?;
            if !(1..=12).contains(&month) {
                return Some(Err(()));
            }
            Some(Ok((days_from_civil(year, month, 1) + days_in_month(year, month) - 1) * DAY_MS))
        }
        _ => None,
    }
}

/// certlogic-js `dateFromString`: `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm:ss` with optional
/// fraction (cut to milliseconds, rounding down) and optional offset (`Z`, `±h`, `±hh`,
/// `±hmm`, `±hhmm`, `±h:mm`, `±hh:mm`); a missing offset means UTC.
pub(crate) fn parse_date_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(b, 4)?;
    let month = digits(&b[5..], 2)?;
    let day = digits(&b[8..], 2)?;
    let days = date_days(year, month, day)?;
    if b.len() == 10 {
        return Some(days * DAY_MS);
    }
    if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (digits(&b[11..], 2)?, digits(&b[14..], 2)?, digits(&b[17..], 2)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some((b'.', after)) = rest.split_first() {
        let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // ".1" is 100 ms, ".1239" is 123 ms (padEnd(4, "0").substring(0, 4)).
        millis =
            after[..n].iter().chain(std::iter::repeat(&b'0')).take(3).fold(0, |a, &c| a * 10 + i64::from(c - b'0'));
        rest = &after[n..];
    }
    let offset_minutes = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (hours, minutes) = parse_offset(tail)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let m = hours * 60 + minutes;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    Some(days * DAY_MS + ((h * 60 + mi - offset_minutes) * 60 + sec) * 1000 + millis)
}

/// The regex `(\d{1,2}):?(\d{2})?` over the whole rest of the string.
fn parse_offset(t: &[u8]) -> Option<(i64, i64)> {
    let all_digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    let number = |p: &[u8]| p.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
    match t {
        h if h.len() <= 2 && all_digits(h) => Some((number(h), 0)),
        _ => {
            if let Some(colon) = t.iter().position(|&c| c == b':') {
                let (h, m) = (&t[..colon], &t[colon + 1..]);
                (h.len() <= 2 && all_digits(h) && m.len() == 2 && all_digits(m)).then(|| (number(h), number(m)))
            } else if (3..=4).contains(&t.len()) && all_digits(t) {
                let (h, m) = t.split_at(t.len() - 2);
                Some((number(h), number(m)))
            } else {
                None
            }
        }
    }
}

/// certlogic-js `plusTime`: a partial date rounds up, then the amount of units is added as
/// `Date.setUTC<unit>(getUTC<unit>() + amount)` does (a month or year added to the 31st or
/// to 29 February overflows into the next month).
pub(crate) fn plus_time(s: &str, amount: i64, unit: TimeUnit) -> Option<i64> {
    let t = match round_up_partial_date(s) {
        Some(r) => r.ok()?,
        None => parse_date_time(s)?,
    };
    let result = match unit {
        _ if amount == 0 => t,
        TimeUnit::Day => t.checked_add(amount.checked_mul(DAY_MS)?)?,
        TimeUnit::Hour => t.checked_add(amount.checked_mul(3_600_000)?)?,
        TimeUnit::Month | TimeUnit::Year => {
            let days = t.div_euclid(DAY_MS);
            let time_of_day = t.rem_euclid(DAY_MS);
            let (y, m, d) = civil_from_days(days);
            let months = if unit == TimeUnit::Year { amount.checked_mul(12)? } else { amount };
            let total = (y * 12 + (m - 1)).checked_add(months)?;
            let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
            if y.abs() > MAX_YEAR * 2 {
                return None;
            }
            days_from_civil(y, m, d) * DAY_MS + time_of_day
        }
    };
    in_range(result)
}

/// certlogic-js `dccDateOfBirth`: `YYYY`, `YYYY-MM` (rounded up) or `YYYY-MM-DD`.
pub(crate) fn dcc_date_of_birth(s: &str) -> Option<i64> {
    match round_up_partial_date(s) {
        Some(r) => r.ok(),
        None if s.len() == 10 => parse_date_time(s),
        None => None,
    }
}

fn in_range(t: i64) -> Option<i64> {
    let (y, _, _) = civil_from_days(t.div_euclid(DAY_MS));
    (y.abs() <= MAX_YEAR * 2).then_some(t)
}

/// `Date.prototype.toISOString`: `YYYY-MM-DDTHH:mm:ss.sssZ` (how a date-time result prints).
pub(crate) fn to_iso_string(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY_MS));
    let ms = t.rem_euclid(DAY_MS);
    let (h, mi, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    } else {
        let sign = if y < 0 { '-' } else { '+' };
        format!("{sign}{:06}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z", y.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str, n: i64, u: TimeUnit) -> String {
        to_iso_string(plus_time(s, n, u).unwrap())
    }

    #[test]
    fn leap_days_follow_javascript_date() {
        // The specification's table (README "Leap days").
        assert_eq!(iso("2020-02-29", 1, TimeUnit::Day), "2020-03-01T00:00:00.000Z");
        assert_eq!(iso("2020-02-29", 1, TimeUnit::Month), "2020-03-29T00:00:00.000Z");
        assert_eq!(iso("2020-02-29", 1, TimeUnit::Year), "2021-03-01T00:00:00.000Z");
        assert_eq!(iso("2021-01-31", 1, TimeUnit::Month), "2021-03-03T00:00:00.000Z");
        assert_eq!(iso("2021-03-31", -1, TimeUnit::Month), "2021-03-03T00:00:00.000Z");
    }

    #[test]
    fn formats_and_offsets() {
        assert_eq!(iso("2021-06-01T00:00:00+00:00", 40, TimeUnit::Hour), "2021-06-02T16:00:00.000Z");
        assert_eq!(iso("2021-06-01T10:00:00+2", 0, TimeUnit::Day), "2021-06-01T08:00:00.000Z");
        assert_eq!(iso("2021-06-01T10:00:00-0130", 0, TimeUnit::Day), "2021-06-01T11:30:00.000Z");
        assert_eq!(iso("2021-06-01T10:00:00.1Z", 0, TimeUnit::Day), "2021-06-01T10:00:00.100Z");
        assert_eq!(iso("2021-06-01T10:00:00.98765", 0, TimeUnit::Day), "2021-06-01T10:00:00.987Z");
        assert_eq!(iso("2004", 0, TimeUnit::Day), "2004-12-31T00:00:00.000Z");
        assert_eq!(iso("2004-02", 0, TimeUnit::Day), "2004-02-29T00:00:00.000Z");
        assert_eq!(iso("2004-02", 18, TimeUnit::Year), "2022-03-01T00:00:00.000Z");
        for bad in ["", "2021-13", "2021-02-30", "2021-06-01T25:00:00Z", "2021-06-01 10:00:00", "21-06-01"] {
            assert_eq!(plus_time(bad, 0, TimeUnit::Day), None, "{bad}");
        }
        assert_eq!(dcc_date_of_birth("2004-01"), parse_date_time("2004-01-31"));
        assert_eq!(dcc_date_of_birth("2004-01-01T00:00:00Z"), None);
    }
}
