//! A hostile peer scribbling on an SPSC ring's shared memory (any word the other process
//! can write may hold anything):
//! every call must return data or a typed error, never panic, never wait past its
//! deadline.
//!
//! * `hostile_peer_scribbling_control_words`: a child process writes random and
//!   plausible-looking values (positions nudged by a few bytes, 0, 1, all-ones, valid
//!   record headers with wrong lengths) into the ring's whole control block (the first
//!   `6 * 128` bytes) and into random data-area words, in bursts, while the parent runs a
//!   writer thread and a reader thread with short deadlines. The rounds alternate message
//!   and byte rings and every wait strategy; the ring is re-initialised between rounds.
//! * `hostile_scribbling_single_process_seeded`: the same operations and scribbles
//!   interleaved in one thread by a seeded PRNG, so a failure reproduces from its seed.
//!
//! Each call's result is checked against the errors that call may return, data lengths
//! against the buffers and the ring's limits, and its duration against its deadline.

mod common;

use culvert_ring::Endpoint as _;
use std::time::{Duration, Instant};

use common::{wait_flag, word_at, Shared};
use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::{Deadline, Error, Region, WaitStrategy};
use culvert_sync::atomic::Ordering;
use culvert_testkit::{checksum, cross_test, XorShift};

/// The SPSC control block: six 128-byte lines.
const CONTROL: usize = 6 * 128;
const CAPACITY: usize = 4096;
const MAX_MESSAGE: usize = 512;
/// A call may overrun its deadline by this much at most (scheduling on a loaded 2-core
/// machine); anything longer counts as a hang.
const OVERSHOOT_BOUND: Duration = Duration::from_secs(2);

/// Record kinds of the message ring (message, padding), to forge plausible headers.
const KIND_MSG: u64 = 0x4d53_4721;
const KIND_PAD: u64 = 0x5041_4421;

fn msg_config() -> Config {
    Config::messages(CAPACITY, MAX_MESSAGE)
}

fn byte_config() -> Config {
    Config::bytes(CAPACITY)
}

fn ring_size() -> usize {
    let m = MessageRing::required_size(&msg_config()).unwrap();
    let b = ByteRing::required_size(&byte_config()).unwrap();
    assert_eq!(m, CONTROL + CAPACITY);
    m.max(b)
}

/// One hostile store: a random word of the control block or the data area gets a random
/// or plausible value.
fn scribble(rng: &mut XorShift, ring: &Region) {
    let off = if rng.below(10) < 6 {
        rng.below((CONTROL / 8) as u64) as usize * 8
    } else {
        CONTROL + rng.below((CAPACITY / 8) as u64) as usize * 8
    };
    let w = word_at(ring, off);
    let old = w.load(Ordering::Relaxed);
    let v = match rng.below(9) {
        0 | 1 => rng.next_u64(),
        2 => old.wrapping_add(rng.below(129)).wrapping_sub(64),
        3 => old.wrapping_add(8 * rng.below(17)).wrapping_sub(64),
        4 => 0,
        5 => 1,
        6 => {
            let kind = match rng.below(3) {
                0 => KIND_MSG,
                1 => KIND_PAD,
                _ => rng.next_u64() & 0xffff_ffff,
            };
            let len = match rng.below(3) {
                0 => rng.below(MAX_MESSAGE as u64 + 16),
                1 => rng.below(CAPACITY as u64 + 16),
                _ => rng.next_u64() & 0xffff_ffff,
            };
            len | kind << 32
        }
        7 => old ^ (1 << rng.below(64)),
        _ => u64::MAX - rng.below(4),
    };
    w.store(v, Ordering::Relaxed);
}

// ---- outcome bookkeeping ----------------------------------------------------------------

const NAMES: [&str; 11] = [
    "ok",
    "WouldBlock",
    "Timeout",
    "Closed",
    "PeerDied",
    "MessageTooLarge",
    "BufferTooSmall",
    "Overrun",
    "Busy",
    "InvalidConfig",
    "Corrupted",
];

