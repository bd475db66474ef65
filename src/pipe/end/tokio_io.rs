//! [`AsyncPipeEnd`]: a [`PipeEnd`] as a tokio `AsyncRead + AsyncWrite` (feature
//! `tokio`). Reads and writes are the end's calls that never wait, driven by the
//! process's reactor; nothing here blocks a runtime thread.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use culvert_sync::{AsyncWait, Waitable};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::super::options::MessageRead;
use super::PipeEnd;
use crate::asyncio::poll_op;
use crate::{Error, Result};

/// A pipe end for async code: tokio's [`AsyncRead`] and [`AsyncWrite`], plus the
/// message calls as futures. [`poll_shutdown`](AsyncWrite::poll_shutdown) half-closes
/// the direction this end writes (the peer reads end of stream; this end still reads).
/// For a reader and a writer in two tasks, use [`tokio::io::split`].
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use culvert::pipe::{self, PipeMode, PipeOptions};
///
/// # fn main() -> culvert::Result<()> {
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default())?;
/// let (mut a, mut b) = (a.into_async(), b.into_async());
/// a.write_all(b"hello").await?;
/// a.shutdown().await?;
/// let mut got = Vec::new();
/// b.read_to_end(&mut got).await?;
/// assert_eq!(got, b"hello");
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncPipeEnd {
    /// Arming of a pending read; declared (so dropped, disarming) before `end`.
    read_wait: AsyncWait,
    /// Arming of a pending write; likewise.
    write_wait: AsyncWait,
    /// The end, in non-blocking mode.
    end: PipeEnd,
    /// The end's mode before [`PipeEnd::into_async`], restored by `into_inner`.
    was_nonblocking: bool,
}

impl PipeEnd {
    /// This end for async code (see [`AsyncPipeEnd`]).
    pub fn into_async(mut self) -> AsyncPipeEnd {
        let was_nonblocking = self.is_nonblocking();
        self.set_nonblocking(true);
        AsyncPipeEnd {
            read_wait: AsyncWait::new(),
            write_wait: AsyncWait::new(),
            end: self,
            was_nonblocking,
        }
    }
}

/// An `io::Result` of a call that never waits, as the crate's `Result` the reactor
/// adapter understands (`WouldBlock` means "arm and wait").
fn from_io<T>(r: io::Result<T>) -> Result<T> {
    r.map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::WouldBlock,
        _ => Error::Io(e),
    })
}

impl AsyncPipeEnd {
    /// The blocking end back, in the mode it had.
    pub fn into_inner(mut self) -> PipeEnd {
        self.read_wait.disarm();
        self.write_wait.disarm();
        let nonblocking = self.was_nonblocking;
        let AsyncPipeEnd { mut end, .. } = self;
        end.set_nonblocking(nonblocking);
        end
    }

    /// The end (for settings and queries; its blocking calls do not wait while it is
    /// async).
    pub fn get_ref(&self) -> &PipeEnd {
        &self.end
    }

    /// The end, mutably.
    pub fn get_mut(&mut self) -> &mut PipeEnd {
        &mut self.end
    }

    /// [`PipeEnd::read_message_async`]: cancel-safe.
    ///
    /// # Errors
    /// As [`PipeEnd::read_message`].
    pub async fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.end.read_message_async(buf).await
    }

    /// [`PipeEnd::write_message_async`].
    ///
    /// # Errors
    /// As [`PipeEnd::write_message`].
    pub async fn write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.end.write_message_async(msg).await
    }

    /// [`PipeEnd::transact_async`].
    ///
    /// # Errors
    /// As [`PipeEnd::transact`].
    pub async fn transact(&mut self, request: &[u8], reply: &mut [u8]) -> Result<MessageRead> {
        self.end.transact_async(request, reply).await
    }
}

impl AsyncRead for AsyncPipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // SAFETY: the notifiers live in the end's mapping; `read_wait` is dropped or
        // disarmed before `end` (field order, `into_inner`).
        let r = unsafe {
            poll_op(
                &mut this.end,
                &mut this.read_wait,
                cx,
                |end| from_io(io::Read::read(end, buf.initialize_unfilled())),
                |end, f| end.notifiers(f),
            )
        };
        r.map(|r| {
            let n = r.map_err(io::Error::from)?;
            buf.advance(n);
            Ok(())
        })
    }
}

impl AsyncWrite for AsyncPipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // SAFETY: as in `poll_read`, for `write_wait`.
        let r = unsafe {
            poll_op(
                &mut this.end,
                &mut this.write_wait,
                cx,
                |end| from_io(io::Write::write(end, buf)),
                |end, f| end.writable_notifiers(f),
            )
        };
        r.map(|r| r.map_err(io::Error::from))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every write is published when it returns.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().end.shutdown_write().map_err(io::Error::from))
    }
}
