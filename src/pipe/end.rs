//! [`PipeEnd`]: one end of a pipe instance — a writer on the ring towards the peer, a
//! reader on the ring from it, and the per-end read state of message pipes.

use std::io;
use std::time::{Duration, Instant};

use culvert_ring::{mpmc, spsc};
use culvert_section::Section;
use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, ProcessIdentity, WaitStrategy, LIVENESS_RECHECK_INTERVAL};

use super::layout::{
    StateView, A2B, B2A, END_ATTACHED, END_GONE, END_UNATTACHED, FRAG_FIRST, FRAG_HEADER,
    FRAG_LAST, STATE_NAME,
};
use super::options::{MessageRead, Peek, PipeMode, ReadMode};
use super::server::ServerLink;
use super::shared::{self, HolderView, Holders};
use crate::{Error, Result};

/// Writes between two clock reads for the periodic peer-liveness check of writes.
const WRITES_PER_LIVENESS_CLOCK: u32 = 32;

/// The ring this end writes.
enum Tx {
    Bytes(spsc::ByteWriter),
    Messages(spsc::MessageWriter),
    /// Shared mode, byte pipe.
    SharedBytes(mpmc::ByteWriter),
    /// Shared mode, message pipe: one ring message per pipe message.
    SharedMessages(mpmc::Producer),
}

/// The ring this end reads.
enum Rx {
    Bytes(spsc::ByteReader),
    Messages(spsc::MessageReader),
    /// Shared mode, byte pipe.
    SharedBytes(mpmc::ByteReader),
    /// Shared mode, message pipe.
    SharedMessages(mpmc::Consumer),
}

/// Shared mode: this end's holder word, and the rest of a message taken out of the
/// ring but not yet read.
struct SharedState {
    holders: HolderView,
    /// Our holder word: index and value.
    index: usize,
    word: u64,
    /// Message pipes: the message taken whole from the ring whose rest a short read
    /// left. Allocated once at attach (`max_message` bytes). Invariant:
    /// `start <= end <= rest.len()`; `rest[start..end]` is unread.
    rest: Box<[u8]>,
    start: usize,
    end: usize,
}

impl SharedState {
    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Moves buffered bytes into `buf`; returns how many.
    fn take(&mut self, buf: &mut [u8]) -> usize {
        let k = self.buffered().min(buf.len());
        buf[..k].copy_from_slice(&self.rest[self.start..self.start + k]);
        self.start += k;
        k
    }
}

/// Copies a message taken from the ring: what fits into `buf`, the rest into `rest`
/// (which holds `max_message` bytes). Returns (bytes in `buf`, bytes in `rest`).
fn split_message(msg: &[u8], buf: &mut [u8], rest: &mut [u8]) -> (usize, usize) {
    let k = msg.len().min(buf.len());
    buf[..k].copy_from_slice(&msg[..k]);
    let r = (msg.len() - k).min(rest.len());
    rest[..r].copy_from_slice(&msg[k..k + r]);
    (k, r)
}

/// Where the reader is inside a message (message pipes).
#[derive(Debug, Clone, Copy, Default)]
struct MsgCursor {
    /// A message was started (its FIRST fragment seen) and not finished.
    in_message: bool,
    /// Its total length (from the fragment headers).
    total: usize,
    /// Payload bytes of it handed out so far.
    consumed: usize,
    /// Payload bytes of the fragment at the ring's head already handed out (the
    /// fragment stays in the ring until all of it is).
    frag_off: usize,
}

