//! `vaxpass render`: a passport QR text as an image.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use crate::render::{QrFormat, certificate_pdf, render_qr};

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
    /// png/svg: the QR code (error correction Q, alphanumeric mode); pdf: the printable
    /// bilingual certificate with the QR code.
    #[arg(long, value_enum)]
    format: Format,
    /// Output file (replaced if it exists); standard output when absent (refused for PNG and
    /// PDF on a terminal).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The QR text (HC1:…); read from standard input when absent or `-`.
    qr_text: Option<String>,
}

pub(super) fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let text = super::qr_text_arg(args.qr_text)?;
    let (bytes, binary) = match args.format {
        Format::Png => (render_qr(text.trim(), QrFormat::Png)?, true),
        Format::Svg => (render_qr(text.trim(), QrFormat::Svg)?, false),
        Format::Pdf => (certificate_pdf(text.trim())?, true),
    };
    match args.out {
        Some(path) => std::fs::write(&path, &bytes).with_context(|| format!("{}: cannot write", path.display()))?,
        None => {
            if binary && std::io::stdout().is_terminal() {
                bail!("refusing to write a binary image to the terminal; use --out FILE or redirect");
            }
            super::write_stdout(&bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
