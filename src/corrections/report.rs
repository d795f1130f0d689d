//! The Ministry's figures (SPEC §8.6): per province or facility, rows signed and rejected by
//! reason, passports signed and revoked, and how the 48-hour rule is kept. Counts only: no
//! person appears in any of them.
//!
//! The signing counts come from per-run counters (a few rows per run, kept by the store with
//! running totals per facility), not from scanning passports: `GET /api/v1/stats` must answer
//! in < 200 ms over a million passports (issue #10). Passports are counted by the store itself,
//! as those stored under the run's id: a passport a re-run reuses, or one a killed run stored
//! before it was started again, is then counted once, by the run that stored it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Status;

/// How the figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// By province (the first two digits of the facility code).
    #[default]
    Province,
    /// By facility.
    Facility,
    /// Everything in one group, `all` (the national total).
    All,
}

/// A counter of one facility, from one run or summed over all runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRow {
    /// PPNNN.
    pub facility_code: String,
    /// `signed_rows`, `passports`, `revoked`, `retracted_rows` or `rejected:REASON`.
    pub counter: String,
    /// How many.
    pub n: u64,
}

/// What a run adds to the counters: rows signed, rejected by reason and records retracted,
/// for the facility that ran it; passports revoked, for the facility whose passport it was
/// (read from the UVCI).
pub fn run_counts(facility_code: &str, tally: &RunTally<'_>) -> Vec<CountRow> {
    let mut rows = Vec::new();
    push(&mut rows, facility_code, "signed_rows", tally.signed_rows);
    for (reason, n) in tally.rejected {
        push(&mut rows, facility_code, &format!("rejected:{reason}"), *n);
    }
    push(&mut rows, facility_code, "retracted_rows", tally.retracted);
    revoked_counts(&mut rows, facility_code, tally.revoked);
    rows
}

/// What a signing or retraction run did, as the reports count it (the gate's summaries give
/// it: `gate::Summary::tally`, `gate::Retraction::tally`).
#[derive(Debug, Clone, Copy)]
pub struct RunTally<'a> {
    /// Rows signed.
    pub signed_rows: u64,
    /// Rows rejected, by reason code.
    pub rejected: &'a BTreeMap<String, u64>,
    /// Records retracted.
    pub retracted: u64,
    /// UVCIs the run revoked.
    pub revoked: &'a [String],
}

fn push(rows: &mut Vec<CountRow>, facility: &str, counter: &str, n: u64) {
    if n > 0 {
        rows.push(CountRow { facility_code: facility.to_owned(), counter: counter.to_owned(), n });
    }
}

/// Revoked passports counted against the facility their UVCI names (a UVCI that names none
/// against the run's facility).
fn revoked_counts(rows: &mut Vec<CountRow>, facility_code: &str, uvcis: &[String]) {
    let mut revoked: BTreeMap<String, u64> = BTreeMap::new();
    for uvci in uvcis {
        let facility = crate::passport::Uvci::parse(uvci).ok().and_then(|u| u.facility_code().map(str::to_owned));
        *revoked.entry(facility.unwrap_or_else(|| facility_code.to_owned())).or_default() += 1;
    }
    for (facility, n) in &revoked {
        push(rows, facility, "revoked", *n);
    }
}

/// A request's times, as the reports need them (no person, no message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTiming {
    /// The facility the request names.
    pub facility_code: String,
    /// Where it stands.
    pub status: Status,
    /// Filed at.
    pub created_at: i64,
    /// Due at.
    pub due_at: i64,
    /// Closed at.
    pub closed_at: Option<i64>,
}

/// The signing totals of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Dose rows signed into a passport.
    pub rows_signed: u64,
    /// Dose rows rejected.
    pub rows_rejected: u64,
    /// Rejected rows by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Passports signed.
    pub passports: u64,
    /// Passports revoked (wrong content: SPEC §8.2).
    pub revoked_passports: u64,
}

/// One row of `GET /api/v1/stats` and `vaxpass report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The province's two digits or the facility's code.
    pub group: String,
    /// The province's name (or the ministry's, for facilities coded 97 and 98).
    pub province: String,
    /// Signing figures.
    #[serde(flatten)]
    pub totals: Totals,
    /// Requests open and not yet due.
    pub requests_open: u64,
    /// Requests open past their due time.
    pub requests_overdue: u64,
    /// Requests closed (resolved or rejected).
    pub requests_closed: u64,
    /// Of those, closed after their due time.
    pub requests_closed_late: u64,
    /// Median hours from filing to closing, over closed requests.
    pub median_hours_to_close: Option<f64>,
    /// Requests closed within 48 hours, as a share of the requests whose 48 hours are over or
    /// which are closed (closed + overdue): an overdue request counts against the facility
    /// before it is closed, not only once it is closed late.
    pub closed_within_48h_share: Option<f64>,
}

/// Groups the counters and request timings at `now`, sorted by group.
pub fn group_reports(by: By, counts: &[CountRow], timings: &[RequestTiming], now: i64) -> Vec<GroupReport> {
    let key = |facility: &str| -> String {
        match by {
            By::Province => facility.get(..2).unwrap_or(facility).to_owned(),
            By::Facility => facility.to_owned(),
            By::All => "all".to_owned(),
        }
    };
    #[derive(Default)]
    struct Acc {
        totals: Totals,
        open: u64,
        overdue: u64,
        closed: u64,
        late: u64,
        hours: Vec<f64>,
    }
    let mut groups: HashMap<String, Acc> = HashMap::new();
    for row in counts {
        let acc = groups.entry(key(&row.facility_code)).or_default();
        let t = &mut acc.totals;
        match row.counter.as_str() {
            "signed_rows" => t.rows_signed += row.n,
            "passports" => t.passports += row.n,
            "revoked" => t.revoked_passports += row.n,
            other => {
                if let Some(reason) = other.strip_prefix("rejected:") {
                    t.rows_rejected += row.n;
                    *t.rejected_by_reason.entry(reason.to_owned()).or_default() += row.n;
                }
            }
        }
    }
    for r in timings {
        let acc = groups.entry(key(&r.facility_code)).or_default();
        match (r.status, r.closed_at) {
            (Status::Open, _) | (_, None) => {
                if now > r.due_at {
                    acc.overdue += 1;
                } else {
                    acc.open += 1;
                }
            }
            (_, Some(closed)) => {
                acc.closed += 1;
                if closed > r.due_at {
                    acc.late += 1;
                }
                acc.hours.push((closed - r.created_at) as f64 / 3600.0);
            }
        }
    }
    let mut out: Vec<GroupReport> = groups
        .into_iter()
        .map(|(group, mut acc)| {
            let decided = acc.closed + acc.overdue;
            GroupReport {
                province: crate::provinces::prefix_name(group.get(..2).unwrap_or("")).unwrap_or("").to_owned(),
                group,
                totals: acc.totals,
                requests_open: acc.open,
                requests_overdue: acc.overdue,
                requests_closed: acc.closed,
                requests_closed_late: acc.late,
                median_hours_to_close: median(&mut acc.hours),
                closed_within_48h_share: (decided > 0).then(|| (acc.closed - acc.late) as f64 / decided as f64),
            }
        })
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out
}

/// The median (mean of the middle two for an even count), rounded to 0.1 hour.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let m = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    Some((m * 10.0).round() / 10.0)
}
