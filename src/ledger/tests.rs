use time::macros::date;

use super::*;
use crate::passport::vaccines;

fn entry(id: &str, person: u8, vaccine: &str, d: Date) -> LedgerDose {
    LedgerDose {
        record_id: id.into(),
        person: vec![person],
        facility_code: "01001".into(),
        dose: Dose { vaccine: vaccines::lookup(vaccine).unwrap(), date: d },
    }
}

fn candidate(order: u64, e: LedgerDose, ledger: &[LedgerDose]) -> Candidate {
    let kind = classify(&e, ledger.iter().find(|l| l.record_id == e.record_id));
    Candidate { order, entry: e, kind }
}

fn ids(doses: &[LedgerDose]) -> Vec<&str> {
    doses.iter().map(|d| d.record_id.as_str()).collect()
}

#[test]
fn classify_new_known_and_corrected() {
    let stored = entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 01));
    assert_eq!(classify(&stored, None), RowKind::New);
    assert_eq!(classify(&stored.clone(), Some(&stored)), RowKind::Known);
    // Another facility typing the same dose is still the same dose.
    let elsewhere = LedgerDose { facility_code: "79001".into(), ..stored.clone() };
    assert_eq!(classify(&elsewhere, Some(&stored)), RowKind::Known);
    for changed in [
        entry("R1", 2, "AstraZeneca", date!(2021 - 08 - 01)),
        entry("R1", 1, "Pfizer", date!(2021 - 08 - 01)),
        entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 02)),
    ] {
        assert_eq!(classify(&changed, Some(&stored)), RowKind::Correction { previous: stored.clone() });
    }
}

#[test]
fn a_booster_alone_yields_the_whole_series() {
    let ledger = vec![
        entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 01)),
        entry("R2", 1, "AstraZeneca", date!(2021 - 10 - 01)),
    ];
    let booster = candidate(0, entry("R3", 1, "Pfizer", date!(2022 - 03 - 01)), &ledger);
    let m = merge(ledger.clone(), &[booster]);
    assert_eq!(ids(&m.doses), ["R1", "R2", "R3"]);
    assert_eq!(m.accepted, [0]);
    assert!(m.rejected.is_empty());
}

#[test]
fn duplicates_and_too_close_doses_are_judged_against_the_ledger() {
    let ledger = vec![entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 01))];
    let rows = [
        // The same dose under another record id.
        candidate(0, entry("R9", 1, "Astra Zeneca", date!(2021 - 08 - 01)), &ledger),
        // A late entry 10 days *before* a kept dose.
        candidate(1, entry("R8", 1, "Pfizer", date!(2021 - 07 - 22)), &ledger),
        // The same record again, unchanged.
        candidate(2, entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 01)), &ledger),
        // Exactly 14 days after: fine.
        candidate(3, entry("R7", 1, "Pfizer", date!(2021 - 08 - 15)), &ledger),
    ];
    let m = merge(ledger.clone(), &rows);
    assert_eq!(m.rejected, [(0, SeriesRejection::Duplicate), (1, SeriesRejection::TooSoon)]);
    assert_eq!(m.accepted, [2, 3]);
    assert_eq!(ids(&m.doses), ["R1", "R7"]);
}

#[test]
fn without_a_ledger_the_earlier_of_two_close_doses_is_kept() {
    let rows = [
        candidate(0, entry("B", 1, "Pfizer", date!(2021 - 08 - 10)), &[]),
        candidate(1, entry("A", 1, "Pfizer", date!(2021 - 08 - 01)), &[]),
        candidate(2, entry("C", 1, "Pfizer", date!(2021 - 08 - 01)), &[]),
    ];
    let m = merge(Vec::new(), &rows);
    assert_eq!(ids(&m.doses), ["A"]);
    assert_eq!(m.rejected, [(0, SeriesRejection::TooSoon), (2, SeriesRejection::Duplicate)]);
}

