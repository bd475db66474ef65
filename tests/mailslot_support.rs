//! Helpers shared by the mailslot cross-process tests (included with `#[path]`).
//!
//! Children are this test binary re-executed with `--exact <test> --nocapture
//! --test-threads=1`, a role in `CULVERT_MS_ROLE`, and the test's own namespace root in
//! `CULVERT_ROOT`. Results come back through small files in the root. Every wait has a
//! deadline; children still running when the parent gives up (or panics) are killed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use culvert::mailslot::{Mailslot, MailslotWriter};
use culvert::Error;

/// The role of this process (`None`: the parent test).
pub fn role() -> Option<String> {
    std::env::var("CULVERT_MS_ROLE").ok()
}

/// Plays this process's role if it is a child: runs the function `roles` pairs with
/// it (panicking on a role not there) and returns `true`, for the test to return.
/// Returns `false` in the parent test.
pub fn play_role(roles: &[(&str, fn())]) -> bool {
    let Some(r) = role() else {
        return false;
    };
    match roles.iter().find(|(name, _)| *name == r) {
        Some((_, play)) => play(),
        None => panic!("unknown role {r}"),
    }
    true
}

/// A per-child argument set by the parent.
pub fn arg(key: &str) -> String {
    std::env::var(format!("CULVERT_MS_{key}")).unwrap_or_default()
}

/// A numeric per-child argument.
pub fn num(key: &str) -> u64 {
    arg(key)
        .parse()
        .unwrap_or_else(|_| panic!("argument {key} missing"))
}

/// The namespace root (children: from `CULVERT_ROOT`).
pub fn child_root() -> PathBuf {
    PathBuf::from(std::env::var("CULVERT_ROOT").expect("CULVERT_ROOT"))
}

/// Children of one test, killed on drop.
pub struct Kids {
    kids: Vec<(String, Child)>,
    pub deadline: Instant,
}

impl Kids {
    pub fn new(limit: Duration) -> Self {
        Self {
            kids: Vec::new(),
            deadline: Instant::now() + limit,
        }
    }

    /// Starts this binary as `role` for `test`, with `CULVERT_ROOT=root` and
    /// `CULVERT_MS_<k>=v` for each `(k, v)`. Returns the child's index.
    pub fn spawn(&mut self, test: &str, role: &str, root: &Path, vars: &[(&str, String)]) -> usize {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env("CULVERT_MS_ROLE", role)
            .env("CULVERT_ROOT", root);
        for (k, v) in vars {
            cmd.env(format!("CULVERT_MS_{k}"), v);
        }
        let child = cmd.spawn().expect("spawn child");
        self.kids
            .push((format!("{role}#{}", self.kids.len()), child));
        self.kids.len() - 1
    }

    /// Starts `n` children as `role` for `test`, with `CULVERT_MS_ID` set to `0..n`.
    pub fn spawn_ids(&mut self, test: &str, role: &str, root: &Path, n: u32) {
        for id in 0..n {
            self.spawn(test, role, root, &[("ID", id.to_string())]);
        }
    }

    /// Panics (killing everyone) if a child already failed or the deadline passed.
    pub fn check(&mut self) {
        if Instant::now() > self.deadline {
            panic!("test deadline passed");
        }
        for (name, c) in &mut self.kids {
            if let Ok(Some(st)) = c.try_wait() {
                // A child killed by a signal was killed by the test.
                assert!(
                    st.success() || st.code().is_none(),
                    "child {name} failed: {st}"
                );
            }
        }
    }

    /// SIGKILLs child `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let c = &mut self.kids[i].1;
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Waits for every child to exit successfully before the deadline.
    pub fn wait_all(&mut self) {
        for (name, c) in &mut self.kids {
            loop {
                match c.try_wait().expect("try_wait") {
                    Some(st) => {
                        // Killed children are expected to have failed.
                        assert!(
                            st.success() || st.code().is_none(),
                            "child {name} failed: {st}"
                        );
                        break;
                    }
                    None if Instant::now() > self.deadline => {
                        panic!("child {name} did not finish before the deadline")
                    }
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        for (_, c) in &mut self.kids {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Aborts the whole test process if it is still running after `limit` (a blocked
/// `read` cannot be interrupted otherwise). Children are killed by their own
/// watchdogs or die with the namespace.
pub fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("watchdog: test still running after {limit:?}; aborting");
        std::process::abort();
    });
}

/// Writes `text` to `root/name` atomically.
pub fn put(root: &Path, name: &str, text: &str) {
    let tmp = root.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write result");
    std::fs::rename(&tmp, root.join(name)).expect("rename result");
}

/// Reads `root/name`.
pub fn get(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("result {name}: {e}"))
}

/// Reads `root/name` as one number.
pub fn get_num(root: &Path, name: &str) -> u64 {
    get(root, name).trim().parse().unwrap()
}

/// Reads `root/name` as two numbers separated by a space.
pub fn get_pair(root: &Path, name: &str) -> (u64, u64) {
    let text = get(root, name);
    let (a, b) = text.trim().split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Reads one message from `slot` into `buf`: its length, or `None` on `Timeout`;
/// any other error panics.
pub fn read_or_timeout(slot: &mut Mailslot, buf: &mut [u8]) -> Option<usize> {
    match slot.read(buf) {
        Ok(n) => Some(n),
        Err(Error::Timeout) => None,
        Err(e) => panic!("read: {e}"),
    }
}

/// Writes `m` with `w` (writer `id`), calling `on_full` and retrying after each
/// `Full`; any other error panics.
pub fn write_retrying(w: &mut MailslotWriter, m: &[u8], id: u32, mut on_full: impl FnMut()) {
    loop {
        match w.write(m) {
            Ok(()) => return,
            Err(Error::Full) => on_full(),
            Err(e) => panic!("writer {id}: {e}"),
        }
    }
}

/// Waits until `root/name` exists.
pub fn wait_file(root: &Path, name: &str, kids: &mut Kids) {
    while !root.join(name).exists() {
        kids.check();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Length of message `seq` of writer `id`, in `12..=max`.
pub fn msg_len(id: u32, seq: u32, max: usize) -> usize {
    12 + ((seq as usize).wrapping_mul(7) + id as usize * 13) % (max - 12 + 1)
}

fn pattern(id: u32, seq: u32, i: usize) -> u8 {
    (id as usize * 31 + seq as usize * 17 + i * 7) as u8
}

/// Builds message `seq` of writer `id` into `out`: `id`, `seq`, `len` then a pattern.
pub fn make(id: u32, seq: u32, max: usize, out: &mut Vec<u8>) {
    let len = msg_len(id, seq, max);
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for i in 12..len {
        out.push(pattern(id, seq, i));
    }
}

/// Checks a message built by [`make`] is whole; returns `(id, seq)`.
pub fn check(m: &[u8], max: usize) -> (u32, u32) {
    assert!(m.len() >= 12, "message of {} bytes is torn", m.len());
    let id = u32::from_le_bytes(m[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
    let len = u32::from_le_bytes(m[8..12].try_into().unwrap()) as usize;
    assert_eq!(len, m.len(), "message {id}/{seq}: length field says {len}");
    assert_eq!(
        len,
        msg_len(id, seq, max),
        "message {id}/{seq}: wrong length"
    );
    for (i, &b) in m.iter().enumerate().skip(12) {
        assert_eq!(
            b,
            pattern(id, seq, i),
            "message {id}/{seq} torn at byte {i}"
        );
    }
    (id, seq)
}
