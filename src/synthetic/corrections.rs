//! Synthetic correction requests (`vaxpass gen --corrections`, issue #10 item 6): citizens
//! reporting problems with the doses [`super::generate`] wrote, and how their facilities answer,
//! so the 48-hour loop can be replayed and its figures checked.
//!
//! Read from the files `generate` wrote (`registry.csv`, `doses.csv`, `truth.csv`), so the
//! requests follow the injected faults:
//!
//! - About 2 % of registry persons who have dose rows file one request ([`REQUEST_PPM`]).
//! - A person with a row the gate must reject for its data (any fault but repeats, too-early
//!   doses and unlicensed products) reports `missing_dose` to the facility of that row: the
//!   passport lacks a dose they received. The facility resolves it.
//! - Anyone else reports `wrong_data` (85 %) or `not_mine` (15 %) about a signed dose, to its
//!   facility: nothing was wrong in the record, and the facility mostly rejects the request
//!   (70 %) after checking.
//! - Arrivals: over [`WINDOW_DAYS`] days from [`START`], 30 % of them in a two-day spike from
//!   day 10 (a news story about wrong certificates).
//! - Facilities answer after 1–24 hours (55 %), 24–47 hours (25 %), 49–120 hours, late
//!   (12 %), or not at all (8 %).
//!
//! `corrections.jsonl` holds one request per line, oldest first: `{"at", "filing": {…the body
//! of POST /api/v1/corrections…}, "resolve_at" | null, "outcome" | null, "note"}`.
//! `corrections_truth.json` holds what a replay up to `clock` must report (SPEC §8.6), counted
//! here from the schedule alone: per province and in total, requests open, overdue, closed,
//! closed late, and the share closed within 48 hours of those closed or overdue.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write as _};
use std::path::Path;

use serde::Serialize;

use super::{GenError, stream};

/// Requests per million registry persons with dose rows (2 %).
pub(crate) const REQUEST_PPM: u32 = 20_000;

/// Arrivals start here: 2023-01-02T00:00:00Z (the first follow-up week's Monday).
pub(crate) const START: i64 = 1_672_617_600;

/// Days over which requests arrive.
pub(crate) const WINDOW_DAYS: i64 = 28;

/// The replay's clock: a week after the last arrival, so most requests are decided.
pub(crate) const CLOCK: i64 = START + (WINDOW_DAYS + 7) * DAY;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const DUE: i64 = 48 * HOUR;

/// A stream tag of its own ("CORR").
const TAG: u64 = 0x434F_5252;

/// Faults after which the dose is missing from the passport through no fault of the
/// citizen's data being absent: every injected data fault except these is reported.
const NOT_REPORTED: [&str; 4] = ["duplicate_row", "too_soon", "unknown_vaccine", "clean"];

/// What `--corrections` wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct CorrectionsSummary {
    /// Requests written.
    pub requests: u64,
    /// By kind.
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Line<'a> {
    at: String,
    filing: Filing<'a>,
    resolve_at: Option<String>,
    outcome: Option<&'static str>,
    note: &'static str,
}

#[derive(Serialize)]
struct Filing<'a> {
    id_number: &'a str,
    dob: &'a str,
    facility_code: &'a str,
    kind: &'static str,
    message: &'static str,
    contact: String,
}

/// One person's rows, as far as the requests need them.
#[derive(Default)]
struct Rows {
    /// Facility of a row rejected for its data, if any.
    rejected: Option<String>,
    /// Facilities of the signed rows.
    signed: Vec<String>,
}

/// Figures a replay must report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Figures {
    requests: u64,
    open: u64,
    overdue: u64,
    closed: u64,
    closed_late: u64,
    closed_within_48h_share: Option<f64>,
}

