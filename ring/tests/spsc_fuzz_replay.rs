//! Replays the `ring_spsc` seed corpus through the fuzz body, without libFuzzer.

#[test]
fn replay_ring_spsc_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ring_spsc");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        culvert_ring::fuzzing::spsc::ops(&data);
        replayed += 1;
    }
    assert!(replayed >= 5, "only {replayed} seeds in {}", dir.display());
}
