//! The per-message paths allocate nothing once warm: plain message writes and reads,
//! batches, message grants and byte writes on a pipe, 64-byte port calls (client
//! and server), and async pipe polls, pending ones included. Allocations
//! are counted per thread, so the harness and a server thread in the same process do
//! not disturb the count.

use std::io::{Read, Write};
use std::time::Duration;

use culvert::pipe::{self, PipeMode, PipeOptions};
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert_testkit::alloc::allocations_in;

#[global_allocator]
static GLOBAL: culvert_testkit::alloc::Counting = culvert_testkit::alloc::Counting;

/// Runs `round` 200 times to warm up (buffers grown, first-use statics set), then
/// counts the allocations of 5,000 more.
fn steady_allocations(mut round: impl FnMut()) -> usize {
    for _ in 0..200 {
        round();
    }
    allocations_in(|| {
        for _ in 0..5_000 {
            round();
        }
    })
}

#[test]
fn message_pipe_writes_and_reads_allocate_nothing() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let n = steady_allocations(|| {
        a.write_message(&msg).unwrap();
        let m = b.read_message(&mut buf).unwrap();
        assert_eq!((m.len, m.more), (64, false));
    });
    assert_eq!(n, 0, "write_message + read_message");
    // The std::io traits too.
    let n = steady_allocations(|| {
        a.write_all(&msg).unwrap();
        assert_eq!(b.read(&mut buf).unwrap(), 64);
    });
    assert_eq!(n, 0, "Write::write_all + Read::read");
}

#[test]
fn message_pipe_batches_and_grants_allocate_nothing() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    let msg = [3u8; 64];
    let batch: [&[u8]; 16] = [&msg; 16];
    let n = steady_allocations(|| {
        assert_eq!(a.write_messages(&batch).unwrap(), 16);
        let mut got = 0;
        while got < 16 {
            got += b.read_messages(16, |m| assert_eq!(m.len(), 64)).unwrap();
        }
    });
    assert_eq!(n, 0, "write_messages + read_messages");
    let n = steady_allocations(|| {
        let mut g = a.reserve_message(64).unwrap();
        g.as_mut_slice().fill(9);
        g.commit(64);
        let mut got = 0;
        while got == 0 {
            got = b
                .read_messages(1, |m| assert_eq!(m, &[9u8; 64][..]))
                .unwrap();
        }
    });
    assert_eq!(n, 0, "reserve_message + commit");
}

#[test]
fn byte_pipe_writes_and_reads_allocate_nothing() {
    let (mut a, mut b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let chunk = [5u8; 4096];
    let mut buf = [0u8; 4096];
    let n = steady_allocations(|| {
        a.write_all(&chunk).unwrap();
        b.read_exact(&mut buf).unwrap();
    });
    assert_eq!(n, 0);
}

#[test]
fn small_port_calls_allocate_nothing() {
    const T: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let opts = PortOptions::default().root(dir.path());
    let server = PortServer::create("alloc-calls", &opts).unwrap();
    // The server counts its own thread's allocations after the warm-up calls.
    let serving = std::thread::spawn(move || {
        let req = server.listen(T).unwrap();
        req.accept(b"").unwrap();
        let (mut served, mut steady) = (0u64, 0usize);
        let mut reply = [0u8; 64];
        loop {
            let n = allocations_in(|| {
                let inc = server.receive(T).unwrap();
                if inc.payload.as_slice() == b"stop" {
                    served = u64::MAX;
                    return;
                }
                reply.copy_from_slice(inc.payload.as_slice());
                inc.reply(&reply).unwrap();
            });
            if served == u64::MAX {
                return steady;
            }
            served += 1;
            if served > 200 {
                steady += n;
            }
        }
    });
    let (client, _) = PortClient::connect_with("alloc-calls", b"", T, &opts).unwrap();
    let request = [1u8; 64];
    let n = steady_allocations(|| {
        let r = client.call(&request, T).unwrap();
        assert_eq!(r.as_slice(), &request[..]);
    });
    client.send_datagram(b"stop").unwrap();
    let server_side = serving.join().unwrap();
    assert_eq!(n, 0, "64-byte calls, client");
    assert_eq!(server_side, 0, "64-byte calls, server");
}

/// Async polls allocate nothing once warm: an async read that finds nothing spins,
/// arms the reactor and returns `Pending` (the arming reuses a word list that a fired or
/// disarmed wait gave back); an async write and a read that complete allocate nothing.
#[cfg(feature = "tokio")]
#[test]
fn async_pipe_polls_allocate_nothing() {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    let (a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default()).unwrap();
    let (mut a, mut b) = (a.into_async(), b.into_async());
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 8];
    let mut round = |pending: &mut usize| {
        let mut rb = ReadBuf::new(&mut buf);
        *pending += allocations_in(|| {
            assert!(Pin::new(&mut b).poll_read(&mut cx, &mut rb).is_pending());
        });
        let sent = Pin::new(&mut a).poll_write(&mut cx, b"ping");
        assert!(matches!(sent, Poll::Ready(Ok(4))));
        let mut rb = ReadBuf::new(&mut buf);
        assert!(matches!(
            Pin::new(&mut b).poll_read(&mut cx, &mut rb),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(rb.filled(), b"ping");
    };
    for _ in 0..200 {
        round(&mut 0);
    }
    let (mut pending, rounds) = (0, 5_000);
    let n = allocations_in(|| {
        for _ in 0..rounds {
            round(&mut pending);
        }
    });
    assert_eq!(
        pending, 0,
        "{pending} allocations in {rounds} pending polls"
    );
    assert_eq!(
        n, 0,
        "AsyncWrite::poll_write + a ready AsyncRead::poll_read"
    );
}
