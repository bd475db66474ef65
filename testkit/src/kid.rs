//! One child of a [`Supervisor`](crate::Supervisor): its process, exit status and
//! captured output, and whether the test killed it (then its exit status fails
//! nothing). Nothing here waits for a child that was not killed first.

use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::capture::Capture;

/// How long a report waits for a killed child's output to end.
const SETTLE: Duration = Duration::from_secs(1);

/// A spawned child and what is known of it.
pub(crate) struct Kid {
    pub(crate) label: String,
    pub(crate) child: Child,
    pub(crate) status: Option<ExitStatus>,
    /// Killed by the test: its exit status does not fail the test.
    pub(crate) killed: bool,
    /// Plays a role of a test (its command set [`ROLE_ENV`](crate::ROLE_ENV)).
    pub(crate) role: bool,
    pub(crate) stdout: Option<Capture>,
    pub(crate) stderr: Option<Capture>,
}

impl Kid {
    /// The exit status, reaping the child if it exited.
    pub(crate) fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on a child");
        }
        self.status
    }

    /// Why this child fails the test, if it exited unsuccessfully by itself.
    pub(crate) fn failure(&mut self) -> Option<String> {
        match self.poll() {
            Some(status) if !status.success() && !self.killed => {
                Some(format!("child {} failed: {status}", self.label))
            }
            _ => None,
        }
    }

    pub(crate) fn kill_and_reap(&mut self) {
        if self.status.is_none() {
            self.killed = true;
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    pub(crate) fn report(&self) -> String {
        let status = self
            .status
            .map_or("still running".to_owned(), |s| s.to_string());
        let mut text = format!("--- {} (pid {}): {status}\n", self.label, self.child.id());
        for (name, capture) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(c) = capture {
                c.settle(SETTLE);
                text.push_str(&format!("--- {} {name} ---\n{}\n", self.label, c.tail()));
            }
        }
        text
    }
}

pub(crate) type Kids = Arc<Mutex<Vec<Kid>>>;

pub(crate) fn lock(kids: &Kids) -> MutexGuard<'_, Vec<Kid>> {
    kids.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills and reaps every child still running.
pub(crate) fn kill_all(kids: &Kids) {
    lock(kids).iter_mut().for_each(Kid::kill_and_reap);
}

/// Kills and reaps every child; returns their output.
pub(crate) fn kill_and_report(kids: &Kids) -> String {
    let mut kids = lock(kids);
    kids.iter_mut().for_each(Kid::kill_and_reap);
    kids.iter().map(Kid::report).collect()
}
