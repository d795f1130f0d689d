//! Shared helpers: a `Vaxpass` command builder that runs the real binary, temp directories,
//! and single passports signed through the library (for verification tests that need a
//! passport with a chosen content, clock or key, which `vaxpass sign` does not offer).

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use time::OffsetDateTime;
use vaxpass::{passport, pki};

/// The repository root (the binary runs there, so `keys-example` resolves as in the docs).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The development hierarchy of SPEC §2.
pub fn keys_example() -> PathBuf {
    repo().join("keys-example")
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// One run of `vaxpass`, built up argument by argument.
pub struct Vaxpass {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
}

impl Vaxpass {
    /// `vaxpass` with the given arguments, run in the repository root.
    pub fn new<I, S>(args: I) -> Vaxpass
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaxpass"));
        cmd.current_dir(repo()).args(args);
        Vaxpass { cmd, stdin: None }
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Vaxpass {
        self.cmd.arg(a);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Vaxpass
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable of the run (e.g. `SOFTHSM2_CONF` for a test token).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Vaxpass {
        self.cmd.env(key, value);
        self
    }

    /// Feeds `bytes` on standard input (otherwise stdin is empty, never the terminal).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Vaxpass {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to completion.
    pub fn run(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn vaxpass");
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A command that fails before reading stdin closes it; that is not a test error.
            match pipe.write_all(&bytes) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
                _ => {}
            }
        }
        let out = child.wait_with_output().expect("wait for vaxpass");
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts exit status 0.
    #[track_caller]
    pub fn succeeds(self) -> Output {
        let out = self.run();
        assert_eq!(out.code, Some(0), "expected success; {out:#?}");
        out
    }

    /// Runs and asserts exit status `code`.
    #[track_caller]
    pub fn exits(self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(out.code, Some(code), "unexpected exit status; {out:#?}");
        out
    }

    /// Runs and asserts the failure contract of SPEC §6: exit 2, nothing on stdout, one
    /// line on stderr starting `vaxpass: `. Returns that line without the newline.
    #[track_caller]
    pub fn fails(self) -> String {
        let out = self.exits(2);
        assert_eq!(out.stdout, "", "a failure prints nothing on stdout");
        let line = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
        assert!(!line.contains('\n'), "stderr must be one line:\n{}", out.stderr);
        assert!(line.starts_with("vaxpass: "), "stderr must start with `vaxpass: `: {line}");
        line.to_owned()
    }

    /// Runs `verify --json`-style and parses stdout as one JSON object, asserting the exit
    /// status matches the verdict (0 valid, 1 not valid).
    #[track_caller]
    pub fn verdict(self) -> serde_json::Value {
        let out = self.run();
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}); {out:#?}"));
        let valid = v["valid"].as_bool().expect("`valid` is a bool");
        assert_eq!(out.code, Some(if valid { 0 } else { 1 }), "exit status must follow `valid`; {out:#?}");
        assert!(out.stdout.ends_with("}\n") && out.stdout.lines().count() == 1, "one JSON line: {}", out.stdout);
        v
    }
}

/// Asserts a `verify --json` verdict's reason code.
#[track_caller]
pub fn assert_reason(verdict: &serde_json::Value, reason: &str) {
    assert_eq!(verdict["reason"].as_str(), Some(reason), "verdict: {verdict:#}");
    assert_eq!(verdict["valid"].as_bool(), Some(reason == "OK"));
}

/// Parses every certificate in a PEM or DER file, strictly.
#[track_caller]
pub fn certs(path: &Path) -> Vec<pki::Certificate> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pki::parse_certificates(&bytes, true).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one certificate in a file.
#[track_caller]
pub fn cert(path: &Path) -> pki::Certificate {
    let mut all = certs(path);
    assert_eq!(all.len(), 1, "{}: expected one certificate", path.display());
    all.remove(0)
}

/// `t` (Unix seconds) as RFC 3339, for `--at`.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .expect("a representable time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting")
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The clock of passports signed by keys-example (2027-06-01T00:00Z): inside its facility
/// certificates' validity (2026-11-30T16:28Z to 2028-11-29), whatever the machine's date
/// (issue 11 item 4; `scripts/test-2029`).
pub const KEYS_EXAMPLE_NOW: i64 = 1_811_808_000;

