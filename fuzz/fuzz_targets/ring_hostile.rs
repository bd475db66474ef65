//! Broadcast ring driven by an operation script while the input plays a hostile peer
//! scribbling on shared words: every call must return, nothing may panic or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_ring::fuzzing::broadcast::hostile(data));
