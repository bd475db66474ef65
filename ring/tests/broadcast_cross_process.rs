//! Cross-process tests of the broadcast ring: real processes (this test binary
//! re-executed with a role, `common::role`) share a file mapped `MAP_SHARED`
//! (`common::Shared`).
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

mod common;

use std::time::{Duration, Instant};

use common::Shared;
use culvert_ring::broadcast::{Config, Reader, Ring, Writer};
use culvert_ring::{Deadline, Error, WaitStrategy};
use culvert_sync::atomic::Ordering;
use culvert_testkit::{cross_test, fnv1a, FNV_START};

const CAPACITY: usize = 256;
const MAX_MESSAGE: usize = 64;
const MESSAGES: u64 = 50_000;
const END: u64 = u64::MAX;

/// Bytes of the ring's part of the shared file (whole pages).
fn ring_size() -> usize {
    let ring = Ring::required_size(&Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
    ring.div_ceil(common::PAGE) * common::PAGE
}

/// Control words: readers attached; then per reader (fast = 0, slow = 1) delivered and
/// missed counts.
const W_READY: usize = 0;
const W_DELIVERED: usize = 8;
const W_MISSED: usize = 16;

/// Message `seq`: `seq`, checksum of the payload, payload of `seq % 49` bytes.
fn encode(seq: u64, out: &mut [u8; MAX_MESSAGE]) -> usize {
    let n = (seq % 49) as usize;
    for (i, b) in out[16..16 + n].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i * 7) as u8;
    }
    let sum = fnv1a(FNV_START, &out[16..16 + n]);
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
        w.write(&msg[..n]).unwrap();
        if seq % 64 == 0 {
            // Give the fast reader a core now and then (the machines may have two).
            std::thread::yield_now();
        }
    }
    msg[..8].copy_from_slice(&END.to_le_bytes());
    w.write(&msg[..8]).unwrap();
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
        match r.read(&mut buf, Deadline::after(Duration::from_secs(30))) {
            Ok(n) => {
                assert!(n >= 8, "short message");
                let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                if seq == END {
                    break;
                }
                assert!(n >= 16, "short message");
                let sum = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                assert_eq!(n, 16 + (seq % 49) as usize, "length of message {seq}");
                assert_eq!(
                    sum,
                    fnv1a(FNV_START, &buf[16..n]),
                    "checksum of message {seq}"
                );
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
    let test = cross_test!(broadcast_writer_fast_and_slow_reader_processes);
    if let Some((role, file, _)) = common::role() {
        let shared = Shared::open(&file, ring_size());
        match role.as_str() {
            "writer" => run_writer(&shared),
            "fast" => run_reader(&shared, 0, false),
            "slow" => run_reader(&shared, 1, true),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let shared = Shared::create(ring_size());
    Ring::init(&shared.ring, &Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
    let sup = test.supervise(Duration::from_secs(120));
    let fast = sup.spawn(&mut common::child(test, "fast", &shared.path, 0));
    let slow = sup.spawn(&mut common::child(test, "slow", &shared.path, 0));
    let writer = sup.spawn(&mut common::child(test, "writer", &shared.path, 0));
    sup.wait_ok(writer);
    sup.wait_ok(fast);
    sup.wait_ok(slow);
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
    let test = cross_test!(broadcast_dead_writer_process_entry_is_reclaimed);
    if let Some((role, file, _)) = common::role() {
        let shared = Shared::open(&file, ring_size());
        assert_eq!(role, "leaker");
        // Attach every free entry, send, and exit without detaching.
        let mut writers = Vec::new();
        while let Ok(w) = Writer::attach(&shared.ring) {
            writers.push(w);
        }
        writers[0].write(b"from the dead").unwrap();
        std::process::exit(0);
    }
    let shared = Shared::create(ring_size());
    Ring::init(&shared.ring, &Config::new(CAPACITY, MAX_MESSAGE)).unwrap();
    let mut reader = Reader::attach(&shared.ring).unwrap();
    let sup = test.supervise(Duration::from_secs(60));
    let leaker = sup.spawn(&mut common::child(test, "leaker", &shared.path, 0));
    sup.wait_ok(leaker);
    let mut buf = [0u8; MAX_MESSAGE];
    let n = reader.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the dead");
    // Every table entry names the dead process: all can be taken over.
    let mut w = Writer::attach(&shared.ring).unwrap();
    w.write(b"alive").unwrap();
    let n = reader.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"alive");
}
