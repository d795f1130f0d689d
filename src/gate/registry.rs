//! The national population registry extract (`registry.csv`, SPEC §4): the reference for
//! identity, held as a compact index.
//!
//! Memory: the index holds numbers, never names. Per person, the CCCD as a number and where
//! the person's row starts (20 bytes, sorted for binary search), plus 16 bytes for an old CMND:
//! about 36 bytes a person, 360 MB for 10 million (the strings held before took ~120 bytes).
//! Names, birth dates and sex are read again from the row when a dose row is checked and when
//! a passport is built: from the file itself ([`Registry::open`], for extracts larger than a
//! quarter of the run's memory budget: the operating system's page cache holds it, not the
//! process), or from the text kept in memory ([`Registry::load`], 60–70 bytes a person).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

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

/// Where the registry's rows are read again from.
#[derive(Debug)]
enum Text {
    Memory(Vec<u8>),
    File(File),
}

/// The registry, indexed.
#[derive(Debug)]
pub struct Registry {
    text: Text,
    /// Where each person's row starts in the text, in registry order, and where the last
    /// ends.
    starts: Vec<u64>,
    /// The columns of [`COLUMNS`] and [`PREVIOUS_IDS`].
    columns: [usize; 5],
    previous_col: Option<usize>,
    /// CCCD keys, sorted, and the person of each.
    id_keys: Vec<u64>,
    id_persons: Vec<u32>,
    /// (old CMND key, person), sorted: the persons sharing an old number, in registry order.
    by_old_id: Vec<(u64, u32)>,
    /// Earlier 12-digit numbers of re-issued persons (column `previous_ids`, SPEC §8.4) →
    /// person. Empty when the column is absent.
    by_previous_id: std::collections::HashMap<u64, u32>,
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
    /// Reads `registry.csv` into memory. Fails on the first malformed row, naming its line:
    /// the registry is the reference, and a damaged extract must not silently reject people.
    pub fn load(mut input: impl Read, name: &str) -> Result<Registry, GateError> {
        let mut text = Vec::new();
        input.read_to_end(&mut text).map_err(|source| GateError::Io { context: "cannot read the registry", source })?;
        let mut reg = Registry::index(&text[..], name)?;
        reg.text = Text::Memory(text);
        Ok(reg)
    }

