//! [`WaitSet`]: one thread waits on many endpoints, of any kind, with one deadline.
//!
//! An endpoint takes part by implementing [`Waitable`]: a check that never waits
//! ([`Waitable::poll_ready`]) and the [`Notifier`]s whose notify can make that check
//! true. [`WaitSet::wait`] is level-triggered, like `poll(2)`: it returns the indices
//! of every endpoint whose check is true, and the caller then runs the endpoints'
//! `try_*` calls until they report `WouldBlock`. (While it spins, a pass that finds an
//! endpoint ready returns it at once, without checking the rest — those are checked
//! first by the next pass, and the next call reports any still ready — so a spinning
//! set notices a message in about half a pass.) A ready report may be spurious (the
//! data was taken by another holder), never missing: the check runs again after the
//! waiter announced itself on every notifier, so a notify between the check and the
//! sleep ends the sleep (the [`Notifier`] protocol, for many notifiers at once).
//!
//! ## How it sleeps
//! * Up to [`WAIT_ANY_MAX`] distinct notifiers: one `futex_waitv` on all their epoch
//!   words (Linux ≥ 5.16).
//! * More: one helper thread per further [`WAIT_ANY_MAX`]` - 1` words, each in its own
//!   `futex_waitv` with a process-local interrupt word; the first to wake interrupts
//!   the others. Threads are spawned per sleep, so waits over more than
//!   [`WAIT_ANY_MAX`] notifiers cost tens of microseconds more.
//! * Where the kernel refuses `futex_waitv` (`ENOSYS` before 5.16, `EPERM` under some
//!   seccomp profiles), or with [`Backend::Polling`]: a futex wait on the first
//!   notifier, in naps of at most [`POLLING_NAP`], re-checking every endpoint after each
//!   nap. Latency for the other endpoints is then up to one nap.
//!
//! Whatever the backend, no sleep lasts longer than [`LIVENESS_RECHECK_INTERVAL`]:
//! endpoints re-check their peers' liveness inside `poll_ready` (rate-limited), so a
//! peer that died — which notifies nobody — is reported within about one interval. A
//! peer that closed, a dead peer and a poisoned endpoint all count as ready: the next
//! `try_*` call reports them.
//!
//! With [`WaitStrategy::Adaptive`] (the default) the set first re-checks its endpoints
//! for up to 10 µs before sleeping, while spinning pays (the rule of
//! [`wait_for`](crate::wait_for)); `Blocking` sleeps at once and `BusyPoll` never
//! sleeps.

use crate::atomic::{spin_hint, AtomicU32, Ordering};
use crate::futex::{self, WaitAnyError, WordAddr, WAIT_ANY_MAX};
use crate::strategy::spin_phase;
use crate::{
    Deadline, Notifier, RecheckClock, Timeout, WaitContext, WaitKey, WaitStrategy,
    LIVENESS_RECHECK_INTERVAL,
};

/// Longest sleep of the polling fallback before every endpoint is checked again.
pub const POLLING_NAP: std::time::Duration = std::time::Duration::from_millis(1);

/// Something a [`WaitSet`] can wait on.
///
/// # Safety
/// Every notifier [`notifiers`](Self::notifiers) passes to its callback must stay valid,
/// at the same address, for as long as the implementing value is borrowed — it must
/// live outside the value itself (in a mapped section, or on the heap behind a pointer
/// the value owns) — because the set keeps the notifiers' addresses while it calls
/// [`poll_ready`](Self::poll_ready) (which takes `&mut self`) and while it sleeps.
pub unsafe trait Waitable {
    /// Never waits. True when a `try_*` call of the endpoint would not report
    /// `WouldBlock`: something to read or accept, end of stream, a peer gone, or an
    /// error. May be spuriously true; must not be false while such a call would
    /// succeed, once the notifiers' waiters were announced.
    ///
    /// Whether the peer's process still runs (a `/proc` read) is checked only when
    /// `ctx.liveness_due`: the set says so at least once per
    /// [`LIVENESS_RECHECK_INTERVAL`], so the polls in between (a spin phase over many
    /// endpoints) read shared memory only.
    fn poll_ready(&mut self, ctx: WaitContext) -> bool;

