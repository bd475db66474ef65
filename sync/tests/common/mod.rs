//! Helpers shared by the cross-process tests of `culvert-sync`.
//!
//! * [`Shared`] — a memfd mapped `MAP_SHARED` with [`memmap2::MmapRaw`]; atomics and
//!   [`Notifier`]s are placed in it by aligned pointer casts, the way production code
//!   places them in a section.
//! * [`spawn_role`] — re-executes the current test binary as
//!   `<exe> <test> --exact --nocapture --test-threads=1` with a role in [`ROLE_ENV`]
//!   (the `ipc-channel` pattern; no `fork` without `exec`). The memfd reaches the child
//!   because a `pre_exec` hook clears its `FD_CLOEXEC` in the child only; its number
//!   travels in [`SHM_FD_ENV`]. The child also gets `PR_SET_PDEATHSIG = SIGKILL`, so it
//!   cannot outlive the test thread that spawned it.
//! * [`ChildProc`] — a spawned child whose output is collected; it is killed and reaped
//!   when dropped, and every wait on it has a deadline that fails the test instead of
//!   hanging CI.

#![allow(dead_code)]

use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use culvert_sync::atomic::{AtomicU32, AtomicU64};
use culvert_sync::Notifier;
use memmap2::MmapRaw;

/// Environment variable holding the role a re-executed test binary plays.
pub const ROLE_ENV: &str = "CULVERT_SYNC_TEST_ROLE";
/// Environment variable holding the number of the inherited memfd.
pub const SHM_FD_ENV: &str = "CULVERT_SYNC_TEST_SHM_FD";

/// The role this process plays, if it is a re-executed child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A memfd mapped `MAP_SHARED`, zero-filled at creation.
pub struct Shared {
    fd: OwnedFd,
    map: MmapRaw,
}

impl Shared {
    /// Creates a fresh memfd of `len` bytes and maps it.
    pub fn create(len: usize) -> Self {
        use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
        let fd = memfd_create("culvert-sync-test", MemfdFlags::CLOEXEC).expect("memfd_create");
        ftruncate(&fd, len as u64).expect("ftruncate memfd");
        Self::map(fd)
    }

    /// Maps the memfd the parent passed in [`SHM_FD_ENV`] (child side).
    pub fn from_env() -> Self {
        let raw: RawFd = std::env::var(SHM_FD_ENV)
            .expect("the parent passes the memfd number")
            .parse()
            .expect("memfd number is an integer");
        // SAFETY: the parent cleared FD_CLOEXEC on exactly this descriptor in our
        // pre-exec hook and nothing else in this process owns or closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> Self {
        let map = MmapRaw::map_raw(&fd).expect("mmap memfd MAP_SHARED");
        Self { fd, map }
    }

    /// The descriptor number (valid in this process).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A pointer to a `T` at `offset`, after checking bounds and alignment.
    fn ptr_at<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset
                .checked_add(std::mem::size_of::<T>())
                .is_some_and(|end| end <= self.map.len()),
            "offset {offset} out of bounds of a {}-byte mapping",
            self.map.len()
        );
        // SAFETY: `offset + size_of::<T>() <= len` was checked just above, so the
        // result stays inside the mapping.
        let ptr = unsafe { self.map.as_mut_ptr().add(offset) };
        assert_eq!(
            ptr as usize % std::mem::align_of::<T>(),
            0,
            "offset {offset} misaligned"
        );
        ptr.cast()
    }

    /// The `AtomicU32` at `offset`.
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: in bounds and aligned (checked by `ptr_at`); the mapping lives as long
        // as `&self`; an atomic may be written concurrently by other processes, and every
        // bit pattern (including the initial zeroes) is a valid `AtomicU32`.
        unsafe { &*self.ptr_at::<AtomicU32>(offset) }
    }

    /// The `AtomicU64` at `offset`.
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as in `u32_at`: in bounds, aligned, lives as long as `&self`, shared
        // mutation goes through atomics only, and every bit pattern is valid.
        unsafe { &*self.ptr_at::<AtomicU64>(offset) }
    }

    /// The [`Notifier`] at `offset` (8 bytes, `#[repr(C)]`, all-zero is valid).
    pub fn notifier_at(&self, offset: usize) -> &Notifier {
        // SAFETY: in bounds and aligned (checked by `ptr_at`); `Notifier` is `#[repr(C)]`
        // of two `AtomicU32`s, so every bit pattern is a valid (if possibly hostile)
        // state, and it is only ever mutated through those atomics.
        unsafe { &*self.ptr_at::<Notifier>(offset) }
    }
}

