//! Cross-process streams through the SPSC rings: two re-executed copies of this test
//! binary (writer and reader) share a file mapped `MAP_SHARED`; the parent only
//! supervises (outer deadline, SIGKILL on failure) and compares the two sides' totals.
//!
//! * `spsc_ten_million_messages_across_processes`: 10,000,000 self-checking messages of
//!   seeded pseudo-random lengths `0..=256` through a 64 KiB `MessageRing`, written by
//!   `write` and by `reserve`/`commit`, read by `read` and by `read_grant`.
//! * `spsc_byte_stream_across_processes`: 256 MiB of a deterministic stream through a
//!   64 KiB `ByteRing` in random-sized writes, grants and reads; every byte is compared
//!   and a running checksum is kept on both sides.

mod common;

use culvert_ring::Endpoint as _;
use std::time::{Duration, Instant};

use common::{encode, fold, verify, Shared};
use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::{Deadline, Error, Region};
use culvert_sync::atomic::Ordering;
use culvert_testkit::{cross_test, fnv1a, CrossTest, Stream, XorShift, FNV_START};

/// Per-call deadline in the children: generous, but a stuck peer still ends the run.
const CALL: Duration = Duration::from_secs(60);

/// Control words.
const W_WRITER_SUM: usize = 0;
const W_READER_SUM: usize = 1;
const W_WRITER_COUNT: usize = 2;
const W_READER_COUNT: usize = 3;

// ---- messages ---------------------------------------------------------------------------

const MESSAGES: u64 = 10_000_000;
const MAX_MESSAGE: usize = 256;
const MSG_SEED: u64 = 0x00c0_ffee_1234_5678;

fn msg_config() -> Config {
    Config::messages(64 * 1024, MAX_MESSAGE)
}

fn message_writer(sh: &Shared) {
    let mut w = MessageWriter::attach(&sh.ring).unwrap();
    let mut lens = XorShift::new(MSG_SEED);
    let mut buf = [0u8; MAX_MESSAGE];
    let mut total = 0u64;
    for seq in 0..MESSAGES {
        let len = lens.below(MAX_MESSAGE as u64 + 1) as usize;
        // Every fourth message is built in place through a grant when there is room.
        if seq % 4 == 0 {
            if let Ok(mut g) = w.reserve(len) {
                total = fold(total, encode(seq, g.as_mut_slice()));
                g.commit(len);
                continue;
            }
        }
        total = fold(total, encode(seq, &mut buf[..len]));
        w.write(&buf[..len], Deadline::after(CALL))
            .unwrap_or_else(|e| panic!("writer: message {seq}: {e}"));
    }
    sh.word(W_WRITER_SUM).store(total, Ordering::Release);
    sh.word(W_WRITER_COUNT).store(MESSAGES, Ordering::Release);
    w.close();
}

fn message_reader(sh: &Shared) {
    let mut r = MessageReader::attach(&sh.ring).unwrap();
    let mut lens = XorShift::new(MSG_SEED);
    let mut buf = [0u8; MAX_MESSAGE];
    let mut total = 0u64;
    for seq in 0..MESSAGES {
        let len = lens.below(MAX_MESSAGE as u64 + 1) as usize;
        let sum = if seq % 3 == 0 {
            // Zero-copy: wait for the message, then read it in place.
            let n = r
                .wait_peek_len(Deadline::after(CALL))
                .unwrap_or_else(|e| panic!("reader: peek {seq}: {e}"));
            assert_eq!(n, len, "message {seq}: peeked length");
            let g = r.read_grant().unwrap();
            let sum = verify(seq, len, g.as_slice()).unwrap_or_else(|e| panic!("{e}"));
            g.release();
            sum
        } else {
            let n = r
                .read(&mut buf, Deadline::after(CALL))
                .unwrap_or_else(|e| panic!("reader: message {seq}: {e}"));
            verify(seq, len, &buf[..n]).unwrap_or_else(|e| panic!("{e}"))
        };
        total = fold(total, sum);
    }
    assert_eq!(
        r.read(&mut buf, Deadline::after(CALL)),
        Err(Error::Closed),
        "end of stream after the last message"
    );
    sh.word(W_READER_SUM).store(total, Ordering::Release);
    sh.word(W_READER_COUNT).store(MESSAGES, Ordering::Release);
}

/// Runs a writer and a reader process on a fresh ring of `size` bytes laid out by
/// `init`. In a re-executed child, runs its role and returns `None`; in the parent,
/// returns the shared file and how long the two children took.
fn run_pair(
    test: CrossTest,
    size: usize,
    init: impl FnOnce(&Region),
    writer: fn(&Shared),
    reader: fn(&Shared),
) -> Option<(Shared, Duration)> {
    if let Some((role, file, _)) = common::role() {
        let sh = Shared::open(&file, size);
        match role.as_str() {
            "writer" => writer(&sh),
            "reader" => reader(&sh),
            _ => unreachable!("{role}"),
        }
        return None;
    }
    let sh = Shared::create(size);
    init(&sh.ring);
    let sup = test.supervise(Duration::from_secs(240));
    let start = Instant::now();
    let reader = sup.spawn(&mut common::child(test, "reader", &sh.path, 0));
    let writer = sup.spawn(&mut common::child(test, "writer", &sh.path, 0));
    sup.wait_ok(writer);
    sup.wait_ok(reader);
    Some((sh, start.elapsed()))
}

