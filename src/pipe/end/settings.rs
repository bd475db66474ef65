//! The settings and queries of a [`PipeEnd`]: mode and read mode, non-blocking mode,
//! timeouts, wait strategy, and what the end knows of its peer (pid, attach outcome,
//! expected process). None of these calls waits; the peer queries read the peer's
//! words in the state block, which are untrusted hints.

use std::time::Duration;

use culvert_section::Section;
use culvert_sync::atomic::Ordering;
use culvert_sync::{ProcessIdentity, WaitStrategy};

use super::super::layout::{END_ATTACHED, END_UNATTACHED};
use super::super::options::{PipeMode, ReadMode};
use super::PipeEnd;
use crate::{Error, Result};

impl PipeEnd {
    /// The pipe's mode, fixed at creation.
    pub fn mode(&self) -> PipeMode {
        self.base.mode
    }

    /// How `Read::read` reads (default: the pipe's mode).
    pub fn read_mode(&self) -> ReadMode {
        self.base.read_mode
    }

    /// Sets how `Read::read` reads: [`ReadMode::Byte`] on a message pipe reads across
    /// message boundaries; [`ReadMode::Message`] on a byte pipe is an
    /// `InvalidArgument` error.
    pub fn set_read_mode(&mut self, mode: ReadMode) -> Result<()> {
        if mode == ReadMode::Message && self.base.mode == PipeMode::Byte {
            return Err(Error::InvalidArgument {
                what: "message read mode on a byte pipe".into(),
            });
        }
        self.base.read_mode = mode;
        Ok(())
    }

    /// Largest message this pipe carries.
    pub fn max_message(&self) -> usize {
        self.base.max_message
    }

    /// Message pipes: the longest message a non-blocking write can write whole; longer
    /// ones fail with `MessageTooLarge` in non-blocking mode (a message of several ring
    /// records is written only when the ring has room for all of it, so a non-blocking
    /// write never leaves part of a message behind). A message of one record always
    /// qualifies. Byte and shared pipes: [`max_message`](Self::max_message).
    pub fn max_nonblocking_message(&self) -> usize {
        match &self.io {
            super::Io::Messages(f) => f.max_nonblocking_message(),
            _ => self.base.max_message,
        }
    }

    /// In non-blocking mode, reads and writes that would wait fail with `WouldBlock`.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.base.nonblocking = nonblocking;
    }

    /// Whether the end is in non-blocking mode.
    pub fn is_nonblocking(&self) -> bool {
        self.base.nonblocking
    }

    /// How long a read waits (`None`: for ever). A read that times out fails with
    /// `Timeout` (`io::ErrorKind::TimedOut`).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.base.read_timeout = timeout;
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.base.read_timeout
    }

    /// How long a write waits for room (`None`: for ever). A message longer than the
    /// room in the ring is finished once started: the timeout applies to its start.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.base.write_timeout = timeout;
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.base.write_timeout
    }

    /// How this end's blocking calls wait (default `Adaptive`).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.base.strategy = strategy;
        self.io.as_dyn().rings_mut().set_wait_strategy(strategy);
    }

    /// The wait strategy.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.base.strategy
    }

    /// The process id of the peer end while it is connected: `None` before it
    /// attached, and after either end disconnected or closed (a hint: a hostile peer
    /// could write anything here).
    pub fn peer_pid(&self) -> Option<u32> {
        let peer = self.base.peer_end();
        if self.base.disconnected || peer.status.load(Ordering::Acquire) != END_ATTACHED {
            return None;
        }
        let pid = ProcessIdentity::from_packed(peer.identity.load(Ordering::Acquire)).pid;
        (pid != 0).then_some(pid)
    }

    /// How the peer end's attach went: `None` while it has not attached, or has
    /// claimed its end but not yet recorded its identity; `Some(true)` once it is
    /// attached with its identity recorded; `Some(false)` once it closed or gave up.
    pub(crate) fn peer_attach_outcome(&self) -> Option<bool> {
        let peer = self.base.peer_end();
        match peer.status.load(Ordering::Acquire) {
            END_UNATTACHED => None,
            END_ATTACHED => (peer.identity.load(Ordering::Acquire) != 0).then_some(true),
            _ => Some(false),
        }
    }

    /// Whether the peer end has attached.
    pub fn is_peer_attached(&self) -> bool {
        self.base.peer_end().status.load(Ordering::Acquire) != END_UNATTACHED
    }

    /// Records `pid` as the process expected to attach the peer end (e.g. the child a
    /// [`PendingEnd`](super::super::PendingEnd) was passed to), so that this end notices if it
    /// dies before attaching. No effect once the peer attached.
    ///
    /// # Errors
    /// `Io` with kind `NotFound` if no process `pid` runs.
    pub fn expect_peer(&self, pid: u32) -> Result<()> {
        let id = ProcessIdentity::of(pid)?;
        self.base
            .peer_end()
            .expected
            .store(id.packed(), Ordering::Release);
        Ok(())
    }

    /// The section holding this pipe instance.
    pub fn section(&self) -> &Section {
        &self.base.section
    }
}
