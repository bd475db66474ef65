//! MPMC message ring driven by an operation script while the input plays a hostile peer
//! scribbling on shared words (`culvert_ring::fuzzing::mpmc_hostile::hostile`): exact until
//! the first scribble, then typed results only, each call within 1 s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_ring::fuzzing::mpmc_hostile::hostile(data));
