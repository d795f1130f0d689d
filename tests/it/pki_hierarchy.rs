//! The Ministry PKI officer's flow (SPEC §2, §6 `vaxpass pki …`): root → provincial CA →
//! facility DSC, the facility's own CSR, and the refusals that protect keys.

use std::path::Path;

use crate::util::{
    Vaxpass, assert_reason, cert, certs, keys_example, now, passport_times, rfc3339, sign_passport, tempdir,
};

const EKU_VACCINATION: &str = "1.3.6.1.4.1.1847.2021.1.2";
const DAY: i64 = 86_400;

#[track_caller]
fn assert_private(path: &Path) {
    assert!(path.is_file(), "{} is missing", path.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }
}

/// Issues root → CA 79 → facility 79001 with the CLI into `dir`.
fn issue_hierarchy(dir: &Path) {
    let root = dir.join("root");
    let ca = dir.join("ca-79");
    let fac = dir.join("facility-79001");
    Vaxpass::new(["pki", "init-root", "--out"]).arg(&root).succeeds();
    Vaxpass::new(["pki", "issue-ca", "--issuer-key"])
        .arg(root.join("key.pem"))
        .arg("--issuer-cert")
        .arg(root.join("cert.pem"))
        .args(["--province", "79", "--out"])
        .arg(&ca)
        .succeeds();
    Vaxpass::new(["pki", "issue-facility", "--issuer-key"])
        .arg(ca.join("key.pem"))
        .arg("--issuer-cert")
        .arg(ca.join("cert.pem"))
        .args(["--code", "79001", "--name", "Bệnh viện Chợ Rẫy", "--out"])
        .arg(&fac)
        .succeeds();
}

#[test]
fn init_root_issue_ca_issue_facility_build_the_spec_hierarchy() {
    let tmp = tempdir();
    let before = now();
    issue_hierarchy(tmp.path());
    let (root_dir, ca_dir, fac_dir) =
        (tmp.path().join("root"), tmp.path().join("ca-79"), tmp.path().join("facility-79001"));

    assert_private(&root_dir.join("key.pem"));
    assert_private(&ca_dir.join("key.pem"));
    assert_private(&fac_dir.join("key.pem"));

    let root = cert(&root_dir.join("cert.pem"));
    assert!(root.is_ca && root.self_issued);
    assert_eq!(root.path_len, None);

    let ca = cert(&ca_dir.join("cert.pem"));
    assert!(ca.is_ca && !ca.self_issued);
    assert_eq!(ca.path_len, Some(0));

    let fac = cert(&fac_dir.join("cert.pem"));
    assert!(!fac.is_ca);
    assert_eq!(fac.facility_code.as_deref(), Some("79001"));
    let ekus = fac.ekus.clone().expect("the DSC has an EKU extension");
    assert!(ekus.iter().any(|e| e == EKU_VACCINATION), "{ekus:?}");
    let (not_before, not_after) = fac.validity.unwrap();
    assert!(not_after <= now() + 730 * DAY, "at most 730 days from issue");
    // notBefore is back-dated one hour for verifier clock skew (src/pki/issue.rs).
    assert!(not_after - not_before <= 730 * DAY + 3600, "{not_before}..{not_after}");
    assert!(not_before <= before);

    // chain.pem = the DSC followed by its issuer's certificate.
    let chain_der: Vec<Vec<u8>> = certs(&fac_dir.join("chain.pem")).iter().map(|c| c.der().to_vec()).collect();
    assert_eq!(chain_der, [fac.der().to_vec(), ca.der().to_vec()]);
}

#[test]
fn chain_pem_is_cert_pem_then_the_issuer_cert_pem_byte_for_byte() {
    let tmp = tempdir();
    let k = keys_example();
    let fac = tmp.path().join("fac");
    issue_facility_under_ca_01("01002", "365", &fac).succeeds();
    let chain = std::fs::read_to_string(fac.join("chain.pem")).unwrap();
    let cert_pem = std::fs::read_to_string(fac.join("cert.pem")).unwrap();
    let ca_pem = std::fs::read_to_string(k.join("ca-01/cert.pem")).unwrap();
    assert_eq!(chain, format!("{cert_pem}{ca_pem}"));
}

#[test]
fn facility_validity_period_is_at_most_730_days() {
    let tmp = tempdir();
    issue_facility_under_ca_01("01002", "730", tmp.path()).succeeds();
    let (not_before, not_after) = cert(&tmp.path().join("cert.pem")).validity.unwrap();
    assert!(not_after - not_before <= 730 * DAY, "{} s over 730 days", not_after - not_before - 730 * DAY);
}

#[test]
fn init_root_refuses_to_overwrite_an_existing_key() {
    let tmp = tempdir();
    Vaxpass::new(["pki", "init-root", "--out"]).arg(tmp.path()).succeeds();
    let key_path = tmp.path().join("key.pem");
    let key = std::fs::read(&key_path).unwrap();
    let cert_pem = std::fs::read(tmp.path().join("cert.pem")).unwrap();

    let line = Vaxpass::new(["pki", "init-root", "--out"]).arg(tmp.path()).fails();
    assert!(line.contains(&key_path.display().to_string()), "names the existing key: {line}");
    assert_eq!(std::fs::read(&key_path).unwrap(), key, "the key is unchanged");
    assert_eq!(std::fs::read(tmp.path().join("cert.pem")).unwrap(), cert_pem);
}

