//! Broadcast ring driven by an operation script, checked against a model.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_ring::fuzzing::broadcast::ops(data));
