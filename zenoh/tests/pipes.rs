//! Named pipes across simulated hosts (three bridges, three namespace roots, loopback).

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::Hosts;
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::{BusyReason, Error};
use culvert_testkit::{eventually, fnv1a, Stream, TempRoot, FNV_START};

const T: Duration = Duration::from_secs(10);

fn server(h: &Hosts, host: usize, name: &str, mode: PipeMode, instances: usize) -> PipeServer {
    PipeServer::bind(
        name,
        &PipeOptions::default()
            .root(h.root(host))
            .mode(mode)
            .max_instances(instances),
    )
    .unwrap()
}

fn opts(h: &Hosts, host: usize) -> PipeOptions {
    PipeOptions::default().root(h.root(host))
}

#[test]
fn seed_four_messages_keep_their_boundaries() {
    let h = Hosts::start("seed", 3, &["seed"]);
    let srv = server(&h, 1, "seed", PipeMode::Message, 4);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.set_read_timeout(Some(T));
        let mut buf = [0u8; 1024];
        for i in 0..4u8 {
            let r = end.read_message(&mut buf).unwrap();
            assert_eq!((r.len, r.more), (128, false));
            assert!(buf[..128].iter().all(|&b| b == i));
        }
        for i in 0..4u8 {
            end.write_message(&[i + 10; 128]).unwrap();
        }
        // Wait for the client to close.
        assert!(matches!(end.read_message(&mut buf), Err(Error::Closed)));
    });
    let mut c = PipeEnd::connect_with("//hostb/seed", T, &opts(&h, 0)).unwrap();
    assert_eq!(c.mode(), PipeMode::Message);
    c.set_read_timeout(Some(T));
    for i in 0..4u8 {
        c.write_message(&[i; 128]).unwrap();
    }
    let mut buf = [0u8; 1024];
    for i in 0..4u8 {
        let r = c.read_message(&mut buf).unwrap();
        assert_eq!((r.len, r.more), (128, false));
        assert!(buf[..128].iter().all(|&b| b == i + 10));
    }
    drop(c);
    t.join().unwrap();
}

#[test]
fn read_message_with_more_on_a_small_buffer() {
    let h = Hosts::start("more", 2, &["more"]);
    let srv = server(&h, 1, "more", PipeMode::Message, 1);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        let msg: Vec<u8> = (0..100u8).collect();
        end.write_message(&msg).unwrap();
        end.set_read_timeout(Some(T));
        let mut b = [0u8; 8];
        let _ = end.read_message(&mut b);
    });
    let mut c = PipeEnd::connect_with("//hostb/more", T, &opts(&h, 0)).unwrap();
    c.set_read_timeout(Some(T));
    let mut got = Vec::new();
    let mut buf = [0u8; 30];
    loop {
        let r = c.read_message(&mut buf).unwrap();
        got.extend_from_slice(&buf[..r.len]);
        if !r.more {
            break;
        }
        assert_eq!(r.len, 30);
    }
    assert_eq!(got, (0..100u8).collect::<Vec<_>>());
    drop(c);
    t.join().unwrap();
}

#[test]
fn byte_stream_of_64_mib_with_checksum() {
    const TOTAL: usize = 64 << 20;
    let h = Hosts::start("bytes", 2, &["bytes"]);
    let srv = server(&h, 1, "bytes", PipeMode::Byte, 1);
    let started = Instant::now();
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.set_read_timeout(Some(T));
        let (mut n, mut sum) = (0usize, FNV_START);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = end.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            sum = fnv1a(sum, &buf[..k]);
            n += k;
        }
        end.write_all(&sum.to_le_bytes()).unwrap();
        (n, sum)
    });
    let mut c = PipeEnd::connect_with("//hostb/bytes", T, &opts(&h, 0)).unwrap();
    c.set_read_timeout(Some(T));
    c.set_write_timeout(Some(T));
    let mut sum = FNV_START;
    let mut stream = Stream::new(12345);
    let mut chunk = vec![0u8; 100_000];
    let mut sent = 0;
    while sent < TOTAL {
        let k = chunk.len().min(TOTAL - sent);
        stream.fill(&mut chunk[..k]);
        c.write_all(&chunk[..k]).unwrap();
        sum = fnv1a(sum, &chunk[..k]);
        sent += k;
    }
    c.shutdown_write().unwrap();
    let mut echo = [0u8; 8];
    c.read_exact(&mut echo).unwrap();
    let (n, far_sum) = t.join().unwrap();
    assert_eq!(n, TOTAL);
    assert_eq!(far_sum, sum);
    assert_eq!(u64::from_le_bytes(echo), sum);
    eprintln!("64 MiB across hosts in {:?}", started.elapsed());
}

#[test]
fn a_thousand_transacts() {
    let h = Hosts::start("transact", 2, &["tx"]);
    let srv = server(&h, 1, "tx", PipeMode::Message, 1);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.set_read_timeout(Some(T));
        let mut buf = [0u8; 64];
        let mut served = 0;
        while let Ok(r) = end.read_message(&mut buf) {
            let mut reply = buf[..r.len].to_vec();
            reply.reverse();
            end.write_message(&reply).unwrap();
            served += 1;
        }
        served
    });
    let mut c = PipeEnd::connect_with("//hostb/tx", T, &opts(&h, 0)).unwrap();
    c.set_read_timeout(Some(T));
    let started = Instant::now();
    let mut reply = [0u8; 64];
    for i in 0..1000u32 {
        let req = [i.to_le_bytes(), (!i).to_le_bytes()].concat();
        let r = c.transact(&req, &mut reply).unwrap();
        let mut want = req.clone();
        want.reverse();
        assert_eq!(&reply[..r.len], &want[..]);
    }
    let took = started.elapsed();
    drop(c);
    assert_eq!(t.join().unwrap(), 1000);
    eprintln!("1000 transacts across hosts: {took:?}");
}

