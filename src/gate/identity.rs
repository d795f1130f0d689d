//! Identity numbers as facility staff typed them (SPEC §5 `ID_MISSING`, `ID_BAD_FORMAT`,
//! `ID_INCONSISTENT`; DOMAIN §2), and the row's sex.
//!
//! This module owns the repair of typing noise in the `id_number` column, the choice between
//! CCCD (căn cước công dân, 12 digits), old CMND (chứng minh nhân dân, 9 digits) and a foreign
//! passport number, the province table, and the offline CCCD consistency check against the
//! row's birth year and sex. It knows nothing about the registry, CSV or files: it is handed
//! strings and returns values or an [`IdProblem`].
//!
//! Nothing here prints an identity number: [`IdNumber`]'s `Debug` is redacted and the
//! [`IdProblem`] details are fixed phrases.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Sex as recorded on a dose row (`Nam`/`Nữ`, `M`/`F`, `male`/`female`) or in the registry
/// (`M`/`F`). SPEC §4, §5 "Sex".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Nam, `M`, male.
    Male,
    /// Nữ, `F`, female.
    Female,
}

/// Parses a sex as typed: `Nam`, `Nữ`, `Nu`, `M`, `F`, `male`, `female`, in any case, any
/// Unicode normalisation (NFC or NFD "Nữ"), with surrounding white space (NBSP included).
/// Returns `None` for anything else (SPEC §5: that row is a `BAD_ROW`).
pub(crate) fn parse_sex(raw: &str) -> Option<Sex> {
    // The spellings nearly every row uses, without allocating.
    match raw.trim() {
        "Nam" | "M" | "nam" | "m" => return Some(Sex::Male),
        "Nữ" | "F" | "nữ" | "f" => return Some(Sex::Female),
        _ => {}
    }
    // NFKC also folds full-width letters; lowercasing the composed form then composing again
    // gives the same result for "NỮ", "Nữ" and "nu\u{31b}\u{303}".
    let folded: String = if raw.is_ascii() {
        // NFKC and NFC leave ASCII unchanged; this is the common case.
        raw.trim().to_ascii_lowercase()
    } else {
        let composed: String = raw.nfkc().collect();
        composed.trim().to_lowercase().nfc().collect()
    };
    match folded.as_str() {
        "nam" | "m" | "male" => Some(Sex::Male),
        "nữ" | "nu" | "f" | "female" => Some(Sex::Female),
        _ => None,
    }
}

/// A repaired identity number (số định danh). Build it with [`parse_id`].
///
/// `Debug` is written by hand and redacted (STYLE §3): a CCCD shows only its 3-digit province
/// code, the others show nothing of their value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdNumber {
    /// Citizen identity card / personal identification number (CCCD), 12 ASCII digits
    /// `PPP G YY RRRRRR` (DOMAIN §2).
    Cccd(String),
    /// Old identity card (CMND), 9 ASCII digits, matched through the registry's `old_id`.
    Cmnd(String),
    /// A foreign national's passport number: 6–9 uppercase ASCII letters and digits.
    Foreign(String),
}

impl IdNumber {
    /// The repaired number as text (digits for CCCD/CMND, uppercase for a passport number).
    pub(crate) fn as_str(&self) -> &str {
        match self {
            IdNumber::Cccd(s) | IdNumber::Cmnd(s) | IdNumber::Foreign(s) => s,
        }
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdNumber::Cccd(s) => {
                // The province code says where a birth was registered, not who was born.
                match s.get(..3).filter(|p| p.bytes().all(|b| b.is_ascii_digit())) {
                    Some(province) => write!(f, "Cccd({province}…)"),
                    None => f.write_str("Cccd(***)"),
                }
            }
            IdNumber::Cmnd(_) => f.write_str("Cmnd(***)"),
            IdNumber::Foreign(_) => f.write_str("Foreign(***)"),
        }
    }
}