fn index(e: &Error) -> usize {
    match e {
        Error::WouldBlock => 1,
        Error::Timeout => 2,
        Error::Closed => 3,
        Error::PeerDied => 4,
        Error::MessageTooLarge { .. } => 5,
        Error::BufferTooSmall { .. } => 6,
        Error::Overrun { .. } => 7,
        Error::Busy { .. } => 8,
        Error::InvalidConfig { .. } => 9,
        Error::Corrupted { .. } => 10,
    }
}

const fn bit(i: usize) -> u32 {
    1 << i
}
/// What a write may return under a hostile peer.
const WRITE: u32 = bit(1) | bit(2) | bit(3) | bit(4) | bit(10);
/// What a read may return: a write's errors, and a too-small buffer.
const READ: u32 = WRITE | bit(6);
/// What attach may return.
const ATTACH: u32 = bit(3) | bit(8) | bit(10);

#[derive(Default, Debug, Clone)]
struct Stats {
    /// Outcomes, indexed as `NAMES`.
    outcomes: [u64; 11],
    /// Longest time a call ran past its deadline (or a `try_*` call ran at all).
    worst_overshoot: Duration,
    /// The call that overshot most, and its outcome.
    worst_call: String,
    /// Each endpoint limit (max_message or capacity) as first seen. A peer may have
    /// scribbled the config words before we attached, so this is whatever valid value
    /// attach accepted; it must never change afterwards (copied once, never re-read).
    limits_at_attach: Vec<(&'static str, usize)>,
}

impl Stats {
    /// Asserts `limit` is what this endpoint reported on its first call.
    fn check_limit_stable(&mut self, limit: usize, what: &'static str) {
        let first = match self.limits_at_attach.iter().find(|(w, _)| *w == what) {
            Some(&(_, first)) => first,
            None => {
                self.limits_at_attach.push((what, limit));
                limit
            }
        };
        assert_eq!(limit, first, "{what} is copied at attach, never re-read");
    }
}

impl Stats {
    /// Checks one call's outcome and duration.
    fn record<T>(
        &mut self,
        op: &str,
        r: &Result<T, Error>,
        allowed: u32,
        t0: Instant,
        wait: Duration,
    ) {
        let i = match r {
            Ok(_) => 0,
            Err(e) => {
                let i = index(e);
                assert!(
                    allowed & bit(i) != 0,
                    "{op} returned the unexpected error {e:?}"
                );
                i
            }
        };
        self.outcomes[i] += 1;
        let over = t0.elapsed().saturating_sub(wait);
        assert!(
            over <= OVERSHOOT_BOUND,
            "{op} ran {over:?} past its deadline of {wait:?}"
        );
        if over > self.worst_overshoot {
            self.worst_overshoot = over;
            self.worst_call = format!("{op} -> {}, deadline {wait:?}", NAMES[i]);
        }
    }

    fn merge(&mut self, o: &Stats) {
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        if o.worst_overshoot > self.worst_overshoot {
            self.worst_overshoot = o.worst_overshoot;
            self.worst_call = o.worst_call.clone();
        }
    }

    fn ok(&self) -> u64 {
        self.outcomes[0]
    }

