//! The `culvert` transport of the bench: which culvert API carries each case, set up on
//! both sides.
//!
//! Ping-pong and streams run on named pipes ([`culvert::pipe`]): byte pipes, except
//! `stream_64B_msgs` on a message pipe; default buffers (64 KiB a direction, like an
//! OS pipe). Calls run on a port ([`culvert::port`], default options: 64 B requests
//! inline, 1 MiB requests through a view); the peer is the port server, the parent a
//! client that times each `call`, and ends the run with a datagram. The fan case
//! (`pingpong_8B_waitset64`) runs on one named byte pipe per connection, which the
//! peer serves from one thread in a [`culvert::WaitSet`] ([`super::fan`]). The async
//! cases ([`super::asynchronous`]) set up the same pipe and port, then drive them with
//! culvert's futures on a tokio runtime.
//!
//! The hidden `culvert-ring` transport runs the same cases on the ring-level API
//! ([`super::rings`]: SPSC rings with the pipes' default sizes), to show what the pipe
//! and port layers cost on top of the rings.

use std::io::{self, Read, Write};
use std::time::Duration;

use std::time::Instant;

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{MessageKind, PortClient, PortOptions, PortServer};
use culvert::section::SectionOptions;
use culvert::{Deadline, WaitStrategy};

use super::rings::RingSetup;
use super::samples::Samples;
use super::spec::{Case, Flavor, Shape};
use super::work;
use super::Duplex;

/// Name of the bench's named pipe (in its private namespace).
pub(super) const PIPE: &str = "bench-pipe";
/// Name of the bench's port.
pub(super) const PORT: &str = "bench-port";

/// Name of the fan case's `i`-th named pipe (in the bench's private namespace).
fn fan_pipe(i: usize) -> String {
    format!("bench-fan-{i}")
}

/// Which culvert API a case runs on (printed with the table).
pub fn api_for(case: Case) -> &'static str {
    match case.shape() {
        Shape::PingPong { .. } => "culvert::pipe named byte pipe (PipeServer / PipeEnd::connect)",
        Shape::Stream { batch: 2.., .. } => {
            "culvert::pipe named message pipe, PipeEnd::write_messages / read_messages"
        }
        Shape::Stream { messages: true, .. } => "culvert::pipe named message pipe",
        Shape::Stream { .. } => "culvert::pipe named byte pipe",
        Shape::Call { request, .. } if request > PortOptions::default().inline_max => {
            "culvert::port (PortServer / PortClient::loan + call_loaned)"
        }
        Shape::Call { .. } => "culvert::port (PortServer / PortClient::call)",
        Shape::Fan { .. } => "culvert::pipe 64 named byte pipes, one server thread in a WaitSet",
        Shape::AsyncPingPong {
            flavor: Flavor::CurrentThread,
            ..
        } => {
            "culvert::pipe named byte pipe, PipeEnd::into_async (tokio AsyncRead/AsyncWrite), \
             both sides on a tokio current_thread runtime"
        }
        Shape::AsyncPingPong {
            flavor: Flavor::MultiThread,
            ..
        } => {
            "culvert::pipe named byte pipe, PipeEnd::into_async (tokio AsyncRead/AsyncWrite), \
             both sides in a task on a tokio multi_thread runtime (2 workers)"
        }
        Shape::AsyncCall {
            flavor: Flavor::CurrentThread,
            ..
        } => {
            "culvert::port, PortClient::call_async(..)?.await / PortServer::receive_async, \
             both sides on a tokio current_thread runtime"
        }
        Shape::AsyncCall {
            flavor: Flavor::MultiThread,
            ..
        } => {
            "culvert::port, PortClient::call_async(..)?.await / PortServer::receive_async, \
             both sides in a task on a tokio multi_thread runtime (2 workers)"
        }
    }
}

fn strategy(case: Case) -> WaitStrategy {
    match case.shape() {
        Shape::PingPong { spin: true, .. } => WaitStrategy::BusyPoll,
        _ => WaitStrategy::Adaptive,
    }
}

/// The port options of the bench's namespace.
pub(super) fn port_options(opts: &SectionOptions) -> PortOptions {
    PortOptions {
        root: opts.root.clone(),
        ..PortOptions::default()
    }
}

