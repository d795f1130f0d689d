//! Writing the files: `registry.csv`, `doses.csv`, `truth.csv` and the summary.

use super::*;

/// A registry row; the sixth field (`previous_ids`) is written only with `--weeks`.
pub(super) fn registry_record(p: Person, previous_ids: String) -> [String; 6] {
    let dob = p.dob_registry();
    let sex = if p.female { "F" } else { "M" }.to_owned();
    [p.cccd, p.cmnd.unwrap_or_default(), p.name, dob, sex, previous_ids]
}

pub(super) type CsvOut = csv::Writer<BufWriter<File>>;

pub(super) const REGISTRY_HEADER: [&str; 6] = ["id_number", "old_id", "full_name", "dob", "sex", "previous_ids"];
pub(super) const DOSES_HEADER: [&str; 12] = [
    "record_id",
    "facility_code",
    "id_number",
    "full_name",
    "dob",
    "sex",
    "nationality",
    "phone",
    "vaccine",
    "lot",
    "dose_number",
    "vaccination_date",
];
pub(super) const TRUTH_HEADER: [&str; 4] = ["record_id", "expected", "person_key", "error_kind"];

/// Opens `dir/name` as an RFC 4180 writer (CRLF, like every file of `vaxpass gen`) and writes
/// `header`.
pub(super) fn csv_create(
    dir: &Path,
    name: &str,
    header: &[&str],
    capacity: usize,
) -> Result<(CsvOut, PathBuf), GenError> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|source| GenError::Io { path: path.clone(), cause: source })?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(BufWriter::with_capacity(capacity, file));
    w.write_record(header)?;
    Ok((w, path))
}

pub(super) struct Outputs {
    pub(super) registry: CsvOut,
    pub(super) doses: CsvOut,
    pub(super) truth: CsvOut,
    pub(super) paths: [PathBuf; 3],
    pub(super) dose_rows: u64,
    pub(super) by_truth: BTreeMap<String, u64>,
    pub(super) by_kind: BTreeMap<String, u64>,
}

impl Outputs {
    /// `previous_ids`: add that registry column (SPEC §8.4), only with `--weeks`, so that the
    /// week-0 files stay byte-identical to what they were before follow-ups existed.
    pub(super) fn create(dir: &Path, previous_ids: bool) -> Result<Self, GenError> {
        let open = |name: &str, header: &[&str]| csv_create(dir, name, header, 1 << 16);
        let registry_header: &[&str] = if previous_ids { &REGISTRY_HEADER } else { &REGISTRY_HEADER[..5] };
        let (registry, p1) = open("registry.csv", registry_header)?;
        let (doses, p2) = open("doses.csv", &DOSES_HEADER)?;
        let (truth, p3) = open("truth.csv", &TRUTH_HEADER)?;
        Ok(Outputs {
            registry,
            doses,
            truth,
            paths: [p1, p2, p3],
            dose_rows: 0,
            by_truth: BTreeMap::new(),
            by_kind: BTreeMap::new(),
        })
    }

    pub(super) fn write_dose(&mut self, seq: u64, row: &Row) -> Result<(), GenError> {
        let record_id = format!("R{seq:08}");
        self.doses.write_record([
            record_id.as_str(),
            &row.facility,
            &row.id,
            &row.name,
            &row.dob,
            &row.sex,
            row.nationality,
            &row.phone,
            &row.vaccine,
            &row.lot,
            &row.dose_number,
            &row.vaccination_date,
        ])?;
        self.truth.write_record([record_id.as_str(), row.expected, &row.person_key, row.fault.label()])?;
        self.dose_rows += 1;
        *self.by_truth.entry(row.expected.to_owned()).or_insert(0) += 1;
        *self.by_kind.entry(row.fault.label().to_owned()).or_insert(0) += 1;
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<(), GenError> {
        let [p1, p2, p3] = &self.paths;
        for (w, path) in [(&mut self.registry, p1), (&mut self.doses, p2), (&mut self.truth, p3)] {
            w.flush().map_err(|source| GenError::Io { path: path.clone(), cause: source })?;
        }
        Ok(())
    }
}

/// Holds back up to `REGISTRY_WINDOW` registry rows and writes a random one when full.
pub(super) struct RegistryShuffle {
    pub(super) rng: Rng,
    pub(super) buffer: Vec<[String; 6]>,
    /// Fields written per row: 5, or 6 with `previous_ids`.
    pub(super) width: usize,
}

impl RegistryShuffle {
    pub(super) fn new(seed: u64, width: usize) -> Self {
        RegistryShuffle { rng: stream(seed, TAG_SHUFFLE, 0), buffer: Vec::with_capacity(REGISTRY_WINDOW), width }
    }

    pub(super) fn push(&mut self, record: [String; 6], out: &mut CsvOut) -> Result<(), GenError> {
        self.buffer.push(record);
        if self.buffer.len() >= REGISTRY_WINDOW {
            let k = self.rng.index(self.buffer.len());
            out.write_record(&self.buffer.swap_remove(k)[..self.width])?;
        }
        Ok(())
    }

    pub(super) fn finish(&mut self, out: &mut CsvOut) -> Result<(), GenError> {
        while !self.buffer.is_empty() {
            let k = self.rng.index(self.buffer.len());
            out.write_record(&self.buffer.swap_remove(k)[..self.width])?;
        }
        Ok(())
    }
}

/// A row waiting in a date-ordered window, ordered by (real date, sequence) — reversed, so
/// the max-heap pops the earliest. Used by the week-0 dose window and by the weeks'.
pub(super) struct Pending<T> {
    pub(super) julian: i32,
    pub(super) seq: u64,
    pub(super) item: Box<T>,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Pending<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.julian, other.seq).cmp(&(self.julian, self.seq))
    }
}

/// Interleaves the dose rows of consecutive persons: rows enter a heap keyed by real date and
/// leave, earliest first, once more than `DOSE_WINDOW` wait. One person's rows enter together,
/// so they leave in their own date order, which the truth was computed for.
#[derive(Default)]
pub(super) struct DoseWindow {
    pub(super) heap: BinaryHeap<Pending<Row>>,
    pub(super) next_seq: u64,
}

impl DoseWindow {
    pub(super) fn push_person(&mut self, rows: Vec<Row>, out: &mut Outputs) -> Result<(), GenError> {
        for row in rows {
            self.next_seq += 1;
            self.heap.push(Pending { julian: row.day.to_julian_day(), seq: self.next_seq, item: Box::new(row) });
        }
        while self.heap.len() > DOSE_WINDOW {
            if let Some(p) = self.heap.pop() {
                out.write_dose(p.seq, &p.item)?;
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self, out: &mut Outputs) -> Result<(), GenError> {
        while let Some(p) = self.heap.pop() {
            out.write_dose(p.seq, &p.item)?;
        }
        Ok(())
    }
}

impl From<csv::Error> for GenError {
    fn from(e: csv::Error) -> GenError {
        GenError::Csv(e)
    }
}
