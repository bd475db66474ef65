//! Heap-backed unit tests of the MPMC rings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{Deadline, WaitStrategy};

use super::control::{pack, unpack, Control, SlotHeader, READING, WRITING};
use super::*;
use crate::Error;

fn ring(slots: usize, max: usize) -> Region {
    let cfg = Config::new(slots, max);
    let region = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&region, &cfg).unwrap();
    region
}

fn secs(n: u64) -> Deadline {
    Deadline::after(Duration::from_secs(n))
}

#[test]
fn single_thread_fifo() {
    let r = ring(8, 32);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
    for i in 0..8u8 {
        p.try_send(&[i; 3][..(i as usize % 4)]).unwrap();
    }
    assert_eq!(p.try_send(b"x"), Err(Error::WouldBlock));
    for i in 0..8u8 {
        let n = c.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 3][..(i as usize % 4)]);
    }
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn wraps_around_many_laps() {
    let r = ring(4, 16);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    let mut buf = [0u8; 16];
    for i in 0u64..10_000 {
        p.try_send(&i.to_le_bytes()).unwrap();
        if i % 3 == 0 {
            p.try_send(&(i + 1_000_000).to_le_bytes()).unwrap();
        }
        let n = c.try_recv(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf[..n].try_into().unwrap()), i);
        if i % 3 == 0 {
            let n = c.try_recv(&mut buf).unwrap();
            assert_eq!(
                u64::from_le_bytes(buf[..n].try_into().unwrap()),
                i + 1_000_000
            );
        }
    }
    assert_eq!(p.stats().enqueue_pos, p.stats().dequeue_pos);
}

#[test]
fn zero_length_and_max_size_messages() {
    let r = ring(4, 100);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"").unwrap();
    let big: Vec<u8> = (0..100u8).collect();
    p.try_send(&big).unwrap();
    assert_eq!(
        p.try_send(&[0; 101]),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    );
    assert_eq!(
        p.send(&[0; 101], Deadline::never()),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    );
    let mut empty: [u8; 0] = [];
    assert_eq!(c.try_recv(&mut empty), Ok(0));
    let mut buf = [0u8; 100];
    assert_eq!(c.try_recv(&mut buf), Ok(100));
    assert_eq!(&buf[..], &big[..]);
    // Nothing of the rejected message got in.
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn buffer_too_small_leaves_the_message() {
    let r = ring(4, 64);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"hello world").unwrap();
    let mut small = [0u8; 5];
    assert_eq!(
        c.try_recv(&mut small),
        Err(Error::BufferTooSmall { needed: 11, got: 5 })
    );
    assert_eq!(
        c.recv(&mut small, Deadline::now()),
        Err(Error::BufferTooSmall { needed: 11, got: 5 })
    );
    let mut buf = [0u8; 64];
    assert_eq!(c.try_recv(&mut buf), Ok(11));
    assert_eq!(&buf[..11], b"hello world");
}

#[test]
fn in_place_receive() {
    let r = ring(4, 64);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"abc").unwrap();
    assert_eq!(c.try_recv_with(|m| m.to_vec()), Ok(b"abc".to_vec()));
    p.try_send(b"de").unwrap();
    assert_eq!(c.recv_with(|m| m.len(), secs(5)), Ok(2));
    assert_eq!(c.try_recv_with(|m| m.len()), Err(Error::WouldBlock));
}

