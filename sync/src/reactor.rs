//! The async reactor: one thread per process that sleeps on the notifiers of every
//! pending asynchronous operation and wakes their tasks' [`Waker`]s. It needs no
//! runtime: any executor's wakers work.
//!
//! An operation that would block arms an [`AsyncWait`] with the notifiers whose
//! notify can let it go on, then re-checks its condition once and returns
//! `Poll::Pending` if it still does not hold. Arming announces a waiter on each notifier
//! (the [`Notifier`] protocol), so a notify that comes after the arm bumps the epoch
//! word the reactor sleeps on: no wake-up is lost between the re-check and the sleep.
//! An armed wait fires once — the reactor withdraws its waiter announcements and wakes
//! the task — when one of its epochs moved, or when [`LIVENESS_RECHECK_INTERVAL`]
//! passed (so the task re-checks its peer's liveness, which nobody notifies). A fired
//! or dropped `AsyncWait` is disarmed; the task arms again on its next `Pending`.
//!
//! The reactor sleeps in `futex_waitv` on every armed word, the words of waits that
//! just fired (so that arming again on an unchanged word needs no interrupt), and a
//! process-local interrupt word, bumped when a wait is armed on a word the reactor does
//! not sleep on yet. It uses the same sleep as [`WaitSet`](crate::WaitSet), with its
//! fallbacks.
//!
//! ## Soundness
//! The armed notifiers are raw addresses into mappings that the endpoint keeps alive.
//! An [`AsyncWait`] is disarmed — under the reactor's lock, which the reactor holds
//! whenever it touches an armed notifier — before the endpoint it belongs to can be
//! dropped (it lives in the future that borrows the endpoint, and disarms on drop), so
//! the reactor never touches a notifier after its mapping is gone. The kernel may still
//! be sleeping on such a word for a moment; that is harmless (an unmapped futex word
//! only ends the sleep with an error or a timeout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::futex::{self, WordAddr};
use crate::waitset::sleep_on_words;
use crate::{Backend, Deadline, Notifier, WaitKey, LIVENESS_RECHECK_INTERVAL};

/// An armed notifier: its address, its futex word's address, the key from its
/// `prepare_wait`.
type ArmedWord = (usize, WordAddr, WaitKey);

/// Emptied word lists kept for reuse, at most this many (see `State::spare`).
const SPARE_LISTS: usize = 64;

/// One armed wait: the notifiers with the epochs seen at arming, and the task.
struct Armed {
    words: Vec<ArmedWord>,
    waker: Waker,
    /// When it was armed: it fires at the latest one liveness interval later.
    at: Instant,
}

/// The reactor's bookkeeping, under one lock.
#[derive(Default)]
struct State {
    /// Armed waits by id. Whoever touches an armed notifier holds the lock.
    armed: HashMap<u64, Armed>,
    /// The words (and the values) the reactor sleeps on now, or is about to: a wait
    /// armed on exactly these needs no interrupt.
    watching: Vec<(WordAddr, u32)>,
    /// Words of waits that fired, with their value then, watched through the next
    /// sleep only: a task that arms again on an unchanged word (the usual case between
    /// two messages) finds it watched already and needs no interrupt. A stale value
    /// costs one spurious wake-up; the word is not watched again after it.
    lingering: Vec<(WordAddr, u32)>,
    /// Emptied word lists of fired waits (at most [`SPARE_LISTS`]): an arming takes
    /// one, so that arming allocates nothing once warm.
    spare: Vec<Vec<ArmedWord>>,
}

/// What the reactor thread and the arming tasks share.
struct Shared {
    state: Mutex<State>,
    /// Bumped (and woken) when the armed set changes, so the reactor re-reads it.
    interrupt: AtomicU32,
    /// Next id.
    next: AtomicU64,
}

// SAFETY: the notifier addresses are only dereferenced under `state`'s lock while the
// owning `AsyncWait` is armed, which keeps the mapping alive (module doc); `WaitKey`
// and `Waker` are plain values.
unsafe impl Send for Shared {}
// SAFETY: as above; all access goes through the mutex or atomics.
unsafe impl Sync for Shared {}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn reactor() -> &'static Arc<Shared> {
    static REACTOR: OnceLock<Arc<Shared>> = OnceLock::new();
    REACTOR.get_or_init(|| {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            interrupt: AtomicU32::new(0),
            next: AtomicU64::new(1),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("culvert-reactor".into())
            .spawn(move || run(&s))
            .expect("spawning the culvert reactor thread");
        shared
    })
}

/// Number of waits armed now, in this process (diagnostics and tests).
pub fn armed_count() -> usize {
    reactor().lock().armed.len()
}

