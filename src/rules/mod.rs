//! Entry rules (SPEC §9.2): EU DCC business rules whose `Logic` is CertLogic, loaded from
//! files, checked at load, chosen for a certificate as the EU verifier apps choose them
//! (arrival country, certificate type, validity window, newest version), and evaluated over
//! `{"payload": DCC, "external": {...}}` into an entry decision.
//!
//! Knows nothing of signatures, HTTP or the command line: the caller verifies the certificate
//! first and passes its payload as JSON (a DCC-shaped payload for the other formats).
//!
//! ```
//! use vaxpass::rules::{External, RuleSet};
//! let rules = RuleSet::viet_nam();
//! let payload = serde_json::json!({"ver": "1.3.0", "nam": {"fnt": "NGUYEN"}, "dob": "1990-01-02",
//!     "v": [{"tg": "840539006", "vp": "J07BX03", "mp": "EU/1/21/1529", "ma": "ORG-100001699",
//!            "dn": 2, "sd": 2, "dt": "2021-08-01", "co": "VN", "is": "Bộ Y tế", "ci": "URN:UVCI:01:VN:01001/X"}]});
//! let at = time::macros::datetime!(2021-09-01 00:00 UTC);
//! let entry = rules.evaluate(&payload, &External::at(at, "VN"));
//! assert_eq!(entry.result, vaxpass::rules::EntryResult::Passed);
//! ```

mod certlogic;
mod datetime;

pub use certlogic::{EvalError, ValidationIssue, Value, evaluate, validate};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

/// Largest rule or value-set file read: the largest EU value set (country codes) is 38 KB and
/// the largest published rule about 20 KB; a megabyte leaves room and bounds a stray file.
pub const MAX_RULE_FILE_BYTES: u64 = 1024 * 1024;

/// Most rules in one set: the EU gateway's largest national set held about 60.
pub const MAX_RULES: usize = 1000;

/// Directory levels searched below a rule-set directory (`rules/vn/valuesets/` is one).
const MAX_DIR_DEPTH: usize = 2;

/// Whether a rule admits a certificate (`Acceptance`) or revokes a group of certificates
/// issued by the rule's country (`Invalidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RuleType {
    /// A rule of the arrival country.
    Acceptance,
    /// A rule of the issuing country.
    Invalidation,
}

/// The certificates a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum CertificateType {
    /// Every certificate.
    General,
    /// Certificates with a `v` entry.
    Vaccination,
    /// Certificates with a `t` entry.
    Test,
    /// Certificates with an `r` entry.
    Recovery,
}

/// One description of a rule (`Description[]` of the EU rule format).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Description {
    /// Language code (`vi`, `en`, …).
    pub lang: String,
    /// The text.
    pub desc: String,
}

/// One business rule (the EU DCC validation-rule format), its `Logic` checked to be CertLogic.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    /// `Identifier`, e.g. `VR-VN-0003`.
    pub identifier: String,
    /// `Type`.
    #[serde(rename = "Type")]
    pub rule_type: RuleType,
    /// `Country`: ISO 3166 alpha-2 of the rule's owner.
    pub country: String,
    /// `Version`, semantic version.
    pub version: String,
    /// `CertificateType`.
    pub certificate_type: CertificateType,
    /// `Description`, one per language.
    pub description: Vec<Description>,
    /// `ValidFrom`, RFC 3339.
    pub valid_from: String,
    /// `ValidTo`, RFC 3339.
    pub valid_to: String,
    /// `AffectedFields`.
    #[serde(default)]
    pub affected_fields: Vec<String>,
    /// `Logic`: the CertLogic expression.
    pub logic: Json,
    #[serde(skip)]
    window: (i64, i64),
    #[serde(skip)]
    version_key: (u64, u64, u64),
}

/// Why a rule set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A file or directory could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not `source()`, so it prints once).
        cause: std::io::Error,
    },
    /// A file is larger than [`MAX_RULE_FILE_BYTES`].
    #[error("{path}: larger than {MAX_RULE_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A file is not JSON, or neither a rule nor a value set.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A rule's metadata is missing or malformed (EU validation-rule schema).
    #[error("rule {identifier}: {message}")]
    Metadata {
        /// The rule's `Identifier`.
        identifier: String,
        /// What is wrong.
        message: String,
    },
    /// A rule's `Logic` is not valid CertLogic (SPEC §9.2: refused at load).
    #[error("rule {identifier}: not valid CertLogic at {at}: {message}")]
    Logic {
        /// The rule's `Identifier`.
        identifier: String,
        /// JSON pointer into `Logic`.
        at: String,
        /// The first problem found.
        message: String,
    },
    /// More than [`MAX_RULES`] rules.
    #[error("more than {MAX_RULES} rules")]
    TooMany,
}

