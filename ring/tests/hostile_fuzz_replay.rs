//! Replays the seed corpora of the MPMC and SPSC hostile-peer fuzz targets
//! (`fuzz/corpus/ring_mpmc_hostile` and `fuzz/corpus/ring_spsc_hostile`) through their
//! library bodies, so `cargo xtask test` checks them without libFuzzer. Also runs a
//! batch of pseudo-random inputs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use culvert_ring::fuzzing::{mpmc_hostile, spsc_hostile};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    let files = corpus(target);
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
fn random_inputs(seed: u64, count: usize, len: usize) -> impl Iterator<Item = Vec<u8>> {
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

#[test]
fn mpmc_hostile_corpus_replays() {
    replay("ring_mpmc_hostile", mpmc_hostile::hostile);
}

#[test]
fn spsc_hostile_corpus_replays() {
    replay("ring_spsc_hostile", spsc_hostile::hostile);
}

#[test]
fn hostile_bodies_survive_random_inputs() {
    for data in random_inputs(0x9e37_79b9, 300, 600) {
        mpmc_hostile::hostile(&data);
        spsc_hostile::hostile(&data);
    }
}
