//! The border official's flow (SPEC §6 `vaxpass verify`): verdicts, reason codes, exit
//! status, trust models, revocation and the `--json` object.

use std::collections::BTreeSet;

use vaxpass::pki;

use crate::util::{
    FULL_NAME, Vaxpass, assert_reason, cert, keys_example, keys_example_passport, other_hierarchy, passport_times,
    rfc3339, sign_passport, tempdir,
};

/// `vaxpass verify --json --trust keys-example --at AT`.
fn verify_at(at: i64) -> Vaxpass {
    Vaxpass::new(["verify", "--json", "--trust", "keys-example", "--at", &rfc3339(at)])
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object().expect("a JSON object").keys().map(String::as_str).collect()
}

#[test]
fn json_verdict_has_exactly_the_spec_keys_and_the_chain_to_the_root() {
    let p = keys_example_passport();
    let v = verify_at(p.iat + 60).arg(&p.text).verdict();
    assert_reason(&v, "OK");

    assert_eq!(
        keys(&v),
        BTreeSet::from([
            "valid",
            "reason",
            "format",
            "holder",
            "vaccinations",
            "payload",
            "history",
            "signer",
            "iat",
            "exp"
        ])
    );
    // SPEC §9.1: the normalised view of the same passport.
    assert_eq!(v["format"], "dcc");
    assert_eq!(v["holder"]["name"], FULL_NAME);
    assert_eq!(v["vaccinations"].as_array().map(Vec::len), Some(2), "{v:#}");
    assert_eq!(v["vaccinations"][1]["dose"], 2);
    let signer = &v["signer"];
    assert_eq!(keys(signer), BTreeSet::from(["kid", "subject", "facility_code", "chain"]));
    assert_eq!(signer["kid"], pki::Kid::of(p.dsc.der()).to_base64());
    assert_eq!(signer["subject"], p.dsc.subject.as_str());
    assert_eq!(signer["facility_code"], "01001");
    let k = keys_example();
    let expected_chain =
        [p.dsc.subject.clone(), cert(&k.join("ca-01/cert.pem")).subject, cert(&k.join("root/cert.pem")).subject];
    assert_eq!(signer["chain"], serde_json::json!(expected_chain));

    assert_eq!(v["iat"].as_f64(), Some(p.iat as f64));
    assert_eq!(v["exp"].as_f64(), Some(p.exp as f64));
    assert_eq!(v["payload"]["v"][0]["ci"], p.uvci.as_str());
    assert_eq!(v["payload"]["v"][0]["dn"], 2);
    assert_eq!(v["history"].as_array().map(Vec::len), Some(1), "the first dose is history: {v:#}");
}

#[test]
fn exit_status_is_0_valid_1_not_valid_2_unreadable_trust_file() {
    let p = keys_example_passport();
    verify_at(p.iat).arg(&p.text).exits(0);
    verify_at(p.exp + 1).arg(&p.text).exits(1);

    let tmp = tempdir();
    let missing = tmp.path().join("no-such-root.pem");
    let line = Vaxpass::new(["verify", "--trust"]).arg(&missing).arg(&p.text).fails();
    assert!(line.starts_with(&format!("vaxpass: {}: ", missing.display())), "{line}");
}

#[test]
fn qr_text_from_stdin_or_argument_gives_the_same_verdict() {
    let p = keys_example_passport();
    let at = p.iat + 60;
    let from_arg = verify_at(at).arg(&p.text).verdict();
    // Scanners and `echo` end the text with a newline.
    let from_dash = verify_at(at).arg("-").stdin(format!("{}\n", p.text)).verdict();
    let from_absent = verify_at(at).stdin(format!("{}\r\n", p.text)).verdict();
    assert_reason(&from_arg, "OK");
    assert_eq!(from_dash, from_arg);
    assert_eq!(from_absent, from_arg);
}

#[test]
fn at_before_iat_is_not_yet_valid_and_after_exp_is_expired() {
    let p = keys_example_passport();
    assert_reason(&verify_at(p.iat - 1).arg(&p.text).verdict(), "NOT_YET_VALID");
    assert_reason(&verify_at(p.exp + 1).arg(&p.text).verdict(), "EXPIRED");
}

#[test]
fn at_exactly_iat_or_exactly_exp_is_valid() {
    // SPEC §3: both ends inclusive, iat ≤ now ≤ exp.
    let p = keys_example_passport();
    assert_reason(&verify_at(p.iat).arg(&p.text).verdict(), "OK");
    assert_reason(&verify_at(p.exp).arg(&p.text).verdict(), "OK");
}

#[test]
fn revoked_uvci_hash_makes_the_passport_revoked() {
    let p = keys_example_passport();
    let tmp = tempdir();
    let list = tmp.path().join("revocations.json");
    let hash: String = pki::uvci_hash(&p.uvci).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&list, serde_json::json!({"version": 1, "passports": [hash], "facilities": []}).to_string())
        .unwrap();
    let v = verify_at(p.iat + 60).arg("--revocations").arg(&list).arg(&p.text).verdict();
    assert_reason(&v, "REVOKED");
}

