//! Replays the `section_open` fuzz corpus (`fuzz/corpus/section_open/`) through the
//! harness body, so found crashes stay fixed without libFuzzer.

use std::path::PathBuf;

use culvert_section::fuzzing;
use culvert_testkit::{fuzz_corpus, fuzz_corpus_dir};

fn corpus_dir() -> PathBuf {
    fuzz_corpus_dir("section_open")
}

#[test]
fn section_open_corpus_replays() {
    let dir = corpus_dir();
    let mut seen = Vec::new();
    for path in fuzz_corpus("section_open") {
        let data = std::fs::read(&path).unwrap();
        fuzzing::section_open(&data);
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    let seeds = fuzzing::seed_corpus();
    assert!(
        seen.len() >= seeds.len(),
        "only {} corpus files",
        seen.len()
    );
    for (name, _) in seeds {
        assert!(
            seen.iter().any(|s| s == name),
            "seed {name} missing from {}",
            dir.display()
        );
    }
}

/// Regenerates the seed files: `cargo test -p culvert-section --test fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in fuzzing::seed_corpus() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}
