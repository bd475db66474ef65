//! [`Notifier`]: an eventcount that lives in shared memory.
//!
//! A waiter announces itself, re-checks its condition, then sleeps on the epoch word;
//! a notifier publishes its change, then looks at the waiter count and, only if someone
//! may be asleep, bumps the epoch and issues a futex wake. With no sleeper the notify
//! path makes no system call.
//!
//! ## Why no wake-up is lost
//! Waiter: `waiters.fetch_add(1, AcqRel)` → read `epoch` → check condition → sleep while
//! `epoch == key`. Notifier: publish condition (Release) → `waiters.fetch_or(0, AcqRel)` →
//! if non-zero: `epoch += 1`, wake. The two read-modify-writes on `waiters` are ordered:
//! if the notifier's comes second it sees the waiter and bumps the epoch (the waiter's
//! futex wait then returns at once or is woken); if it comes first, the waiter's RMW
//! reads from it, so the published condition happens-before the waiter's re-check.
//! Plain acquire/release RMWs (not SeqCst fences) keep this exact under loom, whose
//! model treats SeqCst as AcqRel. The loom model `notifier` in `loom-tests` checks it.
//!
//! ## Light notifies while nobody sleeps
//! The notifier's read-modify-write is a locked instruction per message. Outside loom a
//! notifier starts *light*: notify reads the waiter word with a plain load behind a
//! compiler fence (the light side of an asymmetric fence, see [`fence`](crate::fence)).
//! A waiter that finds the word without the `SETTLED` flag in its `fetch_add` *settles*
//! the notifier before it re-checks:
//! 1. it sets `SHARED`: every notify that reads it from then on takes the
//!    read-modify-write above;
//! 2. it issues the heavy side (`membarrier`), which covers its own wait against any
//!    notify that read the word before step 1;
//! 3. it sets `SETTLED`: later waiters, which find it in their `fetch_add`, know every
//!    notify that could miss them takes the read-modify-write, and skip step 2.
//!
//! A thread whose last [`QUIET_NOTIFIES`] settled notifies in a row (on any notifier)
//! all found no waiter makes the notifier it notifies light again: a compare-exchange
//! clears both flags, and only while the count is zero. A settling waiter is counted
//! from before step 1 to the end of its wait, so no settle overlaps that reset; a waiter
//! that comes after it settles again. So a ring whose peer polls, spins or sleeps only
//! now and then keeps light notifies, and one whose peer sleeps often stays settled:
//! its heavy fences come at most once per `QUIET_NOTIFIES` notifies.
//!
//! A process that cannot issue the heavy side (no `membarrier`, or
//! `CULVERT_SYMMETRIC_FENCES` set) pauses for `SETTLE_TIME` in step 2 instead — a
//! notify that raced step 1 had its publish in a store buffer, which drains in far less
//! than that (a context switch or a VM exit drains it too) — and also sets `STICKY`,
//! which keeps the notifier settled for good.
//!
//! ## Hostile peers
//! Both words may be scribbled on by another process. A wrong `epoch` costs a spurious
//! wake-up, a wrong `waiters` (flags included) an extra system call or, at worst, a
//! missed wake-up that [`wait_for`](crate::wait_for) bounds: no sleep lasts longer than
//! [`LIVENESS_RECHECK_INTERVAL`](crate::LIVENESS_RECHECK_INTERVAL).

use std::sync::atomic::compiler_fence;
use std::time::Duration;

use crate::atomic::{AtomicU32, Ordering};
use crate::{fence, futex, Deadline, Timeout};

/// The announced waiters, in the low bits of `Notifier::waiters`.
const COUNT: u32 = (1 << 29) - 1;
/// Flag in `Notifier::waiters`: a waiter without the heavy fence side settled the
/// notifier; it never turns light again.
const STICKY: u32 = 1 << 29;
/// Flag in `Notifier::waiters`: a waiter has announced itself; notifies that read the
/// flag take the read-modify-write.
const SHARED: u32 = 1 << 30;
/// Flag in `Notifier::waiters`: every notify that could miss a waiter reads `SHARED`.
const SETTLED: u32 = 1 << 31;

/// How long the first waiter on a notifier pauses, once, when its process cannot issue
/// the heavy fence side (see the module doc).
const SETTLE_TIME: Duration = Duration::from_micros(100);

/// A thread makes a settled notifier light again after this many of its settled
/// notifies in a row found no waiter (see the module doc).
pub const QUIET_NOTIFIES: u32 = 1024;

