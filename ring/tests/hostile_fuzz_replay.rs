//! Replays the seed corpora of the MPMC and SPSC hostile-peer fuzz targets
//! (`fuzz/corpus/ring_mpmc_hostile` and `fuzz/corpus/ring_spsc_hostile`) through their
//! library bodies, so `cargo xtask test` checks them without libFuzzer. Also runs a
//! batch of pseudo-random inputs.

#[path = "replay/mod.rs"]
mod replay;

use replay::{random_inputs, replay};

use culvert_ring::fuzzing::{mpmc_hostile, spsc_hostile};

#[test]
fn mpmc_hostile_corpus_replays() {
    replay("ring_mpmc_hostile", mpmc_hostile::hostile);
}

#[test]
fn spsc_hostile_corpus_replays() {
    replay("ring_spsc_hostile", spsc_hostile::hostile);
}

#[test]
fn hostile_bodies_survive_random_inputs() {
    for data in random_inputs(0x9e37_79b9, 300, 600) {
        mpmc_hostile::hostile(&data);
        spsc_hostile::hostile(&data);
    }
}
