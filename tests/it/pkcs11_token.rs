//! Keys in hardware tokens (SPEC §10), with SoftHSM2 (Debian's `softhsm2`, installed by
//! `scripts/test`): a token initialised here in a temporary directory; keys generated in it,
//! certified, batch-signed with two workers and verified through the normal verifier; and
//! the one-line errors of a wrong PIN, a missing object and a missing module. Also RSA
//! facility keys as PEM files, which sign PS256.

use std::path::{Path, PathBuf};

use crate::util::{Vaxpass, certs, keys_example, rfc3339, tempdir};

/// Debian's SoftHSM2 module.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "vaxpass-test";
const USER_PIN: &str = "246810";

/// A SoftHSM2 token of our own: its configuration and object store live in a temporary
/// directory, so tests never touch the machine's tokens.
struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    fn init() -> SoftHsm {
        assert!(
            Path::new(SOFTHSM_MODULE).is_file(),
            "{SOFTHSM_MODULE} is missing: install Debian's softhsm2 (scripts/test does)"
        );
        let dir = tempdir();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .unwrap();
        std::fs::write(dir.path().join("pin"), format!("{USER_PIN}\n")).unwrap();
        let out = std::process::Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
            .args(["--init-token", "--free", "--label", TOKEN, "--pin", USER_PIN, "--so-pin", "13579"])
            .output()
            .expect("run softhsm2-util");
        assert!(out.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&out.stderr));
        SoftHsm { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The RFC 7512 URI of `object` in the token, the PIN read from a file.
    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={TOKEN};object={object}?module-path={SOFTHSM_MODULE}&pin-source=file:{}",
            self.dir.path().join("pin").display()
        )
    }

    /// `vaxpass` with this token's configuration.
    fn vaxpass<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Vaxpass {
        Vaxpass::new(args).env("SOFTHSM2_CONF", self.conf())
    }
}

/// A batch of `n` synthetic persons of commune station 01100, one dose each.
fn batch(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut registry = String::from("id_number,old_id,full_name,dob,sex\n");
    let mut doses = String::from(
        "record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n",
    );
    for i in 0..n {
        let id = format!("0010900{i:05}");
        registry.push_str(&format!("{id},,Nguyễn Văn An,1990-05-02,M\n"));
        doses.push_str(&format!("R{i},01100,{id},Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,1,01/07/2021\n"));
    }
    std::fs::write(data.join("registry.csv"), registry).unwrap();
    std::fs::write(data.join("doses.csv"), doses).unwrap();
    data
}

/// `pki sign-csr` by the development provincial CA 01.
fn certify(csr: &Path, out: &Path, log: &Path) {
    let k = keys_example();
    Vaxpass::new(["pki", "sign-csr", "--issuer-key"])
        .arg(k.join("ca-01/key.pem"))
        .arg("--issuer-cert")
        .arg(k.join("ca-01/cert.pem"))
        .arg("--csr")
        .arg(csr)
        .arg("--out")
        .arg(out)
        .arg("--issued-log")
        .arg(log)
        .arg("--allow-duplicate-code")
        .succeeds();
}

/// A verifier's trust directory: root, CA 01 and the DSC.
fn trust_dir(dir: &Path, dsc: &Path) -> PathBuf {
    let k = keys_example();
    let trust = dir.join("trust");
    std::fs::create_dir_all(&trust).unwrap();
    std::fs::copy(k.join("root/cert.pem"), trust.join("root.pem")).unwrap();
    std::fs::copy(k.join("ca-01/cert.pem"), trust.join("ca-01.pem")).unwrap();
    std::fs::copy(dsc, trust.join(format!("dsc-{}.pem", dsc.parent().unwrap().file_name().unwrap().to_string_lossy())))
        .unwrap();
    trust
}

/// The signing clock: a minute after the DSC's notBefore (which is an hour before it was
/// issued), well inside every certificate of its path.
fn signing_time(dsc: &Path) -> i64 {
    certs(dsc)[0].validity.unwrap().0 + 60
}

