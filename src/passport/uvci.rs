//! The unique vaccination certificate identifier (UVCI, DCC field `ci`) and its
//! Luhn mod 38 check character, SPEC §3.
//!
//! This module owns the form of the UVCIs vaxpass makes,
//! `URN:UVCI:01:VN:<facility code>/<opaque>#<check>`, the encoding of the
//! opaque part from a keyed-hash digest, and the lenient parse a verifier
//! needs for foreign UVCIs. It does not compute the keyed hash (the caller
//! holds the key) and knows nothing about persons, doses or signing.
//!
//! The check character follows the eHealth Network's UVCI guidelines (the
//! UVCI annex; DCC schema wiki, FAQ "UVCI checksum"): Luhn mod N over the
//! whole string including the `URN:UVCI:` prefix, with N = 38 and the code
//! points `A`–`Z` = 0–25, `0`–`9` = 26–35, `/` = 36, `:` = 37, letters first. The
//! order matters: with digits first the eHN example
//! `URN:UVCI:01:NL:187/37512422923#Z` would get `K`, and Austria's production
//! UVCIs in the conformance vectors would all fail.

use std::fmt;

/// The Luhn mod N alphabet, in code-point order (eHN UVCI annex):
/// letters, then digits, then `/` and `:`. `#` separates the check character
/// and is not part of it.
const LUHN_ALPHABET: &[u8; 38] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:";

/// N of Luhn mod N: the size of [`LUHN_ALPHABET`].
const LUHN_N: usize = LUHN_ALPHABET.len();

/// Every UVCI starts with this (eHN UVCI annex; the prefix is optional
/// there, but vaxpass always writes it and [`Uvci::parse`] requires it).
const URN_PREFIX: &str = "URN:UVCI:";

/// Prefix of the UVCIs vaxpass makes: schema version 01, country VN.
const VN_PREFIX: &str = "URN:UVCI:01:VN:";

/// Longest UVCI accepted: the DCC schema 1.3.0 limits `ci` to 80 characters.
pub(crate) const MAX_UVCI_LEN: usize = 80;

/// Longest opaque part: keeps our UVCIs (15 + 5 + 1 + 40 + 2 = 63 characters)
/// well inside [`MAX_UVCI_LEN`].
const MAX_OPAQUE_LEN: usize = 40;

/// Bytes of the keyed-hash digest kept in the opaque part: 80 bits, far beyond
/// a birthday collision among Vietnam's ~80 million vaccinated people, and an
/// exact multiple of base32's 5-byte group (10 bytes → 16 characters).
const OPAQUE_DIGEST_BYTES: usize = 10;

/// RFC 4648 §6 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a UVCI could not be made or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UvciError {
    /// The facility code (mã cơ sở KCB) is not 5 ASCII digits `PPNNN`
    /// (Decision 384/QĐ-BYT; SPEC §2).
    #[error("facility code must be 5 ASCII digits (PPNNN)")]
    FacilityCodeNotFiveDigits,
    /// The opaque part is empty or longer than 40 characters.
    #[error("opaque part has {len} characters, expected 1 to 40")]
    OpaqueLength {
        /// Number of characters given.
        len: usize,
    },
    /// The opaque part has a character outside `[A-Z0-9]` (eHN UVCI
    /// annex charset).
    #[error("opaque part may only contain A-Z and 0-9")]
    OpaqueCharNotAllowed,
    /// The text does not start with `URN:UVCI:` (SPEC §3).
    #[error("UVCI must start with URN:UVCI:")]
    MissingPrefix,
    /// The text is longer than the DCC schema's 80 characters for `ci`.
    #[error("UVCI has {len} characters, at most {max} allowed")]
    TooLong {
        /// Length of the text, in bytes.
        len: usize,
        /// `MAX_UVCI_LEN`.
        max: usize,
    },
    /// The text has a character that is not printable ASCII (`!` to `~`).
    #[error("UVCI may only contain printable ASCII characters")]
    NotPrintableAscii,
    /// A `#` is present but not followed by exactly one character (eHN
    /// UVCI annex: `#` + one check character ends the UVCI).
    #[error("'#' must be followed by exactly one check character")]
    MalformedCheckChar,
    /// A check character is present, but the text before `#` has characters
    /// outside the Luhn mod 38 alphabet (`A-Z 0-9 / :`), so it cannot be checked.
    #[error("UVCI with a check character may only contain A-Z, 0-9, '/' and ':' before '#'")]
    OutsideLuhnAlphabet,
    /// The check character is not the Luhn mod 38 check of the text before
    /// `#` (SPEC §3).
    #[error("check character is {found:?}, expected {expected:?}")]
    CheckCharMismatch {
        /// The Luhn mod 38 check character of the text before `#`.
        expected: char,
        /// The character found after `#`.
        found: char,
    },
}

