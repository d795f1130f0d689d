use super::*;
use crate::gate::Summary;

fn key() -> DerivationKey {
    DerivationKey::new(&[7; 32])
}

fn filing(kind: &str, message: &str) -> Filing {
    Filing {
        id_number: " 001090012345 ".into(),
        dob: "1990-01-02".into(),
        facility_code: "01001".into(),
        kind: kind.into(),
        message: message.into(),
        contact: Some("0912 345 678".into()),
    }
}

#[test]
fn a_filing_is_validated_and_normalised() {
    let v = validate(filing("missing_dose", "  my booster of 2022-03-01 is missing ")).unwrap();
    assert_eq!(v.kind, Kind::MissingDose);
    assert_eq!(v.personal.id_number, "001090012345");
    assert_eq!(v.personal.message, "my booster of 2022-03-01 is missing");
    assert_eq!(v.personal.dob, "1990-01-02");
}

#[test]
fn bad_filings_are_refused_with_their_reason() {
    assert_eq!(validate(filing("lost_card", "x")).unwrap_err(), InvalidRequest::Kind);
    assert_eq!(validate(filing("wrong_data", "")).unwrap_err(), InvalidRequest::Message);
    let long = "ệ".repeat(MAX_MESSAGE_CHARS + 1);
    assert_eq!(validate(filing("wrong_data", &long)).unwrap_err(), InvalidRequest::Message);
    // Exactly the limit, in characters not bytes, passes.
    assert!(validate(filing("wrong_data", &"ệ".repeat(MAX_MESSAGE_CHARS))).is_ok());
    let mut f = filing("not_mine", "x");
    f.facility_code = "99001".into();
    assert_eq!(validate(f).unwrap_err(), InvalidRequest::FacilityCode);
    let mut f = filing("not_mine", "x");
    f.dob = "1990-13-45".into();
    assert_eq!(validate(f).unwrap_err(), InvalidRequest::Dob);
    let mut f = filing("not_mine", "x");
    f.id_number = "00109'; DROP".into();
    assert_eq!(validate(f).unwrap_err(), InvalidRequest::IdNumber);
    let mut f = filing("not_mine", "x");
    f.contact = Some("c".repeat(MAX_CONTACT_CHARS + 1));
    assert_eq!(validate(f).unwrap_err(), InvalidRequest::Contact);
}

#[test]
fn a_filed_request_is_sealed_bound_to_its_id_and_checked_by_its_code() {
    let k = key();
    let v = validate(filing("wrong_data", "the date of dose 2 is wrong")).unwrap();
    let (r, code) = file(&k, &v, 1_000).unwrap();
    assert!(is_request_id(&r.request_id), "{}", r.request_id);
    assert_eq!(code.len(), STATUS_CODE_LEN);
    assert_eq!(r.due_at, 1_000 + 48 * 3600);
    assert_eq!(r.status, Status::Open);
    // Nothing personal in clear in what the store keeps.
    let stored = [r.sealed.clone(), r.code_hash.clone()].concat();
    for secret in ["001090012345", "1990-01-02", "the date of dose 2", "0912 345 678", code.as_str()] {
        assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in clear");
    }
    assert_eq!(open_personal(&k, &r).unwrap(), v.personal);
    // Another deployment's secret, or the blob moved to another request, opens nothing.
    assert!(open_personal(&DerivationKey::new(&[8; 32]), &r).is_none());
    let mut moved = r.clone();
    moved.request_id = "A".repeat(26);
    assert!(open_personal(&k, &moved).is_none());
    // The code, case and spaces aside, and nothing else.
    assert!(code_matches(&k, &r, &format!(" {} ", code.to_ascii_lowercase())));
    assert!(!code_matches(&k, &r, "AAAAAAAAAAAA"));
    assert!(!code_matches(&k, &moved, &code));
    // Two filings never share an id or a code.
    let (r2, code2) = file(&k, &v, 1_000).unwrap();
    assert_ne!(r.request_id, r2.request_id);
    assert_ne!(code, code2);
}

#[test]
fn notes_are_sealed_per_request() {
    let k = key();
    let v = validate(filing("wrong_data", "x")).unwrap();
    let (mut r, _) = file(&k, &v, 0).unwrap();
    r.note_sealed = Some(seal_note(&k, &r.request_id, "corrected in batch of 3 May").unwrap());
    assert_eq!(open_note(&k, &r).as_deref(), Some("corrected in batch of 3 May"));
    // A note is not the personal fields: the two seals are not interchangeable.
    let mut swapped = r.clone();
    swapped.sealed = r.note_sealed.clone().unwrap();
    assert!(open_personal(&k, &swapped).is_none());
}

#[test]
fn overdue_and_late_follow_the_due_time() {
    let k = key();
    let v = validate(filing("wrong_data", "x")).unwrap();
    let (mut r, _) = file(&k, &v, 0).unwrap();
    assert!(!r.overdue(DUE_SECS));
    assert!(r.overdue(DUE_SECS + 1));
    r.status = Status::Resolved;
    r.closed_at = Some(DUE_SECS);
    assert!(!r.overdue(DUE_SECS + 1) && !r.late());
    r.closed_at = Some(DUE_SECS + 1);
    assert!(r.late());
}

