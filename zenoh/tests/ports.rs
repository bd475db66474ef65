//! Ports across simulated hosts: connect payloads, calls, async calls, cancel,
//! datagrams, rejection, `Busy`, and a far server that goes away.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::Hosts;
use culvert::port::{MessageKind, PortClient, PortOptions, PortServer};
use culvert::{BusyReason, Error};
use culvert_testkit::wait_until;

const T: Duration = Duration::from_secs(10);

fn popts(h: &Hosts, i: usize) -> PortOptions {
    PortOptions::default().root(h.root(i))
}

/// Serves one connection on host b: accepts with "welcome", replies to each request
/// with its bytes reversed, holds requests starting with "hold" unanswered (and
/// reports whether they were cancelled), and reports datagrams.
fn echo_server(h: &Hosts, name: &str, events: mpsc::Sender<String>) -> thread::JoinHandle<()> {
    let server = PortServer::create(name, &popts(h, 1).max_connections(2)).unwrap();
    thread::spawn(move || {
        let req = server.listen(T).unwrap();
        events
            .send(format!("connect {}", String::from_utf8_lossy(&req.payload)))
            .unwrap();
        req.accept(b"welcome").unwrap();
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            for inc in &held {
                let inc: &culvert::port::Incoming = inc;
                if inc.is_cancelled() {
                    let _ = events.send("cancelled".into());
                }
            }
            held.retain(|i: &culvert::port::Incoming| !i.is_cancelled());
            let inc = match server.receive(Duration::from_millis(20)) {
                Ok(i) => i,
                Err(Error::Timeout) => {
                    server.maintain();
                    if server.connection_count() == 0 {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            };
            let body = inc.payload.to_vec();
            match inc.kind {
                MessageKind::Datagram => {
                    let _ = events.send(format!("datagram {}", String::from_utf8_lossy(&body)));
                }
                MessageKind::Request if body.starts_with(b"hold") => held.push(inc),
                MessageKind::Request => {
                    let mut r = body.clone();
                    r.reverse();
                    inc.reply(&r).unwrap();
                }
            }
        }
    })
}

#[test]
fn a_thousand_calls_async_calls_and_datagrams() {
    let h = Hosts::start("port-calls", 2, &["svc"]);
    let (tx, events) = mpsc::channel();
    let srv = echo_server(&h, "svc", tx);
    let (client, accept) =
        PortClient::connect_with("//hostb/svc", b"hello", T, &popts(&h, 0)).unwrap();
    assert_eq!(accept, b"welcome");
    assert_eq!(events.recv_timeout(T).unwrap(), "connect hello");
    let started = Instant::now();
    for i in 0..1000u32 {
        let req = [i.to_le_bytes(), (i * 7).to_le_bytes()].concat();
        let reply = client.call(&req, T).unwrap();
        let mut want = req.clone();
        want.reverse();
        assert_eq!(reply.as_slice(), &want[..], "call {i}");
    }
    eprintln!("1000 port calls across hosts: {:?}", started.elapsed());
    // Asynchronous calls, all in flight at once.
    let mut pending: Vec<_> = (0..16u8)
        .map(|i| (i, client.call_async(&[i, 1, 2]).unwrap()))
        .collect();
    for (i, p) in &mut pending {
        let reply = p.wait(T).unwrap();
        assert_eq!(reply.as_slice(), &[2, 1, *i]);
    }
    // Datagrams arrive in order, before a later call's effects.
    for i in 0..5 {
        client.send_datagram(format!("d{i}").as_bytes()).unwrap();
    }
    client.call(b"sync", T).unwrap();
    for i in 0..5 {
        assert_eq!(events.recv_timeout(T).unwrap(), format!("datagram d{i}"));
    }
    // A large request and reply (views on each host become inline bytes between).
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let reply = client.call(&big, T).unwrap();
    let mut want = big.clone();
    want.reverse();
    assert_eq!(reply.to_vec(), want);
    // The connection ends when the client and its pending calls are gone.
    drop((pending, reply));
    drop(client);
    srv.join().unwrap();
}

#[test]
fn cancel_reaches_the_far_server() {
    let h = Hosts::start("port-cancel", 2, &["svc"]);
    let (tx, events) = mpsc::channel();
    let srv = echo_server(&h, "svc", tx);
    let (client, _) = PortClient::connect_with("//hostb/svc", b"c", T, &popts(&h, 0)).unwrap();
    assert_eq!(events.recv_timeout(T).unwrap(), "connect c");
    let mut held = client.call_async(b"hold this").unwrap();
    // Let it reach the server, then cancel.
    thread::sleep(Duration::from_millis(200));
    held.cancel();
    assert!(matches!(held.wait(T), Err(Error::Cancelled)));
    assert_eq!(events.recv_timeout(T).unwrap(), "cancelled");
    // The connection goes on.
    assert_eq!(client.call(b"ab", T).unwrap().as_slice(), b"ba");
    drop(held);
    drop(client);
    srv.join().unwrap();
}

#[test]
fn rejection_busy_and_not_exported() {
    let h = Hosts::start("port-reject", 2, &["picky", "full"]);
    let picky = PortServer::create("picky", &popts(&h, 1)).unwrap();
    let t = thread::spawn(move || {
        let req = picky.listen(T).unwrap();
        req.reject(b"go away").unwrap();
    });
    let e = PortClient::connect_with("//hostb/picky", b"x", T, &popts(&h, 0)).unwrap_err();
    assert!(
        matches!(&e, Error::Rejected { reason } if reason == b"go away"),
        "{e:?}"
    );
    t.join().unwrap();

    let full = PortServer::create("full", &popts(&h, 1).max_connections(1)).unwrap();
    let t = thread::spawn(move || {
        let req = full.listen(T).unwrap();
        req.accept(b"").unwrap();
        // Keep serving until the test is done.
        let _ = full.receive(Duration::from_secs(3));
    });
    let local = PortClient::connect_with("full", b"", T, &popts(&h, 1)).unwrap();
    let e = PortClient::connect_with(
        "//hostb/full",
        b"",
        Duration::from_millis(500),
        &popts(&h, 0),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Busy {
                reason: BusyReason::NoFreeConnection { .. }
            }
        ),
        "{e:?}"
    );
    drop(local);
    t.join().unwrap();

    let _secret = PortServer::create("secret", &popts(&h, 1)).unwrap();
    let e = PortClient::connect_with("//hostb/secret", b"", T, &popts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
}

#[test]
fn calls_fail_when_the_far_server_goes() {
    let h = Hosts::start("port-gone", 2, &["svc"]);
    let server = PortServer::create("svc", &popts(&h, 1)).unwrap();
    let t = thread::spawn(move || {
        server.listen(T).unwrap().accept(b"").unwrap();
        // Take one call and go away without answering it.
        let inc = server.receive(T).unwrap();
        thread::sleep(Duration::from_millis(100));
        drop(inc);
        drop(server);
    });
    let (client, _) = PortClient::connect_with("//hostb/svc", b"", T, &popts(&h, 0)).unwrap();
    let started = Instant::now();
    let e = client.call(b"anyone?", T).unwrap_err();
    eprintln!(
        "pending call failed with {e:?} after {:?}",
        started.elapsed()
    );
    // A clean close, not a death.
    assert!(matches!(e, Error::Closed), "{e:?}");
    t.join().unwrap();
    // Later calls fail too, within a bound.
    let started = Instant::now();
    let mut failed = None;
    wait_until("a later call to fail", Duration::from_secs(2), || {
        failed = client.call(b"still there?", Duration::from_secs(2)).err();
        failed.is_some()
    });
    let e = failed.unwrap();
    eprintln!("later call failed with {e:?} after {:?}", started.elapsed());
    assert!(matches!(e, Error::Closed), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
