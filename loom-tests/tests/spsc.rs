//! loom models of the SPSC rings: every interleaving (up to the preemption bound) of a
//! writer and a reader thread running the production ring code, including wrap-around
//! with padding, blocking waits through the `Notifier`, and close/end-of-stream.
//!
//! Every data access (copies, record headers, grants) is also an access to a loom cell
//! per data byte, so loom reports a read of a byte not ordered after its write through
//! the tail (or a write not ordered after the read through the head) as a causality
//! violation: with the tail stored `Relaxed` instead of `Release`, two models fail.
#![cfg(loom)]

use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::{Deadline, Endpoint as _, Error, Region, WaitStrategy};

fn message_region(capacity: usize, max: usize) -> Region {
    let config = Config::messages(capacity, max);
    let region = Region::heap(MessageRing::required_size(&config).unwrap()).unwrap();
    MessageRing::init(&region, &config).unwrap();
    region
}

/// Three messages whose records (8-byte header + 24 bytes) force a pad record on the
/// second lap of a 64-byte ring; the reader blocks, so lost wake-ups deadlock the model.
#[test]
fn message_ring_wraps_blocks_and_closes() {
    loom::model(|| {
        let region = message_region(64, 24);
        let mut writer = MessageWriter::attach(&region).unwrap();
        let mut reader = MessageReader::attach(&region).unwrap();
        writer.set_wait_strategy(WaitStrategy::Blocking);
        reader.set_wait_strategy(WaitStrategy::Blocking);
        let t = loom::thread::spawn(move || {
            for i in 0..3u8 {
                let len = [20usize, 24, 4][i as usize];
                writer.write(&vec![i; len], Deadline::never()).unwrap();
            }
            writer.close();
        });
        let mut buf = [0u8; 24];
        for i in 0..3u8 {
            let n = reader.read(&mut buf, Deadline::never()).unwrap();
            assert_eq!(n, [20usize, 24, 4][i as usize]);
            assert!(buf[..n].iter().all(|&b| b == i), "torn message");
        }
        assert_eq!(reader.read(&mut buf, Deadline::never()), Err(Error::Closed));
        t.join().unwrap();
    });
}

/// A writer blocked on a full ring is woken when the reader releases space, and a
/// reader that closes makes the blocked writer return `Closed`.
#[test]
fn message_ring_full_writer_is_woken_by_release_or_close() {
    loom::model(|| {
        let region = message_region(64, 24);
        let mut writer = MessageWriter::attach(&region).unwrap();
        let mut reader = MessageReader::attach(&region).unwrap();
        writer.set_wait_strategy(WaitStrategy::Blocking);
        // Fill: two 32-byte records.
        writer.try_write(&[1u8; 24]).unwrap();
        writer.try_write(&[2u8; 24]).unwrap();
        let t = loom::thread::spawn(move || {
            // Blocks until the reader frees a record, then blocks again until closed.
            let first = writer.write(&[3u8; 24], Deadline::never());
            let second = writer.write(&[4u8; 24], Deadline::never());
            (first, second)
        });
        let mut buf = [0u8; 24];
        assert_eq!(reader.try_read(&mut buf), Ok(24));
        reader.close();
        let (first, second) = t.join().unwrap();
        // The first write may fit in the freed space or see the close; the second
        // write cannot fit (no more reads) and must see the close.
        assert!(first == Ok(()) || first == Err(Error::Closed), "{first:?}");
        assert_eq!(second, Err(Error::Closed));
    });
}

/// A 64-byte byte ring's writer and reader (the reader's waits sleep at once).
fn byte_ring_pair() -> (ByteWriter, ByteReader) {
    let config = Config::bytes(64);
    let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
    ByteRing::init(&region, &config).unwrap();
    let writer = ByteWriter::attach(&region).unwrap();
    let mut reader = ByteReader::attach(&region).unwrap();
    reader.set_wait_strategy(WaitStrategy::Blocking);
    (writer, reader)
}

/// Everything `reader` reads, `chunk` bytes at most per blocking read, up to end of
/// stream.
fn read_to_end(reader: &mut ByteReader, chunk: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match reader.read(&mut buf, Deadline::never()) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Error::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Byte stream across the wrap with a blocking reader: bytes arrive in order, then
/// end of stream.
#[test]
fn byte_ring_streams_in_order_then_closes() {
    loom::model(|| {
        let (mut writer, mut reader) = byte_ring_pair();
        writer.set_wait_strategy(WaitStrategy::Blocking);
        let t = loom::thread::spawn(move || {
            let data: Vec<u8> = (0..100u8).collect();
            writer.write_all(&data, Deadline::never()).unwrap();
            writer.close();
        });
        assert_eq!(read_to_end(&mut reader, 48), (0..100u8).collect::<Vec<_>>());
        t.join().unwrap();
    });
}

/// Small writes, each echoed on the tail's line, read while the writer rewrites the
/// echo for the next one: the reader gets every byte once, in order (a torn echo is
/// never used).
#[test]
fn byte_ring_small_writes_are_read_in_order_through_the_echo() {
    loom::model(|| {
        let (mut writer, mut reader) = byte_ring_pair();
        let t = loom::thread::spawn(move || {
            for chunk in [&[1u8, 2, 3][..], &[4, 5], &[6, 7, 8, 9]] {
                assert_eq!(writer.try_write(chunk), Ok(chunk.len()));
            }
            writer.close();
        });
        assert_eq!(read_to_end(&mut reader, 4), (1..=9u8).collect::<Vec<_>>());
        t.join().unwrap();
    });
}
