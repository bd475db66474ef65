//! SIGKILL a peer of an SPSC `MessageRing` at a random point, 100 times each way.
//!
//! * `writer_killed_at_random_point`: a child writer sends self-checking, sequence-numbered
//!   messages (by `write` and by `reserve`/`commit`, so the kill can land inside a grant)
//!   and stores how many it committed after each one; the parent reader must receive
//!   exactly messages `0..n`, whole and in order, with `committed <= n <= committed + 1`,
//!   then `Error::PeerDied` within a bounded time. A new writer then takes over the ring
//!   and its first message is `n`: nothing half-written is visible.
//! * `reader_killed_at_random_point`: a child reader checks every message and stores how
//!   many it read after each one; the parent writer, blocked on the full ring, must get
//!   `PeerDied` within a bounded time. A new reader then takes over and drains: the first
//!   message it sees is the dead reader's count (or one past it, if the kill fell between
//!   its read and its count store), and the rest follow up to the last one sent — nothing
//!   lost, nothing duplicated.

mod common;

use culvert_ring::Endpoint as _;
use std::time::{Duration, Instant};

use common::{encode, verify, wait_flag, Shared};
use culvert_ring::spsc::{Config, MessageReader, MessageRing, MessageWriter};
use culvert_ring::{Deadline, Error, WaitStrategy};
use culvert_sync::atomic::Ordering;
use culvert_testkit::{cross_test, mix, ChildId, CrossTest, Supervisor, XorShift};

/// Runs per test.
const RUNS: u64 = 100;
/// Longest random delay between the child attaching and its SIGKILL.
const MAX_DELAY_US: u64 = 15_000;
/// How long after the SIGKILL the survivor may take to report `PeerDied`: the liveness
/// interval plus ample room for a loaded 2-core machine.
const DETECT_BOUND: Duration = Duration::from_secs(3);
/// Per-call deadline: a hang shows as `Timeout`, well before the outer deadline.
const CALL: Duration = Duration::from_secs(20);
const MAX_MESSAGE: usize = 200;

/// Control words.
const W_ATTACHED: usize = 0;
/// Messages the child writer committed / the child reader consumed.
const W_COUNT: usize = 1;
/// Set (to `1 + seq`) by the child reader when a message was wrong.
const W_ERROR: usize = 2;

fn config() -> Config {
    // Small, so the writer often waits for room and the kill lands in every state.
    Config::messages(2048, MAX_MESSAGE)
}

/// The length of message `seq`, known to both sides.
fn msg_len(seq: u64) -> usize {
    (mix(seq ^ 0x1e57) % (MAX_MESSAGE as u64 + 1)) as usize
}

fn strategy(seed: u64) -> WaitStrategy {
    match seed % 3 {
        0 => WaitStrategy::Adaptive,
        1 => WaitStrategy::Blocking,
        _ => WaitStrategy::BusyPoll,
    }
}

/// In a re-executed child: runs `body` as `expected` on the shared file; true if so.
fn run_child(expected: &str, size: usize, body: fn(&Shared, u64)) -> bool {
    let Some((role, file, seed)) = common::role() else {
        return false;
    };
    assert_eq!(role, expected);
    body(&Shared::open(&file, size), seed);
    true
}

/// In the parent: `RUNS` runs of `one_run(run, seed, delay)` with seeds and kill delays
/// drawn from `seed`; prints the totals.
fn run_all(
    victim: &str,
    seed: u64,
    mut one_run: impl FnMut(u64, u64, Duration) -> (u64, Duration),
) {
    let start = Instant::now();
    let mut rng = XorShift::new(seed);
    let mut worst = Duration::ZERO;
    let mut total_messages = 0;
    for run in 0..RUNS {
        let seed = rng.next_u64();
        let delay = Duration::from_micros(rng.below(MAX_DELAY_US + 1));
        let (n, detect) = one_run(run, seed, delay);
        worst = worst.max(detect);
        total_messages += n;
    }
    eprintln!(
        "{RUNS} {victim} kills in {:?}: {total_messages} messages, PeerDied at most {worst:?} after SIGKILL",
        start.elapsed()
    );
}

/// A fresh ring in a fresh file, and the run's supervisor.
fn new_run(test: CrossTest, size: usize) -> (Shared, Supervisor) {
    let sh = Shared::create(size);
    MessageRing::init(&sh.ring, &config()).unwrap();
    (sh, test.supervise(Duration::from_secs(60)))
}

/// Waits until the child `role` attached, sleeps `delay`, and SIGKILLs it (it must not
/// have exited by itself); returns when the signal was sent.
fn kill_after(
    sup: &Supervisor,
    sh: &Shared,
    child: ChildId,
    role: &str,
    delay: Duration,
    run: u64,
) -> Instant {
    wait_flag(
        sup,
        sh.word(W_ATTACHED),
        &format!("waiting for the {role} to attach"),
    );
    std::thread::sleep(delay);
    sup.kill(child);
    let killed_at = Instant::now();
    let status = sup.wait(child);
    assert!(
        !status.success(),
        "run {run}: the {role} exited by itself: {status}"
    );
    killed_at
}

