//! The atomics shim: every atomic in culvert comes from here.
//!
//! Under `--cfg loom` the types are loom's, so the models in `loom-tests` explore every
//! interleaving of the real ring and notifier code. Normally they are `std`'s.
//! Shared structs built from these types must keep their layout asserts under
//! `cfg(not(loom))`: loom's atomics are larger than std's.
//!
//! [`UnsafeCell`] follows loom's API (`with`, `with_mut`) in both builds, so slot data
//! accesses are checked by loom too.

#![allow(clippy::disallowed_types)]

// Type aliases, not a `pub use`: clippy's `disallowed-types` matches a path by what it
// resolves to, and a re-export resolves to the banned `std` type itself, so every user
// of the shim was flagged. A path through an alias resolves to the alias.
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, Ordering};

/// `std::sync::atomic::AtomicBool` (loom's under `--cfg loom`).
#[cfg(not(loom))]
pub type AtomicBool = std::sync::atomic::AtomicBool;
/// `std::sync::atomic::AtomicU32` (loom's under `--cfg loom`).
#[cfg(not(loom))]
pub type AtomicU32 = std::sync::atomic::AtomicU32;
/// `std::sync::atomic::AtomicU64` (loom's under `--cfg loom`).
#[cfg(not(loom))]
pub type AtomicU64 = std::sync::atomic::AtomicU64;
/// `std::sync::atomic::AtomicUsize` (loom's under `--cfg loom`).
#[cfg(not(loom))]
pub type AtomicUsize = std::sync::atomic::AtomicUsize;

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure API, so code compiles under both.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Gives `f` a shared raw pointer to the value.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives `f` a mutable raw pointer to the value.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A hint inside a spin loop: a CPU pause normally, a loom yield under loom (so the
/// model checker schedules the peer instead of spinning for ever).
#[inline(always)]
pub fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives the CPU away: `sched_yield` normally, a loom yield under loom.
#[inline]
pub fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A process-wide counter that can live in a `static` (loom's atomics cannot): always
/// `std`'s atomic, for process-local values no model needs to explore (nonces).
#[derive(Debug, Default)]
pub struct StaticCounter(std::sync::atomic::AtomicU64);

impl StaticCounter {
    /// A counter at 0.
    pub const fn new() -> Self {
        Self(std::sync::atomic::AtomicU64::new(0))
    }

    /// The next value: 0, 1, 2, … (each returned once per process).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