fn issue_facility_under_ca_01(code: &str, days: &str, out: &Path) -> Vaxpass {
    let k = keys_example();
    Vaxpass::new(["pki", "issue-facility", "--issuer-key"])
        .arg(k.join("ca-01/key.pem"))
        .arg("--issuer-cert")
        .arg(k.join("ca-01/cert.pem"))
        .args(["--code", code, "--name", "Trạm Y tế Xã A", "--days", days, "--out"])
        .arg(out)
}

#[test]
fn issue_facility_refuses_more_than_730_days() {
    let tmp = tempdir();
    let out = tmp.path().join("fac");
    let line = issue_facility_under_ca_01("01002", "731", &out).fails();
    assert_eq!(line, "vaxpass: --days 731 is out of range (1..=730)");
    assert!(!out.join("key.pem").exists(), "nothing is written");
}

#[test]
fn issue_facility_refuses_malformed_facility_codes() {
    let tmp = tempdir();
    // 03 is not a GSO province code; 0100 has four digits.
    for code in ["03001", "0100"] {
        let out = tmp.path().join(code);
        let line = issue_facility_under_ca_01(code, "365", &out).fails();
        assert!(line.contains(&format!("facility code \"{code}\"")) && line.contains("PPNNN"), "{line}");
        assert!(!out.join("key.pem").exists(), "nothing is written for {code}");
    }
}

#[test]
fn unusable_issuer_key_is_named_in_one_line() {
    let tmp = tempdir();
    let k = keys_example();
    let ca_cert = k.join("ca-01/cert.pem");

    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    // A key of another hierarchy: well-formed, but not the key of ca-01's certificate.
    let other = tmp.path().join("other-root");
    let issued = vaxpass::pki::init_root("Other Root", 365, time::OffsetDateTime::now_utc()).unwrap();
    vaxpass::pki::write_issued(&other, &issued).unwrap();
    let cases = [
        (garbage, "no PEM block"),
        (ca_cert.clone(), "'CERTIFICATE' block"),
        (other.join("key.pem"), "does not match"),
    ];

    for (i, (key, problem)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("out-{i}"));
        let line = Vaxpass::new(["pki", "issue-facility", "--issuer-key"])
            .arg(&key)
            .arg("--issuer-cert")
            .arg(&ca_cert)
            .args(["--code", "01002", "--name", "Trạm Y tế Xã A", "--out"])
            .arg(&out)
            .fails();
        assert!(line.starts_with(&format!("vaxpass: {}: ", key.display())), "names {}: {line}", key.display());
        assert!(line.contains(problem), "says {problem:?}: {line}");
        assert!(!out.exists(), "nothing is written");
    }
}

#[test]
fn csr_certified_by_the_ca_signs_passports_that_verify() {
    let tmp = tempdir();
    let k = keys_example();
    let station = tmp.path().join("station");
    Vaxpass::new(["pki", "csr", "--code", "01100", "--name", "Trạm Y tế Xã A", "--out"]).arg(&station).succeeds();
    assert_private(&station.join("key.pem"));
    assert!(station.join("csr.pem").is_file());

    Vaxpass::new(["pki", "sign-csr", "--issuer-key"])
        .arg(k.join("ca-01/key.pem"))
        .arg("--issuer-cert")
        .arg(k.join("ca-01/cert.pem"))
        .arg("--csr")
        .arg(station.join("csr.pem"))
        .arg("--out")
        .arg(station.join("cert.pem"))
        .succeeds();
    let dsc = cert(&station.join("cert.pem"));
    assert_eq!(dsc.facility_code.as_deref(), Some("01100"));
    assert!(!dsc.is_ca);
    assert!(dsc.ekus.as_deref().unwrap_or_default().iter().any(|e| e == EKU_VACCINATION), "{:?}", dsc.ekus);

    // A trust directory as a verifier device holds it: root, provincial CA, the new DSC.
    let trust = tmp.path().join("trust");
    std::fs::create_dir(&trust).unwrap();
    std::fs::copy(k.join("root/cert.pem"), trust.join("root.pem")).unwrap();
    std::fs::copy(k.join("ca-01/cert.pem"), trust.join("ca-01.pem")).unwrap();
    std::fs::copy(station.join("cert.pem"), trust.join("dsc-01100.pem")).unwrap();

    let mut path = vec![dsc];
    path.extend(certs(&k.join("ca-01/cert.pem")));
    path.extend(certs(&k.join("root/cert.pem")));
    let (iat, exp) = passport_times(&path);
    let signed = sign_passport(&station.join("key.pem"), &station.join("cert.pem"), "01100", iat, exp);
    let v = Vaxpass::new(["verify", "--json", "--at", &rfc3339(iat + 1), "--trust"])
        .arg(&trust)
        .arg(&signed.text)
        .verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["signer"]["facility_code"], "01100");
    assert_eq!(v["signer"]["chain"].as_array().map(Vec::len), Some(3));
}
