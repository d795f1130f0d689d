//! `vaxpass rules`: evaluate CertLogic, check one business rule, validate an expression
//! (SPEC §9.2).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value as Json, json};

use crate::rules::{self, Rule, Value};

/// Largest logic, data, payload or external file read: the EU value sets an `external`
/// carries are ~60 KB together.
const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub(super) enum RulesCommand {
    /// Evaluate a CertLogic expression over a data context and print the value as JSON.
    #[command(after_long_help = "Example:\n  \
        echo '{\"plusTime\": [{\"var\": \"d\"}, 14, \"day\"]}' > logic.json\n  \
        echo '{\"d\": \"2021-08-01\"}' > data.json\n  \
        vaxpass rules eval --logic logic.json --data data.json\n  \
        \"2021-08-15T00:00:00.000Z\"\n\n\
        A date-time prints as JavaScript's toISOString. An expression that cannot be evaluated\n\
        (unknown operator, a type mismatch, a value neither truthy nor falsy where a boolean is\n\
        needed) prints one error line and exits 2.")]
    Eval(EvalArgs),
    /// Evaluate one EU business rule's Logic over {"payload", "external"} (no applicability
    /// filtering) and print {"result": true | false | "open"}.
    #[command(after_long_help = "Example:\n  \
        vaxpass rules check --rule rules/vn/VR-VN-0003.json --payload dcc.json --external external.json\n  \
        {\"result\":false}\n\n\
        external.json holds what the verifier knows, e.g.\n  \
        {\"validationClock\": \"2021-09-01T00:00:00Z\", \"valueSets\": {\"disease-agent-targeted\": [\"840539006\"]}}\n\
        \"open\": the rule could not be evaluated (it never counts as passed). A rule file whose\n\
        Logic is not valid CertLogic is refused (exit 2), naming the rule and the reason.")]
    Check(CheckArgs),
    /// Check that an expression is well-formed CertLogic (known operators, right arities)
    /// without evaluating it; print {"valid": bool, "issues": [...]}.
    #[command(after_long_help = "Example:\n  \
        echo '{\"all\": [[1], true]}' > logic.json\n  \
        vaxpass rules validate --logic logic.json\n  \
        {\"valid\":false,\"issues\":[{\"at\":\"\",\"message\":\"unrecognised operator: \\\"all\\\"\"}]}\n\n\
        Exit status: 0 valid, 1 not valid, 2 unreadable file.")]
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub(super) struct EvalArgs {
    /// The CertLogic expression (JSON file).
    #[arg(long, value_name = "FILE")]
    logic: PathBuf,
    /// The data context (JSON file).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The rule, in the EU business-rule format (Identifier, Type, Country, Version,
    /// CertificateType, Description, ValidFrom, ValidTo, AffectedFields, Logic).
    #[arg(long, value_name = "FILE")]
    rule: PathBuf,
    /// The DCC payload (ver, nam, dob, v|t|r) as JSON.
    #[arg(long, value_name = "FILE")]
    payload: PathBuf,
    /// The external data as JSON (validationClock, valueSets, countryCode, exp, iat).
    #[arg(long, value_name = "FILE")]
    external: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    /// The CertLogic expression (JSON file).
    #[arg(long, value_name = "FILE")]
    logic: PathBuf,
}

pub(super) fn run(cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Eval(args) => {
            let logic = read_json(&args.logic)?;
            let data = read_json(&args.data)?;
            let value = rules::evaluate(&logic, &Value::from_json(&data))
                .map_err(|e| anyhow::anyhow!("{}: cannot be evaluated: {e}", args.logic.display()))?;
            print_json(&value.to_json())?;
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Check(args) => {
            let rule = Rule::from_json(read_json(&args.rule)?).with_context(|| args.rule.display().to_string())?;
            let payload = read_json(&args.payload)?;
            let external = read_json(&args.external)?;
            let data =
                Value::record(vec![("payload", Value::from_json(&payload)), ("external", Value::from_json(&external))]);
            let result = match rule.check(&data) {
                Ok(passed) => json!(passed),
                Err(_) => json!("open"),
            };
            print_json(&json!({ "result": result }))?;
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Validate(args) => {
            let issues = match read_json(&args.logic) {
                Ok(logic) => rules::validate(&logic),
                Err(e) if e.downcast_ref::<serde_json::Error>().is_some() => {
                    vec![rules::ValidationIssue { at: String::new(), message: format!("{e:#}") }]
                }
                Err(e) => return Err(e),
            };
            print_json(&json!({ "valid": issues.is_empty(), "issues": issues }))?;
            Ok(if issues.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

/// A JSON file, at most [`MAX_INPUT_BYTES`].
fn read_json(path: &Path) -> anyhow::Result<Json> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut text = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if text.len() as u64 > MAX_INPUT_BYTES {
        bail!("{}: larger than {MAX_INPUT_BYTES} bytes", path.display());
    }
    serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn print_json(value: &Json) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    super::write_stdout(&line)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::Cli;

    #[test]
    fn subcommands_parse() {
        for args in [
            &["vaxpass", "rules", "eval", "--logic", "l.json", "--data", "d.json"][..],
            &["vaxpass", "rules", "check", "--rule", "r.json", "--payload", "p.json", "--external", "e.json"],
            &["vaxpass", "rules", "validate", "--logic", "l.json"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
        assert!(Cli::try_parse_from(["vaxpass", "rules", "check", "--rule", "r.json"]).is_err());
    }
}
