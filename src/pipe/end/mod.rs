//! [`PipeEnd`]: one end of a pipe instance — a writer on the ring towards the peer, a
//! reader on the ring from it, and the per-end read state of message pipes.
//!
//! This module holds the end itself: its fields, the rings it writes and reads
//! ([`Tx`], [`Rx`]), and the checks every call starts with (usable, deadlines). The
//! calls are spread over submodules:
//!
//! * [`attach`] — making an end: attaching a side of an instance, exclusive or shared;
//! * [`settings`] — modes, timeouts, wait strategy, what the end knows of its peer;
//! * [`sharing`] — more holders of a shared end (clones, children);
//! * [`io`] — reading, writing, peek, transact, `std::io::Read + Write`;
//! * [`batch`] — many messages per publish or release, zero-copy reservations;
//! * [`fragments`] — message framing on SPSC rings (the single-fragment fast paths);
//! * [`shared_io`] — shared mode on MPMC rings;
//! * [`wait`] — waiting on the rings and noticing a gone peer;
//! * [`close`] — half-close, disconnect, drop;
//! * [`split`] — a reader and a writer half;
//! * [`asynchronous`] and `tokio_io` — futures and tokio's `AsyncRead + AsyncWrite`.
//!
//! The blocking calls wait per the end's non-blocking mode and timeouts, all of them
//! through [`PipeEnd::ring_op`]; the `*_async` calls and `tokio_io` wait on the
//! reactor, driving the `try_*` calls. The `try_*` calls, settings, attaching, sharing
//! and closing never wait.

mod asynchronous;
mod attach;
mod batch;
mod close;
mod fragments;
#[cfg(not(loom))]
pub(crate) mod fuzzing;
mod io;
mod settings;
mod shared_io;
mod sharing;
mod split;
#[cfg(feature = "tokio")]
mod tokio_io;
mod wait;

use std::time::Duration;

use culvert_ring::{mpmc, spsc};
use culvert_section::Section;
use culvert_sync::{Deadline, RecheckClock, WaitStrategy};

use super::layout::{EndState, Side, StateView};
use super::named::ServerLink;
use super::options::{PipeMode, ReadMode};
use super::shared;
use crate::{Error, Result};
pub use batch::MessageGrant;
use culvert_ring::Endpoint as _;
use fragments::MsgCursor;
use shared_io::SharedState;
pub use split::{PipeReader, PipeWriter};
#[cfg(feature = "tokio")]
pub use tokio_io::{AsyncPipeEnd, AsyncPipeReader, AsyncPipeWriter};

/// The ring this end writes.
enum Tx {
    Bytes(spsc::ByteWriter),
    Messages(spsc::MessageWriter),
    /// Shared mode, byte pipe.
    SharedBytes(mpmc::ByteWriter),
    /// Shared mode, message pipe: one ring message per pipe message.
    SharedMessages(mpmc::MessageWriter),
    /// A read half of a split end: it writes nothing.
    Detached,
}

/// The ring this end reads.
enum Rx {
    Bytes(spsc::ByteReader),
    Messages(spsc::MessageReader),
    /// Shared mode, byte pipe.
    SharedBytes(mpmc::ByteReader),
    /// Shared mode, message pipe.
    SharedMessages(mpmc::MessageReader),
    /// A write half of a split end: it reads nothing.
    Detached,
}

impl Tx {
    /// Closes the ring for writing (the reader drains, then sees end of stream).
    fn close(&mut self) {
        match self {
            Tx::Bytes(w) => w.close(),
            Tx::Messages(w) => w.close(),
            Tx::SharedBytes(w) => w.close(),
            Tx::SharedMessages(w) => w.close(),
            Tx::Detached => {}
        }
    }

    fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        match self {
            Tx::Bytes(w) => w.set_wait_strategy(strategy),
            Tx::Messages(w) => w.set_wait_strategy(strategy),
            Tx::SharedBytes(w) => w.set_wait_strategy(strategy),
            Tx::SharedMessages(w) => w.set_wait_strategy(strategy),
            Tx::Detached => {}
        }
    }
}

impl Rx {
    /// Closes the ring for reading (the writer's next write fails).
    fn close(&mut self) {
        match self {
            Rx::Bytes(r) => r.close(),
            Rx::Messages(r) => r.close(),
            Rx::SharedBytes(r) => r.close(),
            Rx::SharedMessages(r) => r.close(),
            Rx::Detached => {}
        }
    }

    fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        match self {
            Rx::Bytes(r) => r.set_wait_strategy(strategy),
            Rx::Messages(r) => r.set_wait_strategy(strategy),
            Rx::SharedBytes(r) => r.set_wait_strategy(strategy),
            Rx::SharedMessages(r) => r.set_wait_strategy(strategy),
            Rx::Detached => {}
        }
    }
}

