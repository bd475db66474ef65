//! [`PipeEnd::split`]: a [`PipeReader`] and a [`PipeWriter`] over one end, so one
//! thread reads while another writes (rtrb's producer/consumer split).
//!
//! Each half is a [`PipeEnd`] with the other direction detached; the halves share
//! nothing mutable, so neither ever waits for the other. Dropping the writer closes
//! the direction it writes (the peer drains it, then reads end of stream); dropping
//! the reader closes the direction it reads (the peer's writes fail with `Closed`).
//! An exclusive end is closed — its status marked gone and a named pipe's instance
//! slot freed — by an [`EndGuard`] the halves share, when the second half goes. A
//! shared end splits into two holders of that end.

use std::io;
use std::sync::{Arc, Mutex};

use culvert_section::{Section, SectionKind, SectionOptions};
use culvert_sync::atomic::Ordering;
use culvert_sync::RecheckClock;

use super::super::layout::{Side, StateView, END_GONE};
use super::super::named::ServerLink;
use super::super::options::{MessageRead, Peek, PipeMode, ReadMode};
use super::wait::PeerCheck;
use super::{Base, PipeEnd};
use crate::{Error, Result};

/// Closes an exclusive end once both halves of it are gone.
pub(crate) struct EndGuard {
    /// The instance's state block.
    state: StateView,
    /// The end the halves belong to.
    side: Side,
    /// Named pipes: the server's instance slot, freed with the end.
    link: Mutex<Option<ServerLink>>,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.state
            .end(self.side)
            .status
            .store(END_GONE, Ordering::Release);
        let link = self.link.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = link.take() {
            link.release();
        }
    }
}

impl PipeEnd {
    /// Splits this end into a reader and a writer that two threads use at once (a
    /// `PipeEnd` is used by one thread at a time). Settings (timeouts, non-blocking
    /// mode, read mode) carry over to both halves. Dropping the writer half-closes
    /// (see [`shutdown_write`](Self::shutdown_write)); the end is closed once both
    /// halves are gone.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use culvert::pipe::{self, PipeMode, PipeOptions};
    ///
    /// # fn main() -> culvert::Result<()> {
    /// let (a, mut b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default())?;
    /// let (mut reader, mut writer) = a.split()?;
    /// let t = std::thread::spawn(move || writer.write_all(b"from a's writer"));
    /// let mut got = [0u8; 15];
    /// b.read_exact(&mut got)?;
    /// b.write_all(b"to a's reader")?;
    /// let mut back = [0u8; 13];
    /// reader.read_exact(&mut back)?;
    /// t.join().unwrap()?;
    /// assert_eq!((&got, &back), (b"from a's writer", b"to a's reader"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Closed` after [`disconnect`](Self::disconnect); `Corrupted` on a poisoned
    /// end; `Io` if the section could not be mapped for the second half; shared ends:
    /// as [`try_clone`](Self::try_clone).
    pub fn split(mut self) -> Result<(PipeReader, PipeWriter)> {
        self.base.check_usable()?;
        let mut writer = if self.io.holder().is_some() {
            // Shared: the halves are two holders of the end.
            let mut w = self.try_clone()?;
            w.base.write_shut = self.base.write_shut;
            w.io.as_dyn().rings_mut().drop_read();
            self.io.as_dyn().rings_mut().drop_write();
            w
        } else {
            self.exclusive_write_half()?
        };
        writer.set_wait_strategy(self.base.strategy);
        Ok((PipeReader { end: self }, PipeWriter { end: writer }))
    }

    /// The write half of an exclusive end: its ring writer moves over, and the end
    /// is closed by a guard both halves hold.
    fn exclusive_write_half(&mut self) -> Result<PipeEnd> {
        let dup = self.base.section.as_fd().try_clone_to_owned()?;
        let section = Section::from_fd_with(
            dup,
            "pipe",
            &SectionOptions::default()
                .kind(SectionKind::Pipe)
                .expect_kind(SectionKind::Pipe),
        )?;
        let Some(io) = self.io.as_dyn().take_write_half() else {
            return Err(Error::InvalidArgument {
                what: "a shared pipe end splits into two holders".into(),
            });
        };
        let guard = Arc::new(EndGuard {
            state: self.base.state.clone(),
            side: self.base.side,
            link: Mutex::new(self.base.link.take()),
        });
        self.base.split_guard = Some(guard.clone());
        let b = &self.base;
        let base = Base {
            section,
            state: b.state.clone(),
            side: b.side,
            mode: b.mode,
            read_mode: b.read_mode,
            max_message: b.max_message,
            partial: Vec::new(),
            nonblocking: b.nonblocking,
            read_timeout: b.read_timeout,
            write_timeout: b.write_timeout,
            strategy: b.strategy,
            disconnected: false,
            write_shut: b.write_shut,
            poisoned: false,
            clock: RecheckClock::new(),
            peer_check: PeerCheck::Process,
            peer_lost: b.peer_lost,
            link: None,
            split_guard: Some(guard),
            reserved: Mutex::new(Vec::new()),
        };
        Ok(PipeEnd { base, io })
    }
}

