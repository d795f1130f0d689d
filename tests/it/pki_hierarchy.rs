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

/// `issue-facility` under keys-example's ca-01, recording into `out` (never into
/// keys-example's own `issued.jsonl`).
fn issue_facility_under_ca_01(code: &str, days: &str, out: &Path) -> Vaxpass {
    let k = keys_example();
    let log = out.join("issued.jsonl");
    Vaxpass::new(["pki", "issue-facility", "--issuer-key"])
        .arg(k.join("ca-01/key.pem"))
        .arg("--issuer-cert")
        .arg(k.join("ca-01/cert.pem"))
        .arg("--issued-log")
        .arg(log)
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
        .arg("--issued-log")
        .arg(tmp.path().join("issued.jsonl"))
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

// ---- Issue #8: strict DER, passport-signer policy (item 11), provincial confinement (item 16)

/// keys-example's Bạch Mai DSC before the fix: rcgen's `IsCa::ExplicitNoCa` encoded
/// `basicConstraints { cA FALSE }`, which DER forbids and Python `cryptography` refuses.
const EXPLICIT_CA_FALSE_DSC: &str = include_str!("explicit_ca_false_dsc.pem");

/// Every DER block (certificates and CSRs) of a PEM file, with its tag.
fn der_blocks(path: &Path) -> Vec<(String, Vec<u8>)> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ::pem::parse_many(pem).unwrap().into_iter().map(|p| (p.tag().to_owned(), p.contents().to_vec())).collect()
}

/// The end-entity form of basicConstraints that strict parsers read: an empty SEQUENCE (or no
/// extension at all), never `cA FALSE`. Checked with x509-parser, independently of vaxpass.
fn end_entity_basic_constraints_ok(der: &[u8]) -> bool {
    let (_, x) = x509_parser::parse_x509_certificate(der).unwrap();
    x.extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == "2.5.29.19")
        .all(|e| e.value != [0x30, 0x03, 0x01, 0x01, 0x00])
}

/// Whether Python `cryptography` is installed (a cross-check only: the Rust checks stand alone).
fn python_cryptography() -> bool {
    std::process::Command::new("python3").args(["-c", "import cryptography"]).output().is_ok_and(|o| o.status.success())
}

/// Python `cryptography`'s verdict on a PEM file: every certificate and CSR loads with its
/// extensions. `Err` carries its message.
fn python_loads(path: &Path) -> Result<(), String> {
    let script = "import sys\nfrom cryptography import x509\nd=open(sys.argv[1],'rb').read()\n\
        import re\nfor m in re.finditer(rb'-----BEGIN ([A-Z ]+)-----.*?-----END \\1-----', d, re.S):\n \
        b=m.group(0)\n if m.group(1)==b'CERTIFICATE REQUEST': x509.load_pem_x509_csr(b).extensions\n \
        else: x509.load_pem_x509_certificate(b).extensions\n";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[track_caller]
fn assert_strict_der(path: &Path, python: bool) {
    let blocks = der_blocks(path);
    assert!(!blocks.is_empty(), "{}: no PEM block", path.display());
    for (tag, der) in blocks {
        if let Err(e) = vaxpass::pki::der::check_strict(&der) {
            panic!("{}: {tag}: {e}", path.display());
        }
        if tag == "CERTIFICATE" {
            assert!(end_entity_basic_constraints_ok(&der), "{}: basicConstraints cA FALSE", path.display());
        }
    }
    if python && let Err(e) = python_loads(path) {
        panic!("{}: Python cryptography refuses it: {e}", path.display());
    }
}

#[test]
fn every_certificate_and_csr_vaxpass_writes_is_strict_der() {
    let python = python_cryptography();
    // The checks can fail: the DSC vaxpass wrote before the fix is refused by each of them.
    let old = tempdir();
    let old_path = old.path().join("old.pem");
    std::fs::write(&old_path, EXPLICIT_CA_FALSE_DSC).unwrap();
    let (_, old_der) = der_blocks(&old_path).remove(0);
    let e = vaxpass::pki::der::check_strict(&old_der).unwrap_err();
    assert_eq!(e.rule, "BOOLEAN FALSE encoded (a DEFAULT value in X.509)");
    assert!(!end_entity_basic_constraints_ok(&old_der));
    if python {
        assert!(python_loads(&old_path).unwrap_err().contains("EncodedDefault"));
    }

    // keys-example, as committed.
    let k = keys_example();
    let mut files: Vec<std::path::PathBuf> =
        ["root/cert.pem", "ca-01/cert.pem", "ca-01/chain.pem"].iter().map(|f| k.join(f)).collect();
    for fac in ["facility-01001", "facility-01100"] {
        files.push(k.join(fac).join("cert.pem"));
        files.push(k.join(fac).join("chain.pem"));
    }

    // Everything `vaxpass pki` writes: root, provincial CA, facility DSC, CSR, sign-csr's
    // certificate, and the service's trust-list signer.
    let tmp = tempdir();
    issue_hierarchy(tmp.path());
    for f in
        ["root/cert.pem", "ca-79/cert.pem", "ca-79/chain.pem", "facility-79001/cert.pem", "facility-79001/chain.pem"]
    {
        files.push(tmp.path().join(f));
    }
    let station = tmp.path().join("station");
    Vaxpass::new(["pki", "csr", "--code", "79100", "--name", "Trạm Y tế Phường Bến Nghé", "--out"])
        .arg(&station)
        .succeeds();
    Vaxpass::new(["pki", "sign-csr", "--issuer-key"])
        .arg(tmp.path().join("ca-79/key.pem"))
        .arg("--issuer-cert")
        .arg(tmp.path().join("ca-79/cert.pem"))
        .arg("--csr")
        .arg(station.join("csr.pem"))
        .arg("--out")
        .arg(station.join("cert.pem"))
        .succeeds();
    files.push(station.join("csr.pem"));
    files.push(station.join("cert.pem"));
    let root =
        vaxpass::pki::CaFiles::load(&tmp.path().join("root/key.pem"), &tmp.path().join("root/cert.pem")).unwrap();
    let signer = vaxpass::pki::issue_trust_list_signer(&root, 30, time::OffsetDateTime::now_utc()).unwrap();
    std::fs::write(tmp.path().join("trust-list-signer.pem"), signer.cert_pem).unwrap();
    files.push(tmp.path().join("trust-list-signer.pem"));

    for f in &files {
        assert_strict_der(f, python);
    }
}

/// An end-entity certificate issued with rcgen directly by the CA in `issuer_dir`, bypassing
/// `vaxpass pki`'s checks (what a mis-operated or other tool would issue): subject
/// serialNumber `code` if any, the given EKUs. Writes `out/{key.pem,cert.pem}`.
fn forge_end_entity(issuer_dir: &Path, code: Option<&str>, ekus: Vec<rcgen::ExtendedKeyUsagePurpose>, out: &Path) {
    let issuer_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(issuer_dir.join("key.pem")).unwrap()).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(issuer_dir.join("cert.pem")).unwrap(), issuer_key)
            .unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name.push(rcgen::DnType::CommonName, "forged end entity");
    if let Some(code) = code {
        p.distinguished_name.push(
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
            rcgen::DnValue::PrintableString(code.try_into().unwrap()),
        );
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(30);
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = ekus;
    p.use_authority_key_identifier_extension = true;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(out.join("cert.pem"), cert.pem()).unwrap();
}