/// One end of a pipe: two-way, `std::io::Read + Write`, byte or message mode.
///
/// Get one from [`anonymous`](super::anonymous), [`PendingEnd::open`](super::PendingEnd::open),
/// [`PipeEnd::from_inherited`] (in a child process), [`PipeServer::accept`](super::PipeServer::accept)
/// or [`PipeEnd::connect`]. Dropping it (or [`disconnect`](Self::disconnect)) closes
/// both directions: the peer reads what was committed, then end of stream, and its
/// writes fail with `BrokenPipe`.
///
/// Blocking calls honour [`set_nonblocking`](Self::set_nonblocking) (then they fail
/// with `WouldBlock` instead of waiting) and the read and write timeouts (then
/// `TimedOut`). A peer process that dies is noticed within
/// [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL).
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use culvert::pipe::{self, PipeMode, PipeOptions};
///
/// # fn main() -> culvert::Result<()> {
/// let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
/// a.write_all(b"ping")?;
/// let mut buf = [0u8; 2];
/// let first = b.read_message(&mut buf)?; // "pi", more to come
/// assert!(first.more);
/// let rest = b.read_message(&mut buf)?; // "ng", end of the message
/// assert_eq!((rest.len, rest.more), (2, false));
/// b.write_all(b"pong")?;
/// let mut reply = [0u8; 16];
/// let n = a.read(&mut reply)?;
/// assert_eq!(&reply[..n], b"pong");
/// drop(b);
/// assert_eq!(a.read(&mut reply)?, 0); // end of stream
/// # Ok(())
/// # }
/// ```
pub struct PipeEnd {
    /// Keeps the instance mapped (the rings also hold its regions).
    section: Section,
    /// The instance's state block.
    state: StateView,
    /// Which end of the instance this is.
    side: Side,
    mode: PipeMode,
    read_mode: ReadMode,
    max_message: usize,
    tx: Tx,
    rx: Rx,
    cursor: MsgCursor,
    /// Fragment assembly buffer for writes that cannot be reserved in place; sized
    /// once, to one ring record.
    scratch: Vec<u8>,
    /// Bytes of a message `read_messages` began reading and could not finish without
    /// waiting; delivered, with the rest, by its next call.
    partial: Vec<u8>,
    /// Largest fragment payload this end writes.
    frag_payload: usize,
    nonblocking: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    strategy: WaitStrategy,
    /// Set by `disconnect`.
    disconnected: bool,
    /// Set by `shutdown_write`: the ring this end writes is closed; reads go on.
    write_shut: bool,
    /// Set after a corruption: every later call fails.
    poisoned: bool,
    /// Rate limit of this end's peer liveness checks (see `wait`).
    clock: RecheckClock,
    /// Set once the peer end was seen gone; never cleared.
    peer_lost: Option<wait::PeerGone>,
    /// Named pipes: the server's instance slot this connection holds.
    link: Option<ServerLink>,
    /// A half of a split exclusive end: what closes the end once both halves are gone
    /// (then `link` is in it).
    split_guard: Option<std::sync::Arc<split::EndGuard>>,
    /// Shared mode only.
    shared: Option<SharedState>,
    /// Shared mode: reservations for children that have no pid yet.
    reserved: std::sync::Mutex<Vec<shared::Reservation>>,
}

impl std::fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeEnd")
            .field("side", &self.side.index())
            .field("mode", &self.mode)
            .field("read_mode", &self.read_mode)
            .field("max_message", &self.max_message)
            .field("disconnected", &self.disconnected)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Maps "the peer is gone" outcomes of a read to end of stream.
fn is_eof(e: &Error) -> bool {
    matches!(e, Error::Closed | Error::PeerDied)
}

impl PipeEnd {
    /// When a read gives up: now in non-blocking mode, else after the read timeout.
    fn read_deadline(&self) -> Deadline {
        if self.nonblocking {
            Deadline::now()
        } else {
            Deadline::from_timeout(self.read_timeout)
        }
    }

    /// When a write gives up: now in non-blocking mode, else after the write timeout.
    fn write_deadline(&self) -> Deadline {
        if self.nonblocking {
            Deadline::now()
        } else {
            Deadline::from_timeout(self.write_timeout)
        }
    }

    /// The peer end's words in the state block (untrusted hints).
    #[inline]
    fn peer_end(&self) -> &EndState {
        self.state.end(self.side.peer())
    }

    /// What every call checks first: `Closed` after `disconnect`, `Corrupted` once the
    /// end was poisoned.
    fn check_usable(&self) -> Result<()> {
        if self.disconnected {
            return Err(Error::Closed);
        }
        if self.poisoned {
            return Err(Error::Corrupted {
                what: "pipe end poisoned by an earlier corruption".into(),
            });
        }
        Ok(())
    }

    /// Passes `e` on, poisoning the end first if it is a corruption.
    fn poison_on(&mut self, e: Error) -> Error {
        if matches!(e, Error::Corrupted { .. }) {
            self.poisoned = true;
        }
        e
    }
}
