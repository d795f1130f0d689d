//! The national population registry extract (`registry.csv`, SPEC §4): the reference for
//! identity. Held in memory, indexed by CCCD and by old CMND.
//!
//! Memory: about 120 bytes per person (strings, index entries), so 1 million persons take
//! ~120 MB and the whole country (~100 million) ~12 GB; a national run splits the registry by
//! province, as the facilities' batches already are.

use std::collections::HashMap;
use std::io::Read;

use super::GateError;
use super::dates::{PartialDate, parse_date};
use super::identity::{Sex, parse_sex};
use crate::passport::translit::normalize_name;

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
    by_id: HashMap<String, u32>,
    by_old_id: HashMap<String, Vec<u32>>,
}

const COLUMNS: [&str; 5] = ["id_number", "old_id", "full_name", "dob", "sex"];

impl Registry {
    /// Reads `registry.csv`. Fails on the first malformed row, naming its line: the registry
    /// is the reference, and a damaged extract must not silently reject people.
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
        let [c_id, c_old, c_name, c_dob, c_sex] = idx;
        let mut reg = Registry::default();
        let mut record = csv::StringRecord::new();
        loop {
            let more = csv.read_record(&mut record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                GateError::input(name, format!("line {line}: cannot be read ({e})"))
            })?;
            if !more {
                break;
            }
            let line = record.position().map_or(0, |p| p.line());
            let bad = |what: &str| GateError::input(name, format!("line {line}: {what}"));
            let get = |i: usize| record.get(i).unwrap_or("").trim();
            let id = get(c_id);
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("id_number is not 12 digits"));
            }
            let dob = parse_date(get(c_dob)).ok_or_else(|| bad("dob is not yyyy-mm-dd, yyyy-mm or yyyy"))?;
            let sex = parse_sex(get(c_sex)).ok_or_else(|| bad("sex is not M or F"))?;
            let index = u32::try_from(reg.persons.len()).map_err(|_| bad("more than 4 billion persons"))?;
            if reg.by_id.insert(id.to_owned(), index).is_some() {
                return Err(bad("id_number appears twice in the registry"));
            }
            let old = get(c_old);
            if !old.is_empty() {
                reg.by_old_id.entry(old.to_owned()).or_default().push(index);
            }
            reg.persons.push(RegistryPerson {
                id_number: id.to_owned(),
                full_name: normalize_name(get(c_name)),
                dob,
                sex,
            });
        }
        Ok(reg)
    }

    /// The person with this 12-digit number.
    pub fn by_id(&self, id: &str) -> Option<(u32, &RegistryPerson)> {
        let i = *self.by_id.get(id)?;
        Some((i, self.persons.get(i as usize)?))
    }

    /// Persons whose old CMND is `old_id`, in registry order.
    pub fn by_old_id(&self, old_id: &str) -> impl Iterator<Item = (u32, &RegistryPerson)> {
        self.by_old_id
            .get(old_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| self.persons.get(i as usize).map(|p| (i, p)))
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
}
