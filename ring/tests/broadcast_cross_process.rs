//! Cross-process tests of the broadcast ring: real processes (this test binary
//! re-executed with a role in `CULVERT_BCAST_ROLE`) share a file mapped `MAP_SHARED`.
//!
//! * `broadcast_writer_fast_and_slow_reader_processes`: one writer process, one fast
//!   and one deliberately slow reader process. Each reader checks every message's
//!   checksum and order, and that `delivered + missed == sent`; the slow one must have
//!   been overrun. The end is a final marker message: nothing is written after it, so it
//!   is never overwritten and even the slow reader receives it.
//! * `broadcast_dead_writer_process_entry_is_reclaimed`: a writer process exits without
//!   detaching; its writer-table entry is taken over by a new writer.
//!
//! Every test has an outer deadline that kills its children and fails.

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use culvert_ring::broadcast::{Config, Reader, Ring, Writer};
use culvert_ring::{Deadline, Error, Region, WaitStrategy};
use culvert_sync::atomic::{AtomicU64, Ordering};

// ---- a MAP_SHARED file mapping (std has no mmap; these are the libc symbols std links) --

extern "C" {
    fn mmap(addr: *mut c_void, len: usize, prot: i32, flags: i32, fd: i32, off: i64)
        -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> i32;
}
const PROT_READ_WRITE: i32 = 0x1 | 0x2;
const MAP_SHARED: i32 = 0x01;

struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; it is only unmapped in Drop.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` exposes nothing.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is the mapping made in `map_file`, unmapped once here.
        unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Maps `path` (creating it with `len` bytes when `create`) shared, as a [`Region`].
fn map_file(path: &Path, len: usize, create: bool) -> Region {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .unwrap();
    if create {
        file.set_len(len as u64).unwrap();
    }
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: a fresh shared mapping of an open file; the kernel picks the address.
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            PROT_READ_WRITE,
            MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert!(p as isize != -1, "mmap failed");
    let ptr = NonNull::new(p.cast::<u8>()).unwrap();
    let owner = Arc::new(Mapping { ptr, len });
    // SAFETY: the mapping stays valid for reads and writes while `owner` lives.
    unsafe { Region::from_raw_parts(ptr, len, owner) }
}

const PAGE: usize = 4096;
const CAPACITY: usize = 256;
const MAX_MESSAGE: usize = 64;
const MESSAGES: u64 = 50_000;
const END: u64 = u64::MAX;

/// The shared file: a page of control words, then the ring.
struct Shared {
    region: Region,
    ring: Region,
}

impl Shared {
    fn size() -> usize {
        let ring = Ring::required_size(&Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
        PAGE + ring.div_ceil(PAGE) * PAGE
    }

    fn open(path: &Path, create: bool) -> Shared {
        let region = map_file(path, Self::size(), create);
        assert!(region.len() >= Self::size());
        let ring = region.subregion(PAGE, region.len() - PAGE).unwrap();
        Shared { region, ring }
    }

    /// Control word `i` of the first page.
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < PAGE / 8);
        // SAFETY: inside the first page, 8-aligned (the mapping is page-aligned), alive
        // with `self.region`, and only ever accessed atomically.
        unsafe { &*self.region.as_ptr().add(i * 8).cast() }
    }
}

/// Control words: readers attached; then per reader (fast = 0, slow = 1) delivered and
/// missed counts.
const W_READY: usize = 0;
const W_DELIVERED: usize = 8;
const W_MISSED: usize = 16;

const ROLE: &str = "CULVERT_BCAST_ROLE";
const FILE: &str = "CULVERT_BCAST_FILE";

fn spawn(test: &str, role: &str, file: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(FILE, file)
        .spawn()
        .unwrap()
}

/// Kills every child still running.
fn kill_all(children: &mut [Option<Child>]) {
    for c in children.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Waits for child `i` to exit successfully before `deadline`; kills all on failure.
fn wait_child(children: &mut [Option<Child>], i: usize, deadline: Instant, what: &str) {
    loop {
        let status = children[i].as_mut().unwrap().try_wait().unwrap();
        if let Some(status) = status {
            children[i] = None;
            if !status.success() {
                kill_all(children);
                panic!("{what} (child {i}) failed: {status}");
            }
            return;
        }
        if Instant::now() >= deadline {
            kill_all(children);
            panic!("{what} (child {i}) did not finish before the outer deadline");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn role() -> Option<(String, PathBuf)> {
    let role = std::env::var(ROLE).ok()?;
    let file = std::env::var_os(FILE)?;
    Some((role, file.into()))
}

/// FNV-1a over `bytes`.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Message `seq`: `seq`, checksum of the payload, payload of `seq % 49` bytes.
fn encode(seq: u64, out: &mut [u8; MAX_MESSAGE]) -> usize {
    let n = (seq % 49) as usize;
    for (i, b) in out[16..16 + n].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i * 7) as u8;
    }
    let sum = checksum(&out[16..16 + n]);
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&sum.to_le_bytes());
    16 + n
}

fn run_writer(shared: &Shared) {
    let mut w = Writer::attach(&shared.ring).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.word(W_READY).load(Ordering::Acquire) < 2 {
        assert!(Instant::now() < deadline, "readers never attached");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut msg = [0u8; MAX_MESSAGE];
    for seq in 0..MESSAGES {
        let n = encode(seq, &mut msg);
        w.send(&msg[..n]).unwrap();
        if seq % 64 == 0 {
            // Give the fast reader a core now and then (the machines may have two).
            std::thread::yield_now();
        }
    }
    msg[..8].copy_from_slice(&END.to_le_bytes());
    w.send(&msg[..8]).unwrap();
}

fn run_reader(shared: &Shared, index: usize, slow: bool) {
    let mut r = Reader::attach(&shared.ring).unwrap();
    r.set_wait_strategy(if slow {
        WaitStrategy::Blocking
    } else {
        WaitStrategy::Adaptive
    });
    shared.word(W_READY).fetch_add(1, Ordering::AcqRel);
    let mut buf = [0u8; MAX_MESSAGE];
    let (mut delivered, mut missed) = (0u64, 0u64);
    let mut next = 0u64;
    loop {
        match r.recv(&mut buf, Deadline::after(Duration::from_secs(30))) {
            Ok(n) => {
                assert!(n >= 8, "short message");
                let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                if seq == END {
                    break;
                }
                assert!(n >= 16, "short message");
                let sum = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                assert_eq!(n, 16 + (seq % 49) as usize, "length of message {seq}");
                assert_eq!(sum, checksum(&buf[16..n]), "checksum of message {seq}");
                assert!(seq >= next, "message {seq} after {next}: out of order");
                next = seq + 1;
                delivered += 1;
                if slow && delivered % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(Error::Overrun { missed: m }) => missed += m,
            Err(e) => panic!("reader {index}: {e}"),
        }
    }
    assert_eq!(r.missed_total(), missed);
    shared
        .word(W_DELIVERED + index)
        .store(delivered, Ordering::Release);
    shared
        .word(W_MISSED + index)
        .store(missed, Ordering::Release);
    assert_eq!(delivered + missed, MESSAGES, "reader {index} (slow={slow})");
}

#[test]
fn broadcast_writer_fast_and_slow_reader_processes() {
    const TEST: &str = "broadcast_writer_fast_and_slow_reader_processes";
    if let Some((role, file)) = role() {
        let shared = Shared::open(&file, false);
        match role.as_str() {
            "writer" => run_writer(&shared),
            "fast" => run_reader(&shared, 0, false),
            "slow" => run_reader(&shared, 1, true),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bcast");
    let shared = Shared::open(&path, true);
    Ring::init(&shared.ring, &Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut children = vec![
        Some(spawn(TEST, "fast", &path)),
        Some(spawn(TEST, "slow", &path)),
        Some(spawn(TEST, "writer", &path)),
    ];
    wait_child(&mut children, 2, deadline, "writer");
    wait_child(&mut children, 0, deadline, "fast reader");
    wait_child(&mut children, 1, deadline, "slow reader");
    for (i, name) in ["fast", "slow"].iter().enumerate() {
        let d = shared.word(W_DELIVERED + i).load(Ordering::Acquire);
        let m = shared.word(W_MISSED + i).load(Ordering::Acquire);
        eprintln!("{name} reader: delivered {d}, missed {m}");
        assert_eq!(d + m, MESSAGES, "{name} reader");
    }
    assert!(
        shared.word(W_MISSED + 1).load(Ordering::Acquire) > 0,
        "the slow reader should have been overrun"
    );
}

#[test]
fn broadcast_dead_writer_process_entry_is_reclaimed() {
    const TEST: &str = "broadcast_dead_writer_process_entry_is_reclaimed";
    if let Some((role, file)) = role() {
        let shared = Shared::open(&file, false);
        assert_eq!(role, "leaker");
        // Attach every free entry, send, and exit without detaching.
        let mut writers = Vec::new();
        while let Ok(w) = Writer::attach(&shared.ring) {
            writers.push(w);
        }
        writers[0].send(b"from the dead").unwrap();
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bcast");
    let shared = Shared::open(&path, true);
    Ring::init(&shared.ring, &Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
    let mut reader = Reader::attach(&shared.ring).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut children = vec![Some(spawn(TEST, "leaker", &path))];
    wait_child(&mut children, 0, deadline, "leaker");
    let mut buf = [0u8; MAX_MESSAGE];
    let n = reader.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the dead");
    // Every table entry names the dead process: all can be taken over.
    let mut w = Writer::attach(&shared.ring).unwrap();
    w.send(b"alive").unwrap();
    let n = reader.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"alive");
}
