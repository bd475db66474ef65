//! Helpers shared by the `pipe_*` cross-process tests (included with `#[path]`; as a
//! test target of its own it holds no tests).
//!
//! A test re-executes its own binary (`current_exe()`) with `--exact <test> --nocapture
//! --test-threads=1` and a role in `CULVERT_PIPE_TEST_ROLE`; the child runs the same
//! test function, sees the role and plays it. Every cross-process test has an outer
//! deadline ([`Watchdog`]) that kills its children and fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use culvert::sync::atomic::{AtomicUsize, Ordering};

/// Environment variable holding a child's role.
pub const ROLE: &str = "CULVERT_PIPE_TEST_ROLE";

/// The role of this process, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// The command re-running this test binary as `test` with `role`.
pub fn child_command(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    cmd
}

/// Waits for `child` and asserts it succeeded.
pub fn wait_ok(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

/// Waits for every child of `children` in turn and asserts each succeeded.
pub fn wait_all_ok(children: Vec<Child>) {
    for child in children {
        wait_ok(child);
    }
}

/// Kills the registered children and exits the test process (failing it) if it
/// outlives `limit`.
pub struct Watchdog {
    pids: Arc<Mutex<Vec<u32>>>,
    done: Arc<Mutex<bool>>,
}

impl Watchdog {
    pub fn new(name: &'static str, limit: Duration) -> Self {
        let pids = Arc::new(Mutex::new(Vec::<u32>::new()));
        let done = Arc::new(Mutex::new(false));
        let (p, d) = (pids.clone(), done.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                std::thread::sleep(Duration::from_millis(50));
                if *d.lock().unwrap() {
                    return;
                }
            }
            for pid in p.lock().unwrap().iter() {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            eprintln!("{name}: outer deadline of {limit:?} passed; children killed");
            std::process::exit(101);
        });
        Self { pids, done }
    }

    /// Registers `child` to be killed at the deadline.
    pub fn watch(&self, child: &Child) {
        self.pids.lock().unwrap().push(child.id());
    }

    /// Spawns `cmd` and registers the child.
    pub fn spawn(&self, cmd: &mut Command) -> Child {
        let child = cmd.spawn().unwrap();
        self.watch(&child);
        child
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.done.lock().unwrap() = true;
    }
}

/// A fresh directory (a namespace root, or a place for results), removed on drop.
pub struct TempRoot(pub PathBuf);

impl TempRoot {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "culvert-pipe-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One xorshift64 step of `x`; returns the new value.
pub fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Deterministic test bytes.
pub fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        let b = xorshift(seed).to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// The FNV-1a offset basis: where a [`checksum`] starts.
pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over 8-byte words (fast enough in debug builds).
pub fn checksum(mut h: u64, data: &[u8]) -> u64 {
    for chunk in data.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h ^= u64::from_le_bytes(w);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