impl Rule {
    /// Reads one rule from its JSON, checking its metadata and that its `Logic` is CertLogic.
    pub fn from_json(json: Json) -> Result<Rule, RuleError> {
        let identifier = json.get("Identifier").and_then(Json::as_str).unwrap_or("(no Identifier)").to_owned();
        let metadata = |message: String| RuleError::Metadata { identifier: identifier.clone(), message };
        let mut rule: Rule = serde_json::from_value(json).map_err(|e| metadata(e.to_string()))?;
        if rule.identifier.is_empty() {
            return Err(metadata("empty Identifier".into()));
        }
        if rule.country.len() != 2 || !rule.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(metadata(format!("Country {:?} is not an ISO 3166 alpha-2 code", rule.country)));
        }
        if rule.description.is_empty() {
            return Err(metadata("no Description".into()));
        }
        let time = |field: &str, s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(OffsetDateTime::unix_timestamp)
                .map_err(|_| metadata(format!("{field} {s:?} is not an RFC 3339 time")))
        };
        rule.window = (time("ValidFrom", &rule.valid_from)?, time("ValidTo", &rule.valid_to)?);
        rule.version_key = parse_version(&rule.version)
            .ok_or_else(|| metadata(format!("Version {:?} is not a semantic version", rule.version)))?;
        if let Some(issue) = validate(&rule.logic).into_iter().next() {
            return Err(RuleError::Logic {
                identifier: rule.identifier,
                at: if issue.at.is_empty() { "/".into() } else { issue.at },
                message: issue.message,
            });
        }
        Ok(rule)
    }

    /// The description in `lang`, if the rule has one.
    pub fn description_in(&self, lang: &str) -> Option<&str> {
        self.description.iter().find(|d| d.lang == lang).map(|d| d.desc.as_str())
    }

    /// Evaluates the rule's `Logic` over a data context: `Ok(true)` passed, `Ok(false)`
    /// failed, `Err` open. A result that is not a boolean counts by its CertLogic truthiness
    /// (a rule such as `{"and": [{"var": "payload.v.0"}, …]}` gives `null` when it fails);
    /// one that is neither truthy nor falsy is open.
    pub fn check(&self, data: &Value<'_>) -> Result<bool, EvalError> {
        let value = evaluate(&self.logic, data)?;
        value.truthiness().ok_or(EvalError::NeitherTruthyNorFalsy("rule"))
    }
}

/// `MAJOR.MINOR.PATCH` (anything after the patch number is ignored, as the EU schema's
/// pattern allows).
fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let mut parts = s.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    Some((major, minor, rest.get(..n)?.parse().ok()?))
}

/// What the verifier knows besides the payload: `external` of the data context.
#[derive(Debug, Clone)]
pub struct External {
    /// `validationClock`: the time of the check (`verify --at`).
    pub validation_clock: OffsetDateTime,
    /// `countryCode`: the arrival country whose acceptance rules apply.
    pub country_code: String,
    /// The certificate's issuing country, whose invalidation rules apply (`issuerCountryCode`).
    pub issuer_country_code: Option<String>,
    /// `exp`, Unix seconds.
    pub exp: Option<f64>,
    /// `iat`, Unix seconds.
    pub iat: Option<f64>,
}

impl External {
    /// A check at `at` for arrival in `country`, without `exp`/`iat`.
    pub fn at(validation_clock: OffsetDateTime, country: &str) -> External {
        External { validation_clock, country_code: country.to_owned(), issuer_country_code: None, exp: None, iat: None }
    }
}

/// The entry decision (SPEC §9.2 `entry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `passed` when every applicable rule passed, `failed` when one failed, otherwise `open`
    /// (a rule could not be evaluated).
    pub result: EntryResult,
    /// The rules that failed or could not be evaluated, in the rule set's order.
    pub failed: Vec<FailedRule>,
}

/// An entry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryResult {
    /// Every applicable rule passed.
    Passed,
    /// A rule failed.
    Failed,
    /// No rule failed, but one could not be evaluated.
    Open,
}

