//! Comparing a typed full name with the registry's (SPEC §5 "Names"; DOMAIN §4).
//!
//! This module owns the name comparison key and the rule that a typed letter may lack some of
//! the registry letter's diacritics but may not change or add one. It only compares: the
//! passport always carries the registry's own spelling, which this module never rewrites.
//!
//! How a letter is compared: after NFC, lowercasing and splitting on white space, each word is
//! decomposed (NFD) into letters, each a base letter plus a set of marks in two layers:
//! - the vowel modifier: circumflex U+0302 (â ê ô), breve U+0306 (ă), horn U+031B (ơ ư), and
//!   the stroke of đ, which has no Unicode decomposition and is modelled here as `d` + U+0335;
//! - the tone: grave U+0300, acute U+0301, hook above U+0309, tilde U+0303, dot below U+0323.
//!
//! A typed letter matches a registry letter when the base letters are equal and every typed
//! mark is also on the registry letter. Vietnamese puts at most one mark of each layer on a
//! letter, so this is "each layer missing or equal".

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Stands for the bar of đ (U+0111), which has no canonical decomposition (DOMAIN §4).
/// U+0335 COMBINING SHORT STROKE OVERLAY is what `d` + a stroke would be written with.
const STROKE: char = '\u{0335}';

/// The five Vietnamese tone marks (dấu thanh): huyền, sắc, ngã, hỏi, nặng.
const TONES: [char; 5] = ['\u{0300}', '\u{0301}', '\u{0303}', '\u{0309}', '\u{0323}'];

/// Invisible characters that copy-paste leaves inside names: zero-width space, non-joiner,
/// joiner, word joiner, BOM, soft hyphen. They are not white space to Unicode, so they are
/// dropped rather than collapsed.
const INVISIBLE: [char; 6] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}'];

/// Whether a typed full name matches the registry's (SPEC §5 "Names").
///
/// Both are compared after NFC, case folding, collapsing white space (NBSP and tabs included)
/// and canonicalising old/new tone placement (Hoà = Hòa, Thuỷ = Thủy, Khoẻ = Khỏe). Then each
/// typed letter must equal the registry's letter or lack some of its diacritics (`d` for `đ`
/// included). A changed or added diacritic (Hà ≠ Hả), any other letter (Quí ≠ Quý), a dropped
/// or added word and a different word order all fail.
pub(crate) fn names_match(typed: &str, registry: &str) -> bool {
    // Most rows are typed exactly as registered; equal text always matches.
    if typed == registry {
        return true;
    }
    let typed = words(typed);
    let registry = words(registry);
    typed.len() == registry.len()
        && typed
            .iter()
            .zip(&registry)
            .all(|(t, r)| t.len() == r.len() && t.iter().zip(r).all(|(tl, rl)| tl.may_be_typed_for(rl)))
}

#[cfg(test)]
/// The canonical comparison key of a name, for grouping and deduplication: NFC, lowercase,
/// white space collapsed to single spaces, invisible characters dropped, tone placement
/// canonical (the tone of a word-final oa/oe/uy sits on the second vowel: "hoà", "thuỷ").
///
/// Two names with equal keys match each other under [`names_match`]. The key is for
/// comparison only; it is never shown or signed.
pub(crate) fn name_key(s: &str) -> String {
    let words: Vec<String> = words(s)
        .iter()
        .map(|word| {
            let mut spelled = String::new();
            for letter in word {
                letter.spell_into(&mut spelled);
            }
            spelled.nfc().collect()
        })
        .collect();
    words.join(" ")
}

/// One letter of a decomposed word.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Letter {
    /// The lowercase base letter (`d` for `đ`).
    base: char,
    /// Combining marks, sorted and without repeats; `STROKE` for đ.
    marks: Vec<char>,
}

impl Letter {
    /// Same base, and every mark typed is on the registry letter.
    fn may_be_typed_for(&self, registry: &Letter) -> bool {
        self.base == registry.base && self.marks.iter().all(|m| registry.marks.contains(m))
    }

