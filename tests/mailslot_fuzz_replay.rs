//! Replays the `mailslot_hostile` fuzz corpus and mutations of its hand-made seeds
//! through the fuzz body, without libFuzzer.

mod fuzz_replay;

use fuzz_replay::{hand_made, mutations, seeds};

#[test]
fn mailslot_hostile_corpus_replays() {
    for path in seeds("mailslot_hostile", 10) {
        culvert::mailslot::fuzzing::hostile(&std::fs::read(path).unwrap());
    }
}

#[test]
fn mailslot_hostile_survives_mutations() {
    mutations(
        hand_made("mailslot_hostile"),
        20,
        0x9e37_79b9_7f4a_7c15,
        culvert::mailslot::fuzzing::hostile,
        |data, x| {
            // The same script on other sizes.
            if let Some(b) = data.first_mut() {
                *b = (x >> 24) as u8;
            }
        },
    );
}
