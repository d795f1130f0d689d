//! The SPEC §5 rules, one test each, through `check_row` and `run`.

use time::macros::{date, datetime};

use super::*;

const REGISTRY: &str = "id_number,old_id,full_name,dob,sex
001090000123,012345678,Nguyễn Văn An,1990-05-02,M
001185000456,,Trần Thị Bình,1985,F
001160000789,012345678,Phạm Văn Cường,1960-03,M
079215001234,,Lê Hoàng Minh,2015-07-01,M
001301000111,,Hoà Thị Thuỷ,2001-11-30,F
001321000222,,Đỗ Gia Hân,2021-06-01,F
";

const HEADER: &str =
    "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n";

fn registry() -> Registry {
    Registry::load(REGISTRY.as_bytes(), "registry.csv").unwrap()
}

/// Checks one row (given after the header) against the registry at 2022-06-01.
fn check(line: &str) -> Result<checks::AcceptedRow, Rejection> {
    let text = format!("{HEADER}{line}\n");
    let mut reader = DoseReader::new(text.as_bytes(), "doses.csv").unwrap();
    let row = reader.next_row().unwrap().unwrap()?;
    checks::check_row(&row, 0, Some(&registry()), date!(2022 - 06 - 01)).map(|(a, _)| a)
}

#[track_caller]
fn assert_rejected(line: &str, reason: RejectReason, suggestion: &str) {
    let r = check(line).unwrap_err();
    assert_eq!((r.reason, r.suggestion.as_str()), (reason, suggestion), "{}", r.detail);
}

#[track_caller]
fn assert_accepted(line: &str) -> checks::AcceptedRow {
    match check(line) {
        Ok(a) => a,
        Err(r) => panic!("rejected: {r:?}"),
    }
}

#[test]
fn exact_row_is_accepted() {
    let a = assert_accepted("R,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2021-08-01");
    assert_eq!(a.person, PersonKey::Registry(0));
}

#[test]
fn missing_diacritics_caps_and_spacing_match() {
    assert_accepted("R,01001,001090000123,NGUYEN  VAN AN,2/5/1990,nam,,,Pfizer,,,2021-08-01");
    assert_accepted("R,01001,001301000111,Hòa Thị Thủy,30/11/2001,Nữ,,,Pfizer,,,2021-08-01");
}

#[test]
fn name_mismatch_suggests_the_registry_name() {
    assert_rejected(
        "R,01001,001090000123,Nguyễn Văn Ân,02/05/1990,Nam,,,Pfizer,,,2021-08-01",
        RejectReason::NameMismatch,
        "Nguyễn Văn An",
    );
    assert_rejected(
        "R,01001,001090000123,Văn An Nguyễn,02/05/1990,Nam,,,Pfizer,,,2021-08-01",
        RejectReason::NameMismatch,
        "Nguyễn Văn An",
    );
}

#[test]
fn dob_mismatch_suggests_the_registry_date() {
    // Day and month swapped.
    assert_rejected(
        "R,01001,001090000123,Nguyễn Văn An,05/02/1990,Nam,,,Pfizer,,,2021-08-01",
        RejectReason::DobMismatch,
        "1990-05-02",
    );
}

#[test]
fn placeholder_first_of_january_matches_a_year_only_registry_date() {
    assert_accepted("R,01001,001185000456,Trần Thị Bình,01/01/1985,F,,,Pfizer,,,2021-08-01");
    assert_rejected(
        "R,01001,001185000456,Trần Thị Bình,02/01/1985,F,,,Pfizer,,,2021-08-01",
        RejectReason::DobMismatch,
        "1985",
    );
}

#[test]
fn sex_mismatch_suggests_the_registry_sex() {
    // A CCCD's G digit says male, so the CCCD check fires first for a 12-digit number;
    // through the old CMND the registry comparison is reached.
    assert_rejected(
        "R,01001,012345678,Nguyễn Văn An,02/05/1990,Nữ,,,Pfizer,,,2021-08-01",
        RejectReason::SexMismatch,
        "M",
    );
}

#[test]
fn shared_old_cmnd_goes_to_the_person_who_matches() {
    let a = assert_accepted("R,01001,012345678,Phạm Văn Cường,01/03/1960,M,,,Pfizer,,,2021-08-01");
    assert_eq!(a.person, PersonKey::Registry(2));
    // No full match: compared with the first in registry order.
    assert_rejected(
        "R,01001,012345678,Phạm Văn Cướng,01/03/1960,M,,,Pfizer,,,2021-08-01",
        RejectReason::NameMismatch,
        "Nguyễn Văn An",
    );
}