#[test]
fn base32_is_rfc4648() {
    assert_eq!(base32(b""), "");
    assert_eq!(base32(b"f"), "MY");
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    assert!(!is_request_id("MZXW6YTBOI"));
    assert!(!is_request_id(&"a".repeat(26)));
}

fn timing(facility: &str, created: i64, closed: Option<i64>) -> RequestTiming {
    RequestTiming {
        facility_code: facility.into(),
        status: if closed.is_some() { Status::Resolved } else { Status::Open },
        created_at: created,
        due_at: created + DUE_SECS,
        closed_at: closed,
    }
}

#[test]
fn reports_group_counts_and_the_48_hour_rule() {
    let counts = [
        CountRow { facility_code: "01001".into(), counter: "signed_rows".into(), n: 90 },
        CountRow { facility_code: "01002".into(), counter: "signed_rows".into(), n: 10 },
        CountRow { facility_code: "01001".into(), counter: "rejected:NAME_MISMATCH".into(), n: 3 },
        CountRow { facility_code: "01002".into(), counter: "rejected:BAD_ID".into(), n: 2 },
        CountRow { facility_code: "01001".into(), counter: "passports".into(), n: 40 },
        CountRow { facility_code: "79001".into(), counter: "revoked".into(), n: 1 },
        CountRow { facility_code: "79001".into(), counter: "retracted_rows".into(), n: 1 },
    ];
    let h = 3600;
    let now = 100 * h;
    let timings = [
        timing("01001", 0, Some(10 * h)),      // on time, 10 h
        timing("01001", 0, Some(50 * h)),      // late, 50 h
        timing("01002", 0, Some(30 * h)),      // on time, 30 h
        timing("01002", 0, None),              // overdue at 100 h
        timing("01002", 90 * h, None),         // open, due at 138 h
        timing("79001", 99 * h, Some(99 * h)), // on time, 0 h
    ];
    let by_province = group_reports(By::Province, &counts, &timings, now);
    assert_eq!(by_province.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["01", "79"]);
    let hanoi = &by_province[0];
    assert_eq!(hanoi.province, "Hà Nội");
    assert_eq!((hanoi.totals.rows_signed, hanoi.totals.rows_rejected, hanoi.totals.passports), (100, 5, 40));
    assert_eq!(hanoi.totals.rejected_by_reason.get("BAD_ID"), Some(&2));
    assert_eq!(
        (hanoi.requests_open, hanoi.requests_overdue, hanoi.requests_closed, hanoi.requests_closed_late),
        (1, 1, 3, 1)
    );
    assert_eq!(hanoi.median_hours_to_close, Some(30.0));
    // Two on time out of three closed and one overdue.
    assert_eq!(hanoi.closed_within_48h_share, Some(0.5));
    assert_eq!(by_province[1].totals.revoked_passports, 1);
    assert_eq!(by_province[1].closed_within_48h_share, Some(1.0));

    let by_facility = group_reports(By::Facility, &counts, &timings, now);
    assert_eq!(by_facility.len(), 3);
    assert_eq!(by_facility[0].median_hours_to_close, Some(30.0), "mean of 10 and 50");
    assert_eq!(by_facility[1].closed_within_48h_share, Some(0.5));
    let all = group_reports(By::All, &counts, &timings, now);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].requests_closed + all[0].requests_open + all[0].requests_overdue, 6);
    // Nothing decided yet: no share rather than 0 % or 100 %.
    let fresh = group_reports(By::All, &[], &[timing("01001", now, None)], now);
    assert_eq!(fresh[0].closed_within_48h_share, None);
}

#[test]
fn a_run_counts_revocations_against_the_passport_s_facility() {
    let summary = Summary {
        signed_rows: 5,
        passports: 3,
        reused: 1,
        by_reason: [("BAD_ID".to_owned(), 2)].into_iter().collect(),
        revoked_uvcis: vec![
            crate::passport::Uvci::new("79001", "ABCDEFGHIJKLMNOP").unwrap().as_str().to_owned(),
            "URN:UVCI:01:AT:1234".into(),
        ],
        ..Summary::default()
    };
    let mut rows = run_counts("01001", &summary.tally());
    rows.sort_by(|a, b| (&a.facility_code, &a.counter).cmp(&(&b.facility_code, &b.counter)));
    let got: Vec<(&str, &str, u64)> =
        rows.iter().map(|r| (r.facility_code.as_str(), r.counter.as_str(), r.n)).collect();
    assert_eq!(
        got,
        [
            ("01001", "rejected:BAD_ID", 2),
            ("01001", "revoked", 1),
            ("01001", "signed_rows", 5),
            ("79001", "revoked", 1)
        ]
    );
}
