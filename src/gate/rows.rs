//! Streaming `doses.csv` (SPEC §4): columns in any order, unknown ones ignored, a UTF-8 BOM
//! accepted. A row that cannot be parsed is a `BAD_ROW` rejection and the run goes on; a file
//! without the required columns, or whose header is not UTF-8, fails at once.

use std::io::Read;

use super::{GateError, RejectReason, Rejection};

/// One `doses.csv` row as typed, fields trimmed, borrowed from the split row (a batch reads
/// millions: only what outlives the checks is copied).
#[derive(Clone)]
pub struct DoseRow<'a> {
    /// 1-based line number of the row in the file (the header is line 1).
    pub line: u64,
    /// `record_id`, or `line:<N>` when blank.
    pub record_id: std::borrow::Cow<'a, str>,
    /// `facility_code`.
    pub facility_code: &'a str,
    /// `id_number` as typed.
    pub id_number: &'a str,
    /// `full_name` as typed.
    pub full_name: &'a str,
    /// `dob` as typed.
    pub dob: &'a str,
    /// `sex` as typed.
    pub sex: &'a str,
    /// `nationality` as typed (blank means `VN`).
    pub nationality: &'a str,
    /// `vaccine` as typed.
    pub vaccine: &'a str,
    /// `vaccination_date` as typed.
    pub vaccination_date: &'a str,
}

impl std::fmt::Debug for DoseRow<'_> {
    // Rows hold personal data: only the record id and line are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DoseRow {{ line: {}, record_id: {:?}, .. }}", self.line, self.record_id)
    }
}

const REQUIRED: [&str; 7] = ["record_id", "facility_code", "full_name", "dob", "sex", "vaccine", "vaccination_date"];

#[derive(Debug, Clone, Copy)]
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
    parser: RowParser,
    /// The row [`DoseReader::next_row`] lends out.
    record: csv::ByteRecord,
}

/// A row as split from the CSV, not yet parsed into a [`DoseRow`], or the rejection of a
/// row the CSV reader could not split.
pub(crate) enum RawRow {
    /// The row's fields.
    Record(csv::ByteRecord),
    /// A `BAD_ROW`.
    Unreadable(Rejection),
}

/// Turns split rows into [`DoseRow`]s, knowing the file's columns. Cheap to copy, so that
/// rows are parsed on all cores while one thread splits the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowParser {
    cols: Columns,
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
        Ok(DoseReader { csv, parser: RowParser { cols }, record: csv::ByteRecord::new() })
    }

    /// The next row: `Ok(Some(Ok(row)))`, a `BAD_ROW` rejection, or `None` at the end.
    /// `Err` only for I/O failures that stop the run.
    pub fn next_row(&mut self) -> Result<Option<Result<DoseRow<'_>, Rejection>>, GateError> {
        match self.next_raw()? {
            None => Ok(None),
            Some(RawRow::Unreadable(r)) => Ok(Some(Err(r))),
            Some(RawRow::Record(record)) => {
                self.record = record;
                Ok(Some(self.parser.parse(&self.record)))
            }
        }
    }

    /// The next row as split from the CSV, for [`RowParser::parse`]; `None` at the end.
    pub(crate) fn next_raw(&mut self) -> Result<Option<RawRow>, GateError> {
        // Sized like a typical row, so that reading it does not grow the buffers step by step.
        let mut record = csv::ByteRecord::with_capacity(160, self.parser.cols.count);
        match self.csv.read_byte_record(&mut record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(RawRow::Record(record))),
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => Err(GateError::Io(e.to_string())),
                _ => {
                    let line = e.position().map_or(0, |p| p.line());
                    Ok(Some(RawRow::Unreadable(bad_row(format!("line:{line}"), "the row cannot be parsed as CSV"))))
                }
            },
        }
    }

    /// The parser for this file's columns.
    pub(crate) fn parser(&self) -> RowParser {
        self.parser
    }
}

impl RowParser {
    /// Parses a row split by [`DoseReader::next_raw`].
    pub(crate) fn parse<'r>(&self, record: &'r csv::ByteRecord) -> Result<DoseRow<'r>, Rejection> {
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| -> Result<&'r str, ()> {
            match record.get(i) {
                Some(b) => std::str::from_utf8(b).map(str::trim).map_err(|_| ()),
                None => Ok(""),
            }
        };
        let c = &self.cols;
        let record_id: std::borrow::Cow<'r, str> = match field(c.record_id) {
            Ok(id) if !id.is_empty() => id.into(),
            _ => format!("line:{line}").into(),
        };
        if record.len() != c.count {
            return Err(bad_row(
                record_id.into_owned(),
                format!("{} columns, the header has {}", record.len(), c.count),
            ));
        }
        let get = |i: usize, name: &'static str| -> Result<&'r str, Rejection> {
            field(i).map_err(|()| bad_row(record_id.to_string(), format!("{name} is not UTF-8 text")))
        };
        let opt = |i: Option<usize>, name: &'static str| i.map_or(Ok(""), |i| get(i, name));
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
            (row.facility_code, "facility_code"),
            (row.full_name, "full_name"),
            (row.dob, "dob"),
            (row.sex, "sex"),
            (row.vaccine, "vaccine"),
            (row.vaccination_date, "vaccination_date"),
        ] {
            if value.is_empty() {
                return Err(bad_row(record_id.into_owned(), format!("{name} is blank")));
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

    /// (record id, line, vaccine) of a row, or (record id, detail) of its rejection.
    type Read = Result<(String, u64, String), (String, String)>;

    fn read_all(text: &[u8]) -> Vec<Read> {
        let mut r = DoseReader::new(text, "doses.csv").unwrap();
        let mut out = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            out.push(match row {
                Ok(row) => Ok((row.record_id.into_owned(), row.line, row.vaccine.to_owned())),
                Err(rej) => Err((rej.record_id, rej.detail)),
            });
        }
        out
    }

    #[test]
    fn columns_in_any_order_and_bom_are_accepted() {
        let text = "\u{feff}vaccination_date,vaccine,sex,dob,full_name,facility_code,record_id,extra\n01/08/2021,Pfizer,Nam,1990,Lê An,01001,R1,x\n";
        let rows = read_all(text.as_bytes());
        assert_eq!(rows, [Ok(("R1".to_owned(), 2, "Pfizer".to_owned()))]);
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
            .into_iter()
            .map(|r| match r {
                Ok((id, _, _)) => (id, "ok".into()),
                Err(rejected) => rejected,
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
