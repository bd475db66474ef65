//! Replays the `pipe_fragments_hostile` corpus and mutations of its seeds through the
//! fuzz body, without libFuzzer.

mod fuzz_replay;

use culvert::pipe::fuzzing::fragments_hostile;

#[test]
fn pipe_fragments_hostile_corpus_replays() {
    for path in fuzz_replay::seeds("pipe_fragments_hostile", 20) {
        fragments_hostile(&std::fs::read(path).unwrap());
    }
}

#[test]
fn pipe_fragments_hostile_survives_seed_mutations() {
    // Besides the generic mutations: repeat a random slice (more of the same ops).
    fuzz_replay::mutations(
        fuzz_replay::hand_made("pipe_fragments_hostile"),
        20,
        0x9e37_79b9_7f4a_7c15,
        fragments_hostile,
        |data, x| {
            if !data.is_empty() {
                let i = (x >> 16) as usize % data.len();
                let j = (i + 1 + (x >> 40) as usize % 16).min(data.len());
                let copy = data[i..j].to_vec();
                data.extend_from_slice(&copy);
            }
        },
    );
}
