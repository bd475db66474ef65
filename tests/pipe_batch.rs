//! Batches on pipes: `write_messages` publishing many messages at once and
//! `read_messages` handing them over in place, on message pipes (single- and
//! multi-fragment messages, full rings, non-blocking ends) and byte pipes.

use std::time::Duration;

use culvert::pipe::{self, PipeMode, PipeOptions};
use culvert::Error;

fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 131 + k * 7) as u8).collect()
}

/// Lengths that cover empty messages, one fragment, and several fragments (the 4 KiB
/// ring's fragments carry about 1 KiB).
const LENGTHS: [usize; 8] = [0, 1, 64, 1000, 1024, 3000, 9000, 200];

#[test]
fn batches_keep_order_boundaries_and_bytes() {
    let opts = PipeOptions::new().buffers(4096).max_message(16 * 1024);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    let msgs: Vec<Vec<u8>> = (0..200)
        .map(|i| message(i, LENGTHS[i % LENGTHS.len()]))
        .collect();
    let expected = msgs.clone();
    let writer = std::thread::spawn(move || {
        let mut sent = 0;
        for chunk in msgs.chunks(7) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            sent += a.write_messages(&refs).unwrap();
        }
        sent
    });
    let mut got: Vec<Vec<u8>> = Vec::new();
    b.set_read_timeout(Some(Duration::from_secs(10)));
    while got.len() < expected.len() {
        let n = b.read_messages(16, |m| got.push(m.to_vec())).unwrap();
        assert!((1..=16).contains(&n), "a batch of {n}");
    }
    assert_eq!(writer.join().unwrap(), expected.len());
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "message {i}");
    }
    assert!(matches!(b.read_messages(1, |_| ()), Err(Error::Closed)));
}

#[test]
fn a_nonblocking_batch_writes_what_fits_and_reports_a_full_ring() {
    let opts = PipeOptions::new().buffers(4096);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    a.set_nonblocking(true);
    let one = [7u8; 100];
    let batch: Vec<&[u8]> = vec![&one; 100];
    let first = a.write_messages(&batch).unwrap();
    assert!(
        first > 0 && first < 100,
        "{first} records of 116 bytes in a 4 KiB ring"
    );
    assert!(matches!(a.write_messages(&batch), Err(Error::WouldBlock)));
    let mut seen = 0;
    b.set_nonblocking(true);
    while let Ok(n) = b.read_messages(1000, |m| assert_eq!(m, &one)) {
        seen += n;
    }
    assert_eq!(seen, first, "every message written was published");
    assert!(
        a.write_messages(&batch).unwrap() > 0,
        "the batch read gave room back"
    );
}

#[test]
fn a_message_begun_without_waiting_is_finished_by_the_next_call() {
    let opts = PipeOptions::new().buffers(4096).max_message(64 * 1024);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    let big = message(5, 40_000);
    let expected = big.clone();
    // A blocking writer can only finish this 40-fragment message while the reader
    // drains, so the non-blocking reader sees it part-written many times.
    let writer = std::thread::spawn(move || {
        a.write_message(&big).unwrap();
        a.write_message(b"after").unwrap();
    });
    b.set_nonblocking(true);
    let mut got = Vec::new();
    let mut would_block = 0u64;
    while got.len() < 2 {
        match b.read_messages(4, |m| got.push(m.to_vec())) {
            Ok(_) => {}
            Err(Error::WouldBlock) => {
                would_block += 1;
                std::thread::yield_now();
            }
            Err(e) => panic!("{e:?}"),
        }
        assert!(would_block < 50_000_000, "no progress");
    }
    writer.join().unwrap();
    assert_eq!(got[0].len(), expected.len());
    assert!(got[0] == expected, "the message came whole and intact");
    assert_eq!(got[1], b"after");
}

#[test]
fn byte_pipes_batch_too() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    assert_eq!(a.write_messages(&[b"abc", b"", b"defg"]).unwrap(), 3);
    drop(a);
    let mut got = Vec::new();
    loop {
        match b.read_messages(8, |m| got.extend_from_slice(m)) {
            Ok(_) => {}
            Err(Error::Closed) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(got, b"abcdefg");
}

#[test]
fn a_reserved_message_is_written_in_place() {
    let opts = PipeOptions::new().buffers(4096);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    let max = a.max_reserve();
    assert!(max > 0 && max <= a.max_nonblocking_message());
    assert!(matches!(
        a.reserve_message(max + 1),
        Err(Error::MessageTooLarge { .. })
    ));
    for i in 0..100usize {
        let mut g = a.reserve_message(max).unwrap();
        assert_eq!(g.len(), max);
        let body = message(i, 1 + i % max);
        g.as_mut_slice()[..body.len()].copy_from_slice(&body);
        g.commit(body.len());
        let mut buf = vec![0u8; max];
        let r = b.read_message(&mut buf).unwrap();
        assert_eq!((r.len, r.more), (body.len(), false));
        assert_eq!(&buf[..r.len], &body[..]);
    }
    // A grant dropped uncommitted sends nothing.
    {
        let _unsent = a.reserve_message(10).unwrap();
    }
    b.set_nonblocking(true);
    assert!(matches!(
        b.read_message(&mut [0u8; 16]),
        Err(Error::WouldBlock)
    ));
    // A full ring: non-blocking reservations report it, blocking ones wait for room.
    a.set_nonblocking(true);
    let mut sent = 0;
    while let Ok(g) = a.reserve_message(900) {
        g.commit(900);
        sent += 1;
    }
    assert!(sent > 0);
    assert!(matches!(a.reserve_message(900), Err(Error::WouldBlock)));
    a.set_nonblocking(false);
    let reader = std::thread::spawn(move || {
        let mut n = 0;
        let mut buf = [0u8; 900];
        while n <= sent {
            match b.read_message(&mut buf) {
                Ok(_) => n += 1,
                Err(Error::WouldBlock) => std::thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
        n
    });
    a.reserve_message(900).unwrap().commit(900);
    assert_eq!(reader.join().unwrap(), sent + 1);
    let (_c, mut byte) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    assert!(matches!(
        byte.reserve_message(1),
        Err(Error::InvalidArgument { .. })
    ));
}
