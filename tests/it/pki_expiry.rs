//! `vaxpass pki` warns, one stderr line per certificate, when a certificate it reads or
//! writes expires within 90 days (issue 11 §4). The clock is the command's own (`pki` has no
//! `--at`); the certificates are issued relative to it, so the figures do not depend on the
//! date the suite runs.

use crate::util::{Vaxpass, tempdir};

fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("warning: certificate")).collect()
}

#[test]
fn certificates_expiring_within_90_days_get_one_warning_line_each() {
    let tmp = tempdir();
    let root = tmp.path().join("root");
    // notBefore is an hour back and validity counts from it: 29 whole days remain.
    let out = Vaxpass::new(["pki", "init-root", "--days", "30", "--cn", "Short Root", "--out"]).arg(&root).succeeds();
    assert_eq!(warnings(&out.stderr).len(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("warning: certificate \"CN=Short Root, O="), "{}", out.stderr);
    assert!(out.stderr.contains("expires in 29 days ("), "{}", out.stderr);

    // The issuer read and the CA written (cut to its issuer's end): one line each.
    let out = Vaxpass::new(["pki", "issue-ca", "--province", "79", "--issuer-key"])
        .arg(root.join("key.pem"))
        .arg("--issuer-cert")
        .arg(root.join("cert.pem"))
        .arg("--out")
        .arg(tmp.path().join("ca"))
        .succeeds();
    let lines = warnings(&out.stderr);
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(lines[0].contains("Short Root") && lines[1].contains("Provincial CA 79"), "{lines:?}");

    // 100 days: no warning.
    let out = Vaxpass::new(["pki", "init-root", "--days", "100", "--out"]).arg(tmp.path().join("long")).succeeds();
    assert_eq!(warnings(&out.stderr), Vec::<&str>::new());
}
