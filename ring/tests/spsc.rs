//! Heap-backed tests of the SPSC rings: framing, wrap-around, limits, grants, close,
//! corruption, and a two-thread stream.

use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::Endpoint as _;
use culvert_ring::{Deadline, Error, Region};
use culvert_testkit::pattern;
use std::time::Duration;

fn message_ring(capacity: usize, max: usize) -> (Region, MessageWriter, MessageReader) {
    let config = Config::messages(capacity, max);
    let region = Region::heap(MessageRing::required_size(&config).unwrap()).unwrap();
    MessageRing::init(&region, &config).unwrap();
    let w = MessageWriter::attach(&region).unwrap();
    let r = MessageReader::attach(&region).unwrap();
    (region, w, r)
}

fn byte_ring(capacity: usize) -> (Region, ByteWriter, ByteReader) {
    let config = Config::bytes(capacity);
    let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
    ByteRing::init(&region, &config).unwrap();
    let w = ByteWriter::attach(&region).unwrap();
    let r = ByteReader::attach(&region).unwrap();
    (region, w, r)
}

#[test]
fn messages_keep_their_boundaries() {
    let (_r, mut w, mut r) = message_ring(1024, 256);
    for len in [1usize, 128, 128, 0, 7] {
        w.try_write(&pattern(len, len as u64)).unwrap();
    }
    let mut buf = [0u8; 512];
    for len in [1usize, 128, 128, 0, 7] {
        let n = r.try_read(&mut buf).unwrap();
        assert_eq!(n, len);
        assert_eq!(&buf[..n], &pattern(len, len as u64)[..]);
    }
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn messages_that_would_straddle_the_end_wrap_whole_over_many_laps() {
    // Lengths chosen so records land at every offset and often cross the lap end.
    let (_r, mut w, mut r) = message_ring(256, 100);
    let mut buf = [0u8; 100];
    for i in 0..5_000u64 {
        let len = (i * 37 % 101) as usize;
        let msg = pattern(len, i);
        w.try_write(&msg).unwrap();
        let n = r.try_read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..], "message {i}");
    }
}

#[test]
fn ring_fills_then_drains_in_order() {
    let (_r, mut w, mut r) = message_ring(256, 64);
    let mut sent = 0u64;
    loop {
        match w.try_write(&pattern(24, sent)) {
            Ok(()) => sent += 1,
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sent, 256 / 32, "24-byte messages take 32-byte records");
    let mut buf = [0u8; 64];
    for i in 0..sent {
        let n = r.try_read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &pattern(24, i)[..]);
    }
}

#[test]
fn maximum_size_messages_pass_and_one_more_byte_is_rejected() {
    let (_r, mut w, mut r) = message_ring(512, 504);
    let mut buf = vec![0u8; 504];
    for i in 0..10 {
        let msg = pattern(504, i);
        w.try_write(&msg).unwrap();
        assert_eq!(w.try_write(&msg), Err(Error::WouldBlock));
        assert_eq!(r.try_read(&mut buf).unwrap(), 504);
        assert_eq!(buf, msg);
    }
    assert_eq!(
        w.try_write(&[0u8; 505]),
        Err(Error::MessageTooLarge { len: 505, max: 504 })
    );
    assert!(r.try_read(&mut buf).is_err(), "nothing was written");
}

#[test]
fn small_buffer_leaves_the_message_in_place() {
    let (_r, mut w, mut r) = message_ring(256, 64);
    w.try_write(&[9u8; 40]).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        r.try_read(&mut small),
        Err(Error::BufferTooSmall {
            needed: 40,
            got: 10
        })
    );
    assert_eq!(r.peek_len().unwrap(), 40);
    let mut buf = [0u8; 64];
    assert_eq!(r.try_read(&mut buf).unwrap(), 40);
}

#[test]
fn grants_write_and_read_in_place() {
    let (_r, mut w, mut r) = message_ring(1024, 256);
    let mut g = w.reserve(100).unwrap();
    g.as_mut_slice()[..5].copy_from_slice(b"hello");
    g.commit(5);
    // A dropped grant writes nothing.
    let abandoned = w.reserve(10).unwrap();
    let _ = abandoned;
    let g = r.read_grant().unwrap();
    assert_eq!(g.as_slice(), b"hello");
    g.release();
    assert!(matches!(r.read_grant(), Err(Error::WouldBlock)));
}

