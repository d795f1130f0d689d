//! Grouping accepted rows into one dose series per person, with the per-person checks of
//! SPEC §5: `DUPLICATE_DOSE` (a later row, in file order, with the same product and date as
//! an accepted one) and `DOSE_SEQUENCE` (less than 14 days after the person's previous
//! accepted dose).
//!
//! A person's rows are taken in date order, ties in file order, so "previous" means the
//! accepted dose just before in time, whatever order the rows were typed in.

use rayon::slice::ParallelSliceMut as _;

use super::checks::{AcceptedRow, PersonKey};
use super::{RejectReason, Rejection};
use crate::passport::Dose;

/// Minimum days between two doses (SPEC §5 `DOSE_SEQUENCE`).
pub const MIN_DOSE_INTERVAL_DAYS: i64 = 14;

/// One person's accepted doses, oldest first, and the rows they came from.
#[derive(Debug, Clone)]
pub struct DoseSeries {
    /// Whose.
    pub person: PersonKey,
    /// The doses, date order.
    pub doses: Vec<Dose>,
    /// `record_id`s of the rows, in the same order.
    pub record_ids: Vec<String>,
}

/// Groups `rows` by person (sorting them in place) and applies the per-person checks.
pub fn group(mut rows: Vec<AcceptedRow>) -> (Vec<DoseSeries>, Vec<Rejection>) {
    rows.par_sort_unstable_by(|a, b| {
        a.person.cmp(&b.person).then(a.dose.date.cmp(&b.dose.date)).then(a.order.cmp(&b.order))
    });
    let mut series: Vec<DoseSeries> = Vec::new();
    let mut rejections = Vec::new();
    for row in rows {
        let same_person = series.last().is_some_and(|s| s.person == row.person);
        if !same_person {
            series.push(DoseSeries { person: row.person, doses: vec![row.dose], record_ids: vec![row.record_id] });
            continue;
        }
        let Some(current) = series.last_mut() else { continue };
        let duplicate = current.doses.iter().any(|d| d.date == row.dose.date && d.vaccine.mp == row.dose.vaccine.mp);
        let too_soon =
            current.doses.last().is_some_and(|prev| (row.dose.date - prev.date).whole_days() < MIN_DOSE_INTERVAL_DAYS);
        if duplicate {
            rejections.push(Rejection {
                record_id: row.record_id,
                reason: RejectReason::DuplicateDose,
                detail: "same person, product and date as an accepted row".into(),
                suggestion: String::new(),
            });
        } else if too_soon {
            rejections.push(Rejection {
                record_id: row.record_id,
                reason: RejectReason::DoseSequence,
                detail: format!("less than {MIN_DOSE_INTERVAL_DAYS} days after the previous accepted dose"),
                suggestion: String::new(),
            });
        } else {
            current.doses.push(row.dose);
            current.record_ids.push(row.record_id);
        }
    }
    (series, rejections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passport::vaccines;
    use time::macros::date;

    fn row(order: u64, person: u32, vaccine: &str, d: time::Date) -> AcceptedRow {
        AcceptedRow {
            order,
            record_id: format!("R{order}"),
            person: PersonKey::Registry(person),
            dose: Dose { vaccine: vaccines::lookup(vaccine).unwrap(), date: d },
        }
    }

    #[test]
    fn later_duplicate_and_too_soon_dose_are_rejected() {
        let (series, rej) = group(vec![
            row(0, 1, "AstraZeneca", date!(2021 - 07 - 01)),
            row(1, 2, "Pfizer", date!(2021 - 08 - 01)),
            row(2, 1, "Astra Zeneca", date!(2021 - 07 - 01)),
            row(3, 1, "AstraZeneca", date!(2021 - 07 - 10)),
            row(4, 1, "AstraZeneca", date!(2021 - 09 - 20)),
        ]);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].record_ids, ["R0", "R4"]);
        let got: Vec<(&str, RejectReason)> = rej.iter().map(|r| (r.record_id.as_str(), r.reason)).collect();
        assert_eq!(got, [("R2", RejectReason::DuplicateDose), ("R3", RejectReason::DoseSequence)]);
    }

    #[test]
    fn exactly_14_days_is_accepted() {
        let (series, rej) =
            group(vec![row(0, 1, "Abdala", date!(2021 - 09 - 01)), row(1, 1, "Abdala", date!(2021 - 09 - 15))]);
        assert!(rej.is_empty());
        assert_eq!(series[0].doses.len(), 2);
    }
}