/// A unique vaccination certificate identifier (DCC field `ci`, SPEC §3).
///
/// Made by [`Uvci::new`] in vaxpass's own form
/// `URN:UVCI:01:VN:<facility code>/<opaque>#<check>`, or read by
/// [`Uvci::parse`], which also accepts foreign forms without a check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uvci(String);

impl Uvci {
    /// Makes `URN:UVCI:01:VN:{facility_code}/{opaque}#{check}`, the check being
    /// the Luhn mod 38 character over everything before `#`.
    ///
    /// `facility_code` must be 5 ASCII digits; `opaque` 1 to 40 characters of
    /// `[A-Z0-9]` (see `opaque_from_digest`).
    ///
    /// # Errors
    ///
    /// [`UvciError::FacilityCodeNotFiveDigits`], [`UvciError::OpaqueLength`] or
    /// [`UvciError::OpaqueCharNotAllowed`] for a bad argument.
    pub fn new(facility_code: &str, opaque: &str) -> Result<Uvci, UvciError> {
        if facility_code.len() != 5 || !facility_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UvciError::FacilityCodeNotFiveDigits);
        }
        let len = opaque.chars().count();
        if !(1..=MAX_OPAQUE_LEN).contains(&len) {
            return Err(UvciError::OpaqueLength { len });
        }
        if !opaque.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return Err(UvciError::OpaqueCharNotAllowed);
        }
        let body = format!("{VN_PREFIX}{facility_code}/{opaque}");
        // Every character of `body` was checked above or is in the constant
        // prefix, all inside the Luhn alphabet, so a check character exists.
        let check = luhn_mod38_check_char(&body).ok_or(UvciError::OpaqueCharNotAllowed)?;
        Ok(Uvci(format!("{body}#{check}")))
    }

    /// Reads a UVCI from a passport or a user.
    ///
    /// Accepts any text of at most 80 printable ASCII characters that starts
    /// with `URN:UVCI:`. The check character is optional, because foreign
    /// UVCIs often lack it (SPEC §3); when a `#` is present, it must be followed
    /// by exactly one character, which must be the Luhn mod 38 check of the
    /// text before it. Nothing else about foreign forms is checked.
    ///
    /// # Errors
    ///
    /// The [`UvciError`] variant naming the first rule broken, checked in this
    /// order: length, printable ASCII, prefix, then the check character.
    pub fn parse(s: &str) -> Result<Uvci, UvciError> {
        if s.len() > MAX_UVCI_LEN {
            return Err(UvciError::TooLong { len: s.len(), max: MAX_UVCI_LEN });
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UvciError::NotPrintableAscii);
        }
        if !s.starts_with(URN_PREFIX) {
            return Err(UvciError::MissingPrefix);
        }
        if let Some((body, check)) = s.split_once('#') {
            let mut check_chars = check.chars();
            let (Some(found), None) = (check_chars.next(), check_chars.next()) else {
                return Err(UvciError::MalformedCheckChar);
            };
            let expected = luhn_mod38_check_char(body).ok_or(UvciError::OutsideLuhnAlphabet)?;
            if expected != found {
                return Err(UvciError::CheckCharMismatch { expected, found });
            }
        }
        Ok(Uvci(s.to_owned()))
    }

    /// The UVCI as written in the DCC `ci` field.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The facility code (mã cơ sở KCB, `PPNNN`) of a Vietnamese UVCI of the
    /// form `URN:UVCI:01:VN:PPNNN/…`, or `None` for any other form.
    #[must_use]
    pub fn facility_code(&self) -> Option<&str> {
        let rest = self.0.strip_prefix(VN_PREFIX)?;
        let (code, _opaque) = rest.split_once('/')?;
        (code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    }
}

impl fmt::Display for Uvci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Encodes the first 10 bytes of a keyed-hash digest as the opaque part of a
/// UVCI: RFC 4648 base32 (`A`–`Z`, `2`–`7`), no padding, so 10 bytes give
/// exactly 16 characters, all valid for [`Uvci::new`].
///
/// A digest shorter than 10 bytes is encoded whole (⌈8·len/5⌉ characters,
/// empty for an empty digest); callers pass a full hash output.
#[must_use]
pub(crate) fn opaque_from_digest(digest: &[u8]) -> String {
    let used = digest.get(..OPAQUE_DIGEST_BYTES).unwrap_or(digest);
    let mut out = String::with_capacity(16);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in used {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push_base32(&mut out, buffer >> bits);
        }
        // Keep only the bits not yet written, so `buffer` never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        push_base32(&mut out, buffer << (5 - bits));
    }
    out
}

