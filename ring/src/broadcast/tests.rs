//! Heap-backed unit tests of the broadcast ring.

use std::sync::Arc;
use std::time::Duration;

use culvert_sync::atomic::{AtomicBool, Ordering};

use super::control::{Stamp, MAX_WRITERS};
use super::core::BroadcastCore;
use super::*;
use crate::{Deadline, Error, WaitStrategy};

fn ring(capacity: usize, max_message: usize) -> Region {
    let config = Config::new(capacity, max_message);
    let region = Region::heap(Ring::required_size(&config).unwrap()).unwrap();
    Ring::init(&region, &config).unwrap();
    region
}

#[test]
fn every_reader_gets_every_message_in_order() {
    let region = ring(16, 32);
    let mut w = Writer::attach(&region).unwrap();
    let mut readers: Vec<Reader> = (0..3).map(|_| Reader::attach(&region).unwrap()).collect();
    let mut buf = [0u8; 32];
    for r in &mut readers {
        assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    }
    for round in 0..5u32 {
        for i in 0..10u32 {
            w.write(&(round * 100 + i).to_le_bytes()).unwrap();
        }
        for r in &mut readers {
            for i in 0..10u32 {
                assert_eq!(r.try_read(&mut buf), Ok(4));
                assert_eq!(
                    u32::from_le_bytes(buf[..4].try_into().unwrap()),
                    round * 100 + i
                );
            }
            assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
        }
    }
    for r in &readers {
        assert_eq!(r.missed_total(), 0);
        assert_eq!(r.delivered(), 50);
        assert_eq!(r.reader_count(), 3);
    }
    assert_eq!(w.tail(), Ok(50));
    assert_eq!(w.fill(), Ok(16));
}

#[test]
fn overrun_reports_exactly_what_was_missed() {
    let region = ring(8, 16);
    let mut w = Writer::attach(&region).unwrap();
    let mut r = Reader::attach(&region).unwrap();
    for i in 0..20u8 {
        w.write(&[i; 3]).unwrap();
    }
    assert_eq!(r.lag(), Ok(20));
    let mut buf = [0u8; 16];
    assert_eq!(r.try_read(&mut buf), Err(Error::Overrun { missed: 12 }));
    for i in 12..20u8 {
        assert_eq!(r.try_read(&mut buf), Ok(3));
        assert_eq!(&buf[..3], &[i; 3]);
    }
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    assert_eq!(r.missed_total(), 12);
    // Again, from the middle.
    for i in 0..5u8 {
        w.write(&[i]).unwrap();
    }
    assert_eq!(r.try_read(&mut buf), Ok(1));
    for i in 0..30u8 {
        w.write(&[i]).unwrap();
    }
    // Read 1 of 35; 34 left but only 8 held → 26 missed.
    assert_eq!(r.try_read(&mut buf), Err(Error::Overrun { missed: 26 }));
    assert_eq!(r.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], 22);
    assert_eq!(r.missed_total(), 38);
}

#[test]
fn zero_length_and_max_size_messages() {
    for max in [0usize, 1, 7, 8, 9, 100, 4096] {
        let region = ring(4, max);
        let mut w = Writer::attach(&region).unwrap();
        let mut r = Reader::attach(&region).unwrap();
        let mut buf = vec![0u8; max + 8];
        w.write(&[]).unwrap();
        let big: Vec<u8> = (0..max).map(|i| (i * 7 + 3) as u8).collect();
        w.write(&big).unwrap();
        assert_eq!(
            w.write(&vec![1u8; max + 1]),
            Err(Error::MessageTooLarge { len: max + 1, max })
        );
        assert_eq!(r.try_read(&mut buf), Ok(0));
        assert_eq!(r.try_read(&mut buf), Ok(max));
        assert_eq!(&buf[..max], &big[..]);
        assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
        assert_eq!(w.tail(), Ok(2), "a rejected message takes no position");
    }
}

#[test]
fn short_buffer_leaves_the_message_in_the_ring() {
    let region = ring(4, 64);
    let mut w = Writer::attach(&region).unwrap();
    let mut r = Reader::attach(&region).unwrap();
    w.write(&[9u8; 40]).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        r.try_read(&mut small),
        Err(Error::BufferTooSmall {
            needed: 40,
            got: 10
        })
    );
    let mut buf = [0u8; 64];
    assert_eq!(r.try_read(&mut buf), Ok(40));
}

