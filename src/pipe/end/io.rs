//! The reading and writing calls of a [`PipeEnd`], and its `std::io::Read + Write`.
//!
//! Each call dispatches on the end's rings (SPSC bytes, SPSC fragments, shared MPMC)
//! and maps ring outcomes to the pipe's: a read at end of stream gives `Ok(0)` from
//! `Read::read` and `Closed`/`PeerDied` from `read_message`; a write to a gone reader
//! fails (`BrokenPipe`); a corruption poisons the end.

use std::io;

use super::super::options::{MessageRead, Peek, PipeMode, ReadMode};
use super::{is_eof, Io, PipeEnd};
use crate::{Error, Result};

impl PipeEnd {
    // ---- writing ---------------------------------------------------------------------

    /// Writes one message (message pipes) or all of `buf` (byte pipes).
    ///
    /// Message pipes: `MessageTooLarge` above [`max_message`](Self::max_message),
    /// before anything is written; a message larger than the ring is fragmented and
    /// reassembled by the reader. Once started, a message is finished (the write
    /// timeout applies to its start). In non-blocking mode a message is written whole
    /// or not at all: `WouldBlock` while the ring lacks room for all of it, and
    /// `MessageTooLarge` above [`max_nonblocking_message`](Self::max_nonblocking_message).
    ///
    /// Byte pipes: a blocking write writes all of `buf`, or as much as it could before
    /// its timeout (then it returns the count); in non-blocking mode it writes what
    /// fits (at least one byte) and returns how much.
    ///
    /// `Closed` (`BrokenPipe`) once the reader closed or gave up before attaching, or
    /// after [`shutdown_write`](Self::shutdown_write);
    /// `PeerDied` once its process died, noticed within
    /// [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL).
    pub fn write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.check_writable()?;
        if let Io::Messages(f) = &mut self.io {
            if msg.len() <= self.base.max_message {
                if let Some(r) = f.try_write_single(msg) {
                    return self.settle(r);
                }
            }
        }
        let deadline = self.base.write_deadline();
        let r = self.io.as_dyn().write(&mut self.base, msg, deadline);
        self.settle(r)
    }

    /// [`write_message`](Self::write_message) that never waits, whatever the end's
    /// mode: as in non-blocking mode, `WouldBlock` when the ring lacks room.
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as [`write_message`](Self::write_message).
    pub fn try_write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.without_waiting(|end| end.write_message(msg))
    }

    /// [`read_message`](Self::read_message) that never waits, whatever the end's
    /// mode: `WouldBlock` when nothing is committed.
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as [`read_message`](Self::read_message).
    pub fn try_read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.without_waiting(|end| end.read_message(buf))
    }

    /// Runs `op` as in non-blocking mode, then restores the end's mode.
    fn without_waiting<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let was = std::mem::replace(&mut self.base.nonblocking, true);
        let r = op(self);
        self.base.nonblocking = was;
        r
    }

    /// The gathering write of a plain byte pipe: `Some(n)` when `n > 0` bytes of `bufs`
    /// went into the ring in one publish, `None` when the caller should write the usual
    /// way (not a plain byte pipe, nothing to write, or the ring is full).
    fn try_gather(&mut self, bufs: &[io::IoSlice<'_>]) -> Result<Option<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 || !matches!(self.io, Io::Bytes(_)) {
            return Ok(None);
        }
        self.check_writable()?;
        let Io::Bytes(rings) = &mut self.io else {
            return Ok(None);
        };
        let r = rings.gather(bufs);
        self.settle(r)
    }

    // ---- reading ---------------------------------------------------------------------

    /// Reads (part of) the next message into `buf`.
    ///
    /// Returns the bytes written and whether more of the same message remains
    /// (`more`: the message was longer than `buf`; the rest comes with the next call,
    /// nothing is lost). A zero-length message reads as `len == 0, more == false`.
    /// At end of stream fails with `Closed` (the peer disconnected) or `PeerDied`; a
    /// timeout gives `Timeout` (or `WouldBlock` in non-blocking mode) — unless some
    /// bytes of the message were read, which are then returned with `more`.
    ///
    /// An empty `buf` returns at once and changes nothing: `len == 0`, and `more`
    /// tells whether part of a message already started remains. To learn whether a
    /// message is waiting without reading it, use [`peek`](Self::peek).
    ///
    /// On a byte pipe, reads what is available (`more` is always `false`).
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.base.check_usable()?;
        if buf.is_empty() {
            let more = self.io.as_dyn_ref().in_message();
            return Ok(MessageRead { len: 0, more });
        }
        if let Io::Messages(f) = &mut self.io {
            if let Some(m) = f.try_read_single(buf) {
                return Ok(m);
            }
        }
        let deadline = self.base.read_deadline();
        let r = self.io.as_dyn().read_message(&mut self.base, buf, deadline);
        self.settle(r)
    }

    /// Byte-mode read: at least one byte (waiting per the settings), or 0 at end of
    /// stream or for an empty `buf`. On a message pipe, reads across message
    /// boundaries.
    fn read_bytes(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.base.read_deadline();
        let r = self.io.as_dyn().read_bytes(&mut self.base, buf, deadline);
        match self.settle(r) {
            Ok(n) => Ok(n),
            Err(e) if is_eof(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Looks at what is waiting without consuming it. Never waits.
    ///
    /// With nothing waiting, fails with `Closed` (`BrokenPipe`) once the peer closed
    /// or gave up before attaching, and with `PeerDied` once its process died (noticed
    /// within [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL)),
    /// so "peek until it fails" loops end. Committed data is reported first.
    pub fn peek(&mut self) -> Result<Peek> {
        self.peek_checking(None)
    }

    /// [`peek`](Self::peek), checking the peer's process only when `liveness_due` says
    /// so (`None`: when the end's clock says so).
    pub(super) fn peek_checking(&mut self, liveness_due: Option<bool>) -> Result<Peek> {
        self.base.check_usable()?;
        let found = self.io.as_dyn().peek(&mut self.base);
        if let Some(p) = self.settle(found)? {
            return Ok(p);
        }
        let due = liveness_due.unwrap_or_else(|| self.base.clock.due());
        match self.base.peer_gone(due) {
            Some(e) => self.settle(Err(e)),
            None => Ok(Peek {
                bytes_available: 0,
                next_message_len: None,
            }),
        }
    }

    /// Writes `request` as one message and reads the reply message into `reply`
    /// (Windows' `TransactNamedPipe`). `reply`'s [`MessageRead`] says whether more of
    /// the reply remains for [`read_message`](Self::read_message).
    ///
    /// Fails before sending anything with `InvalidArgument` on a byte pipe or in
    /// [`ReadMode::Byte`], and with `Busy` when a message (or part of one) is already
    /// waiting to be read — it would be taken for the reply.
    pub fn transact(&mut self, request: &[u8], reply: &mut [u8]) -> Result<MessageRead> {
        self.check_transact()?;
        self.write_message(request)?;
        self.read_message(reply)
    }

    /// What a transaction needs before it sends: a message pipe in message read mode
    /// with no message waiting (it would be taken for the reply).
    pub(super) fn check_transact(&mut self) -> Result<()> {
        self.base.check_usable()?;
        if self.base.mode != PipeMode::Message || self.base.read_mode != ReadMode::Message {
            return Err(Error::InvalidArgument {
                what: "transact needs a message pipe in message read mode".into(),
            });
        }
        if self.peek()?.next_message_len.is_some() {
            return Err(Error::Busy {
                reason: crate::BusyReason::MessageWaiting,
            });
        }
        Ok(())
    }
}

impl io::Read for PipeEnd {
    /// Byte read mode: at least one byte, across message boundaries. Message read
    /// mode: at most one message (a longer one continues in the next read); zero-length
    /// messages are skipped, since `Ok(0)` means end of stream. An empty `buf`
    /// returns `Ok(0)` at once.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf).map_err(io::Error::from)
    }
}

impl PipeEnd {
    /// [`io::Read::read`] with culvert's errors: for the async adapters, whose polls
    /// would otherwise box an `io::Error` for every `WouldBlock`.
    pub(super) fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || self.base.disconnected {
            return Ok(0);
        }
        if self.base.read_mode == ReadMode::Byte || self.base.mode == PipeMode::Byte {
            return self.read_bytes(buf);
        }
        loop {
            match self.read_message(buf) {
                Ok(MessageRead {
                    len: 0,
                    more: false,
                }) => continue,
                Ok(m) => return Ok(m.len),
                Err(e) if is_eof(&e) => return Ok(0),
                Err(e) => return Err(e),
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
            if self.base.mode == PipeMode::Message || n >= buf.len() {
                return Ok(());
            }
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
    }

    /// Byte pipes (not shared): as many of the buffers' bytes as fit in the ring's
    /// contiguous free space, copied in and published at once (one wake-up of the
    /// reader for all of them); when the ring is full, waits as
    /// [`write`](io::Write::write) does for the first non-empty buffer. Message
    /// pipes and shared pipes: the first non-empty buffer, as `write`.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if let Some(n) = self.try_gather(bufs).map_err(io::Error::from)? {
            return Ok(n);
        }
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.write(b),
            None => Ok(0),
        }
    }

    /// Nothing is buffered in the end: committed bytes are already in the ring.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