#[test]
fn revoked_facility_kid_makes_the_signer_revoked() {
    let p = keys_example_passport();
    let tmp = tempdir();
    let list = tmp.path().join("revocations.json");
    let kid = pki::Kid::of(p.dsc.der()).to_base64();
    std::fs::write(&list, serde_json::json!({"version": 1, "passports": [], "facilities": [kid]}).to_string()).unwrap();
    let v = verify_at(p.iat + 60).arg("--revocations").arg(&list).arg(&p.text).verdict();
    assert_reason(&v, "SIGNER_REVOKED");
}

#[test]
fn signer_of_another_hierarchy_is_untrusted_unchained_or_pinned() {
    let tmp = tempdir();
    let fac = other_hierarchy(tmp.path());
    let chain = crate::util::certs(&fac.join("chain.pem"));
    let (iat, exp) = passport_times(&chain);
    let p = sign_passport(&fac.join("key.pem"), &fac.join("cert.pem"), "79001", iat, exp);
    let at = iat + 60;

    let v = verify_at(at).arg(&p.text).verdict();
    assert_reason(&v, "KEY_NOT_IN_TRUST_LIST");

    // Its DSC, without its root, does not chain to the Ministry root of keys-example.
    let v = verify_at(at).arg("--trust").arg(fac.join("cert.pem")).arg(&p.text).verdict();
    assert_reason(&v, "CHAIN_INVALID");

    // Pinned, it is trusted as is (the EU flat trust list model).
    let v = verify_at(at).arg("--trust-cert").arg(fac.join("cert.pem")).arg(&p.text).verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["signer"]["facility_code"], "79001");
}

#[test]
fn dsc_pinned_as_der_verifies_without_a_chain() {
    let p = keys_example_passport();
    let tmp = tempdir();
    let der = tmp.path().join("dsc-01001.der");
    std::fs::write(&der, p.dsc.der()).unwrap();
    let v = Vaxpass::new(["verify", "--json", "--at", &rfc3339(p.iat + 60), "--trust-cert"])
        .arg(&der)
        .arg(&p.text)
        .verdict();
    assert_reason(&v, "OK");
    assert_eq!(v["signer"]["chain"], serde_json::json!([p.dsc.subject]));
}

#[test]
fn human_verdict_of_a_valid_passport_says_valid_and_names_the_person() {
    let p = keys_example_passport();
    let out = Vaxpass::new(["verify", "--trust", "keys-example", "--at", &rfc3339(p.iat + 60)]).arg(&p.text).succeeds();
    assert!(out.stdout.starts_with("VALID\n"), "{}", out.stdout);
    assert!(out.stdout.contains(FULL_NAME), "{}", out.stdout);
}

#[test]
fn human_verdict_of_an_invalid_passport_starts_with_not_valid_and_the_code() {
    let p = keys_example_passport();
    let out = Vaxpass::new(["verify", "--trust", "keys-example", "--at", &rfc3339(p.exp + 1)]).arg(&p.text).exits(1);
    assert!(out.stdout.starts_with("NOT VALID: EXPIRED\n"), "{}", out.stdout);
}

#[test]
fn garbage_text_is_not_valid_with_the_decoding_reason() {
    let long = format!("HC1:{}", "A".repeat(10_000));
    let cases = [
        // SPEC §9.1: none of the formats; a DCC's Base45 without its prefix is still one.
        ("", "UNSUPPORTED_FORMAT"),
        ("hello", "UNSUPPORTED_FORMAT"),
        ("NCFOXN", "INVALID_PREFIX"),
        ("HC2:NCFOXN", "INVALID_PREFIX"),
        ("HC1:", "DECOMPRESSION_FAILED"),
        (long.as_str(), "BASE45_DECODING_FAILED"),
    ];
    for (text, reason) in cases {
        let v = Vaxpass::new(["verify", "--json", "--trust", "keys-example"]).arg(text).verdict();
        assert_reason(&v, reason);
        assert_eq!(v["payload"], serde_json::Value::Null, "{text:.20}");
        assert_eq!(v["signer"], serde_json::Value::Null, "{text:.20}");
    }
}

// Issue #8, item 13: https://github.com/vaxpass/vaxpass/issues/8
#[test]
fn over_long_text_says_it_is_too_long_for_a_qr_code() {
    // The length of the passport the issue found: 10,318 characters of valid Base45.
    let text = format!("HC1:{}", "6BF".repeat(3438));
    assert_eq!(text.len(), 10_318);
    let v = Vaxpass::new(["verify", "--json", "--trust", "keys-example"]).arg(&text).verdict();
    assert_reason(&v, "BASE45_DECODING_FAILED");
    let detail = v["detail"].as_str().expect("a detail for a verdict that is not valid");
    assert!(detail.starts_with("the text is 10318 characters long, more than any QR code holds (4296;"), "{detail}");
    assert!(detail.contains("level Q holds at most 1852"), "{detail}");
    assert!(v["payload"].is_null());
    let human = Vaxpass::new(["verify", "--trust", "keys-example"]).stdin(text).exits(1);
    assert!(
        human.stdout.starts_with("NOT VALID: BASE45_DECODING_FAILED\n  why:     the text is 10318 characters long"),
        "{}",
        human.stdout
    );
}
