//! Shared by the fuzz replay tests: the seeds of a corpus under `fuzz/corpus/`, its
//! hand-made seeds, and seed mutations fed to a fuzz body without libFuzzer.

#![allow(dead_code)] // each test binary uses what it needs

use std::path::PathBuf;

use culvert_testkit::{fuzz_corpus, fuzz_corpus_dir, xorshift};

/// The seed files of corpus `name`; asserts it holds at least `min`.
pub fn seeds(name: &str, min: usize) -> Vec<PathBuf> {
    let files = fuzz_corpus(name);
    assert!(
        files.len() >= min,
        "only {} seeds in {}",
        files.len(),
        fuzz_corpus_dir(name).display()
    );
    files
}

/// The hand-made seeds of corpus `name` (the entries not named by their SHA-1).
pub fn hand_made(name: &str) -> Vec<PathBuf> {
    let sha1 = |p: &PathBuf| {
        let n = p.file_name().unwrap().to_string_lossy();
        n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit())
    };
    seeds(name, 1).into_iter().filter(|p| !sha1(p)).collect()
}

/// Feeds `rounds` mutations of every file of `paths` to `body`. `mutate` gets the copy
/// and a fresh xorshift value and may change it in its own way; every mutation also
/// flips a byte, truncates, or inserts 8 bytes.
pub fn mutations(
    paths: Vec<PathBuf>,
    rounds: usize,
    seed: u64,
    body: fn(&[u8]),
    mutate: fn(&mut Vec<u8>, u64),
) {
    let mut x = seed;
    for path in paths {
        let original = std::fs::read(path).unwrap();
        for _ in 0..rounds {
            let mut data = original.clone();
            xorshift(&mut x);
            match x % 4 {
                0 if !data.is_empty() => {
                    let i = (x >> 8) as usize % data.len();
                    data[i] ^= (x >> 32) as u8 | 1;
                }
                1 => data.truncate((x >> 8) as usize % (data.len() + 1)),
                2 => {
                    let i = (x >> 8) as usize % (data.len() + 1);
                    data.splice(i..i, x.to_le_bytes());
                }
                _ => mutate(&mut data, x),
            }
            body(&data);
        }
    }
}