/// An eventcount: wake sleepers in any process when a condition they wait on changes.
///
/// `#[repr(C)]`, 8 bytes, all-zero is a valid initial state (a fresh section needs no
/// initialisation for it).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Notifier {
    /// Futex word. Incremented (wrapping) by each notify that finds a possible sleeper.
    /// Invariant: none — every value is valid; only changes matter.
    epoch: AtomicU32,
    /// Low 29 bits (`COUNT`): number of threads between [`Notifier::prepare_wait`] and
    /// the end of their wait. Top bits: the flags `STICKY`, `SHARED` and `SETTLED`;
    /// `SHARED` and `SETTLED` are cleared only together and only while the count is
    /// zero, `STICKY` never (see the module doc).
    /// Invariant (honest peers): the count equals the number of live announced waiters;
    /// a dead or hostile peer can leave it too high (costs a syscall) or too low
    /// (bounded sleep).
    waiters: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Notifier>() == 8);

/// Proof that a waiter announced itself; consumed by [`Notifier::wait`] or
/// [`Notifier::cancel_wait`].
#[derive(Debug)]
#[must_use = "a prepared wait must be finished with wait() or cancel_wait()"]
pub struct WaitKey {
    epoch: u32,
}

impl WaitKey {
    /// The epoch seen when the waiter announced itself: the value to sleep on.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }
}

impl Notifier {
    /// A notifier with no waiters.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            epoch: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// A notifier with no waiters.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            epoch: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Announces a waiter. The caller must re-check its condition *after* this call and
    /// then either [`wait`](Self::wait) or [`cancel_wait`](Self::cancel_wait).
    #[inline]
    pub fn prepare_wait(&self) -> WaitKey {
        let before = self.waiters.fetch_add(1, Ordering::AcqRel);
        // Under loom every notify takes the read-modify-write: nothing to switch.
        if before & SETTLED == 0 && !cfg!(loom) {
            self.settle();
        }
        WaitKey {
            epoch: self.epoch.load(Ordering::Acquire),
        }
    }

    /// Switches notifies to the read-modify-write (steps 1–3 of the module doc).
    #[cold]
    fn settle(&self) {
        self.waiters.fetch_or(SHARED, Ordering::AcqRel);
        // Pairs with the light side in `notify` (see the `fence` module).
        if !fence::heavy() {
            std::thread::sleep(SETTLE_TIME);
            self.waiters.fetch_or(STICKY, Ordering::AcqRel);
        }
        self.waiters.fetch_or(SETTLED, Ordering::AcqRel);
    }

