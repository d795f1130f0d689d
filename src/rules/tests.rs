use serde_json::json;
use time::macros::datetime;

use super::*;

fn vaccination(mp: &str, dn: u32, sd: u32, dt: &str) -> Json {
    json!({"ver": "1.3.0", "nam": {"fn": "Nguyễn", "gn": "Văn An", "fnt": "NGUYEN", "gnt": "VAN<AN"}, "dob": "1990-05-02",
        "v": [{"tg": "840539006", "vp": "J07BX03", "mp": mp, "ma": "ORG-100001699", "dn": dn, "sd": sd, "dt": dt,
               "co": "VN", "is": "Ministry of Health Viet Nam", "ci": "URN:UVCI:01:VN:01001/ABC#Q"}]})
}

// 2021-09-01: a month after the sample doses.
fn at() -> External {
    External::at(datetime!(2021-09-01 00:00 UTC), "VN")
}

fn identifiers(entry: &Entry) -> Vec<&str> {
    entry.failed.iter().map(|f| f.identifier.as_str()).collect()
}

#[test]
fn shipped_viet_nam_rules_load() {
    let set = RuleSet::viet_nam();
    assert_eq!(set.rules().len(), 8);
    for rule in set.rules() {
        assert!(rule.description_in("vi").is_some() && rule.description_in("en").is_some(), "{}", rule.identifier);
    }
    assert!(set.value_sets()["vaccines-covid-19-names"].as_array().is_some_and(|a| a.len() > 8));
    // The directory on disk is the same set.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/vn");
    let loaded = RuleSet::load(&dir).unwrap();
    assert_eq!(loaded.rules().len(), 8);
    assert_eq!(loaded.value_sets(), set.value_sets());
}

#[test]
fn complete_series_of_an_accepted_product_passes() {
    let entry = RuleSet::viet_nam().evaluate(&vaccination("EU/1/21/1529", 2, 2, "2021-08-01"), &at());
    assert_eq!(entry, Entry { result: EntryResult::Passed, failed: vec![] });
    let booster = RuleSet::viet_nam().evaluate(&vaccination("EU/1/20/1528", 3, 3, "2021-08-01"), &at());
    assert_eq!(booster.result, EntryResult::Passed);
}

#[test]
fn incomplete_series_recent_dose_and_unknown_product_fail() {
    let set = RuleSet::viet_nam();
    let entry = set.evaluate(&vaccination("EU/1/21/1529", 1, 2, "2021-08-01"), &at());
    assert_eq!((entry.result, identifiers(&entry)), (EntryResult::Failed, vec!["VR-VN-0002"]));
    assert!(entry.failed[0].description.vi.contains("mũi"), "{:?}", entry.failed[0].description);
    // 13 days before the clock: not yet; 14 days: yes.
    let recent = set.evaluate(&vaccination("EU/1/21/1529", 2, 2, "2021-08-19"), &at());
    assert_eq!(identifiers(&recent), vec!["VR-VN-0003"]);
    assert_eq!(set.evaluate(&vaccination("EU/1/21/1529", 2, 2, "2021-08-18"), &at()).result, EntryResult::Passed);
    let covaxin = set.evaluate(&vaccination("Covaxin", 2, 2, "2021-08-01"), &at());
    assert_eq!(identifiers(&covaxin), vec!["VR-VN-0001"]);
}

#[test]
fn a_rule_that_cannot_be_evaluated_is_open_not_passed() {
    let mut payload = vaccination("EU/1/21/1529", 2, 2, "2021-08-01");
    payload["v"][0]["dt"] = json!("1 Aug 2021");
    let entry = RuleSet::viet_nam().evaluate(&payload, &at());
    assert_eq!(entry.result, EntryResult::Open);
    assert_eq!(identifiers(&entry), vec!["VR-VN-0003"]);
    assert_eq!(entry.failed[0].result, EntryResult::Open);
    assert!(entry.failed[0].reason.as_deref().is_some_and(|r| r.contains("plusTime")));
}

