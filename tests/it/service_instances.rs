//! Two service instances sharing one PostgreSQL database (SPEC §7): a passport signed into
//! the database is downloadable through either, and revoked through one it fails in the other
//! within the refresh interval.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use vaxpass::service::{self, AppState, Config};

use crate::store_postgres::TempDatabase;
use crate::util::{KEYS_EXAMPLE_NOW, keys_example, tempdir};

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value) {
    let res = service::router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn post(uri: &str, body: Value, token: Option<&str>) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_passports_and_revocations() {
    // The synchronous PostgreSQL client may not run on a runtime thread: plain threads.
    let db = std::thread::spawn(TempDatabase::new).join().unwrap();
    let dir = tempdir();
    let secret = dir.path().join("secret");
    let data = crate::sign_batch::small_batch(dir.path());
    crate::sign_batch::sign_data(&data, &dir.path().join("out"), &db.url(), &secret).succeeds();
    // The passport of Nguyễn Văn An, born 1990-05-02.
    let first: Value = std::fs::read_to_string(dir.path().join("out/passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|p| p["id_number"] == "001090000123")
        .expect("a passport for 001090000123");

    let url = db.url();
    let open = move || {
        let config = Config {
            db: url.clone(),
            keys: keys_example(),
            secret: secret.clone(),
            admin_token_sha256: Some(service::sha256_hex(b"admin")),
            lookup_floor_ms: 10,
            // The CLI signed at KEYS_EXAMPLE_NOW (sign_data): the instances' time follows.
            clock: service::Clock::starting_at(time::OffsetDateTime::from_unix_timestamp(KEYS_EXAMPLE_NOW).unwrap()),
            ..Config::default()
        };
        let now = config.clock.now();
        AppState::open(config, now).unwrap()
    };
    let (a, b) = tokio::task::spawn_blocking(move || (open(), open())).await.unwrap();

    // Found and downloaded through instance B, from what the CLI signed.
    let lookup = json!({"id_number": first["id_number"], "dob": "1990-05-02", "claim_code": first["claim_code"]});
    let (status, found) = call(&b, post("/api/v1/passports/lookup", lookup, None)).await;
    assert_eq!(status, StatusCode::OK);
    let png = found["passports"][0]["png"].as_str().expect("found through instance B").to_owned();
    let res = service::router(a.clone()).oneshot(Request::get(&png).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the token of B works in A: one deployment secret");

    let verify = json!({"qr": first["hc1"]});
    assert_eq!(call(&b, post("/api/v1/verify", verify.clone(), None)).await.1["reason"], "OK");
    let (status, _) = call(&a, post("/api/v1/revocations", json!({"uvci": first["uvci"]}), Some("admin"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call(&a, post("/api/v1/verify", verify.clone(), None)).await.1["reason"], "REVOKED");
    // B learns it by notification in `serve` (tests/it/service_multi.rs); called directly here.
    let b2 = b.clone();
    tokio::task::spawn_blocking(move || b2.refresh_revocations()).await.unwrap().unwrap();
    assert_eq!(call(&b, post("/api/v1/verify", verify, None)).await.1["reason"], "REVOKED");
    drop((a, b));
    std::thread::spawn(move || drop(db)).join().unwrap();
}
