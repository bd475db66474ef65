//! Replays every seed of `fuzz/corpus/ring_mpmc/` through the fuzz body, without
//! libFuzzer, plus a few pseudo-random scripts.

use std::path::Path;

#[test]
fn mpmc_fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ring_mpmc");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            culvert_ring::fuzzing::mpmc::ops(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no seed files in {}", dir.display());
}

#[test]
fn mpmc_fuzz_random_scripts() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..2_000 {
        let len = rng.random_range(0..400);
        let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        culvert_ring::fuzzing::mpmc::ops(&data);
    }
}
