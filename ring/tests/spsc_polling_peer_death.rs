//! A peer SIGKILLed while the survivor only polls non-blocking calls: the survivor must
//! get `Error::PeerDied` from `try_*` within a bounded time, not `WouldBlock` forever.
//!
//! * `polling_byte_reader_drains_then_sees_peer_died`: a child writer streams a known
//!   byte pattern with `try_write` and counts what it committed; the parent polls
//!   `try_read` with short sleeps. After the SIGKILL the parent must read every byte the
//!   writer committed (checked against the pattern and against the ring: nothing is
//!   left), and only then get `PeerDied`.
//! * `polling_message_reader_drains_then_sees_peer_died`: the same with a message ring
//!   and sequence-numbered messages.
//! * `polling_writers_see_peer_died`: a child reader attaches and reads nothing; the
//!   parent fills the ring, the child is killed, and the parent's polled `try_write`
//!   (byte ring) and `try_write` (message ring) must report `PeerDied`.

mod common;

use std::time::{Duration, Instant};

use common::{encode, verify, wait_flag, Shared};
use culvert_ring::spsc::{
    ByteReader, ByteRing, ByteWriter, Config, MessageReader, MessageRing, MessageWriter,
};
use culvert_ring::Error;
use culvert_sync::atomic::Ordering;
use culvert_testkit::{cross_test, mix, ChildId, CrossTest, Supervisor};

/// How long after the SIGKILL a poller may take to see `PeerDied`: the liveness
/// interval plus room for a loaded machine.
const DETECT_BOUND: Duration = Duration::from_secs(2);
/// Sleep between two polls of the survivor.
const POLL_SLEEP: Duration = Duration::from_micros(200);
/// How long the child streams before it is killed.
const STREAM_FOR: Duration = Duration::from_millis(30);

/// Control words.
const W_ATTACHED: usize = 0;
/// Bytes (or messages) the child writer committed.
const W_COUNT: usize = 1;
/// Which ring the child attaches to: 1 byte ring, 2 message ring.
const W_KIND: usize = 2;

const KIND_BYTES: u64 = 1;
const KIND_MESSAGES: u64 = 2;

fn byte_config() -> Config {
    Config::bytes(4096)
}

fn message_config() -> Config {
    Config::messages(4096, 200)
}

/// Byte `i` of the byte stream.
fn stream_byte(i: u64) -> u8 {
    (mix(i) >> 56) as u8
}

fn message_len(seq: u64) -> usize {
    (mix(seq ^ 0x5eed) % 201) as usize
}

/// One shared size for both kinds, so a child can open the file before it knows which.
fn ring_size() -> usize {
    ByteRing::required_size(&byte_config())
        .unwrap()
        .max(MessageRing::required_size(&message_config()).unwrap())
}

/// In a re-executed child: plays `expected`; true if this process was a child.
fn run_child(expected: &str) -> bool {
    let Some((role, file, _seed)) = common::role() else {
        return false;
    };
    assert_eq!(role, expected);
    let sh = Shared::open(&file, ring_size());
    match (role.as_str(), sh.word(W_KIND).load(Ordering::Acquire)) {
        ("writer", KIND_BYTES) => child_byte_writer(&sh),
        ("writer", KIND_MESSAGES) => child_message_writer(&sh),
        ("reader", KIND_BYTES) => {
            let _r = ByteReader::attach(&sh.ring).unwrap();
            idle_until_killed(&sh);
        }
        ("reader", KIND_MESSAGES) => {
            let _r = MessageReader::attach(&sh.ring).unwrap();
            idle_until_killed(&sh);
        }
        other => panic!("unknown child {other:?}"),
    }
    true
}

/// Announces the attach and waits for the SIGKILL (bounded, in case the parent died).
fn idle_until_killed(sh: &Shared) -> ! {
    sh.word(W_ATTACHED).store(1, Ordering::Release);
    std::thread::sleep(Duration::from_secs(60));
    panic!("the parent never killed this child");
}

