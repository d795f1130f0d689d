//! Names as typed: lost diacritics, old tone placement, spacing.

use super::*;

pub(super) fn draw_name(rng: &mut Rng, female: bool, province_code: &str) -> String {
    let ethnic_ppm = if TAY_NGUYEN.contains(&province_code) { 150_000 } else { 4_000 };
    if rng.chance(ethnic_ppm) {
        let family = rng.pick(&ETHNIC_FAMILY);
        return if female {
            format!("H'{} {family}", rng.pick(&ETHNIC_GIVEN_F))
        } else {
            format!("Y {} {family}", rng.pick(&ETHNIC_GIVEN_M))
        };
    }
    let family = rng.weighted_word(&FAMILY);
    let middle = if female { rng.weighted_word(&MIDDLE_FIRST_F) } else { rng.weighted_word(&MIDDLE_FIRST_M) };
    let mut name = format!("{family} {middle}");
    let more = *rng.weighted(&[(0, 72), (1, 25), (2, 3)]);
    for _ in 0..more {
        let word = if female { rng.word(&MIDDLE_MORE_F) } else { rng.word(&MIDDLE_MORE_M) };
        if !name.split(' ').any(|w| w == word) {
            name.push(' ');
            name.push_str(word);
        }
    }
    let given = if female { rng.word(&GIVEN_F) } else { rng.word(&GIVEN_M) };
    name.push(' ');
    name.push_str(given);
    name
}

/// The name's letters without diacritics, lowercase, word by word. Two names whose skeletons
/// differ never match under SPEC §5 (a typed letter must have the registry letter's base).
pub(super) fn skeleton(name: &str) -> Vec<String> {
    strip_diacritics(name).to_lowercase().split_whitespace().map(str::to_owned).collect()
}

/// Drops every diacritic (Đ/đ → D/d), as typed without a Vietnamese keyboard.
pub(super) fn strip_diacritics(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            _ => c,
        })
        .collect()
}

pub(super) fn extra_spaces(rng: &mut Rng, name: &str) -> String {
    match rng.below(4) {
        0 => name.replace(' ', "  "),
        1 => format!("  {name} "),
        2 => name.replacen(' ', "\u{a0}", 1),
        _ => name.replacen(' ', " \t", 1),
    }
}

/// The name with its old-style tone placement (Hòa, Thủy) moved to the new style (Hoà, Thuỷ),
/// or `None` if no word has one.
pub(super) fn new_tone_placement(name: &str) -> Option<String> {
    let mut changed = false;
    let words: Vec<&str> = name
        .split(' ')
        .map(|w| match TONE_PLACEMENT.iter().find(|(old, _)| *old == w) {
            Some((_, new)) => {
                changed = true;
                *new
            }
            None => w,
        })
        .collect();
    changed.then(|| words.join(" "))
}

/// One typing slip in one word: a letter replaced by another base letter, dropped, or
/// doubled. The skeleton always changes, so the name never matches.
pub(super) fn name_typo(rng: &mut Rng, name: &str) -> String {
    let mut words: Vec<String> = name.split(' ').map(str::to_owned).collect();
    let candidates: Vec<usize> =
        (0..words.len()).filter(|k| words[*k].chars().filter(|c| !is_combining_mark(*c)).count() >= 2).collect();
    let Some(&w) = candidates.get(rng.index(candidates.len())) else {
        return format!("{name}x");
    };
    // Letters as (base, marks) in NFD.
    let mut letters: Vec<(char, String)> = Vec::new();
    for c in words[w].nfd() {
        match letters.last_mut() {
            Some((_, marks)) if is_combining_mark(c) => marks.push(c),
            _ => letters.push((c, String::new())),
        }
    }
    let at = rng.index(letters.len());
    match rng.below(3) {
        0 => {
            letters.remove(at);
        }
        1 => {
            let copy = letters[at].clone();
            letters.insert(at, copy);
        }
        _ => {
            let (base, _) = letters[at].clone();
            let old = strip_diacritics(&base.to_string()).to_lowercase();
            let mut new = *rng.pick(&['a', 'e', 'i', 'o', 'u', 'n', 'h', 't', 'g', 'm']);
            if old == new.to_string() {
                new = if new == 'a' { 'e' } else { 'a' };
            }
            let new = if base.is_uppercase() { new.to_ascii_uppercase() } else { new };
            letters[at] = (new, String::new());
        }
    }
    words[w] = letters
        .into_iter()
        .flat_map(|(b, m)| std::iter::once(b).chain(m.chars().collect::<Vec<_>>()))
        .collect::<String>()
        .nfc()
        .collect();
    words.join(" ")
}