/// The reactor thread: sleep on every armed (and lingering) word, fire what moved,
/// repeat.
fn run(shared: &Shared) {
    let mut words: Vec<(WordAddr, u32)> = Vec::new();
    let mut wake = Vec::new();
    loop {
        let interrupt = shared.interrupt.load(Ordering::Acquire);
        words.clear();
        words.push((WordAddr::of(&shared.interrupt), interrupt));
        {
            let mut st = shared.lock();
            let State {
                armed,
                watching,
                lingering,
                ..
            } = &mut *st;
            for a in armed.values() {
                words.extend(a.words.iter().map(|(_, word, key)| (*word, key.epoch())));
            }
            words.append(lingering);
            // One value per word (any of them: a stale one only ends the sleep early).
            words[1..].sort_unstable_by_key(|w| w.0);
            words.dedup_by_key(|w| w.0);
            watching.clone_from(&words);
        }
        let nap = Deadline::after(LIVENESS_RECHECK_INTERVAL);
        // Addresses only: a wait disarmed since (its mapping perhaps gone) makes the
        // kernel end the sleep at worst; nothing here touches the memory.
        sleep_on_words(&words, (&shared.interrupt, interrupt), nap, Backend::Auto);
        fire(shared, &mut wake);
    }
}

/// Fires every armed wait whose epoch moved, or that was armed a liveness interval
/// ago (each fires within about two intervals even when nothing notifies it). `wake`
/// is scratch space, left empty.
fn fire(shared: &Shared, wake: &mut Vec<Waker>) {
    let now = Instant::now();
    {
        let mut st = shared.lock();
        let State {
            armed,
            lingering,
            spare,
            ..
        } = &mut *st;
        armed.retain(|_, a| {
            // SAFETY: armed, under the lock: the mapping is alive (module doc).
            let value = |addr: usize| unsafe {
                (*(addr as *const Notifier))
                    .futex_word()
                    .load(Ordering::Acquire)
            };
            let moved = a
                .words
                .iter()
                .any(|(addr, _, key)| value(*addr) != key.epoch());
            if !moved && now.duration_since(a.at) < LIVENESS_RECHECK_INTERVAL {
                return true;
            }
            for (addr, word, key) in a.words.drain(..) {
                lingering.push((word, value(addr)));
                // SAFETY: as above.
                unsafe { (*(addr as *const Notifier)).cancel_wait(key) };
            }
            if spare.len() < SPARE_LISTS {
                spare.push(std::mem::take(&mut a.words));
            }
            wake.push(a.waker.clone());
            false
        });
    }
    for w in wake.drain(..) {
        w.wake();
    }
}

/// Bumps the interrupt word so the reactor re-reads the armed set.
fn interrupt(shared: &Shared) {
    shared.interrupt.fetch_add(1, Ordering::AcqRel);
    futex::wake_all(&shared.interrupt);
}

/// The arming of one pending asynchronous operation; see the module doc. Keep it in the
/// future (or endpoint) whose operation it serves: dropping it disarms.
#[derive(Debug, Default)]
pub struct AsyncWait {
    /// The armed wait's id, while armed.
    id: Option<u64>,
    /// An empty word list for the next arming (from this wait's last disarm, or the
    /// reactor's spare lists); no capacity if none was at hand.
    spare: Vec<ArmedWord>,
}

impl AsyncWait {
    /// Not armed.
    pub const fn new() -> Self {
        Self {
            id: None,
            spare: Vec::new(),
        }
    }

    /// Arms (re-arming if armed) on the notifiers `notifiers` passes to its callback,
    /// to wake `waker`. The caller then re-checks its condition once: if it holds,
    /// [`disarm`](Self::disarm) and go on; otherwise return `Poll::Pending`.
    ///
    /// # Safety
    /// Every notifier passed must stay valid at its address until this `AsyncWait` is
    /// disarmed or dropped (it lives in a mapping or allocation that outlives it).
    pub unsafe fn arm(&mut self, notifiers: impl FnOnce(&mut dyn FnMut(&Notifier)), waker: &Waker) {
        self.disarm();
        let mut words = std::mem::take(&mut self.spare);
        if words.capacity() == 0 {
            // Our list left with a fired wait: take it (or another) from the spares.
            words = reactor().lock().spare.pop().unwrap_or_default();
        }
        notifiers(&mut |n: &Notifier| {
            let addr = n as *const Notifier as usize;
            if !words.iter().any(|(a, _, _)| *a == addr) {
                words.push((addr, WordAddr::of(n.futex_word()), n.prepare_wait()));
            }
        });
        let shared = reactor();
        let id = shared.next.fetch_add(1, Ordering::Relaxed);
        let watched = {
            let mut st = shared.lock();
            // Already asleep on every word at the value we saw: a notify after our
            // announcement moves it and wakes the reactor, no interrupt needed.
            let watched = words.iter().all(|(_, word, key)| {
                st.watching
                    .iter()
                    .any(|(w, v)| w == word && *v == key.epoch())
            });
            st.armed.insert(
                id,
                Armed {
                    words,
                    waker: waker.clone(),
                    at: Instant::now(),
                },
            );
            if self.spare.capacity() == 0 {
                if let Some(list) = st.spare.pop() {
                    self.spare = list;
                }
            }
            watched
        };
        self.id = Some(id);
        if !watched {
            interrupt(shared);
        }
    }

