//! Pipe edge cases: non-blocking message writes, zero-length reads, peek and
//! `peer_pid` around a gone peer, `transact` preconditions, writes cut short, and a
//! dead peer noticed by non-blocking and short-timeout calls. Cross-process cases
//! run the test binary again as a child playing a role (`culvert_testkit`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use common::pipe::spawn_with_pipe;
use culvert::pipe::{self, PipeEnd, PipeMode, PipeOptions, ReadMode};
use culvert::Error;
use culvert_testkit::{
    cross_test, fill, fnv1a_words, role, within, ChildId, Supervisor, FNV_START,
};

/// Reads one byte (blocking, with a timeout) so the child is known to have attached
/// and written.
fn read_one(end: &mut PipeEnd) {
    end.set_read_timeout(Some(Duration::from_secs(20)));
    let mut one = [0u8; 1];
    end.read_exact(&mut one).unwrap();
}

// ---- non-blocking message writes -------------------------------------------------------

#[test]
fn nonblocking_long_message_is_written_whole_or_not_at_all() {
    const KIB: usize = 1024;
    let opts = PipeOptions::default().buffers(64 * KIB);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    a.set_nonblocking(true);
    // Leave about 24 KiB free; a 24 KiB message takes two fragments.
    for _ in 0..5 {
        a.write_all(&[1u8; 8 * KIB]).unwrap();
    }
    let (a, r) = within(Duration::from_secs(10), move || {
        let r = a.write_message(&[2u8; 24 * KIB]);
        (a, r)
    });
    let mut a = a;
    assert!(matches!(r, Err(Error::WouldBlock)), "{r:?}");
    // A message that can never fit whole fails at once, nobody reading.
    let max = a.max_nonblocking_message();
    assert!(max > 24 * KIB && max < 64 * KIB, "{max}");
    let (a2, r) = within(Duration::from_secs(10), move || {
        let r = a.write_message(&vec![3u8; 1 << 20]);
        (a, r)
    });
    a = a2;
    assert!(
        matches!(r, Err(Error::MessageTooLarge { len, max: m }) if len == 1 << 20 && m == max),
        "{r:?}"
    );
    // The reader sees only the five whole messages: nothing of the refused ones.
    b.set_nonblocking(true);
    let mut buf = vec![0u8; 64 * KIB];
    for _ in 0..5 {
        let m = b.read_message(&mut buf).unwrap();
        assert_eq!((m.len, m.more), (8 * KIB, false));
        assert!(buf[..m.len].iter().all(|&x| x == 1));
    }
    assert!(matches!(b.read_message(&mut buf), Err(Error::WouldBlock)));
    // With room, a long message (several fragments) goes through whole.
    a.write_message(&[4u8; 24 * KIB]).unwrap();
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!((m.len, m.more), (24 * KIB, false));
    assert!(buf[..m.len].iter().all(|&x| x == 4));
    // As does the longest non-blocking message, on an empty ring.
    a.write_message(&vec![5u8; max]).unwrap();
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!((m.len, m.more), (max, false));
}

// ---- zero-length reads ------------------------------------------------------------------

#[test]
fn empty_read_message_changes_nothing() {
    for shared in [false, true] {
        let opts = PipeOptions::default().shared(shared);
        let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
        a.write_all(b"hello").unwrap();
        let m = b.read_message(&mut []).unwrap();
        assert_eq!((m.len, m.more), (0, false), "shared {shared}");
        let mut buf = [0u8; 2];
        let m = b.read_message(&mut buf).unwrap();
        assert_eq!((m.len, m.more, &buf), (2, true, b"he"), "shared {shared}");
        let m = b.read_message(&mut []).unwrap();
        assert_eq!((m.len, m.more), (0, true), "shared {shared}");
        let mut rest = [0u8; 8];
        let m = b.read_message(&mut rest).unwrap();
        assert_eq!(
            (m.len, m.more, &rest[..3]),
            (3, false, &b"llo"[..]),
            "shared {shared}"
        );
        // The end is still usable.
        a.write_all(b"next").unwrap();
        let m = b.read_message(&mut rest).unwrap();
        assert_eq!(&rest[..m.len], b"next", "shared {shared}");
    }
}

