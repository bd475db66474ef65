#![cfg(loom)]
//! loom models of the broadcast ring: the production claim / seqlock-copy / commit
//! protocol, overrun accounting and Notifier wake-ups, on tiny rings in heap memory.
//!
//! Slot data are stored and loaded as relaxed atomic words (also in production), so
//! loom checks the seqlock's fences: a reader that could return a torn or stale
//! message would fail the per-message pattern check below.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert-loom-tests
//! --release --target-dir target/loom --test broadcast`.

use culvert_ring::broadcast::{Config, Reader, Ring, Writer};
use culvert_ring::{Deadline, Error, Region, WaitStrategy};
use loom::thread;

fn ring(slots: usize) -> Region {
    let cfg = Config::new(slots, 16);
    let region = Region::heap(Ring::required_size(&cfg).unwrap()).unwrap();
    Ring::init(&region, &cfg).unwrap();
    region
}

/// Message `i`: 9 bytes (two data words) of `i + 1`, so a copy mixing two writes of
/// the slot is visible.
fn message(i: u8) -> [u8; 9] {
    [i + 1; 9]
}

/// Checks a received message and returns its index.
fn check(buf: &[u8], n: usize) -> u8 {
    assert_eq!(n, 9, "length");
    let first = buf[0];
    assert!(
        buf[..n].iter().all(|&b| b == first),
        "torn message {:?}",
        &buf[..n]
    );
    assert!((1..=3).contains(&first), "garbage message {:?}", &buf[..n]);
    first - 1
}

/// Reads until `total` messages are accounted for (delivered or missed); returns the
/// indices delivered and the count missed.
fn drain(reader: &mut Reader, total: u64, blocking: bool) -> (Vec<u8>, u64) {
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    let mut missed = 0;
    while got.len() as u64 + missed < total {
        let r = if blocking {
            reader.read(&mut buf, Deadline::never())
        } else {
            reader.try_read(&mut buf)
        };
        match r {
            Ok(n) => got.push(check(&buf, n)),
            Err(Error::Overrun { missed: m }) => missed += m,
            Err(Error::WouldBlock) => thread::yield_now(),
            Err(e) => panic!("reader: {e}"),
        }
    }
    (got, missed)
}

fn assert_in_order(got: &[u8]) {
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
}

/// A 2-slot ring, a writer writing 3 messages while a reader polls: messages arrive in
/// order, none torn, delivered + missed = 3, and the newest is always delivered.
#[test]
fn writer_three_messages_polling_reader() {
    loom::model(|| {
        let r = ring(2);
        let mut w = Writer::attach(&r).unwrap();
        let mut reader = Reader::attach(&r).unwrap();
        let writer = thread::spawn(move || {
            for i in 0..3u8 {
                w.write(&message(i)).unwrap();
            }
        });
        let (got, missed) = drain(&mut reader, 3, false);
        writer.join().unwrap();
        assert_in_order(&got);
        assert_eq!(got.len() as u64 + missed, 3);
        assert_eq!(reader.missed_total(), missed);
        assert_eq!(
            got.last(),
            Some(&2),
            "the last message is never overwritten"
        );
    });
}

/// The same with a reader that sleeps on the Notifier (`Blocking`, no deadline): a
/// lost wake-up would leave it parked for ever, which loom reports as a deadlock.
#[test]
fn writer_three_messages_blocking_reader() {
    loom::model(|| {
        let r = ring(2);
        let mut w = Writer::attach(&r).unwrap();
        let mut reader = Reader::attach(&r).unwrap();
        reader.set_wait_strategy(WaitStrategy::Blocking);
        let writer = thread::spawn(move || {
            for i in 0..3u8 {
                w.write(&message(i)).unwrap();
            }
        });
        let (got, missed) = drain(&mut reader, 3, true);
        writer.join().unwrap();
        assert_in_order(&got);
        assert_eq!(got.len() as u64 + missed, 3);
    });
}

/// Two writers racing for the positions of a 1-slot ring (claim CAS, tail helping,
/// and a writer lapping another's in-progress copy, which must become a gap rather than
/// a torn slot); a reader polls. Whatever it receives is whole, and the ring ends with
/// one of the two messages committed.
#[test]
fn two_writers_one_slot_never_tear() {
    loom::model(|| {
        let r = ring(1);
        let mut reader = Reader::attach(&r).unwrap();
        let writers: Vec<_> = (0..2u8)
            .map(|i| {
                let mut w = Writer::attach(&r).unwrap();
                thread::spawn(move || w.write(&message(i)).unwrap())
            })
            .collect();
        let mut buf = [0u8; 16];
        // One look while the writers run.
        if let Ok(n) = reader.try_read(&mut buf) {
            check(&buf, n);
        }
        for w in writers {
            w.join().unwrap();
        }
        // Afterwards the reader reaches the last committed message.
        let mut last = None;
        loop {
            match reader.try_read(&mut buf) {
                Ok(n) => last = Some(check(&buf, n)),
                Err(Error::Overrun { .. }) => {}
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("reader: {e}"),
            }
        }
        let mut late = Reader::attach(&r).unwrap();
        assert_eq!(late.try_read(&mut buf), Err(Error::WouldBlock));
        let _ = last;
    });
}
