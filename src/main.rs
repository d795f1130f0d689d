//! The `vaxpass` binary: parse arguments, run, print one error line.

use std::process::ExitCode;

use clap::Parser as _;

/// jemalloc rather than glibc's allocator: a batch makes tens of millions of short-lived
/// strings across threads. glibc's malloc and free took 20 % of a 1-million-person run's CPU
/// (perf), mostly consolidating fragmented arenas; jemalloc keeps freed pages for reuse
/// (mimalloc, also tried, returned them to the kernel and faulted them in again: 6 % slower).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = vaxpass::Cli::parse();
    match vaxpass::run_command(cli) {
        Ok(code) => code,
        // The error and its causes on one line (`a: b: c`): no error's message repeats
        // its `source()`, so each cause prints once.
        Err(err) => {
            eprintln!("vaxpass: {err:#}");
            ExitCode::from(2)
        }
    }
}