#[test]
fn empty_read_on_an_empty_pipe_returns_at_once() {
    for mode in [PipeMode::Byte, PipeMode::Message] {
        let (a, b) = pipe::anonymous(mode, &PipeOptions::default()).unwrap();
        let (b, r) = within(Duration::from_secs(10), move || {
            let mut b = b;
            let n = b.read(&mut []).unwrap();
            let m = b.read_message(&mut []).unwrap();
            (b, (n, m.len, m.more))
        });
        assert_eq!(r, (0, 0, false), "{mode:?}");
        drop((a, b));
    }
}

// ---- peek -------------------------------------------------------------------------------

#[test]
fn shared_peek_keeps_a_zero_length_message() {
    let opts = PipeOptions::default().shared(true);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    a.write_all(b"").unwrap();
    a.write_all(b"x").unwrap();
    let p = b.peek().unwrap();
    assert_eq!((p.bytes_available, p.next_message_len), (0, Some(0)));
    let mut buf = [0u8; 4];
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!((m.len, m.more), (0, false));
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"x");
}

#[test]
fn shared_byte_peek_counts_committed_bytes() {
    let opts = PipeOptions::default().shared(true);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &opts).unwrap();
    a.write_all(&[7u8; 150]).unwrap();
    assert_eq!(b.peek().unwrap().bytes_available, 150);
    let mut buf = [0u8; 30];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(b.peek().unwrap().bytes_available, 120);
}

#[test]
fn peek_fails_once_the_peer_closed_and_everything_was_read() {
    for shared in [false, true] {
        for mode in [PipeMode::Byte, PipeMode::Message] {
            let opts = PipeOptions::default().shared(shared);
            let (mut a, mut b) = pipe::anonymous(mode, &opts).unwrap();
            a.write_all(b"last").unwrap();
            drop(a);
            let p = b.peek().unwrap();
            assert_eq!(p.bytes_available, 4, "{mode:?} shared {shared}");
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).unwrap();
            let e = b.peek().unwrap_err();
            assert!(
                matches!(e, Error::Closed),
                "{mode:?} shared {shared}: {e:?}"
            );
            assert_eq!(std::io::Error::from(e).kind(), ErrorKind::BrokenPipe);
        }
    }
}

// ---- a peer that is gone -------------------------------------------------------------------

#[test]
fn writes_to_a_pending_end_dropped_unused_fail() {
    for mode in [PipeMode::Byte, PipeMode::Message] {
        let (mut a, pending) = pipe::anonymous_pending(mode, &PipeOptions::default()).unwrap();
        drop(pending);
        let e = a.write_all(b"nobody will read this").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{mode:?}");
    }
}

#[test]
fn writes_to_a_child_that_exited_before_attaching_fail() {
    if role().is_some() {
        std::process::exit(0); // never attaches
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(writes_to_a_child_that_exited_before_attaching_fail),
        Duration::from_secs(60),
        "quit",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    sup.wait_ok(child);
    let e = end.write_all(b"to nobody").unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{e:?}"
    );
}

#[test]
fn peer_pid_is_none_after_disconnect() {
    let (a, mut b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let me = std::process::id();
    assert_eq!((a.peer_pid(), b.peer_pid()), (Some(me), Some(me)));
    b.disconnect();
    assert_eq!(a.peer_pid(), None);
    assert_eq!(b.peer_pid(), None);
    drop(a);
}

#[test]
fn blocking_byte_write_cut_short_by_the_reader_closing_fails() {
    let opts = PipeOptions::default().buffers(4096);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &opts).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        b.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(b);
    });
    let r = a.write(&[9u8; 16384]);
    reader.join().unwrap();
    let e = r.expect_err("a write cut short must fail, not return a short count");
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
}

