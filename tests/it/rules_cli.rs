//! Entry rules through the binary (SPEC §9.2): `rules eval`, `rules check`, `rules validate`
//! and `verify --rules`.

use serde_json::{Value, json};

use crate::util::{Vaxpass, keys_example_passport, rfc3339, tempdir};

fn write(dir: &std::path::Path, name: &str, v: &Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

fn stdout_json(out: crate::util::Output) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn eval_prints_the_value_and_date_times_as_iso_strings() {
    let dir = tempdir();
    let logic = write(dir.path(), "l.json", &json!({"plusTime": [{"var": "d"}, 14, "day"]}));
    let data = write(dir.path(), "d.json", &json!({"d": "2021-08-01"}));
    let v = stdout_json(Vaxpass::new(["rules", "eval", "--logic"]).arg(&logic).arg("--data").arg(&data).succeeds());
    assert_eq!(v, json!("2021-08-15T00:00:00.000Z"));
    let logic = write(dir.path(), "l.json", &json!({"and": [{"var": "x"}, {"var": "y"}]}));
    let data = write(dir.path(), "d.json", &json!({"x": [1], "y": {}}));
    let v = stdout_json(Vaxpass::new(["rules", "eval", "--logic"]).arg(&logic).arg("--data").arg(&data).succeeds());
    assert_eq!(v, json!({}));
    let logic = write(dir.path(), "l.json", &json!({"<": ["1", 2]}));
    let err = Vaxpass::new(["rules", "eval", "--logic"]).arg(&logic).arg("--data").arg(&data).fails();
    assert!(err.contains("integers"), "{err}");
}

#[test]
fn check_gives_true_false_or_open_for_a_shipped_rule() {
    let dir = tempdir();
    let rule = crate::util::repo().join("rules/vn/VR-VN-0003.json");
    let external = write(dir.path(), "e.json", &json!({"validationClock": "2021-09-01T00:00:00Z"}));
    let check = |dt: Value| {
        let payload = write(dir.path(), "p.json", &json!({"v": [{"dt": dt}]}));
        let out = Vaxpass::new(["rules", "check", "--rule"])
            .arg(&rule)
            .arg("--payload")
            .arg(&payload)
            .arg("--external")
            .arg(&external)
            .succeeds();
        stdout_json(out)["result"].clone()
    };
    assert_eq!(check(json!("2021-08-18")), json!(true));
    assert_eq!(check(json!("2021-08-19")), json!(false));
    assert_eq!(check(json!(20210801)), json!("open"));
}

#[test]
fn check_refuses_a_rule_that_is_not_certlogic_naming_it() {
    let dir = tempdir();
    let mut rule: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::util::repo().join("rules/vn/VR-VN-0003.json")).unwrap())
            .unwrap();
    rule["Identifier"] = json!("VR-VN-0042");
    rule["Logic"] = json!({"if": [{"var": "payload.v.0"}, {"max": [1, 2]}, true]});
    let rule = write(dir.path(), "r.json", &rule);
    let empty = write(dir.path(), "x.json", &json!({}));
    let err = Vaxpass::new(["rules", "check", "--rule"])
        .arg(&rule)
        .arg("--payload")
        .arg(&empty)
        .arg("--external")
        .arg(&empty)
        .fails();
    assert!(err.contains("VR-VN-0042") && err.contains("unrecognised operator: \"max\""), "{err}");
}

#[test]
fn validate_reports_validity_and_exits_accordingly() {
    let dir = tempdir();
    let good = write(dir.path(), "g.json", &json!({"!": [{"var": "payload.v.1"}]}));
    let v = stdout_json(Vaxpass::new(["rules", "validate", "--logic"]).arg(&good).succeeds());
    assert_eq!(v, json!({"valid": true, "issues": []}));
    let bad = write(dir.path(), "b.json", &json!({"+": [1, 2, 3]}));
    let v = stdout_json(Vaxpass::new(["rules", "validate", "--logic"]).arg(&bad).exits(1));
    assert_eq!(v["valid"], json!(false));
}

#[test]
fn verify_with_rules_adds_the_entry_decision() {
    // keys-example's passport: AstraZeneca 2/2, last dose 2021-10-15, valid from an hour ago.
    let p = keys_example_passport();
    let verdict = |at: &str, rules: &str| {
        Vaxpass::new(["verify", "--json", "--trust", "keys-example", "--rules", rules, "--at", at])
            .arg(&p.text)
            .verdict()
    };
    let at = rfc3339(p.iat + 60);
    let v = verdict(&at, "rules/vn");
    assert_eq!(v["valid"], json!(true));
    assert_eq!(v["entry"], json!({"result": "passed", "failed": []}));

    // A rule set whose 14-day rule is replaced by a 10,000-day one fails with its bilingual
    // description; without --rules there is no entry at all.
    let dir = tempdir();
    for f in std::fs::read_dir(crate::util::repo().join("rules/vn")).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            let mut text = std::fs::read_to_string(&f).unwrap();
            if f.ends_with("VR-VN-0003.json") {
                text = text.replace("14,", "10000,");
            }
            std::fs::write(dir.path().join(f.file_name().unwrap()), text).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("valuesets")).unwrap();
    for f in std::fs::read_dir(crate::util::repo().join("rules/vn/valuesets")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join("valuesets").join(f.file_name().unwrap())).unwrap();
    }
    let v = verdict(&at, dir.path().to_str().unwrap());
    assert_eq!(v["entry"]["result"], json!("failed"));
    assert_eq!(v["entry"]["failed"][0]["identifier"], json!("VR-VN-0003"));
    assert!(v["entry"]["failed"][0]["description"]["vi"].as_str().unwrap().contains("14 ngày"));
    assert!(v["entry"]["failed"][0]["description"]["en"].as_str().unwrap().contains("14 days"));
    let plain = Vaxpass::new(["verify", "--json", "--trust", "keys-example", "--at", &at]).arg(&p.text).verdict();
    assert!(plain.get("entry").is_none());

    // A passport that is not valid gets no entry decision: its content is not trusted.
    let mut altered = p.text.clone();
    altered.replace_range(60..61, if &altered[60..61] == "A" { "B" } else { "A" });
    let v = Vaxpass::new(["verify", "--json", "--trust", "keys-example", "--rules", "rules/vn", "--at", &at])
        .arg(&altered)
        .exits(1);
    let v: Value = serde_json::from_str(v.stdout.trim()).unwrap();
    assert!(v.get("entry").is_none(), "{v}");
}

#[test]
fn verify_refuses_a_rules_directory_with_a_bad_rule() {
    let dir = tempdir();
    std::fs::write(dir.path().join("bad.json"), r#"{"Identifier": "VR-VN-0077", "Logic": {"var": 1}}"#).unwrap();
    let p = keys_example_passport();
    let err = Vaxpass::new(["verify", "--trust", "keys-example", "--rules"]).arg(dir.path()).arg(&p.text).fails();
    assert!(err.contains("VR-VN-0077"), "{err}");
}
