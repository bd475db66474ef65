//! Heap-backed unit tests of the MPMC rings.

use crate::Endpoint as _;
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
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
    for i in 0..8u8 {
        p.try_write(&[i; 3][..(i as usize % 4)]).unwrap();
    }
    assert_eq!(p.try_write(b"x"), Err(Error::WouldBlock));
    for i in 0..8u8 {
        let n = c.try_read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 3][..(i as usize % 4)]);
    }
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn wraps_around_many_laps() {
    let r = ring(4, 16);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    let mut buf = [0u8; 16];
    for i in 0u64..10_000 {
        p.try_write(&i.to_le_bytes()).unwrap();
        if i % 3 == 0 {
            p.try_write(&(i + 1_000_000).to_le_bytes()).unwrap();
        }
        let n = c.try_read(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf[..n].try_into().unwrap()), i);
        if i % 3 == 0 {
            let n = c.try_read(&mut buf).unwrap();
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
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"").unwrap();
    let big: Vec<u8> = (0..100u8).collect();
    p.try_write(&big).unwrap();
    assert_eq!(
        p.try_write(&[0; 101]),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    );
    assert_eq!(
        p.write(&[0; 101], Deadline::never()),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    );
    let mut empty: [u8; 0] = [];
    assert_eq!(c.try_read(&mut empty), Ok(0));
    let mut buf = [0u8; 100];
    assert_eq!(c.try_read(&mut buf), Ok(100));
    assert_eq!(&buf[..], &big[..]);
    // Nothing of the rejected message got in.
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn buffer_too_small_leaves_the_message() {
    let r = ring(4, 64);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"hello world").unwrap();
    let mut small = [0u8; 5];
    assert_eq!(
        c.try_read(&mut small),
        Err(Error::BufferTooSmall { needed: 11, got: 5 })
    );
    assert_eq!(
        c.read(&mut small, Deadline::now()),
        Err(Error::BufferTooSmall { needed: 11, got: 5 })
    );
    let mut buf = [0u8; 64];
    assert_eq!(c.try_read(&mut buf), Ok(11));
    assert_eq!(&buf[..11], b"hello world");
}

#[test]
fn in_place_receive() {
    let r = ring(4, 64);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"abc").unwrap();
    assert_eq!(c.try_read_with(|m| m.to_vec()), Ok(b"abc".to_vec()));
    p.try_write(b"de").unwrap();
    assert_eq!(c.read_with(|m| m.len(), secs(5)), Ok(2));
    assert_eq!(c.try_read_with(|m| m.len()), Err(Error::WouldBlock));
}

