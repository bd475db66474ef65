//! The one adapter from the non-blocking core to futures.
//!
//! An asynchronous call tries its operation with the endpoint's `try_*` form, which
//! never waits, re-trying for a few microseconds while that pays (the spin phase of
//! `WaitStrategy::Adaptive`). When it still reports `WouldBlock` it arms the process's
//! reactor
//! ([`culvert_sync::reactor`]) on the notifiers whose notify can let the operation go
//! on, tries once more (a change between the two tries is not lost: arming announced
//! the waiter first), and returns `Poll::Pending`; the reactor wakes the task when a
//! notifier moves, and at least once per liveness interval so a dead peer is reported.
//! Nothing here needs a runtime: the futures work on any executor, tokio included.

use std::future::Future;
use std::task::{Context, Poll};

use culvert_sync::{AsyncWait, Notifier};

use crate::{Error, Result};

/// One poll of an asynchronous operation over `state` (see the module doc).
///
/// # Safety
/// The notifiers `notifiers` passes on must live in memory that `state` keeps alive,
/// and `wait` must be disarmed or dropped before `state` is (keep both in the same
/// future, with `wait` declared inside it).
pub(crate) unsafe fn poll_op<S: ?Sized, T>(
    state: &mut S,
    wait: &mut AsyncWait,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut(&mut S) -> Result<T>,
    notifiers: impl FnOnce(&S, &mut dyn FnMut(&Notifier)),
) -> Poll<Result<T>> {
    // Try, then spin briefly (the `Adaptive` rule) before paying for a sleep: a peer
    // that answers within microseconds is met without a trip through the reactor.
    let now = match attempt(state) {
        Err(Error::WouldBlock) => culvert_sync::spin_phase(|| match attempt(state) {
            Err(Error::WouldBlock) => None,
            done => Some(done),
        }),
        done => Some(done),
    };
    if let Some(done) = now {
        wait.disarm();
        return Poll::Ready(done);
    }
    // SAFETY: the caller's contract: the notifiers outlive `wait`'s arming.
    unsafe { wait.arm(|f| notifiers(state, f), cx.waker()) };
    match attempt(state) {
        Err(Error::WouldBlock) => Poll::Pending,
        done => {
            wait.disarm();
            Poll::Ready(done)
        }
    }
}

/// Runs `attempt` on `state` until it stops reporting `WouldBlock`, sleeping in the
/// reactor on `notifiers` in between. The future borrows `state` for its whole life and
/// owns its arming, so dropping it (cancelling) disarms before the borrow ends.
pub(crate) fn until_ready<'a, S: ?Sized, T: 'a>(
    state: &'a mut S,
    mut attempt: impl FnMut(&mut S) -> Result<T> + 'a,
    notifiers: impl Fn(&S, &mut dyn FnMut(&Notifier)) + 'a,
) -> impl Future<Output = Result<T>> + 'a {
    let mut wait = AsyncWait::new();
    std::future::poll_fn(move |cx| {
        // SAFETY: `wait` lives in this future, which borrows `state` (and with it the
        // mappings of the notifiers) for its whole life.
        unsafe { poll_op(&mut *state, &mut wait, cx, &mut attempt, &notifiers) }
    })
}

/// Runs `work` (a call that blocks, such as a connect handshake) on a thread of its own
/// and completes with its result, without blocking the task's thread.
pub(crate) async fn on_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    use std::sync::{Arc, Mutex};
    /// The result once the thread is done, and the task to wake then.
    type Slot<T> = Mutex<(Option<T>, Option<std::task::Waker>)>;
    let slot: Arc<Slot<T>> = Arc::new(Mutex::new((None, None)));
    let theirs = slot.clone();
    std::thread::spawn(move || {
        let out = work();
        let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = Some(out);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    std::future::poll_fn(move |cx| {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(out) => Poll::Ready(out),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}
