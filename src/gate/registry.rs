//! The national population registry extract (`registry.csv`, SPEC §4): the reference for
//! identity. Held in memory, indexed by CCCD and by old CMND.
//!
//! Memory: about 120 bytes per person (strings, index entries), so 1 million persons take
//! ~120 MB and the whole country (~100 million) ~12 GB; a national run splits the registry by
//! province, as the facilities' batches already are.

use std::collections::HashMap;
use std::io::Read;

use rayon::prelude::*;

use super::GateError;
use super::identity::{Sex, parse_sex};
use crate::dates::{PartialDate, parse_date};
use crate::passport::translit::normalise_name;

/// One registry person.
#[derive(Clone)]
pub struct RegistryPerson {
    /// 12-digit personal identification number.
    pub id_number: String,
    /// Full name, NFC, white space collapsed.
    pub full_name: String,
    /// Date of birth (may be year or year-month only).
    pub dob: PartialDate,
    /// Sex.
    pub sex: Sex,
}

impl std::fmt::Debug for RegistryPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryPerson { .. }")
    }
}

/// The registry, indexed.
#[derive(Debug, Default)]
pub struct Registry {
    persons: Vec<RegistryPerson>,
    /// CCCD (as a number) → person.
    by_id: HashMap<u64, u32, NumberHasher>,
    /// (old CMND key, person), sorted: the persons sharing an old number, in registry order.
    by_old_id: Vec<(u64, u32)>,
    /// Earlier 12-digit numbers of re-issued persons (column `previous_ids`, SPEC §8.4) →
    /// person. Empty when the column is absent.
    by_previous_id: HashMap<u64, u32, NumberHasher>,
}

/// Hashes the registry's numeric keys: one multiply instead of SipHash. The keys come from
/// the registry itself (the Ministry's extract), so there is no collision attack to resist.
#[derive(Debug, Default, Clone, Copy)]
struct NumberHasher;

impl std::hash::BuildHasher for NumberHasher {
    type Hasher = NumberHash;
    fn build_hasher(&self) -> NumberHash {
        NumberHash(0)
    }
}

struct NumberHash(u64);

impl std::hash::Hasher for NumberHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the high bits, which hashbrown uses, depend on every input bit.
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A string of 1–18 ASCII digits as a number that keeps its length, so that "012345678"
/// and "12345678" stay different keys.
fn digits_key(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = s.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    Some((s.len() as u64) << 60 | value)
}

const COLUMNS: [&str; 5] = ["id_number", "old_id", "full_name", "dob", "sex"];

/// The optional column of earlier identity numbers (SPEC §8.4), `;`-separated.
const PREVIOUS_IDS: &str = "previous_ids";

/// Rows parsed per parallel block.
const BLOCK: usize = 65_536;

/// One row, parsed: (CCCD key, old CMND key, earlier CCCD keys, person).
type ParsedRow = (u64, Option<u64>, Vec<u64>, RegistryPerson);