/// Why an identity number cannot be used. Each variant is one SPEC §5 reason code; `detail`
/// is a fixed English phrase that never contains the number itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub(crate) enum IdProblem {
    /// Blank, no digit at all ("không có", "N/A", `-`), or all zeros. SPEC §5 `ID_MISSING`.
    #[error("identity number missing")]
    Missing,
    /// Not a CCCD/CMND (nationality VN) nor a passport number (other nationalities) after
    /// repairing typing noise. SPEC §5 `ID_BAD_FORMAT`.
    #[error("identity number badly formed: {detail}")]
    BadFormat {
        /// What is wrong, without the number.
        detail: &'static str,
    },
    /// A 12-digit number whose province, century/sex digit or birth-year digits disagree with
    /// DOMAIN §2 or the row. SPEC §5 `ID_INCONSISTENT`.
    #[error("identity number inconsistent: {detail}")]
    Inconsistent {
        /// What disagrees, without the number.
        detail: &'static str,
    },
}

impl IdProblem {
    #[cfg(test)]
    /// The SPEC §5 reason code: `ID_MISSING`, `ID_BAD_FORMAT` or `ID_INCONSISTENT`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            IdProblem::Missing => "ID_MISSING",
            IdProblem::BadFormat { .. } => "ID_BAD_FORMAT",
            IdProblem::Inconsistent { .. } => "ID_INCONSISTENT",
        }
    }
}

/// The province (tỉnh/thành phố) whose 3-digit CCCD code is `code`, e.g. `"001"` → Hà Nội;
/// `None` for codes that do not exist (`"003"`, `"005"`, …). DOMAIN §2: `PPP` is "0" followed
/// by the 2-digit GSO code of [`crate::provinces`].
pub(crate) fn province_name(code: &str) -> Option<&'static str> {
    code.strip_prefix('0').filter(|pp| pp.len() == 2).and_then(crate::provinces::province_name)
}

/// CCCD length (DOMAIN §2: `PPP G YY RRRRRR`).
const CCCD_LEN: usize = 12;
/// CMND length (DOMAIN §2).
const CMND_LEN: usize = 9;
/// Passport numbers accepted for foreign nationals: 6–9 letters and digits (SPEC §5).
const PASSPORT_LEN: std::ops::RangeInclusive<usize> = 6..=9;

/// Repairs and classifies an `id_number` cell (SPEC §5 `ID_MISSING`, `ID_BAD_FORMAT`).
///
/// `nationality` is the row's ISO 3166 alpha-2 code; blank means `VN`.
///
/// Repairs: NFKC (full-width digits to ASCII); drop white space, dots and dashes; drop a
/// `CCCD`/`CMND` prefix with or without a colon; restore leading zeros lost in a spreadsheet
/// (10 or 11 digits → 12 when the padded number's province code exists; 8 digits → 9).
/// Scientific notation (`1.23457E+11`) cannot be repaired.
///
/// This does not check a CCCD against the row's birth year and sex: that is
/// [`check_cccd_consistency`], the next check in SPEC §5 order. A 12-digit number with an
/// unknown province is therefore accepted here and rejected there as `ID_INCONSISTENT`.
pub(crate) fn parse_id(raw: &str, nationality: &str) -> Result<IdNumber, IdProblem> {
    // NFKC leaves ASCII unchanged; only full-width digits and the like need it.
    let text: std::borrow::Cow<'_, str> =
        if raw.is_ascii() { std::borrow::Cow::Borrowed(raw) } else { std::borrow::Cow::Owned(raw.nfkc().collect()) };
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        // Covers blank, "không có", "chưa có", "KHONG CO", "-", "x", "N/A".
        return Err(IdProblem::Missing);
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let unlabelled = strip_id_prefix(&compact);
    if is_scientific_notation(unlabelled) {
        return Err(IdProblem::BadFormat { detail: "scientific notation cannot be repaired" });
    }
    let cleaned: String = unlabelled.chars().filter(|c| *c != '.' && !is_dash(*c)).collect();
    if cleaned.bytes().all(|b| b == b'0') {
        return Err(IdProblem::Missing);
    }
    if is_vietnamese(nationality) { parse_vietnamese_id(&cleaned) } else { parse_passport_number(&cleaned) }
}

/// Whether `nationality` means Vietnam: blank (SPEC §4 default) or `VN` in any case.
fn is_vietnamese(nationality: &str) -> bool {
    if nationality.is_ascii() {
        let n = nationality.trim();
        return n.is_empty() || n.eq_ignore_ascii_case("VN");
    }
    let n: String = nationality.nfkc().collect();
    let n = n.trim();
    n.is_empty() || n.eq_ignore_ascii_case("VN")
}