#[test]
fn cmnd_and_cccd_rows_of_one_person_group_together() {
    let a = assert_accepted("R,01001,012345678,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01");
    let b = assert_accepted("R,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-10-01");
    assert_eq!(a.person, b.person);
}

#[test]
fn borrowed_parent_number_is_never_accepted() {
    // A child typed with a parent's CCCD: the number says 1985/female, the row 2016.
    assert_rejected(
        "R,01001,001185000456,Trần Bảo Ngọc,01/01/2016,Nữ,,,Pfizer,,,2021-12-01",
        RejectReason::IdInconsistent,
        "",
    );
    // Through an old CMND the number encodes nothing, so the registry comparison stops it.
    assert_rejected(
        "R,01001,012345678,Nguyễn Văn Bảo,01/01/2016,Nam,,,Pfizer,,,2021-12-01",
        RejectReason::NameMismatch,
        "Nguyễn Văn An",
    );
}

#[test]
fn id_repairs_and_failures_follow_the_spec() {
    assert_accepted("R,01001,CCCD: 001.090.000.123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01");
    assert_accepted("R,01001,１０９００００１２３,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01");
    assert_accepted("R,01001,1090000123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01");
    assert_rejected("R,01001,,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01", RejectReason::IdMissing, "");
    assert_rejected("R,01001,chưa có,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01", RejectReason::IdMissing, "");
    assert_rejected(
        "R,01001,000000000000,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01",
        RejectReason::IdMissing,
        "",
    );
    assert_rejected(
        "R,01001,1.0900E+11,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01",
        RejectReason::IdBadFormat,
        "",
    );
    assert_rejected(
        "R,01001,003090000123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01",
        RejectReason::IdInconsistent,
        "",
    );
    assert_rejected(
        "R,01001,001090000124,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-08-01",
        RejectReason::NotInRegistry,
        "",
    );
}

#[test]
fn vaccine_and_date_checks_come_last() {
    assert_rejected(
        "R,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,Nanocovax,,,2021-08-01",
        RejectReason::UnknownVaccine,
        "",
    );
    for date in ["2022-06-02", "2021-03-07", "2021-13-01", "2021-08"] {
        assert_rejected(
            &format!("R,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,{date}"),
            RejectReason::BadDate,
            "",
        );
    }
    // Before birth: the registry's date of birth counts.
    assert_rejected("R,01001,001321000222,Đỗ Gia Hân,01/06/2021,F,,,Pfizer,,,2021-05-01", RejectReason::BadDate, "");
}

#[test]
fn foreigners_skip_the_registry() {
    let a = assert_accepted("R,01001,M1234567,John  Smith,1980-01-01,male,us,,Moderna,,,2021-10-01");
    assert_eq!(a.person, PersonKey::Foreign("US".into(), "M1234567".into()));
    assert_rejected("R,01001,12,John Smith,1980-01-01,male,US,,Moderna,,,2021-10-01", RejectReason::IdBadFormat, "");
}

/// Outputs in memory, the ledger in an in-memory SQLite store.
struct MemorySink {
    rejected: Vec<Rejection>,
    passports: Vec<SignedPassport>,
    store: Box<dyn crate::store::Store>,
}

impl MemorySink {
    fn new() -> MemorySink {
        MemorySink { rejected: vec![], passports: vec![], store: crate::store::open("sqlite://:memory:").unwrap() }
    }
}

impl BatchSink for MemorySink {
    fn run_id(&self) -> &str {
        "test-batch"
    }
    fn ledger(&mut self) -> &mut dyn crate::ledger::Ledger {
        &mut self.store
    }
    fn rejected(&mut self, r: &Rejection) -> Result<(), GateError> {
        self.rejected.push(r.clone());
        Ok(())
    }
    fn signed(&mut self, passports: Vec<SignedPassport>, _fresh: Vec<bool>) -> Result<(), GateError> {
        self.passports.extend(passports);
        Ok(())
    }
}

fn facility() -> SigningFacility {
    SigningFacility::new(
        super::FacilitySigner::example("01001"),
        DerivationKey::new(&[7; 32]),
        datetime!(2027-01-10 00:00 UTC),
    )
}

