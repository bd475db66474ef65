//! Anonymous pipes, across real processes: the test binary runs itself again as a
//! child playing a role (`culvert_testkit`'s role harness); the child attaches the pipe
//! end it inherited (`PipeEnd::from_inherited`). Every cross-process test has an outer
//! deadline that kills its children and fails.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::pipe::spawn_with_pipe;
use culvert::pipe::{self, PipeEnd, PipeMode, PipeOptions, ReadMode};
use culvert::Error;
use culvert_testkit::{cross_test, fill, fnv1a_words, role, FNV_START};

// ---- harness ------------------------------------------------------------------------

/// Child: writes four blocks of 128 bytes (`0`s, `1`s, `2`s, `3`s) to the inherited end.
fn write_four_blocks() {
    let mut end = PipeEnd::from_inherited().unwrap();
    for i in 0..4u8 {
        end.write_all(&[i; 128]).unwrap();
    }
}

// ---- the contract's tests -------------------------------------------------------------

#[test]
fn message_mode_four_writes_are_four_messages() {
    if role().is_some() {
        return write_four_blocks();
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(message_mode_four_writes_are_four_messages),
        Duration::from_secs(30),
        "writer",
        PipeMode::Message,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(20)));
    sup.wait_ok(child); // every write committed before we read
    let mut buf = [0u8; 512];
    for i in 0..4u8 {
        let n = end.read(&mut buf).unwrap();
        assert_eq!(n, 128);
        assert!(buf[..128].iter().all(|&b| b == i));
    }
    assert_eq!(end.read(&mut buf).unwrap(), 0, "end of stream");
}

#[test]
fn byte_mode_four_writes_one_read() {
    if role().is_some() {
        return write_four_blocks();
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(byte_mode_four_writes_one_read),
        Duration::from_secs(30),
        "writer",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(20)));
    sup.wait_ok(child);
    let mut buf = [0u8; 512];
    assert_eq!(end.read(&mut buf).unwrap(), 512);
    for i in 0..4 {
        assert!(buf[i * 128..(i + 1) * 128].iter().all(|&b| b == i as u8));
    }
    assert_eq!(end.read(&mut buf).unwrap(), 0);
}

#[test]
fn long_message_comes_back_in_pieces_with_more() {
    if role().is_some() {
        let mut end = PipeEnd::from_inherited().unwrap();
        let msg: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        end.write_all(&msg).unwrap();
        end.write_all(b"next").unwrap();
        return;
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(long_message_comes_back_in_pieces_with_more),
        Duration::from_secs(30),
        "writer",
        PipeMode::Message,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(20)));
    let mut got = Vec::new();
    let mut buf = [0u8; 100];
    for call in 0..10 {
        let r = end.read_message(&mut buf).unwrap();
        assert_eq!(r.len, 100, "call {call}");
        assert_eq!(r.more, call < 9, "call {call}");
        got.extend_from_slice(&buf[..r.len]);
    }
    let want: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(got, want);
    let r = end.read_message(&mut buf).unwrap();
    assert_eq!((&buf[..r.len], r.more), (&b"next"[..], false));
    sup.wait_ok(child);
    assert!(matches!(end.read_message(&mut buf), Err(Error::Closed)));
}

const ECHO_TOTAL: usize = 100 * 1000 * 1000;
const ECHO_CHUNK: usize = 32 * 1024;

#[test]
fn child_echoes_100_mb() {
    if role().is_some() {
        let mut end = PipeEnd::from_inherited().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = end.read(&mut buf).unwrap();
            if n == 0 {
                return;
            }
            end.write_all(&buf[..n]).unwrap();
        }
    }
    let start = Instant::now();
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(child_echoes_100_mb),
        Duration::from_secs(240),
        "echo",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(30)));
    end.set_write_timeout(Some(Duration::from_secs(30)));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = vec![0u8; ECHO_CHUNK];
    let mut back = vec![0u8; ECHO_CHUNK];
    let (mut sent_sum, mut got_sum) = (FNV_START, FNV_START);
    let mut done = 0;
    while done < ECHO_TOTAL {
        let n = ECHO_CHUNK.min(ECHO_TOTAL - done);
        fill(&mut out[..n], &mut seed);
        sent_sum = fnv1a_words(sent_sum, &out[..n]);
        end.write_all(&out[..n]).unwrap();
        end.read_exact(&mut back[..n]).unwrap();
        got_sum = fnv1a_words(got_sum, &back[..n]);
        done += n;
    }
    assert_eq!(sent_sum, got_sum);
    end.disconnect();
    sup.wait_ok(child);
    eprintln!("100 MB echoed in {:?}", start.elapsed());
}

