//! The `vaxpass` binary: parse arguments, run, print one error line.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = vaxpass::cli::Cli::parse();
    match vaxpass::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vaxpass: {err:#}");
            ExitCode::from(2)
        }
    }
}
