//! Replays the seed corpora of the broadcast fuzz targets (`fuzz/corpus/ring_broadcast`
//! and `fuzz/corpus/ring_hostile`) through their library bodies, so `cargo xtask test`
//! checks them without libFuzzer. Also runs a batch of pseudo-random inputs.

#[path = "replay/mod.rs"]
mod replay;

use replay::{random_inputs, replay};

use culvert_ring::fuzzing::broadcast::{hostile, ops};

#[test]
fn broadcast_ops_corpus_replays() {
    replay("ring_broadcast", ops);
}

#[test]
fn broadcast_hostile_corpus_replays() {
    replay("ring_hostile", hostile);
}

#[test]
fn broadcast_bodies_survive_random_inputs() {
    for data in random_inputs(0x1234_5678, 300, 600) {
        ops(&data);
        hostile(&data);
    }
}