    /// Withdraws an armed wait that has not fired (no effect otherwise). After it
    /// returns the reactor no longer touches the notifiers.
    pub fn disarm(&mut self) {
        let Some(id) = self.id.take() else { return };
        let mut st = reactor().lock();
        if let Some(mut a) = st.armed.remove(&id) {
            for (addr, _, key) in a.words.drain(..) {
                // SAFETY: the caller's `arm` contract keeps the notifier alive until
                // this disarm returns.
                unsafe { (*(addr as *const Notifier)).cancel_wait(key) };
            }
            if self.spare.capacity() == 0 {
                self.spare = a.words;
            } else if st.spare.len() < SPARE_LISTS {
                st.spare.push(a.words);
            }
            // No interrupt: a word the reactor still sleeps on costs at most one
            // spurious wake-up, and is dropped at its next rebuild.
        }
    }

    /// Whether a wait is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        self.id
            .is_some_and(|id| reactor().lock().armed.contains_key(&id))
    }
}

impl Drop for AsyncWait {
    fn drop(&mut self) {
        self.disarm();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake};
    use std::time::{Duration, Instant};

    /// A flag with its notifier, on the heap.
    #[derive(Default)]
    struct Flag {
        notifier: Notifier,
        set: AtomicU32,
    }

    /// Waits for the flag through the reactor.
    struct WaitFlag<'a> {
        flag: &'a Flag,
        wait: AsyncWait,
    }

    impl Future for WaitFlag<'_> {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let flag = self.flag;
            if flag.set.load(Ordering::Acquire) != 0 {
                return Poll::Ready(());
            }
            // SAFETY: the flag outlives the future, which owns the AsyncWait.
            unsafe { self.wait.arm(|f| f(&flag.notifier), cx.waker()) };
            if flag.set.load(Ordering::Acquire) != 0 {
                self.wait.disarm();
                return Poll::Ready(());
            }
            Poll::Pending
        }
    }

    /// A minimal executor: park the thread until woken.
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_notify_from_another_thread_wakes_the_task() {
        let flag = Arc::new(Flag::default());
        for _ in 0..200 {
            flag.set.store(0, Ordering::Release);
            let f = flag.clone();
            let t = std::thread::spawn(move || {
                f.set.store(1, Ordering::Release);
                f.notifier.notify();
            });
            block_on(WaitFlag {
                flag: &flag,
                wait: AsyncWait::new(),
            });
            t.join().unwrap();
        }
        assert_eq!(flag.notifier.waiter_count(), 0, "no waiter left announced");
    }

    #[test]
    fn a_dropped_wait_leaves_no_waiter_and_nothing_armed() {
        let flags: Vec<Flag> = (0..300).map(|_| Flag::default()).collect();
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        {
            let mut futs: Vec<_> = flags
                .iter()
                .map(|flag| WaitFlag {
                    flag,
                    wait: AsyncWait::new(),
                })
                .collect();
            for f in &mut futs {
                assert!(Pin::new(f).poll(&mut cx).is_pending());
            }
        }
        for f in &flags {
            assert_eq!(f.notifier.waiter_count(), 0);
        }
        // Other tests of this binary may arm meanwhile; ours are gone.
        let start = Instant::now();
        while armed_count() != 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(armed_count(), 0);
    }

    #[test]
    fn an_armed_wait_fires_after_the_liveness_interval_without_a_notify() {
        let flag = Flag::default();
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = WaitFlag {
            flag: &flag,
            wait: AsyncWait::new(),
        };
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        let start = Instant::now();
        while fut.wait.is_armed() {
            assert!(
                start.elapsed() < LIVENESS_RECHECK_INTERVAL * 40,
                "never fired"
            );
            std::thread::park_timeout(Duration::from_millis(5));
        }
        assert!(start.elapsed() < LIVENESS_RECHECK_INTERVAL * 40);
        assert_eq!(flag.notifier.waiter_count(), 0);
    }
}