/// Appends the base32 character for the low 5 bits of `value`.
fn push_base32(out: &mut String, value: u32) {
    let index = usize::try_from(value & 0x1f).unwrap_or(0);
    if let Some(&c) = BASE32_ALPHABET.get(index) {
        out.push(char::from(c));
    }
}

/// The Luhn mod 38 code point of `c`, or `None` outside the alphabet.
fn code_point(c: char) -> Option<usize> {
    LUHN_ALPHABET.iter().position(|&a| char::from(a) == c)
}

/// Luhn mod 38 sum of `s`, the rightmost character getting factor
/// `first_factor` and the factors alternating 2, 1 leftwards; `None` if a
/// character is outside the alphabet. The sum is kept reduced mod 38.
fn luhn_sum(s: &str, first_factor: usize) -> Option<usize> {
    let mut factor = first_factor;
    let mut sum = 0;
    for c in s.chars().rev() {
        let addend = factor * code_point(c)?;
        // Add the "digits" of the addend written in base N.
        sum = (sum + addend / LUHN_N + addend % LUHN_N) % LUHN_N;
        factor = if factor == 2 { 1 } else { 2 };
    }
    Some(sum)
}

/// The Luhn mod 38 check character of `s` (eHN UVCI annex), or `None`
/// if `s` has a character outside `A-Z 0-9 / :`.
///
/// For a UVCI, `s` is everything before the `#`, `URN:UVCI:` included:
/// `luhn_mod38_check_char("URN:UVCI:01:NL:187/37512422923") == Some('Z')`.
#[must_use]
pub(crate) fn luhn_mod38_check_char(s: &str) -> Option<char> {
    let sum = luhn_sum(s, 2)?;
    let check = (LUHN_N - sum) % LUHN_N;
    LUHN_ALPHABET.get(check).map(|&c| char::from(c))
}

