//! Two real `vaxpass serve` processes on one fresh PostgreSQL database (issue 11): they allow
//! a rate limit once between them, a revocation made through one reaches the other within a
//! second by notification, and a batch whose instance died is marked failed once its lease
//! expires.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::store_postgres::TempDatabase;
use crate::util::{KEYS_EXAMPLE_NOW, keys_example, repo, tempdir};

/// A `vaxpass serve` child, killed when dropped.
struct Instance {
    child: Child,
    port: u16,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vaxpass serve` on a free port, on `db`, with `config`, its clock started at
/// [`KEYS_EXAMPLE_NOW`] (keys-example's certificates are valid then), logging to `log`.
fn serve(dir: &Path, db: &str, config: &Path, log: &str) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let at = time::OffsetDateTime::from_unix_timestamp(KEYS_EXAMPLE_NOW)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vaxpass"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db", db, "--at", &at, "--config"])
        .arg(config)
        .current_dir(repo())
        .env("VAXPASS_KEYS", keys_example())
        .env("VAXPASS_SECRET", dir.join("secret"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap();
    let instance = Instance { child, port };
    let start = Instant::now();
    while request(port, "GET", "/healthz", None, None).is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "the service did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    instance
}

/// One HTTP/1.1 request: (status, JSON body or `Null`), if the service answers.
fn request(port: u16, method: &str, path: &str, body: Option<&[u8]>, token: Option<&str>) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    Some((status, json))
}

fn post(port: u16, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    request(port, "POST", path, Some(body.to_string().as_bytes()), token).expect("an answer")
}

#[test]
fn two_instances_share_limits_revocations_and_batch_leases() {
    let db = TempDatabase::new();
    let dir = tempdir();
    let secret = dir.path().join("secret");
    let data = crate::sign_batch::small_batch(dir.path());
    crate::sign_batch::sign_data(&data, &dir.path().join("out"), &db.url(), &secret).succeeds();
    let passports: Vec<Value> = std::fs::read_to_string(dir.path().join("out/passports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let [passport, second, ..] = &passports[..] else { panic!("fewer than two passports signed") };
    let config = dir.path().join("vaxpass.toml");
    std::fs::write(
        &config,
        format!(
            "admin_token_sha256 = \"{}\"\nlookup_floor_ms = 10\nlookups_per_client_per_minute = 3\n\
             batch_lease_secs = 3\n",
            vaxpass::service::sha256_hex(b"admin")
        ),
    )
    .unwrap();
    let a = serve(dir.path(), &db.url(), &config, "a.log");
    let b = serve(dir.path(), &db.url(), &config, "b.log");

    // The shared limit: three lookups per client per minute, between both instances.
    let lookup = json!({"id_number": "079099000001", "dob": "1999-01-01", "claim_code": "AAAAAAAAAA"});
    for port in [a.port, a.port, b.port] {
        assert_eq!(post(port, "/api/v1/passports/lookup", &lookup, None).0, 200);
    }
    assert_eq!(post(b.port, "/api/v1/passports/lookup", &lookup, None).0, 429, "B counts A's lookups");
    assert_eq!(post(a.port, "/api/v1/passports/lookup", &lookup, None).0, 429, "and A counts B's");

    // Revocation through A reaches B by notification: well within the 30 s safety refresh.
    let verify = json!({"qr": passport["hc1"]});
    assert_eq!(post(b.port, "/api/v1/verify", &verify, None).1["reason"], "OK");
    let (status, _) = post(a.port, "/api/v1/revocations", &json!({"uvci": passport["uvci"]}), Some("admin"));
    assert_eq!(status, 200);
    let revoked = Instant::now();
    loop {
        if post(b.port, "/api/v1/verify", &verify, None).1["reason"] == "REVOKED" {
            break;
        }
        // The goal is one second; the margin is for a loaded test machine.
        assert!(revoked.elapsed() < Duration::from_secs(3), "B did not learn of the revocation");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("revocation reached instance B after {:?}", revoked.elapsed());

    // The listening connections are cut: they reconnect, and the next revocation still
    // arrives by notification (or by the re-read that follows reconnecting).
    let mut sql = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    let cut = sql
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = $1",
            &[&vaxpass::store::LISTENER_NAME],
        )
        .unwrap();
    assert_eq!(cut, 2, "one listening connection per instance");
    let verify = json!({"qr": second["hc1"]});
    assert_eq!(post(b.port, "/api/v1/verify", &verify, None).1["reason"], "OK");
    let (status, _) = post(a.port, "/api/v1/revocations", &json!({"uvci": second["uvci"]}), Some("admin"));
    assert_eq!(status, 200);
    let revoked = Instant::now();
    while post(b.port, "/api/v1/verify", &verify, None).1["reason"] != "REVOKED" {
        assert!(revoked.elapsed() < Duration::from_secs(3), "B did not learn of the revocation after reconnecting");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("after the listeners were cut, a revocation reached instance B after {:?}", revoked.elapsed());

    // A batch whose instance died: running, its lease ended a second ago.
    let token_hash = vaxpass::service::token_hash("station-token").to_vec();
    sql.execute(
        "INSERT INTO facility_tokens (token_hash, facility_code, created_at) VALUES ($1, '01001', 0)",
        &[&token_hash],
    )
    .unwrap();
    sql.execute(
        "INSERT INTO batches (batch_id, facility_code, status, persons_total, persons_done, started_at, \
         updated_at, lease_owner, lease_expires_at) VALUES ('dead', '01001', 'running', 10, 4, $1, $1, 'gone', $1)",
        &[&(KEYS_EXAMPLE_NOW - 1)],
    )
    .unwrap();
    // One of the instances marks it failed at its next check (every second here).
    let start = Instant::now();
    let failed = loop {
        let (status, batch) = request(a.port, "GET", "/api/v1/batches/dead", None, Some("station-token")).unwrap();
        assert_eq!(status, 200, "{batch}");
        if batch["status"] != "running" {
            break batch;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the dead instance's batch stayed running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("lease expired"), "{failed}");

    // A live batch on B, leased and renewed, is not taken from it: it finishes.
    let doses = std::fs::read(data.join("doses.csv")).unwrap();
    let (status, accepted) = request(b.port, "POST", "/api/v1/batches", Some(&doses), Some("station-token")).unwrap();
    assert_eq!(status, 202, "{accepted}");
    let path = format!("/api/v1/batches/{}", accepted["batch_id"].as_str().unwrap());
    let start = Instant::now();
    loop {
        let (_, batch) = request(a.port, "GET", &path, None, Some("station-token")).unwrap();
        if batch["status"] == "done" {
            break;
        }
        assert_eq!(batch["status"], "running", "{batch}");
        assert!(start.elapsed() < Duration::from_secs(30), "the live batch did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }

    // B dies (SIGKILL) while signing an upload it accepted: A marks it failed once the
    // lease B took and can no longer renew expires (3 s here, checked every second).
    let big = dir.path().join("big");
    crate::util::Vaxpass::new(["gen", "--persons", "20000", "--seed", "1", "--out"]).arg(&big).succeeds();
    let doses = std::fs::read(big.join("doses.csv")).unwrap();
    let (status, accepted) = request(b.port, "POST", "/api/v1/batches", Some(&doses), Some("station-token")).unwrap();
    assert_eq!(status, 202, "{accepted}");
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let path = format!("/api/v1/batches/{}", accepted["batch_id"].as_str().unwrap());
    let killed = Instant::now();
    let orphan = loop {
        let (_, batch) = request(a.port, "GET", &path, None, Some("station-token")).unwrap();
        if batch["status"] != "running" {
            break batch;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "the killed instance's batch stayed running");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("the killed instance's batch was marked failed after {:?}", killed.elapsed());
    assert_eq!(
        orphan["status"], "failed",
        "B signed 20,000 persons before SIGKILL reached it: {}",
        orphan["persons_done"]
    );
    assert!(orphan["error"].as_str().unwrap().contains("lease expired"), "{orphan}");
    drop((a, b));
}