    fn tone(&self) -> Option<char> {
        self.marks.iter().copied().find(|m| TONES.contains(m))
    }

    /// Whether the letter carries any mark other than a tone (a vowel modifier, a stroke).
    fn has_modifier(&self) -> bool {
        self.marks.iter().any(|m| !TONES.contains(m))
    }

    fn is_vowel(&self) -> bool {
        matches!(self.base, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
    }

    #[cfg(test)]
    /// Appends the letter in decomposed form (đ as itself, it has no decomposition).
    fn spell_into(&self, out: &mut String) {
        if self.base == 'd' && self.marks.contains(&STROKE) {
            out.push('đ');
            out.extend(self.marks.iter().filter(|m| **m != STROKE));
        } else {
            out.push(self.base);
            out.extend(self.marks.iter());
        }
    }
}

/// NFC, lowercase, split on white space, decompose each word into letters, and canonicalise
/// each word's tone placement.
fn words(s: &str) -> Vec<Vec<Letter>> {
    let composed: String = s.nfc().filter(|c| !INVISIBLE.contains(c)).collect();
    composed
        .to_lowercase()
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut word = letters(w);
            canonicalise_tone_placement(&mut word);
            word
        })
        .collect()
}

/// Decomposes one lowercase word into letters.
fn letters(word: &str) -> Vec<Letter> {
    let mut letters: Vec<Letter> = Vec::new();
    for c in word.nfd() {
        if is_combining_mark(c) {
            match letters.last_mut() {
                Some(letter) => letter.marks.push(c),
                // A mark with nothing before it is kept as a letter of its own.
                None => letters.push(Letter { base: c, marks: Vec::new() }),
            }
        } else {
            letters.push(match c {
                // ð (U+00F0, the lowercase of Icelandic Ð U+00D0) is typed for đ by some
                // keyboards and fonts; it is never a letter of a Vietnamese name.
                'đ' | 'ð' => Letter { base: 'd', marks: vec![STROKE] },
                _ => Letter { base: c, marks: Vec::new() },
            });
        }
    }
    for letter in &mut letters {
        letter.marks.sort_unstable();
        letter.marks.dedup();
    }
    letters
}