// ---- transact ------------------------------------------------------------------------------

#[test]
fn transact_with_a_message_waiting_is_busy_and_sends_nothing() {
    for shared in [false, true] {
        let opts = PipeOptions::default().shared(shared);
        let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
        b.write_all(b"old").unwrap();
        let mut reply = [0u8; 8];
        let e = a.transact(b"request", &mut reply).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Busy {
                    reason: culvert::BusyReason::MessageWaiting
                }
            ),
            "shared {shared}: {e:?}"
        );
        b.set_nonblocking(true);
        assert!(matches!(b.read_message(&mut reply), Err(Error::WouldBlock)));
        let m = a.read_message(&mut reply).unwrap();
        assert_eq!(&reply[..m.len], b"old");
    }
}

#[test]
fn transact_in_byte_read_mode_is_refused_and_sends_nothing() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    a.set_read_mode(ReadMode::Byte).unwrap();
    let mut reply = [0u8; 8];
    let e = a.transact(b"request", &mut reply).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    b.set_nonblocking(true);
    assert!(matches!(b.read_message(&mut reply), Err(Error::WouldBlock)));
}

// ---- a killed peer, seen by non-blocking and short-timeout calls ----------------------------

/// Child: attaches, writes `n` bytes, then sleeps until killed.
fn write_then_sleep(n: usize) {
    let mut end = PipeEnd::from_inherited().unwrap();
    end.write_all(&vec![42u8; n]).unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

/// Kills `child`, then polls `op` until it returns `Some`, failing after 5 s.
fn poll_after_kill<T>(sup: &Supervisor, child: ChildId, mut op: impl FnMut() -> Option<T>) -> T {
    sup.kill(child);
    sup.wait(child);
    let killed = Instant::now();
    loop {
        if let Some(t) = op() {
            return t;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the dead peer was never reported"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn nonblocking_reader_notices_a_killed_writer_after_the_rest() {
    for shared in [false, true] {
        if role().is_some() {
            return write_then_sleep(100);
        }
        let opts = PipeOptions::default().shared(shared);
        let (sup, mut end, child) = spawn_with_pipe(
            cross_test!(nonblocking_reader_notices_a_killed_writer_after_the_rest),
            Duration::from_secs(60),
            "writer",
            PipeMode::Byte,
            &opts,
        );
        read_one(&mut end);
        end.set_nonblocking(true);
        let mut got = 1;
        let mut buf = [0u8; 64];
        let eof = poll_after_kill(&sup, child, || match end.read(&mut buf) {
            Ok(0) => Some(true),
            Ok(n) => {
                got += n;
                None
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => panic!("{e:?}"),
        });
        assert!(eof);
        assert_eq!(got, 100, "shared {shared}");
        // peek reports the gone peer too.
        assert!(end.peek().is_err());
    }
}

#[test]
fn short_timeout_reader_notices_a_killed_writer() {
    if role().is_some() {
        return write_then_sleep(1);
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(short_timeout_reader_notices_a_killed_writer),
        Duration::from_secs(60),
        "writer",
        PipeMode::Message,
        &PipeOptions::default(),
    );
    read_one(&mut end);
    end.set_read_timeout(Some(Duration::from_millis(5)));
    let mut buf = [0u8; 8];
    let e = poll_after_kill(&sup, child, || match end.read_message(&mut buf) {
        Err(Error::Timeout) => None,
        other => Some(other),
    });
    assert!(matches!(e, Err(Error::PeerDied | Error::Closed)), "{e:?}");
}

#[test]
fn nonblocking_writer_notices_a_killed_reader() {
    if role().is_some() {
        let _end = PipeEnd::from_inherited().unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let opts = PipeOptions::default().buffers(4096);
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(nonblocking_writer_notices_a_killed_reader),
        Duration::from_secs(60),
        "reader",
        PipeMode::Byte,
        &opts,
    );
    let attached = Instant::now();
    while !end.is_peer_attached() {
        assert!(attached.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(1));
    }
    end.set_nonblocking(true);
    // Fill the ring.
    loop {
        match end.write(&[1u8; 1024]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let e = poll_after_kill(&sup, child, || match end.write(&[1u8; 16]) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Ok(_) => panic!("a full ring accepted a write"),
        Err(e) => Some(e),
    });
    assert!(
        matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{e:?}"
    );
}

// ---- half-close ----------------------------------------------------------------------------

/// After `shutdown_write` the peer drains what was written, then reads end of stream;
/// this end's writes fail with `Closed` while it still reads what the peer writes.
#[test]
fn shutdown_write_gives_the_peer_end_of_stream_and_keeps_reading() {
    for mode in [PipeMode::Byte, PipeMode::Message] {
        for shared in [false, true] {
            let what = format!("{mode:?}, shared {shared}");
            let opts = PipeOptions::default().shared(shared).max_message(4096);
            let (mut a, mut b) = pipe::anonymous(mode, &opts).unwrap();
            b.set_read_timeout(Some(Duration::from_secs(10)));
            a.set_read_timeout(Some(Duration::from_secs(10)));
            a.write_all(b"last words").unwrap();
            a.shutdown_write().unwrap();
            a.shutdown_write().unwrap();
            assert!(
                matches!(a.write_message(b"more"), Err(Error::Closed)),
                "{what}: write after shutdown_write"
            );
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"last words", "{what}");
            // The other direction is untouched.
            b.write_all(b"reply").unwrap();
            let mut buf = [0u8; 16];
            let n = a.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"reply", "{what}");
            drop(b);
            assert_eq!(
                a.read(&mut buf).unwrap(),
                0,
                "{what}: end of stream after the drop"
            );
        }
    }
}

/// A half-closed direction is end of stream at once: once drained, the reading end is
/// ready in a wait set (a read would return end of stream, not block) and `peek` says
/// `Closed`, although the peer end itself is still attached.
#[test]
fn a_drained_half_closed_direction_is_ready_and_peeks_closed() {
    for mode in [PipeMode::Byte, PipeMode::Message] {
        for shared in [false, true] {
            let what = format!("{mode:?}, shared {shared}");
            let opts = PipeOptions::default().shared(shared).max_message(4096);
            let (mut a, mut b) = pipe::anonymous(mode, &opts).unwrap();
            a.write_all(b"x").unwrap();
            a.shutdown_write().unwrap();
            let mut set = culvert::WaitSet::new();
            let ready = set
                .wait(
                    &mut [&mut b as &mut dyn culvert::Waitable],
                    Duration::from_secs(5),
                )
                .map(<[usize]>::to_vec);
            assert_eq!(ready, Ok(vec![0]), "{what}: the last byte");
            let peek = b.peek();
            assert!(
                matches!(peek, Ok(p) if p.bytes_available == 1),
                "{what}: {peek:?}"
            );
            let mut buf = [0u8; 4];
            assert_eq!(b.read(&mut buf).unwrap(), 1, "{what}");
            let ready = set
                .wait(
                    &mut [&mut b as &mut dyn culvert::Waitable],
                    Duration::from_secs(5),
                )
                .map(<[usize]>::to_vec);
            assert_eq!(ready, Ok(vec![0]), "{what}: end of stream is ready");
            assert!(
                matches!(b.peek(), Err(Error::Closed)),
                "{what}: {:?}",
                b.peek()
            );
            assert_eq!(b.read(&mut buf).unwrap(), 0, "{what}");
            assert!(b.is_peer_attached(), "{what}");
        }
    }
}

/// Across processes: a child sends a request of unknown length, half-closes, and reads
/// the reply to end of stream; the parent reads the request to end of stream first.
#[test]
fn shutdown_write_across_processes_delimits_a_request() {
    const REQUEST: usize = 3 << 20;
    if role().is_some() {
        let mut end = PipeEnd::from_inherited().unwrap();
        let mut seed = 7u64;
        let mut req = vec![0u8; REQUEST];
        fill(&mut req, &mut seed);
        end.write_all(&req).unwrap();
        end.shutdown_write().unwrap();
        let mut reply = Vec::new();
        end.read_to_end(&mut reply).unwrap();
        let want = fnv1a_words(FNV_START, &req).to_le_bytes();
        assert_eq!(reply, want, "the parent's reply is the request's checksum");
        return;
    }
    let (sup, mut mine, child) = spawn_with_pipe(
        cross_test!(shutdown_write_across_processes_delimits_a_request),
        Duration::from_secs(120),
        "client",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    mine.set_read_timeout(Some(Duration::from_secs(60)));
    let mut req = Vec::new();
    mine.read_to_end(&mut req).unwrap();
    assert_eq!(req.len(), REQUEST);
    mine.write_all(&fnv1a_words(FNV_START, &req).to_le_bytes())
        .unwrap();
    drop(mine);
    sup.wait_ok(child);
}

// ---- try_ calls ----------------------------------------------------------------------------

/// `try_read_message` and `try_write_message` never wait, on an end in blocking mode,
/// and leave that mode as it was.
#[test]
fn try_calls_never_wait_and_keep_the_end_blocking() {
    for shared in [false, true] {
        let opts = PipeOptions::default()
            .shared(shared)
            .max_message(1024)
            .buffers(4096);
        let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
        let mut buf = [0u8; 1024];
        assert!(
            matches!(b.try_read_message(&mut buf), Err(Error::WouldBlock)),
            "shared {shared}: empty"
        );
        let mut sent = 0;
        let started = Instant::now();
        loop {
            match a.try_write_message(&[1u8; 1000]) {
                Ok(_) => sent += 1,
                Err(Error::WouldBlock) => break,
                Err(e) => panic!("shared {shared}: {e:?}"),
            }
            assert!(sent < 10_000, "shared {shared}: the ring never filled");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!a.is_nonblocking() && !b.is_nonblocking());
        for _ in 0..sent {
            let m = b.try_read_message(&mut buf).unwrap();
            assert_eq!(m.len, 1000, "shared {shared}");
        }
        // Blocking mode is intact: a read with a timeout waits for it.
        b.set_read_timeout(Some(Duration::from_millis(50)));
        let t = Instant::now();
        assert!(matches!(b.read_message(&mut buf), Err(Error::Timeout)));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}

// ---- vectored writes -----------------------------------------------------------------------

/// A byte pipe's `write_vectored` takes every buffer in one write (as far as the ring
/// has room), where the default would take only the first.
#[test]
fn byte_pipe_write_vectored_gathers_every_buffer() {
    use std::io::IoSlice;
    let opts = PipeOptions::default().buffers(4096);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &opts).unwrap();
    let parts = [
        IoSlice::new(b"ab"),
        IoSlice::new(b""),
        IoSlice::new(b"cde"),
        IoSlice::new(b"f"),
    ];
    assert_eq!(a.write_vectored(&parts).unwrap(), 6);
    let mut got = [0u8; 6];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abcdef");
    // Room for 3 more bytes only: the write takes exactly those.
    a.set_nonblocking(true);
    let filler = vec![7u8; 4096 - 3];
    assert_eq!(a.write(&filler).unwrap(), filler.len());
    assert_eq!(
        a.write_vectored(&[IoSlice::new(b"xy"), IoSlice::new(b"zw")])
            .unwrap(),
        3
    );
    let mut all = vec![0u8; 4096];
    b.read_exact(&mut all).unwrap();
    assert_eq!(&all[4093..], b"xyz");
    // Message pipes: one buffer, one message.
    let (mut m, mut r) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    assert_eq!(m.write_vectored(&parts).unwrap(), 2);
    let mut buf = [0u8; 8];
    assert_eq!(r.read_message(&mut buf).unwrap().len, 2);
}
