//! Proves that the SPSC rings allocate nothing per message: a counting
//! global allocator wraps `System`, and after a warm-up 100,000 `try_write`/`try_read`
//! pairs on each ring kind — with grants, blocking calls that need not wait, full-ring
//! and empty-ring `WouldBlock`s (which check the peer's liveness, a `/proc` read into
//! stack buffers, once per `LIVENESS_RECHECK_INTERVAL`), wrap-around padding and
//! too-small buffers — allocate nothing at all.
//!
//! Allocations are counted per thread (`culvert_testkit::alloc`), so the test harness's own
//! threads cannot disturb the count.

mod common;

use std::time::Duration;

use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::{Deadline, Error, Region};
use culvert_testkit::alloc::{allocations_in, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const PAIRS: usize = 100_000;
const MAX_MESSAGE: usize = 256;
const SECOND: Duration = Duration::from_secs(1);
/// One round of every message-ring operation; `i` varies lengths and paths.
fn message_round(w: &mut MessageWriter, r: &mut MessageReader, i: usize) {
    let msg = [0xabu8; MAX_MESSAGE];
    let mut buf = [0u8; MAX_MESSAGE];
    let len = (i * 7) % (MAX_MESSAGE + 1);
    // The pair itself.
    w.try_write(&msg[..len]).unwrap();
    assert_eq!(r.try_read(&mut buf).unwrap(), len);
    // Empty ring.
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    // Grants.
    let mut g = w.reserve(len).unwrap();
    g.as_mut_slice().fill(i as u8);
    g.commit(len);
    assert_eq!(r.peek_len().unwrap(), len);
    let g = r.read_grant().unwrap();
    assert_eq!(g.len(), len);
    g.release();
    // Blocking calls that need not wait, and a buffer that is too small.
    w.write(&msg[..len], Deadline::after(SECOND)).unwrap();
    if len > 0 {
        assert!(matches!(
            r.try_read(&mut buf[..len - 1]),
            Err(Error::BufferTooSmall { .. })
        ));
    }
    assert_eq!(r.read(&mut buf, Deadline::after(SECOND)).unwrap(), len);
    if i % 1000 == 0 {
        // Fill the ring up to WouldBlock, then drain it.
        let mut n = 0;
        while w.try_write(&msg[..len]).is_ok() {
            n += 1;
        }
        assert!(matches!(w.try_write(&msg[..len]), Err(Error::WouldBlock)));
        for _ in 0..n {
            r.try_read(&mut buf).unwrap();
        }
    }
}

/// One round of every byte-ring operation.
fn byte_round(w: &mut ByteWriter, r: &mut ByteReader, i: usize) {
    let data = [0x5au8; 3000];
    let mut buf = [0u8; 3000];
    let len = 1 + (i * 13) % 3000;
    // The pair itself.
    assert_eq!(w.try_write(&data[..len]).unwrap(), len);
    let mut got = 0;
    while got < len {
        got += r.try_read(&mut buf[..len - got]).unwrap();
    }
    assert_eq!(r.try_read(&mut buf), Err(Error::WouldBlock));
    // Grants, across the wrap.
    let mut g = w.reserve(len).unwrap();
    let n = g.len();
    g.as_mut_slice().fill(i as u8);
    g.commit(n);
    let g = r.read_grant().unwrap();
    assert_eq!(g.len(), n);
    g.release(n);
    // Blocking calls that need not wait.
    w.write_all(&data[..len], Deadline::after(SECOND)).unwrap();
    r.read_exact(&mut buf[..len], Deadline::after(SECOND))
        .unwrap();
    assert_eq!(r.bytes_available().unwrap(), 0);
    if i % 1000 == 0 {
        while w.try_write(&data).is_ok() {}
        assert_eq!(w.try_write(&data), Err(Error::WouldBlock));
        while r.try_read(&mut buf).is_ok() {}
    }
}

#[test]
fn spsc_steady_state_allocates_nothing() {
    let config = Config::messages(4096, MAX_MESSAGE);
    let region = Region::heap(MessageRing::required_size(&config).unwrap()).unwrap();
    MessageRing::init(&region, &config).unwrap();
    let mut w = MessageWriter::attach(&region).unwrap();
    let mut r = MessageReader::attach(&region).unwrap();
    // Warm up (attach, lazy statics, the first clock reads).
    for i in 0..1000 {
        message_round(&mut w, &mut r, i);
    }
    let n = allocations_in(|| {
        for i in 0..PAIRS {
            message_round(&mut w, &mut r, i);
        }
    });
    assert_eq!(
        n, 0,
        "the message ring allocated {n} times in {PAIRS} rounds"
    );

    let config = Config::bytes(4096);
    let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
    ByteRing::init(&region, &config).unwrap();
    let mut w = ByteWriter::attach(&region).unwrap();
    let mut r = ByteReader::attach(&region).unwrap();
    for i in 0..1000 {
        byte_round(&mut w, &mut r, i);
    }
    let n = allocations_in(|| {
        for i in 0..PAIRS {
            byte_round(&mut w, &mut r, i);
        }
    });
    assert_eq!(n, 0, "the byte ring allocated {n} times in {PAIRS} rounds");

    // The counter works: an allocation inside the window is seen.
    let n = allocations_in(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!(n, 1, "the counting allocator must see a Vec");
}
