//! How a pipe end waits on its rings and notices that its peer is gone.
//!
//! Every ring operation of a [`PipeEnd`] goes through [`Base::ring_op`]. In
//! non-blocking mode the operation is tried once; otherwise it waits in naps of at
//! most [`LIVENESS_RECHECK_INTERVAL`] up to the caller's deadline. Whenever it could
//! not complete, the peer end is checked ([`Base::peer_gone`]): its status word on
//! every call (closed, or given up before attaching), the liveness of its process at
//! most once per interval, by the end's [`RecheckClock`](culvert_sync::RecheckClock),
//! which outlives the call, so a caller polling in a loop or using short timeouts is
//! told within the interval too. Once the peer is gone the operation runs once more
//! without waiting (a read drains what was committed) and then fails with the peer's
//! outcome: `Closed` when it closed, `PeerDied` when its process died.
//!
//! Writes that make progress never wait, so [`Base::check_peer_for_write`] runs
//! before each one: the status word while the peer has not attached, then a liveness
//! check every [`OPS_PER_CLOCK_READ`](culvert_sync::RecheckClock::OPS_PER_CLOCK_READ)
//! writes and at most once per interval.

use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, LIVENESS_RECHECK_INTERVAL};

use super::super::layout::{END_ATTACHED, END_UNATTACHED};
use super::super::shared::{self, HolderView};
use super::{Base, PipeEnd};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

/// How the peer end went away. Once seen it is kept: a gone peer never comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerGone {
    /// It closed, gave up before attaching, or (shared) all its holders left.
    Closed,
    /// Its process died.
    Died,
}

/// How an end tells that its peer end is gone beyond the peer's status word.
pub(super) enum PeerCheck {
    /// Exclusive: the peer's process died.
    Process,
    /// Shared: every holder of the peer end left or died (the holder table).
    Holders(HolderView),
}

impl PeerGone {
    fn error(self) -> Error {
        match self {
            PeerGone::Closed => Error::Closed,
            PeerGone::Died => Error::PeerDied,
        }
    }
}

impl Base {
    /// The outcome for an operation on this end if the peer end is gone: `Closed`
    /// once it closed or gave up (or, shared, all its holders left), `PeerDied` once
    /// its process died. The status word is read every call; process liveness (a
    /// `/proc` read) only if `liveness_due`. Once it returns `Some`, the end's kind is
    /// told ([`EndIo::peer_gone`](super::rings::EndIo::peer_gone)) by the call that made it.
    pub(super) fn peer_gone(&mut self, liveness_due: bool) -> Option<Error> {
        if self.peer_lost.is_none() {
            self.peer_lost = self.find_peer_gone(liveness_due);
            if self.peer_lost == Some(PeerGone::Died) {
                crate::trace::event!(WARN, side = self.side.index(), "pipe peer process died");
            }
        }
        self.peer_lost.map(PeerGone::error)
    }

    fn find_peer_gone(&self, liveness_due: bool) -> Option<PeerGone> {
        let status = self.peer_end().status.load(Ordering::Acquire);
        if status != END_UNATTACHED && status != END_ATTACHED {
            return Some(PeerGone::Closed);
        }
        if !liveness_due {
            return None;
        }
        match &self.peer_check {
            PeerCheck::Process => self.state.peer_gone(self.side).then_some(PeerGone::Died),
            PeerCheck::Holders(holders) => {
                shared::end_gone(&self.state, holders, self.side.peer()).then_some(PeerGone::Closed)
            }
        }
    }

    /// What every write checks first: `Closed` after `disconnect` or `shutdown_write`,
    /// `Corrupted` once poisoned, then [`check_peer_for_write`](Self::check_peer_for_write).
    pub(super) fn check_writable(&mut self) -> Result<()> {
        self.check_usable()?;
        if self.write_shut {
            return Err(Error::Closed);
        }
        self.check_peer_for_write()
    }