/// A rule that did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRule {
    /// `Identifier`.
    pub identifier: String,
    /// The rule's description in Vietnamese and English.
    pub description: Bilingual,
    /// `failed`, or `open` when it could not be evaluated.
    pub result: EntryResult,
    /// Why it could not be evaluated (open rules only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A text in Vietnamese and English; a rule without a Vietnamese description shows its
/// English one in both places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bilingual {
    /// Vietnamese.
    pub vi: String,
    /// English.
    pub en: String,
}

/// Rules and the value sets their logic reads.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// `external.valueSets`: value-set id → its codes.
    value_sets: Json,
}

/// The shipped Viet Nam entry rules and value sets (`rules/vn/`), built into the binary so
/// that the service's default works from any directory.
const VIET_NAM: &[(&str, &str)] = &[
    ("GR-VN-0000.json", include_str!("../../rules/vn/GR-VN-0000.json")),
    ("GR-VN-0001.json", include_str!("../../rules/vn/GR-VN-0001.json")),
    ("VR-VN-0000.json", include_str!("../../rules/vn/VR-VN-0000.json")),
    ("VR-VN-0001.json", include_str!("../../rules/vn/VR-VN-0001.json")),
    ("VR-VN-0002.json", include_str!("../../rules/vn/VR-VN-0002.json")),
    ("VR-VN-0003.json", include_str!("../../rules/vn/VR-VN-0003.json")),
    ("VR-VN-0004.json", include_str!("../../rules/vn/VR-VN-0004.json")),
    ("VR-VN-0005.json", include_str!("../../rules/vn/VR-VN-0005.json")),
    ("valuesets/country-2-codes.json", include_str!("../../rules/vn/valuesets/country-2-codes.json")),
    ("valuesets/disease-agent-targeted.json", include_str!("../../rules/vn/valuesets/disease-agent-targeted.json")),
    ("valuesets/vaccine-mah-manf.json", include_str!("../../rules/vn/valuesets/vaccine-mah-manf.json")),
    (
        "valuesets/vaccine-medicinal-product.json",
        include_str!("../../rules/vn/valuesets/vaccine-medicinal-product.json"),
    ),
    ("valuesets/vaccine-prophylaxis.json", include_str!("../../rules/vn/valuesets/vaccine-prophylaxis.json")),
];

impl RuleSet {
    /// Viet Nam's entry rules as shipped in `rules/vn/`, with their EU value sets.
    pub fn viet_nam() -> RuleSet {
        let mut set = RuleSet { rules: Vec::new(), value_sets: Json::Object(Default::default()) };
        for (name, text) in VIET_NAM {
            // The shipped files are tested (`shipped_viet_nam_rules_load`); a broken one is
            // a build defect, not input.
            #[allow(clippy::expect_used)]
            set.add_text(Path::new(name), text).expect("the shipped Viet Nam rules are valid");
        }
        set
    }