#[test]
fn batched_releases_give_room_back_a_batch_at_a_time_and_all_when_drained() {
    // 1 KiB ring, messages up to 100 B: the batch is a sixteenth, 64 B.
    let (_region, mut w, mut r) = message_ring(1024, 100);
    assert_eq!(w.reader_batch(), 64);
    for i in 0..10u8 {
        w.try_write(&[i; 8]).unwrap(); // 16 B records
    }
    assert_eq!(w.free_bytes().unwrap(), 1024 - 160);
    for i in 0..3u8 {
        let g = r.read_grant().unwrap();
        assert_eq!(g.as_slice(), &[i; 8]);
        g.release_batched();
    }
    // 48 B consumed: below the batch, nothing given back yet.
    assert_eq!(w.free_bytes().unwrap(), 1024 - 160);
    r.read_grant().unwrap().release_batched();
    // 64 B: the batch goes back in one store.
    assert_eq!(w.free_bytes().unwrap(), 1024 - 160 + 64);
    for _ in 4..10 {
        r.read_grant().unwrap().release_batched();
    }
    assert_eq!(w.free_bytes().unwrap(), 1024 - 160 + 128);
    // Finding nothing more to read gives everything back.
    assert!(matches!(r.read_grant(), Err(Error::WouldBlock)));
    assert_eq!(w.free_bytes().unwrap(), 1024);
}

#[test]
fn batched_releases_never_keep_a_writer_from_its_largest_message() {
    // Rings whose largest record fits twice, so that it fits whatever the tail's
    // place in the lap (a record that would straddle the end pads the lap first).
    for (capacity, max) in [(1024, 100), (1024, 400), (1024, 504), (128, 24)] {
        let (_region, mut w, mut r) = message_ring(capacity, max);
        let batch = w.reader_batch();
        assert!(batch <= capacity / 16, "{capacity} {max}: {batch}");
        // The reader consumed everything but never looked for more: up to a batch is
        // held back, and the largest message still fits, padding included.
        // Half a lap, then one 16 B record short of another batch: the most held back.
        let held = batch.saturating_sub(16);
        for _ in 0..(capacity / 2 + held) / 16 {
            w.try_write(&[1; 8]).unwrap();
            r.read_grant().unwrap().release_batched();
        }
        assert_eq!(w.free_bytes().unwrap(), capacity - held, "{capacity} {max}");
        w.try_write(&vec![2; max]).unwrap();
        let g = r.read_grant().unwrap();
        assert_eq!(g.len(), max);
    }
}

#[test]
fn both_writers_report_the_readers_close_not_their_own() {
    let (_r, mut w, r) = byte_ring(1024);
    assert!(!w.is_closed());
    w.close();
    assert!(
        !w.is_closed(),
        "a byte writer's own close is not the reader's"
    );
    drop(r);
    assert!(w.is_closed());
    let (_r, mut w, r) = message_ring(1024, 64);
    assert!(!w.is_closed());
    w.close();
    assert!(
        !w.is_closed(),
        "a message writer's own close is not the reader's"
    );
    drop(r);
    assert!(w.is_closed());
}

#[test]
fn reader_drains_then_sees_closed_and_writer_sees_closed() {
    let (_r, mut w, mut r) = message_ring(256, 64);
    w.try_write(b"last").unwrap();
    w.close();
    let mut buf = [0u8; 8];
    assert_eq!(r.try_read(&mut buf).unwrap(), 4);
    assert_eq!(r.try_read(&mut buf), Err(Error::Closed));
    assert_eq!(r.read(&mut buf, Deadline::never()), Err(Error::Closed));

    let (_r, mut w, mut r) = message_ring(256, 64);
    r.close();
    assert_eq!(w.try_write(b"x"), Err(Error::Closed));
}

#[test]
fn blocking_read_times_out() {
    let (_r, _w, mut r) = message_ring(256, 64);
    let mut buf = [0u8; 8];
    assert_eq!(
        r.read(&mut buf, Deadline::after(Duration::from_millis(20))),
        Err(Error::Timeout)
    );
}

