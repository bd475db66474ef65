//! Replays the port fuzz corpora (`port_decode`, `port_heap_hostile`) and mutations of
//! their seeds through the fuzz bodies, without libFuzzer.

use std::path::{Path, PathBuf};

/// The seed files of corpus `name`; asserts it holds at least `min`.
fn seeds(name: &str, min: usize) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert!(
        files.len() >= min,
        "only {} seeds in {}",
        files.len(),
        dir.display()
    );
    files
}

/// Feeds `rounds` mutations of every seed of corpus `name` to `body`. `mutate` gets the
/// copy and a fresh xorshift value and may change it in its own way; every mutation
/// also flips a byte, truncates, or inserts 8 bytes.
fn mutations(name: &str, rounds: usize, seed: u64, body: fn(&[u8]), mutate: fn(&mut Vec<u8>, u64)) {
    let mut x = seed;
    for path in seeds(name, 1) {
        let original = std::fs::read(path).unwrap();
        for _ in 0..rounds {
            let mut data = original.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
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

#[test]
fn port_decode_corpus_replays() {
    for path in seeds("port_decode", 5) {
        culvert::port::fuzzing::decode(&std::fs::read(path).unwrap());
    }
}

#[test]
fn port_decode_survives_mutations() {
    mutations(
        "port_decode",
        500,
        0x2545_f491_4f6c_dd1d,
        culvert::port::fuzzing::decode,
        |data, x| {
            // A garbled body behind an intact header.
            for b in data.iter_mut().skip(32) {
                *b = (x >> 16) as u8;
            }
        },
    );
}

#[test]
fn port_heap_hostile_corpus_replays() {
    for path in seeds("port_heap_hostile", 8) {
        culvert::port::fuzzing::heap_hostile(&std::fs::read(path).unwrap());
    }
}

#[test]
fn port_heap_hostile_survives_mutations() {
    mutations(
        "port_heap_hostile",
        200,
        0x9e37_79b9_7f4a_7c15,
        culvert::port::fuzzing::heap_hostile,
        |data, x| {
            // The same script on another heap size.
            if let Some(b) = data.first_mut() {
                *b = (x >> 24) as u8;
            }
        },
    );
}