#[test]
fn two_events_fail_the_general_rule() {
    let mut payload = vaccination("EU/1/21/1529", 2, 2, "2021-08-01");
    payload["t"] = json!([{"tg": "840539006"}]);
    let entry = RuleSet::viet_nam().evaluate(&payload, &at());
    assert!(identifiers(&entry).contains(&"GR-VN-0000"), "{entry:?}");
}

fn rule_json(identifier: &str, logic: Json) -> Json {
    json!({"Identifier": identifier, "Type": "Acceptance", "Country": "VN", "Version": "1.0.0", "CertificateType": "General",
        "Description": [{"lang": "en", "desc": "A rule for the tests of rule loading."}],
        "ValidFrom": "2021-01-01T00:00:00Z", "ValidTo": "2022-01-01T00:00:00Z", "AffectedFields": [], "Logic": logic})
}

#[test]
fn a_rule_that_is_not_certlogic_is_refused_with_its_identifier() {
    let e = Rule::from_json(rule_json("VR-VN-0099", json!({"and": [true, {"some": [1]}]}))).unwrap_err();
    assert!(
        matches!(&e, RuleError::Logic { identifier, at, .. } if identifier == "VR-VN-0099" && at == "/and/1"),
        "{e}"
    );
    assert!(e.to_string().starts_with("rule VR-VN-0099: not valid CertLogic at /and/1: unrecognised operator"), "{e}");
    let e = Rule::from_json(rule_json("VR-VN-0098", json!({"if": [true, 1]}))).unwrap_err();
    assert!(e.to_string().contains("VR-VN-0098"), "{e}");
    let mut bad_time = rule_json("VR-VN-0097", json!(true));
    bad_time["ValidTo"] = json!("next year");
    assert!(
        matches!(Rule::from_json(bad_time), Err(RuleError::Metadata { identifier, .. }) if identifier == "VR-VN-0097")
    );
}

#[test]
fn loading_a_directory_refuses_a_bad_rule_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), rule_json("GR-VN-0001", json!(true)).to_string()).unwrap();
    std::fs::write(dir.path().join("b.json"), rule_json("GR-VN-0002", json!({"var": 3})).to_string()).unwrap();
    let e = RuleSet::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("GR-VN-0002"), "{e}");
    std::fs::write(dir.path().join("b.json"), "{\"hello\": 1}").unwrap();
    let e = RuleSet::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("b.json") && e.contains("neither"), "{e}");
}

#[test]
fn applicability_filters_country_type_window_and_version() {
    let mut set = RuleSet::default();
    let mut old = rule_json("GR-VN-0001", json!(false));
    let mut new = rule_json("GR-VN-0001", json!(true));
    new["Version"] = json!("1.10.0");
    old["Version"] = json!("1.9.0");
    let mut other_country = rule_json("GR-DE-0001", json!(false));
    other_country["Country"] = json!("DE");
    let mut test_only = rule_json("TR-VN-0001", json!(false));
    test_only["CertificateType"] = json!("Test");
    let mut expired = rule_json("GR-VN-0002", json!(false));
    expired["ValidTo"] = json!("2021-03-01T00:00:00Z");
    for r in [old, new, other_country, test_only, expired] {
        set.rules.push(Rule::from_json(r).unwrap());
    }
    let external = External::at(datetime!(2021-06-01 00:00 UTC), "VN");
    let payload = vaccination("EU/1/21/1529", 2, 2, "2021-05-01");
    let chosen: Vec<_> =
        set.applicable(&payload, &external).iter().map(|r| (r.identifier.as_str(), r.version.as_str())).collect();
    assert_eq!(chosen, vec![("GR-VN-0001", "1.10.0")]);
    assert_eq!(set.evaluate(&payload, &external).result, EntryResult::Passed);
}
