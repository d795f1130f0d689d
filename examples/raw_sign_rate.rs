//! ring's raw ES256 signing rate on N threads: the yardstick `scripts/bench-sign` divides
//! `vaxpass sign`'s passports/s by. Signs a 400-byte message (a passport's Sig_structure size)
//! with the keys-example facility key, one key pair per thread, for a fixed time.
//!
//! `cargo run --release --example raw_sign_rate -- THREADS SECONDS` prints `signatures/s`.

use std::path::Path;
use std::time::{Duration, Instant};

use vaxpass::pki::SigningKey;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let seconds: f64 = args.next().map_or(Ok(3.0), |a| a.parse())?;
    let key_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/facility-01001/key.pem");
    let deadline = Duration::from_secs_f64(seconds);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let key = SigningKey::load(&key_path).map_err(|e| e.to_string())?;
                    let msg = [0x5au8; 400];
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < deadline {
                        for _ in 0..64 {
                            std::hint::black_box(key.sign(std::hint::black_box(&msg)).map_err(|e| e.to_string())?);
                        }
                        n += 64;
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