    /// Calls `f` with each notifier that is notified when `poll_ready` may turn true.
    fn notifiers(&self, f: &mut dyn FnMut(&Notifier));
}

// SAFETY: forwards to `T`, whose notifiers outlive the borrow of `T` this reference
// is, so they outlive any borrow of the reference too.
unsafe impl<T: Waitable + ?Sized> Waitable for &mut T {
    #[inline]
    fn poll_ready(&mut self, ctx: WaitContext) -> bool {
        (**self).poll_ready(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        (**self).notifiers(f);
    }
}

/// How a [`WaitSet`] sleeps; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// `futex_waitv`, falling back to [`Backend::Polling`] where the kernel refuses it.
    #[default]
    Auto,
    /// A futex wait on one notifier in naps of at most [`POLLING_NAP`].
    Polling,
}

/// Whether the kernel refused `futex_waitv` once: then every set polls (checked once
/// per process).
#[cfg(not(loom))]
#[allow(clippy::disallowed_types)]
static WAITV_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(not(loom))]
#[allow(clippy::disallowed_types)]
fn waitv_refused() -> bool {
    WAITV_REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(loom))]
#[allow(clippy::disallowed_types)]
fn note_waitv_refused() {
    WAITV_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(loom)]
fn waitv_refused() -> bool {
    false
}

#[cfg(loom)]
fn note_waitv_refused() {}

/// Waits on many [`Waitable`]s at once. Reusable: keep one per serving thread.
///
/// ```
/// use std::time::Duration;
/// use culvert_sync::{Event, WaitSet, Waitable};
///
/// let mut stop = Event::new();
/// let mut work = Event::new();
/// let mut set = WaitSet::new();
/// work.clone().set();
/// let ready = set.wait(&mut [&mut stop as &mut dyn Waitable, &mut work], Duration::from_secs(1))?;
/// assert_eq!(ready, &[1]);
/// # Ok::<(), culvert_sync::Timeout>(())
/// ```
///
/// Endpoints of one type can be passed as they are, with no slice of references to
/// build per wait and no dynamic dispatch per poll:
///
/// ```
/// use std::time::Duration;
/// use culvert_sync::{Event, WaitSet};
///
/// let mut events = vec![Event::new(), Event::new(), Event::new()];
/// events[2].clone().set();
/// let ready = WaitSet::new().wait(&mut events, Duration::from_secs(1))?.to_vec();
/// assert_eq!(ready, [2]);
/// # Ok::<(), culvert_sync::Timeout>(())
/// ```
#[derive(Debug, Default)]
pub struct WaitSet {
    strategy: WaitStrategy,
    backend: Backend,
    /// Indices ready at the last wait (what `wait` returns).
    ready: Vec<usize>,
    /// Distinct notifier addresses of the current wait. Valid only during `wait`
    /// (the [`Waitable`] contract).
    notifiers: Vec<*const Notifier>,
    /// When the endpoints' peers were last checked: a pass is told `liveness_due` at
    /// most once per interval. Used through `&mut self` only.
    recheck: RecheckClock,
    /// Where the next spin pass begins: just after the endpoint the last one found.
    /// Any value (one past the end begins at 0).
    pass_start: usize,
}

// SAFETY: the raw pointers are scratch space, valid and used only inside one `wait`
// call, which borrows the endpoints they came from.
unsafe impl Send for WaitSet {}
// SAFETY: `&WaitSet` exposes only the strategy, the backend and the ready indices
// (the clock's cells are used through `&mut self` only).
unsafe impl Sync for WaitSet {}

