//! [`WaitStrategy`] and [`wait_for`]: how a blocking call waits for its condition.
//!
//! * `BusyPoll` re-checks in a tight loop (lowest latency, burns a core);
//! * `Blocking` sleeps on the [`Notifier`] at once;
//! * `Adaptive` (the default) spins briefly, then sleeps. The machines culvert
//!   targets may have two cores: a waiter that spins long steals the core its peer
//!   needs, so the spin phase is short: 10 µs, or, for a thread whose waits that slept
//!   were regular and short (a peer answering after a fixed stretch of work, such as
//!   copying a large message), twice their typical length, up to 250 µs — so that
//!   waiter spins through the wait instead of paying a wake-up each time (measured:
//!   `culvert bench --case call_1MiB`, a 1 MiB call took 1.9–2.0× the shared-memory
//!   floor with the 10 µs spin, 1.0× with the learned one). It spins only while
//!   spinning pays: a thread whose last eight waits all ended in a sleep goes to sleep at
//!   once (and spins again on one wait in 16, at random, to notice when the
//!   peer turns fast again: a *probe*, as long as twice the thread's typical slept
//!   wait, so that it outlasts the peer's wake-up, and at most 100 µs). A probe is no
//!   longer than it needs to be because the CPU it holds may be the one its peer
//!   waits for: with probes of a fixed 100 µs, `culvert bench --load 2` showed a p99
//!   of 104 µs for `call_64B` and `pingpong_8B_block`; with learned ones 3–15 µs and
//!   0.5–3.3 µs, the p50 unchanged. Spinning that never succeeds is not only wasted: a
//!   waker that spins after its wake looks busy to the scheduler, which then wakes the
//!   sleeping peer on another, idle CPU (measured with `culvert bench`,
//!   `pingpong_8B_sleep`: 48 µs per round trip spinning every time, 16–25 µs with this
//!   rule; a bare futex hand-off took 8–16 µs). It never calls
//!   `sched_yield`: on a busy machine a yield hands the CPU to a CPU-bound process
//!   for a whole time slice, where a futex sleep is woken as soon as the peer
//!   notifies (`culvert bench --load 2`: a blocking 8-byte round trip took 1.2 ms at
//!   the median with eight yields before sleeping, 0.3 µs without).
//!
//! Whatever the strategy, the condition is polled again at least every
//! [`LIVENESS_RECHECK_INTERVAL`] with [`WaitContext::liveness_due`] set, so the caller
//! can check that the peer it waits for still lives; and a sleep never outlasts that
//! interval, which also bounds the cost of a hostile peer zeroing the waiter count.

use std::time::Instant;

use crate::atomic::spin_hint;
use crate::{Deadline, Notifier, Timeout, LIVENESS_RECHECK_INTERVAL};

/// How a blocking call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WaitStrategy {
    /// Spin on the condition; never sleep. For dedicated cores.
    BusyPoll,
    /// Sleep on the futex at once.
    Blocking,
    /// Spin briefly, then sleep on the futex.
    #[default]
    Adaptive,
}

/// How long `Adaptive` spins (re-checking, with a CPU pause each time) before it
/// sleeps. A time, not a count of polls: a poll's cost varies with the endpoint (from
/// a few nanoseconds to a pass over a wait set) and a pause's with the CPU, while what
/// the spin waits for — a peer answering on another core — takes a time. Counting 200
/// polls instead left the spin at about 2 µs once polls stopped reading the clock, and
/// a 64-byte port call (about 1 µs each way) then slept on both sides: 60 µs instead
/// of 0.9 µs per call (`culvert bench --quick --case call_64B`).
#[cfg(not(loom))]
pub(crate) const SPIN_BUDGET: std::time::Duration = std::time::Duration::from_micros(10);
/// Polls between two clock reads in the spin phase.
const SPIN_POLLS_PER_CLOCK_READ: u32 = 16;

