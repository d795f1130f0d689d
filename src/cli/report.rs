//! `vaxpass report`: the Ministry's figures (SPEC §8.6) from the store, as a table or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::corrections::{self, By, GroupReport};
use crate::store;

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    vaxpass report --db sqlite://vaxpass.db                 # by province, now\n  \
    vaxpass report --by facility --json --at 2027-01-10T00:00:00Z\n\n\
    Per province (or facility): dose rows signed, rows rejected by reason, passports signed and\n\
    revoked, and citizens' correction requests: open, overdue (open past their 48 hours), closed, the\n\
    median hours to close, and the share closed within 48 hours (of the requests closed or overdue).\n\
    Counts only: no person appears. The same figures as GET /api/v1/stats.")]
pub(super) struct ReportArgs {
    /// Group by province or by facility.
    #[arg(long, value_enum, default_value_t = Group::Province)]
    by: Group,
    /// Judge "overdue" at this time instead of now (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_time)]
    at: Option<time::OffsetDateTime>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Database: sqlite://FILE or postgres://… (the service's).
    #[arg(long, value_name = "URL", default_value = store::DEFAULT_DB_URL, env = "VAXPASS_DB")]
    db: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Group {
    Province,
    Facility,
}

pub(super) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let now = args.at.unwrap_or_else(time::OffsetDateTime::now_utc).unix_timestamp();
    let mut db = store::open(&args.db).with_context(|| format!("opening the database {}", args.db))?;
    let counts = db.facility_counts()?;
    let timings = db.request_timings()?;
    let by = match args.by {
        Group::Province => By::Province,
        Group::Facility => By::Facility,
    };
    let groups = corrections::group_reports(by, &counts, &timings, now);
    let total = corrections::group_reports(By::All, &counts, &timings, now).pop();
    let out = if args.json {
        format!("{}\n", serde_json::json!({"groups": groups, "total": total}))
    } else {
        table(&groups, total.as_ref())
    };
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The human table: one line per group, then the total; the reasons below.
fn table(groups: &[GroupReport], total: Option<&GroupReport>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<22} {:>10} {:>9} {:>10} {:>8} {:>6} {:>8} {:>7} {:>9} {:>8}",
        "group",
        "province",
        "signed",
        "rejected",
        "passports",
        "revoked",
        "open",
        "overdue",
        "closed",
        "median h",
        "in 48 h"
    );
    for g in groups.iter().chain(total) {
        let _ = writeln!(
            out,
            "{:<7} {:<22} {:>10} {:>9} {:>10} {:>8} {:>6} {:>8} {:>7} {:>9} {:>8}",
            g.group,
            g.province.chars().take(22).collect::<String>(),
            g.totals.rows_signed,
            g.totals.rows_rejected,
            g.totals.passports,
            g.totals.revoked_passports,
            g.requests_open,
            g.requests_overdue,
            g.requests_closed,
            g.median_hours_to_close.map_or("-".into(), |h| format!("{h:.1}")),
            g.closed_within_48h_share.map_or("-".into(), |s| format!("{:.1} %", s * 100.0)),
        );
    }
    if let Some(t) = total
        && !t.totals.rejected_by_reason.is_empty()
    {
        out.push_str("\nrejected rows by reason:\n");
        for (reason, n) in &t.totals.rejected_by_reason {
            let _ = writeln!(out, "  {reason:<24} {n:>10}");
        }
    }
    out
}
