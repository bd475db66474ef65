//! `PipeEnd::split`: a reader and a writer used from two threads at once, across real
//! processes, and what dropping each half does to the peer and to a named pipe's
//! instance slot.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use common::pipe::spawn_with_pipe;
use culvert::pipe::{self, PipeEnd, PipeMode, PipeOptions, PipeReader, PipeServer, PipeWriter};
use culvert::Error;
use culvert_testkit::{cross_test, fill, fnv1a_words, role, TempRoot, FNV_START};

/// Bytes each side sends.
const TOTAL: usize = 64 << 20;
const CHUNK: usize = 48 * 1024;

/// Calls `each` with the `TOTAL` pseudo-random bytes from `seed`, chunk by chunk;
/// returns their checksum.
fn for_each_chunk(seed: u64, mut each: impl FnMut(&[u8])) -> u64 {
    let mut s = seed;
    let mut buf = vec![0u8; CHUNK];
    let mut sum = FNV_START;
    let mut done = 0;
    while done < TOTAL {
        let n = CHUNK.min(TOTAL - done);
        fill(&mut buf[..n], &mut s);
        sum = fnv1a_words(sum, &buf[..n]);
        each(&buf[..n]);
        done += n;
    }
    sum
}

/// Writes `TOTAL` pseudo-random bytes from `seed`; returns their checksum.
fn send_all(mut w: PipeWriter, seed: u64) -> u64 {
    for_each_chunk(seed, |chunk| w.write_all(chunk).unwrap())
}

/// Reads to end of stream; returns the byte count and checksum.
fn receive_all(mut r: PipeReader) -> (usize, u64) {
    let mut buf = vec![0u8; CHUNK];
    let mut sum = FNV_START;
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (total, sum);
        }
        sum = fnv1a_words(sum, &buf[..n]);
        total += n;
    }
}

/// The checksum of `TOTAL` bytes from `seed`.
fn expected(seed: u64) -> u64 {
    for_each_chunk(seed, |_| {})
}

/// Both directions at once: each side's writer thread sends 64 MiB while its reader
/// thread receives the other's 64 MiB. With the 64 KiB rings this only finishes if a
/// blocked write never holds up the read of the same end.
fn full_duplex(end: PipeEnd, send_seed: u64, recv_seed: u64) {
    let (reader, writer) = end.split().unwrap();
    let sender = thread::spawn(move || send_all(writer, send_seed));
    let (n, got) = receive_all(reader);
    assert_eq!(n, TOTAL);
    assert_eq!(got, expected(recv_seed), "bytes received");
    assert_eq!(sender.join().unwrap(), expected(send_seed));
}

#[test]
fn split_halves_move_64_mib_each_way_concurrently() {
    if role().is_some() {
        full_duplex(PipeEnd::from_inherited().unwrap(), 2, 1);
        return;
    }
    let (sup, mine, child) = spawn_with_pipe(
        cross_test!(split_halves_move_64_mib_each_way_concurrently),
        Duration::from_secs(240),
        "peer",
        PipeMode::Byte,
        &PipeOptions::default(),
    );
    full_duplex(mine, 1, 2);
    sup.wait_ok(child);
}

/// Message pipes keep their boundaries through the halves, plain and shared.
#[test]
fn split_message_halves_keep_boundaries() {
    for shared in [false, true] {
        let opts = PipeOptions::default().shared(shared).max_message(1024);
        let (a, b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
        let (mut ar, mut aw) = a.split().unwrap();
        let (mut br, mut bw) = b.split().unwrap();
        let t = thread::spawn(move || {
            for i in 0..1000u32 {
                aw.write_message(&vec![i as u8; (i % 700) as usize + 1])
                    .unwrap();
            }
        });
        let u = thread::spawn(move || {
            for i in 0..1000u32 {
                bw.write_message(&i.to_le_bytes()).unwrap();
            }
        });
        let mut buf = [0u8; 1024];
        for i in 0..1000u32 {
            let m = br.read_message(&mut buf).unwrap();
            assert_eq!(m.len, (i % 700) as usize + 1, "shared {shared}");
            assert!(buf[..m.len].iter().all(|&x| x == i as u8));
            let m = ar.read_message(&mut buf).unwrap();
            assert_eq!(&buf[..m.len], i.to_le_bytes(), "shared {shared}");
        }
        t.join().unwrap();
        u.join().unwrap();
    }
}

/// Dropping the writer half: the peer reads end of stream, and its writes still
/// reach the reader half. Dropping the reader half too: the peer's writes fail and
/// a named pipe's instance slot is free for the next client.
#[test]
fn dropping_the_halves_closes_one_direction_then_the_end() {
    let root = TempRoot::new("split");
    let opts = PipeOptions::default().root(root.path()).max_instances(1);
    let server = PipeServer::bind("split", &opts).unwrap();
    let connect = {
        let opts = opts.clone();
        move || PipeEnd::connect_with("split", Duration::from_millis(200), &opts)
    };
    let client = thread::spawn(connect.clone());
    let mut conn = server.accept_until(Duration::from_secs(10)).unwrap();
    let (mut reader, mut writer) = client.join().unwrap().unwrap().split().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)));
    writer.write_all(b"bye").unwrap();
    drop(writer);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    conn.write_all(b"still here").unwrap();
    let mut buf = [0u8; 16];
    let n = reader.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");
    // The end is not gone while its reader half lives: the one instance is taken.
    assert!(matches!(connect(), Err(Error::Busy { .. })));
    drop(reader);
    assert!(matches!(conn.write_message(b"x"), Err(Error::Closed)));
    // The last half freed the instance slot, though the server's end still exists.
    let next =
        thread::spawn(move || PipeEnd::connect_with("split", Duration::from_secs(10), &opts));
    let _second = server.accept_until(Duration::from_secs(10)).unwrap();
    next.join().unwrap().unwrap();
    drop(conn);
}