#[test]
fn close_lets_consumers_drain() {
    let r = ring(4, 8);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"1").unwrap();
    p.try_send(b"2").unwrap();
    c.close();
    assert!(p.is_closed());
    assert_eq!(p.try_send(b"3"), Err(Error::Closed));
    assert_eq!(p.send(b"3", secs(1)), Err(Error::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(c.recv(&mut buf, secs(1)), Ok(1));
    assert_eq!(buf[0], b'2');
    assert_eq!(c.try_recv(&mut buf), Err(Error::Closed));
    assert_eq!(c.recv(&mut buf, secs(1)), Err(Error::Closed));
    // A late attacher sees the same.
    let mut c2 = Consumer::attach(&r).unwrap();
    assert_eq!(c2.try_recv(&mut buf), Err(Error::Closed));
}

#[test]
fn close_wakes_blocked_consumers_and_producers() {
    let r = ring(2, 8);
    let mut c = Consumer::attach(&r).unwrap();
    let mut p = Producer::attach(&r).unwrap();
    p.try_send(b"a").unwrap();
    p.try_send(b"b").unwrap();
    c.set_wait_strategy(WaitStrategy::Blocking);
    p.set_wait_strategy(WaitStrategy::Blocking);
    let t = std::thread::spawn(move || p.send(b"c", secs(20)));
    std::thread::sleep(Duration::from_millis(30));
    let closer = Consumer::attach(&r).unwrap();
    closer.close();
    assert_eq!(t.join().unwrap(), Err(Error::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf, secs(5)), Ok(1));
    assert_eq!(c.recv(&mut buf, secs(5)), Ok(1));
    let t = std::thread::spawn(move || c.recv(&mut [0u8; 8], secs(20)));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(t.join().unwrap(), Err(Error::Closed));
}

#[test]
fn timeouts() {
    let r = ring(2, 8);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    let start = Instant::now();
    assert_eq!(
        c.recv(&mut [0; 8], Deadline::after(Duration::from_millis(30))),
        Err(Error::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    p.try_send(b"1").unwrap();
    p.try_send(b"2").unwrap();
    assert_eq!(
        p.send(b"3", Deadline::after(Duration::from_millis(30))),
        Err(Error::Timeout)
    );
}

fn many_to_many(strategy: WaitStrategy, slots: usize) {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    const PER: u64 = 20_000;
    let r = ring(slots, 24);
    let mut handles = Vec::new();
    for id in 0..PRODUCERS {
        let mut p = Producer::attach(&r).unwrap();
        p.set_wait_strategy(strategy);
        handles.push(std::thread::spawn(move || {
            for seq in 0..PER {
                let mut m = [0u8; 16];
                m[..8].copy_from_slice(&(id as u64).to_le_bytes());
                m[8..].copy_from_slice(&seq.to_le_bytes());
                p.send(&m, secs(60)).unwrap();
            }
        }));
    }
    let seen = Arc::new(
        (0..PRODUCERS * PER as usize)
            .map(|_| AtomicU64::new(0))
            .collect::<Vec<_>>(),
    );
    let total = PRODUCERS as u64 * PER;
    let taken = Arc::new(AtomicU64::new(0));
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let mut c = Consumer::attach(&r).unwrap();
        c.set_wait_strategy(strategy);
        let seen = seen.clone();
        let taken = taken.clone();
        consumers.push(std::thread::spawn(move || {
            let mut last = [None::<u64>; PRODUCERS];
            let mut buf = [0u8; 24];
            loop {
                match c.recv(&mut buf, Deadline::after(Duration::from_millis(200))) {
                    Ok(n) => {
                        assert_eq!(n, 16);
                        let id = u64::from_le_bytes(buf[..8].try_into().unwrap()) as usize;
                        let seq = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                        assert!(id < PRODUCERS && seq < PER);
                        // Per-producer order as taken by this consumer.
                        if let Some(prev) = last[id] {
                            assert!(seq > prev, "producer {id}: {seq} after {prev}");
                        }
                        last[id] = Some(seq);
                        let old =
                            seen[id * PER as usize + seq as usize].fetch_add(1, Ordering::Relaxed);
                        assert_eq!(old, 0, "duplicate {id}/{seq}");
                        taken.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::Timeout) if taken.load(Ordering::Relaxed) == total => break,
                    Err(Error::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    for c in consumers {
        c.join().unwrap();
    }
    assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1));
}

#[test]
fn four_by_four_threads_adaptive() {
    many_to_many(WaitStrategy::Adaptive, 16);
}

#[test]
fn four_by_four_threads_blocking_tiny_ring() {
    many_to_many(WaitStrategy::Blocking, 2);
}

#[test]
fn participant_table_fills_and_frees() {
    let cfg = Config::new(4, 8).with_max_endpoints(2);
    let r = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&r, &cfg).unwrap();
    let p = Producer::attach(&r).unwrap();
    let c = Consumer::attach(&r).unwrap();
    assert!(matches!(Producer::attach(&r), Err(Error::Busy { .. })));
    drop(p);
    let _p2 = c.try_clone().unwrap();
}

#[test]
fn attach_rejects_bad_regions() {
    let r = Region::heap(4096).unwrap();
    assert!(matches!(
        Producer::attach(&r),
        Err(Error::InvalidConfig { .. })
    ));
    let cfg = Config::new(4, 8);
    let small = Region::heap(100).unwrap();
    assert!(MessageRing::init(&small, &cfg).is_err());
    assert!(matches!(
        MessageRing::required_size(&Config::new(3, 8)),
        Err(Error::InvalidConfig { .. })
    ));
    // A byte ring is not a message ring.
    let b = Region::heap(ByteRing::required_size(&Config::bytes(4, 8)).unwrap()).unwrap();
    ByteRing::init(&b, &Config::bytes(4, 8)).unwrap();
    assert!(matches!(
        Producer::attach(&b),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Raw access to a ring's shared words, for simulating dead and hostile peers.
struct Raw<'a> {
    region: &'a Region,
    cfg: Config,
}

impl Raw<'_> {
    fn layout(&self) -> super::control::Layout {
        self.cfg.layout().unwrap()
    }
    fn slot(&self, i: usize) -> &SlotHeader {
        let l = self.layout();
        // SAFETY: slot `i < slots` of an initialised ring in a live heap region.
        unsafe {
            &*self
                .region
                .as_ptr()
                .add(l.slots_offset + i * l.slot_stride)
                .cast()
        }
    }
    fn part(&self, who: usize) -> &AtomicU64 {
        let l = self.layout();
        // SAFETY: entry `who - 1 < max_endpoints` of an initialised ring.
        unsafe {
            &*self
                .region
                .as_ptr()
                .add(l.participants_offset + (who - 1) * 8)
                .cast()
        }
    }
    fn ctl(&self) -> &Control {
        // SAFETY: the control block of an initialised ring.
        unsafe { &*self.region.as_ptr().cast() }
    }
}

/// A packed identity no live process has (pid far above pid_max).
const DEAD: u64 = 0x0000_0001_7fff_fff0;

#[test]
fn a_dead_producers_half_written_slot_is_skipped() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    c.set_wait_strategy(WaitStrategy::Blocking);
    // Participant 5 "claimed" position 0 and died.
    raw.part(5).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 5), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(1, Ordering::Relaxed);
    p.try_send(b"after").unwrap();
    // The first blocked call checks the holder (the clock's first check is due at once).
    let mut buf = [0u8; 8];
    let n = c.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
    // Again, likely within the liveness interval of that check: a blocking call finds
    // it at its next check.
    raw.slot(2)
        .state
        .store(pack(2, WRITING, 5), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(3, Ordering::Relaxed);
    p.try_send(b"later").unwrap();
    let n = c.recv(&mut buf, secs(5)).unwrap();
    assert_eq!(&buf[..n], b"later");
    assert_eq!(c.stats().abandoned_by_dead_producers, 2);
    assert_eq!(c.stats().lost_to_dead_consumers, 0);
}

#[test]
fn a_dead_consumers_slot_is_reclaimed_and_counted() {
    let cfg = Config::new(2, 8);
    let r = ring(2, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.set_wait_strategy(WaitStrategy::Blocking);
    p.try_send(b"0").unwrap();
    p.try_send(b"1").unwrap();
    // A consumer (participant 7) took message 0 and died.
    raw.part(7).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, READING, 7), Ordering::Relaxed);
    raw.ctl().dequeue_pos.0.store(1, Ordering::Relaxed);
    // The producer's first blocked call checks the holder and reclaims the slot.
    p.try_send(b"2").unwrap();
    assert_eq!(p.stats().lost_to_dead_consumers, 1);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'1');
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'2');
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn attaching_over_a_dead_entry_sweeps_its_slots() {
    let cfg = Config::new(4, 8).with_max_endpoints(2);
    let r = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&r, &cfg).unwrap();
    let raw = Raw { region: &r, cfg };
    let mut c = Consumer::attach(&r).unwrap(); // entry 1
    raw.part(2).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 2), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(1, Ordering::Relaxed);
    let mut p = Producer::attach(&r).unwrap(); // takes over entry 2, sweeps slot 0
    assert_eq!(unpack(raw.slot(0).state.load(Ordering::Relaxed)).state, 0);
    p.try_send(b"x").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
}

#[test]
fn corrupted_words_poison_the_endpoint() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"abc").unwrap();
    // Length above max_message.
    raw.slot(0).len.store(9, Ordering::Relaxed);
    let mut buf = [0u8; 64];
    assert!(matches!(c.try_recv(&mut buf), Err(Error::Corrupted { .. })));
    assert!(matches!(c.try_recv(&mut buf), Err(Error::Corrupted { .. })));
    // A slot word from a foreign slot.
    raw.slot(1).state.store(pack(2, 0, 0), Ordering::Relaxed);
    assert!(matches!(p.try_send(b"z"), Err(Error::Corrupted { .. })));
    // A holder number out of range.
    let mut c2 = Consumer::attach(&r).unwrap();
    raw.slot(0)
        .state
        .store(pack(0, READING, 1000), Ordering::Relaxed);
    assert!(matches!(
        c2.try_recv(&mut buf),
        Err(Error::Corrupted { .. })
    ));
    // Scribbled configuration.
    raw.ctl().config.0.slot_stride.store(1, Ordering::Relaxed);
    assert!(matches!(Consumer::attach(&r), Err(Error::Corrupted { .. })));
}