impl WaitSet {
    /// A set with the default strategy ([`WaitStrategy::Adaptive`]) and backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how the set waits (spin first, sleep at once, or never sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Sets how the set sleeps ([`Backend::Polling`] to avoid `futex_waitv`).
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// Waits until at least one endpoint is ready, or `deadline` passes, and returns the
    /// indices (into `endpoints`, ascending) of the ready ones: every endpoint ready
    /// when the call began, or, once it had to spin or sleep, those its last pass
    /// found (a spin pass stops at the first; see the module doc). With no endpoints
    /// it waits for the deadline. `endpoints` may hold one type of endpoint, or
    /// `&mut dyn Waitable` references to mix kinds.
    ///
    /// # Errors
    /// `Timeout` when the deadline passed with nothing ready (checked one last time).
    pub fn wait<W: Waitable>(
        &mut self,
        endpoints: &mut [W],
        deadline: impl Into<Deadline>,
    ) -> Result<&[usize], Timeout> {
        let deadline = deadline.into();
        if self.collect_ready(endpoints, self.recheck.due()) {
            return Ok(&self.ready);
        }
        match self.strategy {
            WaitStrategy::BusyPoll => return self.busy_poll(endpoints, deadline),
            WaitStrategy::Adaptive => {
                if spin_phase(|| self.find_ready(endpoints).then_some(())).is_some() {
                    return Ok(&self.ready);
                }
            }
            WaitStrategy::Blocking => {}
        }
        self.gather_notifiers(endpoints);
        loop {
            let keys = self.prepare();
            let ready = self.collect_ready(endpoints, self.recheck.due());
            if ready || deadline.has_passed() {
                self.finish(keys);
                return if ready { Ok(&self.ready) } else { Err(Timeout) };
            }
            let nap = deadline.min(Deadline::after(LIVENESS_RECHECK_INTERVAL));
            self.sleep(&keys, nap);
            self.finish(keys);
            if self.collect_ready(endpoints, self.recheck.due()) {
                return Ok(&self.ready);
            }
        }
    }

    /// Checks every endpoint (their peers' liveness too when `liveness_due`); true when
    /// at least one is ready (then `ready` lists them).
    fn collect_ready<W: Waitable>(&mut self, endpoints: &mut [W], liveness_due: bool) -> bool {
        self.ready.clear();
        let ctx = WaitContext { liveness_due };
        for (i, e) in endpoints.iter_mut().enumerate() {
            if e.poll_ready(ctx) {
                self.ready.push(i);
            }
        }
        !self.ready.is_empty()
    }

    /// One pass of the spin phase: checks the endpoints in turn, beginning after the
    /// one the last pass found, and stops at the first ready one (then `ready` holds
    /// it). Beginning after it keeps an endpoint that is always ready from hiding the
    /// others.
    fn find_ready<W: Waitable>(&mut self, endpoints: &mut [W]) -> bool {
        self.ready.clear();
        let n = endpoints.len();
        let start = if self.pass_start < n {
            self.pass_start
        } else {
            0
        };
        let ctx = WaitContext::default();
        for i in (start..n).chain(0..start) {
            if endpoints[i].poll_ready(ctx) {
                self.ready.push(i);
                self.pass_start = i + 1;
                return true;
            }
        }
        false
    }

    fn busy_poll<W: Waitable>(
        &mut self,
        endpoints: &mut [W],
        deadline: Deadline,
    ) -> Result<&[usize], Timeout> {
        loop {
            spin_hint();
            if self.collect_ready(endpoints, self.recheck.tick()) {
                return Ok(&self.ready);
            }
            if deadline.has_passed() {
                return Err(Timeout);
            }
        }
    }

    /// Records the distinct notifiers of `endpoints`.
    fn gather_notifiers<W: Waitable>(&mut self, endpoints: &mut [W]) {
        self.notifiers.clear();
        for e in endpoints.iter() {
            e.notifiers(&mut |n| {
                let p: *const Notifier = n;
                if !self.notifiers.contains(&p) {
                    self.notifiers.push(p);
                }
            });
        }
    }

