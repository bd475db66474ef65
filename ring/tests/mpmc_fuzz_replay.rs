//! Replays every seed of `fuzz/corpus/ring_mpmc/` through the fuzz body, without
//! libFuzzer, plus a few pseudo-random scripts.

use culvert_testkit::{fuzz_corpus, fuzz_corpus_dir};

#[test]
fn mpmc_fuzz_corpus_replays() {
    let mut n = 0;
    for path in fuzz_corpus("ring_mpmc") {
        let data = std::fs::read(&path).unwrap();
        culvert_ring::fuzzing::mpmc::ops(&data);
        n += 1;
    }
    assert!(
        n > 0,
        "no seed files in {}",
        fuzz_corpus_dir("ring_mpmc").display()
    );
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