/// Streams the byte pattern with `try_write` until killed, counting committed bytes.
fn child_byte_writer(sh: &Shared) {
    let mut w = ByteWriter::attach(&sh.ring).unwrap();
    sh.word(W_ATTACHED).store(1, Ordering::Release);
    let start = Instant::now();
    let mut next = 0u64;
    let mut chunk = [0u8; 300];
    while start.elapsed() < Duration::from_secs(60) {
        let len = 1 + (mix(next) % chunk.len() as u64) as usize;
        for (k, b) in chunk[..len].iter_mut().enumerate() {
            *b = stream_byte(next + k as u64);
        }
        match w.try_write(&chunk[..len]) {
            Ok(n) => {
                next += n as u64;
                sh.word(W_COUNT).store(next, Ordering::Release);
            }
            Err(Error::WouldBlock) => std::thread::yield_now(),
            Err(e) => panic!("child writer: {e}"),
        }
    }
    panic!("the parent never killed this child");
}

/// Streams sequence-numbered messages with `try_write` until killed, counting them.
fn child_message_writer(sh: &Shared) {
    let mut w = MessageWriter::attach(&sh.ring).unwrap();
    sh.word(W_ATTACHED).store(1, Ordering::Release);
    let start = Instant::now();
    let mut seq = 0u64;
    let mut msg = [0u8; 200];
    while start.elapsed() < Duration::from_secs(60) {
        let len = message_len(seq);
        encode(seq, &mut msg[..len]);
        match w.try_write(&msg[..len]) {
            Ok(()) => {
                seq += 1;
                sh.word(W_COUNT).store(seq, Ordering::Release);
            }
            Err(Error::WouldBlock) => std::thread::yield_now(),
            Err(e) => panic!("child writer: {e}"),
        }
    }
    panic!("the parent never killed this child");
}

/// A fresh shared file for `kind`, its supervisor, and the child spawned as `role`.
fn start(test: CrossTest, kind: u64, role: &str) -> (Shared, Supervisor, ChildId) {
    let sh = Shared::create(ring_size());
    match kind {
        KIND_BYTES => ByteRing::init(&sh.ring, &byte_config()).unwrap(),
        _ => MessageRing::init(&sh.ring, &message_config()).unwrap(),
    }
    sh.word(W_KIND).store(kind, Ordering::Release);
    let sup = test.supervise(Duration::from_secs(60));
    let child = sup.spawn(&mut common::child(test, role, &sh.path, 0));
    wait_flag(&sup, sh.word(W_ATTACHED), "waiting for the child to attach");
    (sh, sup, child)
}

/// SIGKILLs the child (which must not have exited by itself); returns when.
fn kill(sup: &Supervisor, child: ChildId) -> Instant {
    sup.kill(child);
    let at = Instant::now();
    let status = sup.wait(child);
    assert!(!status.success(), "the child exited by itself: {status}");
    at
}

/// Fails the test once `DETECT_BOUND` passed since the kill without `PeerDied`.
fn still_waiting(sup: &Supervisor, killed_at: Instant, what: &str) {
    sup.check(what);
    let waited = killed_at.elapsed();
    assert!(
        waited <= DETECT_BOUND,
        "{what} still polling {waited:?} after the kill, no PeerDied"
    );
}

fn check_detect(killed_at: Instant) -> Duration {
    let took = killed_at.elapsed();
    assert!(
        took <= DETECT_BOUND,
        "PeerDied came {took:?} after the kill"
    );
    took
}

#[test]
fn polling_byte_reader_drains_then_sees_peer_died() {
    let test = cross_test!(polling_byte_reader_drains_then_sees_peer_died);
    if run_child("writer") {
        return;
    }
    let (sh, sup, child) = start(test, KIND_BYTES, "writer");
    let mut r = ByteReader::attach(&sh.ring).unwrap();
    let mut buf = [0u8; 1024];
    let mut got = 0u64;
    let mut read = |r: &mut ByteReader, got: &mut u64| -> Result<usize, Error> {
        let n = r.try_read(&mut buf)?;
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, stream_byte(*got + k as u64), "byte {}", *got + k as u64);
        }
        *got += n as u64;
        Ok(n)
    };
    // Read while the writer streams, then kill it mid-stream.
    let streaming = Instant::now();
    while streaming.elapsed() < STREAM_FOR {
        match read(&mut r, &mut got) {
            Ok(_) | Err(Error::WouldBlock) => std::thread::sleep(POLL_SLEEP),
            Err(e) => panic!("while the writer lived: {e}"),
        }
    }
    let killed_at = kill(&sup, child);
    let committed = sh.word(W_COUNT).load(Ordering::Acquire);
    loop {
        still_waiting(&sup, killed_at, "try_read");
        match read(&mut r, &mut got) {
            Ok(_) | Err(Error::WouldBlock) => std::thread::sleep(POLL_SLEEP),
            Err(Error::PeerDied) => break,
            Err(e) => panic!("after the kill: {e}"),
        }
    }
    let took = check_detect(killed_at);
    assert!(
        got >= committed,
        "read {got} bytes, the writer counted {committed}"
    );
    // Everything the writer committed was read before PeerDied.
    assert_eq!(r.bytes_available(), Ok(0), "bytes left after PeerDied");
    eprintln!("read {got} bytes; PeerDied {took:?} after the kill");
}