/// How long after the kill at `killed_at` the survivor saw `PeerDied` (at `ended_at`);
/// at most [`DETECT_BOUND`].
fn detect_time(killed_at: Instant, ended_at: Instant, run: u64) -> Duration {
    let detect = ended_at.saturating_duration_since(killed_at);
    assert!(
        detect <= DETECT_BOUND,
        "run {run}: PeerDied came {detect:?} after the kill"
    );
    detect
}

fn child_writer(sh: &Shared, seed: u64) {
    let mut w = MessageWriter::attach(&sh.ring).unwrap();
    w.set_wait_strategy(strategy(seed));
    sh.word(W_ATTACHED).store(1, Ordering::Release);
    let mut buf = [0u8; MAX_MESSAGE];
    for seq in 0.. {
        let len = msg_len(seq);
        let mut done = false;
        if seq % 3 == 0 {
            if let Ok(mut g) = w.reserve(len) {
                encode(seq, g.as_mut_slice());
                g.commit(len);
                done = true;
            }
        }
        if !done {
            encode(seq, &mut buf[..len]);
            // Ends the child (by panic) only if the parent vanished: it is killed first.
            w.write(&buf[..len], Deadline::after(CALL)).unwrap();
        }
        sh.word(W_COUNT).store(seq + 1, Ordering::Release);
    }
}

#[test]
fn writer_killed_at_random_point() {
    let test = cross_test!(writer_killed_at_random_point);
    let size = MessageRing::required_size(&config()).unwrap();
    if run_child("writer", size, child_writer) {
        return;
    }
    run_all("writer", 0x6b11_1ed0, |run, seed, delay| {
        writer_run(test, size, run, seed, delay)
    });
}

/// One run; returns the messages received and how long after the kill `PeerDied` came.
fn writer_run(
    test: CrossTest,
    size: usize,
    run: u64,
    seed: u64,
    delay: Duration,
) -> (u64, Duration) {
    let (sh, sup) = new_run(test, size);
    let mut r = MessageReader::attach(&sh.ring).unwrap();
    r.set_wait_strategy(strategy(seed >> 8));
    let child = sup.spawn(&mut common::child(test, "writer", &sh.path, seed));
    let reader = std::thread::spawn(move || {
        let mut rng = XorShift::new(seed);
        let mut buf = [0u8; MAX_MESSAGE];
        let mut n = 0u64;
        loop {
            if rng.one_in(512) {
                // Let the ring fill now and then, so the writer also dies while waiting.
                std::thread::sleep(Duration::from_micros(300));
            }
            let got = if rng.one_in(4) {
                match r.wait_peek_len(Deadline::after(CALL)) {
                    Ok(_) => {
                        let g = r.read_grant().expect("grant after a successful peek");
                        let v = verify(n, msg_len(n), g.as_slice());
                        g.release();
                        v.map(|_| ())
                    }
                    Err(e) => return (r, n, Err(e), Instant::now()),
                }
            } else {
                match r.read(&mut buf, Deadline::after(CALL)) {
                    Ok(len) => verify(n, msg_len(n), &buf[..len]).map(|_| ()),
                    Err(e) => return (r, n, Err(e), Instant::now()),
                }
            };
            if let Err(what) = got {
                return (r, n, Ok(what), Instant::now());
            }
            n += 1;
        }
    });
    let killed_at = kill_after(&sup, &sh, child, "writer", delay, run);
    let (mut r, n, end, ended_at) = sup.join(reader, "reading until PeerDied");
    let committed = sh.word(W_COUNT).load(Ordering::Acquire);
    match end {
        Err(Error::PeerDied) => {}
        Ok(bad) => panic!("run {run} (seed {seed:#x}): {bad}"),
        Err(e) => panic!("run {run} (seed {seed:#x}): reader ended with {e:?} instead of PeerDied after {n} messages"),
    }
    let detect = detect_time(killed_at, ended_at, run);
    assert!(
        n >= committed && n <= committed + 1,
        "run {run} (seed {seed:#x}): received {n} messages, the writer counted {committed} committed"
    );
    // Nothing more is readable, and a new writer can take the dead one's place: its first
    // message follows the last one received, so no half-written record is visible.
    let mut buf = [0u8; MAX_MESSAGE];
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock), "run {run}");
    let mut w = MessageWriter::attach(&sh.ring).expect("taking over from a dead writer");
    let mut msg = [0u8; MAX_MESSAGE];
    let len = msg_len(n);
    encode(n, &mut msg[..len]);
    w.write(&msg[..len], Deadline::after(CALL)).unwrap();
    w.close();
    let got = r.read(&mut buf, Deadline::after(CALL)).unwrap();
    verify(n, len, &buf[..got]).unwrap_or_else(|e| panic!("run {run}: after takeover: {e}"));
    assert_eq!(r.read(&mut buf, Deadline::after(CALL)), Err(Error::Closed));
    (n, detect)
}

// ---- reader killed ----------------------------------------------------------------------

