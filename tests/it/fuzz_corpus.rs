//! Replays the fuzzing corpus (`fuzz/corpus/<target>/`, minimised by edges as fuzz/README says)
//! through the fuzz targets' own bodies (`fuzz/src/lib.rs`, included here), on stable and
//! without libFuzzer: every input that once reached new code must still return without a
//! panic and in bounded time. Crashes found by fuzzing are kept in the corpus too.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../../fuzz/src/lib.rs"]
mod targets;

/// Longest time one input may take here (a debug build of the crate, optimised
/// dependencies): the slowest input of the minimised corpus, a photo, took 0.067 s on 2
/// cores (a full-size QR photo 1.3 s); the fuzzing itself ran with libFuzzer's `-timeout=2`
/// on optimised code.
const MAX_PER_INPUT: Duration = Duration::from_secs(5);

#[test]
fn every_corpus_input_returns_without_panic_in_bounded_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, body) in targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // A replay of an empty corpus would pass for nothing.
        assert!(files.len() >= 5, "{}: only {} inputs", dir.display(), files.len());
        let mut slowest = (Duration::ZERO, None);
        let started = Instant::now();
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(|| body(&data));
            let took = start.elapsed();
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
            if took > slowest.0 {
                slowest = (took, Some(file));
            }
        }
        let (took, file) = slowest;
        eprintln!("{name}: {} inputs in {:?}, the slowest {took:?}", files.len(), started.elapsed());
        assert!(took <= MAX_PER_INPUT, "{name}: {:?} took {took:?}", file);
    }
}

/// The signed modes of `shc_verify` and `vdsnc_verify` get past the signature: a card and a
/// seal they sign with the harness's keys verify as valid, so the fuzzer reaches the content
/// checks; the same bytes through the unsigned mode do not.
#[test]
fn the_new_decoders_signed_modes_reach_a_valid_verdict() {
    let at = targets::AT;
    let card = serde_json::json!({
        "iss": targets::SHC_ISS, "nbf": 1_640_000_000,
        "vc": {"type": ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization"],
            "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {"resourceType": "Bundle", "type": "collection",
                "entry": [
                    {"fullUrl": "resource:0", "resource": {"resourceType": "Patient",
                        "name": [{"family": "Anyperson", "given": ["John"]}], "birthDate": "1951-01-20"}},
                    {"fullUrl": "resource:1", "resource": {"resourceType": "Immunization", "status": "completed",
                        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                        "patient": {"reference": "resource:0"}, "occurrenceDateTime": "2021-01-01"}}]}}}
    });
    let text = targets::signed_shc(card.to_string().as_bytes());
    let verdict = targets::border_verifier().verify(&text, at);
    assert!(verdict.valid, "{:?} {:?}", verdict.reason, verdict.detail);
    let forged = text.replacen("shc:/5", "shc:/6", 1);
    assert!(!targets::border_verifier().verify(&forged, at).valid);

    let data = r#"{"hdr":{"t":"icao.vacc","v":1,"is":"VNM"},"msg":{"uvci":"VB0009990012",
        "pid":{"n":"NGUYEN VAN AN","dob":"1990-01-02"},"ve":[{"des":"XM68M6","dis":"RA01.0","nam":"Comirnaty",
        "vd":[{"dvc":"2021-09-15","seq":1,"ctr":"VNM","adm":"Bach Mai","lot":"1"}]}]}}"#;
    let verdict = targets::border_verifier().verify(&targets::signed_seal(data), at);
    assert!(verdict.valid, "{:?} {:?}", verdict.reason, verdict.detail);
    let other_country = targets::signed_seal(&data.replace("VNM\"}", "AUS\"}"));
    assert_eq!(targets::border_verifier().verify(&other_country, at).reason, vaxpass::verify::ReasonCode::ChainInvalid);
}
