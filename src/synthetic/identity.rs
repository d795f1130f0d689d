//! Identity numbers as typed.

use super::*;

/// DOMAIN §2 consistency of a 12-digit CCCD with a birth year and sex.
pub(super) fn cccd_consistent(cccd: &str, year: i32, female: bool) -> bool {
    let b = cccd.as_bytes();
    if b.len() != 12 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let province_ok = b[0] == b'0' && PROVINCES.iter().any(|(c, _)| c.as_bytes() == &b[1..3]);
    let g = i32::from(b[3] - b'0');
    let yy = i32::from((b[4] - b'0') * 10 + (b[5] - b'0'));
    province_ok && g <= 7 && (g % 2 == 1) == female && year.div_euclid(100) == 19 + g / 2 && year.rem_euclid(100) == yy
}

/// A CCCD as a spreadsheet shows it after turning it into a number: `1.09012E+09`.
pub(super) fn scientific(cccd: &str) -> String {
    let digits = cccd.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let (head, tail) = digits.split_at(1);
    let tail: String = tail.chars().take(5).collect();
    let tail = if tail.is_empty() { "0".to_owned() } else { tail };
    format!("{head}.{tail}E+{:02}", digits.len() - 1)
}
