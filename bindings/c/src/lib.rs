//! # culvert-ffi — culvert from C
//!
//! Will own the C ABI (opaque handles, status codes, `culvert_last_error_message`) and
//! `include/culvert.h` — *not built yet (issue 8)*. It must never let a Rust panic
//! cross the boundary.
