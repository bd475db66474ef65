//! Helpers shared by the ring integration tests (cross-process, kill, hostile, alloc):
//!
//! * [`Shared`]: a file in a fresh temp dir mapped `MAP_SHARED` (memmap2 `MmapRaw`) in
//!   every process, split into a page of control words and the ring's [`Region`];
//! * [`Supervisor`]: re-executes this test binary in a role (the ipc-channel pattern) and
//!   enforces an outer deadline: children are SIGKILLed and the test fails instead of
//!   hanging; a watchdog thread aborts the whole binary if the test itself hangs;
//! * a tiny seeded PRNG, checksums, and the self-checking message format;
//! * [`alloc`]: the counting global allocator of the allocation tests.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::ptr::NonNull;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use culvert_ring::Region;
use culvert_sync::atomic::AtomicU64;
use memmap2::MmapOptions;

pub mod alloc;

/// Environment variable naming a child's role.
pub const ROLE_ENV: &str = "CULVERT_SPSC_TEST_ROLE";
/// Environment variable naming the shared file.
pub const FILE_ENV: &str = "CULVERT_SPSC_TEST_FILE";
/// Environment variable carrying a seed to the child.
pub const SEED_ENV: &str = "CULVERT_SPSC_TEST_SEED";

/// Control words precede the ring by one page (keeps the ring page-aligned).
pub const PAGE: usize = 4096;

// ---- shared mapping ---------------------------------------------------------------------

/// Maps `path` shared (creating it with `len` bytes when `create`) as a [`Region`].
pub fn map_file(path: &Path, len: usize, create: bool) -> Region {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    if create {
        file.set_len(len as u64).unwrap();
    }
    let actual = file.metadata().unwrap().len() as usize;
    assert!(actual >= len, "shared file is {actual} bytes, need {len}");
    let map = MmapOptions::new()
        .len(len)
        .populate()
        .map_raw(&file)
        .unwrap();
    let ptr = NonNull::new(map.as_mut_ptr()).expect("mmap returned null");
    let len = map.len();
    // SAFETY: `ptr..ptr+len` is a live read-write MAP_SHARED mapping owned by `map`;
    // moving `map` into the region's owner keeps it mapped while any clone lives.
    unsafe { Region::from_raw_parts(ptr, len, Arc::new(map)) }
}

/// The shared test file: a page of control words, then the ring.
pub struct Shared {
    /// The whole mapping.
    pub region: Region,
    /// The ring's part (page-aligned, `ring_size` bytes).
    pub ring: Region,
    /// Keeps the temp dir alive in the parent (None in children).
    _dir: Option<tempfile::TempDir>,
    /// The file's path, handed to children.
    pub path: PathBuf,
}

impl Shared {
    /// A fresh file in a fresh temp dir (the parent).
    pub fn create(ring_size: usize) -> Shared {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spsc-ring");
        let region = map_file(&path, PAGE + ring_size, true);
        let ring = region.subregion(PAGE, ring_size).unwrap();
        Shared {
            region,
            ring,
            _dir: Some(dir),
            path,
        }
    }

    /// The file the parent made (a child).
    pub fn open(path: &Path, ring_size: usize) -> Shared {
        let region = map_file(path, PAGE + ring_size, false);
        let ring = region.subregion(PAGE, ring_size).unwrap();
        Shared {
            region,
            ring,
            _dir: None,
            path: path.to_owned(),
        }
    }

    /// Control word `i` of the first page.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < PAGE / 8);
        // SAFETY: `i * 8 + 8 <= PAGE <= region.len()`; the mapping is page-aligned so the
        // word is 8-aligned; it lives as long as `self.region`; every process touches
        // these words through atomics only.
        unsafe { &*self.region.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }
}

/// An 8-aligned word at byte `offset` of `region`, as an atomic.
pub fn word_at(region: &Region, offset: usize) -> &AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= region.len());
    assert!(region.is_aligned_to(8));
    // SAFETY: in bounds and 8-aligned (asserted); the region keeps the memory alive for
    // the returned lifetime; shared words are only touched through atomics here.
    unsafe { &*region.as_ptr().add(offset).cast::<AtomicU64>() }
}

// ---- child processes --------------------------------------------------------------------

