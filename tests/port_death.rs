//! Port peers that die: a client SIGKILLed with calls in flight and views held, and a
//! server SIGKILLed with calls pending (then restarted under the same name).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::port::*;
use culvert::port::{Incoming, PortClient, PortOptions, PortServer};
use culvert::Deadline;
use culvert_testkit::{cross_test, eventually, namespace, pattern, role, ChildCommand, TempRoot};

const NAME: &str = "svc";

fn secs(n: u64) -> Deadline {
    Deadline::after(Duration::from_secs(n))
}

fn options() -> PortOptions {
    PortOptions {
        max_message: 1 << 20,
        inline_max: 1024,
        view_heap_size: 8 << 20,
        max_connections: 8,
        request_ring_capacity: 64,
        root: None,
    }
}

#[test]
fn client_killed_with_calls_in_flight() {
    if let Some(role) = role() {
        let client = connect(NAME);
        if role == "victim" {
            // Replies held (server-heap views we never free) ...
            let mut held = Vec::new();
            for i in 0..4 {
                let req = pattern(100_000, i);
                let reply = client.call(&req, secs(10)).unwrap();
                assert!(reply.is_view());
                held.push(reply);
            }
            // ... and calls in flight (request views in our heap, replies coming).
            let pending: Vec<_> = (0..8)
                .map(|i| client.call_async(&pattern(50_000, 100 + i)).unwrap())
                .collect();
            std::fs::write(namespace().join("marker-armed"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
            drop((held, pending));
        } else {
            for i in 0..100 {
                let req = pattern(20_000 + i, i as u64);
                let reply = client.call(&req, secs(10)).unwrap();
                assert_eq!(reply.as_slice(), transform(&req).as_slice());
            }
        }
        return;
    }
    let root = TempRoot::in_shm("client-killed");
    let slow_echo = |inc: Incoming| {
        std::thread::sleep(Duration::from_millis(10));
        echo(inc)
    };
    let served = serve(NAME, &options(), &root.opts(), 2, Arc::new(slow_echo));
    let whole = served.port.view_heap_stats();
    let test = cross_test!(client_killed_with_calls_in_flight);
    let sup = test.supervise(Duration::from_secs(120));
    let victim = sup.spawn(test.command("victim").namespace(&root));
    assert!(eventually(Duration::from_secs(20), || root
        .marker("armed")
        .exists()));
    assert!(served.port.view_heap_stats().free_pages < whole.free_pages);
    sup.kill(victim);
    sup.wait(victim);
    let start = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || served.port.connection_count()
            == 0
            && served.port.view_heap_stats() == whole),
        "the dead client's connection and views are reclaimed: {:?} vs {:?}",
        served.port.view_heap_stats(),
        whole
    );
    eprintln!("dead client reclaimed in {:?}", start.elapsed());
    // The server goes on.
    let next = sup.spawn(test.command("next").namespace(&root));
    sup.wait_ok(next);
    assert!(eventually(Duration::from_secs(5), || served
        .port
        .view_heap_stats()
        == whole));
    served.stop();
}

#[test]
fn server_killed_then_restarted() {
    if let Some(role) = role() {
        let root = namespace();
        if role == "doomed" {
            let port = Arc::new(PortServer::create(NAME, &options()).unwrap());
            let p2 = port.clone();
            std::thread::spawn(move || loop {
                if let Ok(req) = p2.listen(secs(1)) {
                    req.accept(b"welcome").unwrap();
                }
            });
            // Take requests and never answer them.
            let mut held = Vec::new();
            while held.len() < 8 {
                if let Ok(inc) = port.receive(secs(1)) {
                    held.push(inc);
                }
            }
            std::fs::write(root.join("marker-held"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(120));
        } else {
            let sopts = PortOptions::default();
            let served = serve(NAME, &options(), &sopts, 1, Arc::new(echo));
            assert!(eventually(Duration::from_secs(30), || root
                .join("marker-done")
                .exists()));
            served.stop();
        }
        return;
    }
    let root = TempRoot::in_shm("server-killed");
    let test = cross_test!(server_killed_then_restarted);
    let sup = test.supervise(Duration::from_secs(120));
    let doomed = sup.spawn(test.command("doomed").namespace(&root));
    let connect = || loop {
        match PortClient::connect_with(NAME, b"ok", secs(10), &root.opts()) {
            Ok((c, _)) => return c,
            Err(culvert::Error::NotFound { .. }) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("connect: {e}"),
        }
    };
    let client = connect();
    let mut pending: Vec<_> = (0..8)
        .map(|i| {
            let size = if i % 2 == 0 { 100 } else { 10_000 };
            client.call_async(&pattern(size, i)).unwrap()
        })
        .collect();
    assert!(eventually(Duration::from_secs(20), || root
        .marker("held")
        .exists()));
    sup.kill(doomed);
    sup.wait(doomed);
    let start = Instant::now();
    for p in &mut pending {
        match p.wait(secs(10)) {
            Err(culvert::Error::PeerDied) => {}
            other => panic!("expected PeerDied, got {other:?}"),
        }
    }
    let took = start.elapsed();
    eprintln!("pending calls failed {took:?} after the server died");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(matches!(
        client.call(b"more", secs(5)),
        Err(culvert::Error::PeerDied)
    ));
    drop(pending);
    drop(client);

    // A new server under the same name replaces the dead one's port.
    let fresh = sup.spawn(test.command("fresh").namespace(&root));
    let client = loop {
        let c = connect();
        match c.call(b"hello", secs(10)) {
            Ok(r) => {
                assert_eq!(r.as_slice(), transform(b"hello").as_slice());
                break c;
            }
            // Connected to the dead port before the new one replaced it.
            Err(culvert::Error::PeerDied | culvert::Error::Closed) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("call: {e}"),
        }
    };
    let big = pattern(300_000, 7);
    assert_eq!(
        client.call(&big, secs(10)).unwrap().as_slice(),
        transform(&big).as_slice()
    );
    drop(client);
    std::fs::write(root.marker("done"), b"").unwrap();
    sup.wait_ok(fresh);
}