/// Old and new orthography place the tone of a word-final `oa`, `oe`, `uy` differently
/// (old: hòa, khỏe, thủy; new: hoà, khoẻ, thuỷ), and NFC keeps the difference (DOMAIN §4).
/// Both are moved to the second vowel here.
///
/// Only those three rhymes, only at the end of the word (with a final consonant, as in
/// "hoàng" or "thuyết", both styles agree), with no vowel modifier on either letter, and not
/// after `q`: in "quý" the `u` belongs to the consonant `qu`, the tone is on `y` in both
/// styles, and "qúy" is a misspelling this must not fold. Nor after another vowel, which
/// would make a different rhyme.
fn canonicalise_tone_placement(word: &mut [Letter]) {
    let (before, first, second) = match word {
        [.., before, first, second] => (Some(&*before), first, second),
        [first, second] => (None, first, second),
        _ => return,
    };
    let rhyme = matches!((first.base, second.base), ('o', 'a') | ('o', 'e') | ('u', 'y'));
    let free_onset = before.is_none_or(|b| !b.is_vowel() && b.base != 'q');
    if !rhyme || !free_onset || first.has_modifier() || second.has_modifier() {
        return;
    }
    if let (Some(tone), None) = (first.tone(), second.tone()) {
        first.marks.retain(|m| *m != tone);
        second.marks.push(tone);
        second.marks.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identical_names_match() {
        assert!(names_match("Nguyễn Văn An", "Nguyễn Văn An"));
    }

    #[test]
    fn missing_diacritic_matches() {
        assert!(names_match("Nguyen Van An", "Nguyễn Văn An"));
        assert!(names_match("Tran Thi Hue", "Trần Thị Huệ"));
        // Tone kept, modifier dropped, and the reverse.
        assert!(names_match("Nguyẽn Van An", "Nguyễn Văn An"));
        assert!(names_match("Nguyên Văn An", "Nguyễn Văn An"));
        assert!(names_match("Lê Thi Hưong", "Lê Thị Hương"));
    }

    #[test]
    fn d_for_dj_matches() {
        assert!(names_match("Dang Van Duc", "Đặng Văn Đức"));
        assert!(names_match("Đang Văn Duc", "Đặng Văn Đức"));
        assert!(!names_match("Đặng", "Dặng"));
    }

    #[test]
    fn eth_typed_for_dj_matches() {
        assert!(names_match("Ðặng Văn Ðức", "Đặng Văn Đức"));
    }

    #[test]
    fn all_caps_matches() {
        assert!(names_match("NGUYỄN VĂN AN", "Nguyễn Văn An"));
        assert!(names_match("NGUYEN VAN AN", "Nguyễn Văn An"));
        assert!(names_match("ĐẶNG THỊ THỦY", "Đặng Thị Thủy"));
    }

    #[test]
    fn nfd_input_matches() {
        let nfd: String = "Nguyễn Thị Hữu Đức".nfd().collect();
        assert!(names_match(&nfd, "Nguyễn Thị Hữu Đức"));
        assert!(names_match("Nguyễn Thị Hữu Đức", &nfd));
        // Marks in a non-canonical order, as some Windows-1258 converters leave them.
        assert!(names_match("Hu\u{0303}\u{031B}u", "Hữu"));
    }

    #[test]
    fn nbsp_and_double_spaces_match() {
        assert!(names_match("Nguyễn\u{a0}Văn  An", "Nguyễn Văn An"));
        assert!(names_match("  Nguyễn\tVăn\u{a0}\u{a0}An \u{a0}", "Nguyễn Văn An"));
        assert!(names_match("Nguyễn Văn An", "Nguyễn\u{202f}Văn\u{3000}An"));
        assert!(names_match("Nguy\u{200b}ễn Văn An", "Nguyễn Văn An"));
    }

    #[test]
    fn old_tone_placement_matches() {
        for (old, new) in [
            ("Hòa", "Hoà"),
            ("Thủy", "Thuỷ"),
            ("Khóa", "Khoá"),
            ("Khỏe", "Khoẻ"),
            ("Thúy", "Thuý"),
            ("Thùy", "Thuỳ"),
            ("Thụy", "Thuỵ"),
            ("Xòe", "Xoè"),
            ("Họa", "Hoạ"),
            ("Úy", "Uý"),
        ] {
            assert!(names_match(old, new), "{old} / {new}");
            assert!(names_match(new, old), "{new} / {old}");
            assert_eq!(name_key(old), name_key(new));
        }
        assert!(names_match("Lê Thị Thanh Thủy", "LÊ THỊ THANH THUỶ"));
        assert!(names_match("Nguyen Thi Thuy", "Nguyễn Thị Thuỷ"));
    }

    #[test]
    fn tone_placement_is_not_moved_inside_a_word() {
        // With a final consonant both styles put the tone on the second vowel; "hòang" is
        // a different (wrong) spelling and stays different.
        assert!(!names_match("Hòang", "Hoàng"));
        assert!(!names_match("Hoàng", "Hòang"));
    }

    #[test]
    fn qu_is_a_consonant_not_a_uy_rhyme() {
        assert!(!names_match("Qúy", "Quý"));
        assert!(!names_match("Quý", "Qúy"));
        assert_ne!(name_key("Qúy"), name_key("Quý"));
        assert!(names_match("QUÝ", "Quý"));
    }

    #[test]
    fn changed_tone_does_not_match() {
        assert!(!names_match("Hà", "Hả"));
        assert!(!names_match("Nguyễn Văn Án", "Nguyễn Văn Ân"));
        assert!(!names_match("Thúy", "Thủy"));
    }

    #[test]
    fn changed_modifier_does_not_match() {
        assert!(!names_match("Nguyễn Vân An", "Nguyễn Văn An"));
        assert!(!names_match("Hưng", "Hùng"));
        assert!(!names_match("Ơn", "Ân"));
    }

    #[test]
    fn added_diacritic_does_not_match() {
        assert!(!names_match("Hà", "Ha"));
        assert!(!names_match("Nguyễn Văn Ân", "Nguyễn Văn An"));
        assert!(!names_match("Đặng", "Dặng"));
        assert!(!names_match("Hòa", "Hoa"));
        assert!(!names_match("Hoà", "Hoa"));
    }

    #[test]
    fn i_y_spelling_does_not_match() {
        assert!(!names_match("Quí", "Quý"));
        assert!(!names_match("Quý", "Quí"));
        assert!(!names_match("Qui", "Quý"));
        assert!(!names_match("Lý", "Lí"));
        assert_ne!(name_key("Quí"), name_key("Quý"));
    }

    #[test]
    fn dropped_middle_name_does_not_match() {
        assert!(!names_match("Nguyễn An", "Nguyễn Văn An"));
        assert!(!names_match("Nguyễn Văn Văn An", "Nguyễn Văn An"));
    }

    #[test]
    fn word_order_does_not_match() {
        assert!(!names_match("An Nguyễn Văn", "Nguyễn Văn An"));
        assert!(!names_match("Văn Nguyễn An", "Nguyễn Văn An"));
    }

    #[test]
    fn one_letter_typo_does_not_match() {
        assert!(!names_match("Trần Thị Lam", "Trần Thị Lan"));
        assert!(!names_match("Nguyen Van Ann", "Nguyễn Văn An"));
        assert!(!names_match("Ngyen Van An", "Nguyễn Văn An"));
        assert!(!names_match("Nguyễn Văn Anh", "Nguyễn Văn An"));
    }

    #[test]
    fn empty_names_have_no_words() {
        assert!(names_match("", " \u{a0}"));
        assert!(!names_match("", "An"));
        assert_eq!(name_key(" \t"), "");
    }

    #[test]
    fn name_key_is_lowercase_nfc_single_spaced() {
        let nfd: String = "  NGUYỄN\u{a0}\u{a0}THỊ  THỦY ".nfd().collect();
        assert_eq!(name_key(&nfd), "nguyễn thị thuỷ");
        assert_eq!(name_key("ĐẶNG"), "đặng");
        assert_eq!(name_key("Ðặng"), "đặng");
    }

    /// Drops every diacritic, as someone typing without a Vietnamese keyboard would.
    fn strip_diacritics(s: &str) -> String {
        s.nfd()
            .filter(|c| !is_combining_mark(*c))
            .map(|c| match c {
                'đ' => 'd',
                'Đ' => 'D',
                _ => c,
            })
            .collect()
    }

    const VIETNAMESE: &str =
        "[a-zA-ZàáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđĐ \u{a0}]{0,30}";

    proptest! {
        #[test]
        fn comparison_never_panics(a in "\\PC*", b in "\\PC*") {
            let _ = names_match(&a, &b);
            let _ = name_key(&a);
        }

        #[test]
        fn any_name_matches_itself(a in "\\PC*") {
            prop_assert!(names_match(&a, &a));
        }

        #[test]
        fn name_without_diacritics_matches(reg in VIETNAMESE) {
            prop_assert!(names_match(&strip_diacritics(&reg), &reg));
        }

        #[test]
        fn caps_nfd_and_spacing_variants_match(reg in VIETNAMESE) {
            let typed: String = reg.to_uppercase().replace(' ', "  \t").nfd().collect();
            prop_assert!(names_match(&typed, &reg));
        }

        #[test]
        fn equal_keys_match(a in VIETNAMESE, b in VIETNAMESE) {
            if name_key(&a) == name_key(&b) {
                prop_assert!(names_match(&a, &b));
            }
            prop_assert!(names_match(&a, &name_key(&a)));
            prop_assert!(names_match(&name_key(&a), &a));
        }

        #[test]
        fn name_key_is_idempotent(a in "\\PC*") {
            let key = name_key(&a);
            prop_assert_eq!(name_key(&key), key);
        }
    }
}