    fn notifier(&self, i: usize) -> &Notifier {
        // SAFETY: gathered in this `wait` call from endpoints it still borrows; the
        // `Waitable` contract keeps each notifier valid at its address meanwhile.
        unsafe { &*self.notifiers[i] }
    }

    /// Announces a waiter on every notifier.
    fn prepare(&self) -> Vec<WaitKey> {
        (0..self.notifiers.len())
            .map(|i| self.notifier(i).prepare_wait())
            .collect()
    }

    /// Withdraws the waiters announced by `prepare`.
    fn finish(&self, keys: Vec<WaitKey>) {
        for (i, key) in keys.into_iter().enumerate() {
            self.notifier(i).cancel_wait(key);
        }
    }

    /// Sleeps until a notify on any notifier after `prepare`, or until `nap`.
    fn sleep(&self, keys: &[WaitKey], nap: Deadline) {
        if keys.is_empty() {
            // Nothing to wake us: wait out the nap.
            if let Some(left) = nap.remaining() {
                std::thread::sleep(left);
            }
            return;
        }
        let words: Vec<(WordAddr, u32)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (WordAddr::of(self.notifier(i).futex_word()), k.epoch()))
            .collect();
        let fallback = (self.notifier(0).futex_word(), keys[0].epoch());
        sleep_on_words(&words, fallback, nap, self.backend);
    }
}

/// Sleeps while every word holds its expected value, until one is woken or `nap`
/// passes: `futex_waitv` (with helper threads past [`WAIT_ANY_MAX`] words), or, where
/// the kernel refuses it or `backend` says so, a futex wait on `fallback` (one of the
/// words, alive for the call) in naps of at most [`POLLING_NAP`]. Returns early and spuriously at times; callers re-check.
pub(crate) fn sleep_on_words(
    words: &[(WordAddr, u32)],
    fallback: (&AtomicU32, u32),
    nap: Deadline,
    backend: Backend,
) {
    if backend == Backend::Auto && !waitv_refused() {
        let slept = if words.len() <= WAIT_ANY_MAX {
            futex::wait_any(words, nap)
        } else {
            wait_any_chunked(words, nap)
        };
        match slept {
            Ok(()) | Err(WaitAnyError::Timeout) => return,
            Err(WaitAnyError::Unsupported) => note_waitv_refused(),
        }
    }
    let (word, expected) = fallback;
    let _ = futex::wait(word, expected, nap.min(Deadline::after(POLLING_NAP)));
}

/// `futex_waitv` over more words than one call takes: this thread and one helper per
/// further chunk each wait on their chunk plus a process-local interrupt word; whoever
/// returns first bumps and wakes the interrupt, so all return.
fn wait_any_chunked(words: &[(WordAddr, u32)], nap: Deadline) -> Result<(), WaitAnyError> {
    let interrupt = AtomicU32::new(0);
    let per = WAIT_ANY_MAX - 1;
    let wait_chunk = |chunk: &[(WordAddr, u32)]| {
        let mut mine: Vec<(WordAddr, u32)> = Vec::with_capacity(chunk.len() + 1);
        mine.push((WordAddr::of(&interrupt), 0));
        mine.extend_from_slice(chunk);
        let r = futex::wait_any(&mine, nap);
        interrupt.store(1, Ordering::Release);
        futex::wake_all(&interrupt);
        r
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = words[per..]
            .chunks(per)
            .map(|chunk| s.spawn(move || wait_chunk(chunk)))
            .collect();
        let mut result = wait_chunk(&words[..per]);
        for h in helpers {
            // A helper cannot panic (futex calls only); treat a panic as a wake-up.
            let r = h.join().unwrap_or(Ok(()));
            if r == Err(WaitAnyError::Unsupported) {
                result = r;
            }
        }
        result
    })
}