    /// Before a write: `Closed`/`PeerDied` if the reader is gone. Until the peer has
    /// attached, a due clock is enough (the expected process may have died); after,
    /// a write checks every `OPS_PER_CLOCK_READ` writes, at most once per interval.
    pub(super) fn check_peer_for_write(&mut self) -> Result<()> {
        let attached = self.peer_end().status.load(Ordering::Acquire) == END_ATTACHED;
        let due = if attached {
            self.clock.tick()
        } else {
            self.clock.due()
        };
        match self.peer_gone(due) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs a ring operation per the end's settings until `deadline`.
    ///
    /// `op(None)` must not wait; `op(Some(d))` may wait until `d`. The first
    /// try never waits (and reads no clock). A `WouldBlock` or `Timeout` from it is
    /// retried (blocking mode) until `deadline`, with the peer checked in between; see
    /// the module doc. Returns `WouldBlock`
    /// (non-blocking), `Timeout` (deadline passed), or the peer's outcome.
    pub(super) fn ring_op<T>(
        &mut self,
        deadline: Deadline,
        mut op: impl FnMut(Option<Deadline>) -> culvert_ring::Result<T>,
    ) -> Result<T> {
        let mut gone: Option<Error> = None;
        // The first try never waits, so an operation that can complete reads no clock.
        let mut first = true;
        let mut quick = true;
        loop {
            let wait = if std::mem::take(&mut first) || gone.is_some() || self.nonblocking {
                None
            } else {
                Some(deadline.min(Deadline::after(LIVENESS_RECHECK_INTERVAL)))
            };
            match op(wait) {
                Err(culvert_ring::Error::Timeout | culvert_ring::Error::WouldBlock) => {
                    if let Some(e) = gone {
                        return Err(e);
                    }
                    let due = self.clock.due();
                    if let Some(e) = self.peer_gone(due) {
                        gone = Some(e);
                        continue;
                    }
                    if self.nonblocking {
                        return Err(Error::WouldBlock);
                    }
                    if std::mem::take(&mut quick) {
                        // Before any deadline arithmetic: a peer answering at once.
                        let r = culvert_sync::quick_spin(self.strategy, || match op(None) {
                            Err(culvert_ring::Error::Timeout | culvert_ring::Error::WouldBlock) => {
                                None
                            }
                            other => Some(other),
                        });
                        if let Some(r) = r {
                            return r.map_err(Error::from);
                        }
                    }
                    if deadline.has_passed() {
                        return Err(Error::Timeout);
                    }
                }
                other => return other.map_err(Error::from),
            }
        }
    }
}

impl PipeEnd {
    /// Never waits: whether a read would not report `WouldBlock` (see
    /// [`Waitable::poll_ready`](culvert_sync::Waitable::poll_ready)); the peer's
    /// process is checked when `liveness_due`.
    pub(super) fn poll_readable(&mut self, liveness_due: bool) -> bool {
        // The common cases in a few loads (a wait set polls many ends per pass): a
        // plain byte ring with bytes committed, or with none and only its closed flag
        // and the peer's status word to check.
        if let super::Io::Bytes(super::rings::Duplex { rx: Some(r), .. }) = &mut self.io {
            if !self.base.poisoned && !self.base.disconnected {
                match r.bytes_available() {
                    Ok(n) if n > 0 => return true,
                    Ok(_) if !liveness_due => {
                        return r.is_closed() || self.base.peer_gone(false).is_some();
                    }
                    _ => {}
                }
            }
        }
        match self.peek_checking(Some(liveness_due)) {
            Ok(p) => p.bytes_available > 0 || p.next_message_len.is_some(),
            Err(_) => true,
        }
    }

    /// The notifier of the ring this end reads.
    pub(super) fn readable_notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.io.as_dyn_ref().rings().readable_notifiers(f);
    }

    /// [`Base::check_writable`], telling the end's kind if the peer is gone.
    pub(super) fn check_writable(&mut self) -> Result<()> {
        let r = self.base.check_writable();
        self.settle(r)
    }

    /// Passes the outcome of a call on the end's rings on: a corruption poisons the
    /// end; once the peer was seen gone, the end's kind is told.
    pub(super) fn settle<T>(&mut self, r: Result<T>) -> Result<T> {
        r.map_err(|e| {
            if self.base.peer_lost.is_some() {
                self.io.as_dyn().peer_gone();
            }
            self.base.poison_on(e)
        })
    }
}

// SAFETY: the notifiers live in the pipe instance's section, which the end keeps
// mapped at a fixed address, not in the end value.
unsafe impl culvert_sync::Waitable for PipeEnd {
    /// True when a read would not report `WouldBlock`: data or a message part waiting,
    /// end of stream, the peer gone (closed at once; a dead process within
    /// [`LIVENESS_RECHECK_INTERVAL`]) or an error.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.poll_readable(ctx.liveness_due)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.readable_notifiers(f);
    }
}