/// Verifies a passport signed by `signer_dir`'s key with code `code`, trusting keys-example's
/// root and ca-01 and the signer's certificate (chained, not pinned).
fn verify_chained(signer_dir: &Path, code: &str) -> serde_json::Value {
    let k = keys_example();
    let mut path = certs(&signer_dir.join("cert.pem"));
    path.extend(certs(&k.join("ca-01/cert.pem")));
    path.extend(certs(&k.join("root/cert.pem")));
    let (iat, exp) = passport_times(&path);
    let signed = sign_passport(&signer_dir.join("key.pem"), &signer_dir.join("cert.pem"), code, iat, exp);
    Vaxpass::new(["verify", "--json", "--at", &rfc3339(iat + 1), "--trust"])
        .arg(k.join("root/cert.pem"))
        .arg("--trust")
        .arg(k.join("ca-01/cert.pem"))
        .arg("--trust")
        .arg(signer_dir.join("cert.pem"))
        .arg(&signed.text)
        .verdict()
}

#[test]
fn root_issued_tls_and_trust_list_certificates_never_sign_passports() {
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    let tmp = tempdir();
    let k = keys_example();
    let root = k.join("root");
    let vaccination = || Eku::Other(vec![1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2]);

    // A TLS server certificate of the root, even one carrying a facility code and the
    // vaccination EKU as well: its TLS role gives it away.
    let tls = tmp.path().join("tls");
    forge_end_entity(&root, Some("01001"), vec![Eku::ServerAuth, vaccination()], &tls);
    // The trust-list signer, as the service issues it.
    let list_signer = tmp.path().join("list-signer");
    let ca = vaxpass::pki::CaFiles::load(&root.join("key.pem"), &root.join("cert.pem")).unwrap();
    let issued = vaxpass::pki::issue_trust_list_signer(&ca, 30, time::OffsetDateTime::now_utc()).unwrap();
    vaxpass::pki::write_issued(&list_signer, &issued).unwrap();
    // An end entity of the root without a facility code or any EKU.
    let no_code = tmp.path().join("no-code");
    forge_end_entity(&root, None, Vec::new(), &no_code);

    for (dir, reason) in
        [(&tls, "KEY_USAGE_MISMATCH"), (&list_signer, "KEY_USAGE_MISMATCH"), (&no_code, "CHAIN_INVALID")]
    {
        // Signing side: the policy `vaxpass sign` and the service run.
        let c = cert(&dir.join("cert.pem"));
        assert!(vaxpass::pki::check_passport_signer(&c).is_err(), "{} may sign", dir.display());
        // Verifying side: the chain to the root is fine, the role is not.
        let v = verify_chained(dir, "01001");
        assert_reason(&v, reason);
    }
    // Control: the same forging, as a facility DSC, signs passports that verify.
    let facility = tmp.path().join("facility");
    forge_end_entity(&root, Some("01001"), vec![vaccination()], &facility);
    vaxpass::pki::check_passport_signer(&cert(&facility.join("cert.pem"))).unwrap();
    assert_reason(&verify_chained(&facility, "01001"), "OK");
}