/// A process-local flag a [`WaitSet`] can wait on: set from any thread (a signal
/// handler excepted), ready until [`take`](Self::take)n. Clones share the flag.
///
/// Use it to wake a serving thread for work that does not come through a culvert
/// endpoint (a stop request, input from another thread).
#[derive(Debug, Clone, Default)]
pub struct Event {
    inner: std::sync::Arc<EventInner>,
}

#[derive(Debug, Default)]
struct EventInner {
    notifier: Notifier,
    /// 1 while set.
    set: AtomicU32,
}

impl Event {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes a set waiting on it.
    pub fn set(&self) {
        self.inner.set.store(1, Ordering::Release);
        self.inner.notifier.notify();
    }

    /// Whether the flag is set (leaves it set).
    pub fn is_set(&self) -> bool {
        self.inner.set.load(Ordering::Acquire) != 0
    }

    /// Clears the flag; returns whether it was set.
    pub fn take(&self) -> bool {
        self.inner.set.swap(0, Ordering::AcqRel) != 0
    }
}

// SAFETY: the notifier lives in the shared heap allocation the Event's Arc owns, not in
// the Event value, so it stays at its address while any clone lives.
unsafe impl Waitable for Event {
    fn poll_ready(&mut self, _ctx: WaitContext) -> bool {
        self.is_set()
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        f(&self.inner.notifier);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn events(n: usize) -> Vec<Event> {
        (0..n).map(|_| Event::new()).collect()
    }

    fn wait_on(
        set: &mut WaitSet,
        evs: &mut [Event],
        deadline: Deadline,
    ) -> Result<Vec<usize>, Timeout> {
        let mut refs: Vec<&mut dyn Waitable> =
            evs.iter_mut().map(|e| e as &mut dyn Waitable).collect();
        set.wait(&mut refs, deadline).map(<[usize]>::to_vec)
    }

    /// Every backend and strategy: a set from another thread is seen, and only the
    /// set ones are reported.
    fn wakes_for(backend: Backend, strategy: WaitStrategy, n: usize) {
        let mut evs = events(n);
        let (a, b) = (evs[n / 3].clone(), evs[n - 1].clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            a.set();
            b.set();
        });
        let mut set = WaitSet::new();
        set.set_backend(backend);
        set.set_wait_strategy(strategy);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let r = wait_on(&mut set, &mut evs, Deadline::after(Duration::from_secs(20)))
                .expect("both events are set well before the deadline");
            for i in r {
                assert!(i == n / 3 || i == n - 1, "{i} was never set");
                assert!(evs[i].take());
                seen.push(i);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![n / 3, n - 1]);
        t.join().unwrap();
        for e in &evs {
            assert_eq!(
                e.inner.notifier.waiter_count(),
                0,
                "a waiter was left announced"
            );
        }
    }

    #[test]
    fn waitv_sees_a_set_from_another_thread() {
        wakes_for(Backend::Auto, WaitStrategy::Blocking, 8);
        wakes_for(Backend::Auto, WaitStrategy::Adaptive, 100);
    }

    #[test]
    fn more_notifiers_than_one_waitv_call_takes() {
        wakes_for(Backend::Auto, WaitStrategy::Blocking, 3 * WAIT_ANY_MAX + 5);
    }

    #[test]
    fn polling_backend_and_busy_poll_see_a_set() {
        wakes_for(Backend::Polling, WaitStrategy::Blocking, 16);
        wakes_for(Backend::Auto, WaitStrategy::BusyPoll, 16);
    }

