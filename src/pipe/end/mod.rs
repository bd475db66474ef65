//! [`PipeEnd`]: one end of a pipe instance — a writer on the ring towards the peer, a
//! reader on the ring from it, and the per-end read state of message pipes.
//!
//! This module holds the end itself: attaching, settings and sharing. The
//! calls are spread over submodules: [`io`] (reading, writing, peek, transact),
//! [`close`] (half-close, disconnect, drop), [`split`] (a reader and a writer half),
//! [`wait`] (waiting on the rings and noticing a gone peer), [`fragments`] (message
//! framing on SPSC rings) and [`shared_io`] (shared mode on MPMC rings).

mod asynchronous;
mod batch;
mod close;
mod fragments;
#[cfg(not(loom))]
pub(crate) mod fuzzing;
mod io;
mod shared_io;
mod split;
#[cfg(feature = "tokio")]
mod tokio_io;
mod wait;

use std::time::Duration;

use culvert_ring::{mpmc, spsc};
use culvert_section::Section;
use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, ProcessIdentity, RecheckClock, WaitStrategy};

use super::layout::{
    StateView, A2B, B2A, END_ATTACHED, END_GONE, END_UNATTACHED, FRAG_HEADER, STATE_NAME,
};
use super::options::{PipeMode, ReadMode};
use super::server::ServerLink;
use super::shared::{self, HolderView};
use crate::{Error, Result};
pub use batch::MessageGrant;
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
    SharedMessages(mpmc::Producer),
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
    SharedMessages(mpmc::Consumer),
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
    /// 0: creating/server end; 1: second/client end.
    side: usize,
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
            .field("side", &self.side)
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
    /// Attaches end `side` of the instance in `section`.
    pub(crate) fn attach(
        section: Section,
        side: usize,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
    ) -> Result<PipeEnd> {
        Self::attach_holder(section, side, strategy, link, None)
    }

    /// Attaches end `side`; in shared mode as one more holder, taking over the
    /// reserved holder word `preferred` if it is still a reservation.
    pub(crate) fn attach_holder(
        section: Section,
        side: usize,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
        preferred: Option<usize>,
    ) -> Result<PipeEnd> {
        let state = StateView::new(section.object(STATE_NAME)?)?;
        let config = state.config()?;
        if config.shared {
            return Self::attach_shared(section, state, side, strategy, link, preferred);
        }
        let me = state.end(side);
        let my_id = ProcessIdentity::me().packed();
        match me.status.compare_exchange(
            END_UNATTACHED,
            END_ATTACHED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(END_ATTACHED) => {
                return Err(Error::Busy {
                    reason: crate::BusyReason::EndAttached,
                })
            }
            Err(_) => return Err(Error::Closed),
        }
        me.identity.store(my_id, Ordering::Release);
        me.holders.store(1, Ordering::Release);
        let fail = |e: Error| {
            state.end(side).status.store(END_GONE, Ordering::Release);
            e
        };
        let (tx_name, rx_name) = if side == 0 { (A2B, B2A) } else { (B2A, A2B) };
        let tx_region = section.object(tx_name).map_err(|e| fail(e.into()))?;
        let rx_region = section.object(rx_name).map_err(|e| fail(e.into()))?;
        let (tx, rx, frag_payload, record) = match config.mode {
            PipeMode::Byte => {
                let mut w = spsc::ByteWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = spsc::ByteReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                (Tx::Bytes(w), Rx::Bytes(r), 0, 0)
            }
            PipeMode::Message => {
                let mut w = spsc::MessageWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = spsc::MessageReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                let record = w.max_message();
                if record < FRAG_HEADER || (record == FRAG_HEADER && config.max_message > 0) {
                    return Err(fail(Error::Corrupted {
                        what: "pipe ring too small for a fragment".into(),
                    }));
                }
                (
                    Tx::Messages(w),
                    Rx::Messages(r),
                    record - FRAG_HEADER,
                    record,
                )
            }
        };
        Ok(PipeEnd {
            section,
            state,
            side,
            mode: config.mode,
            read_mode: match config.mode {
                PipeMode::Byte => ReadMode::Byte,
                PipeMode::Message => ReadMode::Message,
            },
            max_message: config.max_message,
            tx,
            rx,
            cursor: MsgCursor::default(),
            scratch: Vec::with_capacity(record),
            partial: Vec::new(),
            frag_payload,
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
            strategy,
            disconnected: false,
            write_shut: false,
            poisoned: false,
            clock: RecheckClock::new(),
            peer_lost: None,
            link,
            split_guard: None,
            shared: None,
            reserved: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Shared mode: claims a holder word, marks the end attached, attaches an MPMC
    /// producer/writer on the ring this end writes and a consumer/reader on the other.
    /// A named pipe's `link` is kept, and from then on frees the server's slot only
    /// once both ends are gone.
    fn attach_shared(
        section: Section,
        state: StateView,
        side: usize,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
        preferred: Option<usize>,
    ) -> Result<PipeEnd> {
        let config = state.config()?;
        let holders = HolderView::open(&section)?;
        let my_id = ProcessIdentity::me().packed();
        let index = shared::attach_holder(&state, &holders, side, my_id, preferred)?;
        state.end(side).identity.store(my_id, Ordering::Release);
        let fail = |e: Error| {
            holders.release(side, index, my_id);
            state.end(side).holders.fetch_sub(1, Ordering::AcqRel);
            e
        };
        let (tx_name, rx_name) = if side == 0 { (A2B, B2A) } else { (B2A, A2B) };
        let tx_region = section.object(tx_name).map_err(|e| fail(e.into()))?;
        let rx_region = section.object(rx_name).map_err(|e| fail(e.into()))?;
        let (tx, rx, rest_len) = match config.mode {
            PipeMode::Byte => {
                let mut w = mpmc::ByteWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = mpmc::ByteReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                (Tx::SharedBytes(w), Rx::SharedBytes(r), 0)
            }
            PipeMode::Message => {
                let mut w = mpmc::Producer::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = mpmc::Consumer::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                // Each ring slot must hold a whole message of `max_message` bytes.
                if w.max_message() < config.max_message || r.max_message() < config.max_message {
                    return Err(fail(Error::Corrupted {
                        what: "shared pipe ring slots smaller than max_message".into(),
                    }));
                }
                (
                    Tx::SharedMessages(w),
                    Rx::SharedMessages(r),
                    config.max_message,
                )
            }
        };
        let link = link.map(|mut l| {
            l.set_shared_views(state.clone(), holders.clone());
            l
        });
        Ok(PipeEnd {
            section,
            state,
            side,
            mode: config.mode,
            read_mode: match config.mode {
                PipeMode::Byte => ReadMode::Byte,
                PipeMode::Message => ReadMode::Message,
            },
            max_message: config.max_message,
            tx,
            rx,
            cursor: MsgCursor::default(),
            scratch: Vec::new(),
            partial: Vec::new(),
            frag_payload: 0,
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
            strategy,
            disconnected: false,
            write_shut: false,
            poisoned: false,
            clock: RecheckClock::new(),
            peer_lost: None,
            link,
            split_guard: None,
            shared: Some(SharedState::new(holders, index, my_id, rest_len)),
            reserved: std::sync::Mutex::new(Vec::new()),
        })
    }

    // ---- settings ------------------------------------------------------------------

    /// The pipe's mode, fixed at creation.
    pub fn mode(&self) -> PipeMode {
        self.mode
    }

    /// How `Read::read` reads (default: the pipe's mode).
    pub fn read_mode(&self) -> ReadMode {
        self.read_mode
    }

    /// Sets how `Read::read` reads: [`ReadMode::Byte`] on a message pipe reads across
    /// message boundaries; [`ReadMode::Message`] on a byte pipe is an
    /// `InvalidArgument` error.
    pub fn set_read_mode(&mut self, mode: ReadMode) -> Result<()> {
        if mode == ReadMode::Message && self.mode == PipeMode::Byte {
            return Err(Error::InvalidArgument {
                what: "message read mode on a byte pipe".into(),
            });
        }
        self.read_mode = mode;
        Ok(())
    }

    /// Largest message this pipe carries.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// In non-blocking mode, reads and writes that would wait fail with `WouldBlock`.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.nonblocking = nonblocking;
    }

    /// Whether the end is in non-blocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// How long a read waits (`None`: for ever). A read that times out fails with
    /// `Timeout` (`io::ErrorKind::TimedOut`).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// How long a write waits for room (`None`: for ever). A message longer than the
    /// room in the ring is finished once started: the timeout applies to its start.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write_timeout = timeout;
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// How this end's blocking calls wait (default `Adaptive`).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
        self.tx.set_wait_strategy(strategy);
        self.rx.set_wait_strategy(strategy);
    }

    /// The wait strategy.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The process id of the peer end while it is connected: `None` before it
    /// attached, and after either end disconnected or closed (a hint: a hostile peer
    /// could write anything here).
    pub fn peer_pid(&self) -> Option<u32> {
        let peer = self.state.end(self.side ^ 1);
        if self.disconnected || peer.status.load(Ordering::Acquire) != END_ATTACHED {
            return None;
        }
        let pid = ProcessIdentity::from_packed(peer.identity.load(Ordering::Acquire)).pid;
        (pid != 0).then_some(pid)
    }

    /// How the peer end's attach went: `None` while it has not attached, or has
    /// claimed its end but not yet recorded its identity; `Some(true)` once it is
    /// attached with its identity recorded; `Some(false)` once it closed or gave up.
    pub(crate) fn peer_attach_outcome(&self) -> Option<bool> {
        let peer = self.state.end(self.side ^ 1);
        match peer.status.load(Ordering::Acquire) {
            END_UNATTACHED => None,
            END_ATTACHED => (peer.identity.load(Ordering::Acquire) != 0).then_some(true),
            _ => Some(false),
        }
    }

    /// Whether the peer end has attached.
    pub fn is_peer_attached(&self) -> bool {
        self.state.end(self.side ^ 1).status.load(Ordering::Acquire) != END_UNATTACHED
    }

    /// Records `pid` as the process expected to attach the peer end (e.g. the child a
    /// [`PendingEnd`](super::PendingEnd) was passed to), so that this end notices if it
    /// dies before attaching. No effect once the peer attached.
    ///
    /// # Errors
    /// `Io` with kind `NotFound` if no process `pid` runs.
    pub fn expect_peer(&self, pid: u32) -> Result<()> {
        let id = ProcessIdentity::of(pid)?;
        self.state
            .end(self.side ^ 1)
            .expected
            .store(id.packed(), Ordering::Release);
        Ok(())
    }

    /// The section holding this pipe instance.
    pub fn section(&self) -> &Section {
        &self.section
    }

    // ---- deadlines and peer checks ---------------------------------------------------

    fn read_deadline(&self) -> Deadline {
        if self.nonblocking {
            Deadline::now()
        } else {
            Deadline::from_timeout(self.read_timeout)
        }
    }

    fn write_deadline(&self) -> Deadline {
        if self.nonblocking {
            Deadline::now()
        } else {
            Deadline::from_timeout(self.write_timeout)
        }
    }

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

    /// Another holder of this end in this process (shared mode only): its own ring
    /// attachments and holder entry, the same settings. The end counts as gone when
    /// the last of its holders closed or died. `InvalidArgument` on a pipe that is not
    /// shared.
    pub fn try_clone(&self) -> Result<PipeEnd> {
        if self.shared.is_none() {
            return Err(Error::InvalidArgument {
                what: "try_clone needs a shared pipe (PipeOptions::shared)".into(),
            });
        }
        self.check_usable()?;
        let dup = self.section.as_fd().try_clone_to_owned()?;
        let section = Section::from_fd_with(
            dup,
            "shared pipe",
            &culvert_section::SectionOptions::default()
                .kind(culvert_section::SectionKind::Pipe)
                .expect_kind(culvert_section::SectionKind::Pipe),
        )?;
        let link = self.link.as_ref().map(ServerLink::for_another_holder);
        let mut end = Self::attach_holder(section, self.side, self.strategy, link, None)?;
        end.read_mode = self.read_mode;
        end.nonblocking = self.nonblocking;
        end.read_timeout = self.read_timeout;
        end.write_timeout = self.write_timeout;
        Ok(end)
    }

    /// Shares this end with a child process (shared mode only): reserves a holder
    /// entry for it and arranges for `cmd`'s child to inherit the pipe section, its
    /// descriptor in `var`, the side in `<var>_SIDE` and the entry in `<var>_HOLDER`.
    /// The child attaches with [`PipeEnd::from_inherited_env`]`(var)` as another
    /// holder of this end. Until then the reservation counts as a holder naming this
    /// process; call [`PipeEnd::expect_holder`] with the child's pid after spawning
    /// (or use [`spawn_child`](Self::spawn_child), which does all three steps) so a
    /// child that dies before attaching is discounted.
    ///
    /// # Errors
    /// `InvalidArgument` for an end that is not shared; `Busy` when the end has no
    /// free holder entry; `Io` if the descriptor could not be prepared.
    pub fn share_with_child(&self, cmd: &mut std::process::Command, var: &str) -> Result<()> {
        let Some(sh) = &self.shared else {
            return Err(Error::InvalidArgument {
                what: "sharing an attached end needs a shared pipe (PipeOptions::shared)".into(),
            });
        };
        let r = shared::reserve_for_child(&self.section, &sh.holders, self.side, cmd, var)?;
        self.reservations()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
        Ok(())
    }

    /// After [`share_with_child`](Self::share_with_child) and the spawn: the oldest
    /// reservation made by this end that names no child yet now names `pid`.
    ///
    /// Not shared: as [`expect_peer`](Self::expect_peer). With no reservation waiting
    /// for a pid, nothing happens.
    ///
    /// # Errors
    /// `Io` with kind `NotFound` if no process `pid` runs.
    pub fn expect_holder(&self, pid: u32) -> Result<()> {
        let Some(sh) = &self.shared else {
            return self.expect_peer(pid);
        };
        let r = {
            let mut list = self
                .reservations()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if list.is_empty() {
                return Ok(());
            }
            list.remove(0)
        };
        shared::convert_reservation(&sh.holders, self.side, r, pid)
    }

    /// Shares this end with the child `cmd` spawns (shared mode only):
    /// [`share_with_child`](Self::share_with_child) with [`PIPE_FD_ENV`](super::PIPE_FD_ENV),
    /// spawn, [`expect_holder`](Self::expect_holder). Drop `cmd` after this call to
    /// close this process's copy of the descriptor.
    ///
    /// # Errors
    /// As [`share_with_child`](Self::share_with_child); `Io` if the spawn failed.
    pub fn spawn_child(&self, cmd: &mut std::process::Command) -> Result<std::process::Child> {
        self.share_with_child(cmd, super::PIPE_FD_ENV)?;
        match cmd.spawn() {
            Ok(child) => {
                self.expect_holder(child.id())?;
                Ok(child)
            }
            Err(e) => {
                if let (Some(sh), Some(r)) = (
                    &self.shared,
                    self.reservations()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop(),
                ) {
                    sh.holders.release(self.side, r.index, r.word);
                }
                Err(e.into())
            }
        }
    }

    /// Reservations made by [`share_with_child`](Self::share_with_child) not yet given
    /// a child's pid.
    fn reservations(&self) -> &std::sync::Mutex<Vec<shared::Reservation>> {
        &self.reserved
    }

    fn poison_on(&mut self, e: Error) -> Error {
        if matches!(e, Error::Corrupted { .. }) {
            self.poisoned = true;
        }
        e
    }
}
