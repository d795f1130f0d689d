//! Names on a passport: the native spelling (`fn`/`gn`, NFC) and its ICAO 9303
//! transliteration (`fnt`/`gnt`), SPEC §3 and DOMAIN §4.
//!
//! This module owns name normalisation (NFC, white space collapsed), the
//! Vietnamese family-name-first split, and the transliteration to `[A-Z<]`. It
//! does not compare names with the registry (that is the gate's matching, with
//! its own comparison key) and knows nothing about CSV, persons or signing.
//!
//! Why decomposition and not an ICAO lookup table? ICAO 9303 tables cover
//! U+00C0–U+017F and silently drop Ơ, Ư and the whole Vietnamese block
//! U+1EA0–U+1EF9 ("Nguyễn" → `NGUYN`, DOMAIN §4). Decomposing (NFD) and dropping
//! the combining marks handles every Vietnamese letter; only Đ/đ, which have no
//! decomposition, need mapping first.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises a name as typed: NFC, every run of Unicode white space (NBSP
/// U+00A0, tabs, U+202F, …) collapsed to one ASCII space, leading and trailing
/// white space removed.
///
/// The same name arrives as NFC, NFD or a mix (Windows-1258 keeps tones as
/// combining marks, DOMAIN §4); everything that is stored, hashed, compared or
/// signed goes through this first. The result is a fixed point:
/// `normalise_name(&normalise_name(s)) == normalise_name(s)`.
#[must_use]
pub(crate) fn normalise_name(s: &str) -> String {
    // Most names arrive in NFC already; the quick check avoids recomposing them.
    let nfc: std::borrow::Cow<'_, str> =
        if unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
            std::borrow::Cow::Borrowed(s)
        } else {
            std::borrow::Cow::Owned(s.nfc().collect())
        };
    // `split_whitespace` splits on the Unicode White_Space property, which
    // includes NBSP, U+202F, U+3000 and the other spaces seen in exports.
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a full name (họ và tên, family name first) into `(family, given)`:
/// the family name (`fn`) is the first word of the normalised name, the given
/// names (`gn`, tên đệm + tên) are the remaining words joined by single spaces.
///
/// Both parts are NFC with white space collapsed (see [`normalise_name`]). A
/// one-word name gives an empty given part; an empty or all-space name gives two
/// empty strings.
#[must_use]
pub(crate) fn split_name(full: &str) -> (String, String) {
    let normalised = normalise_name(full);
    match normalised.split_once(' ') {
        Some((family, given)) => (family.to_owned(), given.to_owned()),
        None => (normalised, String::new()),
    }
}

/// The DCC schema's `maxLength` of each of `fn`, `gn`, `fnt` and `gnt`, in characters
/// (DCC JSON schema 1.3.0, `person_name`).
pub(crate) const MAX_NAME_PART_LEN: usize = 80;

/// The first part of the passport name written from `full_name` (`fn`, `fnt`, `gn`, then
/// `gnt`) that would be longer than [`MAX_NAME_PART_LEN`], with its length in characters.
#[must_use]
pub(crate) fn overlong_name_part(full_name: &str) -> Option<(&'static str, usize)> {
    // The gate calls this for every row: a name already in NFC (nearly all) is measured
    // where it lies, words counted as `split_name` would join them, without allocating.
    let nfc = unicode_normalization::is_nfc_quick(full_name.chars()) == unicode_normalization::IsNormalized::Yes;
    let (family_len, given_len) = if nfc {
        let mut words = full_name.split_whitespace();
        let family = words.next().map_or(0, |w| w.chars().count());
        let given = words.fold(None, |n: Option<usize>, w| Some(n.map_or(0, |n| n + 1) + w.chars().count()));
        (family, given.unwrap_or(0))
    } else {
        let (family, given) = split_name(full_name);
        (family.chars().count(), given.chars().count())
    };
    for (index, len, native, transliterated) in [(0, family_len, "fn", "fnt"), (1, given_len, "gn", "gnt")] {
        if len > MAX_NAME_PART_LEN {
            return Some((native, len));
        }
        // One character transliterates to at most three letters (ﬃ → FFI): a part of 26
        // characters or fewer needs no transliteration to be known short enough.
        if len * 3 > MAX_NAME_PART_LEN {
            let (family, given) = split_name(full_name);
            let len = icao(if index == 0 { &family } else { &given }).len();
            if len > MAX_NAME_PART_LEN {
                return Some((transliterated, len));
            }
        }
    }
    None
}

