//! Ring control-block diagnostics (`culvert ls`/`inspect`/`gc`) on hostile bytes
//! (`culvert_ring::fuzzing::diag::ringdiag`): never a panic, overflow included.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| culvert_ring::fuzzing::diag::ringdiag(data));
