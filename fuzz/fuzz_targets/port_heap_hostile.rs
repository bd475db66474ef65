//! The view heap driven by an operation script while the input plays a hostile peer
//! scribbling on its page entries, header and data (`culvert::port::fuzzing::heap_hostile`):
//! exact results before the first scribble, bounded typed results and no access outside
//! the heap after it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert::port::fuzzing::heap_hostile(data));
