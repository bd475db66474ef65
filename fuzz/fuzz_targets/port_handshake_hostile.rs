//! A port server and its clients through the connect handshake while the input plays a
//! hostile peer scribbling on connection slots, the port header and connection headers
//! (`culvert::port::fuzzing::handshake_hostile`): exact results before the first
//! scribble, bounded typed results after it, no section touched outside the port's own.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert::port::fuzzing::handshake_hostile(data));
