//! Streaming `doses.csv` (SPEC §4): columns in any order, unknown ones ignored, a UTF-8 BOM
//! accepted. A row that cannot be parsed is a `BAD_ROW` rejection and the run goes on; a file
//! without the required columns, or whose header is not UTF-8, fails at once.

use std::io::Read;

use super::{GateError, RejectReason, Rejection};

/// One `doses.csv` row as typed, fields trimmed.
#[derive(Clone)]
pub struct DoseRow {
    /// 1-based line number of the row in the file (the header is line 1).
    pub line: u64,
    /// `record_id`.
    pub record_id: String,
    /// `facility_code`.
    pub facility_code: String,
    /// `id_number` as typed.
    pub id_number: String,
    /// `full_name` as typed.
    pub full_name: String,
    /// `dob` as typed.
    pub dob: String,
    /// `sex` as typed.
    pub sex: String,
    /// `nationality`, `VN` when blank.
    pub nationality: String,
    /// `vaccine` as typed.
    pub vaccine: String,
    /// `vaccination_date` as typed.
    pub vaccination_date: String,
}

impl std::fmt::Debug for DoseRow {
    // Rows hold personal data: only the record id and line are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DoseRow {{ line: {}, record_id: {:?}, .. }}", self.line, self.record_id)
    }
}

const REQUIRED: [&str; 7] = ["record_id", "facility_code", "full_name", "dob", "sex", "vaccine", "vaccination_date"];

struct Columns {
    record_id: usize,
    facility_code: usize,
    full_name: usize,
    dob: usize,
    sex: usize,
    vaccine: usize,
    vaccination_date: usize,
    id_number: Option<usize>,
    nationality: Option<usize>,
    count: usize,
}

/// Reads `doses.csv` row by row.
pub struct DoseReader<R: Read> {
    csv: csv::Reader<R>,
    cols: Columns,
    record: csv::ByteRecord,
}

fn header_index(headers: &[String], name: &str) -> Option<usize> {
    headers.iter().position(|h| h == name)
}

impl<R: Read> DoseReader<R> {
    /// Opens a reader, checking the header. `name` names the file in errors.
    pub fn new(input: R, name: &str) -> Result<DoseReader<R>, GateError> {
        let mut csv = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(input);
        let raw =
            csv.byte_headers().map_err(|e| GateError::input(name, format!("cannot read the header ({e})")))?.clone();
        let mut headers = Vec::with_capacity(raw.len());
        for field in raw.iter() {
            let text = std::str::from_utf8(field)
                .map_err(|_| GateError::input(name, "the header is not UTF-8 text (save the file as UTF-8 CSV)"))?;
            headers.push(text.trim_start_matches('\u{feff}').trim().to_ascii_lowercase());
        }
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|r| header_index(&headers, r).is_none()).collect();
        if !missing.is_empty() {
            return Err(GateError::input(name, format!("missing required column(s): {}", missing.join(", "))));
        }
        let idx = |n: &str| header_index(&headers, n).unwrap_or(usize::MAX);
        let cols = Columns {
            record_id: idx("record_id"),
            facility_code: idx("facility_code"),
            full_name: idx("full_name"),
            dob: idx("dob"),
            sex: idx("sex"),
            vaccine: idx("vaccine"),
            vaccination_date: idx("vaccination_date"),
            id_number: header_index(&headers, "id_number"),
            nationality: header_index(&headers, "nationality"),
            count: headers.len(),
        };
        Ok(DoseReader { csv, cols, record: csv::ByteRecord::new() })
    }

    /// The next row: `Ok(Some(Ok(row)))`, a `BAD_ROW` rejection, or `None` at the end.
    /// `Err` only for I/O failures that stop the run.
    pub fn next_row(&mut self) -> Result<Option<Result<DoseRow, Rejection>>, GateError> {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                Ok(Some(self.parse(line)))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => Err(GateError::Io(e.to_string())),
                _ => {
                    let line = e.position().map_or(0, |p| p.line());
                    Ok(Some(Err(bad_row(format!("line:{line}"), "the row cannot be parsed as CSV"))))
                }
            },
        }
    }

    fn field(&self, i: usize) -> Result<&str, ()> {
        match self.record.get(i) {
            Some(b) => std::str::from_utf8(b).map(str::trim).map_err(|_| ()),
            None => Ok(""),
        }
    }

    fn parse(&self, line: u64) -> Result<DoseRow, Rejection> {
        let c = &self.cols;
        let record_id = match self.field(c.record_id) {
            Ok(id) if !id.is_empty() => id.to_owned(),
            _ => format!("line:{line}"),
        };
        if self.record.len() != c.count {
            return Err(bad_row(record_id, format!("{} columns, the header has {}", self.record.len(), c.count)));
        }
        let get = |i: usize, name: &'static str| -> Result<String, Rejection> {
            self.field(i)
                .map(str::to_owned)
                .map_err(|()| bad_row(record_id.clone(), format!("{name} is not UTF-8 text")))
        };
        let opt = |i: Option<usize>, name: &'static str| i.map_or(Ok(String::new()), |i| get(i, name));
        let row = DoseRow {
            line,
            facility_code: get(c.facility_code, "facility_code")?,
            id_number: opt(c.id_number, "id_number")?,
            full_name: get(c.full_name, "full_name")?,
            dob: get(c.dob, "dob")?,
            sex: get(c.sex, "sex")?,
            nationality: opt(c.nationality, "nationality")?,
            vaccine: get(c.vaccine, "vaccine")?,
            vaccination_date: get(c.vaccination_date, "vaccination_date")?,
            record_id: record_id.clone(),
        };
        for (value, name) in [
            (&row.facility_code, "facility_code"),
            (&row.full_name, "full_name"),
            (&row.dob, "dob"),
            (&row.sex, "sex"),
            (&row.vaccine, "vaccine"),
            (&row.vaccination_date, "vaccination_date"),
        ] {
            if value.is_empty() {
                return Err(bad_row(record_id, format!("{name} is blank")));
            }
        }
        Ok(row)
    }
}