/// A child process running one role of a test, with its output collected.
pub struct ChildProc {
    name: String,
    child: Child,
    reaped: Option<ExitStatus>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Re-executes this test binary to run only `test` in the role `role`. When `shared`
/// is given, the child inherits its memfd and can map it with [`Shared::from_env`].
pub fn spawn_role(test: &str, role: &str, shared: Option<&Shared>) -> ChildProc {
    spawn_role_with_env(test, role, shared, &[])
}

/// [`spawn_role`] with extra environment variables for the child.
pub fn spawn_role_with_env(
    test: &str,
    role: &str,
    shared: Option<&Shared>,
    env: &[(&str, &str)],
) -> ChildProc {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.envs(env.iter().copied());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let inherit = shared.map(Shared::raw_fd);
    if let Some(fd) = inherit {
        cmd.env(SHM_FD_ENV, fd.to_string());
    }
    // Runs in the child between fork and exec: only async-signal-safe system calls
    // (prctl, fcntl), no allocation.
    let hook = move || -> std::io::Result<()> {
        use rustix::process::{set_parent_process_death_signal, Signal};
        set_parent_process_death_signal(Some(Signal::KILL))?;
        if let Some(fd) = inherit {
            // SAFETY: `fd` is the parent's open memfd, duplicated into this child by
            // fork; it stays open for the duration of this call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            // Clears FD_CLOEXEC in this child's descriptor table only.
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        }
        Ok(())
    };
    // SAFETY: `hook` is async-signal-safe (see above), as `pre_exec` requires.
    unsafe {
        cmd.pre_exec(hook);
    }
    let mut child = cmd.spawn().expect("re-exec the test binary");
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    ChildProc {
        name: format!("{test}[{role}]"),
        child,
        reaped: None,
        stdout,
        stderr,
    }
}

impl ChildProc {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL (a no-op once reaped).
    pub fn kill(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
        }
    }

    /// Reaps the child (blocking). Only for a child known to be dead or dying.
    pub fn reap(&mut self) -> ExitStatus {
        if let Some(s) = self.reaped {
            return s;
        }
        let s = self.child.wait().expect("wait for child");
        self.reaped = Some(s);
        s
    }

    /// Reaps the child if it has exited, without blocking.
    pub fn try_reap(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().expect("try_wait on child");
        }
        self.reaped
    }

    /// Everything the child printed (after it exited).
    pub fn output(&mut self) -> String {
        let mut text = String::new();
        for (label, h) in [
            ("stdout", self.stdout.take()),
            ("stderr", self.stderr.take()),
        ] {
            if let Some(h) = h {
                let bytes = h.join().unwrap_or_default();
                text.push_str(&format!(
                    "--- {} {label} ---\n{}\n",
                    self.name,
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
        text
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills and reaps every child, then panics with `why` and all their output.
pub fn fail(children: &mut [ChildProc], why: &str) -> ! {
    for c in children.iter_mut() {
        c.kill();
    }
    let mut msg = format!("{why}\n");
    for c in children.iter_mut() {
        let status = c.reap();
        msg.push_str(&format!("{} exited with {status}\n", c.name));
        msg.push_str(&c.output());
    }
    panic!("{msg}");
}

/// Waits until every child exits successfully. Fails the test (killing the others) as
/// soon as one exits unsuccessfully, or when `deadline` passes.
pub fn expect_all_succeed(children: &mut [ChildProc], deadline: Instant, what: &str) {
    loop {
        let mut all_done = true;
        for i in 0..children.len() {
            match children[i].try_reap() {
                Some(s) if s.success() => {}
                Some(s) => {
                    let name = children[i].name.clone();
                    fail(children, &format!("{what}: {name} failed ({s})"));
                }
                None => all_done = false,
            }
        }
        if all_done {
            return;
        }
        if Instant::now() >= deadline {
            fail(
                children,
                &format!("{what}: outer deadline passed, children killed (a lost wake-up?)"),
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `cond` until it holds. Fails the test if any child exits first or `deadline`
/// passes.
pub fn poll_until(
    children: &mut [ChildProc],
    deadline: Instant,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    while !cond() {
        for i in 0..children.len() {
            if let Some(s) = children[i].try_reap() {
                let name = children[i].name.clone();
                fail(
                    children,
                    &format!("waiting for {what}: {name} exited early ({s})"),
                );
            }
        }
        if Instant::now() >= deadline {
            fail(children, &format!("deadline passed waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
