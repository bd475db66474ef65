//! Helpers shared by culvert's tests; a dev-dependency of every crate of the workspace,
//! depending on none of them.
//!
//! * [`mod@role`]: a cross-process test re-runs its own test binary as a child playing a
//!   named role; [`cross_test!`] names the test without spelling it as a string.
//! * [`supervisor`]: the children of one test under an outer deadline; their output
//!   is captured and shown when the test fails, and a watchdog kills them (and aborts
//!   the test binary) if the test hangs.
//! * [`wait`]: bounded waits for a condition or a call.
//! * [`root`]: a fresh directory per test, used as a namespace root (`CULVERT_ROOT`,
//!   `SectionOptions::root`) or a place for results.
//! * [`bytes`]: checksums and deterministic byte patterns, the same in every process.
//! * [`corpus`]: the seed files of a fuzz target, for replay tests.

pub mod alloc;
pub mod bytes;
mod capture;
pub mod corpus;
mod kid;
pub mod role;
pub mod root;
pub mod supervisor;
pub mod wait;
mod watchdog;

pub use bytes::{
    checksum, fill, fnv1a, fnv1a_words, mix, pattern, xorshift, Stream, XorShift, FNV_START,
};
pub use corpus::{fuzz_corpus, fuzz_corpus_dir};
pub use role::{
    namespace, play_role, role, role_arg, role_arg_parsed, ChildCommand, CrossTest, ROLE_ENV,
    ROOT_ENV,
};
pub use root::TempRoot;
pub use supervisor::{ChildId, Supervisor};
pub use wait::{eventually, wait_until, within};
pub use watchdog::abort_after;
