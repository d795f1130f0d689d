//! The raw signing rate of one key shared by N threads, as `vaxpass sign --jobs N` shares it:
//! for a `pkcs11:` URI each thread gets a token session of its own (SPEC §10), for a PEM file
//! it is ring's rate. `scripts/bench-sign-token` runs it beside the whole batch, to tell the
//! token's own cost from the pipeline's. Signs a 400-byte message (a passport's
//! Sig_structure size) for a fixed time.
//!
//! `cargo run --release --example token_sign_rate -- THREADS SECONDS KEY` prints `signatures/s`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vaxpass::pki::SigningKey;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let seconds: f64 = args.next().map_or(Ok(3.0), |a| a.parse())?;
    let key = PathBuf::from(args.next().ok_or("usage: token_sign_rate THREADS SECONDS KEY")?);
    let key = SigningKey::open(&key)?;
    let deadline = Duration::from_secs_f64(seconds);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let msg = [0x5au8; 400];
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < deadline {
                        for _ in 0..16 {
                            std::hint::black_box(key.sign(std::hint::black_box(&msg)).map_err(|e| e.to_string())?);
                        }
                        n += 16;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err("thread panicked".into()))).collect::<Result<_, _>>()
    })?;
    let total: u64 = counts.iter().sum();
    println!("{:.0}", total as f64 / seconds);
    Ok(())
}
