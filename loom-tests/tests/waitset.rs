#![cfg(loom)]
//! loom models of `WaitSet` registration against notify.
//!
//! Property: a set that announces itself on every endpoint's notifier, re-checks every
//! endpoint, then sleeps on all the notifiers' words at once never misses a notify that
//! makes an endpoint ready, whichever endpoint it is and however the producer's publish
//! and notify interleave with the announcements and checks. Under loom the multi-word
//! futex wait is emulated like the single-word one (check all words and park under one
//! lock; a wake wakes every parked thread) and ignores its deadline, so a lost wake-up
//! parks the waiter for ever and loom reports a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert-loom-tests
//! --release --target-dir target/loom --test waitset`.

use culvert_sync::atomic::{AtomicU32, Ordering};
use culvert_sync::{Deadline, Notifier, WaitSet, WaitStrategy, Waitable};
use loom::sync::Arc;
use loom::thread;

/// A flag and the notifier its setter notifies, on the heap.
#[derive(Default)]
struct Shared {
    notifier: Notifier,
    flag: AtomicU32,
}

/// An endpoint ready while its flag is set.
struct Flag(Arc<Shared>);

// SAFETY: the notifier lives in the Arc's heap allocation, not in the `Flag` value.
unsafe impl Waitable for Flag {
    fn poll_ready(&mut self, _ctx: culvert_sync::WaitContext) -> bool {
        self.0.flag.load(Ordering::Acquire) != 0
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        f(&self.0.notifier);
    }
}

/// Sets the flag, then notifies, as every producer must.
fn set(s: &Shared) {
    s.flag.store(1, Ordering::Release);
    s.notifier.notify();
}

fn flags(n: usize) -> Vec<Arc<Shared>> {
    (0..n).map(|_| Arc::new(Shared::default())).collect()
}

/// Waits until the set reports every index of `want`, serving (clearing) each flag it
/// reports; returns them in order seen.
fn wait_for_all(shared: &[Arc<Shared>], want: &[usize]) -> Vec<usize> {
    let mut ends: Vec<Flag> = shared.iter().map(|s| Flag(s.clone())).collect();
    let mut set = WaitSet::new();
    set.set_wait_strategy(WaitStrategy::Blocking);
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let mut refs: Vec<&mut dyn Waitable> =
            ends.iter_mut().map(|e| e as &mut dyn Waitable).collect();
        let ready = set
            .wait(&mut refs, Deadline::never())
            .expect("a never-deadline does not time out");
        for &i in ready {
            assert!(want.contains(&i), "index {i} was never set");
            // Served, as a `try_*` call would: the endpoint is no longer ready.
            assert_eq!(
                shared[i].flag.swap(0, Ordering::AcqRel),
                1,
                "{i} ready but not set"
            );
            seen.push(i);
        }
    }
    seen
}

#[test]
fn a_notify_on_any_endpoint_ends_the_wait() {
    loom::model(|| {
        let shared = flags(2);
        let producer = {
            let s = shared[1].clone();
            thread::spawn(move || set(&s))
        };
        assert_eq!(wait_for_all(&shared, &[1]), vec![1]);
        producer.join().unwrap();
        for s in &shared {
            assert_eq!(s.notifier.waiter_count(), 0, "a waiter was left announced");
        }
    });
}

#[test]
fn notifies_from_two_threads_are_both_seen() {
    loom::model(|| {
        let shared = flags(2);
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let s = shared[i].clone();
                thread::spawn(move || set(&s))
            })
            .collect();
        let mut seen = wait_for_all(&shared, &[0, 1]);
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1]);
        for p in producers {
            p.join().unwrap();
        }
    });
}
