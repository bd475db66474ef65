//! Cross-process tests of the MPMC rings: real processes (this test binary re-executed
//! with a role in `CULVERT_MPMC_ROLE`) share a file mapped `MAP_SHARED`.
//!
//! * `mpmc_three_producers_two_consumers`: 3 producer × 2 consumer processes; none lost,
//!   none duplicated, per-producer order kept.
//! * `mpmc_byte_ring_writers_never_interleave`: 4 writer processes, 512-byte records.
//! * `mpmc_kill_random_peer`: repeated runs SIGKILLing a random producer or consumer at
//!   a random point; survivors finish and every committed message is accounted for.
//!
//! Every test has an outer deadline that kills its children and fails.

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use culvert_ring::mpmc::{
    ByteReader, ByteRing, ByteWriter, Config, Consumer, MessageRing, Producer,
};
use culvert_ring::{Deadline, Error, Region};
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
        // SAFETY: `ptr..ptr+len` is the mapping made in `map_file`, unmapped once.
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

/// The shared test file: a page of control words, the ring, then a bitmap of messages
/// seen (one bit per producer × sequence), so duplicates and losses are checked across
/// consumer processes.
struct Shared {
    region: Region,
    ring: Region,
    bitmap_off: usize,
}

impl Shared {
    fn layout(ring_size: usize, messages: usize) -> (usize, usize) {
        let ring_len = ring_size.div_ceil(PAGE) * PAGE;
        let bitmap_off = PAGE + ring_len;
        (bitmap_off, bitmap_off + messages.div_ceil(64) * 8)
    }

    fn open(path: &Path, ring_size: usize, messages: usize, create: bool) -> Shared {
        let (bitmap_off, total) = Self::layout(ring_size, messages);
        let region = map_file(path, total, create);
        assert!(region.len() >= total);
        let ring = region.subregion(PAGE, bitmap_off - PAGE).unwrap();
        Shared {
            region,
            ring,
            bitmap_off,
        }
    }

    /// Control word `i` of the first page.
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < PAGE / 8);
        // SAFETY: inside the first page, 8-aligned, alive with `self.region`.
        unsafe { &*self.region.as_ptr().add(i * 8).cast() }
    }

    /// Sets the bit of message `index`; returns whether it was already set.
    fn mark(&self, index: usize) -> bool {
        // SAFETY: the bitmap covers every message index the test uses (layout), 8-aligned.
        let w: &AtomicU64 = unsafe {
            &*self
                .region
                .as_ptr()
                .add(self.bitmap_off + (index / 64) * 8)
                .cast()
        };
        let bit = 1u64 << (index % 64);
        w.fetch_or(bit, Ordering::AcqRel) & bit != 0
    }

    fn is_marked(&self, index: usize) -> bool {
        // SAFETY: as in `mark`.
        let w: &AtomicU64 = unsafe {
            &*self
                .region
                .as_ptr()
                .add(self.bitmap_off + (index / 64) * 8)
                .cast()
        };
        w.load(Ordering::Acquire) & (1u64 << (index % 64)) != 0
    }
}

/// Control words.
const W_STARTED: usize = 0;
/// `W_COMMITTED + p`: messages producer `p` saw committed (store after each send).
const W_COMMITTED: usize = 8;

const ROLE: &str = "CULVERT_MPMC_ROLE";
const FILE: &str = "CULVERT_MPMC_FILE";

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

fn role() -> Option<(String, std::path::PathBuf)> {
    let role = std::env::var(ROLE).ok()?;
    let file = std::env::var_os(FILE)?;
    Some((role, file.into()))
}

fn enc(id: u64, seq: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&id.to_le_bytes());
    m[8..].copy_from_slice(&seq.to_le_bytes());
    m
}

fn dec(m: &[u8]) -> (u64, u64) {
    assert_eq!(m.len(), 16, "message length");
    (
        u64::from_le_bytes(m[..8].try_into().unwrap()),
        u64::from_le_bytes(m[8..].try_into().unwrap()),
    )
}

// ---- 3 producers × 2 consumers -----------------------------------------------------------

const MP_PRODUCERS: u64 = 3;
const MP_CONSUMERS: usize = 2;
/// Messages per producer. 1,000,000 as the brief asks; see the report for runtimes.
const MP_PER: u64 = 1_000_000;

