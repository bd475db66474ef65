//! # culvert-cli — the library half of the `culvert` command
//!
//! The `culvert` binary (`src/main.rs`) is the product; this library exposes the parts
//! of it that must be exercised on hostile input without running the binary:
//!
//! * [`ringdiag`] — decoding ring control blocks from a *copy* of an object's bytes,
//!   for `culvert ls`, `inspect` and `gc`; total over any byte slice (never panics,
//!   checked arithmetic on every offset and count it reads);
//! * [`fuzzing`] — the body of the `cli_ringdiag` fuzz target and its seed inputs, so
//!   the seed corpus is replayed by an ordinary test.
//!
//! It never maps a section or writes shared memory.

#![warn(missing_docs)]

pub mod fuzzing;
pub mod ringdiag;