/// Signs `data` with `key`/`cert` (two workers) and verifies every passport through the
/// normal verifier; returns the passports' COSE algorithms.
fn sign_and_verify(v: impl Fn(&[&str]) -> Vaxpass, dir: &Path, key: &str, cert: &Path, data: &Path) -> Vec<i128> {
    let at = rfc3339(signing_time(cert));
    let out = dir.join("out");
    let summary = v(&["sign", "--jobs", "2", "--json", "--at", &at, "--key", key])
        .arg("--cert")
        .arg(cert)
        .arg("--input")
        .arg(data.join("doses.csv"))
        .arg("--registry")
        .arg(data.join("registry.csv"))
        .arg("--out")
        .arg(&out)
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("v.db").display()))
        .arg("--secret")
        .arg(dir.join("secret"))
        .succeeds();
    let summary: serde_json::Value = serde_json::from_str(&summary.stdout).unwrap();
    let persons = std::fs::read_to_string(data.join("registry.csv")).unwrap().lines().count() as u64 - 1;
    assert_eq!(summary["passports"].as_u64(), Some(persons), "{summary:#}");
    let trust = trust_dir(dir, cert);
    let mut algs = Vec::new();
    for line in std::fs::read_to_string(out.join("passports.jsonl")).unwrap().lines().take(3) {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let hc1 = p["hc1"].as_str().unwrap();
        let verdict = Vaxpass::new(["verify", "--json", "--at", &at, "--trust"]).arg(&trust).arg(hc1).verdict();
        crate::util::assert_reason(&verdict, "OK");
        assert_eq!(verdict["signer"]["facility_code"], "01100");
        let alg = vaxpass::passport::decode(hc1).unwrap().alg.unwrap();
        algs.push(match alg {
            vaxpass::passport::Algorithm::Es256 => -7,
            vaxpass::passport::Algorithm::Ps256 => -37,
        });
    }
    algs
}

#[test]
fn token_keys_are_generated_certified_and_batch_sign_passports_that_verify() {
    let hsm = SoftHsm::init();
    let tmp = tempdir();
    let data = batch(tmp.path(), 40);
    for (object, key_type, alg) in [("dsc-ec", "p256", -7), ("dsc-rsa", "rsa3072", -37)] {
        let station = tmp.path().join(object);
        let uri = hsm.uri(object);
        let out = hsm
            .vaxpass(["pki", "csr", "--code", "01100", "--name", "Trạm Y tế Xã A", "--key", &uri])
            .args(["--key-type", key_type, "--out"])
            .arg(&station)
            .succeeds();
        // Only the request leaves the token: no key file is written.
        assert!(station.join("csr.pem").is_file(), "{out:?}");
        assert!(!station.join("key.pem").exists());
        // The same label again is refused rather than replaced.
        let again = hsm
            .vaxpass(["pki", "csr", "--code", "01100", "--name", "X", "--key", &uri, "--out"])
            .arg(tmp.path().join("again"))
            .fails();
        assert_eq!(
            again,
            format!(
                "vaxpass: PKCS#11 token \"{TOKEN}\": a key labelled \"{object}\" exists already; refusing to replace it"
            )
        );
        certify(&station.join("csr.pem"), &station.join("cert.pem"), &tmp.path().join("issued.jsonl"));
        // What vaxpass wrote for the token key is strict DER (SPEC §10).
        for file in ["csr.pem", "cert.pem"] {
            let der = ::pem::parse(std::fs::read(station.join(file)).unwrap()).unwrap();
            vaxpass::pki::der::check_strict(der.contents()).unwrap_or_else(|e| panic!("{object} {file}: {e}"));
        }

        let run = tmp.path().join(format!("run-{object}"));
        std::fs::create_dir_all(&run).unwrap();
        let algs = sign_and_verify(|a| hsm.vaxpass(a), &run, &uri, &station.join("cert.pem"), &data);
        assert_eq!(algs, vec![alg; 3], "{object}");
    }
}