/// `iat`/`exp` for a passport whose signer's path is made of `chain`: iat an hour before
/// [`KEYS_EXAMPLE_NOW`] when every certificate of the chain is valid then (keys-example);
/// otherwise (a hierarchy the test issued at the machine's date) a minute after the latest
/// notBefore, so that `--at iat - 1` still finds every certificate valid. exp 30 days later.
pub fn passport_times(chain: &[pki::Certificate]) -> (i64, i64) {
    let validity = || chain.iter().filter_map(|c| c.validity);
    let latest_not_before = validity().map(|(nb, _)| nb).max().unwrap_or(i64::MIN);
    let earliest_not_after = validity().map(|(_, na)| na).min().unwrap_or(i64::MAX);
    let iat = if latest_not_before + 60 <= KEYS_EXAMPLE_NOW - 3600 && KEYS_EXAMPLE_NOW < earliest_not_after {
        KEYS_EXAMPLE_NOW - 3600
    } else {
        latest_not_before + 60
    };
    (iat, iat + 3600 + 30 * 86_400)
}

/// The test person: synthetic, with the diacritics a Vietnamese name carries.
pub const FULL_NAME: &str = "Nguy\u{1ec5}n V\u{103}n An";

/// A signed passport and what went into it.
pub struct Signed {
    /// `HC1:…`
    pub text: String,
    /// The UVCI (`ci`).
    pub uvci: String,
    /// `iat`.
    pub iat: i64,
    /// `exp`.
    pub exp: i64,
    /// The signer certificate.
    pub dsc: pki::Certificate,
}

/// Signs a two-dose passport with `key_pem` for the DSC in `cert_pem`, through the library as
/// in the `vaxpass` crate docs.
#[track_caller]
pub fn sign_passport(key_pem: &Path, cert_pem: &Path, facility_code: &str, iat: i64, exp: i64) -> Signed {
    let key = pki::SigningKey::load(key_pem).expect("load the signing key");
    let dsc = cert(cert_pem);
    let vaccine = passport::vaccines::lookup("AstraZeneca").expect("AstraZeneca is a known vaccine");
    let doses = [
        passport::Dose { vaccine, date: time::macros::date!(2021 - 08 - 01) },
        passport::Dose { vaccine, date: time::macros::date!(2021 - 10 - 15) },
    ];
    let uvci = passport::Uvci::new(facility_code, "0123456789ABCDEF").expect("a well-formed UVCI");
    let content = passport::PassportContent {
        person: passport::Person { full_name: FULL_NAME.into(), dob: "1990-01-02".into() },
        doses: passport::number_doses(&doses),
        issuer: "Ministry of Health Viet Nam".into(),
        uvci: uvci.clone(),
        issued_at: iat,
        expires_at: exp,
        include_history: true,
    };
    let text = passport::sign(&content, passport::Algorithm::Es256, &dsc.kid.0, |m| key.sign(m))
        .expect("signing")
        .expect("the passport has doses");
    Signed { text, uvci: uvci.as_str().to_owned(), iat, exp, dsc }
}

/// A passport signed by keys-example's Bạch Mai Hospital (facility 01001), valid now.
pub fn keys_example_passport() -> Signed {
    let k = keys_example();
    let mut chain = certs(&k.join("facility-01001/chain.pem"));
    chain.extend(certs(&k.join("root/cert.pem")));
    let (iat, exp) = passport_times(&chain);
    sign_passport(&k.join("facility-01001/key.pem"), &k.join("facility-01001/cert.pem"), "01001", iat, exp)
}

/// Issues a separate hierarchy (root → provincial CA 79 → facility 79001) into `dir` through
/// the library; returns the facility's directory (key.pem, cert.pem, chain.pem).
#[track_caller]
pub fn other_hierarchy(dir: &Path) -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let root = dir.join("root");
    let ca = dir.join("ca-79");
    let facility = dir.join("facility-79001");
    let issued = pki::init_root("Other Root CA (tests)", 3650, now).expect("init root");
    pki::write_issued(&root, &issued).expect("write root");
    let issuer = pki::CaFiles::load(&root.join("key.pem"), &root.join("cert.pem")).expect("load root");
    let issued = pki::issue_ca(&issuer, "79", 1825, now).expect("issue CA");
    pki::write_issued(&ca, &issued).expect("write CA");
    let issuer = pki::CaFiles::load(&ca.join("key.pem"), &ca.join("cert.pem")).expect("load CA");
    let issued =
        pki::issue_facility(&issuer, "79001", "B\u{1ec7}nh vi\u{1ec7}n Th\u{1eed}", 365, now).expect("issue facility");
    pki::write_issued(&facility, &issued).expect("write facility");
    facility
}
