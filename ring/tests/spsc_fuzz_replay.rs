//! Replays the `ring_spsc` seed corpus through the fuzz body, without libFuzzer.

use culvert_testkit::{fuzz_corpus, fuzz_corpus_dir};

#[test]
fn replay_ring_spsc_corpus() {
    let mut replayed = 0;
    for path in fuzz_corpus("ring_spsc") {
        let data = std::fs::read(&path).unwrap();
        culvert_ring::fuzzing::spsc::ops(&data);
        replayed += 1;
    }
    assert!(
        replayed >= 5,
        "only {replayed} seeds in {}",
        fuzz_corpus_dir("ring_spsc").display()
    );
}