/// The reading half of a [`PipeEnd::split`]. Reads as the end would; dropping it
/// closes the direction it reads, so the peer's writes fail with `Closed`.
#[derive(Debug)]
pub struct PipeReader {
    /// The end, with the direction it writes detached.
    pub(super) end: PipeEnd,
}

/// The writing half of a [`PipeEnd::split`]. Writes as the end would; dropping it
/// closes the direction it writes: the peer reads what was written, then end of
/// stream.
#[derive(Debug)]
pub struct PipeWriter {
    /// The end, with the direction it reads detached.
    pub(super) end: PipeEnd,
}

impl PipeReader {
    /// As [`PipeEnd::read_message`].
    ///
    /// # Errors
    /// As [`PipeEnd::read_message`].
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.end.read_message(buf)
    }

    /// As [`PipeEnd::try_read_message`].
    ///
    /// # Errors
    /// As [`PipeEnd::try_read_message`].
    pub fn try_read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.end.try_read_message(buf)
    }

    /// As [`PipeEnd::read_messages`].
    ///
    /// # Errors
    /// As [`PipeEnd::read_messages`].
    pub fn read_messages(&mut self, max: usize, f: impl FnMut(&[u8])) -> Result<usize> {
        self.end.read_messages(max, f)
    }

    /// As [`PipeEnd::peek`].
    ///
    /// # Errors
    /// As [`PipeEnd::peek`].
    pub fn peek(&mut self) -> Result<Peek> {
        self.end.peek()
    }

    /// As [`PipeEnd::set_read_mode`].
    ///
    /// # Errors
    /// As [`PipeEnd::set_read_mode`].
    pub fn set_read_mode(&mut self, mode: ReadMode) -> Result<()> {
        self.end.set_read_mode(mode)
    }

    /// As [`PipeEnd::set_read_timeout`].
    pub fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.end.set_read_timeout(timeout);
    }

    /// As [`PipeEnd::set_nonblocking`].
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.end.set_nonblocking(nonblocking);
    }

    /// The pipe's mode.
    pub fn mode(&self) -> PipeMode {
        self.end.mode()
    }
}

impl PipeWriter {
    /// As [`PipeEnd::write_message`].
    ///
    /// # Errors
    /// As [`PipeEnd::write_message`].
    pub fn write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.end.write_message(msg)
    }

    /// As [`PipeEnd::try_write_message`].
    ///
    /// # Errors
    /// As [`PipeEnd::try_write_message`].
    pub fn try_write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.end.try_write_message(msg)
    }

    /// As [`PipeEnd::write_messages`].
    ///
    /// # Errors
    /// As [`PipeEnd::write_messages`].
    pub fn write_messages(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.end.write_messages(msgs)
    }

    /// As [`PipeEnd::set_write_timeout`].
    pub fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.end.set_write_timeout(timeout);
    }

    /// As [`PipeEnd::set_nonblocking`].
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.end.set_nonblocking(nonblocking);
    }

    /// As [`PipeEnd::max_message`].
    pub fn max_message(&self) -> usize {
        self.end.max_message()
    }

    /// The pipe's mode.
    pub fn mode(&self) -> PipeMode {
        self.end.mode()
    }
}

impl io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.end.read(buf)
    }
}

impl io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.end.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.end.write_all(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.end.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// SAFETY: as for `PipeEnd`: the notifiers live in the instance's mapped section.
unsafe impl culvert_sync::Waitable for PipeReader {
    /// As [`PipeEnd`]'s: true when a read would not report `WouldBlock`.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.end.poll_readable(ctx.liveness_due)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.end.readable_notifiers(f);
    }
}