#[test]
fn root_in_token_certifies_a_provincial_ca_in_strict_der() {
    let hsm = SoftHsm::init();
    let tmp = tempdir();
    let uri = hsm.uri("moh-root");
    let root = tmp.path().join("root");
    hsm.vaxpass(["pki", "init-root", "--issuer-key", &uri, "--out"]).arg(&root).succeeds();
    assert!(!root.join("key.pem").exists(), "the root key stays in the token");
    let ca = tmp.path().join("ca-79");
    hsm.vaxpass(["pki", "issue-ca", "--issuer-key", &uri, "--issuer-cert"])
        .arg(root.join("cert.pem"))
        .args(["--province", "79", "--out"])
        .arg(&ca)
        .succeeds();
    // The CA's certificate was signed in the token: it chains to the token's root.
    let chain = certs(&ca.join("chain.pem"));
    let root_cert = &certs(&root.join("cert.pem"))[0];
    assert_eq!(chain[1].der(), root_cert.der());
    for file in [root.join("cert.pem"), ca.join("cert.pem")] {
        let pem = ::pem::parse(std::fs::read(&file).unwrap()).unwrap();
        vaxpass::pki::der::check_strict(pem.contents()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (_, x) = x509_parser::parse_x509_certificate(pem.contents()).unwrap();
        let (_, issuer) = x509_parser::parse_x509_certificate(root_cert.der()).unwrap();
        x.verify_signature(Some(issuer.public_key())).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

#[test]
fn wrong_pin_missing_object_and_missing_module_each_give_one_line() {
    let hsm = SoftHsm::init();
    let tmp = tempdir();
    let k = keys_example().join("facility-01001");
    let data = batch(tmp.path(), 1);
    let sign = |key: &str| {
        hsm.vaxpass(["sign", "--key", key, "--cert"])
            .arg(k.join("cert.pem"))
            .arg("--input")
            .arg(data.join("doses.csv"))
            .arg("--out")
            .arg(tmp.path().join("out"))
            .arg("--db")
            .arg(format!("sqlite://{}", tmp.path().join("v.db").display()))
            .arg("--secret")
            .arg(tmp.path().join("secret"))
    };
    // A key must exist for the wrong PIN to be the first problem met.
    let station = tmp.path().join("station");
    hsm.vaxpass(["pki", "csr", "--code", "01100", "--name", "Trạm", "--key", &hsm.uri("dsc"), "--out"])
        .arg(&station)
        .succeeds();
    let wrong_pin = format!("pkcs11:token={TOKEN};object=dsc?module-path={SOFTHSM_MODULE}&pin-value=000000");
    assert_eq!(sign(&wrong_pin).fails(), format!("vaxpass: PKCS#11 token \"{TOKEN}\": wrong PIN"));
    assert_eq!(
        sign(&hsm.uri("no-such-key")).fails(),
        format!("vaxpass: PKCS#11 token \"{TOKEN}\": no private key labelled \"no-such-key\"")
    );
    let no_module = format!("pkcs11:token={TOKEN};object=dsc?module-path=/nonexistent/libpkcs11.so&pin-value=1");
    assert_eq!(
        sign(&no_module).fails(),
        "vaxpass: PKCS#11 module /nonexistent/libpkcs11.so: cannot be loaded (no such file)"
    );
    let no_token = format!("pkcs11:token=other;object=dsc?module-path={SOFTHSM_MODULE}&pin-value=1");
    assert_eq!(
        sign(&no_token).fails(),
        format!("vaxpass: PKCS#11 module {SOFTHSM_MODULE}: no token labelled \"other\"")
    );
    // The token key does not belong to 01001's certificate: refused before anything is signed.
    let mismatch = sign(&hsm.uri("dsc")).fails();
    assert!(mismatch.contains("does not match the certificate"), "{mismatch}");
    assert!(!tmp.path().join("out").exists());
}

/// A test-only RSA-2048 PKCS#8 key (made with `openssl genpkey -algorithm RSA`), standing in
/// for Viet Nam's production RSA DSC (DOMAIN §5). Not secret, not for production.
const RSA_TEST_KEY: &str = include_str!("rsa2048_test_key.pem");

#[test]
fn rsa_key_file_signs_ps256_passports_that_verify() {
    let tmp = tempdir();
    let station = tmp.path().join("station-rsa");
    std::fs::create_dir_all(&station).unwrap();
    let key_path = station.join("key.pem");
    std::fs::write(&key_path, RSA_TEST_KEY).unwrap();
    // The facility's CSR for its RSA key, as another tool would make it.
    let der = ::pem::parse(RSA_TEST_KEY).unwrap();
    let key = rcgen::KeyPair::try_from(der.contents()).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Trạm Y tế Xã B");
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
        rcgen::DnValue::PrintableString("01100".try_into().unwrap()),
    );
    std::fs::write(station.join("csr.pem"), params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    certify(&station.join("csr.pem"), &station.join("cert.pem"), &tmp.path().join("issued.jsonl"));
    let data = batch(tmp.path(), 4);
    let algs =
        sign_and_verify(|a| Vaxpass::new(a), tmp.path(), key_path.to_str().unwrap(), &station.join("cert.pem"), &data);
    assert_eq!(algs, vec![-37; 3]);
}
