//! The ledger's routes and the facility's credentials (SPEC §8.2–8.3; issue #8 items 4 and 7)
//! through the router.

use super::*;

fn kid_of(code: &str) -> String {
    let pem = std::fs::read(keys().join(format!("facility-{code}/cert.pem"))).unwrap();
    crate::pki::parse_certificates(&pem, true).unwrap()[0].kid.to_base64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_facility_signs_nothing_more() {
    let f = fixture(|c| c.registry = Some(registry_file()));
    let before = facility_token(&f.state, "01100");
    let revoke = json!({"kid": kid_of("01100")});
    assert_eq!(call(&f.state, post_json("/api/v1/revocations", &revoke, Some(ADMIN_TOKEN))).await.0, StatusCode::OK);
    // Its tokens stopped working with the certificate...
    assert_eq!(call(&f.state, upload(Some(&before), UPLOAD)).await.0, StatusCode::UNAUTHORIZED);
    // ...and a token made afterwards cannot sign with the revoked key either.
    let after = facility_token(&f.state, "01100");
    let (status, body) = call(&f.state, upload(Some(&after), UPLOAD)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&body));
    // Another facility is unaffected.
    let other = facility_token(&f.state, "01001");
    assert_eq!(call(&f.state, upload(Some(&other), UPLOAD)).await.0, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passports_of_a_revoked_signer_are_neither_listed_nor_downloaded() {
    let f = fixture(|_| {});
    let an = f.passports.iter().find(|p| p.id_number == "001090000123").unwrap();
    let (_, found) = lookup(&f.state, "001090000123", "1990-05-02", &an.claim_code).await;
    let png = found["passports"][0]["png"].as_str().unwrap().to_owned();
    assert_eq!(call(&f.state, Request::get(&png).body(Body::empty()).unwrap()).await.0, StatusCode::OK);
    let revoke = json!({"kid": an.kid});
    assert_eq!(call(&f.state, post_json("/api/v1/revocations", &revoke, Some(ADMIN_TOKEN))).await.0, StatusCode::OK);
    // It would verify as revoked: the traveller is not offered it, and a link given earlier
    // answers 410 like a revoked passport's.
    let (status, found) = lookup(&f.state, "001090000123", "1990-05-02", &an.claim_code).await;
    assert_eq!((status, found), (StatusCode::OK, json!({"passports": []})));
    assert_eq!(call(&f.state, Request::get(&png).body(Body::empty()).unwrap()).await.0, StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_are_revoked_on_their_own() {
    let f = fixture(|_| {});
    let status_of = |t: String| {
        let state = f.state.clone();
        async move { call(&state, get_with("/api/v1/batches/none", Some(&t))).await.0 }
    };
    // Expired a second ago.
    let expired = format!("vxp_expired_{}", rand_hex());
    let hash = token_hash(&expired);
    let past = f.state.now().unix_timestamp() - 1;
    f.state.with_store_blocking(move |s| s.add_facility_token(&hash, "01001", 0, Some(past))).unwrap();
    assert_eq!(status_of(expired).await, StatusCode::UNAUTHORIZED);

    let (one, two) = (facility_token(&f.state, "01001"), facility_token(&f.state, "01001"));
    assert_eq!(status_of(one.clone()).await, StatusCode::NOT_FOUND, "authenticated; no such batch");
    let by_token = json!({"token": one});
    for token in [None, Some(one.as_str())] {
        let (status, _) = call(&f.state, post_json("/api/v1/tokens/revoke", &by_token, token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "only the ministry revokes tokens");
    }
    let (status, body) = call(&f.state, post_json("/api/v1/tokens/revoke", &by_token, Some(ADMIN_TOKEN))).await;
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (StatusCode::OK, json!({"revoked": 1})));
    assert_eq!(status_of(one).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(two.clone()).await, StatusCode::NOT_FOUND, "the facility's other token still works");
    let all = json!({"facility": "01001"});
    assert_eq!(call(&f.state, post_json("/api/v1/tokens/revoke", &all, Some(ADMIN_TOKEN))).await.0, StatusCode::OK);
    assert_eq!(status_of(two).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facility_learns_initials_and_a_birth_year_of_a_stranger_not_the_registry_entry() {
    let f = fixture(|c| c.registry = Some(registry_file()));
    let a = facility_token(&f.state, "01001");
    let probe =
        "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date
P1,01001,001090000123,Lê Văn Khác,02/05/1990,Nam,,,Pfizer,,,2022-02-01
P2,01001,001090000123,Nguyễn Văn An,03/05/1990,Nam,,,Pfizer,,,2022-02-01
";
    let (_, body) = call(&f.state, upload(Some(&a), probe)).await;
    let id = serde_json::from_slice::<Value>(&body).unwrap()["batch_id"].as_str().unwrap().to_owned();
    let done = finished(&f.state, &id, &a).await;
    let rejected = done["rejected"].as_array().unwrap();
    let by_id = |id: &str| rejected.iter().find(|r| r["record_id"] == id).unwrap().clone();
    assert_eq!(
        (by_id("P1")["reason"].as_str(), by_id("P1")["suggestion"].as_str()),
        (Some("NAME_MISMATCH"), Some("N. V. A."))
    );
    assert_eq!(
        (by_id("P2")["reason"].as_str(), by_id("P2")["suggestion"].as_str()),
        (Some("DOB_MISMATCH"), Some("1990"))
    );
    assert!(!body_text(&done).contains("Nguyễn"), "no registry name in the answer");
}

fn body_text(v: &Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraction_revokes_reissues_and_answers_unknown_for_foreign_records() {
    let f = fixture(|_| {});
    let an = f.passports.iter().find(|p| p.id_number == "001090000123").unwrap().clone();
    let (a, b) = (facility_token(&f.state, "01001"), facility_token(&f.state, "01100"));
    let body = json!({"record_ids": ["R2"], "reason": "never given"});
    assert_eq!(call(&f.state, post_json("/api/v1/records/retract", &body, None)).await.0, StatusCode::UNAUTHORIZED);
    // Facility B did not give R2: "unknown", exactly as for an id that does not exist.
    let (status, got) = call(&f.state, post_json("/api/v1/records/retract", &body, Some(&b))).await;
    assert_eq!(status, StatusCode::OK);
    let got: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(got, json!({"retracted": 0, "revoked": [], "reissued": [], "unknown": ["R2"]}));
    let (_, missing) = call(
        &f.state,
        post_json("/api/v1/records/retract", &json!({"record_ids": ["NOPE"], "reason": "never given"}), Some(&b)),
    )
    .await;
    assert_eq!(serde_json::from_slice::<Value>(&missing).unwrap()["unknown"], json!(["NOPE"]));
    assert_eq!(verify(&f.state, &an.hc1).await["reason"], "OK");

    let (status, got) = call(&f.state, post_json("/api/v1/records/retract", &body, Some(&a))).await;
    assert_eq!(status, StatusCode::OK);
    let got: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!((got["retracted"].as_u64(), &got["revoked"]), (Some(1), &json!([an.uvci])));
    let reissued = got["reissued"][0].as_str().unwrap().to_owned();
    // Revoked at once, here; the traveller finds only the re-issued passport.
    assert_eq!(verify(&f.state, &an.hc1).await["reason"], "REVOKED");
    // The code An was given with her first passport finds the re-issued one.
    let (_, found) = lookup(&f.state, "001090000123", "1990-05-02", &an.claim_code).await;
    assert_eq!(found["passports"].as_array().unwrap().len(), 1);
    assert_eq!(
        (found["passports"][0]["uvci"].as_str(), &found["passports"][0]["current"]),
        (Some(reissued.as_str()), &json!(true))
    );
    let (hc1, _) = f.state.with_store_blocking(move |s| s.passport_by_uvci(&reissued)).unwrap().unwrap();
    let claims = crate::passport::decode(&hc1).unwrap().claims().unwrap();
    assert_eq!(claims.dcc["v"][0]["dn"], 1, "one dose left");
    assert!(
        found["passports"].as_array().unwrap().iter().all(|p| p["uvci"] != an.uvci.as_str()),
        "a revoked passport is never listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_upload_follows_the_ledger_rules_and_lists_what_it_revoked() {
    let f = fixture(|c| c.registry = Some(registry_file()));
    let a = facility_token(&f.state, "01001");
    let an = f.passports.iter().find(|p| p.id_number == "001090000123").unwrap().clone();
    // R2's date corrected: An's passport is revoked and re-issued with her whole series.
    let csv =
        "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date
R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,AstraZeneca,,,2021-09-22
";
    let (_, body) = call(&f.state, upload(Some(&a), csv)).await;
    let id = serde_json::from_slice::<Value>(&body).unwrap()["batch_id"].as_str().unwrap().to_owned();
    let done = finished(&f.state, &id, &a).await;
    assert_eq!((done["summary"]["revoked"].as_u64(), done["summary"]["superseded"].as_u64()), (Some(1), Some(0)));
    assert_eq!(done["revoked"], json!([{"uvci": an.uvci, "reason": "corrected"}]));
    assert_eq!(done["passports"][0]["record_ids"], json!(["R1", "R2"]));
    assert_eq!(verify(&f.state, &an.hc1).await["reason"], "REVOKED");
}