#[test]
fn busy_when_every_far_instance_is_taken() {
    let h = Hosts::start("busy", 2, &["busy"]);
    let srv = server(&h, 1, "busy", PipeMode::Message, 1);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.set_read_timeout(Some(T));
        let mut b = [0u8; 8];
        let _ = end.read_message(&mut b);
    });
    let first = PipeEnd::connect_with("//hostb/busy", T, &opts(&h, 0)).unwrap();
    // The one instance is taken: a second connect is Busy after its short wait.
    let started = Instant::now();
    let second = PipeEnd::connect_with("//hostb/busy", Duration::from_millis(300), &opts(&h, 0));
    assert!(
        matches!(
            second,
            Err(Error::Busy {
                reason: BusyReason::NoFreeInstance { max_instances: 1 }
            })
        ),
        "{second:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(first);
    t.join().unwrap();
}

#[test]
fn end_of_stream_when_the_far_end_closes() {
    let h = Hosts::start("eos", 2, &["eos"]);
    let srv = server(&h, 1, "eos", PipeMode::Message, 1);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.write_message(b"last words").unwrap();
    });
    let mut c = PipeEnd::connect_with("//hostb/eos", T, &opts(&h, 0)).unwrap();
    c.set_read_timeout(Some(T));
    let mut buf = [0u8; 64];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"last words");
    t.join().unwrap();
    assert!(matches!(c.read_message(&mut buf), Err(Error::Closed)));
    // Writes fail once the far end is gone too (broken pipe, not a death), within a
    // bound.
    common::writes_end_with_closed(&mut c);
}

#[test]
fn names_not_exported_unknown_hosts_and_no_bridge_are_typed_errors() {
    let h = Hosts::start("denied", 2, &["open"]);
    let _srv = server(&h, 1, "secret", PipeMode::Message, 1);
    let e = PipeEnd::connect_with("//hostb/secret", T, &opts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    let e = PipeEnd::connect_with("//hostb/open", T, &opts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = PipeEnd::connect_with("//nohost/x", T, &opts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = PipeEnd::connect_with("//hostb", T, &opts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    let lonely = TempRoot::new("lonely");
    let e = PipeEnd::connect_with(
        "//hostb/open",
        T,
        &PipeOptions::default().root(lonely.path()),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no culvert bridge is running"),
        "{e}"
    );
}

#[test]
fn a_reader_that_does_not_read_bounds_the_bytes_in_flight() {
    let h = Hosts::start("credit", 2, &["credit"]);
    let srv = server(&h, 1, "credit", PipeMode::Byte, 1);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        // Read nothing until told to.
        go_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        end.set_read_timeout(Some(T));
        let mut n = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            match end.read(&mut buf).unwrap() {
                0 => break n,
                k => n += k,
            }
        }
    });
    let mut c = PipeEnd::connect_with("//hostb/credit", T, &opts(&h, 0)).unwrap();
    c.set_write_timeout(Some(Duration::from_millis(300)));
    let chunk = vec![1u8; 64 * 1024];
    let mut written = 0usize;
    // Write until a write stalls: the window and the rings on the way are full.
    let stalled = eventually(Duration::from_secs(20), || match c.write_message(&chunk) {
        Ok(n) => {
            written += n;
            n < chunk.len()
        }
        Err(Error::Timeout) => true,
        Err(e) => panic!("{e}"),
    });
    assert!(stalled, "writes never stalled");
    // The window (2 MiB) plus the local rings (64 KiB each way) and one chunk in hand.
    let bound = culvert_zenoh::pipe::WINDOW as usize + 4 * 64 * 1024;
    eprintln!("a stalled reader holds {written} bytes in flight (bound {bound})");
    assert!(written <= bound, "{written} bytes in flight exceed {bound}");
    go_tx.send(()).unwrap();
    c.set_write_timeout(Some(T));
    c.shutdown_write().unwrap();
    assert_eq!(t.join().unwrap(), written);
}

#[test]
fn a_far_bridge_that_stops_cleanly_reads_as_a_close() {
    let mut h = Hosts::start("stop", 2, &["stop"]);
    let srv = server(&h, 1, "stop", PipeMode::Message, 1);
    let t = thread::spawn(move || {
        let mut end = srv.accept_until(T).unwrap();
        end.write_message(b"hello").unwrap();
        end.set_read_timeout(Some(T));
        let mut b = [0u8; 8];
        end.read_message(&mut b).map(|_| ()).unwrap_err()
    });
    let mut c = PipeEnd::connect_with("//hostb/stop", T, &opts(&h, 0)).unwrap();
    c.set_read_timeout(Some(T));
    let mut buf = [0u8; 16];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"hello");
    h.bridges[1].take().unwrap().stop();
    let e = c.read_message(&mut buf).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    let far = t.join().unwrap();
    assert!(matches!(far, Error::Closed), "{far:?}");
}
