//! [`AsyncPipeEnd`]: a [`PipeEnd`] as a tokio `AsyncRead + AsyncWrite` (feature
//! `tokio`). Reads and writes are the end's calls that never wait, driven by the
//! process's reactor; nothing here blocks a runtime thread.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use culvert_sync::{AsyncWait, Waitable};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::super::options::MessageRead;
use super::{PipeEnd, PipeReader, PipeWriter};
use crate::asyncio::poll_op;
use crate::Result;

/// A pipe end for async code: tokio's [`AsyncRead`] and [`AsyncWrite`], plus the
/// message calls as futures. [`poll_shutdown`](AsyncWrite::poll_shutdown) half-closes
/// the direction this end writes (the peer reads end of stream; this end still reads).
/// For a reader and a writer in two tasks, [`split`](Self::split) it.
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

/// `poll_read` of an end (whole or read half) with its read arming.
fn poll_read_end(
    end: &mut PipeEnd,
    wait: &mut AsyncWait,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: the notifiers live in the end's mapping; every caller keeps `wait` in the
    // same value as the end, declared before it (dropped, so disarmed, first).
    let r = unsafe {
        poll_op(
            end,
            wait,
            cx,
            |end| end.read_some(buf.initialize_unfilled()),
            |end, f| end.notifiers(f),
        )
    };
    r.map(|r| {
        let n = r.map_err(io::Error::from)?;
        buf.advance(n);
        Ok(())
    })
}

/// `poll_write` of an end (whole or write half) with its write arming.
fn poll_write_end(
    end: &mut PipeEnd,
    wait: &mut AsyncWait,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    // SAFETY: as in `poll_read_end`.
    let r = unsafe {
        poll_op(
            end,
            wait,
            cx,
            |end| end.write_message(buf),
            |end, f| end.writable_notifiers(f),
        )
    };
    r.map(|r| r.map_err(io::Error::from))
}

impl AsyncRead for AsyncPipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        poll_read_end(&mut this.end, &mut this.read_wait, cx, buf)
    }
}

impl AsyncWrite for AsyncPipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_end(&mut this.end, &mut this.write_wait, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every write is published when it returns.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().end.shutdown_write().map_err(io::Error::from))
    }
}

/// The reading half of [`AsyncPipeEnd::split`]: [`AsyncRead`] and `read_message`.
#[derive(Debug)]
pub struct AsyncPipeReader {
    /// Declared before `half`: dropped (so disarmed) first.
    wait: AsyncWait,
    half: PipeReader,
}

/// The writing half of [`AsyncPipeEnd::split`]: [`AsyncWrite`] and `write_message`;
/// dropping it (or `shutdown`) half-closes the direction it writes.
#[derive(Debug)]
pub struct AsyncPipeWriter {
    /// Declared before `half`: dropped (so disarmed) first.
    wait: AsyncWait,
    half: PipeWriter,
}

impl AsyncPipeEnd {
    /// A reader and a writer for two tasks at once, with no lock between them (see
    /// [`PipeEnd::split`]).
    ///
    /// # Errors
    /// As [`PipeEnd::split`].
    pub fn split(self) -> Result<(AsyncPipeReader, AsyncPipeWriter)> {
        let (mut reader, mut writer) = self.into_inner().split()?;
        reader.set_nonblocking(true);
        writer.set_nonblocking(true);
        Ok((
            AsyncPipeReader {
                wait: AsyncWait::new(),
                half: reader,
            },
            AsyncPipeWriter {
                wait: AsyncWait::new(),
                half: writer,
            },
        ))
    }
}

impl AsyncPipeReader {
    /// [`PipeEnd::read_message_async`] on this half: cancel-safe.
    ///
    /// # Errors
    /// As [`PipeEnd::read_message`].
    pub async fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        self.half.end.read_message_async(buf).await
    }
}

impl AsyncPipeWriter {
    /// [`PipeEnd::write_message_async`] on this half.
    ///
    /// # Errors
    /// As [`PipeEnd::write_message`].
    pub async fn write_message(&mut self, msg: &[u8]) -> Result<usize> {
        self.half.end.write_message_async(msg).await
    }
}

impl AsyncRead for AsyncPipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        poll_read_end(&mut this.half.end, &mut this.wait, cx, buf)
    }
}

impl AsyncWrite for AsyncPipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_end(&mut this.half.end, &mut this.wait, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(
            self.get_mut()
                .half
                .end
                .shutdown_write()
                .map_err(io::Error::from),
        )
    }
}
