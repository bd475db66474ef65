//! The two sides of an asymmetric fence across processes: what lets
//! [`Notifier::notify`](crate::Notifier::notify) — called after every ring commit and
//! release — run without a locked instruction while nobody sleeps.
//!
//! The eventcount needs a store→load fence on both sides (publish, then look for
//! sleepers; announce a sleeper, then re-check). A symmetric fence (a locked
//! read-modify-write) costs the notifier, on every message, a wait for its publish to
//! leave the store buffer — when the peer keeps reading that line, a cross-CPU round trip.
//! The asymmetric form moves the cost to the waiter: the notifier uses a compiler fence
//! only (the *light* side), and the waiter, before it re-checks, calls
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (the *heavy* side), which makes every CPU
//! running a thread of a registered process execute a full memory barrier. Then either
//! the notifier's waiter-count load comes after that barrier and sees the announced
//! waiter, or its earlier store was made visible by the barrier before the waiter's
//! re-check (the asymmetric Dekker argument; see the membarrier(2) man page).
//!
//! The heavy side is slow (2 µs on an idle machine, 15–30 µs with a busy CPU), so paying
//! it before every sleep loses to a plain futex. The [`Notifier`](crate::Notifier)
//! therefore uses it only to switch: a sleeper switches a light notifier to the
//! symmetric form with one heavy fence, and a notifier whose notifies keep finding
//! nobody asleep turns light again (see the notifier's module doc). A ring whose
//! consumer spins, polls or seldom sleeps keeps light notifies.
//!
//! This module holds the process-wide facts:
//! - `light_side_ready`: this process may take the light side. It must be registered
//!   (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`) first; the first call registers and
//!   returns `false`, so no light fence ever runs unregistered.
//! - `heavy`: issue the heavy side, if this process can.
//!
//! Setting `CULVERT_SYMMETRIC_FENCES` in a process makes it use no membarrier at all, as
//! where the kernel lacks the command or seccomp refuses it: its notifies always take the
//! symmetric form, and its waiters switch a notifier by a bounded first sleep instead of
//! a heavy fence. Processes with and without it share channels safely.
//!
//! Under loom everything is symmetric: the models check the read-modify-write protocol.

#[cfg(not(loom))]
mod imp {
    use crate::atomic::{AtomicU32, Ordering};
    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};

    const UNKNOWN: u32 = 0;
    /// Registered: light notifies and heavy fences both available.
    const BOTH: u32 = 1;
    /// The heavy side can be issued, but this process is not registered.
    const HEAVY_ONLY: u32 = 2;
    /// No membarrier in this process.
    const NONE: u32 = 3;

    /// This process's membarrier capability, decided once.
    static MODE: AtomicU32 = AtomicU32::new(UNKNOWN);

    #[inline]
    fn mode() -> u32 {
        match MODE.load(Ordering::Relaxed) {
            UNKNOWN => decide(),
            known => known,
        }
    }

    /// Whether notifies of this process may take the light side. The call that
    /// registers the process returns `false` (that notify takes the symmetric form).
    #[inline]
    pub(crate) fn light_side_ready() -> bool {
        match MODE.load(Ordering::Relaxed) {
            BOTH => true,
            UNKNOWN => {
                decide();
                false
            }
            _ => false,
        }
    }

    #[cold]
    fn decide() -> u32 {
        let mode = if std::env::var_os("CULVERT_SYMMETRIC_FENCES").is_some()
            || !membarrier_query().contains_command(MembarrierCommand::GlobalExpedited)
        {
            NONE
        } else if membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok() {
            BOTH
        } else {
            HEAVY_ONLY
        };
        MODE.store(mode, Ordering::Relaxed);
        mode
    }

    /// The heavy side: a full barrier on every CPU running a registered process.
    /// Returns `false`, doing nothing, where this process cannot issue it.
    pub(crate) fn heavy() -> bool {
        mode() != NONE && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
    }

    /// Whether this process's notifies take the light side (diagnostics, tests).
    pub fn is_asymmetric() -> bool {
        mode() == BOTH
    }
}

#[cfg(loom)]
mod imp {
    #[inline]
    pub(crate) fn light_side_ready() -> bool {
        false
    }
    pub(crate) fn heavy() -> bool {
        false
    }
    /// Whether this process's notifies take the light side: never under loom.
    pub fn is_asymmetric() -> bool {
        false
    }
}

pub use imp::is_asymmetric;
pub(crate) use imp::{heavy, light_side_ready};