    /// Opens `registry.csv` at `path`, indexes it, and reads persons from the file when
    /// asked rather than holding them (for extracts larger than `in_memory_up_to` bytes;
    /// smaller ones are read into memory, which is faster to look up).
    pub fn open(path: &Path, in_memory_up_to: u64) -> Result<Registry, GateError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| GateError::input(&name, format!("cannot open ({e})")))?;
        let len = file.metadata().map_err(|e| GateError::input(&name, format!("cannot read ({e})")))?.len();
        if len <= in_memory_up_to {
            return Registry::load(file, &name);
        }
        let mut reg = Registry::index(std::io::BufReader::with_capacity(1 << 20, &file), &name)?;
        reg.text = Text::File(file);
        Ok(reg)
    }

    /// Reads and checks every row, keeping only the index.
    ///
    /// Rows are split from the CSV on this thread and parsed (names normalised, dates read)
    /// on all cores, a block at a time.
    fn index(input: impl Read, name: &str) -> Result<Registry, GateError> {
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
        let mut reg = Registry {
            text: Text::Memory(Vec::new()),
            starts: Vec::new(),
            columns: idx,
            previous_col,
            id_keys: Vec::new(),
            id_persons: Vec::new(),
            by_old_id: Vec::new(),
            by_previous_id: Default::default(),
        };
        // (key, person, line) of every CCCD, sorted once all are read: a number appearing
        // twice is found then, and reported unless an earlier line is malformed.
        let mut ids: Vec<(u64, u32)> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        let mut first_error: Option<(u64, GateError)> = None;
        'read: loop {
            let mut block = Vec::with_capacity(BLOCK);
            while block.len() < BLOCK {
                let mut record = csv::ByteRecord::new();
                let more = csv.read_byte_record(&mut record).map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    GateError::input(name, format!("line {line}: cannot be read ({e})"))
                });
                match more {
                    Ok(true) => block.push(record),
                    Ok(false) => break,
                    Err(e) => {
                        first_error = Some((u64::MAX, e));
                        break;
                    }
                }
            }
            if block.is_empty() {
                break;
            }
            let parsed: Vec<Result<ParsedRow, GateError>> =
                block.par_iter().map(|record| parse_record(record, idx, previous_col, name)).collect();
            for (row, record) in parsed.into_iter().zip(&block) {
                let pos = record.position();
                let line = pos.map_or(0, |p| p.line());
                let (id, old, previous, _) = match row {
                    Ok(r) => r,
                    Err(e) => {
                        first_error = Some((line, e));
                        break 'read;
                    }
                };
                let index = match u32::try_from(reg.starts.len()) {
                    Ok(i) => i,
                    Err(_) => {
                        first_error =
                            Some((line, GateError::input(name, format!("line {line}: more than 4 billion persons"))));
                        break 'read;
                    }
                };
                reg.starts.push(pos.map_or(0, |p| p.byte()));
                ids.push((id, index));
                lines.push(line);
                if let Some(old) = old {
                    reg.by_old_id.push((old, index));
                }
                for p in previous {
                    // An earlier number names one person: two claiming it is a damaged extract.
                    if reg.by_previous_id.insert(p, index).is_some() {
                        first_error = Some((
                            line,
                            GateError::input(
                                name,
                                format!("line {line}: a previous_ids number appears twice in the registry"),
                            ),
                        ));
                        break 'read;
                    }
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        reg.starts.push(csv.position().byte());
        ids.par_sort_unstable();
        // The first line that repeats an earlier number.
        let twice = ids.windows(2).filter(|w| w[0].0 == w[1].0).map(|w| lines[w[1].1 as usize]).min();
        let error = match (twice, first_error) {
            (Some(t), Some((l, e))) if l < t => Some(e),
            (Some(t), _) => Some(GateError::input(name, format!("line {t}: id_number appears twice in the registry"))),
            (None, e) => e.map(|(_, e)| e),
        };
        if let Some(e) = error {
            return Err(e);
        }
        drop(lines);
        (reg.id_keys, reg.id_persons) = ids.into_iter().unzip();
        reg.by_old_id.par_sort_unstable();
        Ok(reg)
    }

    /// The person at `index`, read again from their row.
    fn read(&self, index: u32) -> Option<RegistryPerson> {
        let i = index as usize;
        let (start, end) = (*self.starts.get(i)?, *self.starts.get(i + 1)?);
        let owned;
        let bytes: &[u8] = match &self.text {
            Text::Memory(t) => t.get(start as usize..end as usize)?,
            Text::File(f) => {
                let mut buf = vec![0u8; usize::try_from(end - start).ok()?];
                f.read_exact_at(&mut buf, start).ok()?;
                owned = buf;
                &owned
            }
        };
        parse_line(bytes, self.columns, self.previous_col).map(|(.., p)| p)
    }

    fn by_key(&self, key: u64) -> Option<u32> {
        self.id_keys.binary_search(&key).ok().map(|i| self.id_persons[i])
    }

    /// The person with this 12-digit number.
    pub fn by_id(&self, id: &str) -> Option<(u32, RegistryPerson)> {
        let i = self.by_key(digits_key(id)?)?;
        Some((i, self.read(i)?))
    }

    /// Every earlier number (column `previous_ids`) with its person, as 12 digits.
    pub fn previous_ids(&self) -> impl Iterator<Item = (String, u32)> + '_ {
        self.by_previous_id.iter().filter(|(k, _)| self.by_key(**k).is_none()).map(|(k, i)| {
            // `digits_key`: the length in the top bits, the value below.
            let (len, value) = ((k >> 60) as usize, k & ((1 << 60) - 1));
            (format!("{value:0len$}"), *i)
        })
    }

    /// The person who had this 12-digit number before it was re-issued (SPEC §8.4), unless
    /// it is someone's current number (the current number wins).
    pub fn by_previous_id(&self, id: &str) -> Option<(u32, RegistryPerson)> {
        // Called for every CCCD row: without the column, nothing to look up.
        if self.by_previous_id.is_empty() {
            return None;
        }
        let key = digits_key(id)?;
        let i = *self.by_previous_id.get(&key)?;
        if self.by_key(key).is_some() {
            return None;
        }
        Some((i, self.read(i)?))
    }

    /// Whether this 12-digit number is someone's earlier number (SPEC §8.4), without reading
    /// their row.
    pub fn is_previous_id(&self, id: &str) -> bool {
        !self.by_previous_id.is_empty()
            && digits_key(id).is_some_and(|k| self.by_previous_id.contains_key(&k) && self.by_key(k).is_none())
    }

    /// Persons whose old CMND is `old_id`, in registry order.
    pub fn by_old_id(&self, old_id: &str) -> impl Iterator<Item = (u32, RegistryPerson)> + '_ {
        let key = digits_key(old_id);
        let start = key.map_or(self.by_old_id.len(), |k| self.by_old_id.partition_point(|&(o, _)| o < k));
        self.by_old_id[start..]
            .iter()
            .take_while(move |&&(o, _)| Some(o) == key)
            .filter_map(|&(_, i)| self.read(i).map(|p| (i, p)))
    }

    /// The person at `index`.
    pub fn person(&self, index: u32) -> Option<RegistryPerson> {
        self.read(index)
    }

    /// Number of persons.
    pub fn len(&self) -> usize {
        self.id_persons.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.id_persons.is_empty()
    }
}