// ---- byte ring ---------------------------------------------------------------------------

fn byte_ring(slots: usize, max: usize) -> Region {
    let cfg = Config::bytes(slots, max);
    let region = Region::heap(ByteRing::required_size(&cfg).unwrap()).unwrap();
    ByteRing::init(&region, &cfg).unwrap();
    region
}

#[test]
fn byte_ring_reads_across_records_and_keeps_remainders() {
    let r = byte_ring(8, 16);
    let mut w = ByteWriter::attach(&r).unwrap();
    let mut rd = ByteReader::attach(&r).unwrap();
    assert_eq!(w.try_write(b""), Ok(0));
    assert_eq!(w.try_write(b"abcd"), Ok(4));
    assert_eq!(w.try_write(b"efgh"), Ok(4));
    let mut buf = [0u8; 64];
    assert_eq!(rd.try_read(&mut buf), Ok(8));
    assert_eq!(&buf[..8], b"abcdefgh");
    // 40 bytes → records of 16, 16, 8.
    let data: Vec<u8> = (0..40u8).collect();
    assert_eq!(w.try_write(&data), Ok(40));
    let mut small = [0u8; 5];
    let mut got = Vec::new();
    while got.len() < 40 {
        let n = rd.try_read(&mut small).unwrap();
        got.extend_from_slice(&small[..n]);
    }
    assert_eq!(got, data);
    assert_eq!(rd.try_read(&mut buf), Err(Error::WouldBlock));
    // Full ring: a small write is all-or-nothing; a long one writes whole records.
    for _ in 0..7 {
        w.try_write(b"x").unwrap();
    }
    assert_eq!(w.try_write(b"yy"), Ok(2));
    assert_eq!(w.try_write(b"z"), Err(Error::WouldBlock));
    rd.try_read(&mut buf).unwrap();
    assert_eq!(w.try_write(&data), Ok(40));
    w.close();
    let mut total = 0;
    loop {
        match rd.read(&mut buf, secs(1)) {
            Ok(n) => total += n,
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(total, 40);
    assert_eq!(w.try_write(b"a"), Err(Error::Closed));
}

#[test]
fn byte_ring_writers_are_never_interleaved() {
    const WRITERS: usize = 4;
    const RECORDS: usize = 3_000;
    const REC: usize = 128;
    let r = byte_ring(8, REC);
    let mut hs = Vec::new();
    for id in 0..WRITERS {
        let mut w = ByteWriter::attach(&r).unwrap();
        hs.push(std::thread::spawn(move || {
            for seq in 0..RECORDS {
                let mut rec = [id as u8; REC];
                rec[1..9].copy_from_slice(&(seq as u64).to_le_bytes());
                w.write_all(&rec, secs(60)).unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut rd = ByteReader::attach(&r).unwrap();
        readers.push(std::thread::spawn(move || {
            let mut next = [0usize; WRITERS];
            let mut rec = [0u8; REC];
            let mut count = 0;
            loop {
                match rd.read_exact(&mut rec, Deadline::after(Duration::from_millis(300))) {
                    Ok(()) => {
                        let id = rec[0] as usize;
                        assert!(id < WRITERS);
                        assert!(rec[9..].iter().all(|&b| b == id as u8), "interleaved");
                        let seq = u64::from_le_bytes(rec[1..9].try_into().unwrap()) as usize;
                        assert!(seq >= next[id]);
                        next[id] = seq + 1;
                        count += 1;
                    }
                    Err(Error::Timeout) => return count,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let total: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, WRITERS * RECORDS);
}

/// Runs `f` on a thread and returns its result, failing (not hanging) after 10 s.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the call did not return within 10 s")
}

#[test]
fn positions_moved_back_whole_laps_are_corrupted_not_spun_through() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"a").unwrap();
    p.try_send(b"b").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    // A scribbler moves both positions back by 2^40 (a whole number of laps).
    let back = 1u64 << 40;
    let enq = raw.ctl().enqueue_pos.0.load(Ordering::Relaxed);
    let deq = raw.ctl().dequeue_pos.0.load(Ordering::Relaxed);
    raw.ctl()
        .enqueue_pos
        .0
        .store(enq.wrapping_sub(back), Ordering::Relaxed);
    raw.ctl()
        .dequeue_pos
        .0
        .store(deq.wrapping_sub(back), Ordering::Relaxed);
    let (send, recv) = within_10s(move || {
        let mut buf = [0u8; 8];
        (p.try_send(b"c"), c.try_recv(&mut buf))
    });
    assert!(matches!(send, Err(Error::Corrupted { .. })), "{send:?}");
    assert!(matches!(recv, Err(Error::Corrupted { .. })), "{recv:?}");
    // Fresh endpoints blocking with a deadline report it too, and do not hang.
    let mut p2 = Producer::attach(&r).unwrap();
    let mut c2 = Consumer::attach(&r).unwrap();
    let (send, recv) = within_10s(move || {
        let mut buf = [0u8; 8];
        (p2.send(b"c", secs(5)), c2.recv(&mut buf, secs(5)))
    });
    assert!(matches!(send, Err(Error::Corrupted { .. })), "{send:?}");
    assert!(matches!(recv, Err(Error::Corrupted { .. })), "{recv:?}");
}

#[test]
fn a_tag_one_lap_ahead_left_by_a_dead_holder_is_helped_not_corrupted() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    // Participant 5 claimed position 0 and died before helping `enqueue_pos` on.
    raw.part(5).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 5), Ordering::Relaxed);
    assert_eq!(c.reclaim_dead(), Ok(1));
    // Slot 0 is now EMPTY(4) while both positions are still 0: one lap ahead.
    assert_eq!(raw.ctl().enqueue_pos.0.load(Ordering::Relaxed), 0);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
    p.try_send(b"x").unwrap();
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'x');
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
}

/// Runs `f`, which must panic, with the panic message kept off the test output.
fn expect_panic(f: impl FnOnce()) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(r.is_err(), "the callback did not panic");
}

#[test]
fn a_panicking_receive_callback_frees_its_slot_and_counts_the_message() {
    let r = ring(2, 8);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"doomed").unwrap();
    expect_panic(|| {
        let _ = c.try_recv_with(|_| -> () { panic!("callback fails") });
    });
    assert_eq!(c.stats().lost_to_dead_consumers, 1);
    // The consumer is alive and attached: the ring must still take `slots` messages.
    p.try_send(b"0").unwrap();
    p.try_send(b"1").unwrap();
    assert_eq!(p.try_send(b"2"), Err(Error::WouldBlock));
    assert_eq!(c.try_recv_with(|m| m.to_vec()), Ok(b"0".to_vec()));
    assert_eq!(c.try_recv_with(|m| m.to_vec()), Ok(b"1".to_vec()));
    assert_eq!(c.try_recv_with(|m| m.len()), Err(Error::WouldBlock));
    // The blocking form likewise.
    p.try_send(b"doomed").unwrap();
    expect_panic(|| {
        let _ = c.recv_with(|_| -> () { panic!("callback fails") }, secs(5));
    });
    assert_eq!(c.stats().lost_to_dead_consumers, 2);
    p.try_send(b"2").unwrap();
    p.try_send(b"3").unwrap();
    assert_eq!(c.recv_with(|m| m.to_vec(), secs(5)), Ok(b"2".to_vec()));
    assert_eq!(c.recv_with(|m| m.to_vec(), secs(5)), Ok(b"3".to_vec()));
    assert_eq!(c.stats().abandoned_by_dead_producers, 0);
}

#[test]
fn a_panicking_fill_gives_its_slot_back_uncommitted() {
    use super::control::KIND_MPMC_MESSAGE;
    let r = ring(2, 8);
    let mut core = super::core::Core::attach(&r, KIND_MPMC_MESSAGE).unwrap();
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    expect_panic(|| {
        let _ = core.try_send_with(1, super::core::Poll::Try, |_| panic!("fill fails"));
    });
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_recv(&mut buf), Err(Error::WouldBlock));
    p.try_send(b"0").unwrap();
    p.try_send(b"1").unwrap();
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'0');
    assert_eq!(c.try_recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'1');
    assert_eq!(c.stats().lost_to_dead_consumers, 0);
}

