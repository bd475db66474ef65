//! Asymmetric fences across processes, an opt-in that lets
//! [`Notifier::notify`](crate::Notifier::notify) — called after every ring commit and
//! release — run without a locked instruction.
//!
//! **The default is symmetric**: notify takes a locked read-modify-write and waiters
//! pay nothing extra. Asymmetric fences are used only when `CULVERT_ASYMMETRIC_FENCES`
//! is set (in every process sharing the channels). The choice was measured with
//! `culvert bench` on a 2-CPU VM:
//! - Quiet machine: no throughput difference above the run-to-run noise in the stream
//!   cases (`stream_64B_msgs` 8.9–12.9 M msg/s asymmetric and 7.9–8.9 M symmetric,
//!   with the floor itself at 26–41 M).
//! - One CPU busy with other work: every sleep paid 15–30 µs in
//!   `membarrier(GLOBAL_EXPEDITED)`. `pingpong_8B_block` p50 was 37 µs asymmetric
//!   and 7.5 µs symmetric, against 6–7 µs for an OS pipe.
//!
//! The eventcount needs a store→load fence on both sides (publish, then look for
//! sleepers; announce a sleeper, then re-check). The notify side runs per message, the
//! wait side only before sleeping, so the cost is moved to the waiter: the notifier
//! uses a compiler fence only (the *light* side), and the waiter, before it re-checks,
//! calls `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (the *heavy* side), which makes
//! every CPU running a thread of a registered process execute a full memory barrier.
//! Then either the notifier's waiter-count load comes after that barrier and sees the
//! announced waiter, or its earlier store was made visible by the barrier before the
//! waiter's re-check (the asymmetric Dekker argument; see the membarrier(2) man page).
//!
//! A process must be registered (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`) before it
//! relies on the light side. Registration happens on first use, and the call that
//! registers still takes the symmetric (locked read-modify-write) path, so no light
//! fence ever runs unregistered. Unless `CULVERT_ASYMMETRIC_FENCES` is set, or where
//! the kernel lacks the command or seccomp refuses it, every notify takes the
//! symmetric path. (A symmetric waiter whose peer uses the light side can lose a
//! wake-up; the loss is bounded by the nap of `wait_for`, `LIVENESS_RECHECK_INTERVAL`.)
//!
//! Under loom everything is symmetric: the models check the read-modify-write protocol.

#[cfg(not(loom))]
mod imp {
    use crate::atomic::{AtomicU32, Ordering};
    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};

    const UNKNOWN: u32 = 0;
    const ASYMMETRIC: u32 = 1;
    const SYMMETRIC: u32 = 2;

    /// This process's fencing mode, decided once.
    static MODE: AtomicU32 = AtomicU32::new(UNKNOWN);

    /// Whether the light side may be used. The first call registers the process and
    /// returns `false` (that call takes the symmetric path).
    #[inline]
    pub(crate) fn light_side_ready() -> bool {
        match MODE.load(Ordering::Relaxed) {
            ASYMMETRIC => true,
            SYMMETRIC => false,
            _ => {
                decide();
                false
            }
        }
    }

    /// Whether waiters must issue the heavy side (decides the mode if needed).
    #[inline]
    pub(crate) fn heavy_side_needed() -> bool {
        match MODE.load(Ordering::Relaxed) {
            ASYMMETRIC => true,
            SYMMETRIC => false,
            _ => decide(),
        }
    }

    #[cold]
    fn decide() -> bool {
        let wanted = std::env::var_os("CULVERT_ASYMMETRIC_FENCES").is_some();
        let ok = wanted
            && membarrier_query().contains_command(MembarrierCommand::GlobalExpedited)
            && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok();
        MODE.store(if ok { ASYMMETRIC } else { SYMMETRIC }, Ordering::Relaxed);
        ok
    }

    /// The heavy side: a full barrier on every CPU running a registered process.
    pub(crate) fn heavy() {
        // It cannot fail once the query said the command exists; if it ever does, the
        // loss is bounded by the waiter's nap (see the module doc).
        let _ = membarrier(MembarrierCommand::GlobalExpedited);
    }

    /// Whether this process uses asymmetric fences (diagnostics, tests).
    pub fn is_asymmetric() -> bool {
        heavy_side_needed()
    }
}

#[cfg(loom)]
mod imp {
    #[inline]
    pub(crate) fn light_side_ready() -> bool {
        false
    }
    #[inline]
    pub(crate) fn heavy_side_needed() -> bool {
        false
    }
    pub(crate) fn heavy() {}
    /// Whether this process uses asymmetric fences: never under loom.
    pub fn is_asymmetric() -> bool {
        false
    }
}

pub use imp::is_asymmetric;
pub(crate) use imp::{heavy, heavy_side_needed, light_side_ready};
