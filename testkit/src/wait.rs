//! Bounded waits: for a condition to hold, or for a call to return. None of them can
//! hang a test: each gives up after its timeout.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Pause between two polls.
const POLL: Duration = Duration::from_millis(5);

/// Polls `cond` until it holds (`true`) or `timeout` passes (`false`, after one last
/// poll).
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` until it holds; panics ("timed out waiting for `what`") once `timeout`
/// passed.
pub fn wait_until(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(eventually(timeout, cond), "timed out waiting for {what}");
}

/// Runs `f` on a thread of its own and returns what it returns; panics if it has not
/// returned within `limit` (the thread is left behind).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the call did not return in time")
}
