//! A batch's accepted rows, sorted by person (their ledger key, then file order), in memory
//! while they fit in their share of `--memory-budget` and in sorted runs on disk beyond it,
//! merged back into one stream (issue #11 part 3). A person's rows may be anywhere in the
//! file; this is what brings them together without holding the batch.
//!
//! Run files hold personal data (names, identity numbers). They are created 0600 and removed
//! from the directory at once: the open handle keeps them readable, and nothing is left
//! behind whether the run ends, fails or is killed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use time::Date;

use super::GateError;
use super::checks::{PersonKey, RowIdentity};
use crate::passport::{Dose, Person, vaccines};

/// What the ledger held under a row's record id when the batch was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Nothing: a new record.
    New,
    /// The same person, product and date: a known record.
    Same,
    /// Something else (kept aside, by the row's position in the file): a correction, or a
    /// known record under an earlier number's key.
    Differs,
}

/// One accepted row on its way to its person's merge.
#[derive(Debug, Clone)]
pub(super) struct BatchRow {
    /// The person's ledger key: what rows are sorted by.
    pub hash: [u8; 16],
    /// Position in the file (0-based).
    pub order: u64,
    /// Whose dose.
    pub person: PersonKey,
    /// `record_id`.
    pub record_id: String,
    /// `facility_code`.
    pub facility_code: String,
    /// The dose.
    pub dose: Dose,
    /// The row's own identity, for persons the registry does not give.
    pub identity: Option<RowIdentity>,
    /// What the ledger held under the record id.
    pub stored: Stored,
}

/// Bytes of a row's sort key in its encoding: the person's key, then the file position
/// (big-endian, so that bytes compare as numbers).
const KEY_LEN: usize = 24;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends `row` as `[length u32][hash][order][the rest]`.
fn encode(row: &BatchRow, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&row.hash);
    out.extend_from_slice(&row.order.to_be_bytes());
    match &row.person {
        PersonKey::Registry(i) => {
            out.push(0);
            out.extend_from_slice(&i.to_le_bytes());
        }
        PersonKey::Foreign(nat, no) => {
            out.push(1);
            put_str(out, nat);
            put_str(out, no);
        }
        PersonKey::Offline(no) => {
            out.push(2);
            put_str(out, no);
        }
    }
    put_str(out, &row.record_id);
    put_str(out, &row.facility_code);
    put_str(out, row.dose.vaccine.mp);
    out.extend_from_slice(&row.dose.date.to_julian_day().to_le_bytes());
    match &row.identity {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            put_str(out, &id.person.full_name);
            put_str(out, &id.person.dob);
            put_str(out, &id.id_number);
        }
    }
    out.push(match row.stored {
        Stored::New => 0,
        Stored::Same => 1,
        Stored::Differs => 2,
    });
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Reads what [`encode`] wrote (one whole record, length included).
struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode(record: &[u8]) -> Option<BatchRow> {
    let mut d = Decoder { bytes: record.get(4..)? };
    let hash: [u8; 16] = d.take(16)?.try_into().ok()?;
    let order = u64::from_be_bytes(d.take(8)?.try_into().ok()?);
    let person = match d.u8()? {
        0 => PersonKey::Registry(d.u32()?),
        1 => PersonKey::Foreign(d.string()?, d.string()?),
        2 => PersonKey::Offline(d.string()?),
        _ => return None,
    };
    let record_id = d.string()?;
    let facility_code = d.string()?;
    let vaccine = vaccines::by_mp(&d.string()?)?;
    let date = Date::from_julian_day(d.u32()? as i32).ok()?;
    let identity = match d.u8()? {
        0 => None,
        _ => Some(RowIdentity { person: Person { full_name: d.string()?, dob: d.string()? }, id_number: d.string()? }),
    };
    let stored = match d.u8()? {
        0 => Stored::New,
        1 => Stored::Same,
        _ => Stored::Differs,
    };
    Some(BatchRow { hash, order, person, record_id, facility_code, dose: Dose { vaccine, date }, identity, stored })
}

fn corrupt() -> GateError {
    GateError::Invariant("a spilled row that does not read back")
}