fn run_batch(doses: &str, sink: &mut MemorySink) -> Summary {
    let text = format!("{HEADER}{doses}");
    let reader = DoseReader::new(text.as_bytes(), "doses.csv").unwrap();
    run(reader, Some(&registry()), &facility(), sink).unwrap()
}

const BATCH: &str = "R1,01001,001090000123,Nguyen Van An,02/05/1990,Nam,,,AstraZeneca,,,01/07/2021
R2,01001,012345678,Nguyễn Văn An,02/05/1990,Nam,,,Astra Zeneca,,,2021-09-20
R3,01001,001185000456,Trần Thị Bình,01/01/1985,Nữ,,,Pfizer,,,2021-08-01
R4,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,AstraZeneca,,,2021-07-01
R5,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,Pfizer,,,2021-09-25
R6,01001,001090000123,Nguyễn Văn An,02/05/1990,X,,,Pfizer,,,2021-09-25
R7,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,Moderna,,,2022-01-15
";

#[test]
fn every_row_ends_in_exactly_one_place_and_counts_reconcile() {
    let mut sink = MemorySink::new();
    let s = run_batch(BATCH, &mut sink);
    assert_eq!(s.input_rows, 7);
    assert_eq!(s.input_rows, s.signed_rows + s.rejected_rows);
    let mut ids: Vec<String> = sink.rejected.iter().map(|r| r.record_id.clone()).collect();
    ids.extend(sink.passports.iter().flat_map(|p| p.record_ids.clone()));
    ids.sort();
    assert_eq!(ids, ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]);
    assert_eq!(s.passports, 2);
    assert_eq!(s.by_reason.get("DUPLICATE_DOSE"), Some(&1));
    assert_eq!(s.by_reason.get("DOSE_SEQUENCE"), Some(&1));
    assert_eq!(s.by_reason.get("BAD_ROW"), Some(&1));
}

#[test]
fn passport_carries_the_registry_name_and_the_whole_series() {
    let mut sink = MemorySink::new();
    run_batch(BATCH, &mut sink);
    let an = sink.passports.iter().find(|p| p.id_number == "001090000123").unwrap();
    assert_eq!(an.record_ids, ["R1", "R2", "R7"]);
    let claims = crate::passport::decode(&an.hc1).unwrap().claims().unwrap();
    assert_eq!(claims.dcc["nam"]["fn"], "Nguyễn");
    assert_eq!(claims.dcc["nam"]["gn"], "Văn An");
    assert_eq!(claims.dcc["dob"], "1990-05-02");
    assert_eq!((claims.dcc["v"][0]["dn"].as_u64(), claims.dcc["v"][0]["sd"].as_u64()), (Some(3), Some(3)));
    assert_eq!(claims.history.unwrap().as_array().unwrap().len(), 2);
    let binh = sink.passports.iter().find(|p| p.id_number == "001185000456").unwrap();
    let claims = crate::passport::decode(&binh.hc1).unwrap().claims().unwrap();
    assert_eq!(claims.dcc["dob"], "1985", "the registry's date, not the typed placeholder");
}

#[test]
fn rerun_reuses_every_passport_with_the_same_uvci_and_claim_code() {
    let mut sink = MemorySink::new();
    run_batch(BATCH, &mut sink);
    let first = std::mem::take(&mut sink.passports);
    let s = run_batch(BATCH, &mut sink);
    assert_eq!(s.reused, 2);
    for (a, b) in first.iter().zip(&sink.passports) {
        assert_eq!((&a.uvci, &a.hc1, &a.claim_code), (&b.uvci, &b.hc1, &b.claim_code));
    }
}

#[test]
fn empty_input_gives_an_empty_valid_summary() {
    let mut sink = MemorySink::new();
    let s = run_batch("", &mut sink);
    let phases: Vec<&str> = s.phases.iter().map(|(name, _)| *name).collect();
    assert_eq!(phases.first(), Some(&"read and check rows"));
    assert_eq!(phases.last(), Some(&"  of which the writer was busy recording"));
    assert_eq!(Summary { phases: Vec::new(), phase_peaks: Vec::new(), ..s }, Summary::default());
}

