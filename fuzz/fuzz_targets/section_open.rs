//! Section open on hostile bytes: `culvert_section::fuzzing::section_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_section::fuzzing::section_open(data));
