//! Citizens' correction requests and the Ministry's figures (SPEC §8.5–8.6, issue #10)
//! through the router, on a fixed clock.

use super::*;

/// 2027-01-10T00:00:00Z.
const T0: i64 = 1_799_539_200;
const HOUR: i64 = 3600;

fn at(state: &AppState, t: i64) {
    state.set_clock(Some(time::OffsetDateTime::from_unix_timestamp(t).unwrap()));
}

fn filing(facility: &str, message: &str) -> Value {
    json!({
        "id_number": "079077001234",
        "dob": "1977-03-04",
        "facility_code": facility,
        "kind": "missing_dose",
        "message": message,
        "contact": "zalo 0987 111 222",
    })
}

async fn file(state: &AppState, body: &Value) -> (StatusCode, Value) {
    let (status, bytes) = call(state, post_json("/api/v1/corrections", body, None)).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn get_json(state: &AppState, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let (status, bytes) = call(state, get_with(uri, token)).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn resolve(id: &str, outcome: &str, note: &str, token: Option<&str>) -> Request<Body> {
    post_json(&format!("/api/v1/corrections/{id}/resolve"), &json!({"outcome": outcome, "note": note}), token)
}

/// Every byte the SQLite database holds on disk: the file and its write-ahead log.
fn database_bytes(state: &AppState) -> Vec<u8> {
    let path = state.config().db.strip_prefix("sqlite://").unwrap().to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_filed_checked_queued_resolved_and_sealed_at_rest() {
    let f = fixture(|_| {});
    at(&f.state, T0);
    let a = facility_token(&f.state, "01001");
    let b = facility_token(&f.state, "01100");
    let (status, filed) = file(&f.state, &filing("01001", "Mũi 3 ngày 2022-03-01 chưa có")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{filed}");
    let (id, code) =
        (filed["request_id"].as_str().unwrap().to_owned(), filed["status_code"].as_str().unwrap().to_owned());
    assert_eq!(filed["due_at"], "2027-01-12T00:00:00Z");

    // The citizen checks it with the code; a wrong code and an unknown id are both 404.
    let (status, seen) = get_json(&f.state, &format!("/api/v1/corrections/{id}?code={code}"), None).await;
    assert_eq!((status, seen["status"].as_str()), (StatusCode::OK, Some("open")));
    assert_eq!(seen["closed_at"], Value::Null);
    let wrong = get_json(&f.state, &format!("/api/v1/corrections/{id}?code=AAAAAAAAAAAA"), None).await.0;
    let unknown = get_json(&f.state, &format!("/api/v1/corrections/{}?code={code}", "B".repeat(26)), None).await.0;
    assert_eq!((wrong, unknown), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));

    // Facility A sees it decrypted; facility B sees nothing; the ministry filters by province.
    let (status, queue) = get_json(&f.state, "/api/v1/corrections", Some(&a)).await;
    assert_eq!(status, StatusCode::OK);
    let listed = &queue["requests"][0];
    assert_eq!(
        (listed["request_id"].as_str(), listed["id_number"].as_str()),
        (Some(id.as_str()), Some("079077001234"))
    );
    assert_eq!((listed["dob"].as_str(), listed["contact"].as_str()), (Some("1977-03-04"), Some("zalo 0987 111 222")));
    assert_eq!(listed["seconds_left"], 48 * HOUR);
    assert_eq!(get_json(&f.state, "/api/v1/corrections", Some(&b)).await.1["requests"], json!([]));
    let forbidden = get_json(&f.state, "/api/v1/corrections?facility=01001", Some(&b)).await.0;
    assert_eq!(forbidden, StatusCode::FORBIDDEN);
    assert_eq!(
        get_json(&f.state, "/api/v1/corrections?province=01", Some(ADMIN_TOKEN)).await.1["requests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(get_json(&f.state, "/api/v1/corrections?province=79", Some(ADMIN_TOKEN)).await.1["requests"], json!([]));

    // Overdue after 48 hours, in the overdue queue.
    at(&f.state, T0 + 49 * HOUR);
    let (_, overdue) = get_json(&f.state, "/api/v1/corrections?status=overdue", Some(&a)).await;
    assert_eq!(overdue["requests"][0]["overdue"], true);

    // Only A (or the ministry) closes it, once; late, as 49 hours have passed.
    assert_eq!(call(&f.state, resolve(&id, "resolved", "x", Some(&b))).await.0, StatusCode::NOT_FOUND);
    let (status, body) = call(&f.state, resolve(&id, "resolved", "Đã bổ sung mũi 3 (lô 4/5)", Some(&a))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["late"], true);
    assert_eq!(call(&f.state, resolve(&id, "rejected", "", Some(ADMIN_TOKEN))).await.0, StatusCode::CONFLICT);
    let (_, seen) = get_json(&f.state, &format!("/api/v1/corrections/{id}?code={code}"), None).await;
    assert_eq!((seen["status"].as_str(), seen["note"].as_str()), (Some("resolved"), Some("Đã bổ sung mũi 3 (lô 4/5)")));
    assert_eq!(
        get_json(&f.state, "/api/v1/corrections?status=closed", Some(&a)).await.1["requests"].as_array().unwrap().len(),
        1
    );

    // Nothing personal in clear on disk, the note included.
    let disk = database_bytes(&f.state);
    for secret in ["079077001234", "1977-03-04", "Mũi 3 ngày", "0987 111 222", "Đã bổ sung", &code] {
        assert!(!disk.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret:?} is in the database in clear");
    }
    // ...while what the queue sorts by is (the check above could not pass by reading nothing).
    assert!(disk.windows(id.len()).any(|w| w == id.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filings_are_refused_and_nothing_is_stored() {
    let f = fixture(|_| {});
    at(&f.state, T0);
    let mut cases = vec![
        (filing("01001", &"a".repeat(1001)), "message"),
        (filing("1001", "x"), "facility_code"),
        (filing("01001", ""), "message"),
    ];
    let mut kind = filing("01001", "x");
    kind["kind"] = json!("lost_card");
    cases.push((kind, "kind"));
    let mut dob = filing("01001", "x");
    dob["dob"] = json!("31/31/1977");
    cases.push((dob, "dob"));
    let mut extra = filing("01001", "x");
    extra["person_exists"] = json!(true);
    cases.push((extra, "unknown field"));
    let mut missing = filing("01001", "x");
    missing.as_object_mut().unwrap().remove("id_number");
    cases.push((missing, "id_number"));
    for (body, says) in &cases {
        let (status, answer) = file(&f.state, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(says), "{answer} should say {says}");
    }
    let (status, _) = call(&f.state, Request::post("/api/v1/corrections").body(Body::from("{not json")).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let huge = filing("01001", &"a".repeat(20_000));
    assert_eq!(file(&f.state, &huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, all) = get_json(&f.state, "/api/v1/corrections?limit=1000", Some(ADMIN_TOKEN)).await;
    assert_eq!(all["requests"], json!([]), "nothing stored");
    // A resolution must say resolved or rejected, and a note of at most 1,000 characters.
    let (_, filed) = file(&f.state, &filing("01001", "x")).await;
    let id = filed["request_id"].as_str().unwrap();
    let a = facility_token(&f.state, "01001");
    assert_eq!(call(&f.state, resolve(id, "done", "", Some(&a))).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        call(&f.state, resolve(id, "resolved", &"n".repeat(1001), Some(&a))).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(call(&f.state, resolve(id, "resolved", "ok", Some(&a))).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_says_whether_the_person_exists() {
    let f = fixture(|_| {});
    at(&f.state, T0);
    // An's identity is in the store (the fixture signed her passport); nobody has this one.
    let mut known = filing("01001", "x");
    known["id_number"] = json!("001090000123");
    known["dob"] = json!("1990-05-02");
    let unknown = filing("01001", "x");
    let (s1, a1) = file(&f.state, &known).await;
    let (s2, a2) = file(&f.state, &unknown).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a1), keys(&a2));
    assert_eq!(a1["due_at"], a2["due_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_of_the_correction_routes() {
    let f = fixture(|_| {});
    at(&f.state, T0);
    let a = facility_token(&f.state, "01001");
    let b = facility_token(&f.state, "01100");
    let (_, filed) = file(&f.state, &filing("01001", "x")).await;
    let (id, code) =
        (filed["request_id"].as_str().unwrap().to_owned(), filed["status_code"].as_str().unwrap().to_owned());
    let who: [(&str, Option<&str>); 4] =
        [("anonymous", None), ("facility A", Some(&a)), ("facility B", Some(&b)), ("admin", Some(ADMIN_TOKEN))];
    use StatusCode as S;
    let routes: Vec<(&str, MakeRequest, [StatusCode; 4])> = vec![
        (
            "POST /api/v1/corrections",
            Box::new(|t| post_json("/api/v1/corrections", &filing("01001", "y"), t)),
            [S::ACCEPTED; 4],
        ),
        (
            "GET /api/v1/corrections/{id}?code=",
            Box::new({
                let uri = format!("/api/v1/corrections/{id}?code={code}");
                move |t| get_with(&uri, t)
            }),
            [S::OK; 4],
        ),
        (
            "GET /api/v1/corrections",
            Box::new(|t| get_with("/api/v1/corrections", t)),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK],
        ),
        (
            "GET /api/v1/corrections?facility=79001",
            Box::new(|t| get_with("/api/v1/corrections?facility=79001", t)),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::FORBIDDEN, S::OK],
        ),
        // In this order: A closes its request, B cannot see it, the ministry finds it closed.
        (
            "POST /api/v1/corrections/{id}/resolve",
            Box::new({
                let id = id.clone();
                move |t| resolve(&id, "resolved", "ok", t)
            }),
            [S::UNAUTHORIZED, S::OK, S::NOT_FOUND, S::CONFLICT],
        ),
        (
            "GET /api/v1/stats",
            Box::new(|t| get_with("/api/v1/stats", t)),
            [S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED, S::OK],
        ),
    ];
    assert_matrix(&f.state, &who, &routes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_the_batches_and_the_48_hour_rule() {
    let f = fixture(|c| c.registry = Some(registry_file()));
    at(&f.state, T0);
    let a = facility_token(&f.state, "01001");
    let (_, body) = call(&f.state, upload(Some(&a), UPLOAD)).await;
    let batch_id = serde_json::from_slice::<Value>(&body).unwrap()["batch_id"].as_str().unwrap().to_owned();
    let done = finished(&f.state, &batch_id, &a).await;
    let summary = &done["summary"];
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(file(&f.state, &filing("01001", "x")).await.1["request_id"].as_str().unwrap().to_owned());
    }
    file(&f.state, &filing("01100", "x")).await;
    at(&f.state, T0 + 10 * HOUR);
    assert_eq!(call(&f.state, resolve(&ids[0], "resolved", "", Some(&a))).await.0, StatusCode::OK);
    at(&f.state, T0 + 50 * HOUR);
    assert_eq!(call(&f.state, resolve(&ids[1], "rejected", "not ours", Some(&a))).await.0, StatusCode::OK);
    at(&f.state, T0 + 60 * HOUR);

    let (status, stats) = get_json(&f.state, "/api/v1/stats?by=facility", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let groups = stats["groups"].as_array().unwrap();
    let ours = groups.iter().find(|g| g["group"] == "01001").unwrap();
    assert_eq!(ours["rows_signed"], summary["signed_rows"]);
    assert_eq!(ours["rows_rejected"], summary["rejected_rows"]);
    assert_eq!(ours["rejected_by_reason"], summary["by_reason"]);
    assert_eq!(ours["passports"], summary["passports"]);
    assert_eq!((ours["requests_open"].as_u64(), ours["requests_overdue"].as_u64()), (Some(0), Some(1)));
    assert_eq!((ours["requests_closed"].as_u64(), ours["requests_closed_late"].as_u64()), (Some(2), Some(1)));
    assert_eq!(ours["median_hours_to_close"], 30.0);
    assert_eq!(ours["closed_within_48h_share"].as_f64().unwrap(), 1.0 / 3.0);
    let other = groups.iter().find(|g| g["group"] == "01100").unwrap();
    assert_eq!((other["requests_overdue"].as_u64(), other["closed_within_48h_share"].as_f64()), (Some(1), Some(0.0)));

    let (_, by_province) = get_json(&f.state, "/api/v1/stats", Some(ADMIN_TOKEN)).await;
    assert_eq!(by_province["by"], "province");
    let hanoi = &by_province["groups"][0];
    assert_eq!((hanoi["group"].as_str(), hanoi["province"].as_str()), (Some("01"), Some("Hà Nội")));
    assert_eq!(hanoi["requests_overdue"], 2);
    assert_eq!(by_province["total"]["rows_signed"], summary["signed_rows"]);
    assert_eq!(get_json(&f.state, "/api/v1/stats?by=person", Some(ADMIN_TOKEN)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_generated_requests_reports_what_the_truth_says() {
    use crate::synthetic::corrections::{CLOCK, write};
    let f = fixture(|c| c.lookups_per_client_per_minute = 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    crate::synthetic::generate(&crate::synthetic::GenOptions { persons: 4000, seed: 5, weeks: 0 }, dir.path()).unwrap();
    let written = write(dir.path(), 5).unwrap();
    assert!(written.requests >= 40, "{written:?}");
    assert!(written.by_kind.get("missing_dose").is_some_and(|n| *n > 0), "{written:?}");
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp()
    };
    // Filings and answers, in time order, each on the clock it happens at.
    // (when, which line, the answer (outcome, note) or None for the filing)
    type Event = (i64, usize, Option<(String, String)>);
    let mut events: Vec<Event> = Vec::new();
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("corrections.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, l) in lines.iter().enumerate() {
        events.push((parse(l["at"].as_str().unwrap()), i, None));
        if let Some(r) = l["resolve_at"].as_str().filter(|r| parse(r) <= CLOCK) {
            let answer = (l["outcome"].as_str().unwrap().to_owned(), l["note"].as_str().unwrap().to_owned());
            events.push((parse(r), i, Some(answer)));
        }
    }
    events.sort_by_key(|e| (e.0, e.2.is_some()));
    let mut ids = vec![String::new(); lines.len()];
    for (t, i, answer) in events {
        at(&f.state, t);
        match answer {
            None => {
                let (status, filed) = file(&f.state, &lines[i]["filing"]).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{}: {filed}", lines[i]);
                ids[i] = filed["request_id"].as_str().unwrap().to_owned();
            }
            Some((outcome, note)) => {
                let (status, body) = call(&f.state, resolve(&ids[i], &outcome, &note, Some(ADMIN_TOKEN))).await;
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            }
        }
    }
    at(&f.state, CLOCK);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("corrections_truth.json")).unwrap()).unwrap();
    let (_, stats) = get_json(&f.state, "/api/v1/stats?by=province", Some(ADMIN_TOKEN)).await;
    let groups = stats["groups"].as_array().unwrap();
    let provinces = truth["by_province"].as_object().unwrap();
    assert!(provinces.len() > 5, "requests spread over provinces");
    for (province, want) in provinces {
        let got = groups.iter().find(|g| g["group"] == province.as_str()).unwrap();
        for (ours, theirs) in [
            ("requests_open", "open"),
            ("requests_overdue", "overdue"),
            ("requests_closed", "closed"),
            ("requests_closed_late", "closed_late"),
            ("closed_within_48h_share", "closed_within_48h_share"),
        ] {
            assert_eq!(got[ours], want[theirs], "province {province}: {ours}");
        }
    }
    let total = &stats["total"];
    assert_eq!(total["closed_within_48h_share"], truth["total"]["closed_within_48h_share"]);
    let all = total["requests_open"].as_u64().unwrap()
        + total["requests_overdue"].as_u64().unwrap()
        + total["requests_closed"].as_u64().unwrap();
    assert_eq!(all, written.requests);
}
