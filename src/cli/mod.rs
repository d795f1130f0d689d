//! The `vaxpass` command line: clap definitions, one file per subcommand, human and `--json`
//! output. Everything the service could also need lives in the library, not here.

mod r#gen;
mod pki;
mod render;
mod report;
mod retract;
mod rules;
mod serve;
mod sign;
mod token;
mod verify;

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

/// vaxpass: signed, EU-compatible QR vaccine passports for Viet Nam.
///
/// Health stations batch-sign dose records checked against the population registry; border
/// officials verify passports down to the Ministry of Health root. Every command runs out of
/// the box on the development hierarchy in keys-example/ (never use it in production).
#[derive(Debug, Parser)]
#[command(name = "vaxpass", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic registry.csv + doses.csv + truth.csv of any size.
    Gen(r#gen::GenArgs),
    /// Manage the certificate hierarchy: Ministry root, provincial CAs, facility DSCs.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Batch-sign dose records checked against the population registry.
    Sign(sign::SignArgs),
    /// Remove dose records from the ledger; revoke and re-issue the passports that carried them.
    Retract(retract::RetractArgs),
    /// Verify a passport QR text: signature, certificate chain, validity, key usage, revocation.
    Verify(verify::VerifyArgs),
    /// Render a passport QR text as a PNG or SVG image.
    Render(render::RenderArgs),
    /// Run the HTTP service: verification, trust list, traveller download, revocation.
    Serve(serve::ServeArgs),
    /// Create a facility's API token for station uploads (printed once, stored hashed).
    Token(token::TokenArgs),
    /// The Ministry's figures by province or facility: signing, rejections, the 48-hour rule.
    Report(report::ReportArgs),
    /// Entry rules: evaluate CertLogic, check an EU business rule, validate an expression.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
}

/// Runs a parsed command line. `Ok` carries the exit code (`verify` exits 1 for "not valid").
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Gen(args) => r#gen::run(args),
        Command::Pki(cmd) => pki::run(cmd),
        Command::Sign(args) => sign::run(args),
        Command::Retract(args) => retract::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Render(args) => render::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => token::run(args),
        Command::Report(args) => report::run(args),
        Command::Rules(cmd) => rules::run(cmd),
    }
}

/// Largest standard input accepted where a QR text is expected: ten times what a QR code can
/// hold, so a stray file piped in fails fast instead of filling memory.
const MAX_STDIN_TEXT: u64 = 10 * crate::passport::MAX_HC1_LEN as u64;

/// The QR text from the argument, or from stdin when absent or `-`.
fn qr_text_arg(arg: Option<String>) -> anyhow::Result<String> {
    match arg.as_deref() {
        Some(t) if t != "-" => Ok(t.to_owned()),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin().take(MAX_STDIN_TEXT + 1).read_to_end(&mut buf).context("reading standard input")?;
            if buf.len() as u64 > MAX_STDIN_TEXT {
                bail!(
                    "standard input is larger than {MAX_STDIN_TEXT} bytes; a QR text is at most {} characters",
                    crate::passport::MAX_HC1_LEN
                );
            }
            String::from_utf8(buf).context("standard input is not UTF-8 text")
        }
    }
}

/// Writes to stdout; a closed pipe (`vaxpass … | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing standard output"),
        _ => Ok(()),
    }
}

/// Parses an RFC 3339 time (`--at`).
fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time like 2022-05-11T00:00:00Z ({e})"))
}
