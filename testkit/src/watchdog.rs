//! Last-resort deadlines: a thread that ends the whole test binary when a test (or a
//! child playing a role) is still running long after it should have finished, where a
//! blocked call could not be interrupted otherwise.
//!
//! [`Watchdog`] belongs to a [`Supervisor`](crate::Supervisor): dropping it stops the
//! thread; at its deadline it runs the supervisor's last words (kill the children,
//! report their output), then aborts. [`abort_after`] is the same for a child, with
//! nothing to stop it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A deadline for the whole process, stopped when dropped.
pub(crate) struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Unless dropped first, runs `last_words` after `limit` and aborts the process.
    pub(crate) fn start(limit: Duration, last_words: impl FnOnce() + Send + 'static) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(limit) {
                last_words();
                std::process::abort();
            }
        });
        Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Aborts this process if it is still running after `limit`: for a child playing a
/// role, so that it cannot outlive a parent that failed to kill it.
pub fn abort_after(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("watchdog: still running after {limit:?}; aborting");
        std::process::abort();
    });
}
