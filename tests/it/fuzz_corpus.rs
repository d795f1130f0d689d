//! Replays the fuzzing corpus (`fuzz/corpus/<target>/`, minimised with `cargo fuzz cmin`)
//! through the fuzz targets' own bodies (`fuzz/src/lib.rs`, included here), on stable and
//! without libFuzzer: every input that once reached new code must still return without a
//! panic and in bounded time. Crashes found by fuzzing are kept in the corpus too.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../../fuzz/src/lib.rs"]
mod targets;

/// Longest time one input may take here (a debug build of the crate, optimised
/// dependencies): the slowest input of the minimised corpus, a photo, took 0.04 s on 2 busy
/// cores (a full-size QR photo 1.3 s); the fuzzing itself ran with libFuzzer's `-timeout=2`
/// on optimised code.
const MAX_PER_INPUT: Duration = Duration::from_secs(5);

#[test]
fn every_corpus_input_returns_without_panic_in_bounded_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, body) in targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // A replay of an empty corpus would pass for nothing.
        assert!(files.len() >= 5, "{}: only {} inputs", dir.display(), files.len());
        let mut slowest = (Duration::ZERO, None);
        let started = Instant::now();
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(|| body(&data));
            let took = start.elapsed();
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
            if took > slowest.0 {
                slowest = (took, Some(file));
            }
        }
        let (took, file) = slowest;
        eprintln!("{name}: {} inputs in {:?}, the slowest {took:?}", files.len(), started.elapsed());
        assert!(took <= MAX_PER_INPUT, "{name}: {:?} took {took:?}", file);
    }
}