pub(crate) fn bad_row(record_id: String, detail: impl Into<String>) -> Rejection {
    Rejection { record_id, reason: RejectReason::BadRow, detail: detail.into(), suggestion: String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n";

    fn read_all(text: &[u8]) -> Vec<Result<DoseRow, Rejection>> {
        let mut r = DoseReader::new(text, "doses.csv").unwrap();
        let mut out = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            out.push(row);
        }
        out
    }

    #[test]
    fn columns_in_any_order_and_bom_are_accepted() {
        let text = "\u{feff}vaccination_date,vaccine,sex,dob,full_name,facility_code,record_id,extra\n01/08/2021,Pfizer,Nam,1990,Lê An,01001,R1,x\n";
        let rows = read_all(text.as_bytes());
        let row = rows[0].as_ref().unwrap();
        assert_eq!((row.record_id.as_str(), row.vaccine.as_str(), row.line), ("R1", "Pfizer", 2));
    }

    #[test]
    fn missing_columns_fail_fast_naming_them() {
        let err = DoseReader::new(&b"record_id,full_name\n"[..], "doses.csv").err().unwrap();
        assert_eq!(
            err.to_string(),
            "doses.csv: missing required column(s): facility_code, dob, sex, vaccine, vaccination_date"
        );
    }

    #[test]
    fn non_utf8_header_fails_fast() {
        let err = DoseReader::new(&b"record_id,h\xe0\n"[..], "doses.csv").err().unwrap();
        assert!(err.to_string().contains("not UTF-8"));
    }

    #[test]
    fn bad_rows_are_reported_and_reading_goes_on() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"R1,01001,,L\xea An,1990,Nam,,,Pfizer,,,01/08/2021\n");
        text.extend_from_slice(b"R2,01001,,An,1990,Nam\n");
        text.extend_from_slice(b",01001,,An,1990,,,,Pfizer,,,01/08/2021\n");
        text.extend_from_slice(b"R4,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021\n");
        let rows = read_all(&text);
        let r: Vec<(String, String)> = rows
            .iter()
            .map(|r| match r {
                Ok(row) => (row.record_id.clone(), "ok".into()),
                Err(rej) => (rej.record_id.clone(), rej.detail.clone()),
            })
            .collect();
        assert_eq!(
            r,
            [
                ("R1".into(), "full_name is not UTF-8 text".into()),
                ("R2".into(), "6 columns, the header has 12".into()),
                ("line:4".into(), "sex is blank".into()),
                ("R4".into(), "ok".into()),
            ]
        );
    }
}
