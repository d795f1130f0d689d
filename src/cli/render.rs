//! `vaxpass render`: a passport QR text as an image.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use crate::render::{QrFormat, render_qr};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Svg,
    Pdf,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  vaxpass render --format png --out passport.png 'HC1:NCF…'\n  \
    head -1 out/passports.jsonl | jq -r .hc1 | vaxpass render --format svg > passport.svg")]
pub(super) struct RenderArgs {
    /// Image format (QR at error correction Q, alphanumeric mode).
    #[arg(long, value_enum)]
    format: Format,
    /// Output file (replaced if it exists); standard output when absent (refused for PNG on a
    /// terminal).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The QR text (HC1:…); read from standard input when absent or `-`.
    qr_text: Option<String>,
}

pub(super) fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Format::Png => QrFormat::Png,
        Format::Svg => QrFormat::Svg,
        Format::Pdf => bail!(
            "the PDF certificate is rendered by the service (GET /api/v1/passports/{{uvci}}.pdf); use png or svg here"
        ),
    };
    let text = super::qr_text_arg(args.qr_text)?;
    let bytes = render_qr(text.trim(), format)?;
    match args.out {
        Some(path) => std::fs::write(&path, &bytes).with_context(|| format!("{}: cannot write", path.display()))?,
        None => {
            if format == QrFormat::Png && std::io::stdout().is_terminal() {
                bail!("refusing to write a PNG to the terminal; use --out FILE or redirect");
            }
            super::write_stdout(&bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
