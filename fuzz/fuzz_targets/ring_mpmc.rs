#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_ring::fuzzing::mpmc::ops(data));