/// After this many waits in a row whose spin phase found nothing, `Adaptive` sleeps
/// at once, spinning again only on one wait in [`SPIN_PROBE_EVERY`], at random.
#[cfg(not(loom))]
const SPIN_MISSES_TOLERATED: u32 = 8;
/// How often, on average, a thread that stopped spinning tries a spin phase again.
///
/// At random, not every Nth wait: two processes in ping-pong that both stopped
/// spinning (each sleeping, each waking the other late) get out of that state only by
/// spinning in the same round, and periodic probes of two threads whose counts are out
/// of step never meet. With `tokio` current_thread runtimes on both sides (whose wake
/// takes longer than the spin), periodic probes kept an async 8-byte round trip at
/// 65 µs for the whole run, where the spinning state takes 0.5 µs.
#[cfg(not(loom))]
const SPIN_PROBE_EVERY: u32 = 16;

#[cfg(not(loom))]
thread_local! {
    /// Consecutive `Adaptive` waits of this thread whose spin phase (or skipped spin
    /// phase) ended in a sleep.
    static SPIN_MISSES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// xorshift state for the probes; seeded per thread on first use.
    static PROBE_RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One draw of the thread's probe generator: true one time in [`SPIN_PROBE_EVERY`].
#[cfg(not(loom))]
fn probe_now() -> bool {
    PROBE_RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            // Seeded from where this thread's state lives and the pid: threads and
            // processes draw different sequences.
            x = (r as *const _ as u64) ^ (u64::from(std::process::id()) << 32) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x % u64::from(SPIN_PROBE_EVERY) == 0
    })
}

/// The longest probe: long enough to outlast a sleeping peer's wake-up (a futex
/// wake, or a runtime's unpark on top), so that the probe of one side catches the
/// answer of a peer that had to be woken, and the pair gets back to spinning.
#[cfg(not(loom))]
const PROBE_BUDGET: std::time::Duration = std::time::Duration::from_micros(100);

/// How long this thread's probe spins: twice the typical length of its waits that
/// slept (how long a woken peer takes to answer), at least [`SPIN_BUDGET`] and at
/// most [`PROBE_BUDGET`]; [`PROBE_BUDGET`] before any wait slept.
#[cfg(not(loom))]
fn probe_budget() -> std::time::Duration {
    let typical = SLEPT_WAIT_NS.with(std::cell::Cell::get);
    if typical == 0 {
        return PROBE_BUDGET;
    }
    (std::time::Duration::from_nanos(typical) * 2).clamp(SPIN_BUDGET, PROBE_BUDGET)
}

/// The longest spin phase a thread's history can earn (see [`learned_budget`]).
#[cfg(not(loom))]
const LEARNED_SPIN_MAX: std::time::Duration = std::time::Duration::from_micros(250);

#[cfg(not(loom))]
thread_local! {
    /// Moving average (weight 1/4) of how long this thread's `Adaptive` waits that
    /// slept took, in nanoseconds, from their start to the condition; 0 before any.
    static SLEPT_WAIT_NS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Records that an `Adaptive` wait which slept found its condition `waited` after it
/// began.
#[cfg(not(loom))]
pub(crate) fn record_slept_wait(waited: std::time::Duration) {
    let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
    SLEPT_WAIT_NS.with(|a| {
        let old = a.get();
        a.set(if old == 0 { ns } else { old - old / 4 + ns / 4 });
    });
}

/// The spin phase of a thread whose spins pay: [`SPIN_BUDGET`], or twice the typical
/// length of its waits that slept when that is longer and at most
/// [`LEARNED_SPIN_MAX`]. A peer that answers after a regular stretch of work (a large
/// copy, say) is then caught spinning, where the fixed budget slept through every wait
/// and paid a wake-up each time; waits longer than that, or irregular ones, keep the
/// short budget, and spins that miss stop spinning (see [`spin_budget`]).
#[cfg(not(loom))]
fn learned_budget() -> std::time::Duration {
    let typical = std::time::Duration::from_nanos(SLEPT_WAIT_NS.with(std::cell::Cell::get));
    if typical > LEARNED_SPIN_MAX / 2 {
        SPIN_BUDGET
    } else {
        SPIN_BUDGET.max(typical * 2)
    }
}

/// How long this `Adaptive` wait should spin first, by the thread's recent waits:
/// its [`learned_budget`] while spinning pays, [`PROBE_BUDGET`] on a probe, else `None`.
#[cfg(not(loom))]
pub(crate) fn spin_budget() -> Option<std::time::Duration> {
    let misses = SPIN_MISSES.with(std::cell::Cell::get);
    if misses < SPIN_MISSES_TOLERATED {
        Some(learned_budget())
    } else if probe_now() {
        Some(probe_budget())
    } else {
        None
    }
}

/// Records how an `Adaptive` wait ended: `hit` when the condition held before it
/// slept.
#[cfg(not(loom))]
pub(crate) fn record_spin(hit: bool) {
    SPIN_MISSES.with(|m| m.set(if hit { 0 } else { m.get().saturating_add(1) }));
}

#[cfg(loom)]
pub(crate) fn spin_budget() -> Option<std::time::Duration> {
    None
}

#[cfg(loom)]
pub(crate) fn record_spin(_hit: bool) {}

#[cfg(loom)]
pub(crate) fn record_slept_wait(_waited: std::time::Duration) {}

/// The spin phase of [`WaitStrategy::Adaptive`]: re-runs `poll` (with a CPU pause
/// before each) for the thread's spin budget (10 µs, more for a thread that learned
/// its waits are regular, up to 100 µs on a probe) while spinning pays for this thread
/// (see the module doc), and returns what it found, or `None`. Records the outcome for the
/// thread's next waits. For adapters that do their own sleeping (a wait set, an async
/// reactor) and want the same short spin first. Never spins under loom (every spin
/// would be a scheduling point of the model).
pub fn spin_phase<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    if let Some(budget) = spin_budget() {
        let start = Instant::now();
        let mut polls = 0u32;
        loop {
            spin_hint();
            if let Some(v) = poll() {
                record_spin(true);
                return Some(v);
            }
            polls = polls.wrapping_add(1);
            if polls % SPIN_POLLS_PER_CLOCK_READ == 0 && start.elapsed() >= budget {
                break;
            }
        }
    }
    record_spin(false);
    None
}

