//! Helpers shared by the `port_*` cross-process tests (included with `#[path]`; as a
//! test target of its own it holds no tests).
//!
//! A test re-executes its own binary (`current_exe()`) with `--exact <test>` and a role
//! in `CULVERT_PORT_TEST_ROLE`; the child runs the same test function, sees the role and
//! plays it. Each test has its own namespace root (a fresh directory, passed to children
//! as `CULVERT_ROOT`), and every child is killed if the test fails or overruns.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Environment variable holding a child's role.
pub const ROLE: &str = "CULVERT_PORT_TEST_ROLE";

/// The role of this process, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A fresh namespace directory, removed on drop.
pub struct TempRoot {
    /// The directory.
    pub path: PathBuf,
}

impl TempRoot {
    /// A new directory for test `tag`.
    pub fn new(tag: &str) -> TempRoot {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = base.join(format!(
            "culvert-port-{tag}-{}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempRoot { path }
    }

    /// Section options rooted here.
    pub fn opts(&self) -> PortOptions {
        PortOptions::default().root(&self.path)
    }

    /// A marker file in the root.
    pub fn marker(&self, name: &str) -> PathBuf {
        self.path.join(format!("marker-{name}"))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The namespace root of a child (its `CULVERT_ROOT`).
pub fn child_root() -> PathBuf {
    PathBuf::from(std::env::var("CULVERT_ROOT").expect("child without CULVERT_ROOT"))
}

/// Children of a test; every one still running is killed on drop.
#[derive(Default)]
pub struct Children(Vec<Child>);

impl Children {
    /// Starts `test` again in a child with `role`, namespace `root`, and extra env.
    pub fn spawn(&mut self, test: &str, role: &str, root: &Path, env: &[(&str, String)]) -> usize {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env("CULVERT_ROOT", root)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .spawn()
            .expect("spawn child");
        self.0.push(child);
        self.0.len() - 1
    }

    /// Process id of child `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.0[i].id()
    }

    /// Waits for child `i` until `timeout`; kills it and panics on overrun.
    pub fn wait(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0[i].try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.0[i].kill();
                let _ = self.0[i].wait();
                panic!("child {i} overran {timeout:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for child `i` and asserts it succeeded.
    pub fn expect_success(&mut self, i: usize, timeout: Duration) {
        let status = self.wait(i, timeout);
        assert!(status.success(), "child {i} failed: {status}");
    }

    /// SIGKILLs child `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let _ = self.0[i].kill();
        let _ = self.0[i].wait();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let n = (len - v.len()).min(8);
        v.extend_from_slice(&b[..n]);
    }
    v
}

/// A simple checksum (FNV-1a, 64 bit).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What the echo servers of these tests reply: every byte + 1.
pub fn transform(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b.wrapping_add(1)).collect()
}

use std::sync::Arc;
use std::thread::JoinHandle;

use culvert::port::{Incoming, MessageKind, PortOptions, PortServer};
use culvert::sync::atomic::{AtomicBool, Ordering};
use culvert::Deadline;

/// A port served by threads of the test process.
pub struct Served {
    /// The port.
    pub port: Arc<PortServer>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The echo handler: replies `transform(request)` (the request view is released first).
pub fn echo(mut inc: Incoming) {
    if inc.kind == MessageKind::Request {
        let data = std::mem::take(&mut inc.payload);
        let out = transform(data.as_slice());
        drop(data);
        let _ = inc.reply(&out);
    }
}

/// Serves port `name`: one thread listens (accepting payload `b"ok"`, rejecting the
/// rest with reason `b"go away: " + payload`), `receivers` threads run `handler`.
pub fn serve(
    name: &str,
    opts: &PortOptions,
    namespace: &PortOptions,
    receivers: usize,
    handler: Arc<dyn Fn(Incoming) + Send + Sync>,
) -> Served {
    let opts = PortOptions {
        root: namespace.root.clone(),
        ..opts.clone()
    };
    let port = Arc::new(PortServer::create(name, &opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    {
        let (port, stop) = (port.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match port.listen(Deadline::after(Duration::from_millis(50))) {
                    Ok(req) => {
                        if req.payload == b"ok" {
                            let _ = req.accept(b"welcome");
                        } else {
                            let mut reason = b"go away: ".to_vec();
                            reason.extend_from_slice(&req.payload);
                            let _ = req.reject(&reason);
                        }
                    }
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => panic!("listen: {e}"),
                }
            }
        }));
    }
    for _ in 0..receivers {
        let (port, stop, handler) = (port.clone(), stop.clone(), handler.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match port.receive(Deadline::after(Duration::from_millis(50))) {
                    Ok(inc) => handler(inc),
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => panic!("receive: {e}"),
                }
            }
        }));
    }
    Served {
        port,
        stop,
        threads,
    }
}

impl Served {
    /// Stops the threads (propagating their panics).
    pub fn stop(mut self) -> Arc<PortServer> {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.join().expect("server thread panicked");
        }
        self.port.clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Connects (retrying while the port does not exist yet) with payload `b"ok"`.
pub fn connect(name: &str) -> culvert::port::PortClient {
    let start = Instant::now();
    loop {
        match culvert::port::PortClient::connect(
            name,
            b"ok",
            Deadline::after(Duration::from_secs(10)),
        ) {
            Ok((c, accept)) => {
                assert_eq!(accept, b"welcome");
                return c;
            }
            Err(culvert::Error::NotFound { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}
