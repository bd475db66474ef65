//! A mailslot and a broadcast group driven by an operation script while the input plays
//! a hostile peer scribbling on their control blocks and rings
//! (`culvert::mailslot::fuzzing::hostile`): exact results before the first scribble,
//! bounded typed results after it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert::mailslot::fuzzing::hostile(data));