#[test]
fn polling_message_reader_drains_then_sees_peer_died() {
    let test = cross_test!(polling_message_reader_drains_then_sees_peer_died);
    if run_child("writer") {
        return;
    }
    let (sh, sup, child) = start(test, KIND_MESSAGES, "writer");
    let mut r = MessageReader::attach(&sh.ring).unwrap();
    let mut buf = [0u8; 200];
    let mut got = 0u64;
    let mut read = |r: &mut MessageReader, got: &mut u64| -> Result<(), Error> {
        let n = r.try_read(&mut buf)?;
        verify(*got, message_len(*got), &buf[..n]).unwrap_or_else(|e| panic!("{e}"));
        *got += 1;
        Ok(())
    };
    let streaming = Instant::now();
    while streaming.elapsed() < STREAM_FOR {
        match read(&mut r, &mut got) {
            Ok(()) | Err(Error::WouldBlock) => std::thread::sleep(POLL_SLEEP),
            Err(e) => panic!("while the writer lived: {e}"),
        }
    }
    let killed_at = kill(&sup, child);
    let committed = sh.word(W_COUNT).load(Ordering::Acquire);
    loop {
        still_waiting(&sup, killed_at, "try_read");
        match read(&mut r, &mut got) {
            Ok(()) | Err(Error::WouldBlock) => std::thread::sleep(POLL_SLEEP),
            Err(Error::PeerDied) => break,
            Err(e) => panic!("after the kill: {e}"),
        }
    }
    let took = check_detect(killed_at);
    assert!(
        got == committed || got == committed + 1,
        "read {got} messages, the writer counted {committed}"
    );
    // Nothing committed is left: the next poll finds nothing to read.
    assert!(matches!(
        r.peek_len(),
        Err(Error::WouldBlock) | Err(Error::PeerDied)
    ));
    eprintln!("read {got} messages; PeerDied {took:?} after the kill");
}

#[test]
fn polling_writers_see_peer_died() {
    let test = cross_test!(polling_writers_see_peer_died);
    if run_child("reader") {
        return;
    }
    for kind in [KIND_BYTES, KIND_MESSAGES] {
        let (sh, sup, child) = start(test, kind, "reader");
        let mut try_write: Box<dyn FnMut() -> Result<(), Error>> = match kind {
            KIND_BYTES => {
                let mut w = ByteWriter::attach(&sh.ring).unwrap();
                Box::new(move || w.try_write(&[7u8; 100]).map(|_| ()))
            }
            _ => {
                let mut w = MessageWriter::attach(&sh.ring).unwrap();
                Box::new(move || w.try_write(&[7u8; 100]))
            }
        };
        // Fill the ring while the reader lives: only WouldBlock when full.
        let mut blocked = 0;
        while blocked < 100 {
            sup.check("filling the ring");
            match try_write() {
                Ok(()) => blocked = 0,
                Err(Error::WouldBlock) => blocked += 1,
                Err(e) => panic!("kind {kind}: while the reader lived: {e}"),
            }
        }
        let killed_at = kill(&sup, child);
        loop {
            still_waiting(&sup, killed_at, "try_write");
            match try_write() {
                Err(Error::WouldBlock) => std::thread::sleep(POLL_SLEEP),
                Err(Error::PeerDied) => break,
                other => panic!("kind {kind}: after the kill: {other:?}"),
            }
        }
        let took = check_detect(killed_at);
        eprintln!("kind {kind}: PeerDied {took:?} after the kill");
    }
}
