//! # culvert-loom-tests — loom models of culvert's concurrency protocols
//!
//! The models live in `tests/` and compile only with `RUSTFLAGS="--cfg loom"` (run by
//! `cargo xtask test` in its own target directory with `LOOM_MAX_PREEMPTIONS=2`). Under
//! loom, `culvert_sync::atomic` hands out loom's atomics, so the models exercise the
//! production code of the `Notifier` and the rings, not copies of it.