impl Registry {
    /// Reads `registry.csv`. Fails on the first malformed row, naming its line: the registry
    /// is the reference, and a damaged extract must not silently reject people.
    ///
    /// Rows are split from the CSV on this thread and parsed (names normalised, dates read)
    /// on all cores, a block at a time.
    pub fn load(input: impl Read, name: &str) -> Result<Registry, GateError> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
        let headers: Vec<String> = csv
            .headers()
            .map_err(|e| GateError::input(name, format!("not a UTF-8 CSV registry ({e})")))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        let mut idx = [0usize; 5];
        let mut missing = Vec::new();
        for (slot, col) in idx.iter_mut().zip(COLUMNS) {
            match headers.iter().position(|h| h == col) {
                Some(i) => *slot = i,
                None => missing.push(col),
            }
        }
        if !missing.is_empty() {
            return Err(GateError::input(
                name,
                format!(
                    "not a registry extract: missing column(s) {} (expected {})",
                    missing.join(", "),
                    COLUMNS.join(",")
                ),
            ));
        }
        let previous_col = headers.iter().position(|h| h == PREVIOUS_IDS);
        let mut reg = Registry::default();
        loop {
            let mut block = Vec::with_capacity(BLOCK);
            while block.len() < BLOCK {
                let mut record = csv::ByteRecord::new();
                let more = csv.read_byte_record(&mut record).map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    GateError::input(name, format!("line {line}: cannot be read ({e})"))
                })?;
                if !more {
                    break;
                }
                block.push(record);
            }
            if block.is_empty() {
                break;
            }
            let parsed: Vec<Result<ParsedRow, GateError>> =
                block.par_iter().map(|record| parse_row(record, idx, previous_col, name)).collect();
            for (row, record) in parsed.into_iter().zip(&block) {
                let (id, old, previous, person) = row?;
                let line = record.position().map_or(0, |p| p.line());
                let index = u32::try_from(reg.persons.len())
                    .map_err(|_| GateError::input(name, format!("line {line}: more than 4 billion persons")))?;
                if reg.by_id.insert(id, index).is_some() {
                    return Err(GateError::input(
                        name,
                        format!("line {line}: id_number appears twice in the registry"),
                    ));
                }
                if let Some(old) = old {
                    reg.by_old_id.push((old, index));
                }
                for p in previous {
                    // An earlier number names one person: two claiming it is a damaged extract.
                    if reg.by_previous_id.insert(p, index).is_some() {
                        return Err(GateError::input(
                            name,
                            format!("line {line}: a previous_ids number appears twice in the registry"),
                        ));
                    }
                }
                reg.persons.push(person);
            }
        }
        reg.by_old_id.par_sort_unstable();
        Ok(reg)
    }

    /// The person with this 12-digit number.
    pub fn by_id(&self, id: &str) -> Option<(u32, &RegistryPerson)> {
        let i = *self.by_id.get(&digits_key(id)?)?;
        Some((i, self.persons.get(i as usize)?))
    }

    /// Every earlier number (column `previous_ids`) with its person, as 12 digits.
    pub fn previous_ids(&self) -> impl Iterator<Item = (String, u32)> + '_ {
        self.by_previous_id.iter().filter(|(k, _)| !self.by_id.contains_key(k)).map(|(k, i)| {
            // `digits_key`: the length in the top bits, the value below.
            let (len, value) = ((k >> 60) as usize, k & ((1 << 60) - 1));
            (format!("{value:0len$}"), *i)
        })
    }

    /// The person who had this 12-digit number before it was re-issued (SPEC §8.4), unless
    /// it is someone's current number (the current number wins).
    pub fn by_previous_id(&self, id: &str) -> Option<(u32, &RegistryPerson)> {
        // Called for every CCCD row: without the column, nothing to hash.
        if self.by_previous_id.is_empty() {
            return None;
        }
        let key = digits_key(id)?;
        let i = *self.by_previous_id.get(&key)?;
        if self.by_id.contains_key(&key) {
            return None;
        }
        Some((i, self.persons.get(i as usize)?))
    }

    /// Persons whose old CMND is `old_id`, in registry order.
    pub fn by_old_id(&self, old_id: &str) -> impl Iterator<Item = (u32, &RegistryPerson)> {
        let key = digits_key(old_id);
        let start = key.map_or(self.by_old_id.len(), |k| self.by_old_id.partition_point(|&(o, _)| o < k));
        self.by_old_id[start..]
            .iter()
            .take_while(move |&&(o, _)| Some(o) == key)
            .filter_map(|&(_, i)| self.persons.get(i as usize).map(|p| (i, p)))
    }

    /// The person at `index`.
    pub fn person(&self, index: u32) -> Option<&RegistryPerson> {
        self.persons.get(index as usize)
    }

    /// Number of persons.
    pub fn len(&self) -> usize {
        self.persons.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }
}