/// The pipe options of `case` in the bench's namespace.
pub(super) fn pipe_options(case: Case, opts: &SectionOptions) -> PipeOptions {
    let mode = match case.shape() {
        Shape::Stream { messages: true, .. } => PipeMode::Message,
        _ => PipeMode::Byte,
    };
    let options = PipeOptions::default()
        .mode(mode)
        .max_instances(1)
        .wait_strategy(strategy(case))
        .section_options(opts.clone());
    match case.stream_buffer() {
        Some(bytes) => options.buffers(bytes),
        None => options,
    }
}

/// The ring layout of a case on the `culvert-ring` transport: the pipes' default
/// 64 KiB rings, or the case's stream buffer; calls on message rings big enough for a
/// whole request.
pub fn ring_setup(case: Case) -> RingSetup {
    let (messages, capacity, max_message) = match case.shape() {
        Shape::PingPong { .. } | Shape::Fan { .. } | Shape::AsyncPingPong { .. } => {
            (false, 64 * 1024, 0)
        }
        Shape::Stream { messages, .. } => (
            messages,
            case.stream_buffer().unwrap_or(64 * 1024),
            if messages { 16 * 1024 } else { 0 },
        ),
        Shape::Call { request, reply } | Shape::AsyncCall { request, reply, .. } => {
            let max = request.max(reply);
            (true, (2 * max).next_power_of_two().max(64 * 1024), max)
        }
    };
    RingSetup {
        messages,
        capacity,
        max_message,
        strategy: strategy(case),
    }
}

/// A server-side pipe end that keeps its server alive.
struct Served {
    end: PipeEnd,
    _server: PipeServer,
}

impl Duplex for Served {
    fn write_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        self.end.write_batch(msgs)
    }

    fn read_batch(
        &mut self,
        buf: &mut [u8],
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        self.end.read_batch(buf, max, f)
    }
}

