//! The async cases: culvert's futures against tokio's own `UnixStream`, with both sides
//! of every round trip async on a tokio runtime of the same flavor, so both pay the
//! async wake-up path (a task parked, then woken and polled again).
//!
//! * `pingpong_8B_async_*`, culvert: the named byte pipe of the blocking ping-pong;
//!   each side turns its end into an `AsyncPipeEnd` (`PipeEnd::into_async`) and uses
//!   `AsyncWriteExt::write_all` / `AsyncReadExt::read_exact` (8 bytes out, 8 back);
//! * `call_64B_async_*`, culvert: the port of `call_64B`; the parent times
//!   `client.call_async(&req)?.await` (copying the reply out), the peer answers each
//!   request with `receive_async` and `reply`;
//! * uds, both shapes: `tokio::net::UnixStream` on the bench's socket, the same
//!   `write_all` / `read_exact` on both sides (a call's peer reads the whole 64-byte
//!   request, touches every byte, and answers with 64 bytes).
//!
//! Timing follows the blocking cases ([`work::timed_loop`]): rounds for `warmup` (at
//! least 16), then each round trip timed with `Instant` for `duration`, at most
//! a histogram. On a current_thread runtime the loop runs in `block_on` on
//! the process's main thread; on a multi_thread runtime (2 workers) it runs in a task
//! spawned on the runtime, so on a worker thread, and `block_on` only waits for it. The
//! peer serves the same way; a task of its own checks once a second that its parent
//! still runs, and ends the peer when it does not. Connection set-up is not timed.

use std::future::Future;
use std::io;
use std::path::Path;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use culvert::pipe::PipeEnd;
use culvert::port::{PortClient, PortServer};
use culvert::section::SectionOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::culvert::{self as culvert_transport, Established, PIPE, PORT};
use super::samples::Samples;
use super::spec::{Case, Flavor, Shape, Transport};
use super::{accept, work, BoxError, Pending};

/// How often a peer checks that its parent still runs.
const PARENT_CHECK: Duration = Duration::from_secs(1);