#[test]
fn new_key_or_no_history_gives_a_new_passport_and_a_rerun_the_same() {
    let uvcis = |f: SigningFacility| {
        let mut sink = MemorySink::new();
        let text = format!("{HEADER}{BATCH}");
        run(DoseReader::new(text.as_bytes(), "doses.csv").unwrap(), Some(&registry()), &f, &mut sink).unwrap();
        let mut u: Vec<String> = sink.passports.into_iter().map(|p| p.uvci).collect();
        u.sort();
        u
    };
    let first = uvcis(facility());
    assert_eq!(uvcis(facility()), first, "a re-run maps to the same UVCIs");
    let mut no_history = facility();
    no_history.include_history = false;
    assert!(uvcis(no_history).iter().all(|u| !first.contains(u)));
    // The facility's code with another key and DSC (a key rotation).
    let mut other_key = facility();
    let rotated = super::FacilitySigner::example("01100");
    (other_key.signer.key, other_key.signer.cert) = (rotated.key, rotated.cert);
    assert!(uvcis(other_key).iter().all(|u| !first.contains(u)), "a key rotation issues new passports");
}

// Issue #8, item 13: https://github.com/vaxpass/vaxpass/issues/8
#[test]
fn name_part_over_80_characters_is_bad_row_naming_the_part() {
    let long = "Nguyễn".repeat(14); // 84 characters, one word
    let r = check(&format!("R,01001,001090000123,{long} Văn An,02/05/1990,Nam,,,Pfizer,,,2021-08-01")).unwrap_err();
    assert_eq!(r.reason, RejectReason::BadRow);
    assert_eq!(r.detail, "full_name: fn would be 84 characters, more than the DCC schema's 80");
    let given = "Văn ".repeat(21); // 83 characters once trimmed
    let r = check(&format!("R,01001,001090000123,Nguyễn {given},02/05/1990,Nam,,,Pfizer,,,2021-08-01")).unwrap_err();
    assert_eq!(
        (r.reason, r.detail.as_str()),
        (RejectReason::BadRow, "full_name: gn would be 83 characters, more than the DCC schema's 80")
    );
    // Exactly 80 still passes this check (and then meets the registry).
    let eighty = "A".repeat(80);
    let r = check(&format!("R,01001,001090000123,{eighty} {eighty},02/05/1990,Nam,,,Pfizer,,,2021-08-01")).unwrap_err();
    assert_eq!(r.reason, RejectReason::NameMismatch);
}

#[test]
fn the_3200_character_name_of_the_issue_is_not_signed() {
    let mut sink = MemorySink::new();
    let name = format!("Lê {}", "Ánh ".repeat(800));
    let doses = format!("X1,01001,M1234567,{name},1980-01-01,male,US,,Moderna,,,2021-10-01\n");
    let s = run_batch(&doses, &mut sink);
    assert_eq!((s.signed_rows, s.rejected_rows, s.passports), (0, 1, 0));
    assert_eq!(sink.rejected[0].reason, RejectReason::BadRow);
    assert_eq!(sink.rejected[0].detail, "full_name: gn would be 3199 characters, more than the DCC schema's 80");
}

#[test]
fn passport_too_long_for_a_qr_code_at_level_q_is_not_signed() {
    // A foreigner with a dose every 14 days for two years: names within bounds, but the
    // history makes a passport no QR code at level Q holds.
    let rows = |n: i64, id: &str| -> String {
        (0..n)
            .map(|i| {
                let d = date!(2021 - 04 - 01) + time::Duration::days(14 * i);
                let vaccine = ["Pfizer", "Moderna", "AstraZeneca", "Vero Cell"][(i % 4) as usize];
                format!("{id}-{i},01001,{id},Émilie Ngọc Ánh Dupont-Durand,1980-01-01,F,FR,,{vaccine},,,{d}\n")
            })
            .collect()
    };
    let mut sink = MemorySink::new();
    let s = run_batch(&(rows(60, "P1234567") + &rows(4, "Q1234567")), &mut sink);
    assert_eq!(s.input_rows, 64);
    assert_eq!((s.signed_rows, s.rejected_rows, s.passports), (4, 60, 1), "{:?}", sink.rejected.first());
    assert_eq!(s.by_reason.get("BAD_ROW"), Some(&60));
    let r = &sink.rejected[0];
    assert!(r.record_id.starts_with("P1234567-"));
    assert!(
        r.detail.starts_with("the passport would be about ")
            && r.detail.ends_with(" characters; a QR code at error correction level Q holds 1852"),
        "{}",
        r.detail
    );
    assert!(sink.passports[0].hc1.len() <= crate::passport::MAX_HC1_LEN_Q);
    assert_eq!(sink.store.passport_count().unwrap(), 1, "the over-long passport is not recorded");
}