    /// Withdraws an announced waiter whose condition turned out to hold.
    #[inline]
    pub fn cancel_wait(&self, key: WaitKey) {
        let _ = key;
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sleeps until a notify after [`prepare_wait`](Self::prepare_wait), a spurious
    /// wake-up, or `deadline`. The caller re-checks its condition afterwards.
    ///
    /// # Errors
    /// `Timeout` when the deadline passed.
    pub fn wait(&self, key: WaitKey, deadline: Deadline) -> Result<(), Timeout> {
        let result = futex::wait(&self.epoch, key.epoch, deadline);
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// Wakes every sleeper, after the caller published the change they wait for (with
    /// Release ordering or stronger). No system call when nobody waits.
    #[inline]
    pub fn notify(&self) {
        let waiters = if fence::light_side_ready() {
            // The light side of an asymmetric fence: a waiter that finds no `SETTLED`
            // issues the heavy side before re-checking (see the module doc).
            compiler_fence(Ordering::SeqCst);
            match self.waiters.load(Ordering::Relaxed) {
                light if light & (SHARED | SETTLED) == 0 => light,
                _ => self.notify_settled(),
            }
        } else {
            self.waiters.fetch_or(0, Ordering::AcqRel)
        };
        if waiters & COUNT != 0 {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            futex::wake_all(&self.epoch);
        }
    }

    /// The read-modify-write of a settled notifier, by a process that can take the
    /// light side; makes the notifier light again after a streak of notifies that found
    /// no waiter (see the module doc). Returns the waiter word to act on.
    #[inline]
    fn notify_settled(&self) -> u32 {
        let seen = self.waiters.fetch_or(0, Ordering::AcqRel);
        if quiet_streak(seen & COUNT == 0) && seen & STICKY == 0 {
            self.relight(seen)
        } else {
            seen
        }
    }

    /// Clears `SHARED` and `SETTLED` if the count is still zero; a few tries, as a
    /// concurrent waiter or notify may change the word. Returns the last word seen.
    #[cold]
    fn relight(&self, mut seen: u32) -> u32 {
        for _ in 0..4 {
            if seen & (COUNT | STICKY) != 0 {
                break;
            }
            let light = seen & !(SHARED | SETTLED);
            match self
                .waiters
                .compare_exchange(seen, light, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        seen
    }

    /// The futex word sleepers wait on (for waits on many notifiers at once).
    pub(crate) fn futex_word(&self) -> &AtomicU32 {
        &self.epoch
    }

    /// The number of announced waiters (diagnostics only; may be stale or hostile).
    pub fn waiter_count(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed) & COUNT
    }

    /// Whether notifies take the light side, i.e. no waiter settled the notifier since
    /// it was made or last turned light (diagnostics, tests; may be stale or hostile).
    pub fn is_light(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) & (SHARED | SETTLED) == 0
    }

    /// The current epoch (diagnostics only).
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }
}

/// Counts this thread's settled notifies in a row that found no waiter (`quiet`);
/// returns `true`, restarting the count, on the [`QUIET_NOTIFIES`]th.
#[inline]
fn quiet_streak(quiet: bool) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STREAK: Cell<u32> = const { Cell::new(0) };
    }
    STREAK.with(|streak| {
        let n = if quiet { streak.get() + 1 } else { 0 };
        let done = n >= QUIET_NOTIFIES;
        streak.set(if done { 0 } else { n });
        done
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn cancel_and_wait_restore_the_waiter_count() {
        let n = Notifier::new();
        let k = n.prepare_wait();
        assert_eq!(n.waiter_count(), 1);
        n.cancel_wait(k);
        assert_eq!(n.waiter_count(), 0);
        let k = n.prepare_wait();
        assert_eq!(
            n.wait(k, Deadline::after(Duration::from_millis(5))),
            Err(Timeout)
        );
        assert_eq!(n.waiter_count(), 0);
    }

    #[test]
    fn notify_without_waiters_leaves_the_epoch_alone() {
        let n = Notifier::new();
        n.notify();
        assert_eq!(n.epoch(), 0);
        let k = n.prepare_wait();
        n.notify();
        assert_eq!(n.epoch(), 1);
        // The epoch moved after prepare_wait, so wait returns at once.
        assert_eq!(n.wait(k, Deadline::never()), Ok(()));
    }

    #[test]
    fn notifies_stay_light_until_a_waiter_announces_itself() {
        let n = Notifier::new();
        for _ in 0..3 {
            n.notify();
        }
        assert!(n.is_light());
        assert_eq!((n.epoch(), n.waiter_count()), (0, 0));
        let k = n.prepare_wait();
        assert!(!n.is_light(), "the first waiter switches the notifier");
        assert_eq!(n.waiter_count(), 1, "the flags are not counted as waiters");
        n.cancel_wait(k);
        assert_eq!(n.waiter_count(), 0);
        assert!(
            !n.is_light(),
            "one notify finding nobody does not switch back"
        );
        n.notify();
        assert_eq!(n.epoch(), 0, "no waiter, no wake-up");
        let k = n.prepare_wait();
        n.notify();
        assert_eq!(n.epoch(), 1);
        assert_eq!(n.wait(k, Deadline::never()), Ok(()));
        assert_eq!(n.waiter_count(), 0);
    }

    #[test]
    fn a_quiet_streak_makes_a_settled_notifier_light_again() {
        if !fence::is_asymmetric() {
            eprintln!("no membarrier here: notifies are symmetric, nothing turns light");
            return;
        }
        let n = Notifier::new();
        let k = n.prepare_wait();
        // With a waiter announced the notifier stays settled, whatever the streak.
        for _ in 0..3 * QUIET_NOTIFIES {
            n.notify();
        }
        assert!(!n.is_light());
        assert_eq!(
            n.epoch(),
            3 * QUIET_NOTIFIES,
            "every notify found the waiter"
        );
        n.cancel_wait(k);
        for _ in 0..QUIET_NOTIFIES - 1 {
            n.notify();
        }
        assert!(
            !n.is_light(),
            "switched back before the streak was complete"
        );
        n.notify();
        assert!(n.is_light(), "a whole streak of quiet notifies");
        // A waiter settles it again, and is woken.
        let k = n.prepare_wait();
        assert!(!n.is_light());
        n.notify();
        assert_eq!(n.wait(k, Deadline::never()), Ok(()));
        assert_eq!(n.waiter_count(), 0);
    }

    #[test]
    fn threads_exchange_many_notifications() {
        let n = Arc::new(Notifier::new());
        let value = Arc::new(AtomicU64::new(0));
        let (n2, v2) = (n.clone(), value.clone());
        const ROUNDS: u64 = 20_000;
        let consumer = std::thread::spawn(move || {
            for want in 1..=ROUNDS {
                loop {
                    if v2.load(Ordering::Acquire) >= want {
                        break;
                    }
                    let key = n2.prepare_wait();
                    if v2.load(Ordering::Acquire) >= want {
                        n2.cancel_wait(key);
                        break;
                    }
                    let _ = n2.wait(key, Deadline::after(Duration::from_secs(30)));
                }
            }
        });
        for i in 1..=ROUNDS {
            value.store(i, Ordering::Release);
            n.notify();
        }
        consumer.join().unwrap();
    }
}
