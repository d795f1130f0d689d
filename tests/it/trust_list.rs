//! `vaxpass verify --trust-list FILE`: a verifier device updates offline from a signed trust
//! list; it checks the signer's chain to its own root and the signature, refuses an older
//! version than one it used, a stale or future list, a version beyond the issue time, and any
//! certificate that does not chain to the roots it pins; then applies the list's DSCs and
//! revocations. Every run passes the clock with `--at`.

use std::path::Path;

use vaxpass::pki::bundle::{TrustBundle, seal};
use vaxpass::pki::{self, CaFiles, Certificate, Revocations, SigningKey, TrustStore};

use crate::util::{Signed, Vaxpass, certs, keys_example, other_hierarchy, rfc3339, tempdir};

const DAY: i64 = 86_400;

/// keys-example's roots, intermediates and DSCs, issued at `issued_at`.
fn keys_example_bundle(version: u64, issued_at: i64) -> TrustBundle {
    let mut trust = TrustStore::new();
    trust.load_trusted(&keys_example()).unwrap();
    let (roots, intermediates): (Vec<_>, Vec<_>) = trust.authorities().cloned().partition(|c| c.self_issued);
    TrustBundle {
        version,
        issued_at,
        roots,
        intermediates,
        dscs: trust.signers().iter().map(|s| s.cert.clone()).collect(),
        revocations: Revocations::default(),
    }
}

/// Seals `bundle` with a trust-list signer of the root in `root_dir`, issued at `at`.
fn write_bundle(path: &Path, root_dir: &Path, bundle: &TrustBundle, at: i64) {
    let now = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
    let ca = CaFiles::load(&root_dir.join("key.pem"), &root_dir.join("cert.pem")).unwrap();
    let issued = pki::issue_trust_list_signer(&ca, 30, now).unwrap();
    let key = SigningKey::from_pem(Path::new("signer"), issued.key_pem.unwrap().as_bytes()).unwrap();
    std::fs::write(path, seal(bundle, &key, &issued.cert_pem).unwrap()).unwrap();
}

/// A trust list of keys-example's DSCs, version `version`, issued at `at`, revoking `uvci`,
/// signed by a signer of the root in `root_dir`.
fn write_list(path: &Path, root_dir: &Path, version: u64, at: i64, revoke: Option<&str>) {
    let mut bundle = keys_example_bundle(version, at);
    if let Some(u) = revoke {
        bundle.revocations.revoke_passport(u);
    }
    write_bundle(path, root_dir, &bundle, at);
}

/// `verify --trust-list` at `at`, the device pinning keys-example's root only.
fn verify(list: &Path, state: &Path, at: i64, qr: &str) -> Vaxpass {
    Vaxpass::new(["verify", "--json", "--at", &rfc3339(at), "--trust"])
        .arg(keys_example().join("root/cert.pem"))
        .arg("--trust-list")
        .arg(list)
        .arg("--state-dir")
        .arg(state)
        .arg(qr)
}

/// Two keys-example passports (01001, 01100) and a verification time inside their validity.
fn passports() -> (Signed, Signed, i64) {
    let a = crate::util::keys_example_passport();
    let k = keys_example();
    let b = crate::util::sign_passport(
        &k.join("facility-01100/key.pem"),
        &k.join("facility-01100/cert.pem"),
        "01100",
        a.iat,
        a.exp,
    );
    let at = a.iat + 60;
    (a, b, at)
}

#[test]
fn signed_trust_list_brings_dscs_and_revocations_and_refuses_rollback() {
    let dir = tempdir();
    let (a, b, at) = passports();
    assert_ne!(a.uvci, b.uvci);
    let (uvci_a, a, b) = (a.uvci, a.text, b.text);
    let list = dir.path().join("trust-list.json");
    let state = dir.path().join("state");
    let root = keys_example().join("root");
    let v = u64::try_from(at).unwrap();
    write_list(&list, &root, v - 10, at, Some(&uvci_a));

    // Only the root is trusted locally: the DSCs come from the list.
    assert_eq!(verify(&list, &state, at, &b).verdict()["reason"], "OK");
    assert_eq!(verify(&list, &state, at, &a).verdict()["reason"], "REVOKED");
    let stored = std::fs::read_to_string(state.join("trust-list-version")).unwrap();
    assert_eq!(stored.trim(), (v - 10).to_string());

    // An older list is refused once that version was used.
    write_list(&list, &root, v - 11, at, None);
    let err = verify(&list, &state, at, &b).fails();
    assert!(err.contains(&format!("version {} is older than version {}", v - 11, v - 10)), "{err}");

    // A list signed under another root is refused.
    let other = dir.path().join("other-root");
    pki::write_issued(
        &other,
        &pki::init_root("Other", 365, time::OffsetDateTime::from_unix_timestamp(at).unwrap()).unwrap(),
    )
    .unwrap();
    write_list(&list, &other, v, at, None);
    let err = verify(&list, &state, at, &b).fails();
    assert!(err.contains("does not chain to a trusted root"), "{err}");

    // A facility DSC chained to the right root is no trust-list signer.
    let facility = keys_example().join("facility-01001");
    let dsc_key = SigningKey::load(&facility.join("key.pem")).unwrap();
    let dsc_pem = std::fs::read_to_string(facility.join("cert.pem")).unwrap();
    std::fs::write(&list, seal(&keys_example_bundle(v, at), &dsc_key, &dsc_pem).unwrap()).unwrap();
    let err = verify(&list, &state, at, &b).fails();
    assert!(err.contains("not a trust-list signer"), "{err}");

    // A tampered bundle is refused.
    write_list(&list, &root, v, at, None);
    let mut envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let bundle = envelope["bundle"].as_str().unwrap().to_owned();
    envelope["bundle"] = serde_json::Value::String(format!("{}A", &bundle[..bundle.len() - 1]));
    std::fs::write(&list, envelope.to_string()).unwrap();
    let err = verify(&list, &state, at, &b).fails();
    assert!(err.contains("signature does not verify") || err.contains("not a vaxpass trust list"), "{err}");
}