    #[test]
    fn deadline_is_honoured_with_nothing_ready() {
        for backend in [Backend::Auto, Backend::Polling] {
            for n in [0, 3, WAIT_ANY_MAX + 1] {
                let mut evs = events(n);
                let mut set = WaitSet::new();
                set.set_backend(backend);
                let start = Instant::now();
                let r = wait_on(
                    &mut set,
                    &mut evs,
                    Deadline::after(Duration::from_millis(30)),
                );
                assert_eq!(r, Err(Timeout), "{backend:?} {n}");
                let took = start.elapsed();
                assert!(
                    took >= Duration::from_millis(30),
                    "{backend:?} {n}: {took:?}"
                );
                assert!(took < Duration::from_secs(5), "{backend:?} {n}: {took:?}");
            }
        }
    }

    #[test]
    fn ready_endpoints_return_without_sleeping_and_stay_ready_until_taken() {
        let mut evs = events(4);
        evs[2].set();
        let mut set = WaitSet::new();
        assert_eq!(wait_on(&mut set, &mut evs, Deadline::now()), Ok(vec![2]));
        assert_eq!(wait_on(&mut set, &mut evs, Deadline::now()), Ok(vec![2]));
        assert!(evs[2].take());
        assert_eq!(wait_on(&mut set, &mut evs, Deadline::now()), Err(Timeout));
    }

    /// An endpoint whose check turns true without any notify (like a peer that died)
    /// is still seen: no sleep outlasts the liveness interval.
    #[test]
    fn a_silent_change_is_seen_within_the_liveness_interval() {
        struct Silent {
            notifier: Box<Notifier>,
            at: Instant,
        }
        // SAFETY: the notifier is boxed: it does not move with the value.
        unsafe impl Waitable for Silent {
            fn poll_ready(&mut self, _ctx: WaitContext) -> bool {
                Instant::now() >= self.at
            }
            fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
                f(&self.notifier);
            }
        }
        let mut s = Silent {
            notifier: Box::default(),
            at: Instant::now() + Duration::from_millis(10),
        };
        let mut set = WaitSet::new();
        set.set_wait_strategy(WaitStrategy::Blocking);
        let start = Instant::now();
        let r = set
            .wait(&mut [&mut s], Deadline::after(Duration::from_secs(10)))
            .map(<[usize]>::to_vec);
        assert_eq!(r, Ok(vec![0]));
        assert!(start.elapsed() < LIVENESS_RECHECK_INTERVAL * 20);
    }

    /// An endpoint that is not ready at its first poll after `arm` and ready at every
    /// later one (without any notify, as a peer's write seen while spinning).
    struct Delayed {
        notifier: Box<Notifier>,
        polls: u32,
    }

    impl Delayed {
        fn arm(&mut self) {
            self.polls = 0;
        }
    }

    // SAFETY: the notifier is boxed: it does not move with the value.
    unsafe impl Waitable for Delayed {
        fn poll_ready(&mut self, _ctx: WaitContext) -> bool {
            self.polls += 1;
            self.polls > 1
        }
        fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
            f(&self.notifier);
        }
    }

    /// The first check of a wait reports every ready endpoint; a spin pass returns the
    /// first one it finds, and the next spin pass begins after it, so an endpoint that
    /// keeps turning ready does not hide the others.
    #[test]
    fn spin_passes_stop_at_the_first_ready_endpoint_and_take_turns() {
        let mut ends: Vec<Delayed> = (0..3)
            .map(|_| Delayed {
                notifier: Box::default(),
                polls: 0,
            })
            .collect();
        let mut set = WaitSet::new();
        set.set_wait_strategy(WaitStrategy::Adaptive);
        let long = || Deadline::after(Duration::from_secs(10));
        let mut found = Vec::new();
        for _ in 0..4 {
            ends.iter_mut().for_each(Delayed::arm);
            found.push(set.wait(&mut ends, long()).map(<[usize]>::to_vec));
        }
        assert_eq!(found, [Ok(vec![0]), Ok(vec![1]), Ok(vec![2]), Ok(vec![0])]);
        // Not re-armed: all three are ready at the first check, which reports them all.
        assert_eq!(set.wait(&mut ends, long()), Ok(&[0, 1, 2][..]));
    }
}
