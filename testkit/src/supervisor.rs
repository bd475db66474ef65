//! The children of one test, under one outer deadline.
//!
//! Contract:
//! * every wait of a [`Supervisor`] ends by the outer deadline: past it, the test fails
//!   with every child killed and their captured output in the panic message;
//! * a child that exits unsuccessfully, unless the test killed it, fails the test as
//!   soon as a wait or [`Supervisor::check`] sees it;
//! * a child playing a role that is waited for successfully must have run exactly one
//!   test (its harness printed `running 1 test`, checked when its stdout is captured):
//!   a wrong test name fails instead of passing silently;
//! * children still running when the supervisor drops are SIGKILLed and reaped; if the
//!   test is panicking, their output is printed first;
//! * a watchdog thread kills the children, prints their output and aborts the test
//!   binary a grace period after the deadline, should the test hang where no wait of
//!   the supervisor runs (a blocking read, say);
//! * nothing reaps a child behind the test's back: a killed child stays a zombie until
//!   the test waits for it (or a wait over all children, or the end, reaps it).

use std::fmt::Display;
use std::io;
use std::process::{Child, ChildStdin, Command, ExitStatus};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::kid::{kill_all, kill_and_report, lock, Kid, Kids};
use crate::watchdog::Watchdog;
use crate::ROLE_ENV;

/// How long after the outer deadline the watchdog aborts the test binary.
const GRACE: Duration = Duration::from_secs(10);
/// Pause between two polls of a wait for a child or a thread.
const POLL: Duration = Duration::from_millis(1);
/// Pause between two polls of a condition ([`Supervisor::poll_until`]): short, for a
/// flag a child raises before the test acts on it.
const POLL_COND: Duration = Duration::from_micros(200);
/// The line a test harness prints before running the one test a child was given.
const RAN_ONE_TEST: &str = "running 1 test";

/// One child of a [`Supervisor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildId(usize);

/// The children of one test and its outer deadline.
pub struct Supervisor {
    label: String,
    deadline: Instant,
    kids: Kids,
    /// The children's output was shown already (by [`Supervisor::fail`]).
    reported: Mutex<bool>,
    watchdog: Option<Watchdog>,
}

impl Supervisor {
    /// A supervisor named `label` (in its messages) whose outer deadline is `limit`
    /// from now.
    pub fn new(label: impl Into<String>, limit: Duration) -> Supervisor {
        let label = label.into();
        let kids = Kids::default();
        let (dog_kids, dog_label) = (kids.clone(), label.clone());
        let watchdog = Watchdog::start(limit + GRACE, move || {
            let report = kill_and_report(&dog_kids);
            eprintln!(
                "{dog_label}: outer deadline of {limit:?} (+{GRACE:?}) passed; children killed; \
                 aborting\n{report}"
            );
        });
        Supervisor {
            label,
            deadline: Instant::now() + limit,
            kids,
            reported: Mutex::new(false),
            watchdog: Some(watchdog),
        }
    }

    /// The outer deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Spawns `cmd` as a child of the test.
    pub fn spawn(&self, cmd: &mut Command) -> ChildId {
        self.spawn_with(cmd, Command::spawn)
    }

    /// Spawns `cmd` with `how` (a library's own spawn that hands the child a resource,
    /// say) as a child of the test.
    pub fn spawn_with<E: Display>(
        &self,
        cmd: &mut Command,
        how: impl FnOnce(&mut Command) -> Result<Child, E>,
    ) -> ChildId {
        self.try_spawn_with(cmd, how)
            .unwrap_or_else(|e| panic!("{}: spawning {:?}: {e}", self.label, cmd.get_program()))
    }

    /// [`Supervisor::spawn`], returning the error if the child cannot be started.
    pub fn try_spawn(&self, cmd: &mut Command) -> io::Result<ChildId> {
        self.try_spawn_with(cmd, Command::spawn)
    }

