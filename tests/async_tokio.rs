//! Async endpoints on tokio, across real processes: a reader sees a SIGKILLed writer,
//! thousands of concurrent calls from several client processes, cancelled futures
//! leave nothing armed and no waiter announced, registering and dropping many
//! endpoints leaks neither arming nor mappings, and `read_message` is cancel-safe.

#![cfg(feature = "tokio")]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use culvert::pipe::{self, PipeEnd, PipeMode, PipeOptions};
use culvert::port::{PortClient, PortOptions, PortServer, ServerEvent};
use culvert::sync::{reactor, LIVENESS_RECHECK_INTERVAL};
use culvert::{Error, Waitable};
use culvert_testkit::{
    cross_test, fill, fnv1a_words, role, role_arg, role_arg_parsed, ChildCommand, Supervisor,
    TempRoot, FNV_START,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until nothing of this process is armed in the reactor (tests of this binary
/// run in parallel: give theirs a moment to finish).
fn reactor_settles() -> usize {
    let start = Instant::now();
    while reactor::armed_count() != 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    reactor::armed_count()
}

/// Every notifier of `end` has no announced waiter.
fn no_waiter_on(end: &PipeEnd) {
    end.notifiers(&mut |n| assert_eq!(n.waiter_count(), 0, "a waiter is still announced"));
}

#[test]
fn a_tokio_reader_sees_a_sigkilled_writer() {
    let test = cross_test!(a_tokio_reader_sees_a_sigkilled_writer);
    if role().is_some() {
        let mut end = PipeEnd::from_inherited().unwrap();
        end.write_message(b"alive").unwrap();
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let sup = test.supervise(Duration::from_secs(60));
    let (mine, theirs) =
        pipe::anonymous_pending(PipeMode::Message, &PipeOptions::default()).unwrap();
    let child = sup.spawn_with(&mut test.command("writer"), |cmd| theirs.spawn_child(cmd));
    let mut end = mine.into_async();
    current_thread().block_on(async {
        let mut buf = [0u8; 16];
        let m = end.read_message(&mut buf).await.unwrap();
        assert_eq!(&buf[..m.len], b"alive");
        sup.kill(child);
        let killed = Instant::now();
        let mut rest = Vec::new();
        let n = end.read_to_end(&mut rest).await.unwrap();
        let took = killed.elapsed();
        eprintln!("the tokio reader saw the SIGKILLed writer after {took:?}");
        assert_eq!(n, 0, "nothing more was written");
        assert!(
            took < LIVENESS_RECHECK_INTERVAL * 2 + Duration::from_millis(250),
            "took {took:?}"
        );
    });
    sup.wait(child);
}

/// Calls each client process makes, all in flight at once.
const CALLS_PER_CLIENT: u32 = 2_500;
const CLIENT_PROCESSES: usize = 4;

fn async_client() {
    let root = std::path::PathBuf::from(role_arg("ROOT"));
    let id: u32 = role_arg_parsed("ID");
    let opts = PortOptions::default().root(&root);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let (client, _) =
                PortClient::connect_async("async-port", b"hi", Duration::from_secs(30), &opts)
                    .await
                    .unwrap();
            let client = std::sync::Arc::new(client);
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..CALLS_PER_CLIENT {
                let c = client.clone();
                tasks.spawn(async move {
                    let mut req = id.to_le_bytes().to_vec();
                    req.extend_from_slice(&n.to_le_bytes());
                    let reply = c.call_async(&req).unwrap().await.unwrap();
                    req.reverse();
                    assert_eq!(reply.as_slice(), &req[..]);
                });
            }
            let mut done = 0;
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
                done += 1;
            }
            assert_eq!(done, CALLS_PER_CLIENT);
        });
}

#[test]
fn ten_thousand_concurrent_async_calls_from_four_processes() {
    let test = cross_test!(ten_thousand_concurrent_async_calls_from_four_processes);
    if role().is_some() {
        async_client();
        return;
    }
    let sup = test.supervise(Duration::from_secs(120));
    let root = TempRoot::new("async-port");
    let server =
        PortServer::create("async-port", &PortOptions::default().root(root.path())).unwrap();
    for i in 0..CLIENT_PROCESSES {
        sup.spawn(
            test.command("client")
                .role_arg("ROOT", &*root)
                .role_arg("ID", i.to_string()),
        );
    }
    let total = CALLS_PER_CLIENT * CLIENT_PROCESSES as u32;
    current_thread().block_on(async {
        let mut calls = 0;
        while calls < total {
            match server.next_event_async().await.unwrap() {
                ServerEvent::Connect(req) => drop(req.accept(b"ok").unwrap()),
                ServerEvent::Message(m) => {
                    let mut back = m.payload.to_vec();
                    back.reverse();
                    m.reply(&back).unwrap();
                    calls += 1;
                }
            }
        }
    });
    sup.wait_all_ok();
}

