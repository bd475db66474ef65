//! The fan case (`pingpong_8B_waitset64`): one peer thread serving many connections.
//!
//! The parent opens `connections` connections to the peer and times 8-byte round
//! trips taken round robin over them (round trip k on connection k % `connections`),
//! with the same timed loop as ping-pong. The peer serves every connection from one
//! thread, echoing each complete `size`-byte message on the connection it came from:
//!
//! * culvert: named byte pipes in a [`WaitSet`]; for each ready end, one
//!   `try_read_message` into that connection's accumulator (a read may return fewer
//!   bytes than a message), and a blocking `write_all` of a complete message;
//! * uds: Unix stream sockets to the parent's `bench.sock` listener in `poll(2)`.
//!
//! The peer stops at end of stream on any connection (the parent closes them all
//! when its run ends) or when its parent process is gone.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use culvert::pipe::PipeEnd;
use culvert::section::SectionOptions;
use culvert::WaitSet;
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::samples::Samples;
use super::spec::{Case, Shape, Transport};
use super::{accept, culvert as culvert_transport, work, BoxError, Duplex};

/// How long the peer sleeps at most before checking that its parent still runs.
const PARENT_CHECK: Duration = Duration::from_secs(1);

/// Parent: `size`-byte round trips over `links`, taken in turn, each one timed.
pub fn client<L: Read + Write>(
    links: &mut [L],
    size: usize,
    warmup: Duration,
    duration: Duration,
) -> io::Result<Samples> {
    if links.is_empty() {
        return Err(io::Error::other("a fan needs at least one connection"));
    }
    let out = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    let count = links.len();
    let mut next = 0usize;
    work::timed_loop(warmup, duration, || {
        let link = &mut links[next];
        next += 1;
        if next == count {
            next = 0;
        }
        link.write_all(&out)?;
        link.read_exact(&mut back)
    })
}

/// Parent: accepts the `connections` Unix socket connections of a fan, in the order the
/// peer makes them.
pub fn accept_sockets(
    listener: &UnixListener,
    child: &Mutex<Child>,
    connections: usize,
) -> Result<Vec<Box<dyn Duplex>>, BoxError> {
    let mut links: Vec<Box<dyn Duplex>> = Vec::with_capacity(connections);
    for _ in 0..connections {
        links.push(Box::new(accept(listener, child, Duration::from_secs(10))?));
    }
    Ok(links)
}

/// Peer: connects every connection of the fan over `transport` and serves them all
/// from this thread until end of stream or the parent's exit.
pub fn serve(
    case: Case,
    transport: Transport,
    opts: &SectionOptions,
    dir: &Path,
) -> Result<(), BoxError> {
    let Shape::Fan { size, connections } = case.shape() else {
        return Err("not a fan case".into());
    };
    match transport {
        Transport::Culvert => serve_pipes(culvert_transport::connect_fan(case, opts)?, size)?,
        Transport::Uds => {
            let path = dir.join("bench.sock");
            let sockets = (0..connections)
                .map(|_| UnixStream::connect(&path))
                .collect::<io::Result<Vec<_>>>()?;
            serve_sockets(&sockets, size)?;
        }
        other => return Err(format!("{case} does not run over {other}").into()),
    }
    Ok(())
}

/// What a connection has received of its current message.
#[derive(Clone)]
struct Partial {
    buf: Vec<u8>,
    filled: usize,
}

impl Partial {
    fn new(size: usize) -> Partial {
        Partial {
            buf: vec![0u8; size],
            filled: 0,
        }
    }

    /// The part still to fill.
    fn rest(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..]
    }

    /// Counts `n` more bytes; the whole message when it is complete (and starts the
    /// next one).
    fn add(&mut self, n: usize) -> Option<&[u8]> {
        self.filled += n;
        if self.filled < self.buf.len() {
            return None;
        }
        self.filled = 0;
        Some(&self.buf)
    }
}

/// Whether the process that started this one is gone (this one was re-parented).
fn parent_gone(parent: Option<rustix::process::Pid>) -> bool {
    rustix::process::getppid() != parent
}

/// Writes a whole echo; `Ok(false)` when the other side is gone.
fn echo(link: &mut impl Write, msg: &[u8]) -> io::Result<bool> {
    match link.write_all(msg) {
        Ok(()) => Ok(true),
        Err(e) if work::is_end(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Peer, culvert: echoes on every pipe end, waiting on all of them in one [`WaitSet`].
fn serve_pipes(mut ends: Vec<PipeEnd>, size: usize) -> io::Result<()> {
    let parent = rustix::process::getppid();
    let mut partial = vec![Partial::new(size); ends.len()];
    let mut set = WaitSet::new();
    loop {
        let ready = match set.wait(&mut ends, PARENT_CHECK) {
            Ok(ready) => ready,
            Err(_) if parent_gone(parent) => return Ok(()),
            Err(_) => continue,
        };
        for &i in ready {
            let (end, part) = (&mut ends[i], &mut partial[i]);
            let n = match end.try_read_message(part.rest()) {
                Ok(r) if r.len == 0 => return Ok(()),
                Ok(r) => r.len,
                // A spurious ready report: the next wait sees the end again.
                Err(culvert::Error::WouldBlock) => continue,
                Err(culvert::Error::Closed | culvert::Error::PeerDied) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if let Some(msg) = part.add(n) {
                if !echo(end, msg)? {
                    return Ok(());
                }
            }
        }
    }
}

/// Peer, uds: echoes on every socket, waiting on all of them in one `poll(2)`.
fn serve_sockets(sockets: &[UnixStream], size: usize) -> io::Result<()> {
    let parent = rustix::process::getppid();
    let mut partial = vec![Partial::new(size); sockets.len()];
    let mut fds: Vec<PollFd<'_>> = sockets
        .iter()
        .map(|s| PollFd::new(s, PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: PARENT_CHECK.as_secs() as _,
        tv_nsec: 0,
    };
    loop {
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) if parent_gone(parent) => return Ok(()),
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents().is_empty() {
                continue;
            }
            let (mut socket, part) = (&sockets[i], &mut partial[i]);
            let n = match socket.read(part.rest()) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if work::is_end(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            if let Some(msg) = part.add(n) {
                if !echo(&mut socket, msg)? {
                    return Ok(());
                }
            }
        }
    }
}