#[test]
fn spsc_ten_million_messages_across_processes() {
    let test = cross_test!(spsc_ten_million_messages_across_processes);
    let size = MessageRing::required_size(&msg_config()).unwrap();
    let init = |ring: &Region| MessageRing::init(ring, &msg_config()).unwrap();
    let Some((sh, elapsed)) = run_pair(test, size, init, message_writer, message_reader) else {
        return;
    };
    let ws = sh.word(W_WRITER_SUM).load(Ordering::Acquire);
    let rs = sh.word(W_READER_SUM).load(Ordering::Acquire);
    assert_eq!(sh.word(W_WRITER_COUNT).load(Ordering::Acquire), MESSAGES);
    assert_eq!(sh.word(W_READER_COUNT).load(Ordering::Acquire), MESSAGES);
    assert_ne!(ws, 0);
    assert_eq!(ws, rs, "writer and reader totals differ");
    eprintln!(
        "{MESSAGES} messages across processes in {elapsed:?} ({:.1} M msg/s), total {rs:#018x}",
        MESSAGES as f64 / elapsed.as_secs_f64() / 1e6
    );
}

// ---- byte stream ------------------------------------------------------------------------

const STREAM_BYTES: u64 = 256 << 20;
const STREAM_SEED: u64 = 0x0b17_e5ee_d000_0001;
/// Largest write or read attempted at once.
const CHUNK: usize = 16 * 1024;

fn byte_config() -> Config {
    Config::bytes(64 * 1024)
}

fn byte_writer(sh: &Shared) {
    let mut w = ByteWriter::attach(&sh.ring).unwrap();
    let mut rng = XorShift::new(STREAM_SEED ^ 1);
    let mut stream = Stream::new(STREAM_SEED);
    let mut buf = vec![0u8; CHUNK];
    let mut sum = FNV_START;
    while stream.pos() < STREAM_BYTES {
        let want =
            (rng.below(CHUNK as u64) as usize + 1).min((STREAM_BYTES - stream.pos()) as usize);
        if rng.one_in(3) {
            if let Ok(mut g) = w.reserve(want) {
                let n = g.len();
                let slice = g.as_mut_slice();
                stream.fill(slice);
                sum = fnv1a(sum, slice);
                g.commit(n);
                continue;
            }
        }
        let chunk = &mut buf[..want];
        stream.fill(chunk);
        sum = fnv1a(sum, chunk);
        w.write_all(chunk, Deadline::after(CALL))
            .unwrap_or_else(|e| panic!("byte writer at {}: {e}", stream.pos()));
    }
    sh.word(W_WRITER_SUM).store(sum, Ordering::Release);
    sh.word(W_WRITER_COUNT)
        .store(stream.pos(), Ordering::Release);
    w.close();
}

fn byte_reader(sh: &Shared) {
    let mut r = ByteReader::attach(&sh.ring).unwrap();
    let mut rng = XorShift::new(STREAM_SEED ^ 2);
    let mut expected = Stream::new(STREAM_SEED);
    let mut buf = vec![0u8; CHUNK];
    let mut want_buf = vec![0u8; 64 * 1024];
    let mut sum = FNV_START;
    loop {
        let at = expected.pos();
        if rng.one_in(3) {
            match r.read_grant() {
                Ok(g) => {
                    // Consume a random prefix of what is granted.
                    let n = (rng.below(g.len() as u64) as usize + 1).min(g.len());
                    let got = &g.as_slice()[..n];
                    let want = &mut want_buf[..n];
                    expected.fill(want);
                    assert!(
                        got == &want[..],
                        "stream differs in bytes {at}..{}",
                        at + n as u64
                    );
                    sum = fnv1a(sum, got);
                    g.release(n);
                    continue;
                }
                Err(Error::WouldBlock) => {}
                Err(Error::Closed) => break,
                Err(e) => panic!("byte reader grant at {at}: {e}"),
            }
        }
        let len = rng.below(CHUNK as u64) as usize + 1;
        match r.read(&mut buf[..len], Deadline::after(CALL)) {
            Ok(n) => {
                let want = &mut want_buf[..n];
                expected.fill(want);
                assert!(
                    buf[..n] == want[..],
                    "stream differs in bytes {at}..{}",
                    at + n as u64
                );
                sum = fnv1a(sum, &buf[..n]);
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("byte reader at {at}: {e}"),
        }
    }
    assert_eq!(
        expected.pos(),
        STREAM_BYTES,
        "bytes read before end of stream"
    );
    sh.word(W_READER_SUM).store(sum, Ordering::Release);
    sh.word(W_READER_COUNT)
        .store(expected.pos(), Ordering::Release);
}

#[test]
fn spsc_byte_stream_across_processes() {
    let test = cross_test!(spsc_byte_stream_across_processes);
    let size = ByteRing::required_size(&byte_config()).unwrap();
    let init = |ring: &Region| ByteRing::init(ring, &byte_config()).unwrap();
    let Some((sh, elapsed)) = run_pair(test, size, init, byte_writer, byte_reader) else {
        return;
    };
    let ws = sh.word(W_WRITER_SUM).load(Ordering::Acquire);
    let rs = sh.word(W_READER_SUM).load(Ordering::Acquire);
    assert_eq!(
        sh.word(W_WRITER_COUNT).load(Ordering::Acquire),
        STREAM_BYTES
    );
    assert_eq!(
        sh.word(W_READER_COUNT).load(Ordering::Acquire),
        STREAM_BYTES
    );
    assert_eq!(ws, rs, "writer and reader checksums differ");
    eprintln!(
        "{} MiB across processes in {elapsed:?} ({:.0} MiB/s), checksum {rs:#018x}",
        STREAM_BYTES >> 20,
        (STREAM_BYTES >> 20) as f64 / elapsed.as_secs_f64()
    );
}
