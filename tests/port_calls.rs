//! Cross-process port calls: inline throughput, large views, many clients and server
//! threads, connect errors, and cancellation racing replies.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::port::*;
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert::Deadline;
use culvert_testkit::{
    cross_test, eventually, fnv1a, namespace, pattern, role, ChildCommand, TempRoot, FNV_START,
};

const NAME: &str = "svc";

fn secs(n: u64) -> Deadline {
    Deadline::after(Duration::from_secs(n))
}

#[test]
fn hundred_thousand_inline_calls() {
    const CALLS: u64 = 100_000;
    if role().is_some() {
        let client = connect(NAME);
        for i in 0..CALLS {
            let mut req = pattern(64, i);
            req[..8].copy_from_slice(&i.to_le_bytes());
            let reply = client.call(&req, secs(10)).unwrap();
            assert!(!reply.is_view());
            assert_eq!(reply.as_slice(), transform(&req).as_slice(), "call {i}");
        }
        return;
    }
    let root = TempRoot::in_shm("100k");
    let served = serve(
        NAME,
        &PortOptions::default(),
        &root.opts(),
        1,
        Arc::new(echo),
    );
    let test = cross_test!(hundred_thousand_inline_calls);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    let start = Instant::now();
    sup.wait_ok(c);
    eprintln!("100k inline calls in {:?}", start.elapsed());
    served.stop();
}

fn view_options() -> PortOptions {
    PortOptions {
        max_message: 64 << 20,
        inline_max: 4064,
        view_heap_size: (64 << 20) + (2 << 20),
        max_connections: 4,
        request_ring_capacity: 64,
        root: None,
    }
}

#[test]
fn large_views_with_checksums() {
    if role().is_some() {
        let client = connect(NAME);
        let mine = client.view_heap_stats();
        let theirs = client.server_view_heap_stats();
        assert_eq!(mine.free_pages, mine.total_pages);
        for (k, size) in [1usize << 20, 64 << 20, 1 << 20].into_iter().enumerate() {
            let req = pattern(size, k as u64);
            let want = fnv1a(FNV_START, &transform(&req));
            let reply = client.call(&req, secs(30)).unwrap();
            assert!(reply.is_view(), "a {size}-byte reply travels in a view");
            let view = reply.as_view().unwrap();
            assert_eq!(view.len(), size);
            assert_eq!(
                fnv1a(FNV_START, view.as_slice()),
                want,
                "{size}-byte reply checksum"
            );
            assert_eq!(fnv1a(FNV_START, &reply.to_vec()), want);
            let mut head = [0u8; 16];
            assert_eq!(view.read_at(size - 8, &mut head).unwrap(), 8);
            assert!(view.read_at(size + 1, &mut head).is_err());
            // The server's heap holds our reply until we drop it.
            assert!(client.server_view_heap_stats().free_pages < theirs.total_pages);
            drop(reply);
        }
        // Every block is back: ours (requests, freed by the server) and the server's
        // (replies, freed by us).
        assert!(eventually(Duration::from_secs(5), || {
            client.view_heap_stats() == mine && client.server_view_heap_stats() == theirs
        }));
        return;
    }
    let root = TempRoot::in_shm("views");
    let served = serve(NAME, &view_options(), &root.opts(), 2, Arc::new(echo));
    let start_free = served.port.view_heap_stats();
    assert_eq!(start_free.free_pages, start_free.total_pages);
    let test = cross_test!(large_views_with_checksums);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    sup.wait_ok(c);
    assert!(eventually(Duration::from_secs(5), || served
        .port
        .view_heap_stats()
        == start_free));
    served.stop();
}

