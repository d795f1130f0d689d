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
    /// The file, its first line (already read to see the line ending) put back in front.
    csv: csv::Reader<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>,
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
    /// Added to the CSV reader's line numbers: 1 in a CRLF file, 0 otherwise (see
    /// [`line_offset`]).
    line_offset: u64,
}

/// How much of a file is read to find its first line ending: a header is far shorter.
const FIRST_LINE_PEEK: usize = 64 * 1024;

/// Reads the start of `input` up to its first line feed (or [`FIRST_LINE_PEEK`] bytes).
fn peek_first_line(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while head.len() < FIRST_LINE_PEEK && !head.contains(&b'\n') {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(head)
}

/// What to add to the csv crate's line numbers so that they are physical lines (SPEC §5
/// `BAD_ROW`: the header is line 1, whatever the line endings). The crate takes the CR of a
/// CRLF as the end of a row and counts the LF only when it reads the next row, so in a
/// CRLF file (RFC 4180's own line ending; Excel writes it) every row starts one line after
/// the number it reports. LF files need nothing. A file's line ending is taken from its
/// first line: exports do not mix them.
fn line_offset(first_line: &[u8]) -> u64 {
    let crlf =
        first_line.iter().position(|&b| b == b'\n').is_some_and(|i| i > 0 && first_line.get(i - 1) == Some(&b'\r'));
    u64::from(crlf)
}

fn header_index(headers: &[String], name: &str) -> Option<usize> {
    headers.iter().position(|h| h == name)
}

impl<R: Read> DoseReader<R> {
    /// Opens a reader, checking the header. `name` names the file in errors.
    pub fn new(mut input: R, name: &str) -> Result<DoseReader<R>, GateError> {
        let first_line =
            peek_first_line(&mut input).map_err(|e| GateError::input(name, format!("cannot read the header ({e})")))?;
        let line_offset = line_offset(&first_line);
        let input = std::io::Cursor::new(first_line).chain(input);
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
        Ok(DoseReader { csv, parser: RowParser { cols, line_offset }, record: csv::ByteRecord::new() })
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
            Ok(true) => {
                self.set_physical_line(&mut record);
                Ok(Some(RawRow::Record(record)))
            }
            Err(e) if e.is_io_error() => match e.into_kind() {
                csv::ErrorKind::Io(source) => Err(GateError::Io { context: "reading doses.csv", source }),
                _ => Err(GateError::Invariant("an I/O error without its cause")),
            },
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line()) + self.parser.line_offset;
                Ok(Some(RawRow::Unreadable(bad_row(format!("line:{line}"), "the row cannot be parsed as CSV"))))
            }
        }
    }

    /// Sets the line of a row just read to the physical line where it starts (SPEC §5).
    ///
    /// The csv crate gives a row the line where its reading began, before any blank lines it
    /// skipped, and (see [`line_offset`]) one short in a CRLF file. The line feeds read for
    /// this row are the blank lines' plus its own quoted ones plus one terminator (the
    /// row's own in an LF file, the previous row's in a CRLF file), so the blank lines
    /// are what remains. (An LF file's last row without a final line feed, after blank
    /// lines, is still placed one line early: a case no export produces.)
    fn set_physical_line(&self, record: &mut csv::ByteRecord) {
        let Some(mut pos) = record.position().cloned() else { return };
        let consumed = self.csv.position().line().saturating_sub(pos.line());
        let quoted = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        let blank = consumed.saturating_sub(quoted + 1);
        pos.set_line(pos.line() + self.parser.line_offset + blank);
        record.set_position(Some(pos));
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
        let typed_id = field(c.record_id);
        let record_id: std::borrow::Cow<'r, str> = match typed_id {
            Ok(id) if !id.is_empty() => id.into(),
            _ => format!("line:{line}").into(),
        };
        if record.len() != c.count {
            return Err(bad_row(
                record_id.into_owned(),
                format!("{} columns, the header has {}", record.len(), c.count),
            ));
        }
        // The record id is the row's key from here on (the dose ledger's too): a row without
        // one is not signed (SPEC §5 `BAD_ROW`, "`record_id` included").
        match typed_id {
            Ok("") => return Err(bad_row(record_id.into_owned(), "record_id is blank")),
            Err(()) => return Err(bad_row(record_id.into_owned(), "record_id is not UTF-8 text")),
            Ok(_) => {}
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
                ("line:4".into(), "record_id is blank".into()),
                ("R4".into(), "ok".into()),
            ]
        );
    }

    // Issue #9, item 9: https://github.com/vaxpass/vaxpass/issues/9
    #[test]
    fn blank_record_ids_are_bad_rows_named_by_their_physical_line_in_lf_and_crlf_files() {
        for eol in ["\n", "\r\n"] {
            let text = [
                HEADER.trim_end().to_owned(),
                "R1,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
                ",01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
                format!("R3,01001,,\"Lê{eol}An\",1990,Nam,,,Pfizer,,,01/08/2021"),
                format!(",01001,,\"Lê{eol}An\",1990,Nam,,,Pfizer,,,01/08/2021"),
                "  ,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
                "R7,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
                String::new(),
                String::new(),
                "R10,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
                ",01001,,An,1990,Nam,,,Pfizer,,,01/08/2021".to_owned(),
            ]
            .join(eol)
                + eol;
            let rows = read_all(text.as_bytes());
            let ok = |id: &str, line: u64| Ok((id.to_owned(), line, "Pfizer".to_owned()));
            let blank = |line: u64| Err((format!("line:{line}"), "record_id is blank".to_owned()));
            // Lines: header 1, R1 2, blank id 3, R3 4–5, blank id 6–7, spaces 8, R7 9, two
            // empty lines 10–11 (skipped), R10 12, blank id 13.
            assert_eq!(
                rows,
                [ok("R1", 2), blank(3), ok("R3", 4), blank(6), blank(8), ok("R7", 9), ok("R10", 12), blank(13)],
                "{eol:?}"
            );
        }
    }

    #[test]
    fn last_row_without_a_final_line_ending_keeps_its_line() {
        for eol in ["\n", "\r\n"] {
            let text = format!(
                "{}{eol}R1,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021{eol},01001,,An,1990,Nam,,,Pfizer,,,01/08/2021",
                HEADER.trim_end()
            );
            let rows = read_all(text.as_bytes());
            assert_eq!(rows[1], Err(("line:3".to_owned(), "record_id is blank".to_owned())), "{eol:?}");
        }
    }

    #[test]
    fn record_id_that_is_not_utf8_is_a_bad_row() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"R\xff,01001,,An,1990,Nam,,,Pfizer,,,01/08/2021\r\n");
        assert_eq!(read_all(&text), [Err(("line:2".to_owned(), "record_id is not UTF-8 text".to_owned()))]);
    }
}