fn child_reader(sh: &Shared, seed: u64) {
    let mut r = MessageReader::attach(&sh.ring).unwrap();
    r.set_wait_strategy(strategy(seed));
    sh.word(W_ATTACHED).store(1, Ordering::Release);
    let mut rng = XorShift::new(seed);
    let mut buf = [0u8; MAX_MESSAGE];
    for seq in 0.. {
        if rng.one_in(512) {
            std::thread::sleep(Duration::from_micros(300));
        }
        let ok = if rng.one_in(4) {
            r.wait_peek_len(Deadline::after(CALL)).unwrap();
            let g = r.read_grant().unwrap();
            let ok = verify(seq, msg_len(seq), g.as_slice());
            g.release();
            ok
        } else {
            let n = r.read(&mut buf, Deadline::after(CALL)).unwrap();
            verify(seq, msg_len(seq), &buf[..n])
        };
        if let Err(e) = ok {
            sh.word(W_ERROR).store(seq + 1, Ordering::Release);
            panic!("{e}");
        }
        sh.word(W_COUNT).store(seq + 1, Ordering::Release);
    }
}

#[test]
fn reader_killed_at_random_point() {
    let test = cross_test!(reader_killed_at_random_point);
    let size = MessageRing::required_size(&config()).unwrap();
    if run_child("reader", size, child_reader) {
        return;
    }
    run_all("reader", 0x4ead_e4d0, |run, seed, delay| {
        reader_run(test, size, run, seed, delay)
    });
}

/// One run; returns the messages sent and how long after the kill `PeerDied` came.
fn reader_run(
    test: CrossTest,
    size: usize,
    run: u64,
    seed: u64,
    delay: Duration,
) -> (u64, Duration) {
    let (sh, sup) = new_run(test, size);
    let mut w = MessageWriter::attach(&sh.ring).unwrap();
    w.set_wait_strategy(strategy(seed >> 8));
    let child = sup.spawn(&mut common::child(test, "reader", &sh.path, seed));
    let writer = std::thread::spawn(move || {
        let mut rng = XorShift::new(seed ^ 0x77);
        let mut msg = [0u8; MAX_MESSAGE];
        let mut sent = 0u64;
        loop {
            let len = msg_len(sent);
            let r = if rng.one_in(4) {
                match w.reserve(len) {
                    Ok(mut g) => {
                        encode(sent, g.as_mut_slice());
                        g.commit(len);
                        Ok(())
                    }
                    Err(Error::WouldBlock) => {
                        encode(sent, &mut msg[..len]);
                        w.write(&msg[..len], Deadline::after(CALL))
                    }
                    Err(e) => Err(e),
                }
            } else {
                encode(sent, &mut msg[..len]);
                w.write(&msg[..len], Deadline::after(CALL))
            };
            match r {
                Ok(()) => sent += 1,
                Err(e) => return (w, sent, e, Instant::now()),
            }
        }
    });
    let killed_at = kill_after(&sup, &sh, child, "reader", delay, run);
    let (mut w, sent, end, ended_at) = sup.join(writer, "writing until PeerDied");
    assert_eq!(
        sh.word(W_ERROR).load(Ordering::Acquire),
        0,
        "run {run} (seed {seed:#x}): the reader saw a wrong message"
    );
    assert_eq!(
        end,
        Error::PeerDied,
        "run {run} (seed {seed:#x}): the writer ended with {end:?} after {sent} messages"
    );
    let detect = detect_time(killed_at, ended_at, run);
    let acked = sh.word(W_COUNT).load(Ordering::Acquire);
    assert!(
        acked <= sent,
        "run {run}: reader acknowledged {acked} of {sent} sent"
    );

    // A new reader takes over and drains the rest: it starts where the dead one stopped.
    let mut r = MessageReader::attach(&sh.ring).expect("taking over from a dead reader");
    let mut buf = [0u8; MAX_MESSAGE];
    let mut drained: Vec<Vec<u8>> = Vec::new();
    loop {
        match r.try_read(&mut buf) {
            Ok(len) => drained.push(buf[..len].to_vec()),
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("run {run}: draining: {e}"),
        }
    }
    // Every message sent was committed, so what is left must be the last ones sent.
    let first = sent
        .checked_sub(drained.len() as u64)
        .unwrap_or_else(|| panic!("run {run}: {} left in the ring, {sent} sent", drained.len()));
    for (i, m) in drained.iter().enumerate() {
        let seq = first + i as u64;
        verify(seq, msg_len(seq), m)
            .unwrap_or_else(|e| panic!("run {run} (seed {seed:#x}): draining: {e}"));
    }
    assert!(
        first == acked || first == acked + 1,
        "run {run} (seed {seed:#x}): the ring resumes at message {first}, the dead reader acknowledged {acked}"
    );
    // The writer goes on with the new reader.
    let len = msg_len(sent);
    let mut msg = [0u8; MAX_MESSAGE];
    encode(sent, &mut msg[..len]);
    w.write(&msg[..len], Deadline::after(CALL)).unwrap();
    let got = r.read(&mut buf, Deadline::after(CALL)).unwrap();
    verify(sent, len, &buf[..got]).unwrap_or_else(|e| panic!("run {run}: after takeover: {e}"));
    (sent, detect)
}