/// Parses one registry row as read at load; `idx` are the columns of [`COLUMNS`],
/// `previous_col` that of [`PREVIOUS_IDS`] when present.
fn parse_record(
    record: &csv::ByteRecord,
    idx: [usize; 5],
    previous_col: Option<usize>,
    name: &str,
) -> Result<ParsedRow, GateError> {
    let line = record.position().map_or(0, |p| p.line());
    parse_fields(|i| record.get(i).unwrap_or_default(), idx, previous_col)
        .map_err(|what| GateError::input(name, format!("line {line}: {what}")))
}

/// Parses a row read again (already checked at load): the bytes from its start to the next
/// row's. Rows without quotes are split in place; others go through the CSV reader.
fn parse_line(bytes: &[u8], idx: [usize; 5], previous_col: Option<usize>) -> Option<ParsedRow> {
    let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.contains(&b'"') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        return parse_fields(|i| fields.get(i).copied().unwrap_or_default(), idx, previous_col).ok();
    }
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    csv.read_byte_record(&mut record).ok()?;
    parse_fields(|i| record.get(i).unwrap_or_default(), idx, previous_col).ok()
}

/// Parses one row's fields; the error says what is wrong, without the line.
fn parse_fields<'r>(
    field: impl Fn(usize) -> &'r [u8],
    idx: [usize; 5],
    previous_col: Option<usize>,
) -> Result<ParsedRow, &'static str> {
    let [c_id, c_old, c_name, c_dob, c_sex] = idx;
    let get = |i: usize| -> Result<&str, &'static str> {
        std::str::from_utf8(field(i)).map(str::trim).map_err(|_| "not UTF-8 text")
    };
    let id = get(c_id)?;
    let id_key = digits_key(id).filter(|_| id.len() == 12).ok_or("id_number is not 12 digits")?;
    let dob = parse_date(get(c_dob)?).ok_or("dob is not yyyy-mm-dd, yyyy-mm or yyyy")?;
    let sex = parse_sex(get(c_sex)?).ok_or("sex is not M or F")?;
    // An old number that is not digits can never be typed as a CMND: it matches nobody.
    let old = digits_key(get(c_old)?);
    let mut previous = Vec::new();
    if let Some(col) = previous_col {
        for p in get(col)?.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let key =
                digits_key(p).filter(|_| p.len() == 12).ok_or("previous_ids is not 12-digit numbers separated by ;")?;
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