/// Hyphen-like characters typed between digit groups. NFKC already maps U+FE63 and U+FF0D
/// to `-` and U+2011 to U+2010.
fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}' | '\u{2212}')
}

/// Drops a leading `CCCD`/`CMND` label (any case) and an optional colon after it. The input
/// has no white space left.
fn strip_id_prefix(s: &str) -> &str {
    for label in ["CCCD", "CMND"] {
        let head = s.get(..label.len());
        if head.is_some_and(|h| h.eq_ignore_ascii_case(label)) {
            let rest = s.get(label.len()..).unwrap_or_default();
            return rest.strip_prefix(':').unwrap_or(rest);
        }
    }
    s
}

/// `7.9E+10`, `1.23457E+11`, `1,23457E+11`, `8E+10`: a number a spreadsheet reformatted,
/// whose lost digits cannot be recovered. A bare `12E456` (no decimal separator, no exponent
/// sign) is left alone: spreadsheets always write the sign, and such a string could be a
/// foreign passport number.
fn is_scientific_notation(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else {
        return false;
    };
    let (signed, exponent_digits) = match exponent.strip_prefix(['+', '-']) {
        Some(rest) => (true, rest),
        None => (false, exponent),
    };
    let (decimal, int_part, frac_part) = match mantissa.split_once(['.', ',']) {
        Some((i, f)) => (true, i, f),
        None => (false, mantissa, "1"),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (signed || decimal) && all_digits(int_part) && all_digits(frac_part) && all_digits(exponent_digits)
}

/// The VN branch of [`parse_id`]: `cleaned` has had its noise removed.
fn parse_vietnamese_id(cleaned: &str) -> Result<IdNumber, IdProblem> {
    if !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdProblem::BadFormat {
            detail: if looks_like_health_insurance(cleaned) {
                "looks like a health-insurance number"
            } else {
                "contains characters other than digits"
            },
        });
    }
    match cleaned.len() {
        CCCD_LEN => Ok(IdNumber::Cccd(cleaned.to_owned())),
        10 | 11 => {
            let padded = format!("{cleaned:0>CCCD_LEN$}");
            if padded.get(..3).and_then(province_name).is_some() {
                Ok(IdNumber::Cccd(padded))
            } else if cleaned.len() == 10 && cleaned.starts_with('0') {
                // "0912345678" → "000912345678": province 000 never exists.
                Err(IdProblem::BadFormat { detail: "10 digits starting with 0 looks like a phone number" })
            } else {
                Err(IdProblem::BadFormat { detail: "too few digits and padding gives an unknown province code" })
            }
        }
        CMND_LEN => Ok(IdNumber::Cmnd(cleaned.to_owned())),
        8 => Ok(IdNumber::Cmnd(format!("0{cleaned}"))),
        _ => Err(IdProblem::BadFormat { detail: "wrong number of digits for a CCCD or CMND" }),
    }
}

/// Health-insurance card numbers (mã thẻ BHYT) are 15 characters: two letters, then digits
/// (DOMAIN §2: `DN4…`).
fn looks_like_health_insurance(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() == 15 && chars.by_ref().take(2).all(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_digit())
}

/// The foreign-national branch of [`parse_id`].
fn parse_passport_number(cleaned: &str) -> Result<IdNumber, IdProblem> {
    if PASSPORT_LEN.contains(&cleaned.len()) && cleaned.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(IdNumber::Foreign(cleaned.to_ascii_uppercase()))
    } else {
        Err(IdProblem::BadFormat { detail: "not a passport number of 6-9 letters and digits" })
    }
}