#[test]
fn verifier_refuses_a_facility_certified_outside_its_provincial_cas_province() {
    let tmp = tempdir();
    let ca_01 = keys_example().join("ca-01");
    let vaccination = || rcgen::ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2]);
    // Hà Nội's CA (01) certifying Chợ Rẫy (79001), bypassing `vaxpass pki`.
    let outside = tmp.path().join("79001");
    forge_end_entity(&ca_01, Some("79001"), vec![vaccination()], &outside);
    let v = verify_chained(&outside, "79001");
    assert_reason(&v, "CHAIN_INVALID");
    // Control: the same forging inside province 01 verifies.
    let inside = tmp.path().join("01002");
    forge_end_entity(&ca_01, Some("01002"), vec![vaccination()], &inside);
    assert_reason(&verify_chained(&inside, "01002"), "OK");
}

#[test]
fn provincial_ca_issues_only_its_province_and_duplicate_codes_need_a_flag() {
    let tmp = tempdir();
    let root = tmp.path().join("root");
    let ca = tmp.path().join("ca-01");
    Vaxpass::new(["pki", "init-root", "--out"]).arg(&root).succeeds();
    Vaxpass::new(["pki", "issue-ca", "--issuer-key"])
        .arg(root.join("key.pem"))
        .arg("--issuer-cert")
        .arg(root.join("cert.pem"))
        .args(["--province", "01", "--out"])
        .arg(&ca)
        .succeeds();
    let issue = |issuer: &Path, code: &str, out: &Path| {
        Vaxpass::new(["pki", "issue-facility", "--issuer-key"])
            .arg(issuer.join("key.pem"))
            .arg("--issuer-cert")
            .arg(issuer.join("cert.pem"))
            .args(["--code", code, "--name", "Bệnh viện Chợ Rẫy", "--out"])
            .arg(out)
    };

    // Hà Nội's CA cannot certify 79001, directly or from a CSR.
    let out = tmp.path().join("fac-79001");
    let line = issue(&ca, "79001", &out).fails();
    assert!(line.contains("province 01") && line.contains("cannot certify facility 79001"), "{line}");
    assert!(!out.exists(), "nothing is written");
    let station = tmp.path().join("station-79100");
    Vaxpass::new(["pki", "csr", "--code", "79100", "--name", "Trạm Y tế", "--out"]).arg(&station).succeeds();
    let line = Vaxpass::new(["pki", "sign-csr", "--issuer-key"])
        .arg(ca.join("key.pem"))
        .arg("--issuer-cert")
        .arg(ca.join("cert.pem"))
        .arg("--csr")
        .arg(station.join("csr.pem"))
        .arg("--out")
        .arg(station.join("cert.pem"))
        .fails();
    assert!(line.contains("cannot certify facility 79100"), "{line}");
    assert!(!station.join("cert.pem").exists());
    // The Ministry root may certify any province; a provincial CA issues no CA.
    issue(&root, "79001", &out).succeeds();
    let line = Vaxpass::new(["pki", "issue-ca", "--issuer-key"])
        .arg(ca.join("key.pem"))
        .arg("--issuer-cert")
        .arg(ca.join("cert.pem"))
        .args(["--province", "79", "--out"])
        .arg(tmp.path().join("ca-79"))
        .fails();
    assert!(line.contains("only the Ministry root"), "{line}");

    // A second valid certificate for 01002 needs --allow-duplicate-code.
    issue(&ca, "01002", &tmp.path().join("a")).succeeds();
    let line = issue(&ca, "01002", &tmp.path().join("b")).fails();
    assert!(
        line.contains("01002 already has a valid certificate") && line.contains("--allow-duplicate-code"),
        "{line}"
    );
    assert!(!tmp.path().join("b/key.pem").exists(), "nothing is written");
    issue(&ca, "01002", &tmp.path().join("b")).arg("--allow-duplicate-code").succeeds();
    let record = std::fs::read_to_string(ca.join("issued.jsonl")).unwrap();
    let codes: Vec<String> = record
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["01002", "01002"]);
}