/// Polls of [`quick_spin`].
const QUICK_POLLS: u32 = 32;

/// Whether this thread's `Adaptive` waits spin now (its recent spins paid off).
#[cfg(not(loom))]
fn spinning_pays() -> bool {
    SPIN_MISSES.with(std::cell::Cell::get) < SPIN_MISSES_TOLERATED
}

#[cfg(loom)]
fn spinning_pays() -> bool {
    false
}

/// The first moments of a wait, before a blocking call sets one up (deadlines, clock
/// reads, liveness bookkeeping): `BusyPoll`, and `Adaptive` while spinning pays for
/// this thread, re-run `poll` up to 32 times with a CPU pause before each, reading no
/// clock. An answer that comes back within about a microsecond — a peer on another
/// core answering at once — is then taken without any of that setup on its path.
/// `Blocking` returns `None` at once.
#[inline]
pub fn quick_spin<T>(strategy: WaitStrategy, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let spin = match strategy {
        WaitStrategy::BusyPoll => true,
        WaitStrategy::Adaptive => spinning_pays(),
        WaitStrategy::Blocking => false,
    };
    if spin && !cfg!(loom) {
        for _ in 0..QUICK_POLLS {
            spin_hint();
            if let Some(v) = poll() {
                return Some(v);
            }
        }
    }
    None
}

/// Polls between two clock reads while busy-polling.
const POLLS_PER_CLOCK_READ: u32 = 64;

/// What [`wait_for`] tells the condition at each poll.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitContext {
    /// At least [`LIVENESS_RECHECK_INTERVAL`] passed since the last time this was set
    /// (or since the wait began): check that the peer still lives.
    pub liveness_due: bool,
}