/// Polls `fut` once with a no-op waker; true when it completed.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.poll(&mut cx), Poll::Ready(_))
}

#[test]
fn dropping_pending_futures_leaves_nothing_armed_and_no_waiter() {
    let (mut a, b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    let mut buf = [0u8; 8];
    {
        let fut = pin!(a.read_message_async(&mut buf));
        let mut fut = fut;
        assert!(!poll_once(fut.as_mut()), "nothing was written");
    }
    no_waiter_on(&a);

    let root = TempRoot::new("async-drop");
    let opts = PortOptions::default().root(root.path());
    let server = PortServer::create("drop", &opts).unwrap();
    let t = std::thread::spawn(move || {
        let req = server.listen(Duration::from_secs(10)).unwrap();
        req.accept(b"ok").unwrap();
        // The call arrives; it is never answered before the client cancels it.
        let m = server.receive(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let _ = m.reply(b"late");
        server
    });
    let (client, _) =
        PortClient::connect_with("drop", b"hi", Duration::from_secs(10), &opts).unwrap();
    {
        let mut call = client.call_async(b"x").unwrap();
        assert!(!poll_once(std::pin::Pin::new(&mut call)));
    }
    assert_eq!(reactor_settles(), 0);
    let _server = t.join().unwrap();
    // The connection still works after the cancelled call.
    drop((a, b));
}

#[test]
fn a_thousand_endpoints_registered_and_dropped_leak_nothing() {
    let maps = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count()
    };
    // Warm up (the reactor thread, allocator arenas), then measure.
    for _ in 0..10 {
        let (a, _b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
        let mut a = a.into_async();
        let mut buf = [0u8; 4];
        let fut = pin!(a.read(&mut buf));
        let _ = poll_once(fut);
    }
    let before = maps();
    let held: Vec<_> = (0..50)
        .map(|_| pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap())
        .collect();
    assert!(
        maps() >= before + 50,
        "the count sees the sections' mappings"
    );
    drop(held);
    for _ in 0..1_000 {
        let (a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
        let mut a = a.into_async();
        let mut buf = [0u8; 4];
        {
            let fut = pin!(a.read(&mut buf));
            assert!(!poll_once(fut), "nothing was written");
        }
        drop((a, b));
    }
    assert_eq!(reactor_settles(), 0, "armed waits left in the reactor");
    let after = maps();
    assert!(
        after <= before + 40,
        "mappings grew from {before} to {after} over 1,000 endpoints"
    );
}

#[test]
fn read_message_is_cancel_safe() {
    const MESSAGES: u32 = 2_000;
    let (a, b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    let writer = std::thread::spawn(move || {
        let mut b = b;
        for n in 0..MESSAGES {
            b.write_message(&n.to_le_bytes()).unwrap();
            if n % 7 == 0 {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    });
    let mut a = a.into_async();
    current_thread().block_on(async {
        let mut next = 0u32;
        let mut cancelled = 0u32;
        let mut buf = [0u8; 8];
        while next < MESSAGES {
            tokio::select! {
                r = a.read_message(&mut buf) => {
                    let m = r.unwrap();
                    assert_eq!(m.len, 4);
                    let got = u32::from_le_bytes(buf[..4].try_into().unwrap());
                    assert_eq!(got, next, "a message was lost or repeated");
                    next += 1;
                }
                () = tokio::task::yield_now() => cancelled += 1,
            }
        }
        eprintln!("{cancelled} reads were cancelled; every message arrived once, in order");
    });
    writer.join().unwrap();
    // The half-close is seen as end of stream by the async reader.
    let mut rest = Vec::new();
    current_thread().block_on(async { a.read_to_end(&mut rest).await.unwrap() });
    assert!(rest.is_empty());
    no_waiter_on(a.get_ref());
}

#[test]
fn shutdown_half_closes_and_the_end_still_reads() {
    let (a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let (mut a, mut b) = (a.into_async(), b.into_async());
    current_thread().block_on(async {
        a.write_all(b"request").await.unwrap();
        a.shutdown().await.unwrap();
        let mut req = Vec::new();
        b.read_to_end(&mut req).await.unwrap();
        assert_eq!(req, b"request");
        b.write_all(b"reply").await.unwrap();
        drop(b);
        let mut rep = Vec::new();
        a.read_to_end(&mut rep).await.unwrap();
        assert_eq!(rep, b"reply");
        assert!(matches!(a.write_message(b"x").await, Err(Error::Closed)));
    });
}

/// `call_async` never waits for room in the request ring: with the ring full, the
/// request waits in the `PendingCall` and goes out when the call is awaited (or waited
/// on), so a single-threaded runtime serving the port itself cannot deadlock.
#[test]
fn call_async_on_a_full_ring_does_not_block_and_sends_when_awaited() {
    const CALLS: u32 = 64;
    // A call_async that waited for room would hang here: fail instead.
    let _sup = Supervisor::new("call_async_on_a_full_ring", Duration::from_secs(60));
    let root = TempRoot::new("async-full");
    // Each connection's request ring holds two records of the largest inline size:
    // 1 KiB, about 21 of these 4-byte calls (48-byte records).
    let opts = PortOptions::default()
        .root(root.path())
        .inline_max(256)
        .request_ring_capacity(2);
    let server = PortServer::create("full", &opts).unwrap();
    current_thread().block_on(async {
        let connect = PortClient::connect_async("full", b"hi", Duration::from_secs(10), &opts);
        let accept = async {
            let req = server.listen_async().await.unwrap();
            req.accept(b"ok").unwrap();
        };
        let ((client, _), ()) = tokio::join!(async { connect.await.unwrap() }, accept);
        // Far more calls than the ring holds, none answered yet: none of these waits.
        let start = Instant::now();
        let calls: Vec<_> = (0..CALLS)
            .map(|n| client.call_async(&n.to_le_bytes()).unwrap())
            .collect();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "call_async waited"
        );
        let serve = async {
            for _ in 0..CALLS {
                let m = server.receive_async().await.unwrap();
                let n = u32::from_le_bytes(m.payload.as_slice().try_into().unwrap());
                m.reply(&(n + 1).to_le_bytes()).unwrap();
            }
        };
        let collect = async {
            let mut got = Vec::new();
            for c in calls {
                let r = c.await.unwrap();
                got.push(u32::from_le_bytes(r.as_slice().try_into().unwrap()));
            }
            got
        };
        let ((), got) = tokio::join!(serve, collect);
        assert_eq!(got, (1..=CALLS).collect::<Vec<_>>());
    });
}

/// Split async halves move 16 MiB each way at once, on a multi-thread runtime, with a
/// checksum of every byte.
#[test]
fn async_split_halves_move_data_both_ways_at_once() {
    const TOTAL: usize = 16 << 20;
    const CHUNK: usize = 16 * 1024;
    async fn send(mut w: impl tokio::io::AsyncWrite + Unpin, seed: u64) -> u64 {
        let mut s = seed;
        let mut sum = FNV_START;
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0;
        while done < TOTAL {
            fill(&mut buf, &mut s);
            sum = fnv1a_words(sum, &buf);
            w.write_all(&buf).await.unwrap();
            done += CHUNK;
        }
        w.shutdown().await.unwrap();
        sum
    }
    async fn receive(mut r: impl tokio::io::AsyncRead + Unpin) -> (usize, u64) {
        let mut sum = FNV_START;
        let mut total = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                return (total, sum);
            }
            sum = fnv1a_words(sum, &buf[..n]);
            total += n;
        }
    }
    let (a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let (ar, aw) = a.into_async().split().unwrap();
    let (br, bw) = b.into_async().split().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let t1 = tokio::spawn(send(aw, 1));
        let t2 = tokio::spawn(send(bw, 2));
        let t3 = tokio::spawn(receive(br));
        let t4 = tokio::spawn(receive(ar));
        let (sent_ab, sent_ba) = (t1.await.unwrap(), t2.await.unwrap());
        let (got_b, got_a) = (t3.await.unwrap(), t4.await.unwrap());
        assert_eq!(got_b, (TOTAL, sent_ab));
        assert_eq!(got_a, (TOTAL, sent_ba));
    });
}

/// A pending call whose reply does not come is woken only by the reactor's liveness
/// round (a few times in 200 ms), not by its own polls: a poll that notified the
/// notifier it had just armed on woke itself thousands of times.
#[test]
fn an_unanswered_call_future_does_not_wake_itself() {
    use culvert::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    let root = TempRoot::new("async-nowake");
    let opts = PortOptions::default().root(root.path());
    let server = PortServer::create("quiet", &opts).unwrap();
    let t = std::thread::spawn(move || {
        server
            .listen(Duration::from_secs(10))
            .unwrap()
            .accept(b"ok")
            .unwrap();
        // Take the call and hold it unanswered until the client is done.
        let m = server.receive(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        drop(m);
        server
    });
    let (client, _) =
        PortClient::connect_with("quiet", b"hi", Duration::from_secs(10), &opts).unwrap();
    let mut call = client.call_async(b"x").unwrap();
    let wakes = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let start = Instant::now();
    let mut polls = 0;
    while start.elapsed() < Duration::from_millis(200) {
        let before = wakes.0.load(Ordering::Relaxed);
        assert!(std::pin::Pin::new(&mut call).poll(&mut cx).is_pending());
        polls += 1;
        // Poll again only once woken, as an executor would.
        while wakes.0.load(Ordering::Relaxed) == before
            && start.elapsed() < Duration::from_millis(200)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let woken = wakes.0.load(Ordering::Relaxed);
    eprintln!("{polls} polls, {woken} wake-ups in 200 ms");
    assert!(woken <= 20, "{woken} wake-ups in 200 ms without a reply");
    drop(call);
    let _server = t.join().unwrap();
}