#[test]
fn readers_join_late_and_leave() {
    let region = ring(8, 8);
    let mut w = Writer::attach(&region).unwrap();
    let mut buf = [0u8; 8];
    w.write(b"before").unwrap();
    let mut r = Reader::attach(&region).unwrap();
    assert_eq!(r.position(), 1);
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    w.write(b"after").unwrap();
    assert_eq!(r.try_read(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"after");
    drop(r);
    let r2 = Reader::attach(&region).unwrap();
    assert_eq!(r2.reader_count(), 1);
}

#[test]
fn recv_waits_and_times_out() {
    let region = ring(8, 8);
    let mut r = Reader::attach(&region).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        r.read(&mut buf, Deadline::after(Duration::from_millis(20))),
        Err(Error::Timeout)
    );
    let region2 = region.clone();
    let t = std::thread::spawn(move || {
        let mut w = Writer::attach(&region2).unwrap();
        for _ in 0..2 {
            std::thread::sleep(Duration::from_millis(30));
            w.write(b"wake").unwrap();
        }
    });
    for strategy in [WaitStrategy::Blocking, WaitStrategy::Adaptive] {
        r.set_wait_strategy(strategy);
        assert_eq!(
            r.read(&mut buf, Deadline::after(Duration::from_secs(10))),
            Ok(4)
        );
    }
    t.join().unwrap();
}

#[test]
fn attach_rejects_garbage_and_bad_configs() {
    assert!(Ring::required_size(&Config::new(3, 8)).is_err());
    assert!(Ring::required_size(&Config::new(0, 8)).is_err());
    let region = Region::heap(64 * 1024).unwrap();
    assert!(matches!(
        Reader::attach(&region),
        Err(Error::Corrupted { .. })
    ));
    assert!(matches!(
        Writer::attach(&region),
        Err(Error::Corrupted { .. })
    ));
    let small = Region::heap(256).unwrap();
    assert!(Ring::init(&small, &Config::new(8, 8)).is_err());
}

#[test]
fn writer_table_is_bounded_and_released() {
    let region = ring(4, 8);
    let writers: Vec<Writer> = (0..MAX_WRITERS)
        .map(|_| Writer::attach(&region).unwrap())
        .collect();
    assert!(matches!(Writer::attach(&region), Err(Error::Busy { .. })));
    drop(writers);
    let _w = Writer::attach(&region).unwrap();
}

/// Raw access to a ring's shared words, to play a dead or slow peer.
fn core(region: &Region) -> BroadcastCore {
    BroadcastCore::attach(region).unwrap()
}

#[test]
fn a_writer_dead_mid_write_is_skipped_not_counted() {
    let region = ring(8, 8);
    let c = core(&region);
    let mut w = Writer::attach(&region).unwrap();
    let mut r = Reader::attach(&region).unwrap();
    let mut buf = [0u8; 8];
    // A dead writer (pid 0 = nobody) in table entry 5 claimed position 0 and died.
    c.ctl().writers.owners[5].store(0, Ordering::Relaxed);
    c.slot(0)
        .stamp
        .store(Stamp::pack(Stamp::writing(0), 5, false), Ordering::Release);
    c.ctl().tail.tail.store(1, Ordering::Release);
    w.write(b"next").unwrap();
    // try_read is stuck behind position 0 until a liveness interval passes.
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    // read checks liveness within the interval and skips the dead writer's position.
    assert_eq!(
        r.read(&mut buf, Deadline::after(Duration::from_secs(5))),
        Ok(4)
    );
    assert_eq!(&buf[..4], b"next");
    assert_eq!(r.missed_total(), 0);
    let s = Stamp::unpack(c.slot(0).stamp.load(Ordering::Acquire));
    assert!(s.gap && !s.in_progress());
}