/// One parsed fragment at the head of the ring.
#[derive(Debug, Clone, Copy)]
struct Fragment {
    first: bool,
    last: bool,
    total: usize,
    payload: usize,
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
/// [`LIVENESS_RECHECK_INTERVAL`].
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
    /// Largest fragment payload this end writes.
    frag_payload: usize,
    nonblocking: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    strategy: WaitStrategy,
    /// Set by `disconnect`.
    disconnected: bool,
    /// Set after a corruption: every later call fails.
    poisoned: bool,
    /// Writes since the last clock read (periodic liveness check of the reader).
    writes_since_clock: u32,
    last_liveness: Instant,
    /// Named pipes: the server's instance slot this connection holds.
    link: Option<ServerLink>,
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
                    what: "this pipe end is already attached".into(),
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
            frag_payload,
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
            strategy,
            disconnected: false,
            poisoned: false,
            writes_since_clock: 0,
            last_liveness: Instant::now(),
            link,
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
        let index = holders.claim(side, my_id, preferred)?;
        let me = state.end(side);
        // The word is claimed first and the status checked after, so whoever declares
        // the end gone either saw our word or made us see END_GONE here.
        let status = match me.status.compare_exchange(
            END_UNATTACHED,
            END_ATTACHED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => END_ATTACHED,
            Err(now) => now,
        };
        if status != END_ATTACHED {
            holders.release(side, index, my_id);
            return Err(Error::Closed);
        }
        me.identity.store(my_id, Ordering::Release);
        me.holders.fetch_add(1, Ordering::AcqRel);
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
            frag_payload: 0,
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
            strategy,
            disconnected: false,
            poisoned: false,
            writes_since_clock: 0,
            last_liveness: Instant::now(),
            link,
            shared: Some(SharedState {
                holders,
                index,
                word: my_id,
                rest: vec![0u8; rest_len].into_boxed_slice(),
                start: 0,
                end: 0,
            }),
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
        match &mut self.tx {
            Tx::Bytes(w) => w.set_wait_strategy(strategy),
            Tx::Messages(w) => w.set_wait_strategy(strategy),
            Tx::SharedBytes(w) => w.set_wait_strategy(strategy),
            Tx::SharedMessages(w) => w.set_wait_strategy(strategy),
        }
        match &mut self.rx {
            Rx::Bytes(r) => r.set_wait_strategy(strategy),
            Rx::Messages(r) => r.set_wait_strategy(strategy),
            Rx::SharedBytes(r) => r.set_wait_strategy(strategy),
            Rx::SharedMessages(r) => r.set_wait_strategy(strategy),
        }
    }

    /// The wait strategy.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The process id of the peer end, once one attached (a hint: a hostile peer
    /// could write anything here).
    pub fn peer_pid(&self) -> Option<u32> {
        let word = self
            .state
            .end(self.side ^ 1)
            .identity
            .load(Ordering::Acquire);
        let pid = ProcessIdentity::from_packed(word).pid;
        (pid != 0).then_some(pid)
    }

    /// Whether the peer end has attached.
    pub fn is_peer_attached(&self) -> bool {
        self.state.end(self.side ^ 1).status.load(Ordering::Acquire) != END_UNATTACHED
    }

    /// Records `pid` as the process expected to attach the peer end (e.g. the child a
    /// [`PendingEnd`](super::PendingEnd) was passed to), so that this end notices if it
    /// dies before attaching. No effect once the peer attached.
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

    /// The error for a wait that ended at its deadline.
    fn timeout_error(&self) -> Error {
        if self.nonblocking {
            Error::WouldBlock
        } else {
            Error::Timeout
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

    /// Fails a write with `PeerDied` when the reader's process died, checked at most
    /// every [`LIVENESS_RECHECK_INTERVAL`] (a ring with room accepts writes without
    /// asking whether anyone will read them).
    fn periodic_peer_check(&mut self) -> Result<()> {
        self.writes_since_clock += 1;
        if self.writes_since_clock < WRITES_PER_LIVENESS_CLOCK {
            return Ok(());
        }
        self.writes_since_clock = 0;
        let now = Instant::now();
        if now.duration_since(self.last_liveness) < LIVENESS_RECHECK_INTERVAL {
            return Ok(());
        }
        self.last_liveness = now;
        if self.shared.is_some() {
            if self.shared_peer_gone() {
                self.close_shared_rings();
                return Err(Error::Closed);
            }
        } else if self.state.peer_gone(self.side) {
            return Err(Error::PeerDied);
        }
        Ok(())
    }

    // ---- shared mode -------------------------------------------------------------------

    /// Shared mode: whether every holder of the other end is gone.
    fn shared_peer_gone(&self) -> bool {
        match &self.shared {
            Some(sh) => shared::end_gone(&self.state, &sh.holders, self.side ^ 1),
            None => false,
        }
    }

    /// Shared mode: closes both rings for everyone (the other end is gone, or we were
    /// its last holder) and frees the slots of dead holders, so that what was committed
    /// drains.
    fn close_shared_rings(&mut self) {
        match &self.tx {
            Tx::SharedBytes(w) => w.close(),
            Tx::SharedMessages(w) => w.close(),
            _ => {}
        }
        match &self.rx {
            Rx::SharedBytes(r) => {
                r.close();
                let _ = r.reclaim_dead();
            }
            Rx::SharedMessages(r) => {
                r.close();
                let _ = r.reclaim_dead();
            }
            _ => {}
        }
    }

    /// Shared mode: runs a ring operation until `deadline`, in naps of
    /// [`LIVENESS_RECHECK_INTERVAL`]; after a nap the other end's holders are checked,
    /// and once all are gone the rings are closed and the operation runs once more
    /// without waiting (a read drains what was committed; then `Closed`).
    fn shared_op<T>(
        &mut self,
        deadline: Deadline,
        mut op: impl FnMut(&mut Self, Deadline) -> culvert_ring::Result<T>,
    ) -> Result<T> {
        let mut gone = false;
        loop {
            let d = if gone {
                Deadline::now()
            } else {
                deadline.min(Deadline::after(LIVENESS_RECHECK_INTERVAL))
            };
            match op(self, d) {
                Err(culvert_ring::Error::Timeout | culvert_ring::Error::WouldBlock) if gone => {
                    return Err(Error::Closed)
                }
                Err(culvert_ring::Error::Timeout) if !deadline.has_passed() => {
                    if self.shared_peer_gone() {
                        self.close_shared_rings();
                        gone = true;
                    }
                }
                Err(culvert_ring::Error::WouldBlock) if self.nonblocking => {
                    // Non-blocking: check the other end at most once per interval.
                    let now = Instant::now();
                    if now.duration_since(self.last_liveness) >= LIVENESS_RECHECK_INTERVAL {
                        self.last_liveness = now;
                        if self.shared_peer_gone() {
                            self.close_shared_rings();
                            gone = true;
                            continue;
                        }
                    }
                    return Err(Error::WouldBlock);
                }
                other => return other.map_err(Error::from),
            }
        }
    }

    /// Shared message pipes: reads (part of) the next message into `buf`.
    fn shared_read_message(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<MessageRead> {
        if let Some(sh) = self.shared.as_mut() {
            if sh.buffered() > 0 {
                let k = sh.take(buf);
                return Ok(MessageRead {
                    len: k,
                    more: sh.buffered() > 0,
                });
            }
        }
        let nonblocking = self.nonblocking;
        let (k, r) = self.shared_op(deadline, |me, d| {
            let (Rx::SharedMessages(c), Some(sh)) = (&mut me.rx, me.shared.as_mut()) else {
                return Err(culvert_ring::Error::Closed);
            };
            let rest = &mut sh.rest[..];
            let f = |msg: &[u8]| split_message(msg, buf, rest);
            if nonblocking {
                c.try_recv_with(f)
            } else {
                c.recv_with(f, d)
            }
        })?;
        let sh = self.shared.as_mut().ok_or(Error::Closed)?;
        sh.start = 0;
        sh.end = r;
        Ok(MessageRead {
            len: k,
            more: r > 0,
        })
    }

    /// Shared message pipes, byte read mode: what is buffered and the messages
    /// committed now, across boundaries (waiting only for the first).
    fn shared_read_across(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        let mut pos = 0;
        while pos < buf.len() {
            let m = if pos == 0 {
                match self.shared_read_message(buf, deadline) {
                    Ok(m) => m,
                    Err(e) if is_eof(&e) => return Ok(0),
                    Err(e) => return Err(e),
                }
            } else {
                let (Rx::SharedMessages(c), Some(sh)) = (&mut self.rx, self.shared.as_mut()) else {
                    break;
                };
                let rest = &mut sh.rest[..];
                let dst = &mut buf[pos..];
                match c.try_recv_with(|msg| split_message(msg, dst, rest)) {
                    Ok((k, r)) => {
                        sh.start = 0;
                        sh.end = r;
                        MessageRead {
                            len: k,
                            more: r > 0,
                        }
                    }
                    Err(culvert_ring::Error::Corrupted { what }) => {
                        return Err(Error::Corrupted { what: what.into() })
                    }
                    Err(_) => break,
                }
            };
            pos += m.len;
            if m.more {
                break;
            }
        }
        Ok(pos)
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

    /// Runs a blocking ring operation until `deadline`. While the peer has not
    /// attached yet (the rings know no owner to watch), the wait is cut into naps of
    /// [`LIVENESS_RECHECK_INTERVAL`] and the expected peer is checked in between.
    fn peer_wait<T>(
        state: &StateView,
        side: usize,
        deadline: Deadline,
        mut op: impl FnMut(Deadline) -> culvert_ring::Result<T>,
    ) -> Result<T> {
        loop {
            let peer = state.end(side ^ 1).status.load(Ordering::Acquire);
            if peer == END_ATTACHED {
                return op(deadline).map_err(Error::from);
            }
            if peer != END_UNATTACHED {
                // Given up before attaching: nothing will ever come.
                return match op(Deadline::now()) {
                    Err(culvert_ring::Error::Timeout | culvert_ring::Error::WouldBlock) => {
                        Err(Error::Closed)
                    }
                    other => other.map_err(Error::from),
                };
            }
            let nap = deadline.min(Deadline::after(LIVENESS_RECHECK_INTERVAL));
            match op(nap) {
                Err(culvert_ring::Error::Timeout) if !deadline.has_passed() => {
                    if state.peer_gone(side) {
                        return Err(Error::PeerDied);
                    }
                }
                other => return other.map_err(Error::from),
            }
        }
    }

    fn poison_on(&mut self, e: Error) -> Error {
        if matches!(e, Error::Corrupted { .. }) {
            self.poisoned = true;
        }
        e
    }

    // ---- writing ---------------------------------------------------------------------

    /// Writes one message (message pipes) or all of `buf` (byte pipes).
    ///
    /// Message pipes: `MessageTooLarge` above [`max_message`](Self::max_message),
    /// before anything is written; a message larger than the ring is fragmented and
    /// reassembled by the reader. Byte pipes: in non-blocking mode, writes what fits
    /// (at least one byte) and returns how much. `Closed`/`PeerDied` when the reader
    /// is gone.
    pub fn write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.check_usable()?;
        self.periodic_peer_check()?;
        let deadline = self.write_deadline();
        if self.shared.is_some() {
            return self
                .shared_write(msg, deadline)
                .map_err(|e| self.poison_on(e));
        }
        let r = match self.mode {
            PipeMode::Byte => self.write_bytes(msg, deadline),
            PipeMode::Message => self.write_fragments(msg, deadline).map(|()| msg.len()),
        };
        r.map_err(|e| match e {
            Error::Timeout if self.nonblocking => Error::WouldBlock,
            e => self.poison_on(e),
        })
    }

    /// Shared mode: a message is one ring message; bytes go in records of up to the
    /// atomic write size (a blocking write writes all of `buf`).
    fn shared_write(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        let nonblocking = self.nonblocking;
        match self.mode {
            PipeMode::Message => {
                if buf.len() > self.max_message {
                    return Err(Error::MessageTooLarge {
                        len: buf.len(),
                        max: self.max_message,
                    });
                }
                self.shared_op(deadline, |me, d| match &mut me.tx {
                    Tx::SharedMessages(p) if nonblocking => p.try_send(buf),
                    Tx::SharedMessages(p) => p.send(buf, d),
                    _ => Err(culvert_ring::Error::Closed),
                })?;
                Ok(buf.len())
            }
            PipeMode::Byte => {
                if buf.is_empty() {
                    return Ok(0);
                }
                let mut done = 0;
                while done < buf.len() {
                    let r = self.shared_op(deadline, |me, d| match &mut me.tx {
                        Tx::SharedBytes(w) if nonblocking => w.try_write(&buf[done..]),
                        Tx::SharedBytes(w) => w.write(&buf[done..], d),
                        _ => Err(culvert_ring::Error::Closed),
                    });
                    match r {
                        Ok(n) => done += n,
                        Err(_) if done > 0 => return Ok(done),
                        Err(e) => return Err(e),
                    }
                    if nonblocking {
                        break;
                    }
                }
                Ok(done)
            }
        }
    }

    fn write_bytes(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        let Tx::Bytes(w) = &mut self.tx else {
            return Err(Error::InvalidArgument {
                what: "byte write on a message ring".into(),
            });
        };
        if buf.is_empty() {
            return Ok(0);
        }
        if self.nonblocking {
            return w.try_write(buf).map_err(Error::from);
        }
        let mut done = 0;
        while done < buf.len() {
            let r = Self::peer_wait(&self.state, self.side, deadline, |d| {
                w.write(&buf[done..], d)
            });
            match r {
                Ok(n) => done += n,
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn write_fragments(&mut self, msg: &[u8], deadline: Deadline) -> Result<()> {
        if msg.len() > self.max_message {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max_message,
            });
        }
        let Tx::Messages(w) = &mut self.tx else {
            return Err(Error::InvalidArgument {
                what: "message write on a byte ring".into(),
            });
        };
        let total = msg.len() as u32;
        let mut off = 0usize;
        let mut first = true;
        loop {
            let n = (msg.len() - off).min(self.frag_payload);
            let last = off + n == msg.len();
            let flags = if first { FRAG_FIRST } else { 0 } | if last { FRAG_LAST } else { 0 };
            let mut header = [0u8; FRAG_HEADER];
            header[..4].copy_from_slice(&flags.to_le_bytes());
            header[4..].copy_from_slice(&total.to_le_bytes());
            let payload = &msg[off..off + n];
            match w.reserve(FRAG_HEADER + n) {
                Ok(mut grant) => {
                    let dst = grant.as_mut_slice();
                    dst[..FRAG_HEADER].copy_from_slice(&header);
                    dst[FRAG_HEADER..].copy_from_slice(payload);
                    grant.commit(FRAG_HEADER + n);
                }
                Err(culvert_ring::Error::WouldBlock) => {
                    if first && self.nonblocking {
                        return Err(Error::WouldBlock);
                    }
                    // Once a message is started it is finished (the reader may be
                    // holding part of it): later fragments wait without a deadline,
                    // ended only by the reader closing or dying.
                    let d = if first { deadline } else { Deadline::never() };
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&header);
                    self.scratch.extend_from_slice(payload);
                    let scratch = &self.scratch;
                    Self::peer_wait(&self.state, self.side, d, |d| w.write(scratch, d))?;
                }
                Err(e) => return Err(e.into()),
            }
            off += n;
            first = false;
            if last {
                return Ok(());
            }
        }
    }

    // ---- reading ---------------------------------------------------------------------

    /// Parses the fragment at the ring's head against the cursor (`None`: none
    /// committed). Waits until `deadline` if `wait`.
    fn head_fragment(&mut self, deadline: Option<Deadline>) -> Result<Fragment> {
        let Rx::Messages(r) = &mut self.rx else {
            return Err(Error::InvalidArgument {
                what: "message read on a byte ring".into(),
            });
        };
        match deadline {
            Some(d) => {
                Self::peer_wait(&self.state, self.side, d, |d| r.wait_peek_len(d))?;
            }
            None => {
                r.peek_len()?;
            }
        }
        let grant = r.read_grant()?;
        let bytes = grant.as_slice();
        let bad = |what: &str| Error::Corrupted {
            what: format!("pipe fragment: {what}"),
        };
        if bytes.len() < FRAG_HEADER {
            return Err(bad("shorter than its header"));
        }
        let flags = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let total = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let payload = bytes.len() - FRAG_HEADER;
        let f = Fragment {
            first: flags & FRAG_FIRST != 0,
            last: flags & FRAG_LAST != 0,
            total,
            payload,
        };
        let c = &self.cursor;
        let ok = flags & !(FRAG_FIRST | FRAG_LAST) == 0
            && total <= self.max_message
            && if c.in_message {
                // frag_off > 0: the head is the fragment we are part-way through (it
                // may be the FIRST one); otherwise a continuation.
                (c.frag_off > 0 || !f.first)
                    && total == c.total
                    && c.consumed - c.frag_off + payload <= total
            } else {
                f.first && payload <= total
            }
            && (!f.last || {
                let before = if c.in_message {
                    c.consumed - c.frag_off
                } else {
                    0
                };
                before + payload == total
            })
            && c.frag_off <= payload;
        if !ok {
            return Err(bad("out of sequence or lengths inconsistent"));
        }
        Ok(f)
    }

    /// Copies from the head fragment into `buf`; returns (bytes copied, message done).
    fn take_from_fragment(&mut self, f: Fragment, buf: &mut [u8]) -> Result<(usize, bool)> {
        let Rx::Messages(r) = &mut self.rx else {
            return Err(Error::InvalidArgument {
                what: "message read on a byte ring".into(),
            });
        };
        let c = &mut self.cursor;
        if !c.in_message {
            *c = MsgCursor {
                in_message: true,
                total: f.total,
                consumed: 0,
                frag_off: 0,
            };
        }
        let grant = r.read_grant()?;
        let bytes = grant.as_slice();
        if bytes.len() != FRAG_HEADER + f.payload {
            return Err(Error::Corrupted {
                what: "pipe fragment changed under the reader".into(),
            });
        }
        let k = buf.len().min(f.payload - c.frag_off);
        let src = FRAG_HEADER + c.frag_off;
        buf[..k].copy_from_slice(&bytes[src..src + k]);
        c.frag_off += k;
        c.consumed += k;
        if c.frag_off == f.payload {
            grant.release();
            c.frag_off = 0;
            if f.last {
                *c = MsgCursor::default();
                return Ok((k, true));
            }
        }
        Ok((k, false))
    }

    /// Reads (part of) the next message into `buf`.
    ///
    /// Returns the bytes written and whether more of the same message remains
    /// (`more`: the message was longer than `buf`; the rest comes with the next call,
    /// nothing is lost). A zero-length message reads as `len == 0, more == false`.
    /// At end of stream fails with `Closed` (the peer disconnected) or `PeerDied`; a
    /// timeout gives `Timeout` (or `WouldBlock` in non-blocking mode) — unless some
    /// bytes of the message were read, which are then returned with `more`.
    ///
    /// On a byte pipe, reads what is available (`more` is always `false`).
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.check_usable()?;
        if self.mode == PipeMode::Byte {
            let n = self.read_bytes(buf)?;
            if n == 0 && !buf.is_empty() {
                return Err(Error::Closed);
            }
            return Ok(MessageRead {
                len: n,
                more: false,
            });
        }
        let deadline = self.read_deadline();
        if self.shared.is_some() {
            return match self.shared_read_message(buf, deadline) {
                Err(Error::Timeout) => Err(self.timeout_error()),
                Err(e) => Err(self.poison_on(e)),
                ok => ok,
            };
        }
        let mut pos = 0;
        loop {
            let f = match self.head_fragment(Some(deadline)) {
                Ok(f) => f,
                Err(e) if pos > 0 && !matches!(e, Error::Corrupted { .. }) => {
                    return Ok(MessageRead {
                        len: pos,
                        more: true,
                    })
                }
                Err(Error::Timeout) => return Err(self.timeout_error()),
                Err(e) => return Err(self.poison_on(e)),
            };
            let (k, done) = self
                .take_from_fragment(f, &mut buf[pos..])
                .map_err(|e| self.poison_on(e))?;
            pos += k;
            if done {
                return Ok(MessageRead {
                    len: pos,
                    more: false,
                });
            }
            if pos == buf.len() {
                return Ok(MessageRead {
                    len: pos,
                    more: true,
                });
            }
        }
    }

    /// Byte-mode read: at least one byte (waiting per the settings), or 0 at end of
    /// stream. On a message pipe, reads across message boundaries.
    fn read_bytes(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.read_deadline();
        if self.shared.is_some() {
            let nonblocking = self.nonblocking;
            let r = match self.mode {
                PipeMode::Message => self.shared_read_across(buf, deadline),
                PipeMode::Byte => self.shared_op(deadline, |me, d| match &mut me.rx {
                    Rx::SharedBytes(r) if nonblocking => r.try_read(buf),
                    Rx::SharedBytes(r) => r.read(buf, d),
                    _ => Err(culvert_ring::Error::Closed),
                }),
            };
            return match r {
                Ok(n) => Ok(n),
                Err(e) if is_eof(&e) => Ok(0),
                Err(Error::Timeout) => Err(self.timeout_error()),
                Err(e) => Err(self.poison_on(e)),
            };
        }
        match &mut self.rx {
            Rx::Bytes(r) => {
                let r = if self.nonblocking {
                    r.try_read(buf).map_err(Error::from)
                } else {
                    Self::peer_wait(&self.state, self.side, deadline, |d| r.read(buf, d))
                };
                match r {
                    Ok(n) => Ok(n),
                    Err(e) if is_eof(&e) => Ok(0),
                    Err(Error::Timeout) => Err(self.timeout_error()),
                    Err(e) => Err(self.poison_on(e)),
                }
            }
            Rx::SharedBytes(_) | Rx::SharedMessages(_) => Err(Error::Closed),
            Rx::Messages(_) => {
                let mut pos = 0;
                while pos < buf.len() {
                    let wait = if pos == 0 { Some(deadline) } else { None };
                    let f = match self.head_fragment(wait) {
                        Ok(f) => f,
                        Err(_) if pos > 0 => break,
                        Err(e) if is_eof(&e) => return Ok(0),
                        Err(Error::Timeout) => return Err(self.timeout_error()),
                        Err(e) => return Err(self.poison_on(e)),
                    };
                    let (k, _) = self
                        .take_from_fragment(f, &mut buf[pos..])
                        .map_err(|e| self.poison_on(e))?;
                    pos += k;
                }
                Ok(pos)
            }
        }
    }

    /// Looks at what is waiting without consuming it. Never waits.
    pub fn peek(&mut self) -> Result<Peek> {
        self.check_usable()?;
        if self.shared.is_some() {
            return self.shared_peek();
        }
        match &mut self.rx {
            Rx::SharedBytes(_) | Rx::SharedMessages(_) => Err(Error::Closed),
            Rx::Bytes(r) => Ok(Peek {
                bytes_available: r.bytes_available()?,
                next_message_len: None,
            }),
            Rx::Messages(_) => match self.head_fragment(None) {
                Ok(f) => {
                    let c = &self.cursor;
                    Ok(if c.in_message {
                        Peek {
                            bytes_available: f.payload - c.frag_off,
                            next_message_len: Some(c.total - c.consumed),
                        }
                    } else {
                        Peek {
                            bytes_available: f.payload,
                            next_message_len: Some(f.total),
                        }
                    })
                }
                Err(Error::WouldBlock | Error::Closed | Error::PeerDied) => {
                    let c = &self.cursor;
                    Ok(Peek {
                        bytes_available: 0,
                        next_message_len: c.in_message.then_some(c.total - c.consumed),
                    })
                }
                Err(e) => Err(self.poison_on(e)),
            },
        }
    }

    /// Shared mode `peek`: an MPMC ring cannot show a message without taking it, so a
    /// peek of a message pipe takes the next message out of the ring into this end's
    /// buffer (it is this end's to read from then on; other holders will not get it).
    fn shared_peek(&mut self) -> Result<Peek> {
        let Some(sh) = self.shared.as_mut() else {
            return Err(Error::Closed);
        };
        match &mut self.rx {
            Rx::SharedBytes(r) => Ok(Peek {
                bytes_available: r.buffered(),
                next_message_len: None,
            }),
            Rx::SharedMessages(c) => {
                if sh.buffered() == 0 {
                    let rest = &mut sh.rest[..];
                    match c.try_recv_with(|msg| split_message(msg, &mut [], rest)) {
                        Ok((_, r)) => {
                            sh.start = 0;
                            sh.end = r;
                            if r == 0 {
                                // A zero-length message.
                                return Ok(Peek {
                                    bytes_available: 0,
                                    next_message_len: Some(0),
                                });
                            }
                        }
                        Err(culvert_ring::Error::Corrupted { what }) => {
                            let e = Error::Corrupted { what: what.into() };
                            return Err(self.poison_on(e));
                        }
                        Err(_) => {}
                    }
                }
                let n = sh.buffered();
                Ok(Peek {
                    bytes_available: n,
                    next_message_len: (n > 0).then_some(n),
                })
            }
            _ => Err(Error::Closed),
        }
    }

    /// Writes `request` as one message and reads the reply message into `reply`
    /// (Windows' `TransactNamedPipe`). Message pipes only; `reply`'s [`MessageRead`]
    /// says whether more of the reply remains for [`read_message`](Self::read_message).
    pub fn transact(&mut self, request: &[u8], reply: &mut [u8]) -> Result<MessageRead> {
        if self.mode != PipeMode::Message {
            return Err(Error::InvalidArgument {
                what: "transact needs a message pipe".into(),
            });
        }
        if self.cursor.in_message || self.shared.as_ref().is_some_and(|s| s.buffered() > 0) {
            return Err(Error::InvalidArgument {
                what: "transact with part of a message still unread".into(),
            });
        }
        self.write_message(request)?;
        self.read_message(reply)
    }

    /// Closes both directions now: the peer reads what was committed, then end of
    /// stream; its writes fail. Unread data is discarded. Later calls on this end fail
    /// with `Closed`. Named pipes: frees the server's instance slot. Idempotent.
    /// Shared pipes: detaches this holder only; the directions close when it was the
    /// last holder of its end.
    pub fn disconnect(&mut self) {
        if self.disconnected {
            return;
        }
        self.disconnected = true;
        self.close_rings();
    }

    fn close_rings(&mut self) {
        if let Some(sh) = &self.shared {
            // One holder leaving: the rings close only when it was the last one.
            if sh.holders.release(self.side, sh.index, sh.word) {
                self.state
                    .end(self.side)
                    .holders
                    .fetch_sub(1, Ordering::AcqRel);
            }
            if sh.holders.scan(self.side) != Holders::Live
                && shared::mark_gone(&self.state, self.side)
            {
                self.close_shared_rings();
            }
            // Named pipes: frees the server's slot if both ends are gone now.
            if let Some(link) = self.link.take() {
                link.release();
            }
            return;
        }
        match &mut self.tx {
            Tx::Bytes(w) => w.close(),
            Tx::Messages(w) => w.close(),
            Tx::SharedBytes(w) => w.close(),
            Tx::SharedMessages(w) => w.close(),
        }
        match &mut self.rx {
            Rx::Bytes(r) => r.close(),
            Rx::Messages(r) => r.close(),
            Rx::SharedBytes(r) => r.close(),
            Rx::SharedMessages(r) => r.close(),
        }
        self.state
            .end(self.side)
            .status
            .store(END_GONE, Ordering::Release);
        if let Some(link) = self.link.take() {
            link.release();
        }
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.close_rings();
    }
}

impl io::Read for PipeEnd {
    /// Byte read mode: at least one byte, across message boundaries. Message read
    /// mode: at most one message (a longer one continues in the next read); zero-length
    /// messages are skipped, since `Ok(0)` means end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.disconnected {
            return Ok(0);
        }
        if self.read_mode == ReadMode::Byte || self.mode == PipeMode::Byte {
            return self.read_bytes(buf).map_err(io::Error::from);
        }
        loop {
            match self.read_message(buf) {
                Ok(MessageRead {
                    len: 0,
                    more: false,
                }) => continue,
                Ok(m) => return Ok(m.len),
                Err(e) if is_eof(&e) => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl io::Write for PipeEnd {
    /// Message pipes: `buf` is one message. Byte pipes: all of `buf` unless
    /// non-blocking or timed out part-way.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_message(buf).map_err(io::Error::from)
    }

    /// Message pipes: one message, like [`write`](io::Write::write) (the default
    /// would loop on a short write, which messages never have).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut buf = buf;
        loop {
            let n = self.write_message(buf).map_err(io::Error::from)?;
            if self.mode == PipeMode::Message || n >= buf.len() {
                return Ok(());
            }
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
    }

    /// Nothing is buffered in the end: committed bytes are already in the ring.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