    fn try_spawn_with<E>(
        &self,
        cmd: &mut Command,
        how: impl FnOnce(&mut Command) -> Result<Child, E>,
    ) -> Result<ChildId, E> {
        let role = cmd
            .get_envs()
            .find(|(k, _)| *k == ROLE_ENV)
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned());
        let mut child = how(cmd)?;
        let stdout = child.stdout.take().map(Capture::drain);
        let stderr = child.stderr.take().map(Capture::drain);
        let mut kids = lock(&self.kids);
        let name = role.clone().unwrap_or_else(|| {
            let program = std::path::Path::new(cmd.get_program());
            program
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
        let label = format!("{name}#{}", kids.len());
        kids.push(Kid {
            label,
            child,
            status: None,
            killed: false,
            role: role.is_some(),
            stdout,
            stderr,
        });
        Ok(ChildId(kids.len() - 1))
    }

    fn with<T>(&self, c: ChildId, f: impl FnOnce(&mut Kid) -> T) -> T {
        f(&mut lock(&self.kids)[c.0])
    }

    /// The process id of child `c`.
    pub fn pid(&self, c: ChildId) -> u32 {
        self.with(c, |k| k.child.id())
    }

    /// Sends SIGKILL to child `c` (a no-op once it is reaped); its exit status no longer
    /// fails the test. It is not reaped: [`Supervisor::wait`] does that.
    pub fn kill(&self, c: ChildId) {
        self.with(c, |k| {
            k.killed = true;
            if k.status.is_none() {
                let _ = k.child.kill();
            }
        });
    }

    /// The stdin of child `c`, if its command piped it (a role child's stdin is null
    /// unless the command was changed); `None` once taken.
    pub fn take_stdin(&self, c: ChildId) -> Option<ChildStdin> {
        self.with(c, |k| k.child.stdin.take())
    }

    /// The exit status of child `c` if it exited (reaping it), without waiting.
    pub fn try_wait(&self, c: ChildId) -> Option<ExitStatus> {
        self.with(c, Kid::poll)
    }

    /// Waits for child `c` to exit and reaps it; fails the test at the outer deadline.
    pub fn wait(&self, c: ChildId) -> ExitStatus {
        loop {
            if let Some(status) = self.try_wait(c) {
                return status;
            }
            if Instant::now() >= self.deadline {
                let label = self.with(c, |k| k.label.clone());
                self.fail(&format!("outer deadline passed waiting for child {label}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for child `c` and fails the test unless it succeeded (and, playing a role,
    /// ran its test).
    pub fn wait_ok(&self, c: ChildId) {
        let status = self.wait(c);
        if !status.success() {
            let label = self.with(c, |k| k.label.clone());
            self.fail(&format!("child {label} failed: {status}"));
        }
        self.confirm_ran(c);
    }

    /// Fails the test if child `c` plays a role but its captured output shows it ran no
    /// test (a name the harness does not know).
    fn confirm_ran(&self, c: ChildId) {
        let (label, stdout) = self.with(c, |k| {
            (k.label.clone(), k.stdout.clone().filter(|_| k.role))
        });
        let Some(stdout) = stdout else {
            return;
        };
        stdout.settle(Duration::from_secs(5));
        if !stdout.text().lines().any(|l| l == RAN_ONE_TEST) {
            self.fail(&format!(
                "child {label} ran no test: does the harness know the test's name?"
            ));
        }
    }

    /// Waits for every child: those the test killed are reaped, every other one must
    /// succeed (see [`Supervisor::wait_ok`]). Fails as soon as one fails.
    pub fn wait_all_ok(&self) {
        loop {
            let (failure, running) = {
                let mut kids = lock(&self.kids);
                let failure = kids.iter_mut().find_map(Kid::failure);
                let exited = kids.iter_mut().filter_map(Kid::poll).count();
                let running = kids.len() - exited;
                (failure, running)
            };
            if let Some(failure) = failure {
                self.fail(&failure);
            }
            if running == 0 {
                break;
            }
            if Instant::now() >= self.deadline {
                self.fail(&format!(
                    "outer deadline passed with {running} children running"
                ));
            }
            std::thread::sleep(POLL);
        }
        let count = lock(&self.kids).len();
        for i in 0..count {
            if !self.with(ChildId(i), |k| k.killed) {
                self.confirm_ran(ChildId(i));
            }
        }
    }

    /// Fails the test if a child failed (one the test did not kill) or the outer
    /// deadline passed; `what` says what the test was doing.
    pub fn check(&self, what: &str) {
        let failure = lock(&self.kids).iter_mut().find_map(Kid::failure);
        if let Some(failure) = failure {
            self.fail(&format!("{failure} while {what}"));
        }
        if Instant::now() >= self.deadline {
            self.fail(&format!("outer deadline passed while {what}"));
        }
    }

    /// Polls `cond` until it holds, with [`Supervisor::check`] between polls.
    pub fn poll_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        while !cond() {
            self.check(what);
            std::thread::sleep(POLL_COND);
        }
    }

    /// Joins `handle`, with [`Supervisor::check`] while it runs. A panic in the thread is
    /// raised again, after the children are killed.
    pub fn join<T>(&self, handle: JoinHandle<T>, what: &str) -> T {
        while !handle.is_finished() {
            self.check(what);
            std::thread::sleep(POLL);
        }
        match handle.join() {
            Ok(v) => v,
            Err(panic) => {
                kill_all(&self.kids);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// What child `c` printed to its captured stdout (all of it, if it exited).
    pub fn stdout(&self, c: ChildId) -> String {
        self.captured(c, |k| k.stdout.clone(), "stdout")
    }

    /// What child `c` printed to its captured stderr (all of it, if it exited).
    pub fn stderr(&self, c: ChildId) -> String {
        self.captured(c, |k| k.stderr.clone(), "stderr")
    }

    fn captured(&self, c: ChildId, which: fn(&Kid) -> Option<Capture>, name: &str) -> String {
        let (capture, exited) = self.with(c, |k| (which(k), k.poll().is_some()));
        let capture = capture.unwrap_or_else(|| panic!("the child's {name} is not captured"));
        if exited {
            capture.settle(Duration::from_secs(5));
        }
        capture.text()
    }

    /// Waits until child `c` printed `marker` to its captured stdout; fails the test if
    /// the child ends first (or fails, or the outer deadline passes).
    pub fn wait_for_output(&self, c: ChildId, marker: &str) {
        let stdout = self.with(c, |k| k.stdout.clone());
        let stdout = stdout.expect("the child's stdout is not captured");
        while !stdout.contains(marker) {
            if stdout.ended() {
                let label = self.with(c, |k| k.label.clone());
                self.fail(&format!("child {label} ended its output before {marker:?}"));
            }
            self.check(&format!("waiting for {marker:?}"));
            std::thread::sleep(POLL);
        }
    }

    /// Fails the test now: kills every child and panics with `why` and their output.
    pub fn fail(&self, why: &str) -> ! {
        let report = kill_and_report(&self.kids);
        *self.reported.lock().unwrap_or_else(PoisonError::into_inner) = true;
        panic!("{}: {why}\n{report}", self.label);
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let reported = *self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if std::thread::panicking() && !reported && !lock(&self.kids).is_empty() {
            let report = kill_and_report(&self.kids);
            eprintln!("{}: the test failed; its children:\n{report}", self.label);
        }
        kill_all(&self.kids);
        drop(self.watchdog.take());
    }
}
