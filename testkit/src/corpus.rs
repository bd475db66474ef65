//! The seed corpora of the workspace's fuzz targets (`fuzz/corpus/<target>/`), for
//! tests that replay them through a fuzz body without libFuzzer. The directory is found
//! from this crate's place in the workspace, so every crate's tests name a corpus the
//! same way.

use std::path::{Path, PathBuf};

/// The corpus directory of fuzz target `target`.
pub fn fuzz_corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The seed files of fuzz target `target`, sorted; panics if the directory cannot be
/// read.
pub fn fuzz_corpus(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}