#[test]
fn a_list_cannot_add_a_root_or_a_dsc_that_does_not_chain_to_the_pinned_root() {
    let dir = tempdir();
    let (_, _, at) = passports();
    let v = u64::try_from(at).unwrap();
    let root = keys_example().join("root");
    let state = dir.path().join("state");
    let list = dir.path().join("trust-list.json");
    // The attacker's hierarchy and a passport it signed.
    let forged = other_hierarchy(dir.path());
    let forged_root = certs(&dir.path().join("root/cert.pem"));
    let forged_ca = certs(&dir.path().join("ca-79/cert.pem"));
    let forged_dsc = certs(&forged.join("cert.pem"));
    let mut chain = forged_dsc.clone();
    chain.extend(forged_ca.iter().cloned());
    chain.extend(forged_root.iter().cloned());
    let (iat, exp) = crate::util::passport_times(&chain);
    let passport = crate::util::sign_passport(&forged.join("key.pem"), &forged.join("cert.pem"), "79001", iat, exp);
    let at = at.max(iat + 1);

    // Without the list the forged passport is unknown.
    let v0 = Vaxpass::new(["verify", "--json", "--at", &rfc3339(at), "--trust"])
        .arg(keys_example().join("root/cert.pem"))
        .arg(&passport.text)
        .verdict();
    assert_eq!(v0["reason"], "KEY_NOT_IN_TRUST_LIST");

    // A list signed by the real trust-list signer (a compromised document-signing key) adding
    // the attacker's root, CA and DSC, or any of them, is refused as a whole.
    let add = |roots: &[Certificate], inters: &[Certificate], dscs: &[Certificate]| {
        let mut b = keys_example_bundle(v, at);
        b.roots.extend(roots.iter().cloned());
        b.intermediates.extend(inters.iter().cloned());
        b.dscs.extend(dscs.iter().cloned());
        b
    };
    for (bundle, what) in [
        (add(&forged_root, &forged_ca, &forged_dsc), "root"),
        (add(&[], &forged_ca, &forged_dsc), "intermediate"),
        (add(&[], &[], &forged_dsc), "DSC"),
        (add(&[], &forged_root, &[]), "intermediate"),
    ] {
        write_bundle(&list, &root, &bundle, at);
        let err = verify(&list, &state, at, &passport.text).fails();
        assert!(err.contains(&format!("trust list's {what}")) && err.contains("does not chain to a root"), "{err}");
    }
    // The same list without the additions is accepted; the forged passport stays unknown.
    write_bundle(&list, &root, &keys_example_bundle(v, at), at);
    assert_eq!(verify(&list, &state, at, &passport.text).verdict()["reason"], "KEY_NOT_IN_TRUST_LIST");
}

#[test]
fn stale_future_and_version_beyond_issue_time_lists_are_refused() {
    let dir = tempdir();
    let (_, b, at) = passports();
    let root = keys_example().join("root");
    let list = dir.path().join("trust-list.json");
    let state = dir.path().join("state");
    let version = |t: i64| u64::try_from(t).unwrap();

    // A list four days old (default maximum 3 days) is refused, accepted with a larger maximum.
    let old = at - 4 * DAY;
    write_bundle(&list, &root, &keys_example_bundle(version(old), old), at);
    let err = verify(&list, &state, at, &b.text).fails();
    assert!(err.contains("too old"), "{err}");
    let v = verify(&list, &state, at, &b.text).args(["--trust-list-max-age", "5d"]).verdict();
    assert_eq!(v["reason"], "OK");

    // Dated an hour ahead of the clock: refused (5 minutes of skew allowed).
    let ahead = at + 3600;
    write_bundle(&list, &root, &keys_example_bundle(version(ahead), ahead), at);
    let err = verify(&list, &state, at, &b.text).fails();
    assert!(err.contains("in the future"), "{err}");
    let skewed = at + 120;
    write_bundle(&list, &root, &keys_example_bundle(version(skewed), skewed), at);
    assert_eq!(verify(&list, &state, at, &b.text).verdict()["reason"], "OK");

    // Version 2^64-1 can no longer pin a device: it exceeds the issue time.
    write_bundle(&list, &root, &keys_example_bundle(u64::MAX, at), at);
    let err = verify(&list, &state, at, &b.text).fails();
    assert!(err.contains(&format!("version {} exceeds its issue time", u64::MAX)), "{err}");

    // A device pinned by the old bug recovers: a remembered version beyond its clock is
    // dropped, and the next good list is used and remembered.
    let pinned = dir.path().join("pinned-state");
    std::fs::create_dir(&pinned).unwrap();
    std::fs::write(pinned.join("trust-list-version"), format!("{}\n", u64::MAX)).unwrap();
    write_bundle(&list, &root, &keys_example_bundle(version(at), at), at);
    assert_eq!(verify(&list, &pinned, at, &b.text).verdict()["reason"], "OK");
    let stored = std::fs::read_to_string(pinned.join("trust-list-version")).unwrap();
    assert_eq!(stored.trim(), at.to_string());
}