/// Waits until `poll` returns `Ok(Some(value))` (→ `Ok(value)`), returns an error, or
/// `deadline` passes (→ `Err(Timeout.into())`, after one last poll).
///
/// Whoever makes the condition true must call [`Notifier::notify`] on `notifier`
/// afterwards. `poll` must be cheap and side-effect free when it returns `Ok(None)`.
// Under loom the adaptive spin count is 0, which clippy denies as an empty range.
#[cfg_attr(loom, allow(clippy::reversed_empty_ranges))]
///
/// # Errors
/// What `poll` returns, or `E::from(Timeout)` when the deadline passed first.
pub fn wait_for<T, E, F>(
    notifier: &Notifier,
    strategy: WaitStrategy,
    deadline: Deadline,
    mut poll: F,
) -> Result<T, E>
where
    E: From<Timeout>,
    F: FnMut(WaitContext) -> Result<Option<T>, E>,
{
    let quiet = WaitContext::default();
    if let Some(v) = poll(quiet)? {
        return Ok(v);
    }
    if deadline.has_passed() {
        // A deadline already passed (`Deadline::now()`) polls once: no spin, no sleep.
        return Err(Timeout.into());
    }
    let mut last_liveness = Instant::now();
    let began = last_liveness;
    let ctx = |last: &mut Instant| {
        let now = Instant::now();
        if now.duration_since(*last) >= LIVENESS_RECHECK_INTERVAL {
            *last = now;
            WaitContext { liveness_due: true }
        } else {
            quiet
        }
    };

    if strategy == WaitStrategy::BusyPoll {
        let mut polls = 0u32;
        loop {
            spin_hint();
            polls = polls.wrapping_add(1);
            if polls % POLLS_PER_CLOCK_READ == 0 {
                let c = ctx(&mut last_liveness);
                if let Some(v) = poll(c)? {
                    return Ok(v);
                }
                if deadline.has_passed() {
                    return Err(Timeout.into());
                }
            } else if let Some(v) = poll(quiet)? {
                return Ok(v);
            }
        }
    }

    if strategy == WaitStrategy::Adaptive {
        if let Some(v) = spin_phase(|| poll(quiet).transpose()).transpose()? {
            return Ok(v);
        }
    }

    loop {
        let key = notifier.prepare_wait();
        match poll(ctx(&mut last_liveness)) {
            Ok(Some(v)) => {
                notifier.cancel_wait(key);
                return Ok(v);
            }
            Err(e) => {
                notifier.cancel_wait(key);
                return Err(e);
            }
            Ok(None) => {}
        }
        if deadline.has_passed() {
            notifier.cancel_wait(key);
            return Err(Timeout.into());
        }
        let nap = deadline.min(Deadline::after(LIVENESS_RECHECK_INTERVAL));
        // A timeout here only ends this nap; the loop decides about the real deadline.
        let _ = notifier.wait(key, nap);
        // Most wake-ups mean the condition holds: look before announcing a waiter
        // again, which costs a read-modify-write on the notifier.
        if let Some(v) = poll(quiet)? {
            if strategy == WaitStrategy::Adaptive {
                record_slept_wait(began.elapsed());
            }
            return Ok(v);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn flag_wait(strategy: WaitStrategy) {
        let n = Arc::new(Notifier::new());
        let flag = Arc::new(AtomicU32::new(0));
        let (n2, f2) = (n.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f2.store(7, Ordering::Release);
            n2.notify();
        });
        let got: Result<u32, Timeout> = wait_for(
            &n,
            strategy,
            Deadline::after(Duration::from_secs(20)),
            |_| {
                Ok(match flag.load(Ordering::Acquire) {
                    0 => None,
                    v => Some(v),
                })
            },
        );
        assert_eq!(got, Ok(7));
        t.join().unwrap();
    }

    #[test]
    fn the_spin_phase_learns_the_length_of_regular_waits() {
        // Each test runs on its own thread: no wait recorded yet.
        assert_eq!(spin_budget(), Some(SPIN_BUDGET));
        // Waits shorter than the fixed budget leave it as it is.
        record_slept_wait(Duration::from_micros(3));
        assert_eq!(spin_budget(), Some(SPIN_BUDGET));
        // Regular 40 µs waits (a peer copying a large message between answers) earn a
        // spin phase of twice that, the moving average converging on them.
        for _ in 0..64 {
            record_slept_wait(Duration::from_micros(40));
        }
        let learned = spin_budget().unwrap();
        assert!(
            (Duration::from_micros(78)..=Duration::from_micros(80)).contains(&learned),
            "{learned:?}"
        );
        // Waits longer than half the cap (a peer that sleeps between messages) fall
        // back to the fixed budget rather than spinning most of the way.
        for _ in 0..64 {
            record_slept_wait(Duration::from_millis(1));
        }
        assert_eq!(spin_budget(), Some(SPIN_BUDGET));
        assert!(LEARNED_SPIN_MAX / 2 < Duration::from_millis(1));
        // Spins that miss still stop spinning, whatever the budget.
        for _ in 0..64 {
            record_slept_wait(Duration::from_micros(40));
        }
        for _ in 0..SPIN_MISSES_TOLERATED {
            record_spin(false);
        }
        let probe = probe_budget();
        assert!(
            probe.abs_diff(Duration::from_micros(80)) < Duration::from_micros(1),
            "a probe lasts twice the typical slept wait: {probe:?}"
        );
        assert!(spin_budget().is_none_or(|b| b == probe));
    }

    #[test]
    fn a_probe_lasts_twice_the_typical_slept_wait_within_bounds() {
        assert_eq!(probe_budget(), PROBE_BUDGET, "no wait slept yet");
        for (slept, probe) in [
            (Duration::from_micros(20), Duration::from_micros(40)),
            (Duration::from_micros(1), SPIN_BUDGET),
            (Duration::from_millis(1), PROBE_BUDGET),
        ] {
            for _ in 0..64 {
                record_slept_wait(slept);
            }
            assert!(
                probe_budget().abs_diff(probe) < Duration::from_micros(1),
                "slept {slept:?}: probe {:?}, want {probe:?}",
                probe_budget()
            );
        }
    }

    #[test]
    fn adaptive_stops_spinning_after_misses_and_probes_again() {
        // Each test runs on its own thread: the record starts empty.
        for _ in 0..SPIN_MISSES_TOLERATED {
            assert_eq!(
                spin_budget(),
                Some(SPIN_BUDGET),
                "a few misses are tolerated"
            );
            record_spin(false);
        }
        // From here on a spin phase runs on one wait in SPIN_PROBE_EVERY, at random:
        // 100 of 1,600 on average (the bounds are 5 standard deviations out).
        let mut spun = 0;
        for _ in 0..SPIN_PROBE_EVERY * 100 {
            if let Some(b) = spin_budget() {
                assert_eq!(b, PROBE_BUDGET);
                spun += 1;
            }
            record_spin(false);
        }
        assert!((50..=150).contains(&spun), "{spun} probes in 1,600 waits");
        record_spin(true);
        assert_eq!(
            spin_budget(),
            Some(SPIN_BUDGET),
            "a hit brings the spin phase back"
        );
    }

    #[test]
    fn every_strategy_sees_the_flag() {
        flag_wait(WaitStrategy::BusyPoll);
        flag_wait(WaitStrategy::Blocking);
        flag_wait(WaitStrategy::Adaptive);
    }

    #[test]
    fn a_passed_deadline_polls_once_whatever_the_strategy() {
        for s in [
            WaitStrategy::BusyPoll,
            WaitStrategy::Blocking,
            WaitStrategy::Adaptive,
        ] {
            let n = Notifier::new();
            let mut polls = 0;
            let r: Result<(), Timeout> = wait_for(&n, s, Deadline::now(), |_| {
                polls += 1;
                Ok(None)
            });
            assert_eq!(r, Err(Timeout), "{s:?}");
            assert_eq!(polls, 1, "{s:?}");
            assert_eq!(n.waiter_count(), 0, "{s:?}");
        }
    }

    #[test]
    fn every_strategy_times_out() {
        for s in [
            WaitStrategy::BusyPoll,
            WaitStrategy::Blocking,
            WaitStrategy::Adaptive,
        ] {
            let n = Notifier::new();
            let start = Instant::now();
            let r: Result<(), Timeout> =
                wait_for(&n, s, Deadline::after(Duration::from_millis(30)), |_| {
                    Ok(None)
                });
            assert_eq!(r, Err(Timeout), "{s:?}");
            assert!(start.elapsed() >= Duration::from_millis(30), "{s:?}");
            assert_eq!(n.waiter_count(), 0, "{s:?}");
        }
    }

    #[test]
    fn liveness_checks_come_while_sleeping() {
        let n = Notifier::new();
        let mut checks = 0;
        let r: Result<(), &'static str> = wait_for(
            &n,
            WaitStrategy::Blocking,
            Deadline::after(Duration::from_secs(10)),
            |c| {
                if c.liveness_due {
                    checks += 1;
                    if checks == 3 {
                        return Err("peer died");
                    }
                }
                Ok(None)
            },
        );
        assert_eq!(r, Err("peer died"));
        assert_eq!(n.waiter_count(), 0);
    }

    impl From<Timeout> for &'static str {
        fn from(_: Timeout) -> Self {
            "timeout"
        }
    }
}