/// How long set-up (accepting, connecting) may take.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// One timed operation of an async loop: a round trip.
pub trait Round {
    /// Does one round trip.
    fn round(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// [`work::timed_loop`] for async rounds: `round` for `warmup` (at least 16 times),
/// then for `duration`, recording each round in ns.
pub async fn timed_loop<R: Round>(
    warmup: Duration,
    duration: Duration,
    round: &mut R,
) -> io::Result<Samples> {
    let start = Instant::now();
    let mut n = 0u32;
    while n < 16 || start.elapsed() < warmup {
        round.round().await?;
        n = n.saturating_add(1);
    }
    let mut samples = Samples::new();
    let end = Instant::now() + duration;
    loop {
        let t0 = Instant::now();
        round.round().await?;
        let t1 = Instant::now();
        samples.record(t1.duration_since(t0).as_nanos() as u64);
        if t1 >= end {
            break;
        }
    }
    Ok(samples)
}

/// A round trip over a byte stream: write `out` whole, read `back` whole.
struct Exchange<S> {
    link: S,
    out: Vec<u8>,
    back: Vec<u8>,
}

impl<S> Exchange<S> {
    /// `request` bytes out (the blocking clients' bytes: ping-pong `0x5a`s, a call's
    /// request counting up), `reply` bytes back.
    fn new(link: S, case: Case) -> io::Result<Exchange<S>> {
        let (out, reply) = match case.shape() {
            Shape::AsyncPingPong { size, .. } => (vec![0x5au8; size], size),
            Shape::AsyncCall { request, reply, .. } => {
                ((0..request).map(|i| i as u8).collect(), reply)
            }
            _ => return Err(io::Error::other(format!("{case} is not an async case"))),
        };
        Ok(Exchange {
            link,
            out,
            back: vec![0u8; reply],
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Round for Exchange<S> {
    async fn round(&mut self) -> io::Result<()> {
        self.link.write_all(&self.out).await?;
        self.link.read_exact(&mut self.back).await?;
        Ok(())
    }
}

/// A round trip on a port: one awaited `call_async`, the reply copied out (like the
/// blocking port client).
struct PortCalls {
    client: PortClient,
    req: Vec<u8>,
    rep: Vec<u8>,
}

impl Round for PortCalls {
    async fn round(&mut self) -> io::Result<()> {
        let reply = self.client.call_async(&self.req)?.await?;
        let got = reply.as_slice();
        let n = got.len().min(self.rep.len());
        self.rep[..n].copy_from_slice(&got[..n]);
        Ok(())
    }
}

/// A tokio runtime of `flavor`, with its I/O and time drivers.
fn runtime(flavor: Flavor) -> io::Result<tokio::runtime::Runtime> {
    match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(Flavor::WORKERS);
            b
        }
    }
    .enable_all()
    .build()
}

/// Runs `work` to completion on a fresh runtime of `flavor`: in `block_on` on this
/// thread (current_thread), or in a task spawned on the runtime (multi_thread).
fn run_on<T: Send + 'static>(
    flavor: Flavor,
    work: impl Future<Output = io::Result<T>> + Send + 'static,
) -> io::Result<T> {
    let rt = runtime(flavor)?;
    match flavor {
        Flavor::CurrentThread => rt.block_on(work),
        Flavor::MultiThread => rt.block_on(rt.spawn(work)).map_err(io::Error::other)?,
    }
}

/// Parent: completes the connection of `pending` (untimed), then times round trips on
/// the runtime of the case's flavor and ends the peer (end of stream, or the port's
/// stop datagram).
pub(super) fn client(
    case: Case,
    pending: Pending,
    child: &Mutex<Child>,
    opts: &SectionOptions,
    warmup: Duration,
    duration: Duration,
) -> Result<Samples, BoxError> {
    let flavor = case.flavor().ok_or("not an async case")?;
    let samples = match pending {
        Pending::Uds(listener, path) => {
            let socket = accept(&listener, child, SETUP_LIMIT)?;
            let _ = std::fs::remove_file(path);
            socket.set_nonblocking(true)?;
            run_on(flavor, async move {
                // Registers the socket with this runtime's I/O driver.
                let mut link = Exchange::new(UnixStream::from_std(socket)?, case)?;
                timed_loop(warmup, duration, &mut link).await
            })?
        }
        Pending::Culvert(culvert_transport::Pending::Pipe(server, strategy)) => {
            let mut end = server.accept_until(SETUP_LIMIT)?;
            end.set_wait_strategy(strategy);
            let samples = run_on(flavor, async move {
                let mut link = Exchange::new(end.into_async(), case)?;
                timed_loop(warmup, duration, &mut link).await
            })?;
            // The end is gone (the peer reads end of stream); now its server.
            drop(server);
            samples
        }
        Pending::Culvert(port @ culvert_transport::Pending::Port) => {
            let Shape::AsyncCall { request, reply, .. } = case.shape() else {
                return Err("a port carries only calls".into());
            };
            let alive = || matches!(child.lock().map(|mut c| c.try_wait()), Ok(Ok(None)));
            let Established::Port(client) = port.establish(opts, alive)? else {
                return Err("a port gives a port client".into());
            };
            let mut calls = PortCalls {
                client,
                req: (0..request).map(|i| i as u8).collect(),
                rep: vec![0u8; reply],
            };
            run_on(flavor, async move {
                let samples = timed_loop(warmup, duration, &mut calls).await;
                let _ = calls.client.send_datagram(b"stop");
                std::hint::black_box(&calls.rep);
                samples
            })?
        }
        _ => return Err(format!("{case} runs on culvert and uds only").into()),
    };
    Ok(samples)
}

/// Peer: connects over `transport` and answers until end of stream, the parent's stop
/// datagram, or the parent's exit, async on the runtime of the case's flavor.
pub(super) fn serve(
    case: Case,
    transport: Transport,
    opts: &SectionOptions,
    dir: &Path,
) -> Result<(), BoxError> {
    let flavor = case.flavor().ok_or("not an async case")?;
    let (request, reply) = match case.shape() {
        Shape::AsyncPingPong { size, .. } => (size, size),
        Shape::AsyncCall { request, reply, .. } => (request, reply),
        _ => return Err(format!("{case} is not an async case").into()),
    };
    let is_call = matches!(case.shape(), Shape::AsyncCall { .. });
    let socket = dir.join("bench.sock");
    let pipe_opts = culvert_transport::pipe_options(case, opts);
    let port_opts = culvert_transport::port_options(opts);
    run_on(flavor, async move {
        tokio::spawn(watch_parent());
        match transport {
            Transport::Uds => {
                let mut link = UnixStream::connect(&socket).await?;
                if is_call {
                    answer(&mut link, request, reply).await
                } else {
                    echo(&mut link, request).await
                }
            }
            Transport::Culvert if is_call => {
                let server = PortServer::create(PORT, &port_opts)?;
                serve_port(&server, reply).await
            }
            Transport::Culvert => {
                let end = PipeEnd::connect_async(PIPE, SETUP_LIMIT, &pipe_opts).await?;
                echo(&mut end.into_async(), request).await
            }
            other => Err(io::Error::other(format!(
                "{case} does not run over {other}"
            ))),
        }
    })?;
    Ok(())
}

/// Ends this process once its parent is gone (it was re-parented).
async fn watch_parent() {
    let parent = rustix::process::getppid();
    loop {
        tokio::time::sleep(PARENT_CHECK).await;
        if rustix::process::getppid() != parent {
            std::process::exit(0);
        }
    }
}

/// `Ok(())` for an error that means the other side is gone, else the error.
fn end_or(e: io::Error) -> io::Result<()> {
    if work::is_end(&e) {
        Ok(())
    } else {
        Err(e)
    }
}

/// Peer side of a ping-pong: echo `size`-byte blocks until end of stream.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(link: &mut S, size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    loop {
        if let Err(e) = link.read_exact(&mut buf).await {
            return end_or(e);
        }
        if let Err(e) = link.write_all(&buf).await {
            return end_or(e);
        }
    }
}

/// Peer side of calls on a byte stream: read a whole `request`, touch every byte,
/// answer `reply` bytes; until end of stream.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    link: &mut S,
    request: usize,
    reply: usize,
) -> io::Result<()> {
    let mut req = vec![0u8; request];
    let mut rep = vec![0u8; reply];
    loop {
        if let Err(e) = link.read_exact(&mut req).await {
            return end_or(e);
        }
        let fold = work::touch(&req);
        rep[..8].copy_from_slice(&fold.to_ne_bytes());
        if let Err(e) = link.write_all(&rep).await {
            return end_or(e);
        }
    }
}

/// Peer side of calls on a port: accept the parent's connection, then answer every
/// request with `reply` bytes until its stop datagram (or the port closes).
async fn serve_port(server: &PortServer, reply: usize) -> io::Result<()> {
    server.listen_async().await?.accept(b"ok")?;
    let mut rep = vec![0u8; reply];
    loop {
        let incoming = match server.receive_async().await {
            Ok(m) => m,
            Err(culvert::Error::Closed | culvert::Error::PeerDied) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !super::culvert::answer(incoming, &mut rep)? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its rounds.
    struct Count(u32);

    impl Round for Count {
        async fn round(&mut self) -> io::Result<()> {
            self.0 += 1;
            tokio::task::yield_now().await;
            Ok(())
        }
    }

    #[test]
    fn timed_loop_warms_up_then_records_every_round_on_both_flavors() {
        for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
            let (rounds, samples) = run_on(flavor, async {
                let mut c = Count(0);
                let s = timed_loop(Duration::ZERO, Duration::from_millis(5), &mut c).await?;
                Ok((c.0, s))
            })
            .unwrap();
            assert!(!samples.is_empty());
            assert_eq!(u64::from(rounds), 16 + samples.len(), "{flavor:?}");
        }
    }
}