// ---- dead peers, sizes, modes ----------------------------------------------------------

#[test]
fn killed_child_gives_eof_after_the_rest_and_broken_pipe() {
    if role().is_some() {
        let mut end = PipeEnd::from_inherited().unwrap();
        end.write_all(&[42u8; 1000]).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(killed_child_gives_eof_after_the_rest_and_broken_pipe),
        Duration::from_secs(30),
        "writer-then-sleep",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(20)));
    let mut one = [0u8; 1];
    end.read_exact(&mut one).unwrap();
    sup.kill(child);
    sup.wait(child);
    let killed = Instant::now();
    let mut rest = Vec::new();
    end.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 999);
    assert!(rest.iter().all(|&b| b == 42));
    // Past the end of stream, a message read says how the stream ended: the writer died.
    let ended = end.read_message(&mut [0u8; 8]);
    assert!(matches!(ended, Err(culvert::Error::PeerDied)), "{ended:?}");
    // Writes fail once the death is noticed (bounded: the liveness interval).
    let err = loop {
        match end.write_all(&[0u8; 64]) {
            Ok(()) => assert!(
                killed.elapsed() < Duration::from_secs(5),
                "writes keep succeeding"
            ),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    assert!(killed.elapsed() < Duration::from_secs(5));
}

#[test]
fn child_dying_before_attaching_is_noticed() {
    if role().is_some() {
        std::process::exit(0); // never attaches
    }
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(child_dying_before_attaching_is_noticed),
        Duration::from_secs(30),
        "quit",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    end.set_read_timeout(Some(Duration::from_secs(20)));
    let started = Instant::now();
    let mut buf = [0u8; 8];
    assert_eq!(end.read(&mut buf).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    sup.wait_ok(child);
}

#[test]
fn megabyte_messages_cross_a_64k_ring_whole() {
    const MSG: usize = 1 << 20;
    if role().is_some() {
        let opts = PipeOptions::default();
        let mut end = PipeEnd::from_inherited_with(culvert::pipe::PIPE_FD_ENV, &opts).unwrap();
        let mut msg = vec![0u8; MSG];
        for i in 0..3u64 {
            let mut seed = i + 1;
            fill(&mut msg, &mut seed);
            end.write_all(&msg).unwrap();
        }
        return;
    }
    let opts = PipeOptions::default().buffers(64 * 1024);
    let (sup, mut end, child) = spawn_with_pipe(
        cross_test!(megabyte_messages_cross_a_64k_ring_whole),
        Duration::from_secs(60),
        "writer",
        PipeMode::Message,
        &opts,
    );
    end.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = vec![0u8; MSG + 10];
    let mut want = vec![0u8; MSG];
    for i in 0..3u64 {
        let r = end.read_message(&mut buf).unwrap();
        assert_eq!((r.len, r.more), (MSG, false));
        let mut seed = i + 1;
        fill(&mut want, &mut seed);
        assert!(buf[..MSG] == want[..], "message {i} differs");
    }
    sup.wait_ok(child);
}

#[test]
fn too_large_message_is_refused_before_writing() {
    let opts = PipeOptions::default().max_message(1000);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    match a.write_message(&[0u8; 1001]) {
        Err(Error::MessageTooLarge {
            len: 1001,
            max: 1000,
        }) => {}
        other => panic!("{other:?}"),
    }
    let err = a.write(&[0u8; 1001]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(b.peek().unwrap().next_message_len, None);
    a.write_all(&[1u8; 1000]).unwrap();
    assert_eq!(b.peek().unwrap().next_message_len, Some(1000));
    let mut buf = [0u8; 2000];
    assert_eq!(b.read(&mut buf).unwrap(), 1000);
}

#[test]
fn default_max_message_is_one_mib() {
    let (mut a, _b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    assert_eq!(a.max_message(), 1 << 20);
    assert!(matches!(
        a.write_message(&vec![0u8; (1 << 20) + 1]),
        Err(Error::MessageTooLarge { .. })
    ));
}

#[test]
fn byte_read_mode_reads_across_messages() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    a.write_all(b"abc").unwrap();
    a.write_all(b"").unwrap();
    a.write_all(b"defg").unwrap();
    b.set_read_mode(ReadMode::Byte).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.read(&mut buf).unwrap(), 7);
    assert_eq!(&buf[..7], b"abcdefg");
    // Message read mode on a byte pipe is an error.
    let (_c, mut d) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    assert!(matches!(
        d.set_read_mode(ReadMode::Message),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn zero_length_messages_and_peek() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    a.write_message(b"").unwrap();
    a.write_message(b"hello").unwrap();
    let p = b.peek().unwrap();
    assert_eq!(p.next_message_len, Some(0));
    let mut buf = [0u8; 3];
    let r = b.read_message(&mut buf).unwrap();
    assert_eq!((r.len, r.more), (0, false));
    let r = b.read_message(&mut buf).unwrap();
    assert_eq!((r.len, r.more), (3, true));
    let p = b.peek().unwrap();
    assert_eq!(p.next_message_len, Some(2));
    assert_eq!(p.bytes_available, 2);
    let r = b.read_message(&mut buf).unwrap();
    assert_eq!((&buf[..r.len], r.more), (&b"lo"[..], false));
    assert_eq!(b.peek().unwrap().next_message_len, None);
}

#[test]
fn nonblocking_and_timeouts() {
    let (mut a, mut b) =
        pipe::anonymous(PipeMode::Byte, &PipeOptions::default().buffers(4096)).unwrap();
    b.set_nonblocking(true);
    let mut buf = [0u8; 8];
    assert_eq!(
        b.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    b.set_nonblocking(false);
    b.set_read_timeout(Some(Duration::from_millis(50)));
    let t = Instant::now();
    assert_eq!(
        b.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    // Fill the ring: non-blocking writes then fail with WouldBlock.
    a.set_nonblocking(true);
    let mut written = 0;
    loop {
        match a.write(&[1u8; 1000]) {
            Ok(n) => written += n,
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
    assert_eq!(written, 4096);
    a.set_nonblocking(false);
    a.set_write_timeout(Some(Duration::from_millis(50)));
    assert_eq!(
        a.write(&[1u8; 10]).unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
}

#[test]
fn transact_and_peer_pid_in_process() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    assert_eq!(a.peer_pid(), Some(std::process::id()));
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let n = b.read(&mut buf).unwrap();
        b.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
        b
    });
    let mut reply = [0u8; 64];
    let r = a.transact(b"question", &mut reply).unwrap();
    assert_eq!(&reply[..r.len], b"QUESTION");
    let _b = server.join().unwrap();
    let (mut c, _d) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    assert!(matches!(
        c.transact(b"x", &mut reply),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn disconnect_and_drop_end_the_stream() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    a.write_all(b"last words").unwrap();
    a.disconnect();
    assert_eq!(
        a.write(b"x").unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );
    let mut s = String::new();
    b.read_to_string(&mut s).unwrap();
    assert_eq!(s, "last words");
    assert_eq!(
        b.write(b"x").unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );

    let (a, pending) = pipe::anonymous_pending(PipeMode::Byte, &PipeOptions::default()).unwrap();
    drop(pending); // never handed on: the first end sees end of stream at once
    let mut a = a;
    let mut buf = [0u8; 4];
    assert_eq!(a.read(&mut buf).unwrap(), 0);
}

#[test]
fn io_copy_and_bufreader_work() {
    let (mut a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let writer = std::thread::spawn(move || {
        let data = vec![7u8; 1 << 20];
        std::io::copy(&mut &data[..], &mut a).unwrap();
    });
    let mut sink = Vec::new();
    std::io::copy(&mut std::io::BufReader::new(b), &mut sink).unwrap();
    writer.join().unwrap();
    assert_eq!(sink.len(), 1 << 20);
}

#[test]
fn shared_mode_pipes_work_in_one_process() {
    // Cross-process shared-mode tests are in pipe_shared.rs.
    for mode in [PipeMode::Byte, PipeMode::Message] {
        let opts = PipeOptions::default().shared(true).max_message(64 * 1024);
        let (mut a, mut b) = pipe::anonymous(mode, &opts).unwrap();
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        b.write_all(b"back").unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 4);
        drop(a);
        assert_eq!(b.read(&mut buf).unwrap(), 0);
    }
}