    /// Loads a rule file, a value-set file, or a directory of them (searched two levels
    /// deep, `*.json`). A JSON file with `Identifier` is a rule, one with `valueSetId` a value
    /// set, an array a list of rules (the EU gateway's download).
    pub fn load(path: &Path) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet { rules: Vec::new(), value_sets: Json::Object(Default::default()) };
        set.add_path(path, 0)?;
        Ok(set)
    }

    /// Adds the rules and value sets of another set (its value sets win on the same id).
    pub fn extend(&mut self, other: RuleSet) {
        self.rules.extend(other.rules);
        if let (Json::Object(mine), Json::Object(theirs)) = (&mut self.value_sets, other.value_sets) {
            mine.extend(theirs);
        }
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `external.valueSets`.
    pub fn value_sets(&self) -> &Json {
        &self.value_sets
    }

    fn add_path(&mut self, path: &Path, depth: usize) -> Result<(), RuleError> {
        let io = |cause| RuleError::Io { path: path.to_owned(), cause };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            let mut entries = std::fs::read_dir(path)
                .map_err(io)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io)?;
            entries.sort();
            for entry in entries {
                if entry.is_dir() {
                    if depth < MAX_DIR_DEPTH {
                        self.add_path(&entry, depth + 1)?;
                    }
                } else if entry.extension().is_some_and(|e| e == "json") {
                    self.add_path(&entry, depth + 1)?;
                }
            }
            return Ok(());
        }
        if meta.len() > MAX_RULE_FILE_BYTES {
            return Err(RuleError::TooLarge { path: path.to_owned() });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        self.add_text(path, &text)
    }

    fn add_text(&mut self, path: &Path, text: &str) -> Result<(), RuleError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| RuleError::Format { path: path.to_owned(), message: format!("not JSON: {e}") })?;
        let items = match json {
            Json::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            if item.get("Identifier").is_some() {
                if self.rules.len() >= MAX_RULES {
                    return Err(RuleError::TooMany);
                }
                self.rules.push(Rule::from_json(item)?);
            } else if let (Some(Json::String(id)), Some(Json::Object(values))) =
                (item.get("valueSetId"), item.get("valueSetValues"))
            {
                // The EU apps pass every code of a value set, active or not.
                let codes = values.keys().map(|k| Json::String(k.clone())).collect();
                if let Json::Object(sets) = &mut self.value_sets {
                    sets.insert(id.clone(), Json::Array(codes));
                }
            } else {
                return Err(RuleError::Format {
                    path: path.to_owned(),
                    message: "neither an EU business rule (Identifier, …, Logic) nor a value set (valueSetId, valueSetValues)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The rules that apply to a payload, as the EU verifier apps choose them: acceptance
    /// rules of the arrival country and invalidation rules of the issuing country, of the
    /// certificate's type or `General`, whose validity window holds the validation clock;
    /// of several versions of one rule, the newest.
    pub fn applicable(&self, payload: &Json, external: &External) -> Vec<&Rule> {
        let kind =
            [("v", CertificateType::Vaccination), ("t", CertificateType::Test), ("r", CertificateType::Recovery)]
                .into_iter()
                .find(|(k, _)| payload.get(k).and_then(Json::as_array).is_some_and(|a| !a.is_empty()))
                .map(|(_, t)| t);
        let at = external.validation_clock.unix_timestamp();
        let mut chosen: Vec<&Rule> = Vec::new();
        for rule in &self.rules {
            let country_matches = match rule.rule_type {
                RuleType::Acceptance => rule.country == external.country_code,
                RuleType::Invalidation => external.issuer_country_code.as_deref() == Some(rule.country.as_str()),
            };
            let type_matches = rule.certificate_type == CertificateType::General || Some(rule.certificate_type) == kind;
            if !(country_matches && type_matches && rule.window.0 <= at && at <= rule.window.1) {
                continue;
            }
            match chosen.iter_mut().find(|r| r.identifier == rule.identifier) {
                Some(existing) if existing.version_key < rule.version_key => *existing = rule,
                Some(_) => {}
                None => chosen.push(rule),
            }
        }
        chosen
    }

    /// Evaluates the applicable rules over a payload (SPEC §9.2 `entry`).
    pub fn evaluate(&self, payload: &Json, external: &External) -> Entry {
        let rfc3339 = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let clock = rfc3339(external.validation_clock);
        let unix =
            |s: Option<f64>| s.and_then(|s| OffsetDateTime::from_unix_timestamp(s.floor() as i64).ok()).map(rfc3339);
        let (exp, iat) = (unix(external.exp), unix(external.iat));
        let data = Value::record(vec![
            ("payload", Value::from_json(payload)),
            (
                "external",
                Value::record(vec![
                    ("validationClock", Value::String(&clock)),
                    ("valueSets", Value::from_json(&self.value_sets)),
                    ("countryCode", Value::String(&external.country_code)),
                    ("issuerCountryCode", text(external.issuer_country_code.as_deref())),
                    ("exp", text(exp.as_deref())),
                    ("iat", text(iat.as_deref())),
                ]),
            ),
        ]);
        let mut entry = Entry { result: EntryResult::Passed, failed: Vec::new() };
        for rule in self.applicable(payload, external) {
            let (result, reason) = match rule.check(&data) {
                Ok(true) => continue,
                Ok(false) => (EntryResult::Failed, None),
                Err(e) => (EntryResult::Open, Some(e.to_string())),
            };
            entry.result = match (entry.result, result) {
                (EntryResult::Failed, _) | (_, EntryResult::Failed) => EntryResult::Failed,
                _ => EntryResult::Open,
            };
            let en = rule.description_in("en").or_else(|| rule.description.first().map(|d| d.desc.as_str()));
            let en = en.unwrap_or(&rule.identifier).to_owned();
            let vi = rule.description_in("vi").map_or_else(|| en.clone(), str::to_owned);
            entry.failed.push(FailedRule {
                identifier: rule.identifier.clone(),
                description: Bilingual { vi, en },
                result,
                reason,
            });
        }
        entry
    }
}

/// A string, or `null` when absent.
fn text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests;
