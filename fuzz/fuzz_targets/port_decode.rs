//! Port record and view-descriptor decoding on hostile bytes
//! (`culvert::port::fuzzing::decode`): typed errors, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert::port::fuzzing::decode(data));
