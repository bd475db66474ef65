//! [`PipeEnd`]: one end of a pipe instance — a writer on the ring towards the peer, a
//! reader on the ring from it, and the per-end read state of message pipes.
//!
//! This module holds the end itself: the [`Base`] every kind of end shares (the
//! instance, the settings, what is known of the peer) and its rings by kind ([`Io`]),
//! and the checks every call starts with (usable, deadlines). The calls are spread
//! over submodules:
//!
//! * [`rings`] — the kinds of end (exclusive bytes or messages on SPSC rings, shared
//!   bytes or messages on MPMC rings) and [`EndIo`](rings::EndIo), the one interface the calls use;
//! * [`attach`] — making an end: attaching a side of an instance, exclusive or shared;
//! * [`settings`] — modes, timeouts, wait strategy, what the end knows of its peer;
//! * [`sharing`] — more holders of a shared end (clones, children);
//! * [`io`] — reading, writing, peek, transact, `std::io::Read + Write`;
//! * [`batch`] — many messages per publish or release, zero-copy reservations;
//! * [`bytes`] — byte pipes on SPSC rings;
//! * [`fragments`] — message pipes on SPSC rings: framing, the single-fragment fast
//!   paths;
//! * [`shared_io`] — shared mode on MPMC rings;
//! * [`wait`] — waiting on the rings and noticing a gone peer;
//! * [`close`] — half-close, disconnect, drop;
//! * [`split`] — a reader and a writer half;
//! * [`asynchronous`] and `tokio_io` — futures and tokio's `AsyncRead + AsyncWrite`.
//!
//! The blocking calls wait per the end's non-blocking mode and timeouts, all of them
//! through [`Base::ring_op`]; the `*_async` calls and `tokio_io` wait on the
//! reactor, driving the `try_*` calls. The `try_*` calls, settings, attaching, sharing
//! and closing never wait.

mod asynchronous;
mod attach;
mod batch;
mod bytes;
mod close;
mod fragments;
#[cfg(not(loom))]
pub(crate) mod fuzzing;
mod io;
mod rings;
mod settings;
mod shared_io;
mod sharing;
mod split;
#[cfg(feature = "tokio")]
mod tokio_io;
mod wait;

use std::time::Duration;

use culvert_ring::mpmc;
use culvert_section::Section;
use culvert_sync::{Deadline, RecheckClock, WaitStrategy};

use super::layout::{EndState, Side, StateView};
use super::named::ServerLink;
use super::options::{PipeMode, ReadMode};
use super::shared;
use crate::{Error, Result};
pub use batch::MessageGrant;
use bytes::ByteRings;
use fragments::Framed;
use rings::EndIo;
use shared_io::{Holder, SharedState};
pub use split::{PipeReader, PipeWriter};
#[cfg(feature = "tokio")]
pub use tokio_io::{AsyncPipeEnd, AsyncPipeReader, AsyncPipeWriter};

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
    base: Base,
    /// The rings, by kind, and the state that kind needs.
    io: Io,
}

/// What every kind of end holds: the instance, the settings, and what is known of the
/// peer. The rings' calls take it beside the rings ([`EndIo`](rings::EndIo)), so they wait and check
/// the peer through it while holding a ring.
struct Base {
    /// Keeps the instance mapped (the rings also hold its regions).
    section: Section,
    /// The instance's state block.
    state: StateView,
    /// Which end of the instance this is.
    side: Side,
    mode: PipeMode,
    read_mode: ReadMode,
    max_message: usize,
    /// Bytes of a message `read_messages` began reading and could not finish without
    /// waiting; delivered, with the rest, by its next call.
    partial: Vec<u8>,
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
    /// How the peer end's going is told beyond its status word (see `wait`).
    peer_check: wait::PeerCheck,
    /// Set once the peer end was seen gone; never cleared.
    peer_lost: Option<wait::PeerGone>,
    /// Named pipes: the server's instance slot this connection holds.
    link: Option<ServerLink>,
    /// A half of a split exclusive end: what closes the end once both halves are gone
    /// (then `link` is in it).
    split_guard: Option<std::sync::Arc<split::EndGuard>>,
    /// Shared mode: reservations for children that have no pid yet.
    reserved: std::sync::Mutex<Vec<shared::Reservation>>,
}

/// The rings of an end, by kind.
enum Io {
    /// Exclusive byte pipe: SPSC byte rings.
    Bytes(ByteRings),
    /// Exclusive message pipe: SPSC message rings carrying fragments.
    Messages(Framed),
    /// Shared byte pipe: MPMC byte rings; this end is one of its end's holders.
    SharedBytes(Holder<mpmc::ByteWriter, mpmc::ByteReader>),
    /// Shared message pipe: MPMC message rings, one ring message per pipe message.
    SharedMessages(Holder<mpmc::MessageWriter, mpmc::MessageReader>),
}

impl Io {
    /// The kind, as the interface every kind implements.
    #[inline]
    fn as_dyn(&mut self) -> &mut dyn EndIo {
        match self {
            Io::Bytes(d) => d,
            Io::Messages(f) => f,
            Io::SharedBytes(h) => h,
            Io::SharedMessages(h) => h,
        }
    }

    /// [`as_dyn`](Self::as_dyn) for the calls that only look.
    #[inline]
    fn as_dyn_ref(&self) -> &dyn EndIo {
        match self {
            Io::Bytes(d) => d,
            Io::Messages(f) => f,
            Io::SharedBytes(h) => h,
            Io::SharedMessages(h) => h,
        }
    }

    /// Shared mode: this holder's state. `None` for an exclusive end.
    fn holder(&self) -> Option<&SharedState> {
        match self {
            Io::SharedBytes(h) => Some(&h.state),
            Io::SharedMessages(h) => Some(&h.state),
            Io::Bytes(_) | Io::Messages(_) => None,
        }
    }
}

impl std::fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeEnd")
            .field("side", &self.base.side.index())
            .field("mode", &self.base.mode)
            .field("read_mode", &self.base.read_mode)
            .field("max_message", &self.base.max_message)
            .field("disconnected", &self.base.disconnected)
            .field("shared", &self.io.holder().is_some())
            .finish_non_exhaustive()
    }
}

/// Maps "the peer is gone" outcomes of a read to end of stream.
fn is_eof(e: &Error) -> bool {
    matches!(e, Error::Closed | Error::PeerDied)
}

impl Base {
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