#[cfg(test)]
/// Whether `with_check` (a text followed directly by its check character,
/// without the `#`) passes the Luhn mod 38 check: its sum, the check character
/// counted with factor 1, is 0 mod 38.
///
/// Returns `false` for an empty text or a character outside `A-Z 0-9 / :`.
#[must_use]
pub(crate) fn luhn_mod38_valid(with_check: &str) -> bool {
    !with_check.is_empty() && luhn_sum(with_check, 1) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `s` with its `#check` suffix replaced by the check character alone.
    fn without_hash(s: &str) -> String {
        s.replace('#', "")
    }

    #[test]
    fn ehn_wiki_example_has_check_char_z() {
        // eHN DCC schema wiki, FAQ "UVCI checksum".
        assert_eq!(luhn_mod38_check_char("URN:UVCI:01:NL:187/37512422923"), Some('Z'));
        assert!(luhn_mod38_valid("URN:UVCI:01:NL:187/37512422923Z"));
    }

    #[test]
    fn austrian_production_uvcis_pass_the_check() {
        // From shared/conformance/dcc-vectors.jsonl (AT certificates).
        for uvci in [
            "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B",
            "URN:UVCI:01:AT:71EE2559DE38C6BF7304FB65A1A451EC#3",
            "URN:UVCI:01:AT:858CC18CFCF5965EF82F60E493349AA5#K",
            "URN:UVCI:01:AT:B5921A35D6A0D696421B3E2462178297#I",
        ] {
            assert!(luhn_mod38_valid(&without_hash(uvci)), "{uvci}");
            assert_eq!(Uvci::parse(uvci).map(|u| u.to_string()), Ok(uvci.to_owned()));
        }
    }

    #[test]
    fn check_char_is_none_outside_the_alphabet() {
        assert_eq!(luhn_mod38_check_char("URN:UVCI:01:VN:01001/abc"), None);
        assert_eq!(luhn_mod38_check_char("A#B"), None);
        assert!(!luhn_mod38_valid("URN:UVCI:01:VN:01001/ABC#A"));
        assert!(!luhn_mod38_valid(""));
    }

    #[test]
    fn new_builds_vietnamese_form_with_check_char() {
        let uvci = Uvci::new("01001", "ABC123").unwrap();
        let s = uvci.as_str();
        assert!(s.starts_with("URN:UVCI:01:VN:01001/ABC123#"), "{s}");
        assert_eq!(s.len(), "URN:UVCI:01:VN:01001/ABC123#".len() + 1);
        assert!(luhn_mod38_valid(&without_hash(s)));
        assert_eq!(uvci.facility_code(), Some("01001"));
        assert_eq!(Uvci::parse(s), Ok(uvci.clone()));
    }

    #[test]
    fn new_rejects_bad_facility_code() {
        for code in ["", "0100", "010011", "01a01", "０1001", "01 01"] {
            assert_eq!(Uvci::new(code, "ABC"), Err(UvciError::FacilityCodeNotFiveDigits), "{code:?}");
        }
    }

    #[test]
    fn new_rejects_bad_opaque_part() {
        assert_eq!(Uvci::new("01001", ""), Err(UvciError::OpaqueLength { len: 0 }));
        assert_eq!(Uvci::new("01001", &"A".repeat(41)), Err(UvciError::OpaqueLength { len: 41 }));
        assert!(Uvci::new("01001", &"A".repeat(40)).is_ok());
        for opaque in ["abc", "AB/C", "AB#C", "AB:C", "ÀB", "A B"] {
            assert_eq!(Uvci::new("01001", opaque), Err(UvciError::OpaqueCharNotAllowed), "{opaque:?}");
        }
    }

    #[test]
    fn parse_accepts_foreign_uvci_without_check_char() {
        for s in [
            "URN:UVCI:01:SE:EHM/V100000024GI5HM",
            "URN:UVCI:01:CZ:4TYR4S7MW5SCBWCSM4R7UH3RRF2G5HWF",
            "URN:UVCI:V1:MT:ABC-def_1",
        ] {
            let uvci = Uvci::parse(s).unwrap();
            assert_eq!(uvci.as_str(), s);
            assert_eq!(uvci.facility_code(), None);
        }
    }

    #[test]
    fn parse_rejects_wrong_check_char() {
        let good = Uvci::new("79001", "XYZ").unwrap();
        let body = good.as_str().split_once('#').unwrap().0;
        let right = good.as_str().chars().last().unwrap();
        let wrong = if right == 'A' { 'B' } else { 'A' };
        assert_eq!(
            Uvci::parse(&format!("{body}#{wrong}")),
            Err(UvciError::CheckCharMismatch { expected: right, found: wrong })
        );
    }

    #[test]
    fn parse_rejects_malformed_text() {
        assert_eq!(Uvci::parse("01:VN:01001/ABC"), Err(UvciError::MissingPrefix));
        assert_eq!(Uvci::parse("urn:uvci:01:VN:01001/ABC"), Err(UvciError::MissingPrefix));
        assert_eq!(Uvci::parse(&format!("URN:UVCI:{}", "A".repeat(72))), Err(UvciError::TooLong { len: 81, max: 80 }));
        assert_eq!(Uvci::parse("URN:UVCI:01:VN:01001/A C"), Err(UvciError::NotPrintableAscii));
        assert_eq!(Uvci::parse("URN:UVCI:01:VN:01001/Ắ"), Err(UvciError::NotPrintableAscii));
        assert_eq!(Uvci::parse("URN:UVCI:01:VN:01001/ABC#"), Err(UvciError::MalformedCheckChar));
        assert_eq!(Uvci::parse("URN:UVCI:01:VN:01001/ABC#AB"), Err(UvciError::MalformedCheckChar));
        assert_eq!(Uvci::parse("URN:UVCI:01:VN:01001/abc#A"), Err(UvciError::OutsideLuhnAlphabet));
    }

    #[test]
    fn facility_code_needs_the_vietnamese_form() {
        let at = Uvci::parse("URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B").unwrap();
        assert_eq!(at.facility_code(), None);
        let short = Uvci::parse("URN:UVCI:01:VN:0100/ABC").unwrap();
        assert_eq!(short.facility_code(), None);
        let no_slash = Uvci::parse("URN:UVCI:01:VN:01001").unwrap();
        assert_eq!(no_slash.facility_code(), None);
    }

    #[test]
    fn opaque_from_digest_is_rfc4648_base32_of_ten_bytes() {
        // RFC 4648 §10 test vectors, and 10 bytes → exactly 16 characters.
        assert_eq!(opaque_from_digest(b""), "");
        assert_eq!(opaque_from_digest(b"f"), "MY");
        assert_eq!(opaque_from_digest(b"foo"), "MZXW6");
        assert_eq!(opaque_from_digest(b"foobar"), "MZXW6YTBOI");
        assert_eq!(opaque_from_digest(b"foobarfoob"), "MZXW6YTBOJTG633C");
        assert_eq!(opaque_from_digest(&[0u8; 32]), "A".repeat(16));
        assert_eq!(opaque_from_digest(&[0xffu8; 32]), "7".repeat(16));
        // Only the first 10 bytes count.
        let mut digest = [7u8; 32];
        let before = opaque_from_digest(&digest);
        digest[10] = 0;
        assert_eq!(opaque_from_digest(&digest), before);
    }

    #[test]
    fn single_character_substitutions_are_all_detected() {
        let uvci = Uvci::new("01001", "MZXW6YTBOI7Q2K3A").unwrap();
        let with_check = without_hash(uvci.as_str());
        assert!(luhn_mod38_valid(&with_check));
        let chars: Vec<char> = with_check.chars().collect();
        let mut tried = 0;
        for position in 0..chars.len() {
            for &replacement in LUHN_ALPHABET {
                let replacement = char::from(replacement);
                if replacement == chars[position] {
                    continue;
                }
                let mut tampered = chars.clone();
                tampered[position] = replacement;
                let tampered: String = tampered.into_iter().collect();
                assert!(!luhn_mod38_valid(&tampered), "{tampered}");
                tried += 1;
            }
        }
        assert_eq!(tried, chars.len() * 37);
    }

    #[test]
    fn adjacent_swaps_are_almost_always_detected() {
        // Luhn mod N misses a swap only of the two code points whose doubled
        // values collide (here 0 and 37: `A` and `:`), so measure over many
        // UVCIs rather than assert every swap.
        let mut detected = 0u32;
        let mut swaps = 0u32;
        for n in 0u32..500 {
            let digest = n.to_be_bytes().repeat(3);
            let uvci = Uvci::new("01001", &opaque_from_digest(&digest)).unwrap();
            let chars: Vec<char> = without_hash(uvci.as_str()).chars().collect();
            for i in 0..chars.len() - 1 {
                if chars[i] == chars[i + 1] {
                    continue;
                }
                let mut swapped = chars.clone();
                swapped.swap(i, i + 1);
                let swapped: String = swapped.into_iter().collect();
                swaps += 1;
                if !luhn_mod38_valid(&swapped) {
                    detected += 1;
                }
            }
        }
        let rate = f64::from(detected) / f64::from(swaps);
        assert!(rate > 0.99, "{detected}/{swaps} adjacent swaps detected");
    }

    #[test]
    fn the_only_undetected_swap_is_a_with_colon() {
        for a in LUHN_ALPHABET {
            for b in LUHN_ALPHABET {
                if a == b {
                    continue;
                }
                let s = format!("{}{}", char::from(*a), char::from(*b));
                let t = format!("{}{}", char::from(*b), char::from(*a));
                let cs = luhn_mod38_check_char(&s).unwrap();
                let caught = !luhn_mod38_valid(&format!("{t}{cs}"));
                let a_colon = matches!((*a, *b), (b'A', b':') | (b':', b'A'));
                assert_eq!(caught, !a_colon, "{s} ↔ {t}");
            }
        }
    }

    proptest! {
        #[test]
        fn every_uvci_we_make_passes_its_own_check(
            code in "[0-9]{5}",
            opaque in "[A-Z0-9]{1,40}",
        ) {
            let uvci = Uvci::new(&code, &opaque).unwrap();
            prop_assert!(luhn_mod38_valid(&without_hash(uvci.as_str())));
            prop_assert_eq!(Uvci::parse(uvci.as_str()), Ok(uvci.clone()));
            prop_assert_eq!(uvci.facility_code(), Some(code.as_str()));
            prop_assert!(uvci.as_str().len() <= MAX_UVCI_LEN);
        }

        #[test]
        fn every_digest_gives_a_usable_opaque_part(digest in proptest::collection::vec(any::<u8>(), 10..64)) {
            let opaque = opaque_from_digest(&digest);
            prop_assert_eq!(opaque.len(), 16);
            prop_assert!(Uvci::new("01001", &opaque).is_ok());
        }

        #[test]
        fn check_char_roundtrips_through_validation(s in "[A-Z0-9/:]{0,60}") {
            let check = luhn_mod38_check_char(&s).unwrap();
            let with_check = format!("{s}{check}");
            prop_assert!(luhn_mod38_valid(&with_check));
        }

        #[test]
        fn a_tampered_uvci_fails(
            code in "[0-9]{5}",
            opaque in "[A-Z0-9]{1,40}",
            position in any::<proptest::sample::Index>(),
            replacement in proptest::sample::select(LUHN_ALPHABET.to_vec()),
        ) {
            let uvci = Uvci::new(&code, &opaque).unwrap();
            let mut bytes = without_hash(uvci.as_str()).into_bytes();
            let i = position.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(!luhn_mod38_valid(&tampered));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Uvci::parse(&s);
        }
    }
}