/// Transliterates a name part to the ICAO 9303 machine-readable form used in
/// `fnt`/`gnt` (SPEC §3): Đ/đ → D, NFD, combining marks dropped, uppercase,
/// apostrophes dropped, spaces and hyphens (dashes included) → `<`, anything
/// else outside `[A-Z<]` dropped.
///
/// White space runs are collapsed and trimmed first (as [`normalise_name`]
/// does), so "Bảo\u{a0}\u{a0}Duy" gives `BAO<DUY`; nothing else is collapsed
/// ("Thu--Hà" gives `THU<<HA`). The result only ever contains `[A-Z<]`, for any
/// input.
#[must_use]
pub(crate) fn icao(s: &str) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    // Đ (U+0110) and đ (U+0111) are letters of their own, not D + a mark, so
    // NFD leaves them whole: map them before decomposing.
    let mapped = collapsed.chars().map(|c| match c {
        'Đ' | 'đ' => 'D',
        other => other,
    });
    let mut out = String::with_capacity(s.len());
    for c in mapped.nfd() {
        if is_combining_mark(c) || is_apostrophe(c) {
            continue;
        }
        if c == ' ' || is_hyphen(c) {
            out.push('<');
            continue;
        }
        // Uppercasing may give several characters (ß → SS); keep only A–Z.
        out.extend(c.to_uppercase().filter(char::is_ascii_uppercase));
    }
    out
}