/// The peer's end: a message pipe's batches go through its batch calls.
impl Duplex for PipeEnd {
    fn write_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        let mut rest = msgs;
        while !rest.is_empty() {
            let n = self.write_messages(rest)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn read_batch(
        &mut self,
        _buf: &mut [u8],
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        match self.read_messages(max, f) {
            Ok(n) => Ok(n),
            Err(culvert::Error::Closed | culvert::Error::PeerDied) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

impl Read for Served {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.end.read(buf)
    }
}

impl Write for Served {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.end.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.end.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.end.flush()
    }
}

/// The parent's half, made before the peer starts.
pub enum Pending {
    /// A named pipe server waiting for the peer.
    Pipe(Box<PipeServer>, WaitStrategy),
    /// Nothing yet: the peer creates the port, the parent connects.
    Port,
    /// One named pipe server per connection of a fan, waiting for the peer.
    Fan(Vec<PipeServer>, WaitStrategy),
}

/// The parent's connection.
pub enum Established {
    /// A pipe end.
    Link(Box<dyn Duplex>),
    /// A port client.
    Port(PortClient),
    /// The pipe ends of a fan, in connection order.
    Fan(Vec<Box<dyn Duplex>>),
}

/// Parent: creates what the peer will connect to.
pub fn prepare(case: Case, opts: &SectionOptions) -> io::Result<Pending> {
    match case.shape() {
        Shape::Call { .. } | Shape::AsyncCall { .. } => Ok(Pending::Port),
        Shape::Fan { connections, .. } => {
            let servers = (0..connections)
                .map(|i| PipeServer::bind(&fan_pipe(i), &pipe_options(case, opts)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Pending::Fan(servers, strategy(case)))
        }
        _ => {
            let server = PipeServer::bind(PIPE, &pipe_options(case, opts))?;
            Ok(Pending::Pipe(Box::new(server), strategy(case)))
        }
    }
}

impl Pending {
    /// Parent: completes the connection once the peer runs (`peer_alive` says whether
    /// it still does, while we wait for its port to appear).
    pub fn establish(
        self,
        opts: &SectionOptions,
        mut peer_alive: impl FnMut() -> bool,
    ) -> io::Result<Established> {
        match self {
            Pending::Pipe(server, strategy) => {
                let mut end = server.accept_until(Duration::from_secs(10))?;
                end.set_wait_strategy(strategy);
                Ok(Established::Link(Box::new(Served {
                    end,
                    _server: *server,
                })))
            }
            Pending::Fan(servers, strategy) => {
                let mut links: Vec<Box<dyn Duplex>> = Vec::with_capacity(servers.len());
                for server in servers {
                    let mut end = server.accept_until(Duration::from_secs(10))?;
                    end.set_wait_strategy(strategy);
                    links.push(Box::new(Served {
                        end,
                        _server: server,
                    }));
                }
                Ok(Established::Fan(links))
            }
            Pending::Port => {
                let give_up = Instant::now() + Duration::from_secs(10);
                loop {
                    let deadline = Deadline::after(Duration::from_secs(5));
                    match PortClient::connect_with(PORT, b"bench", deadline, &port_options(opts)) {
                        Ok((client, _)) => return Ok(Established::Port(client)),
                        Err(culvert::Error::NotFound { .. }) if Instant::now() < give_up => {
                            if !peer_alive() {
                                return Err(io::Error::other("the peer exited before serving"));
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
}

/// Parent: times `call`s of `request` bytes (copying out the reply, like the other
/// transports' clients), then tells the server to stop.
pub fn call_client(
    client: &PortClient,
    request: usize,
    reply: usize,
    warmup: Duration,
    duration: Duration,
) -> io::Result<Samples> {
    let req: Vec<u8> = (0..request).map(|i| i as u8).collect();
    let mut rep = vec![0u8; reply];
    // A request above the inline size is written straight into a loaned view of the
    // shared heap (the copy every transport makes into shared memory), not copied twice.
    let loaned = request > client.inline_max();
    let samples = work::timed_loop(warmup, duration, || {
        let r = if loaned {
            let mut loan = client.loan(req.len(), Deadline::never())?;
            loan.as_mut_slice().copy_from_slice(&req);
            client.call_loaned(loan, Deadline::never())?
        } else {
            client.call(&req, Deadline::never())?
        };
        let got = r.as_slice();
        let n = got.len().min(rep.len());
        rep[..n].copy_from_slice(&got[..n]);
        Ok(())
    });
    let _ = client.send_datagram(b"stop");
    std::hint::black_box(&rep);
    samples
}

/// Peer: serves calls on a port until the parent's stop datagram (or its death).
pub fn serve_calls(case: Case, opts: &SectionOptions) -> io::Result<()> {
    let Shape::Call { reply, .. } = case.shape() else {
        return Err(io::Error::other("not a call case"));
    };
    let server = PortServer::create(PORT, &port_options(opts))?;
    let parent = rustix::process::getppid();
    let parent_gone = || rustix::process::getppid() != parent;
    loop {
        match server.listen(Deadline::after(Duration::from_secs(1))) {
            Ok(req) => {
                req.accept(b"ok")?;
                break;
            }
            Err(culvert::Error::Timeout) if !parent_gone() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut rep = vec![0u8; reply];
    loop {
        let incoming = match server.receive(Deadline::after(Duration::from_secs(1))) {
            Ok(m) => m,
            Err(culvert::Error::Timeout) if !parent_gone() => continue,
            Err(culvert::Error::Timeout | culvert::Error::Closed | culvert::Error::PeerDied) => {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        };
        if !answer(incoming, &mut rep)? {
            return Ok(());
        }
    }
}

/// Answers one message of a call case: touches every byte of the request and replies
/// with `rep` carrying the fold. False for the parent's closing datagram.
pub(super) fn answer(incoming: culvert::port::Incoming, rep: &mut [u8]) -> io::Result<bool> {
    if incoming.kind == MessageKind::Datagram {
        return Ok(false);
    }
    let fold = work::touch(incoming.payload.as_slice());
    rep[..8].copy_from_slice(&fold.to_ne_bytes());
    incoming.reply(rep)?;
    Ok(true)
}

/// Peer: connects to the parent's pipe.
pub fn connect(case: Case, opts: &SectionOptions) -> io::Result<Box<dyn Duplex>> {
    let mut end = PipeEnd::connect_with(PIPE, Duration::from_secs(10), &pipe_options(case, opts))?;
    end.set_wait_strategy(strategy(case));
    Ok(Box::new(end))
}

/// Peer: connects to every named pipe of a fan, in connection order.
pub fn connect_fan(case: Case, opts: &SectionOptions) -> io::Result<Vec<PipeEnd>> {
    let Shape::Fan { connections, .. } = case.shape() else {
        return Err(io::Error::other("not a fan case"));
    };
    let opts = pipe_options(case, opts);
    (0..connections)
        .map(|i| {
            let mut end = PipeEnd::connect_with(&fan_pipe(i), Duration::from_secs(10), &opts)?;
            end.set_wait_strategy(strategy(case));
            Ok(end)
        })
        .collect()
}