/// Parses one registry row; `idx` are the columns of [`COLUMNS`], `previous_col` that of
/// [`PREVIOUS_IDS`] when present.
fn parse_row(
    record: &csv::ByteRecord,
    idx: [usize; 5],
    previous_col: Option<usize>,
    name: &str,
) -> Result<ParsedRow, GateError> {
    let [c_id, c_old, c_name, c_dob, c_sex] = idx;
    let line = record.position().map_or(0, |p| p.line());
    let bad = |what: &str| GateError::input(name, format!("line {line}: {what}"));
    let get = |i: usize| -> Result<&str, GateError> {
        std::str::from_utf8(record.get(i).unwrap_or_default()).map(str::trim).map_err(|_| bad("not UTF-8 text"))
    };
    let id = get(c_id)?;
    let id_key = digits_key(id).filter(|_| id.len() == 12).ok_or_else(|| bad("id_number is not 12 digits"))?;
    let dob = parse_date(get(c_dob)?).ok_or_else(|| bad("dob is not yyyy-mm-dd, yyyy-mm or yyyy"))?;
    let sex = parse_sex(get(c_sex)?).ok_or_else(|| bad("sex is not M or F"))?;
    // An old number that is not digits can never be typed as a CMND: it matches nobody.
    let old = digits_key(get(c_old)?);
    let mut previous = Vec::new();
    if let Some(col) = previous_col {
        for p in get(col)?.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let key = digits_key(p)
                .filter(|_| p.len() == 12)
                .ok_or_else(|| bad("previous_ids is not 12-digit numbers separated by ;"))?;
            previous.push(key);
        }
    }
    let person = RegistryPerson { id_number: id.to_owned(), full_name: normalise_name(get(c_name)?), dob, sex };
    Ok((id_key, old, previous, person))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_indexes_both_numbers() {
        let csv = "id_number,old_id,full_name,dob,sex\n001090000001,012345678,Nguyễn  Văn An,1990-01-02,M\n001190000002,012345678,Lê Thị Bình,1990,F\n";
        let r = Registry::load(csv.as_bytes(), "registry.csv").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.by_id("001090000001").unwrap().1.full_name, "Nguyễn Văn An");
        assert_eq!(r.by_old_id("012345678").count(), 2);
    }

    #[test]
    fn old_numbers_keep_their_leading_zeros_and_registry_order() {
        let csv = "id_number,old_id,full_name,dob,sex\n\
            001090000003,12345678,C,1990,M\n\
            001090000001,012345678,A,1990,M\n\
            001090000002,012345678,B,1990,M\n\
            001090000004,x1,D,1990,M\n";
        let r = Registry::load(csv.as_bytes(), "registry.csv").unwrap();
        let names = |old: &str| r.by_old_id(old).map(|(_, p)| p.full_name.clone()).collect::<Vec<_>>();
        assert_eq!(names("012345678"), ["A", "B"]);
        assert_eq!(names("12345678"), ["C"]);
        assert!(names("x1").is_empty() && names("").is_empty() && names("1").is_empty());
        assert_eq!(r.by_id("001090000002").unwrap().0, 2);
        assert!(r.by_id("1090000002").is_none() && r.by_id("0010900000020").is_none());
    }

    #[test]
    fn errors_name_the_first_bad_line_across_blocks() {
        let mut csv = String::from("id_number,old_id,full_name,dob,sex\n");
        for i in 0..(BLOCK + 10) {
            csv.push_str(&format!("{:012},,N,1990,M\n", i + 1));
        }
        csv.push_str("000000000005,,Dup,1990,M\n");
        csv.push_str("12,,Short,1990,M\n");
        let err = Registry::load(csv.as_bytes(), "registry.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("registry.csv: line {}: id_number appears twice in the registry", BLOCK + 12)
        );
    }

    #[test]
    fn a_doses_file_is_not_a_registry() {
        let err = Registry::load(&b"record_id,full_name,dob,sex\n"[..], "registry.csv").unwrap_err();
        assert!(
            err.to_string().starts_with("registry.csv: not a registry extract: missing column(s) id_number, old_id")
        );
    }

    #[test]
    fn malformed_row_names_its_line() {
        let csv = "id_number,old_id,full_name,dob,sex\n001090000001,,A,1990,M\n12345,,B,1990,M\n";
        let err = Registry::load(csv.as_bytes(), "registry.csv").unwrap_err();
        assert_eq!(err.to_string(), "registry.csv: line 3: id_number is not 12 digits");
    }

    #[test]
    fn previous_ids_find_the_person_unless_someone_holds_the_number_now() {
        let csv = "id_number,old_id,full_name,dob,sex,previous_ids\n\
            001090000123,,A,1990,M,001190000123; 001290000123\n\
            001185000456,,B,1985,F,\n\
            001090000999,,C,1990,M,001185000456\n";
        let r = Registry::load(csv.as_bytes(), "registry.csv").unwrap();
        assert_eq!(r.by_previous_id("001190000123").map(|(i, _)| i), Some(0));
        assert_eq!(r.by_previous_id("001290000123").map(|(i, _)| i), Some(0));
        assert!(r.by_previous_id("001090000123").is_none() && r.by_previous_id("").is_none());
        assert!(r.by_previous_id("001185000456").is_none(), "B holds it now");
        assert!(r.by_id("001190000123").is_none(), "an earlier number is not a current one");
    }

    #[test]
    fn malformed_or_shared_previous_ids_name_their_line() {
        let head = "id_number,old_id,full_name,dob,sex,previous_ids\n";
        let bad = format!("{head}001090000123,,A,1990,M,12345\n");
        let err = Registry::load(bad.as_bytes(), "registry.csv").unwrap_err();
        assert_eq!(err.to_string(), "registry.csv: line 2: previous_ids is not 12-digit numbers separated by ;");
        let shared = format!("{head}001090000123,,A,1990,M,001190000123\n001090000124,,B,1990,M,001190000123\n");
        let err = Registry::load(shared.as_bytes(), "registry.csv").unwrap_err();
        assert_eq!(err.to_string(), "registry.csv: line 3: a previous_ids number appears twice in the registry");
    }
}
