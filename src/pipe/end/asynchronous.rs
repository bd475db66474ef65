//! Asynchronous calls of a [`PipeEnd`]: the `try_*` calls driven by the reactor (see
//! the crate's `asyncio` module), and the notifiers each direction sleeps on.
//!
//! Cancellation: dropping a pending [`PipeEnd::read_message_async`] loses nothing — a
//! message is taken only by the poll that returns it. Dropping a pending
//! [`PipeEnd::write_message_async`] writes nothing of a message that fits in the ring
//! (a message pipe writes a message that fits one record whole or not at all); a
//! longer message may have been written in part, as with a timed-out blocking write.

use culvert_sync::{Notifier, Waitable};

use super::super::options::MessageRead;
use super::PipeEnd;
use crate::asyncio::until_ready;
use crate::Result;

impl PipeEnd {
    /// The notifier of the ring this end writes (room freed, or the ring closed).
    pub(crate) fn writable_notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        self.io.as_dyn_ref().rings().writable_notifiers(f);
    }

    /// [`read_message`](Self::read_message) as a future: waits without blocking the
    /// thread. Cancel-safe: dropping the future before it completes consumes nothing.
    ///
    /// ```
    /// # async fn demo(end: &mut culvert::pipe::PipeEnd) -> culvert::Result<()> {
    /// let mut buf = [0u8; 256];
    /// let m = end.read_message_async(&mut buf).await?;
    /// println!("{} bytes, more: {}", m.len, m.more);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`read_message`](Self::read_message), without `WouldBlock` or `Timeout`.
    pub async fn read_message_async(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        until_ready(
            self,
            |end| end.try_read_message(buf),
            |end, f| end.notifiers(f),
        )
        .await
    }

    /// [`write_message`](Self::write_message) as a future: waits for room without
    /// blocking the thread. See the module doc on cancellation.
    ///
    /// # Errors
    /// As [`write_message`](Self::write_message), without `WouldBlock` or `Timeout`.
    pub async fn write_message_async(&mut self, msg: &[u8]) -> Result<usize> {
        until_ready(
            self,
            |end| end.try_write_message(msg),
            |end, f| end.writable_notifiers(f),
        )
        .await
    }

    /// [`transact`](Self::transact) as a future: writes `request` as one message and
    /// reads the reply message into `reply`.
    ///
    /// # Errors
    /// As [`transact`](Self::transact).
    pub async fn transact_async(
        &mut self,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<MessageRead> {
        self.check_transact()?;
        self.write_message_async(request).await?;
        self.read_message_async(reply).await
    }
}