#[test]
fn close_lets_consumers_drain() {
    let r = ring(4, 8);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"1").unwrap();
    p.try_write(b"2").unwrap();
    c.close();
    assert!(p.is_closed());
    assert_eq!(p.try_write(b"3"), Err(Error::Closed));
    assert_eq!(p.write(b"3", secs(1)), Err(Error::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(c.read(&mut buf, secs(1)), Ok(1));
    assert_eq!(buf[0], b'2');
    assert_eq!(c.try_read(&mut buf), Err(Error::Closed));
    assert_eq!(c.read(&mut buf, secs(1)), Err(Error::Closed));
    // A late attacher sees the same.
    let mut c2 = MessageReader::attach(&r).unwrap();
    assert_eq!(c2.try_read(&mut buf), Err(Error::Closed));
}

#[test]
fn close_wakes_blocked_consumers_and_producers() {
    let r = ring(2, 8);
    let mut c = MessageReader::attach(&r).unwrap();
    let mut p = MessageWriter::attach(&r).unwrap();
    p.try_write(b"a").unwrap();
    p.try_write(b"b").unwrap();
    c.set_wait_strategy(WaitStrategy::Blocking);
    p.set_wait_strategy(WaitStrategy::Blocking);
    let t = std::thread::spawn(move || p.write(b"c", secs(20)));
    std::thread::sleep(Duration::from_millis(30));
    let mut closer = MessageReader::attach(&r).unwrap();
    closer.close();
    assert_eq!(t.join().unwrap(), Err(Error::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf, secs(5)), Ok(1));
    assert_eq!(c.read(&mut buf, secs(5)), Ok(1));
    let t = std::thread::spawn(move || c.read(&mut [0u8; 8], secs(20)));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(t.join().unwrap(), Err(Error::Closed));
}

#[test]
fn timeouts() {
    let r = ring(2, 8);
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    let start = Instant::now();
    assert_eq!(
        c.read(&mut [0; 8], Deadline::after(Duration::from_millis(30))),
        Err(Error::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    p.try_write(b"1").unwrap();
    p.try_write(b"2").unwrap();
    assert_eq!(
        p.write(b"3", Deadline::after(Duration::from_millis(30))),
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
        let mut p = MessageWriter::attach(&r).unwrap();
        p.set_wait_strategy(strategy);
        handles.push(std::thread::spawn(move || {
            for seq in 0..PER {
                let mut m = [0u8; 16];
                m[..8].copy_from_slice(&(id as u64).to_le_bytes());
                m[8..].copy_from_slice(&seq.to_le_bytes());
                p.write(&m, secs(60)).unwrap();
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
        let mut c = MessageReader::attach(&r).unwrap();
        c.set_wait_strategy(strategy);
        let seen = seen.clone();
        let taken = taken.clone();
        consumers.push(std::thread::spawn(move || {
            let mut last = [None::<u64>; PRODUCERS];
            let mut buf = [0u8; 24];
            loop {
                match c.read(&mut buf, Deadline::after(Duration::from_millis(200))) {
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
    let p = MessageWriter::attach(&r).unwrap();
    let c = MessageReader::attach(&r).unwrap();
    assert!(matches!(MessageWriter::attach(&r), Err(Error::Busy { .. })));
    drop(p);
    let _p2 = c.try_clone().unwrap();
}

#[test]
fn attach_rejects_bad_regions() {
    let r = Region::heap(4096).unwrap();
    assert!(matches!(
        MessageWriter::attach(&r),
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
        MessageWriter::attach(&b),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn a_scribbled_layout_version_is_corruption() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    raw.ctl().config.0.version.store(7, Ordering::Relaxed);
    assert!(matches!(
        MessageWriter::attach(&r),
        Err(Error::Corrupted { .. })
    ));
    assert!(matches!(
        MessageReader::attach(&r),
        Err(Error::Corrupted { .. })
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
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    c.set_wait_strategy(WaitStrategy::Blocking);
    // Participant 5 "claimed" position 0 and died.
    raw.part(5).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 5), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(1, Ordering::Relaxed);
    p.try_write(b"after").unwrap();
    // The first blocked call checks the holder (the clock's first check is due at once).
    let mut buf = [0u8; 8];
    let n = c.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
    // Again, likely within the liveness interval of that check: a blocking call finds
    // it at its next check.
    raw.slot(2)
        .state
        .store(pack(2, WRITING, 5), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(3, Ordering::Relaxed);
    p.try_write(b"later").unwrap();
    let n = c.read(&mut buf, secs(5)).unwrap();
    assert_eq!(&buf[..n], b"later");
    assert_eq!(c.stats().abandoned_by_dead_producers, 2);
    assert_eq!(c.stats().lost_to_dead_consumers, 0);
}

#[test]
fn a_dead_consumers_slot_is_reclaimed_and_counted() {
    let cfg = Config::new(2, 8);
    let r = ring(2, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.set_wait_strategy(WaitStrategy::Blocking);
    p.try_write(b"0").unwrap();
    p.try_write(b"1").unwrap();
    // A consumer (participant 7) took message 0 and died.
    raw.part(7).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, READING, 7), Ordering::Relaxed);
    raw.ctl().dequeue_pos.0.store(1, Ordering::Relaxed);
    // The producer's first blocked call checks the holder and reclaims the slot.
    p.try_write(b"2").unwrap();
    assert_eq!(p.stats().lost_to_dead_consumers, 1);
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], b'1');
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(buf[0], b'2');
    assert_eq!(c.try_read(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn attaching_over_a_dead_entry_sweeps_its_slots() {
    let cfg = Config::new(4, 8).with_max_endpoints(2);
    let r = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&r, &cfg).unwrap();
    let raw = Raw { region: &r, cfg };
    let mut c = MessageReader::attach(&r).unwrap(); // entry 1
    raw.part(2).store(DEAD, Ordering::Relaxed);
    raw.slot(0)
        .state
        .store(pack(0, WRITING, 2), Ordering::Relaxed);
    raw.ctl().enqueue_pos.0.store(1, Ordering::Relaxed);
    let mut p = MessageWriter::attach(&r).unwrap(); // takes over entry 2, sweeps slot 0
    assert_eq!(unpack(raw.slot(0).state.load(Ordering::Relaxed)).state, 0);
    p.try_write(b"x").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.try_read(&mut buf), Ok(1));
    assert_eq!(c.stats().abandoned_by_dead_producers, 1);
}

#[test]
fn corrupted_words_poison_the_endpoint() {
    let cfg = Config::new(4, 8);
    let r = ring(4, 8);
    let raw = Raw { region: &r, cfg };
    let mut p = MessageWriter::attach(&r).unwrap();
    let mut c = MessageReader::attach(&r).unwrap();
    p.try_write(b"abc").unwrap();
    // Length above max_message.
    raw.slot(0).len.store(9, Ordering::Relaxed);
    let mut buf = [0u8; 64];
    assert!(matches!(c.try_read(&mut buf), Err(Error::Corrupted { .. })));
    assert!(matches!(c.try_read(&mut buf), Err(Error::Corrupted { .. })));
    // A slot word from a foreign slot.
    raw.slot(1).state.store(pack(2, 0, 0), Ordering::Relaxed);
    assert!(matches!(p.try_write(b"z"), Err(Error::Corrupted { .. })));
    // A holder number out of range.
    let mut c2 = MessageReader::attach(&r).unwrap();
    raw.slot(0)
        .state
        .store(pack(0, READING, 1000), Ordering::Relaxed);
    assert!(matches!(
        c2.try_read(&mut buf),
        Err(Error::Corrupted { .. })
    ));
    // Scribbled configuration.
    raw.ctl().config.0.slot_stride.store(1, Ordering::Relaxed);
    assert!(matches!(
        MessageReader::attach(&r),
        Err(Error::Corrupted { .. })
    ));
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

mod robustness;