#[test]
fn a_writer_lapping_a_dead_writer_reclaims_its_slot() {
    let region = ring(2, 8);
    let c = core(&region);
    let mut w = Writer::attach(&region).unwrap();
    // Dead writer (entry 3, empty = dead) stuck on position 0.
    c.slot(0)
        .stamp
        .store(Stamp::pack(Stamp::writing(0), 3, false), Ordering::Release);
    c.ctl().tail.tail.store(1, Ordering::Release);
    let mut r = Reader::attach(&region).unwrap();
    w.write(b"one").unwrap(); // position 1
    w.write(b"two").unwrap(); // position 2 = slot 0, reclaimed
    let s = Stamp::unpack(c.slot(0).stamp.load(Ordering::Acquire));
    assert_eq!(s.seq, Stamp::committed(2));
    let mut buf = [0u8; 8];
    assert_eq!(r.try_read(&mut buf), Ok(3));
    assert_eq!(r.try_read(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"two");
}

#[test]
fn a_live_stalled_writer_becomes_a_gap_and_is_never_torn() {
    let region = ring(2, 8);
    let c = core(&region);
    let mut slow = Writer::attach(&region).unwrap();
    let slow_index = (0..MAX_WRITERS)
        .find(|&i| c.ctl().writers.owners[i].load(Ordering::Relaxed) != 0)
        .unwrap();
    let mut w = Writer::attach(&region).unwrap();
    let mut r = Reader::attach(&region).unwrap();
    // Simulate `slow` claiming position 0 and stalling mid-copy (its process lives).
    c.slot(0).stamp.store(
        Stamp::pack(Stamp::writing(0), slow_index, false),
        Ordering::Release,
    );
    c.ctl().tail.tail.store(1, Ordering::Release);
    w.write(b"p1").unwrap();
    let start = std::time::Instant::now();
    w.write(b"p3").unwrap(); // position 2 is slot 0: waits, then gives it up as a gap
    assert!(start.elapsed() >= Duration::from_millis(50));
    let s = Stamp::unpack(c.slot(0).stamp.load(Ordering::Acquire));
    assert_eq!(
        (s.seq, s.owner, s.gap),
        (Stamp::writing(2), slow_index, true)
    );
    assert_eq!(w.tail(), Ok(4));
    // The stalled writer "finishes": its commit turns the slot into a committed gap.
    let _ = &mut slow;
    c.slot(0).stamp.store(
        Stamp::pack(Stamp::committed(2), slow_index, true),
        Ordering::Release,
    );
    let mut buf = [0u8; 8];
    // Reader at 0: slot 0 now names position 2 → overrun of 2 (positions 0 and 1),
    // then the gap at 2 is skipped and p3 (position 3) arrives.
    assert_eq!(r.try_read(&mut buf), Err(Error::Overrun { missed: 2 }));
    assert_eq!(r.try_read(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"p3");
    // The next lap of slot 0 is a normal claim again.
    w.write(b"p4").unwrap();
    assert_eq!(r.try_read(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"p4");
}

#[test]
fn corrupted_values_poison_the_endpoint() {
    let region = ring(8, 8);
    let c = core(&region);
    let mut w = Writer::attach(&region).unwrap();
    let mut r = Reader::attach(&region).unwrap();
    w.write(b"x").unwrap();
    c.slot(0).len.store(1000, Ordering::Relaxed);
    let mut buf = [0u8; 8];
    assert!(matches!(r.try_read(&mut buf), Err(Error::Corrupted { .. })));
    c.slot(0).len.store(1, Ordering::Relaxed);
    assert!(
        matches!(r.try_read(&mut buf), Err(Error::Corrupted { .. })),
        "poisoned"
    );
    // A stamp naming another slot's position.
    c.slot(1).stamp.store(
        Stamp::pack(Stamp::committed(2), 0, false),
        Ordering::Relaxed,
    );
    assert!(matches!(w.write(b"y"), Err(Error::Corrupted { .. })));
}

/// 3 writers × 2 readers, per-writer sequence numbers: for each reader
/// `delivered + missed == sent`, each writer's messages arrive in order, none twice,
/// none torn.
#[test]
fn three_writers_two_readers_account_for_everything() {
    const WRITERS: usize = 3;
    const PER_WRITER: u64 = 20_000;
    const KEY: u64 = 0x5a5a_5a5a_5a5a_5a5a;
    let region = ring(64, 24);
    let start = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for slow in [false, true] {
        let mut r = Reader::attach(&region).unwrap();
        let finished = finished.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 24];
            let mut next = [0u64; WRITERS];
            let (mut delivered, mut missed) = (0u64, 0u64);
            let mut n = 0u64;
            loop {
                match r.read(&mut buf, Deadline::after(Duration::from_millis(50))) {
                    Ok(len) => {
                        assert_eq!(len, 24);
                        let wi = u64::from_le_bytes(buf[0..8].try_into().unwrap()) as usize;
                        let seq = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                        let check = u64::from_le_bytes(buf[16..24].try_into().unwrap());
                        assert_eq!(check, seq ^ KEY ^ wi as u64, "torn message");
                        assert!(seq >= next[wi], "writer {wi}: {seq} after {}", next[wi]);
                        next[wi] = seq + 1;
                        delivered += 1;
                    }
                    Err(Error::Overrun { missed: m }) => missed += m,
                    Err(Error::Timeout) if finished.load(Ordering::Acquire) => break,
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("reader: {e}"),
                }
                n += 1;
                if slow && n % 16 == 0 {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            assert_eq!(r.missed_total(), missed);
            assert_eq!(r.delivered(), delivered);
            (delivered, missed, slow)
        }));
    }
    let mut writers = Vec::new();
    for wi in 0..WRITERS {
        let mut w = Writer::attach(&region).unwrap();
        let start = start.clone();
        writers.push(std::thread::spawn(move || {
            while !start.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let mut msg = [0u8; 24];
            for seq in 0..PER_WRITER {
                msg[0..8].copy_from_slice(&(wi as u64).to_le_bytes());
                msg[8..16].copy_from_slice(&seq.to_le_bytes());
                msg[16..24].copy_from_slice(&(seq ^ KEY ^ wi as u64).to_le_bytes());
                w.write(&msg).unwrap();
                if seq % 8 == 0 {
                    // Give the readers a chance on small machines.
                    std::thread::yield_now();
                }
            }
        }));
    }
    start.store(true, Ordering::Release);
    for w in writers {
        w.join().unwrap();
    }
    finished.store(true, Ordering::Release);
    for r in readers {
        let (delivered, missed, slow) = r.join().unwrap();
        eprintln!("reader slow={slow}: delivered {delivered}, missed {missed}");
        assert_eq!(
            delivered + missed,
            WRITERS as u64 * PER_WRITER,
            "slow={slow}"
        );
        if slow {
            assert!(missed > 0, "the slow reader should have been overrun");
        }
    }
}