/// This process's role, file and seed, when it is a re-executed child.
pub fn role() -> Option<(String, PathBuf, u64)> {
    let role = std::env::var(ROLE_ENV).ok()?;
    let file = std::env::var_os(FILE_ENV)?;
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some((role, file.into(), seed))
}

/// Re-executes this test binary to run only `test`, as `role`.
pub fn spawn(test: &str, role: &str, file: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(FILE_ENV, file)
        .env(SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        // The child harness's "running 1 test" chatter; panics go to stderr.
        .stdout(Stdio::null())
        .spawn()
        .expect("re-executing the test binary")
}

type Kids = Arc<Mutex<Vec<Option<(String, Child)>>>>;

fn kill_all(kids: &Kids) {
    let mut kids = kids.lock().unwrap_or_else(|p| p.into_inner());
    for (_, child) in kids.iter_mut().flatten() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Owns a test's children and its outer deadline. Children still running when it drops
/// (or when the deadline passes) are SIGKILLed. A watchdog thread SIGKILLs them and aborts
/// the test binary if the test is still running `grace` after the deadline, so even a hang
/// in the parent's own code fails CI instead of stalling it.
pub struct Supervisor {
    kids: Kids,
    deadline: Instant,
    stop: Option<mpsc::Sender<()>>,
    watchdog: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// A supervisor whose outer deadline is `outer` from now.
    pub fn new(test: &'static str, outer: Duration) -> Supervisor {
        let deadline = Instant::now() + outer;
        let kids: Kids = Arc::new(Mutex::new(Vec::new()));
        let (stop, rx) = mpsc::channel::<()>();
        let wk = kids.clone();
        let grace = Duration::from_secs(15);
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(outer + grace) {
                kill_all(&wk);
                eprintln!("{test}: outer deadline of {outer:?} (+{grace:?}) passed: aborting");
                std::process::abort();
            }
        });
        Supervisor {
            kids,
            deadline,
            stop: Some(stop),
            watchdog: Some(watchdog),
        }
    }

    /// The outer deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Fails the test (killing every child) if the outer deadline passed.
    pub fn check(&self, what: &str) {
        if Instant::now() >= self.deadline {
            kill_all(&self.kids);
            panic!("outer deadline passed while {what}");
        }
    }

    /// Spawns a child (see [`spawn`]) and returns its index.
    pub fn spawn(&mut self, test: &str, role: &str, file: &Path, seed: u64) -> usize {
        let child = spawn(test, role, file, seed);
        let mut kids = self.kids.lock().unwrap();
        kids.push(Some((role.to_owned(), child)));
        kids.len() - 1
    }

    /// SIGKILLs child `i` and reaps it; returns when the signal was sent and the status.
    pub fn kill(&mut self, i: usize) -> (Instant, ExitStatus) {
        let (_, mut child) = self.kids.lock().unwrap()[i].take().expect("child reaped");
        child.kill().expect("SIGKILL");
        let at = Instant::now();
        (at, child.wait().unwrap())
    }

    /// Waits for child `i` to exit successfully before the outer deadline; on failure or
    /// timeout kills every child and panics.
    pub fn wait_success(&mut self, i: usize) {
        loop {
            let done = {
                let mut kids = self.kids.lock().unwrap();
                let (role, child) = kids[i].as_mut().expect("child reaped");
                match child.try_wait().unwrap() {
                    Some(status) => {
                        let role = role.clone();
                        kids[i] = None;
                        Some((role, status))
                    }
                    None => None,
                }
            };
            if let Some((role, status)) = done {
                if !status.success() {
                    kill_all(&self.kids);
                    panic!("child {role} failed: {status}");
                }
                return;
            }
            self.check(&format!("waiting for child {i}"));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Joins `handle`, failing the test (and killing the children) if it has not
    /// finished by the outer deadline. A panic in the thread is re-raised.
    pub fn join<T>(&self, handle: JoinHandle<T>, what: &str) -> T {
        while !handle.is_finished() {
            self.check(what);
            std::thread::sleep(Duration::from_millis(1));
        }
        match handle.join() {
            Ok(v) => v,
            Err(p) => {
                kill_all(&self.kids);
                std::panic::resume_unwind(p)
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        kill_all(&self.kids);
        drop(self.stop.take());
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// Waits until `word` is non-zero (a child announced itself), up to the outer deadline.
pub fn wait_flag(sup: &Supervisor, word: &AtomicU64, what: &str) {
    while word.load(culvert_sync::atomic::Ordering::Acquire) == 0 {
        sup.check(what);
        std::thread::sleep(Duration::from_micros(200));
    }
}

// ---- PRNG and checksums -----------------------------------------------------------------

/// xorshift64: tiny, seedable, the same in every process.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(mix(seed) | 1)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `1/n`.
    #[inline]
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// splitmix64's finaliser: a good 64-bit mix.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A word-at-a-time checksum of `bytes` (order and length sensitive).
#[inline]
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// Byte-at-a-time FNV-1a, continued from `h` (chunking-independent: for streams).
#[inline]
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a's initial value.
pub const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Combines a per-message checksum into a running total (order sensitive).
#[inline]
pub fn fold(total: u64, sum: u64) -> u64 {
    total.rotate_left(5).wrapping_mul(31) ^ sum
}

// ---- self-checking messages -------------------------------------------------------------

/// Message `seq` of `out.len()` bytes: bytes `0..8` hold `seq` (LE), bytes `8..16` the
/// checksum of bytes `16..`, and bytes `16..` filler derived from `seq`; each field is cut
/// short when the message is. Returns the checksum of the whole message.
pub fn encode(seq: u64, out: &mut [u8]) -> u64 {
    let len = out.len();
    if len > 16 {
        fill_body(seq, &mut out[16..]);
    }
    let body_sum = checksum(out.get(16..).unwrap_or(&[]));
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..].copy_from_slice(&body_sum.to_le_bytes());
    let h = len.min(16);
    out[..h].copy_from_slice(&head[..h]);
    checksum(out)
}

fn fill_body(seq: u64, body: &mut [u8]) {
    let base = mix(seq ^ 0x5eed_5eed_5eed_5eed);
    let mut chunks = body.chunks_exact_mut(8);
    let mut k = 0u64;
    for c in &mut chunks {
        c.copy_from_slice(&mix(base.wrapping_add(k)).to_le_bytes());
        k += 1;
    }
    let rem = chunks.into_remainder();
    let n = rem.len();
    rem.copy_from_slice(&mix(base.wrapping_add(k)).to_le_bytes()[..n]);
}

/// Checks that `msg` is message `seq` of `expected_len` bytes, whole and untorn; returns
/// its checksum or what is wrong.
pub fn verify(seq: u64, expected_len: usize, msg: &[u8]) -> Result<u64, String> {
    if msg.len() != expected_len {
        return Err(format!(
            "message {seq}: length {} instead of {expected_len}",
            msg.len()
        ));
    }
    let mut want = [0u8; 1024];
    assert!(expected_len <= want.len());
    let want = &mut want[..expected_len];
    encode(seq, want);
    if msg != &want[..] {
        let h = msg.len().min(8);
        let mut got_seq = [0u8; 8];
        got_seq[..h].copy_from_slice(&msg[..h]);
        return Err(format!(
            "message {seq} ({expected_len} bytes) differs: it starts with seq {} \
             and its body checksum {}",
            u64::from_le_bytes(got_seq),
            if msg.len() > 16 && checksum(&msg[16..]).to_le_bytes()[..] != msg[8..16] {
                "does not match (torn)"
            } else {
                "matches"
            }
        ));
    }
    Ok(checksum(msg))
}

/// The sequence number a message (at least 8 bytes long) claims.
pub fn seq_of(msg: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(msg.get(..8)?.try_into().ok()?))
}

/// A deterministic byte stream: byte `p` is byte `p % 8` of `mix(seed ^ p / 8)`.
pub struct Stream {
    seed: u64,
    pos: u64,
    word: [u8; 8],
}

impl Stream {
    /// The stream for `seed`, at position 0.
    pub fn new(seed: u64) -> Stream {
        Stream {
            seed,
            pos: 0,
            word: mix(seed).to_le_bytes(),
        }
    }

    /// Bytes produced so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Writes the next `buf.len()` bytes of the stream into `buf`.
    #[inline]
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            let i = (self.pos & 7) as usize;
            if i == 0 {
                self.word = mix(self.seed ^ (self.pos >> 3)).to_le_bytes();
            }
            *b = self.word[i];
            self.pos += 1;
        }
    }
}