/// Run files made by this process, for unique names.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A file only this process can open: created 0600 in `dir` and unlinked at once, so that
/// it disappears with its handle whatever happens to the run.
fn anonymous_file(dir: &Path) -> Result<File, GateError> {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".vaxpass-rows-{}-{n}.spill", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| GateError::Io { context: "cannot create a file to spill rows to", source })?;
    std::fs::remove_file(&path).map_err(|source| GateError::Io { context: "cannot unlink a spill file", source })?;
    Ok(file)
}

/// Bytes of one block of the in-memory rows. Blocks rather than one growing vector: a vector
/// that doubles holds its old and new buffers at once, twice the rows' share of the budget.
const ARENA_BLOCK: usize = 16 << 20;

/// Encoded rows in fixed blocks; a row is found by `(block << 32) | offset`.
#[derive(Default)]
struct Arena {
    blocks: Vec<Vec<u8>>,
    bytes: usize,
}

impl Arena {
    fn push(&mut self, record: &[u8]) -> u64 {
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= record.len());
        if !fits {
            self.blocks.push(Vec::with_capacity(ARENA_BLOCK.max(record.len())));
            self.bytes += ARENA_BLOCK.max(record.len());
        }
        let block = self.blocks.len() - 1;
        let last = &mut self.blocks[block];
        let offset = last.len();
        last.extend_from_slice(record);
        ((block as u64) << 32) | offset as u64
    }

    fn record(&self, at: u64) -> &[u8] {
        let block = &self.blocks[(at >> 32) as usize];
        let offset = (at & 0xffff_ffff) as usize;
        let n = u32::from_le_bytes([block[offset], block[offset + 1], block[offset + 2], block[offset + 3]]) as usize;
        &block[offset..offset + n]
    }
}

/// Accepted rows, sorted by person: in memory up to `limit` bytes, then in sorted runs.
pub(super) struct RowSorter {
    /// Encoded rows not yet sorted.
    arena: Arena,
    /// Where each row of `arena` is.
    starts: Vec<u64>,
    scratch: Vec<u8>,
    limit: usize,
    dir: PathBuf,
    /// Sorted runs on disk, with their length.
    runs: Vec<(File, u64)>,
}

impl RowSorter {
    /// Rows held in memory up to `limit` bytes (their blocks, plus 8 bytes each to sort
    /// them); beyond it sorted runs go to `dir`.
    pub(super) fn new(limit: usize, dir: PathBuf) -> RowSorter {
        RowSorter {
            arena: Arena::default(),
            starts: Vec::new(),
            scratch: Vec::new(),
            limit: limit.max(1),
            dir,
            runs: Vec::new(),
        }
    }

