//! Fuzz bodies: plain library functions driven by `fuzz/` targets and replayed from the
//! seed corpora by ordinary tests, so `cargo xtask test` needs no libFuzzer.
//!
//! Each body runs an operation script decoded from the input against a ring in heap
//! memory and checks it against a `VecDeque` model; the `hostile` bodies also scribble
//! on shared words. The broadcast one requires only that every call returns (data or a
//! typed error); [`mpmc_hostile`] and [`spsc_hostile`] are exact until the first
//! scribble and then require typed results within a wall-clock bound, and that no
//! message a writer never committed is delivered unless the scribbles forged data.

pub mod broadcast;
pub mod diag;
mod hostile;
pub mod mpmc;
pub mod mpmc_hostile;
pub mod spsc;
pub mod spsc_hostile;