/// crossbeam's `linearizable` test: with as many slots as threads and each thread
/// alternating one `try_send` and one `try_recv`, the ring is never full for a sender
/// nor empty for a receiver. A `WouldBlock` is allowed only when the call waited out
/// its whole patience (some thread stalled mid-operation past the documented bound,
/// which a loaded machine can cause); one returned sooner is a spurious failure.
#[test]
fn try_send_and_try_recv_are_linearizable() {
    const THREADS: usize = 2;
    const ITERS: u64 = 100_000;
    let r = ring(THREADS, 8);
    let stalls = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..THREADS)
        .map(|id| {
            let mut p = Producer::attach(&r).unwrap();
            let mut c = Consumer::attach(&r).unwrap();
            let stalls = stalls.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8];
                let patient = |what: &str, i: u64, start: Instant| {
                    let took = start.elapsed();
                    assert!(
                        took >= super::core::PATIENCE,
                        "thread {id}, iteration {i}: spurious WouldBlock from {what} after {took:?}"
                    );
                    stalls.fetch_add(1, Ordering::Relaxed);
                };
                for i in 0..ITERS {
                    let msg = (id as u64) << 32 | i;
                    loop {
                        let start = Instant::now();
                        match p.try_send(&msg.to_le_bytes()) {
                            Ok(()) => break,
                            Err(Error::WouldBlock) => patient("try_send", i, start),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    loop {
                        let start = Instant::now();
                        match c.try_recv(&mut buf) {
                            Ok(n) => {
                                assert_eq!(n, 8);
                                break;
                            }
                            Err(Error::WouldBlock) => patient("try_recv", i, start),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let stalls = stalls.load(Ordering::Relaxed);
    eprintln!("{stalls} calls gave up after a stall of more than the patience bound");
    let calls = 2 * THREADS as u64 * ITERS;
    assert!(stalls <= calls / 100, "{stalls} stalls in {calls} calls");
}

/// A consumer inside its in-place callback for well under the patience bound: a
/// `try_send` that finds only that slot busy waits for it instead of failing.
#[test]
fn try_send_waits_for_a_slot_being_read_briefly() {
    const HOLD: Duration = Duration::from_micros(200);
    let r = ring(2, 8);
    let mut p = Producer::attach(&r).unwrap();
    let mut judged = 0;
    for round in 0..20 {
        let mut c = Consumer::attach(&r).unwrap();
        p.try_send(b"0").unwrap();
        p.try_send(b"1").unwrap();
        let inside = Arc::new(AtomicU64::new(0));
        let flag = inside.clone();
        let reader = std::thread::spawn(move || {
            let held = c
                .try_recv_with(|m| {
                    assert_eq!(m, b"0");
                    let start = Instant::now();
                    flag.store(1, Ordering::Release);
                    // Busy, not asleep: a sleeping thread may wake far later.
                    while start.elapsed() < HOLD {
                        std::hint::spin_loop();
                    }
                    start.elapsed()
                })
                .unwrap();
            (c, held)
        });
        while inside.load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        // One message in a 2-slot ring: there is room, in the slot being read.
        let sent = p.try_send(b"2");
        let (mut c, held) = reader.join().unwrap();
        if held < super::core::PATIENCE / 2 {
            judged += 1;
            assert_eq!(sent, Ok(()), "round {round}: slot held {held:?}");
        }
        let mut buf = [0u8; 8];
        while c.try_recv(&mut buf).is_ok() {}
    }
    assert!(judged >= 10, "only {judged} rounds ran without a stall");
}

/// A slot held for much longer than the patience bound: `try_send` gives up with
/// `WouldBlock` instead of waiting for it.
#[test]
fn try_send_gives_up_on_a_slot_held_past_the_bound() {
    let r = ring(2, 8);
    let mut p = Producer::attach(&r).unwrap();
    let mut c = Consumer::attach(&r).unwrap();
    p.try_send(b"0").unwrap();
    p.try_send(b"1").unwrap();
    let inside = Arc::new(AtomicU64::new(0));
    let release = Arc::new(AtomicU64::new(0));
    let (flag, go) = (inside.clone(), release.clone());
    let reader = std::thread::spawn(move || {
        c.try_recv_with(|_| {
            flag.store(1, Ordering::Release);
            let start = Instant::now();
            while go.load(Ordering::Acquire) == 0 && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    });
    while inside.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let start = Instant::now();
    assert_eq!(p.try_send(b"2"), Err(Error::WouldBlock));
    let took = start.elapsed();
    release.store(1, Ordering::Release);
    reader.join().unwrap();
    assert!(took >= super::core::PATIENCE, "gave up after {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
    // Blocking calls are unchanged: they sleep until the slot is released.
    p.send(b"2", secs(5)).unwrap();
}