#[test]
fn four_clients_four_server_threads() {
    const CALLS: u64 = 50_000;
    const THREADS: u64 = 2;
    if let Some(role) = role() {
        let who: u64 = role.parse().unwrap();
        let client = Arc::new(connect(NAME));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for i in 0..CALLS / THREADS {
                        let tag = (who << 48) | (t << 40) | i;
                        let mut req = pattern(24 + (i % 100) as usize, tag);
                        req[..8].copy_from_slice(&tag.to_le_bytes());
                        let reply = client.call(&req, secs(20)).unwrap();
                        assert_eq!(reply.as_slice(), transform(&req).as_slice(), "{tag:x}");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        return;
    }
    let root = TempRoot::in_shm("4x4");
    let served = serve(
        NAME,
        &PortOptions::default(),
        &root.opts(),
        4,
        Arc::new(echo),
    );
    let test = cross_test!(four_clients_four_server_threads);
    let sup = test.supervise(Duration::from_secs(180));
    let start = Instant::now();
    let ids: Vec<_> = (0..4)
        .map(|k| sup.spawn(test.command(&k.to_string()).namespace(&root)))
        .collect();
    for c in ids {
        sup.wait_ok(c);
    }
    eprintln!("4 x 50k calls in {:?}", start.elapsed());
    served.stop();
}

#[test]
fn reject_missing_and_busy() {
    if role().is_some() {
        match PortClient::connect(NAME, b"let me in", secs(10)) {
            Err(culvert::Error::Rejected { reason }) => assert_eq!(reason, b"go away: let me in"),
            other => panic!("expected a rejection, got {other:?}"),
        }
        match PortClient::connect("no-such-port", b"ok", secs(10)) {
            Err(culvert::Error::NotFound { .. }) => {}
            other => panic!("expected NotFound, got {other:?}"),
        }
        // The parent holds both connection slots.
        std::fs::write(namespace().join("marker-go"), b"").unwrap();
        assert!(eventually(Duration::from_secs(20), || namespace()
            .join("marker-held")
            .exists()));
        let start = Instant::now();
        match PortClient::connect(NAME, b"ok", secs(10)) {
            Err(culvert::Error::Busy {
                reason: culvert::BusyReason::NoFreeConnection { max_connections: 2 },
            }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "Busy comes at once"
        );
        return;
    }
    let root = TempRoot::in_shm("reject");
    let opts = PortOptions {
        max_connections: 2,
        ..PortOptions::default()
    };
    let served = serve(NAME, &opts, &root.opts(), 1, Arc::new(echo));
    let test = cross_test!(reject_missing_and_busy);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    // Rejections free their slot: once the child is past them, take both slots.
    assert!(eventually(Duration::from_secs(20), || root
        .marker("go")
        .exists()));
    let (a, _) = PortClient::connect_with(NAME, b"ok", secs(10), &root.opts()).unwrap();
    let (b, _) = PortClient::connect_with(NAME, b"ok", secs(10), &root.opts()).unwrap();
    assert_eq!(a.call(b"x", secs(10)).unwrap().as_slice(), b"y");
    std::fs::write(root.marker("held"), b"").unwrap();
    sup.wait_ok(c);
    drop((a, b));
    // Disconnected slots are free again.
    assert!(eventually(Duration::from_secs(5), || served
        .port
        .connection_count()
        == 0));
    let (c2, _) = PortClient::connect_with(NAME, b"ok", secs(10), &root.opts()).unwrap();
    assert_eq!(c2.call(b"a", secs(10)).unwrap().as_slice(), b"b");
    drop(c2);
    served.stop();
}

#[test]
fn cancel_races_reply() {
    const ROUNDS: u64 = 10_000;
    if role().is_some() {
        let client = connect(NAME);
        let mine = client.view_heap_stats();
        let theirs = client.server_view_heap_stats();
        let mut cancelled = 0u64;
        let mut replied = 0u64;
        for i in 0..ROUNDS {
            // Alternate inline and view-sized requests (the reply has the same size).
            let size = if i % 2 == 0 {
                48
            } else {
                6000 + (i % 7) as usize * 1000
            };
            let mut req = pattern(size, i);
            req[..8].copy_from_slice(&i.to_le_bytes());
            let mut call = client.call_async(&req).unwrap();
            // Give the reply a varying head start, so cancel lands before, during and
            // after its arrival.
            for _ in 0..(i % 64) * 8 {
                std::hint::spin_loop();
            }
            if i % 5 == 0 {
                if let Some(reply) = call.try_wait().unwrap() {
                    assert_eq!(reply.as_slice(), transform(&req).as_slice(), "call {i}");
                    replied += 1;
                    continue;
                }
            }
            call.cancel();
            assert!(matches!(call.wait(secs(1)), Err(culvert::Error::Cancelled)));
            cancelled += 1;
            // Every few rounds, a plain call must get exactly its own reply.
            if i % 97 == 0 {
                let probe = pattern(5000, i + 1_000_000);
                let reply = client.call(&probe, secs(10)).unwrap();
                assert_eq!(reply.as_slice(), transform(&probe).as_slice());
            }
        }
        eprintln!("{cancelled} cancelled, {replied} replied before cancel");
        // Late replies are read (and dropped) by the next calls; then both heaps are
        // whole again.
        assert!(eventually(Duration::from_secs(10), || {
            let r = client.call(b"sync", secs(10)).unwrap();
            assert_eq!(r.as_slice(), transform(b"sync").as_slice());
            client.view_heap_stats() == mine && client.server_view_heap_stats() == theirs
        }));
        return;
    }
    let root = TempRoot::in_shm("cancel");
    let served = serve(
        NAME,
        &PortOptions::default(),
        &root.opts(),
        2,
        Arc::new(echo),
    );
    let start_free = served.port.view_heap_stats();
    let test = cross_test!(cancel_races_reply);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    sup.wait_ok(c);
    assert!(eventually(Duration::from_secs(5), || served
        .port
        .view_heap_stats()
        == start_free));
    served.stop();
}

#[test]
fn a_reply_the_server_cannot_send_fails_the_call_at_once() {
    let opts = PortOptions {
        max_message: 8192,
        ..PortOptions::default()
    };
    if role().is_some() {
        let client = connect(NAME);
        let started = Instant::now();
        // No deadline: the call must end because the server told us, not by a timeout.
        let e = client.call(b"too big", Deadline::never()).unwrap_err();
        assert!(
            matches!(&e, culvert::Error::ReplyFailed { reason } if reason.contains("exceeds")),
            "{e:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // The connection goes on.
        assert_eq!(client.call(b"small", secs(10)).unwrap().as_slice(), b"ok");
        return;
    }
    let root = TempRoot::in_shm("replyfail");
    let failures = Arc::new(culvert::sync::atomic::AtomicUsize::new(0));
    let seen = failures.clone();
    let served = serve(
        NAME,
        &opts,
        &root.opts(),
        1,
        Arc::new(move |inc: culvert::port::Incoming| {
            let big = inc.payload.as_slice() == b"too big";
            let r = if big {
                inc.reply(&vec![0u8; 9000])
            } else {
                inc.reply(b"ok")
            };
            if big {
                assert!(
                    matches!(r, Err(culvert::Error::MessageTooLarge { .. })),
                    "{r:?}"
                );
                seen.fetch_add(1, culvert::sync::atomic::Ordering::SeqCst);
            }
        }),
    );
    let test = cross_test!(a_reply_the_server_cannot_send_fails_the_call_at_once);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    sup.wait_ok(c);
    served.stop();
    assert_eq!(failures.load(culvert::sync::atomic::Ordering::SeqCst), 1);
}

/// `try_listen` and `try_receive` never wait: `WouldBlock` until a connect request or a
/// call is there, then the same request `listen`/`receive` would have returned.
#[test]
fn try_listen_and_try_receive_never_wait() {
    let root = TempRoot::in_shm("try");
    let opts = PortOptions::default().root(root.path());
    let server = PortServer::create(NAME, &opts).unwrap();
    assert!(matches!(
        server.try_listen(),
        Err(culvert::Error::WouldBlock)
    ));
    assert!(matches!(
        server.try_receive(),
        Err(culvert::Error::WouldBlock)
    ));
    let client = std::thread::spawn({
        let opts = opts.clone();
        move || PortClient::connect_with(NAME, b"hi", secs(10), &opts)
    });
    let give_up = Instant::now() + Duration::from_secs(10);
    let request = loop {
        match server.try_listen() {
            Ok(r) => break r,
            Err(culvert::Error::WouldBlock) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("try_listen: {e:?}"),
        }
    };
    assert_eq!(request.payload, b"hi");
    request.accept(b"welcome").unwrap();
    let (client, welcome) = client.join().unwrap().unwrap();
    assert_eq!(welcome, b"welcome");
    let mut pending = client.call_async(b"ping").unwrap();
    let incoming = loop {
        match server.try_receive() {
            Ok(i) => break i,
            Err(culvert::Error::WouldBlock) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("try_receive: {e:?}"),
        }
    };
    assert_eq!(incoming.payload.as_slice(), b"ping");
    incoming.reply(b"pong").unwrap();
    assert_eq!(pending.wait(secs(10)).unwrap().as_slice(), b"pong");
}

/// A request written in place into a loan of the client's view heap reaches the
/// server as a view (no copy on the client's side) and is answered like any call; a
/// loan dropped unsent gives its room back.
#[test]
fn loaned_requests_are_written_in_place() {
    if role().is_some() {
        let client = connect(NAME);
        let before = client.view_heap_stats();
        let unsent = client.loan(1 << 20, secs(10)).unwrap();
        assert_eq!(unsent.len(), 1 << 20);
        assert!(client.view_heap_stats().free_pages < before.free_pages);
        drop(unsent);
        assert_eq!(
            client.view_heap_stats(),
            before,
            "a dropped loan gives room back"
        );
        for (k, size) in [100_000usize, 3 << 20, 8192].into_iter().enumerate() {
            let req = pattern(size, 40 + k as u64);
            let mut loan = client.loan(size, secs(10)).unwrap();
            loan.as_mut_slice().copy_from_slice(&req);
            let reply = client.call_loaned(loan, secs(30)).unwrap();
            assert_eq!(
                fnv1a(FNV_START, &reply.to_vec()),
                fnv1a(FNV_START, &transform(&req)),
                "{size}-byte loaned call"
            );
        }
        assert!(matches!(
            client.loan(client.max_message() + 1, secs(1)),
            Err(culvert::Error::MessageTooLarge { .. })
        ));
        assert!(eventually(Duration::from_secs(5), || client
            .view_heap_stats()
            == before));
        return;
    }
    let root = TempRoot::in_shm("loans");
    let served = serve(NAME, &view_options(), &root.opts(), 1, Arc::new(echo));
    let test = cross_test!(loaned_requests_are_written_in_place);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    sup.wait_ok(c);
    served.stop();
}

/// The server of `loaned_replies_are_written_in_place`: `loan:N` is answered with `N`
/// bytes of `pattern(N, N)` written into a reply loan; `drop:N` lends `N` bytes, drops
/// the loan and answers `dropped`; `too-large` answers with the error of a loan above
/// `max_message`; a datagram tries a loan and files the error for `datagram?`.
fn loan_server(inc: culvert::port::Incoming) {
    use std::sync::Mutex;
    static DATAGRAM_LOAN: Mutex<String> = Mutex::new(String::new());
    let text = String::from_utf8_lossy(inc.payload.as_slice()).into_owned();
    let size = |p: &str| text.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
    if inc.kind == culvert::port::MessageKind::Datagram {
        let e = inc.loan_reply(10, secs(1)).unwrap_err();
        *DATAGRAM_LOAN.lock().unwrap() = format!("{e:?}");
        return;
    }
    if let Some(n) = size("loan:") {
        let mut loan = inc.loan_reply(n, secs(10)).unwrap();
        assert_eq!(loan.len(), n);
        loan.as_mut_slice().copy_from_slice(&pattern(n, n as u64));
        inc.reply_loaned(loan).unwrap();
    } else if let Some(n) = size("drop:") {
        drop(inc.loan_reply(n, secs(10)).unwrap());
        inc.reply(b"dropped").unwrap();
    } else if text == "too-large" {
        let e = inc.loan_reply(64 << 20 | 1, secs(1)).unwrap_err();
        inc.reply(format!("{e:?}").as_bytes()).unwrap();
    } else if text == "datagram?" {
        let seen = DATAGRAM_LOAN.lock().unwrap().clone();
        inc.reply(seen.as_bytes()).unwrap();
    }
}

/// A reply written in place into a loan of the server's view heap reaches the client
/// as a view of the bytes the server wrote, whatever their size; a loan dropped unsent
/// gives its room back; a loan above `max_message`, and one for a datagram, is refused.
#[test]
fn loaned_replies_are_written_in_place() {
    if role().is_some() {
        let client = connect(NAME);
        let before = client.server_view_heap_stats();
        for n in [100_000usize, 3 << 20, 8192, 10] {
            let reply = client
                .call(format!("loan:{n}").as_bytes(), secs(30))
                .unwrap();
            assert!(reply.is_view(), "a loaned {n}-byte reply travels in a view");
            assert_eq!(
                fnv1a(FNV_START, &reply.to_vec()),
                fnv1a(FNV_START, &pattern(n, n as u64)),
                "{n}-byte loaned reply"
            );
        }
        let dropped = client.call(b"drop:1048576", secs(30)).unwrap();
        assert_eq!(dropped.as_slice(), b"dropped");
        let refused = client.call(b"too-large", secs(30)).unwrap().to_vec();
        assert!(
            String::from_utf8_lossy(&refused).starts_with("MessageTooLarge"),
            "{}",
            String::from_utf8_lossy(&refused)
        );
        client.send_datagram(b"loan:10").unwrap();
        assert!(eventually(Duration::from_secs(10), || {
            let seen = client.call(b"datagram?", secs(30)).unwrap().to_vec();
            String::from_utf8_lossy(&seen).starts_with("InvalidArgument")
        }));
        assert!(
            eventually(Duration::from_secs(5), || client.server_view_heap_stats()
                == before),
            "every loaned block went back to the server's heap"
        );
        return;
    }
    let root = TempRoot::in_shm("reply-loans");
    let served = serve(
        NAME,
        &view_options(),
        &root.opts(),
        1,
        Arc::new(loan_server),
    );
    let test = cross_test!(loaned_replies_are_written_in_place);
    let sup = test.supervise(Duration::from_secs(120));
    let c = sup.spawn(test.command("client").namespace(&root));
    sup.wait_ok(c);
    served.stop();
}

/// A loan is sent only by whoever lent it: a client's request loan given to
/// `reply_loaned`, or a server's reply loan given to `call_loaned`, is refused with
/// `InvalidArgument` (the caller of the first gets `ReplyFailed`), and both loans' room
/// goes back to their heaps. In one process: this checks the API, not the channel.
#[test]
fn a_loan_is_sent_only_by_its_lender() {
    let root = TempRoot::in_shm("loan-lender");
    let opts = view_options().root(root.path());
    let server = Arc::new(PortServer::create(NAME, &opts).unwrap());
    let listening = {
        let server = server.clone();
        std::thread::spawn(move || server.listen(secs(10)).unwrap().accept(b"").unwrap())
    };
    let (client, _) = PortClient::connect_with(NAME, b"hi", secs(10), &opts).unwrap();
    listening.join().unwrap();
    let (client_free, server_free) = (client.view_heap_stats(), server.view_heap_stats());
    let mut pending = client.call_async(b"reply with a client's loan").unwrap();
    let incoming = server.receive(secs(10)).unwrap();
    let reply_loan = incoming.loan_reply(10_000, secs(10)).unwrap();
    let request_loan = client.loan(10_000, secs(10)).unwrap();
    assert!(matches!(
        incoming.reply_loaned(request_loan),
        Err(culvert::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        pending.wait(secs(10)),
        Err(culvert::Error::ReplyFailed { .. })
    ));
    assert!(matches!(
        client.call_loaned(reply_loan, secs(10)),
        Err(culvert::Error::InvalidArgument { .. })
    ));
    assert_eq!(client.view_heap_stats(), client_free);
    assert_eq!(server.view_heap_stats(), server_free);
}

/// Each connection has a request ring of its own, and the server takes records from
/// the connections in turn: a datagram sent after another client queued a hundred is
/// received within one pass over the connection slots, not after all of them.
#[test]
fn a_flooding_client_does_not_hold_up_another() {
    let root = TempRoot::new("fair");
    let opts = PortOptions::default().root(root.path()).max_connections(4);
    let server = PortServer::create("fair", &opts).unwrap();
    let connect = |hello: &'static [u8]| {
        let o = opts.clone();
        let c = std::thread::spawn(move || PortClient::connect_with("fair", hello, secs(10), &o));
        server.listen(secs(10)).unwrap().accept(b"").unwrap();
        c.join().unwrap().unwrap().0
    };
    let (flooder, other) = (connect(b"flooder"), connect(b"other"));
    for i in 0..100u32 {
        flooder.send_datagram(&i.to_le_bytes()).unwrap();
    }
    other.send_datagram(b"other").unwrap();
    let first: Vec<Vec<u8>> = (0..opts.max_connections)
        .map(|_| server.receive(secs(10)).unwrap().payload.to_vec())
        .collect();
    assert!(
        first.iter().any(|p| p == b"other"),
        "the other client's datagram is not among the first {} received: {first:?}",
        opts.max_connections
    );
}
