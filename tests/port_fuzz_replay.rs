//! Replays the port fuzz corpora (`port_decode`, `port_heap_hostile`,
//! `port_handshake_hostile`) and mutations of their seeds through the fuzz bodies,
//! without libFuzzer.

mod fuzz_replay;

use fuzz_replay::{hand_made, mutations, seeds};

#[test]
fn port_decode_corpus_replays() {
    for path in seeds("port_decode", 5) {
        culvert::port::fuzzing::decode(&std::fs::read(path).unwrap());
    }
}

#[test]
fn port_decode_survives_mutations() {
    mutations(
        seeds("port_decode", 1),
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
        seeds("port_heap_hostile", 1),
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

#[test]
fn port_handshake_hostile_corpus_replays() {
    for path in seeds("port_handshake_hostile", 8) {
        culvert::port::fuzzing::handshake_hostile(&std::fs::read(path).unwrap());
    }
}

#[test]
fn port_handshake_hostile_survives_mutations() {
    mutations(
        hand_made("port_handshake_hostile"),
        16,
        0x5851_f42d_4c95_7f2d,
        culvert::port::fuzzing::handshake_hostile,
        |data, x| {
            // The same script with another answer for one connect.
            if let Some(b) = data.get_mut(2) {
                *b = (x >> 24) as u8;
            }
        },
    );
}