    /// Adds a row.
    pub(super) fn push(&mut self, row: &BatchRow) -> Result<(), GateError> {
        self.scratch.clear();
        encode(row, &mut self.scratch);
        let at = self.arena.push(&self.scratch);
        self.starts.push(at);
        if self.arena.bytes + self.starts.capacity() * 8 >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs written to disk so far.
    pub(super) fn runs(&self) -> usize {
        self.runs.len()
    }

    fn sort(&mut self) {
        let arena = &self.arena;
        self.starts
            .par_sort_unstable_by(|&a, &b| arena.record(a)[4..4 + KEY_LEN].cmp(&arena.record(b)[4..4 + KEY_LEN]));
    }

    /// Sorts what is in memory and writes it as a run.
    fn spill(&mut self) -> Result<(), GateError> {
        self.sort();
        let file = anonymous_file(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let io = |source| GateError::Io { context: "cannot write a spill file", source };
        let mut len = 0u64;
        for &s in &self.starts {
            let record = self.arena.record(s);
            out.write_all(record).map_err(io)?;
            len += record.len() as u64;
        }
        out.flush().map_err(io)?;
        drop(out);
        self.runs.push((file, len));
        self.arena = Arena::default();
        self.starts = Vec::new();
        if self.runs.len() >= MAX_RUNS {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges every run into one, so that a merge never reads more than [`MAX_RUNS`] files
    /// at once (open files, and a read buffer each).
    fn compact(&mut self) -> Result<(), GateError> {
        let runs = SortedRows { arena: Arena::default(), starts: Vec::new(), runs: std::mem::take(&mut self.runs) };
        let file = anonymous_file(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let io = |source| GateError::Io { context: "cannot write a spill file", source };
        let mut len = 0u64;
        let mut merge = runs.iter()?;
        let mut record = Vec::new();
        while let Some(row) = merge.next_row()? {
            record.clear();
            encode(&row, &mut record);
            out.write_all(&record).map_err(io)?;
            len += record.len() as u64;
        }
        out.flush().map_err(io)?;
        drop(out);
        drop(merge);
        self.runs.push((file, len));
        Ok(())
    }

    /// Every row pushed, as one stream in (person key, file order) order, as many times as
    /// asked.
    pub(super) fn finish(mut self) -> SortedRows {
        self.sort();
        SortedRows { arena: self.arena, starts: self.starts, runs: self.runs }
    }
}

/// The sorted rows of a [`RowSorter`], read as often as needed.
pub(super) struct SortedRows {
    arena: Arena,
    starts: Vec<u64>,
    runs: Vec<(File, u64)>,
}

/// Runs on disk at most: more are merged into one first.
const MAX_RUNS: usize = 64;

/// Bytes read from a run file at a time.
const READ_BUFFER: usize = 1 << 20;

/// One sorted source of a merge.
enum Source<'a> {
    Memory { arena: &'a Arena, starts: std::slice::Iter<'a, u64> },
    File { file: &'a File, len: u64, pos: u64, buf: Vec<u8>, at: usize },
}

impl Source<'_> {
    fn next(&mut self) -> Result<Option<BatchRow>, GateError> {
        match self {
            Source::Memory { arena, starts } => match starts.next() {
                None => Ok(None),
                Some(&s) => decode(arena.record(s)).map(Some).ok_or_else(corrupt),
            },
            Source::File { file, len, pos, buf, at } => {
                if *pos >= *len && *at >= buf.len() {
                    return Ok(None);
                }
                // Refill so that the next record is whole in the buffer.
                let need = |buf: &[u8], at: usize| -> Option<usize> {
                    let head = buf.get(at..at + 4)?;
                    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                    (buf.len() >= at + n).then_some(n)
                };
                if need(buf, *at).is_none() {
                    buf.drain(..*at);
                    *at = 0;
                    loop {
                        let want = match buf.get(..4) {
                            Some(h) => (u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize).max(READ_BUFFER),
                            None => READ_BUFFER,
                        };
                        let room = (want.saturating_sub(buf.len())).min((*len - *pos) as usize);
                        if room == 0 {
                            break;
                        }
                        let old = buf.len();
                        buf.resize(old + room, 0);
                        file.read_exact_at(&mut buf[old..], *pos)
                            .map_err(|source| GateError::Io { context: "cannot read a spill file", source })?;
                        *pos += room as u64;
                        if need(buf, 0).is_some() {
                            break;
                        }
                    }
                }
                let n = need(buf, *at).ok_or_else(corrupt)?;
                let row = decode(&buf[*at..*at + n]).ok_or_else(corrupt)?;
                *at += n;
                Ok(Some(row))
            }
        }
    }
}

/// The key of a source's next row (person key, file position) and the source.
type Head = Reverse<(([u8; 16], u64), usize)>;

/// A k-way merge of sorted sources.
pub(super) struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heads: BinaryHeap<Head>,
    rows: Vec<Option<BatchRow>>,
}

impl SortedRows {
    /// A pass over every row, in order.
    pub(super) fn iter(&self) -> Result<Merge<'_>, GateError> {
        let mut sources = vec![Source::Memory { arena: &self.arena, starts: self.starts.iter() }];
        for (file, len) in &self.runs {
            sources.push(Source::File { file, len: *len, pos: 0, buf: Vec::new(), at: 0 });
        }
        let mut merge = Merge { heads: BinaryHeap::new(), rows: Vec::with_capacity(sources.len()), sources };
        for i in 0..merge.sources.len() {
            let row = merge.sources[i].next()?;
            if let Some(r) = &row {
                merge.heads.push(Reverse(((r.hash, r.order), i)));
            }
            merge.rows.push(row);
        }
        Ok(merge)
    }
}

impl Merge<'_> {
    /// The next row in (person key, file order) order.
    pub(super) fn next_row(&mut self) -> Result<Option<BatchRow>, GateError> {
        let Some(Reverse((_, i))) = self.heads.pop() else { return Ok(None) };
        let next = self.sources[i].next()?;
        if let Some(r) = &next {
            self.heads.push(Reverse(((r.hash, r.order), i)));
        }
        Ok(std::mem::replace(&mut self.rows[i], next))
    }

    /// The key of the next row, without taking it.
    pub(super) fn peek_hash(&self) -> Option<[u8; 16]> {
        self.heads.peek().map(|Reverse(((h, _), _))| *h)
    }

    /// The next person's rows (one key), in file order.
    pub(super) fn next_person(&mut self) -> Result<Option<Vec<BatchRow>>, GateError> {
        let Some(first) = self.next_row()? else { return Ok(None) };
        let mut rows = vec![first];
        while self.peek_hash() == Some(rows[0].hash) {
            match self.next_row()? {
                Some(r) => rows.push(r),
                None => break,
            }
        }
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: u8, order: u64, id: &str) -> BatchRow {
        BatchRow {
            hash: [hash; 16],
            order,
            person: if hash.is_multiple_of(2) {
                PersonKey::Registry(u32::from(hash))
            } else {
                PersonKey::Foreign("DE".into(), format!("C{hash}"))
            },
            record_id: id.into(),
            facility_code: "01001".into(),
            dose: Dose {
                vaccine: vaccines::by_mp("EU/1/20/1528").unwrap(),
                date: Date::from_calendar_date(2021, time::Month::June, 1).unwrap(),
            },
            identity: (!hash.is_multiple_of(2)).then(|| RowIdentity {
                person: Person { full_name: "Anna Müller".into(), dob: "1990-01-02".into() },
                id_number: format!("C{hash}"),
            }),
            stored: if order.is_multiple_of(3) { Stored::Same } else { Stored::New },
        }
    }

    fn all(sorted: &SortedRows) -> Vec<(u8, u64, String)> {
        let mut m = sorted.iter().unwrap();
        let mut out = Vec::new();
        while let Some(r) = m.next_row().unwrap() {
            out.push((r.hash[0], r.order, r.record_id));
        }
        out
    }

    #[test]
    fn rows_come_back_sorted_whether_or_not_they_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<BatchRow> = (0..500u64).map(|i| row(((i * 7919) % 13) as u8, i, &format!("R{i}"))).collect();
        let mut expected: Vec<(u8, u64, String)> =
            rows.iter().map(|r| (r.hash[0], r.order, r.record_id.clone())).collect();
        expected.sort();
        for limit in [usize::MAX, 1, 1000, 10_000] {
            let mut sorter = RowSorter::new(limit, dir.path().to_owned());
            for r in &rows {
                sorter.push(r).unwrap();
            }
            assert_eq!(sorter.runs() > 0, limit < usize::MAX, "limit {limit}");
            let sorted = sorter.finish();
            // Twice: the runs are read by position, not consumed.
            assert_eq!(all(&sorted), expected, "limit {limit}");
            assert_eq!(all(&sorted), expected, "limit {limit}");
            // The run files are gone from the directory already.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_row_reads_back_as_written() {
        for (h, o) in [(1u8, 5u64), (2, 6)] {
            let r = row(h, o, "rec-é");
            let mut bytes = Vec::new();
            encode(&r, &mut bytes);
            let back = decode(&bytes).unwrap();
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
    }

    #[test]
    fn persons_come_whole() {
        let mut sorter = RowSorter::new(200, std::env::temp_dir());
        for (i, h) in [3u8, 1, 3, 2, 1, 3].into_iter().enumerate() {
            sorter.push(&row(h, i as u64, &format!("R{i}"))).unwrap();
        }
        let sorted = sorter.finish();
        let mut m = sorted.iter().unwrap();
        let mut persons = Vec::new();
        while let Some(p) = m.next_person().unwrap() {
            persons.push(p.iter().map(|r| r.order).collect::<Vec<_>>());
        }
        assert_eq!(persons, [vec![1, 4], vec![3], vec![0, 2, 5]]);
    }
}