#[test]
fn the_same_record_twice_in_one_batch_keeps_the_first() {
    let rows = [
        candidate(0, entry("R1", 1, "Pfizer", date!(2021 - 08 - 01)), &[]),
        candidate(1, entry("R1", 1, "Pfizer", date!(2021 - 12 - 01)), &[]),
    ];
    let m = merge(Vec::new(), &rows);
    assert_eq!(ids(&m.doses), ["R1"]);
    assert_eq!(m.rejected, [(1, SeriesRejection::Duplicate)]);
}

fn record(doses: &[&LedgerDose], holder: &[u8], status: PassportStatus) -> PassportRecord {
    PassportRecord {
        uvci: "URN:UVCI:01:VN:01001/X".into(),
        person: vec![1],
        holder_hash: holder.to_vec(),
        content_hash: vec![0],
        doses: doses.iter().map(|d| CoveredDose::of(d)).collect(),
        status,
        kid: String::new(),
        hc1: String::new(),
        signed_at: 0,
    }
}

#[test]
fn an_earlier_passport_is_superseded_only_when_all_it_says_is_still_true() {
    let d1 = entry("R1", 1, "AstraZeneca", date!(2021 - 08 - 01));
    let d2 = entry("R2", 1, "AstraZeneca", date!(2021 - 10 - 01));
    let earlier = record(&[&d1], b"holder", PassportStatus::Current);
    let now = [d1.clone(), d2.clone()];
    assert_eq!(fate(&earlier, &now, Some(b"holder")), PassportStatus::Superseded);
    // A corrected name or birth date.
    assert_eq!(fate(&earlier, &now, Some(b"other")), PassportStatus::Revoked);
    // A corrected date of a dose it carries.
    let moved = LedgerDose { dose: Dose { date: date!(2021 - 08 - 02), ..d1.dose }, ..d1.clone() };
    assert_eq!(fate(&earlier, &[moved, d2.clone()], Some(b"holder")), PassportStatus::Revoked);
    // A retracted dose, or one reassigned to someone else (no new passport at all).
    assert_eq!(fate(&earlier, std::slice::from_ref(&d2), Some(b"holder")), PassportStatus::Revoked);
    assert_eq!(fate(&earlier, &[], None), PassportStatus::Revoked);
    // Revoked stays revoked.
    let revoked = record(&[&d1], b"holder", PassportStatus::Revoked);
    assert_eq!(fate(&revoked, &now, Some(b"holder")), PassportStatus::Revoked);
}

#[test]
fn stored_doses_parse_back() {
    let d = parse_dose("2021-08-01", "EU/1/21/1529").unwrap();
    assert_eq!(iso(d.date), "2021-08-01");
    assert!(parse_dose("2021-08-01", "AstraZeneca").is_none(), "only the mp code is stored");
    assert!(parse_dose("01/08/2021", "EU/1/21/1529").is_none());
}

#[test]
fn says_agrees_with_comparing_covered_doses() {
    let base = entry("R1", 1, "Pfizer", date!(2021 - 01 - 01));
    let others = [
        entry("R1", 1, "Pfizer", date!(2021 - 01 - 02)),
        entry("R1", 1, "Moderna", date!(2021 - 01 - 01)),
        entry("R2", 1, "Pfizer", date!(2021 - 01 - 01)),
        entry("R1", 1, "Pfizer", date!(2021 - 10 - 01)),
        entry("R1", 1, "Pfizer", date!(2031 - 01 - 01)),
    ];
    let mut d = date!(2020 - 12 - 25);
    for _ in 0..800 {
        let e = LedgerDose { dose: Dose { date: d, ..base.dose }, ..base.clone() };
        let c = CoveredDose::of(&e);
        assert!(c.says(&e), "{c:?}");
        for o in &others {
            assert_eq!(c.says(o), c == CoveredDose::of(o), "{c:?} / {o:?}");
        }
        d = d.next_day().unwrap();
    }
}