fn mp_config() -> Config {
    Config::new(1024, 32)
}

#[test]
fn mpmc_three_producers_two_consumers() {
    const NAME: &str = "mpmc_three_producers_two_consumers";
    let messages = (MP_PRODUCERS * MP_PER) as usize;
    let ring_size = MessageRing::required_size(&mp_config()).unwrap();
    if let Some((role, file)) = role() {
        let sh = Shared::open(&file, ring_size, messages, false);
        let (kind, id) = role.split_once(':').unwrap();
        let id: u64 = id.parse().unwrap();
        match kind {
            "producer" => {
                let mut p = Producer::attach(&sh.ring).unwrap();
                for seq in 0..MP_PER {
                    p.send(&enc(id, seq), Deadline::after(Duration::from_secs(60)))
                        .unwrap();
                }
            }
            "consumer" => {
                let mut c = Consumer::attach(&sh.ring).unwrap();
                let mut last = [None::<u64>; MP_PRODUCERS as usize];
                let mut buf = [0u8; 32];
                loop {
                    match c.recv(&mut buf, Deadline::after(Duration::from_secs(60))) {
                        Ok(n) => {
                            let (pid, seq) = dec(&buf[..n]);
                            assert!(pid < MP_PRODUCERS && seq < MP_PER);
                            if let Some(prev) = last[pid as usize] {
                                assert!(seq > prev, "order: producer {pid} {seq} after {prev}");
                            }
                            last[pid as usize] = Some(seq);
                            assert!(!sh.mark((pid * MP_PER + seq) as usize), "duplicate");
                        }
                        Err(Error::Closed) => break,
                        Err(e) => panic!("consumer: {e}"),
                    }
                }
            }
            _ => unreachable!(),
        }
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ring");
    let sh = Shared::open(&file, ring_size, messages, true);
    MessageRing::init(&sh.ring, &mp_config()).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(240);
    let mut children: Vec<Option<Child>> = Vec::new();
    for id in 0..MP_PRODUCERS {
        children.push(Some(spawn(NAME, &format!("producer:{id}"), &file)));
    }
    for id in 0..MP_CONSUMERS {
        children.push(Some(spawn(NAME, &format!("consumer:{id}"), &file)));
    }
    for i in 0..MP_PRODUCERS as usize {
        wait_child(&mut children, i, deadline, "producer");
    }
    let closer = Consumer::attach(&sh.ring).unwrap();
    closer.close();
    for i in MP_PRODUCERS as usize..children.len() {
        wait_child(&mut children, i, deadline, "consumer");
    }
    let missing = (0..messages).filter(|&i| !sh.is_marked(i)).count();
    assert_eq!(missing, 0, "messages lost");
    eprintln!(
        "{} messages through 3×2 processes in {:?}",
        messages,
        start.elapsed()
    );
}

// ---- byte ring: 4 writer processes -------------------------------------------------------

const BR_WRITERS: u64 = 4;
const BR_READERS: usize = 2;
const BR_RECORDS: u64 = 20_000;
const REC: usize = 512;

fn br_config() -> Config {
    Config::bytes(64, REC)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn record(id: u64, seq: u64) -> [u8; REC] {
    let mut r = [0u8; REC];
    r[..8].copy_from_slice(&id.to_le_bytes());
    r[8..16].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in r[24..].iter_mut().enumerate() {
        *b = (id as u8)
            .wrapping_mul(31)
            .wrapping_add(seq as u8)
            .wrapping_add(i as u8);
    }
    let sum = checksum(&r[24..]) ^ id ^ seq.rotate_left(17);
    r[16..24].copy_from_slice(&sum.to_le_bytes());
    r
}

#[test]
fn mpmc_byte_ring_writers_never_interleave() {
    const NAME: &str = "mpmc_byte_ring_writers_never_interleave";
    let messages = (BR_WRITERS * BR_RECORDS) as usize;
    let ring_size = ByteRing::required_size(&br_config()).unwrap();
    if let Some((role, file)) = role() {
        let sh = Shared::open(&file, ring_size, messages, false);
        let (kind, id) = role.split_once(':').unwrap();
        let id: u64 = id.parse().unwrap();
        match kind {
            "writer" => {
                let mut w = ByteWriter::attach(&sh.ring).unwrap();
                for seq in 0..BR_RECORDS {
                    w.write_all(&record(id, seq), Deadline::after(Duration::from_secs(60)))
                        .unwrap();
                }
            }
            "reader" => {
                let mut r = ByteReader::attach(&sh.ring).unwrap();
                let mut rec = [0u8; REC];
                let mut last = [None::<u64>; BR_WRITERS as usize];
                loop {
                    match r.read_exact(&mut rec, Deadline::after(Duration::from_secs(60))) {
                        Ok(()) => {
                            let id = u64::from_le_bytes(rec[..8].try_into().unwrap());
                            let seq = u64::from_le_bytes(rec[8..16].try_into().unwrap());
                            assert!(id < BR_WRITERS && seq < BR_RECORDS, "interleaved header");
                            assert_eq!(rec, record(id, seq), "interleaved or torn record");
                            if let Some(prev) = last[id as usize] {
                                assert!(seq > prev);
                            }
                            last[id as usize] = Some(seq);
                            assert!(!sh.mark((id * BR_RECORDS + seq) as usize), "duplicate");
                        }
                        Err(Error::Closed) => {
                            assert_eq!(r.buffered(), 0);
                            break;
                        }
                        Err(e) => panic!("reader: {e}"),
                    }
                }
            }
            _ => unreachable!(),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ring");
    let sh = Shared::open(&file, ring_size, messages, true);
    ByteRing::init(&sh.ring, &br_config()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut children: Vec<Option<Child>> = Vec::new();
    for id in 0..BR_WRITERS {
        children.push(Some(spawn(NAME, &format!("writer:{id}"), &file)));
    }
    for id in 0..BR_READERS {
        children.push(Some(spawn(NAME, &format!("reader:{id}"), &file)));
    }
    for i in 0..BR_WRITERS as usize {
        wait_child(&mut children, i, deadline, "writer");
    }
    ByteReader::attach(&sh.ring).unwrap().close();
    for i in BR_WRITERS as usize..children.len() {
        wait_child(&mut children, i, deadline, "reader");
    }
    let missing = (0..messages).filter(|&i| !sh.is_marked(i)).count();
    assert_eq!(missing, 0, "records lost");
}

// ---- kill a random peer --------------------------------------------------------------------

const KP_PRODUCERS: u64 = 2;
const KP_CONSUMERS: u64 = 2;
const KP_PER: u64 = 12_000;
/// Runs of the kill test (each kills one random producer or consumer).
const KP_RUNS: usize = 100;

fn kp_config() -> Config {
    Config::new(8, 16)
}

fn kill_child_role(sh: &Shared, kind: &str, id: u64) {
    sh.word(W_STARTED).fetch_add(1, Ordering::AcqRel);
    let long = || Deadline::after(Duration::from_secs(30));
    match kind {
        "producer" => {
            let mut p = Producer::attach(&sh.ring).unwrap();
            for seq in 0..KP_PER {
                p.send(&enc(id, seq), long()).unwrap();
                sh.word(W_COMMITTED + id as usize)
                    .store(seq + 1, Ordering::Release);
            }
        }
        "consumer" => {
            let mut c = Consumer::attach(&sh.ring).unwrap();
            let mut last = [None::<u64>; KP_PRODUCERS as usize];
            loop {
                // Mark inside the in-place receive, before the slot is released: a kill
                // after the claim leaves the message either marked or counted lost
                // (or both, if killed between marking and releasing).
                let r = c.recv_with(
                    |m| {
                        let (pid, seq) = dec(m);
                        assert!(pid < KP_PRODUCERS && seq < KP_PER);
                        if let Some(prev) = last[pid as usize] {
                            assert!(seq > prev, "order");
                        }
                        last[pid as usize] = Some(seq);
                        assert!(!sh.mark((pid * KP_PER + seq) as usize), "duplicate");
                        // Now and then linger while holding the slot, so kills land
                        // inside the claim window too.
                        if seq % 512 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    },
                    long(),
                );
                match r {
                    Ok(()) => {}
                    Err(Error::Closed) => break,
                    Err(e) => panic!("consumer: {e}"),
                }
            }
        }
        _ => unreachable!(),
    }
}

fn kill_run(name: &str, run: usize, dir: &Path) -> (bool, u64) {
    use rand::Rng;
    let mut rng = rand::rng();
    let messages = (KP_PRODUCERS * KP_PER) as usize;
    let ring_size = MessageRing::required_size(&kp_config()).unwrap();
    let file = dir.join(format!("kill-{run}"));
    let sh = Shared::open(&file, ring_size, messages, true);
    MessageRing::init(&sh.ring, &kp_config()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut children: Vec<Option<Child>> = Vec::new();
    for id in 0..KP_PRODUCERS {
        children.push(Some(spawn(name, &format!("producer:{id}"), &file)));
    }
    for id in 0..KP_CONSUMERS {
        children.push(Some(spawn(name, &format!("consumer:{id}"), &file)));
    }
    while sh.word(W_STARTED).load(Ordering::Acquire) < KP_PRODUCERS + KP_CONSUMERS {
        if Instant::now() >= deadline {
            kill_all(&mut children);
            panic!("children did not start");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_micros(rng.random_range(0..40_000)));
    let victim = rng.random_range(0..children.len());
    let victim_is_consumer = victim >= KP_PRODUCERS as usize;
    {
        let c = children[victim].as_mut().unwrap();
        let _ = c.kill(); // SIGKILL
        let _ = c.wait(); // reap, so it is gone (not a zombie) for liveness checks
        children[victim] = None;
    }
    for i in 0..KP_PRODUCERS as usize {
        if children[i].is_some() {
            wait_child(&mut children, i, deadline, "producer");
        }
    }
    let parent = Consumer::attach(&sh.ring).unwrap();
    parent.close();
    for i in KP_PRODUCERS as usize..children.len() {
        if children[i].is_some() {
            wait_child(&mut children, i, deadline, "consumer");
        }
    }
    // A dead consumer may still hold a slot no producer came back for: free it now.
    parent.reclaim_dead().unwrap();
    let stats = parent.stats();
    let mut missing = 0u64;
    for p in 0..KP_PRODUCERS {
        let committed = sh.word(W_COMMITTED + p as usize).load(Ordering::Acquire);
        let killed_producer = !victim_is_consumer && victim == p as usize;
        if !killed_producer {
            assert_eq!(committed, KP_PER);
        }
        for seq in 0..KP_PER {
            let seen = sh.is_marked((p * KP_PER + seq) as usize);
            if seq < committed && !seen {
                missing += 1;
            }
            // A killed producer commits at most one message it did not record.
            if seen && seq > committed {
                panic!("run {run}: producer {p} message {seq} delivered but never sent");
            }
        }
    }
    if victim_is_consumer {
        assert!(stats.lost_to_dead_consumers <= 1, "run {run}: {stats:?}");
        assert!(
            missing <= stats.lost_to_dead_consumers,
            "run {run}: {missing} committed messages unaccounted for, {stats:?}"
        );
    } else {
        assert_eq!(missing, 0, "run {run}: committed messages lost, {stats:?}");
        assert_eq!(stats.lost_to_dead_consumers, 0);
        assert!(stats.abandoned_by_dead_producers <= 1);
    }
    drop(sh);
    let _ = std::fs::remove_file(&file);
    (
        victim_is_consumer,
        stats.lost_to_dead_consumers + stats.abandoned_by_dead_producers,
    )
}

#[test]
fn mpmc_kill_random_peer() {
    const NAME: &str = "mpmc_kill_random_peer";
    if let Some((role, file)) = role() {
        let ring_size = MessageRing::required_size(&kp_config()).unwrap();
        let sh = Shared::open(&file, ring_size, (KP_PRODUCERS * KP_PER) as usize, false);
        let (kind, id) = role.split_once(':').unwrap();
        kill_child_role(&sh, kind, id.parse().unwrap());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (mut consumer_kills, mut dead_slots) = (0, 0);
    let mut runs = 0;
    for run in 0..KP_RUNS {
        let (c, d) = kill_run(NAME, run, dir.path());
        consumer_kills += c as usize;
        dead_slots += d;
        runs += 1;
        if start.elapsed() > Duration::from_secs(90) {
            break;
        }
    }
    eprintln!(
        "{runs} kill runs ({consumer_kills} consumer kills, {dead_slots} dead-held slots \
         recovered) in {:?}",
        start.elapsed()
    );
    assert!(runs >= 20, "too few kill runs finished in time");
}