    fn summary(&self) -> String {
        let mut s = String::new();
        for (n, c) in NAMES.iter().zip(self.outcomes) {
            if c > 0 {
                s += &format!("{n} {c}, ");
            }
        }
        s + &format!(
            "worst overshoot {:?} ({})",
            self.worst_overshoot, self.worst_call
        )
    }
}

/// A deadline of up to `max_wait` (sometimes none at all), and its length.
fn deadline(rng: &mut XorShift, max_wait: Duration) -> (Deadline, Duration) {
    if rng.one_in(4) {
        return (Deadline::now(), Duration::ZERO);
    }
    let d = Duration::from_nanos(rng.below(max_wait.as_nanos() as u64 + 1));
    (Deadline::after(d), d)
}

// ---- one random operation per endpoint kind ---------------------------------------------

fn message_writer_op(
    w: &mut MessageWriter,
    rng: &mut XorShift,
    st: &mut Stats,
    max_wait: Duration,
) {
    let max = w.max_message();
    assert!(max <= CAPACITY - 8, "validated at attach");
    st.check_limit_stable(max, "MessageWriter max_message");
    let msg = [0x5au8; CAPACITY];
    let len = rng.below(max as u64 + 1) as usize;
    let t0 = Instant::now();
    match rng.below(6) {
        0 => {
            let r = w.try_write(&msg[..len]);
            st.record("MessageWriter::try_write", &r, WRITE, t0, Duration::ZERO);
        }
        1 | 2 => {
            let (d, wait) = deadline(rng, max_wait);
            let r = w.write(&msg[..len], d);
            st.record("MessageWriter::write", &r, WRITE, t0, wait);
        }
        3 => {
            let r = w.reserve(len).map(|mut g| {
                assert_eq!(g.len(), len);
                g.as_mut_slice().fill(0xc3);
                g
            });
            let commit = rng.below(len as u64 + 2) as usize;
            let abandon = rng.one_in(4);
            let r = r.map(|g| {
                if abandon {
                    let _abandoned = g;
                } else {
                    g.commit(commit)
                }
            });
            st.record("MessageWriter::reserve", &r, WRITE, t0, Duration::ZERO);
        }
        4 => {
            let r = w.reserve(max + 1 + rng.below(10) as usize).map(|_| ());
            assert!(
                matches!(r, Err(Error::MessageTooLarge { .. })),
                "reserve beyond max_message gave {r:?}"
            );
            st.record(
                "MessageWriter::reserve(too large)",
                &r,
                bit(5),
                t0,
                Duration::ZERO,
            );
        }
        _ => {
            let r = w.write(&msg[..len], Deadline::now());
            st.record("MessageWriter::write(now)", &r, WRITE, t0, Duration::ZERO);
        }
    }
}

fn message_reader_op(
    r: &mut MessageReader,
    rng: &mut XorShift,
    st: &mut Stats,
    max_wait: Duration,
) {
    let max = r.max_message();
    assert!(max <= CAPACITY - 8, "validated at attach");
    st.check_limit_stable(max, "MessageReader max_message");
    let mut buf = [0u8; CAPACITY];
    let blen = if rng.one_in(3) {
        rng.below(max as u64 + 1) as usize
    } else {
        max
    };
    let buf = &mut buf[..blen];
    let t0 = Instant::now();
    match rng.below(6) {
        0 => {
            let res = r.try_read(buf);
            if let Ok(n) = res {
                assert!(n <= blen, "try_read returned {n} bytes into {blen}");
            }
            st.record("MessageReader::try_read", &res, READ, t0, Duration::ZERO);
        }
        1 | 2 => {
            let (d, wait) = deadline(rng, max_wait);
            let res = r.read(buf, d);
            if let Ok(n) = res {
                assert!(n <= blen, "read returned {n} bytes into {blen}");
            }
            st.record("MessageReader::read", &res, READ, t0, wait);
        }
        3 => {
            let release = !rng.one_in(4);
            let res = r.read_grant().map(|g| {
                assert!(g.len() <= max, "grant of {} bytes", g.len());
                std::hint::black_box(checksum(g.as_slice()));
                if release {
                    g.release()
                }
            });
            st.record("MessageReader::read_grant", &res, READ, t0, Duration::ZERO);
        }
        4 => {
            let res = r.peek_len();
            if let Ok(n) = res {
                assert!(n <= max, "peek_len {n}");
            }
            st.record("MessageReader::peek_len", &res, READ, t0, Duration::ZERO);
        }
        _ => {
            let (d, wait) = deadline(rng, max_wait);
            let res = r.wait_peek_len(d);
            if let Ok(n) = res {
                assert!(n <= max, "wait_peek_len {n}");
            }
            st.record("MessageReader::wait_peek_len", &res, READ, t0, wait);
        }
    }
}

fn byte_writer_op(w: &mut ByteWriter, rng: &mut XorShift, st: &mut Stats, max_wait: Duration) {
    assert!(w.capacity().is_power_of_two() && w.capacity() <= CAPACITY);
    st.check_limit_stable(w.capacity(), "ByteWriter capacity");
    let data = [0x3cu8; 2 * CAPACITY];
    let len = rng.below(2 * CAPACITY as u64 + 1) as usize;
    let t0 = Instant::now();
    match rng.below(5) {
        0 => {
            let r = w.try_write(&data[..len]);
            if let Ok(n) = r {
                assert!(n <= len, "try_write wrote {n} of {len}");
            }
            st.record("ByteWriter::try_write", &r, WRITE, t0, Duration::ZERO);
        }
        1 => {
            let (d, wait) = deadline(rng, max_wait);
            let r = w.write(&data[..len], d);
            if let Ok(n) = r {
                assert!(n <= len && (n > 0 || len == 0), "write wrote {n} of {len}");
            }
            st.record("ByteWriter::write", &r, WRITE, t0, wait);
        }
        2 => {
            let (d, wait) = deadline(rng, max_wait);
            let r = w.write_all(&data[..len.min(CAPACITY)], d);
            st.record("ByteWriter::write_all", &r, WRITE, t0, wait);
        }
        _ => {
            let max = rng.below(CAPACITY as u64 + 64) as usize;
            let commit = rng.below(max as u64 + 2) as usize;
            let abandon = rng.one_in(4);
            let r = w.reserve(max).map(|mut g| {
                assert!(
                    !g.is_empty() && g.len() <= max,
                    "grant of {} for {max}",
                    g.len()
                );
                g.as_mut_slice().fill(0x99);
                if abandon {
                    let _abandoned = g;
                } else {
                    g.commit(commit)
                }
            });
            st.record("ByteWriter::reserve", &r, WRITE, t0, Duration::ZERO);
        }
    }
}

fn byte_reader_op(r: &mut ByteReader, rng: &mut XorShift, st: &mut Stats, max_wait: Duration) {
    assert!(r.capacity().is_power_of_two() && r.capacity() <= CAPACITY);
    st.check_limit_stable(r.capacity(), "ByteReader capacity");
    let mut buf = [0u8; 2 * CAPACITY];
    let blen = rng.below(2 * CAPACITY as u64 + 1) as usize;
    let buf = &mut buf[..blen];
    let t0 = Instant::now();
    match rng.below(6) {
        0 => {
            let res = r.try_read(buf);
            if let Ok(n) = res {
                assert!(n <= blen.min(CAPACITY), "try_read returned {n} into {blen}");
            }
            st.record("ByteReader::try_read", &res, READ, t0, Duration::ZERO);
        }
        1 => {
            let (d, wait) = deadline(rng, max_wait);
            let res = r.read(buf, d);
            if let Ok(n) = res {
                assert!(n <= blen.min(CAPACITY), "read returned {n} into {blen}");
            }
            st.record("ByteReader::read", &res, READ, t0, wait);
        }
        2 => {
            let (d, wait) = deadline(rng, max_wait);
            let res = r.read_exact(&mut buf[..blen.min(64)], d);
            st.record("ByteReader::read_exact", &res, READ, t0, wait);
        }
        3 | 4 => {
            let release = rng.below(CAPACITY as u64 + 2) as usize;
            let res = r.read_grant().map(|g| {
                assert!(!g.is_empty() && g.len() <= CAPACITY, "grant of {}", g.len());
                std::hint::black_box(checksum(g.as_slice()));
                g.release(release)
            });
            st.record("ByteReader::read_grant", &res, READ, t0, Duration::ZERO);
        }
        _ => {
            let res = r.bytes_available();
            if let Ok(n) = res {
                assert!(n <= CAPACITY, "bytes_available {n}");
            }
            st.record(
                "ByteReader::bytes_available",
                &res,
                READ,
                t0,
                Duration::ZERO,
            );
        }
    }
}

// ---- cross-process: a scribbling child --------------------------------------------------

/// Control words (in the page before the ring).
const W_STOP: usize = 0;
const W_SCRIBBLES: usize = 1;
const W_STARTED: usize = 2;

const ROUNDS: u64 = 18;
const ROUND: Duration = Duration::from_millis(150);
/// Longest deadline a blocking call is given.
const MAX_WAIT: Duration = Duration::from_millis(10);

fn scribbler(sh: &Shared, seed: u64) {
    let mut rng = XorShift::new(seed);
    let give_up = Instant::now() + Duration::from_secs(120);
    sh.word(W_STARTED).store(1, Ordering::Release);
    while sh.word(W_STOP).load(Ordering::Acquire) == 0 && Instant::now() < give_up {
        let burst = rng.below(8) + 1;
        for _ in 0..burst {
            scribble(&mut rng, &sh.ring);
        }
        sh.word(W_SCRIBBLES).fetch_add(burst, Ordering::Relaxed);
        // Quiet spells let the ring work between bursts.
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
    }
}

/// Attaches with `attach` until it succeeds or `until` passes; records every failure.
fn attach_until<T>(
    what: &str,
    until: Instant,
    st: &mut Stats,
    mut attach: impl FnMut() -> Result<T, Error>,
) -> Option<T> {
    while Instant::now() < until {
        let t0 = Instant::now();
        let r = attach();
        st.record(what, &r, ATTACH, t0, Duration::ZERO);
        if let Ok(e) = r {
            return Some(e);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Runs `op` on an endpoint attached with `attach` until `until`.
#[allow(clippy::too_many_arguments)] // a test helper: plain parameters read best
fn endpoint_thread<E: Send + 'static>(
    what: &'static str,
    ring: Region,
    seed: u64,
    strategy: WaitStrategy,
    until: Instant,
    attach: fn(&Region) -> Result<E, Error>,
    set_strategy: fn(&mut E, WaitStrategy),
    op: fn(&mut E, &mut XorShift, &mut Stats, Duration),
) -> std::thread::JoinHandle<Stats> {
    std::thread::spawn(move || {
        let mut st = Stats::default();
        let mut rng = XorShift::new(seed);
        let Some(mut e) = attach_until(what, until, &mut st, || attach(&ring)) else {
            return st;
        };
        set_strategy(&mut e, strategy);
        while Instant::now() < until {
            op(&mut e, &mut rng, &mut st, MAX_WAIT);
        }
        st
    })
}

#[test]
fn hostile_peer_scribbling_control_words() {
    let test = cross_test!(hostile_peer_scribbling_control_words);
    let size = ring_size();
    if let Some((role, file, seed)) = common::role() {
        assert_eq!(role, "scribbler");
        scribbler(&Shared::open(&file, size), seed);
        return;
    }
    let start = Instant::now();
    let sh = Shared::create(size);
    MessageRing::init(&sh.ring, &msg_config()).unwrap();
    let sup = test.supervise(Duration::from_secs(60));
    let child = sup.spawn(&mut common::child(test, "scribbler", &sh.path, 0x5c21_bb1e));
    wait_flag(&sup, sh.word(W_STARTED), "waiting for the scribbler");
    let mut writers = Stats::default();
    let mut readers = Stats::default();
    let mut rng = XorShift::new(0x0405_711e);
    for round in 0..ROUNDS {
        let strategy = [
            WaitStrategy::Adaptive,
            WaitStrategy::Blocking,
            WaitStrategy::BusyPoll,
        ][(round / 2 % 3) as usize];
        let until = Instant::now() + ROUND;
        let (w, r) = if round % 2 == 0 {
            MessageRing::init(&sh.ring, &msg_config()).unwrap();
            (
                endpoint_thread(
                    "MessageWriter::attach",
                    sh.ring.clone(),
                    rng.next_u64(),
                    strategy,
                    until,
                    MessageWriter::attach,
                    MessageWriter::set_wait_strategy,
                    message_writer_op,
                ),
                endpoint_thread(
                    "MessageReader::attach",
                    sh.ring.clone(),
                    rng.next_u64(),
                    strategy,
                    until,
                    MessageReader::attach,
                    MessageReader::set_wait_strategy,
                    message_reader_op,
                ),
            )
        } else {
            ByteRing::init(&sh.ring, &byte_config()).unwrap();
            (
                endpoint_thread(
                    "ByteWriter::attach",
                    sh.ring.clone(),
                    rng.next_u64(),
                    strategy,
                    until,
                    ByteWriter::attach,
                    ByteWriter::set_wait_strategy,
                    byte_writer_op,
                ),
                endpoint_thread(
                    "ByteReader::attach",
                    sh.ring.clone(),
                    rng.next_u64(),
                    strategy,
                    until,
                    ByteReader::attach,
                    ByteReader::set_wait_strategy,
                    byte_reader_op,
                ),
            )
        };
        writers.merge(&sup.join(w, "the writer thread ran"));
        readers.merge(&sup.join(r, "the reader thread ran"));
    }
    sh.word(W_STOP).store(1, Ordering::Release);
    sup.wait_ok(child);
    let scribbles = sh.word(W_SCRIBBLES).load(Ordering::Relaxed);
    eprintln!(
        "{ROUNDS} rounds in {:?}, {scribbles} scribbles\n  writers: {}\n  readers: {}",
        start.elapsed(),
        writers.summary(),
        readers.summary()
    );
    assert!(scribbles > 100, "the scribbler hardly ran: {scribbles}");
    assert!(
        writers.ok() > 0 && readers.ok() > 0,
        "the ring never worked between bursts"
    );
    assert!(
        writers.outcomes[index(&Error::Corrupted { what: "" })]
            + readers.outcomes[index(&Error::Corrupted { what: "" })]
            > 0,
        "no corruption was ever detected: the scribbles missed"
    );
}

// ---- single process, seeded -------------------------------------------------------------

const SEEDS: u64 = 32;
const EPOCHS: u64 = 12;
const OPS_PER_EPOCH: u64 = 600;

#[test]
fn hostile_scribbling_single_process_seeded() {
    let start = Instant::now();
    let region = Region::heap(ring_size()).unwrap();
    let mut total = Stats::default();
    let max_wait = Duration::from_micros(100);
    for seed in 0..SEEDS {
        let mut rng = XorShift::new(seed);
        let mut st = Stats::default();
        for epoch in 0..EPOCHS {
            // One scribble in `rate` operations: from rare to constant.
            let rate = [2, 8, 50, 400][(epoch % 4) as usize];
            if epoch % 2 == 0 {
                MessageRing::init(&region, &msg_config()).unwrap();
                let mut w = MessageWriter::attach(&region).unwrap();
                let mut r = MessageReader::attach(&region).unwrap();
                for _ in 0..OPS_PER_EPOCH {
                    match rng.below(rate) {
                        0 => scribble(&mut rng, &region),
                        x if x % 2 == 0 => message_writer_op(&mut w, &mut rng, &mut st, max_wait),
                        _ => message_reader_op(&mut r, &mut rng, &mut st, max_wait),
                    }
                }
            } else {
                ByteRing::init(&region, &byte_config()).unwrap();
                let mut w = ByteWriter::attach(&region).unwrap();
                let mut r = ByteReader::attach(&region).unwrap();
                for _ in 0..OPS_PER_EPOCH {
                    match rng.below(rate) {
                        0 => scribble(&mut rng, &region),
                        x if x % 2 == 0 => byte_writer_op(&mut w, &mut rng, &mut st, max_wait),
                        _ => byte_reader_op(&mut r, &mut rng, &mut st, max_wait),
                    }
                }
            }
            // Attaching to a scribbled ring is typed too.
            let t0 = Instant::now();
            if epoch % 2 == 0 {
                let a = MessageWriter::attach(&region).map(drop);
                st.record("MessageWriter::attach", &a, ATTACH, t0, Duration::ZERO);
                let a = MessageReader::attach(&region).map(drop);
                st.record("MessageReader::attach", &a, ATTACH, t0, Duration::ZERO);
            } else {
                let a = ByteWriter::attach(&region).map(drop);
                st.record("ByteWriter::attach", &a, ATTACH, t0, Duration::ZERO);
                let a = ByteReader::attach(&region).map(drop);
                st.record("ByteReader::attach", &a, ATTACH, t0, Duration::ZERO);
            }
        }
        total.merge(&st);
    }
    eprintln!(
        "{SEEDS} seeds × {EPOCHS} epochs × {OPS_PER_EPOCH} ops in {:?}: {}",
        start.elapsed(),
        total.summary()
    );
    assert!(total.ok() > 0);
}
