//! # culvert-sync — waiting and waking across processes
//!
//! The lowest layer of culvert. It owns:
//!
//! * [`atomic`] — the one place atomics come from (std normally, loom under
//!   `--cfg loom`), plus an `UnsafeCell` shim for slot data;
//! * [`futex`] — plain `FUTEX_WAIT`/`FUTEX_WAKE` **without** `FUTEX_PRIVATE_FLAG`, so a
//!   wake crosses into every process that maps the word (the reason `atomic-wait`,
//!   which sets the private flag, is not used);
//! * [`Deadline`] — an optional point in time every blocking call takes;
//! * [`Notifier`] — an eventcount that lives in shared memory; notifying with no sleeper
//!   makes no system call;
//! * [`WaitStrategy`] and [`wait_for`] — busy-poll, block, or the default adaptive
//!   spin → futex;
//! * [`ProcessIdentity`] — a process identity (pid + start time) not fooled by PID reuse,
//!   and [`LIVENESS_RECHECK_INTERVAL`], the bound on how long a sleeper goes without
//!   checking that the peer it waits for still lives, and [`RecheckClock`], the
//!   per-endpoint rate limit every operation uses to honour that bound;
//! * [`owner`] — owner words and tables ([`OwnerWord`], [`OwnerTable`]): claim from
//!   free or dead, release, scan, reclaim; the one reading of "is this holder alive"
//!   ([`holder_of`]) every layer uses;
//! * [`WaitSet`] — one thread waits on many [`Waitable`] endpoints with one deadline
//!   (`futex_waitv`, with a fallback), and [`Event`], a process-local flag it can wait
//!   on too;
//! * [`reactor`] — one thread per process that sleeps on the notifiers of pending
//!   asynchronous operations and wakes their tasks ([`AsyncWait`]); it needs only
//!   `std::task::Waker`, no runtime.
//!
//! This crate must never know about sections, rings or any layer above; it never
//! allocates shared memory and never trusts a value read from it (a hostile epoch or
//! waiter count can cost a spurious wake-up or a system call, never correctness).

#![cfg_attr(not(loom), warn(missing_docs))]

pub mod atomic;
mod deadline;
mod error;
pub mod fence;
pub mod futex;
mod liveness;
mod notifier;
pub mod owner;
pub mod reactor;
mod recheck;
mod strategy;
mod waitset;

pub use deadline::Deadline;
pub use error::{Error, Timeout};
pub use liveness::{Liveness, ProcessIdentity, LIVENESS_RECHECK_INTERVAL};
pub use notifier::{Notifier, WaitKey, QUIET_NOTIFIES};
pub use owner::{holder_of, Holder, OwnerTable, OwnerWord};
pub use reactor::AsyncWait;
pub use recheck::{RecheckClock, SharedRecheckClock};
pub use strategy::{quick_spin, spin_phase, wait_for, WaitContext, WaitStrategy};
pub use waitset::{Backend, Event, WaitSet, Waitable, POLLING_NAP};