// SPEC §8.4, re-issued identity numbers.
const REISSUED_REGISTRY: &str = "id_number,old_id,full_name,dob,sex,previous_ids
001090000123,,Nguyễn Văn An,1990-05-02,M,001091000123;001190000123
001185000456,,Trần Thị Bình,1985,F,
";

const REISSUED_ROWS: &str = "R1,01001,001091000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01
R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-09-20
R3,01001,001190000123,Nguyen Van An,02/05/1990,Nam,,,Pfizer,,,2022-01-10
R4,01001,001191000999,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2022-01-10
R5,01001,001091000123,Nguyễn Văn Ân,02/05/1990,Nam,,,Pfizer,,,2022-02-10
";

fn run_with_registry(registry: &str, doses: &str) -> (Summary, MemorySink) {
    let registry = Registry::load(registry.as_bytes(), "registry.csv").unwrap();
    let mut sink = MemorySink::new();
    let text = format!("{HEADER}{doses}");
    let s =
        run(DoseReader::new(text.as_bytes(), "doses.csv").unwrap(), Some(&registry), &facility(), &mut sink).unwrap();
    (s, sink)
}

#[test]
fn rows_typed_with_earlier_numbers_join_the_current_passport() {
    let (s, sink) = run_with_registry(REISSUED_REGISTRY, REISSUED_ROWS);
    assert_eq!((s.input_rows, s.signed_rows, s.passports), (5, 3, 1));
    let p = &sink.passports[0];
    assert_eq!(p.id_number, "001090000123", "the current number, not the one typed");
    assert_eq!(p.record_ids, ["R1", "R2", "R3"]);
    assert_eq!(p.id_hash, facility().secret.id_hash("001090000123"));
    let claims = crate::passport::decode(&p.hc1).unwrap().claims().unwrap();
    assert_eq!(claims.dcc["v"][0]["dn"], 3);
    let reasons: Vec<(&str, RejectReason)> = sink.rejected.iter().map(|r| (r.record_id.as_str(), r.reason)).collect();
    // R4's number is nobody's earlier number: its digits are still checked. R5 came with an
    // earlier number but another name: the registry comparison still runs.
    assert_eq!(reasons, [("R4", RejectReason::IdInconsistent), ("R5", RejectReason::NameMismatch)]);
}

#[test]
fn without_the_previous_ids_column_earlier_numbers_are_checked_as_before() {
    let registry = REISSUED_REGISTRY
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_owned() + "\n")
        .collect::<String>();
    assert!(registry.starts_with("id_number,old_id,full_name,dob,sex\n"));
    let (s, sink) = run_with_registry(&registry, REISSUED_ROWS);
    assert_eq!((s.signed_rows, s.passports), (1, 1));
    let reasons: Vec<(&str, RejectReason)> = sink.rejected.iter().map(|r| (r.record_id.as_str(), r.reason)).collect();
    assert_eq!(
        reasons,
        [
            ("R1", RejectReason::IdInconsistent),
            ("R3", RejectReason::IdInconsistent),
            ("R4", RejectReason::IdInconsistent),
            ("R5", RejectReason::IdInconsistent),
        ]
    );
}

#[test]
fn persons_per_commit_follows_the_memory_budget_within_its_bounds() {
    // The default budget gets the larger chunks the follow-up benchmark measured faster.
    assert_eq!(persons_per_commit(DEFAULT_MEMORY_BUDGET), 87_381);
    // 1.5 GiB (the 10-million-person run's budget) and below keep today's chunk.
    assert_eq!(persons_per_commit(3 << 29), PERSONS_PER_COMMIT);
    assert_eq!(persons_per_commit(256 << 20), PERSONS_PER_COMMIT);
    assert_eq!(persons_per_commit(0), PERSONS_PER_COMMIT);
    // A large budget stops at the bound.
    assert_eq!(persons_per_commit(64 << 30), MAX_PERSONS_PER_COMMIT);
    assert_eq!(persons_per_commit(u64::MAX), MAX_PERSONS_PER_COMMIT);
}