#[test]
fn second_writer_or_reader_is_busy() {
    let (region, _w, _r) = message_ring(256, 64);
    assert!(matches!(
        MessageWriter::attach(&region),
        Err(Error::Busy { .. })
    ));
    assert!(matches!(
        MessageReader::attach(&region),
        Err(Error::Busy { .. })
    ));
}

#[test]
fn bad_configurations_are_rejected() {
    for (cap, max) in [(0, 0), (100, 10), (32, 8), (256, 249)] {
        assert!(matches!(
            MessageRing::required_size(&Config::messages(cap, max)),
            Err(Error::InvalidConfig { .. })
        ));
    }
    let region = Region::heap(4096).unwrap();
    assert!(matches!(
        MessageRing::init(&region, &Config::messages(4096, 64)),
        Err(Error::InvalidConfig { .. })
    ));
    // A region that was never initialised is not a ring.
    assert!(matches!(
        MessageReader::attach(&region),
        Err(Error::Corrupted { .. })
    ));
    // Nor is a byte ring a message ring.
    let config = Config::bytes(256);
    let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
    ByteRing::init(&region, &config).unwrap();
    assert!(matches!(
        MessageReader::attach(&region),
        Err(Error::Corrupted { .. })
    ));
}

#[test]
fn corrupted_tail_poisons_the_reader() {
    let (region, mut w, mut r) = message_ring(256, 64);
    w.try_write(b"ok").unwrap();
    // The writer's tail lives at offset 128 (second 128-byte line).
    // SAFETY: the region is alive and 8-aligned at offset 128; we play a hostile peer.
    unsafe {
        region
            .as_ptr()
            .add(128)
            .cast::<u64>()
            .write_volatile(1 << 40)
    };
    let mut buf = [0u8; 8];
    assert!(matches!(r.try_read(&mut buf), Err(Error::Corrupted { .. })));
    assert!(matches!(r.try_read(&mut buf), Err(Error::Corrupted { .. })));
}

#[test]
fn corrupted_record_length_is_detected() {
    let (region, mut w, mut r) = message_ring(256, 64);
    w.try_write(b"hello").unwrap();
    // First record header sits at the start of the data area (after 6 lines).
    // SAFETY: the region is alive; offset 768 is the first data byte; hostile write.
    unsafe {
        region
            .as_ptr()
            .add(768)
            .cast::<u32>()
            .write_volatile(10_000)
    };
    let mut buf = [0u8; 64];
    assert!(matches!(r.try_read(&mut buf), Err(Error::Corrupted { .. })));
}

