//! `vaxpass verify --trust-list FILE`: a verifier device updates offline from a signed trust
//! list; it checks the signer's chain to its own root and the signature, refuses an older
//! version than one it used, and applies the list's DSCs and revocations.

use std::path::Path;

use vaxpass::pki::bundle::{TrustBundle, seal};
use vaxpass::pki::{self, CaFiles, Revocations, SigningKey, TrustStore};

use crate::util::{Vaxpass, keys_example, tempdir};

/// A trust list of keys-example's DSCs, version `version`, revoking `uvci`, signed by a signer
/// of the root in `root_dir`.
fn write_list(path: &Path, root_dir: &Path, version: u64, revoke: Option<&str>) {
    let now = time::OffsetDateTime::now_utc();
    let ca = CaFiles::load(&root_dir.join("key.pem"), &root_dir.join("cert.pem")).unwrap();
    let issued = pki::issue_trust_list_signer(&ca, 30, now).unwrap();
    let key = SigningKey::from_pem(Path::new("signer"), issued.key_pem.unwrap().as_bytes()).unwrap();
    let mut trust = TrustStore::new();
    trust.load_trusted(&keys_example()).unwrap();
    let (roots, intermediates): (Vec<_>, Vec<_>) = trust.authorities().cloned().partition(|c| c.self_issued);
    let mut revocations = Revocations::default();
    if let Some(u) = revoke {
        revocations.revoke_passport(u);
    }
    let bundle = TrustBundle {
        version,
        issued_at: now.unix_timestamp(),
        roots,
        intermediates,
        dscs: trust.signers().iter().map(|s| s.cert.clone()).collect(),
        revocations,
    };
    std::fs::write(path, seal(&bundle, &key, &issued.cert_pem).unwrap()).unwrap();
}

fn verify(list: &Path, state: &Path, qr: &str) -> Vaxpass {
    Vaxpass::new(["verify", "--json", "--trust"])
        .arg(keys_example().join("root/cert.pem"))
        .arg("--trust-list")
        .arg(list)
        .arg("--state-dir")
        .arg(state)
        .arg(qr)
}

#[test]
fn signed_trust_list_brings_dscs_and_revocations_and_refuses_rollback() {
    let dir = tempdir();
    let a = crate::util::keys_example_passport();
    let k = keys_example();
    let b = crate::util::sign_passport(
        &k.join("facility-01100/key.pem"),
        &k.join("facility-01100/cert.pem"),
        "01100",
        a.iat,
        a.exp,
    );
    assert_ne!(a.uvci, b.uvci);
    let (uvci_a, a, b) = (a.uvci, a.text, b.text);
    let list = dir.path().join("trust-list.json");
    let state = dir.path().join("state");
    write_list(&list, &keys_example().join("root"), 5, Some(&uvci_a));

    // Only the root is trusted locally: the DSCs come from the list.
    assert_eq!(verify(&list, &state, &b).verdict()["reason"], "OK");
    assert_eq!(verify(&list, &state, &a).verdict()["reason"], "REVOKED");
    assert_eq!(std::fs::read_to_string(state.join("trust-list-version")).unwrap().trim(), "5");

    // An older list is refused once version 5 was used.
    write_list(&list, &keys_example().join("root"), 4, None);
    let err = verify(&list, &state, &b).fails();
    assert!(err.contains("version 4 is older than version 5"), "{err}");

    // A list signed under another root is refused.
    let other = dir.path().join("other-root");
    pki::write_issued(&other, &pki::init_root("Other", 365, time::OffsetDateTime::now_utc()).unwrap()).unwrap();
    write_list(&list, &other, 9, None);
    let err = verify(&list, &state, &b).fails();
    assert!(err.contains("does not chain to a trusted root"), "{err}");

    // A facility DSC chained to the right root is no trust-list signer.
    let facility = keys_example().join("facility-01001");
    let dsc_key = SigningKey::load(&facility.join("key.pem")).unwrap();
    let dsc_pem = std::fs::read_to_string(facility.join("cert.pem")).unwrap();
    let forged = TrustBundle {
        version: 99,
        issued_at: 0,
        roots: Vec::new(),
        intermediates: Vec::new(),
        dscs: Vec::new(),
        revocations: Revocations::default(),
    };
    std::fs::write(&list, seal(&forged, &dsc_key, &dsc_pem).unwrap()).unwrap();
    let err = verify(&list, &state, &b).fails();
    assert!(err.contains("not a trust-list signer"), "{err}");

    // A tampered bundle is refused.
    write_list(&list, &keys_example().join("root"), 6, None);
    let mut envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let bundle = envelope["bundle"].as_str().unwrap().to_owned();
    envelope["bundle"] = serde_json::Value::String(format!("{}A", &bundle[..bundle.len() - 1]));
    std::fs::write(&list, envelope.to_string()).unwrap();
    let err = verify(&list, &state, &b).fails();
    assert!(err.contains("signature does not verify") || err.contains("not a vaxpass trust list"), "{err}");
}
