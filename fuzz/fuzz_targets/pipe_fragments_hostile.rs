//! A message pipe's fragment reassembly and peek cursor against a hostile writer forging
//! ring records and scribbling on its ring (`culvert::pipe::fuzzing::fragments_hostile`):
//! exact until the first forgery, then typed results only, each call within 1 s.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert::pipe::fuzzing::fragments_hostile(data));
