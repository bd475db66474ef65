//! Replays the `ring_diag` fuzz corpus (and mutations of it) through the fuzz body,
//! without libFuzzer, and checks that the corpus holds every current seed, decoding to
//! the same kind of result (seeds carry process identities, so bytes differ from run
//! to run; run with `CULVERT_WRITE_CORPUS=1` to rewrite them).

use std::path::PathBuf;

use culvert_ring::diag::{decode, RingDiag};
use culvert_ring::fuzzing::diag as fuzzing;
use culvert_testkit::{fuzz_corpus, fuzz_corpus_dir, xorshift};

fn corpus_dir() -> PathBuf {
    fuzz_corpus_dir("ring_diag")
}

/// The seed files, sorted, with their bytes.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    fuzz_corpus("ring_diag")
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn corpus_holds_every_seed() {
    let write = std::env::var_os("CULVERT_WRITE_CORPUS").is_some();
    for (name, bytes) in fuzzing::seeds() {
        let path = corpus_dir().join(name);
        if write {
            std::fs::create_dir_all(corpus_dir()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let stored = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("seed {name} missing from the corpus ({e})"));
        let (fresh, stored) = (decode(&bytes), decode(&stored));
        assert_eq!(
            fresh.as_ref().map(std::mem::discriminant),
            stored.as_ref().map(std::mem::discriminant),
            "seed {name} decodes differently from the corpus (ring layout changed?): {fresh:?} vs {stored:?}"
        );
    }
}

#[test]
fn ring_diag_corpus_replays() {
    let files = corpus();
    for (_, bytes) in &files {
        fuzzing::ringdiag(bytes);
    }
    assert!(files.len() >= 8, "only {} seeds", files.len());
}

#[test]
fn hostile_seeds_decode_as_corrupted() {
    for (path, bytes) in corpus() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let diag = decode(&bytes);
        let corrupted = matches!(diag, Some(RingDiag::Corrupted(_)));
        let expect = ["overflow", "huge", "past_end", "cut_off"]
            .iter()
            .any(|w| name.contains(w));
        assert_eq!(corrupted, expect, "{name}: {diag:?}");
    }
}

#[test]
fn ring_diag_survives_mutations() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (_, seed) in corpus() {
        for _ in 0..300 {
            let mut data = seed.clone();
            xorshift(&mut x);
            match x % 4 {
                0 if !data.is_empty() => {
                    // A large value at an 8-aligned offset of the fixed part.
                    let i = ((x >> 8) as usize % data.len().min(704)) & !7;
                    let v = u64::MAX - (x >> 40);
                    if let Some(s) = data.get_mut(i..i + 8) {
                        s.copy_from_slice(&v.to_ne_bytes());
                    }
                }
                1 => data.truncate((x >> 8) as usize % (data.len() + 1)),
                2 if !data.is_empty() => {
                    let i = (x >> 8) as usize % data.len();
                    data[i] ^= (x >> 32) as u8 | 1;
                }
                _ => data.extend_from_slice(&x.to_le_bytes()),
            }
            fuzzing::ringdiag(&data);
        }
    }
}
