//! Replays the `port_decode` fuzz corpus (and some generated inputs) through the fuzz
//! body, without libFuzzer.

use std::path::Path;

#[test]
fn port_decode_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/port_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("port_decode corpus") {
        let path = entry.unwrap().path();
        if path.is_file() {
            culvert::port::fuzzing::decode(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}

#[test]
fn port_decode_survives_mutations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/port_decode");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        for _ in 0..500 {
            let mut data = seed.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 4 {
                0 if !data.is_empty() => {
                    let i = (x >> 8) as usize % data.len();
                    data[i] ^= (x >> 32) as u8 | 1;
                }
                1 => data.truncate((x >> 8) as usize % (data.len() + 1)),
                2 => data.extend_from_slice(&x.to_le_bytes()),
                _ => {
                    for b in data.iter_mut().skip(32) {
                        *b = (x >> 16) as u8;
                    }
                }
            }
            culvert::port::fuzzing::decode(&data);
        }
    }
}