/// Checks a 12-digit CCCD against DOMAIN §2 and the row (SPEC §5 `ID_INCONSISTENT`): the
/// province code exists; the century/sex digit `G` (1900s: male 0, female 1; 2000s: 2/3;
/// 2100s: 4/5; 2200s: 6/7) agrees with `sex` and with the century of `birth_year`; and the
/// `YY` digits equal the last two digits of `birth_year`. A `None` birth year or sex skips the
/// parts that need it.
///
/// Returns `BadFormat` if `cccd` is not 12 ASCII digits (a caller passing anything but an
/// [`IdNumber::Cccd`] value).
pub(crate) fn check_cccd_consistency(cccd: &str, birth_year: Option<i32>, sex: Option<Sex>) -> Result<(), IdProblem> {
    let digits: Vec<u8> = cccd.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    let [p1, p2, p3, g, y1, y2, ..] = digits.as_slice() else {
        return Err(IdProblem::BadFormat { detail: "not a 12-digit number" });
    };
    if digits.len() != CCCD_LEN || digits.iter().any(|d| *d > 9) {
        return Err(IdProblem::BadFormat { detail: "not a 12-digit number" });
    }
    let province = format!("{p1}{p2}{p3}");
    if province_name(&province).is_none() {
        return Err(IdProblem::Inconsistent { detail: "unknown province code" });
    }
    if *g > 7 {
        return Err(IdProblem::Inconsistent { detail: "unassigned century/sex digit" });
    }
    let encoded_sex = if g % 2 == 0 { Sex::Male } else { Sex::Female };
    if sex.is_some_and(|s| s != encoded_sex) {
        return Err(IdProblem::Inconsistent { detail: "century/sex digit disagrees with sex" });
    }
    if let Some(year) = birth_year {
        // G = 0/1 → 19xx, 2/3 → 20xx, 4/5 → 21xx, 6/7 → 22xx.
        let century = 19 + i32::from(g / 2);
        if year.div_euclid(100) != century {
            return Err(IdProblem::Inconsistent { detail: "century/sex digit disagrees with birth year" });
        }
        if year.rem_euclid(100) != i32::from(y1 * 10 + y2) {
            return Err(IdProblem::Inconsistent { detail: "birth-year digits disagree with date of birth" });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn cccd(raw: &str) -> String {
        match parse_id(raw, "VN") {
            Ok(IdNumber::Cccd(s)) => s,
            other => panic!("expected a CCCD, got {other:?}"),
        }
    }

    #[track_caller]
    fn cmnd(raw: &str) -> String {
        match parse_id(raw, "VN") {
            Ok(IdNumber::Cmnd(s)) => s,
            other => panic!("expected a CMND, got {other:?}"),
        }
    }

    #[track_caller]
    fn bad_format(raw: &str, nationality: &str) -> &'static str {
        match parse_id(raw, nationality) {
            Err(IdProblem::BadFormat { detail }) => detail,
            other => panic!("expected ID_BAD_FORMAT, got {other:?}"),
        }
    }

    #[test]
    fn blank_or_wordy_or_zero_id_is_missing() {
        for raw in [
            "",
            "   ",
            "\u{a0}",
            "không có",
            "chưa có",
            "KHONG CO",
            "-",
            "x",
            "N/A",
            "0",
            "000000000000",
            "000.000.000",
            "CCCD: 000000000000",
        ] {
            assert_eq!(parse_id(raw, "VN"), Err(IdProblem::Missing), "{raw:?}");
        }
        assert_eq!(parse_id("không có", "FR"), Err(IdProblem::Missing));
    }

    #[test]
    fn twelve_digits_are_a_cccd() {
        assert_eq!(cccd("001090123456"), "001090123456");
    }

    #[test]
    fn typing_noise_is_repaired() {
        assert_eq!(cccd(" 001 090 123 456 "), "001090123456");
        assert_eq!(cccd("001.090.123.456"), "001090123456");
        assert_eq!(cccd("001-090-123-456"), "001090123456");
        assert_eq!(cccd("001–090–123–456"), "001090123456");
        assert_eq!(cccd("001\u{a0}090\t123456"), "001090123456");
        assert_eq!(cccd("CCCD: 001090123456"), "001090123456");
        assert_eq!(cccd("cccd:001090123456"), "001090123456");
        assert_eq!(cccd("CCCD 001090123456"), "001090123456");
        assert_eq!(cccd("CCCD 001090123456"), "001090123456");
        assert_eq!(cccd("CCCD：001090123456"), "001090123456");
        assert_eq!(cmnd("CMND: 123 456 789"), "123456789");
        assert_eq!(cmnd("Cmnd123456789"), "123456789");
    }

    #[test]
    fn full_width_digits_become_ascii() {
        assert_eq!(cccd("００１０９０１２３４５６"), "001090123456");
    }

    #[test]
    fn lost_leading_zeros_are_restored_when_the_province_exists() {
        assert_eq!(cccd("1090123456"), "001090123456");
        assert_eq!(cccd("79090123456"), "079090123456");
        assert_eq!(cccd("01090123456"), "001090123456");
    }

    #[test]
    fn padding_to_an_unknown_province_is_bad_format() {
        // 003 and 005 do not exist.
        assert_eq!(bad_format("3090123456", "VN"), "too few digits and padding gives an unknown province code");
        assert_eq!(bad_format("05090123456", "VN"), "too few digits and padding gives an unknown province code");
    }

    #[test]
    fn phone_number_is_bad_format() {
        assert_eq!(bad_format("0912345678", "VN"), "10 digits starting with 0 looks like a phone number");
        assert_eq!(bad_format("+84912345678", "VN"), "contains characters other than digits");
    }

    #[test]
    fn scientific_notation_is_bad_format() {
        for raw in ["7.9E+10", "1.23457E+11", "1,23457E+11", "8E+10", "1.23457e+11", "CCCD: 1.23457E+11", " 7.9E+10 "] {
            assert_eq!(bad_format(raw, "VN"), "scientific notation cannot be repaired", "{raw:?}");
        }
        assert_eq!(bad_format("1.23457E-11", "FR"), "scientific notation cannot be repaired");
    }

    #[test]
    fn health_insurance_number_is_bad_format() {
        assert_eq!(bad_format("DN4790123456789", "VN"), "looks like a health-insurance number");
    }

    #[test]
    fn eight_digits_become_a_cmnd() {
        assert_eq!(cmnd("12345678"), "012345678");
        assert_eq!(cmnd("123456789"), "123456789");
    }

    #[test]
    fn other_lengths_are_bad_format() {
        for raw in ["1234567", "1234567890123", "12"] {
            assert_eq!(bad_format(raw, "VN"), "wrong number of digits for a CCCD or CMND", "{raw:?}");
        }
    }

    #[test]
    fn vietnamese_passport_number_is_bad_format() {
        assert_eq!(bad_format("C1234567", "VN"), "contains characters other than digits");
    }

    #[test]
    fn nationality_defaults_to_vn_and_ignores_case() {
        assert_eq!(parse_id("123456789", ""), Ok(IdNumber::Cmnd("123456789".into())));
        assert_eq!(parse_id("123456789", " vn "), Ok(IdNumber::Cmnd("123456789".into())));
    }

    #[test]
    fn foreign_passport_number_is_uppercased() {
        assert_eq!(parse_id("c 1234567", "FR"), Ok(IdNumber::Foreign("C1234567".into())));
        assert_eq!(parse_id("123456789", "US"), Ok(IdNumber::Foreign("123456789".into())));
    }

    #[test]
    fn foreign_value_outside_six_to_nine_characters_is_bad_format() {
        for raw in ["ab12", "001090123456", "AB/123456", "DN4790123456789"] {
            assert_eq!(bad_format(raw, "KR"), "not a passport number of 6-9 letters and digits", "{raw:?}");
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let id = IdNumber::Cccd("001090123456".into());
        assert_eq!(format!("{id:?}"), "Cccd(001…)");
        assert_eq!(format!("{:?}", IdNumber::Cmnd("123456789".into())), "Cmnd(***)");
        assert_eq!(format!("{:?}", IdNumber::Foreign("C1234567".into())), "Foreign(***)");
        assert_eq!(format!("{:?}", IdNumber::Cccd("ữ".into())), "Cccd(***)");
    }

    #[test]
    fn as_str_gives_the_repaired_number() {
        assert_eq!(IdNumber::Cmnd("012345678".into()).as_str(), "012345678");
    }

    #[test]
    fn problem_codes_match_spec() {
        assert_eq!(IdProblem::Missing.code(), "ID_MISSING");
        assert_eq!(IdProblem::BadFormat { detail: "" }.code(), "ID_BAD_FORMAT");
        assert_eq!(IdProblem::Inconsistent { detail: "" }.code(), "ID_INCONSISTENT");
    }

    #[test]
    fn province_codes_are_zero_and_the_gso_code() {
        assert_eq!(province_name("001"), Some("Hà Nội"));
        assert_eq!(province_name("079"), Some("Hồ Chí Minh"));
        assert_eq!(province_name("096"), Some("Cà Mau"));
        assert_eq!(province_name("003"), None);
        assert_eq!(province_name("000"), None);
        assert_eq!(province_name("1"), None);
    }

    #[test]
    fn consistent_cccd_passes() {
        // 001 Hà Nội, G=0 male 1900s, YY=90.
        assert_eq!(check_cccd_consistency("001090123456", Some(1990), Some(Sex::Male)), Ok(()));
        // G=3 female 2000s, YY=05.
        assert_eq!(check_cccd_consistency("079305123456", Some(2005), Some(Sex::Female)), Ok(()));
        assert_eq!(check_cccd_consistency("079305123456", None, None), Ok(()));
    }

    #[track_caller]
    fn inconsistent(cccd: &str, year: Option<i32>, sex: Option<Sex>) -> &'static str {
        match check_cccd_consistency(cccd, year, sex) {
            Err(IdProblem::Inconsistent { detail }) => detail,
            other => panic!("expected ID_INCONSISTENT, got {other:?}"),
        }
    }

    #[test]
    fn unknown_province_is_inconsistent() {
        assert_eq!(inconsistent("003090123456", None, None), "unknown province code");
    }

    #[test]
    fn century_sex_digit_must_agree_with_row() {
        assert_eq!(inconsistent("001090123456", Some(1990), Some(Sex::Female)), "century/sex digit disagrees with sex");
        assert_eq!(
            inconsistent("001290123456", Some(1990), Some(Sex::Male)),
            "century/sex digit disagrees with birth year"
        );
        assert_eq!(inconsistent("001890123456", None, None), "unassigned century/sex digit");
        assert_eq!(check_cccd_consistency("001421123456", Some(2121), Some(Sex::Male)), Ok(()));
        assert_eq!(check_cccd_consistency("001721123456", Some(2221), Some(Sex::Female)), Ok(()));
    }

    #[test]
    fn birth_year_digits_must_agree_with_dob() {
        assert_eq!(
            inconsistent("001090123456", Some(1991), Some(Sex::Male)),
            "birth-year digits disagree with date of birth"
        );
    }

    #[test]
    fn non_cccd_given_to_consistency_check_is_bad_format() {
        for s in ["", "123456789", "00109012345x", "0010901234567"] {
            assert_eq!(
                check_cccd_consistency(s, None, None),
                Err(IdProblem::BadFormat { detail: "not a 12-digit number" }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn sex_spellings_parse() {
        for raw in ["Nam", "NAM", "nam", " M ", "m", "Male", "MALE", "\u{a0}Nam\u{a0}"] {
            assert_eq!(parse_sex(raw), Some(Sex::Male), "{raw:?}");
        }
        for raw in [
            "Nữ",
            "NỮ",
            "nữ",
            "Nu\u{31b}\u{303}",
            "NU\u{31b}\u{303}",
            "Nu",
            "NU",
            "F",
            "f",
            "female",
            "Female",
            "\tNữ\u{a0}",
        ] {
            assert_eq!(parse_sex(raw), Some(Sex::Female), "{raw:?}");
        }
        for raw in ["", "Nư", "Nứ", "X", "khác", "mf"] {
            assert_eq!(parse_sex(raw), None, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_id_never_panics(raw in any::<String>(), nat in "\\PC{0,3}") {
            let _ = parse_id(&raw, &nat);
        }

        #[test]
        fn repaired_id_is_nine_or_twelve_digits_or_foreign_or_rejected(
            raw in "[0-9０-９ .\\-eE+,:CDMNcdmn]{0,20}",
            foreign in any::<bool>(),
        ) {
            let nat = if foreign { "FR" } else { "VN" };
            match parse_id(&raw, nat) {
                Ok(IdNumber::Cccd(s)) => {
                    prop_assert!(!foreign);
                    prop_assert!(s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()));
                }
                Ok(IdNumber::Cmnd(s)) => {
                    prop_assert!(!foreign);
                    prop_assert!(s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()));
                }
                Ok(IdNumber::Foreign(s)) => {
                    prop_assert!(foreign);
                    prop_assert!((6..=9).contains(&s.len()));
                    prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
                }
                Err(_) => {}
            }
        }

        #[test]
        fn consistency_check_never_panics(s in "\\PC{0,14}", y in any::<i32>()) {
            let _ = check_cccd_consistency(&s, Some(y), Some(Sex::Female));
        }

        #[test]
        fn parse_sex_never_panics(s in "\\PC*") {
            let _ = parse_sex(&s);
        }
    }
}
