//! [`RecheckClock`]: the one rate limit on liveness checks.
//!
//! Asking the kernel whether a peer still lives costs a `/proc` read (microseconds), so
//! an endpoint does it at most once per [`LIVENESS_RECHECK_INTERVAL`]. The clock belongs
//! to the endpoint, not to a call: a caller that polls a non-blocking operation, or
//! calls a blocking one with short timeouts in a loop, still gets a check every
//! interval, so a dead peer is reported within it by every operation.
//!
//! The clock is read only by callers that have nothing better to do (an operation that
//! would block) or every [`RecheckClock::OPS_PER_CLOCK_READ`] calls of
//! [`RecheckClock::tick`] on a path that makes progress, so the hot path pays a counter
//! increment, not a clock read. The clock is the kernel's coarse monotonic clock
//! (`CLOCK_MONOTONIC_COARSE`, a few milliseconds of resolution, read from the vDSO
//! without touching the hardware): a readiness check over many endpoints reads it once
//! per endpoint, and the interval it measures is tens of milliseconds.

use std::cell::Cell;

use crate::LIVENESS_RECHECK_INTERVAL;

/// Rate limit for liveness checks of one endpoint. Not `Sync`: one per endpoint.
#[derive(Debug, Clone)]
pub struct RecheckClock {
    /// When the last check was granted (coarse monotonic nanoseconds); `None` before
    /// the first one (granted at once).
    last: Cell<Option<u64>>,
    /// `tick` calls since the clock was last read.
    ticks: Cell<u32>,
}

impl Default for RecheckClock {
    fn default() -> Self {
        Self::new()
    }
}

impl RecheckClock {
    /// `tick` calls between two clock reads on a path that makes progress.
    pub const OPS_PER_CLOCK_READ: u32 = 64;

    /// A clock whose first [`due`](Self::due) is true.
    pub const fn new() -> Self {
        Self {
            last: Cell::new(None),
            ticks: Cell::new(0),
        }
    }

    /// Whether a liveness check is due now: true at most once per
    /// [`LIVENESS_RECHECK_INTERVAL`] (and at the first call). Reads the clock.
    pub fn due(&self) -> bool {
        let now = coarse_now_ns();
        match self.last.get() {
            Some(t) if now.saturating_sub(t) < LIVENESS_RECHECK_INTERVAL.as_nanos() as u64 => false,
            _ => {
                self.last.set(Some(now));
                self.ticks.set(0);
                true
            }
        }
    }

    /// For a path that made progress: reads the clock only every
    /// [`OPS_PER_CLOCK_READ`](Self::OPS_PER_CLOCK_READ) calls, then as [`due`](Self::due).
    #[inline]
    pub fn tick(&self) -> bool {
        let t = self.ticks.get() + 1;
        if t < Self::OPS_PER_CLOCK_READ {
            self.ticks.set(t);
            return false;
        }
        self.ticks.set(0);
        self.due()
    }

    /// Records a liveness check made on another schedule (a blocking wait's own
    /// cadence): the next [`due`](Self::due) is a full interval away. Reads the clock.
    pub fn checked(&self) {
        self.last.set(Some(coarse_now_ns()));
        self.ticks.set(0);
    }

    /// Makes the next [`due`](Self::due) true (e.g. after the peer changed).
    pub fn reset(&self) {
        self.last.set(None);
    }
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds.
/// [`RecheckClock`] for state shared between threads (a server whose threads all
/// receive): the first caller to find the interval passed claims the check, the others
/// are told it is not due.
#[derive(Debug, Default)]
pub struct SharedRecheckClock {
    /// When the last check was granted (coarse monotonic nanoseconds); 0 before the
    /// first one (granted at once).
    last: crate::atomic::AtomicU64,
}

impl SharedRecheckClock {
    /// A clock whose first [`claim`](Self::claim) is granted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a check is due; if so, this caller (and no other thread) makes it.
    pub fn claim(&self) -> bool {
        use crate::atomic::Ordering::Relaxed;
        let now = coarse_now_ns().max(1);
        let last = self.last.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < LIVENESS_RECHECK_INTERVAL.as_nanos() as u64 {
            return false;
        }
        self.last
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    }

    /// Makes the next [`claim`](Self::claim) due at once.
    pub fn reset(&self) {
        self.last.store(0, crate::atomic::Ordering::Relaxed);
    }
}

fn coarse_now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_call_is_due_then_rate_limited() {
        let c = RecheckClock::new();
        assert!(c.due());
        assert!(!c.due());
        // One interval and one tick of the coarse clock (at most 10 ms).
        std::thread::sleep(LIVENESS_RECHECK_INTERVAL + std::time::Duration::from_millis(10));
        assert!(c.due());
        assert!(!c.due());
        c.reset();
        assert!(c.due());
    }

    #[test]
    fn a_shared_clock_grants_each_due_check_to_one_caller() {
        let c = SharedRecheckClock::new();
        assert!(c.claim());
        assert!(!c.claim());
        std::thread::sleep(LIVENESS_RECHECK_INTERVAL + std::time::Duration::from_millis(10));
        let granted = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| c.claim())).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&g| g)
                .count()
        });
        assert_eq!(granted, 1);
        c.reset();
        assert!(c.claim());
    }

    #[test]
    fn tick_reads_the_clock_only_every_n_calls() {
        let c = RecheckClock::new();
        // The first clock read happens on the Nth tick, and is due (first check).
        for _ in 1..RecheckClock::OPS_PER_CLOCK_READ {
            assert!(!c.tick());
        }
        assert!(c.tick());
        for _ in 0..10 * RecheckClock::OPS_PER_CLOCK_READ {
            assert!(!c.tick());
        }
    }
}