#[test]
fn byte_ring_streams_across_the_wrap() {
    let (_r, mut w, mut r) = byte_ring(64);
    let data = pattern(1000, 3);
    let mut out = Vec::new();
    let mut sent = 0;
    let mut buf = [0u8; 48];
    while out.len() < data.len() {
        if sent < data.len() {
            if let Ok(n) = w.try_write(&data[sent..(sent + 40).min(data.len())]) {
                sent += n;
            }
        }
        if let Ok(n) = r.try_read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(out, data);
}

#[test]
fn byte_ring_merges_writes_and_grants_work() {
    let (_r, mut w, mut r) = byte_ring(1024);
    for _ in 0..4 {
        w.try_write(&[7u8; 128]).unwrap();
    }
    let mut buf = [0u8; 512];
    assert_eq!(
        r.try_read(&mut buf).unwrap(),
        512,
        "four writes read as one"
    );
    let mut g = w.reserve(16).unwrap();
    assert_eq!(g.len(), 16);
    g.as_mut_slice().copy_from_slice(&[1u8; 16]);
    g.commit(10);
    let g = r.read_grant().unwrap();
    assert_eq!(g.as_slice(), &[1u8; 10]);
    g.release(4);
    assert_eq!(r.bytes_available().unwrap(), 6);
    w.close();
    assert_eq!(r.try_read(&mut buf).unwrap(), 6);
    assert_eq!(r.try_read(&mut buf), Err(Error::Closed));
}

#[test]
fn two_threads_stream_a_million_messages() {
    let (_region, mut w, mut r) = message_ring(4096, 200);
    let writer = std::thread::spawn(move || {
        for i in 0..1_000_000u64 {
            let len = (i % 200) as usize;
            let mut msg = [0u8; 200];
            msg[..len.min(8)].copy_from_slice(&i.to_le_bytes()[..len.min(8)]);
            w.write(&msg[..len], Deadline::after(Duration::from_secs(60)))
                .unwrap();
        }
    });
    let mut buf = [0u8; 200];
    for i in 0..1_000_000u64 {
        let n = r
            .read(&mut buf, Deadline::after(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(n, (i % 200) as usize);
        assert_eq!(&buf[..n.min(8)], &i.to_le_bytes()[..n.min(8)]);
    }
    writer.join().unwrap();
    assert_eq!(r.try_read(&mut buf), Err(Error::Closed));
}

#[test]
fn byte_reads_see_bytes_committed_after_the_cached_tail() {
    let (_r, mut w, mut r) = byte_ring(64);
    let data = pattern(65, 1);
    assert_eq!(w.try_write(&data[..64]), Ok(64));
    let mut buf = [0u8; 64];
    assert_eq!(r.try_read(&mut buf[..1]), Ok(1));
    assert_eq!(w.try_write(&data[64..]), Ok(1));
    // 63 bytes are behind the reader's cached tail, one more after it: all 64 count.
    assert_eq!(r.try_read(&mut buf), Ok(64));
    assert_eq!(&buf[..], &data[1..]);
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
}

#[test]
fn byte_read_grants_see_bytes_committed_after_the_cached_tail() {
    let (_r, mut w, mut r) = byte_ring(64);
    let data = pattern(48, 2);
    assert_eq!(w.try_write(&data[..32]), Ok(32));
    let mut one = [0u8; 1];
    assert_eq!(r.try_read(&mut one), Ok(1));
    assert_eq!(w.try_write(&data[32..]), Ok(16));
    let g = r.read_grant().unwrap();
    assert_eq!(g.as_slice(), &data[1..]);
    g.release(47);
    assert_eq!(r.read_grant().err(), Some(Error::WouldBlock));
}

/// Messages committed deferred are invisible until the batch is published (by `flush`,
/// by a `reserve` that finds no room, or by `close`); messages consumed deferred free
/// no room until the reader flushes (or finds nothing more to read).
#[test]
fn deferred_commits_and_consumes_move_in_batches() {
    let (_region, mut w, mut r) = message_ring(256, 64);
    for i in 0..3u8 {
        let mut g = w.reserve(8).unwrap();
        g.as_mut_slice().fill(i);
        g.commit_deferred(8);
    }
    assert!(matches!(r.try_read(&mut [0u8; 64]), Err(Error::WouldBlock)));
    w.flush();
    for i in 0..3u8 {
        let g = r.read_grant().unwrap();
        assert_eq!(g.as_slice(), &[i; 8]);
        g.consume_deferred();
    }
    // 3 records of 16 bytes are consumed but not released: the writer sees 256 - 48
    // bytes of room, so 13 more 16-byte records fit, not 16.
    let mut sent = 0;
    while let Ok(g) = w.reserve(8) {
        g.commit(8);
        sent += 1;
    }
    assert_eq!(sent, 13, "deferred consumes gave room back early");
    r.flush();
    assert!(w.reserve(8).is_ok(), "flushed consumes give room back");

    // A full ring publishes a pending batch when reserve finds no room.
    let (_region, mut w, mut r) = message_ring(256, 64);
    let mut batched = 0;
    loop {
        match w.reserve(8) {
            Ok(g) => {
                g.commit_deferred(8);
                batched += 1;
            }
            Err(Error::WouldBlock) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(batched, 16);
    for _ in 0..16 {
        assert_eq!(r.try_read(&mut [0u8; 64]).unwrap(), 8);
    }
    // And close publishes too.
    let mut g = w.reserve(3).unwrap();
    g.as_mut_slice().copy_from_slice(b"end");
    g.commit_deferred(3);
    w.close();
    let mut buf = [0u8; 64];
    assert_eq!(r.try_read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"end");
    assert!(matches!(r.try_read(&mut buf), Err(Error::Closed)));
}
