//! Replay of a fuzz target's seed corpus through its library body, and deterministic
//! pseudo-random inputs, shared by the corpus-replay tests of this crate.

use std::time::{Duration, Instant};

use culvert_testkit::fuzz_corpus;

/// Runs `body` on every seed of `target`; each must finish within 10 s.
pub fn replay(target: &str, body: fn(&[u8])) {
    let files = fuzz_corpus(target);
    assert!(!files.is_empty(), "no seed files for {target}");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let start = Instant::now();
        body(&data);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} took {:?}",
            file.display(),
            start.elapsed()
        );
    }
}

/// xorshift64*: deterministic pseudo-random inputs.
pub fn random_inputs(seed: u64, count: usize, len: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut x = seed | 1;
    (0..count).map(move |_| {
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    })
}