/// Writes `corrections.jsonl` and `corrections_truth.json` into `dir`, from the files
/// [`super::generate`] wrote there with the same `seed`.
pub(crate) fn write(dir: &Path, seed: u64) -> Result<CorrectionsSummary, GenError> {
    let read_err = |name: &str| {
        let path = dir.join(name);
        move |e: csv::Error| GenError::Io { path: path.clone(), cause: std::io::Error::other(e.to_string()) }
    };
    // Who files: a keyed draw per registry person, so the choice needs no table of persons.
    let files = |person: &str| {
        let h = person.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        stream(seed, TAG, h).chance(REQUEST_PPM)
    };
    let mut doses = csv::Reader::from_path(dir.join("doses.csv")).map_err(read_err("doses.csv"))?;
    let mut truth = csv::Reader::from_path(dir.join("truth.csv")).map_err(read_err("truth.csv"))?;
    let mut persons: HashMap<String, Rows> = HashMap::new();
    for (dose, t) in doses.records().zip(truth.records()) {
        let (dose, t) = (dose.map_err(read_err("doses.csv"))?, t.map_err(read_err("truth.csv"))?);
        let (facility, expected, person, fault) =
            (dose.get(1).unwrap_or(""), t.get(1).unwrap_or(""), t.get(2).unwrap_or(""), t.get(3).unwrap_or(""));
        // Registry persons only, whose facility code can be read.
        if person.contains(':') || !crate::provinces::is_facility_code(facility) || !files(person) {
            continue;
        }
        let rows = persons.entry(person.to_owned()).or_default();
        if expected == "SIGN" {
            rows.signed.push(facility.to_owned());
        } else if !NOT_REPORTED.contains(&fault) && rows.rejected.is_none() {
            rows.rejected = Some(facility.to_owned());
        }
    }
    let mut dob: HashMap<String, String> = HashMap::new();
    let mut registry = csv::Reader::from_path(dir.join("registry.csv")).map_err(read_err("registry.csv"))?;
    for r in registry.records() {
        let r = r.map_err(read_err("registry.csv"))?;
        if let (Some(id), Some(d)) = (r.get(0), r.get(3))
            && persons.contains_key(id)
        {
            dob.insert(id.to_owned(), d.to_owned());
        }
    }

    struct Planned {
        at: i64,
        id: String,
        facility: String,
        kind: &'static str,
        resolve_at: Option<i64>,
        outcome: Option<&'static str>,
        contact: String,
    }
    let mut planned = Vec::new();
    let mut ids: Vec<&String> = persons.keys().collect();
    ids.sort();
    for (i, id) in ids.into_iter().enumerate() {
        let rows = &persons[id];
        let mut rng = stream(seed, TAG + 1, i as u64);
        let (kind, facility, real) = match &rows.rejected {
            Some(f) => ("missing_dose", f.clone(), true),
            None if rows.signed.is_empty() => continue,
            None => {
                let kind = if rng.below(100) < 85 { "wrong_data" } else { "not_mine" };
                (kind, rows.signed[rng.index(rows.signed.len())].clone(), false)
            }
        };
        let at = if rng.below(100) < 30 {
            START + 10 * DAY + rng.range(0, 2 * DAY - 1)
        } else {
            START + rng.range(0, WINDOW_DAYS * DAY - 1)
        };
        let delay = match rng.below(100) {
            0..55 => Some(rng.range(1, 24) * HOUR),
            55..80 => Some(rng.range(24, 47) * HOUR),
            80..92 => Some(rng.range(49, 120) * HOUR),
            _ => None,
        };
        let outcome = delay.map(|_| if real || rng.below(100) >= 70 { "resolved" } else { "rejected" });
        let contact = format!("09{} {} {}", rng.digits(2), rng.digits(3), rng.digits(3));
        planned.push(Planned {
            at,
            id: id.clone(),
            facility,
            kind,
            resolve_at: delay.map(|d| at + d),
            outcome,
            contact,
        });
    }
    planned.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));

    let path = dir.join("corrections.jsonl");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |cause: std::io::Error| GenError::Io { path: path.clone(), cause }
    };
    let mut out = BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
    let mut summary = CorrectionsSummary::default();
    let mut by_province: BTreeMap<String, Figures> = BTreeMap::new();
    let mut total = Figures::default();
    for p in &planned {
        let line = Line {
            at: rfc3339(p.at),
            filing: Filing {
                id_number: &p.id,
                dob: dob.get(&p.id).map_or("", String::as_str),
                facility_code: &p.facility,
                kind: p.kind,
                message: message(p.kind),
                contact: p.contact.clone(),
            },
            resolve_at: p.resolve_at.map(rfc3339),
            outcome: p.outcome,
            note: match p.outcome {
                Some("resolved") => "Đã cập nhật mũi tiêm. / The dose record was corrected.",
                Some(_) => "Hồ sơ đúng, không cần sửa. / The record is correct.",
                None => "",
            },
        };
        let text = serde_json::to_string(&line).map_err(|e| io(&path)(std::io::Error::other(e)))?;
        writeln!(out, "{text}").map_err(io(&path))?;
        summary.requests += 1;
        *summary.by_kind.entry(p.kind.to_owned()).or_default() += 1;
        for figures in [by_province.entry(p.facility[..2].to_owned()).or_default(), &mut total] {
            count(figures, p.at, p.resolve_at);
        }
    }
    out.flush().map_err(io(&path))?;
    let truth_path = dir.join("corrections_truth.json");
    let truth = serde_json::json!({"clock": rfc3339(CLOCK), "by_province": by_province, "total": total});
    std::fs::write(&truth_path, format!("{truth:#}\n")).map_err(io(&truth_path))?;
    Ok(summary)
}

/// Counts one request as a replay stopped at [`CLOCK`] must: closed if its answer came by then.
fn count(f: &mut Figures, at: i64, resolve_at: Option<i64>) {
    f.requests += 1;
    match resolve_at.filter(|r| *r <= CLOCK) {
        Some(r) => {
            f.closed += 1;
            if r > at + DUE {
                f.closed_late += 1;
            }
        }
        None if CLOCK > at + DUE => f.overdue += 1,
        None => f.open += 1,
    }
    let decided = f.closed + f.overdue;
    f.closed_within_48h_share = (decided > 0).then(|| (f.closed - f.closed_late) as f64 / decided as f64);
}

fn message(kind: &str) -> &'static str {
    match kind {
        "missing_dose" => {
            "Tôi đã tiêm mũi này nhưng chứng nhận không có. / I received this dose but it is not on my certificate."
        }
        "wrong_data" => "Ngày tiêm trên chứng nhận không đúng. / The vaccination date on my certificate is wrong.",
        _ => "Mũi tiêm này không phải của tôi. / This dose is not mine.",
    }
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
