//! Fuzz bodies: plain library functions driven by `fuzz/` targets and replayed from the
//! seed corpora by ordinary tests, so `cargo xtask test` needs no libFuzzer.
//!
//! Each body runs an operation script decoded from the input against a ring in heap
//! memory and checks it against a `VecDeque` model; the `hostile` bodies also scribble
//! on shared words and require only that every call returns (data or a typed error).

pub mod broadcast;
pub mod mpmc;
pub mod spsc;