/// Apostrophes seen in names of ethnic minorities ("H'Hen"): ASCII `'`, the
/// typographic ’ (U+2019) and the modifier letter ʼ (U+02BC). They are dropped,
/// not turned into `<`.
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Hyphen-minus and the dashes word processors substitute for it (U+2010
/// hyphen … U+2015 horizontal bar, U+2212 minus). Dropping them instead would
/// silently join two words ("Thu–Hà" → `THUHA`).
fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn name_parts_over_80_characters_are_found() {
        let eighty = "Á".repeat(80);
        assert_eq!(overlong_name_part(&format!("{eighty} {eighty}")), None);
        assert_eq!(overlong_name_part(&format!("{eighty}Á An")), Some(("fn", 81)));
        assert_eq!(overlong_name_part(&format!("Lê {eighty} Á")), Some(("gn", 82)));
        // 30 ligatures are 30 characters but 90 letters once transliterated.
        assert_eq!(overlong_name_part(&format!("Lê {}", "\u{fb03}".repeat(30))), Some(("gnt", 90)));
        assert_eq!(overlong_name_part(&format!("{} An", "\u{fb03}".repeat(27))), Some(("fnt", 81)));
    }

    /// `overlong_name_part` by its definition: split, transliterate, count.
    fn overlong_by_definition(full: &str) -> Option<(&'static str, usize)> {
        let (family, given) = split_name(full);
        [(&family, "fn", "fnt"), (&given, "gn", "gnt")].into_iter().find_map(|(part, native, translit)| {
            let (n, t) = (part.chars().count(), icao(part).len());
            if n > MAX_NAME_PART_LEN {
                Some((native, n))
            } else if t > MAX_NAME_PART_LEN {
                Some((translit, t))
            } else {
                None
            }
        })
    }

    proptest! {
        /// The allocation-free count for NFC names agrees with the definition, for NFC and
        /// decomposed input, odd white space and ligatures alike.
        #[test]
        fn overlong_name_part_agrees_with_its_definition(s in "[ a\u{e1}\u{301}\u{a0}\t\u{fb03}]{0,200}") {
            prop_assert_eq!(overlong_name_part(&s), overlong_by_definition(&s));
        }
    }

    /// Splits and transliterates, returning `(fn, gn, fnt, gnt)`.
    fn passport_name(full: &str) -> (String, String, String, String) {
        let (family, given) = split_name(full);
        let fnt = icao(&family);
        let gnt = icao(&given);
        (family, given, fnt, gnt)
    }

    #[test]
    fn vietnamese_letters_transliterate_by_decomposition() {
        assert_eq!(icao("Nguyễn"), "NGUYEN");
        assert_eq!(icao("Trương"), "TRUONG");
        assert_eq!(icao("Bảo Duy"), "BAO<DUY");
        assert_eq!(icao("Ơ Ư ơ ư"), "O<U<O<U");
    }

    #[test]
    fn d_with_stroke_maps_to_d() {
        assert_eq!(icao("Đặng"), "DANG");
        assert_eq!(icao("đinh"), "DINH");
    }

    #[test]
    fn family_name_is_first_word_and_given_names_the_rest() {
        assert_eq!(
            passport_name("Đặng Thị Ngọc Ánh"),
            ("Đặng".to_owned(), "Thị Ngọc Ánh".to_owned(), "DANG".to_owned(), "THI<NGOC<ANH".to_owned())
        );
    }

    #[test]
    fn vietnam_sample_name_splits_as_published() {
        // The published VN/1.3.0 sample: fn "Nguyễn", gn "Bảo Duy".
        assert_eq!(
            passport_name("Nguyễn Bảo Duy"),
            ("Nguyễn".to_owned(), "Bảo Duy".to_owned(), "NGUYEN".to_owned(), "BAO<DUY".to_owned())
        );
    }

    #[test]
    fn hyphen_in_given_name_becomes_filler() {
        let (_, given, _, gnt) = passport_name("Bùi Thị Thu-Hà");
        assert_eq!(given, "Thị Thu-Hà");
        assert_eq!(gnt, "THI<THU<HA");
    }

    #[test]
    fn apostrophe_is_dropped_not_filled() {
        assert_eq!(
            passport_name("H'Hen Niê"),
            ("H'Hen".to_owned(), "Niê".to_owned(), "HHEN".to_owned(), "NIE".to_owned())
        );
        assert_eq!(icao("H\u{2019}Hen"), "HHEN");
        assert_eq!(icao("H\u{02BC}Hen"), "HHEN");
    }

    #[test]
    fn one_word_name_has_empty_given_name() {
        assert_eq!(split_name("  Nguyễn\u{a0}"), ("Nguyễn".to_owned(), String::new()));
        assert_eq!(icao(""), "");
    }

    #[test]
    fn empty_name_splits_into_two_empty_parts() {
        assert_eq!(split_name(" \t\u{a0}"), (String::new(), String::new()));
    }

    #[test]
    fn nfd_input_gives_the_same_result_as_nfc() {
        let nfc = "Đặng Thị Ngọc Ánh";
        let nfd: String = nfc.nfd().collect();
        assert_ne!(nfc, nfd, "the test input must really be decomposed");
        assert_eq!(normalise_name(&nfd), nfc);
        assert_eq!(split_name(&nfd), split_name(nfc));
        assert_eq!(icao(&nfd), icao(nfc));
    }

    #[test]
    fn windows_1258_partly_decomposed_input_normalises_to_nfc() {
        // Windows-1258 has precomposed ê and ơ but types the tone as a combining
        // mark: ê + U+0303 (tilde), ơ + U+0300 (grave).
        assert_eq!(normalise_name("Nguyê\u{0303}n"), "Nguyễn");
        assert_eq!(normalise_name("Trươ\u{0300}ng"), "Trường");
        assert_eq!(icao("Nguyê\u{0303}n"), "NGUYEN");
        assert_eq!(icao("Trươ\u{0300}ng"), "TRUONG");
    }

    #[test]
    fn white_space_runs_collapse_to_one_space() {
        assert_eq!(normalise_name("\tNguyễn\u{a0}\u{a0}Bảo \u{202f}Duy  "), "Nguyễn Bảo Duy");
        assert_eq!(icao("Bảo\u{a0}\u{a0}Duy "), "BAO<DUY");
    }

    #[test]
    fn characters_outside_latin_are_dropped_without_panic() {
        assert_eq!(icao("Straße"), "STRASSE");
        assert_eq!(icao("李 Nguyễn 1"), "<NGUYEN<");
        assert_eq!(icao("Ngọc–Ánh"), "NGOC<ANH");
    }

    proptest! {
        #[test]
        fn icao_output_is_only_capitals_and_filler(s in any::<String>()) {
            let out = icao(&s);
            prop_assert!(out.chars().all(|c| c.is_ascii_uppercase() || c == '<'), "{out:?}");
        }

        #[test]
        fn icao_output_is_only_capitals_and_filler_for_vietnamese(
            s in "[a-zA-Z ĐđÀ-ỹ\u{0300}-\u{0323}'’\\-\u{a0}\t]{0,40}"
        ) {
            let out = icao(&s);
            prop_assert!(out.chars().all(|c| c.is_ascii_uppercase() || c == '<'), "{out:?}");
        }

        #[test]
        fn normalise_name_is_idempotent(s in any::<String>()) {
            let once = normalise_name(&s);
            prop_assert_eq!(normalise_name(&once), once);
        }

        #[test]
        fn normalise_name_is_idempotent_for_vietnamese(
            s in "[a-zA-Z ĐđÀ-ỹ\u{0300}-\u{0323}\u{a0}\u{202f}\t]{0,40}"
        ) {
            let once = normalise_name(&s);
            prop_assert_eq!(normalise_name(&once), once);
        }

        #[test]
        fn split_name_parts_rejoin_to_the_normalised_name(s in any::<String>()) {
            let (family, given) = split_name(&s);
            prop_assert!(!family.contains(' '));
            let rejoined = if given.is_empty() { family } else { format!("{family} {given}") };
            prop_assert_eq!(rejoined, normalise_name(&s));
        }
    }
}
