//! How a [`PipeEnd`] closes: half-close of the direction it writes
//! ([`PipeEnd::shutdown_write`]), both directions at once ([`PipeEnd::disconnect`]),
//! and on drop. Shared mode: one holder leaving closes the rings only when it was the
//! last holder of its end.

use culvert_sync::atomic::Ordering;

use super::super::layout::END_GONE;
use super::{Base, PipeEnd};
use crate::Result;

impl PipeEnd {
    /// Half-close: closes the direction this end writes, as `shutdown(SHUT_WR)` does
    /// on a socket. The peer reads what was committed, then end of stream; this end
    /// goes on reading what the peer writes, and the peer's writes keep working. Later
    /// writes on this end fail with `Closed`. Shared pipes: the direction closes for
    /// every holder of this end. Idempotent.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use culvert::pipe::{self, PipeMode, PipeOptions};
    ///
    /// # fn main() -> culvert::Result<()> {
    /// let (mut client, mut server) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default())?;
    /// client.write_all(b"request")?;
    /// client.shutdown_write()?; // the server sees end of stream after "request"
    /// let mut request = Vec::new();
    /// server.read_to_end(&mut request)?;
    /// server.write_all(b"reply to ")?;
    /// server.write_all(&request)?;
    /// drop(server);
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "reply to request");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Closed` after [`disconnect`](Self::disconnect); `Corrupted` on a poisoned end.
    pub fn shutdown_write(&mut self) -> Result<()> {
        self.base.check_usable()?;
        if !self.base.write_shut {
            self.base.write_shut = true;
            self.io.as_dyn().rings_mut().close_write();
        }
        Ok(())
    }

    /// Closes both directions now: the peer reads what was committed, then end of
    /// stream; its writes fail. Unread data is discarded. Later calls on this end fail
    /// with `Closed`. Named pipes: frees the server's instance slot. Idempotent.
    /// Shared pipes: detaches this holder only; the directions close when it was the
    /// last holder of its end.
    pub fn disconnect(&mut self) {
        if self.base.disconnected {
            return;
        }
        self.base.disconnected = true;
        self.close_rings();
    }

    fn close_rings(&mut self) {
        self.io.as_dyn().leave(&mut self.base);
    }
}

impl Base {
    /// An exclusive end leaves, its rings closed: a half of a split end drops its
    /// share of the guard (the last half closes the end); a whole end is marked gone
    /// and frees a named pipe's instance slot.
    pub(super) fn leave_exclusive(&mut self) {
        if let Some(guard) = self.split_guard.take() {
            drop(guard);
            return;
        }
        self.state
            .end(self.side)
            .status
            .store(END_GONE, Ordering::Release);
        self.release_link();
    }

    /// Named pipes: gives up this end's hold on the server's instance slot (freed
    /// once both ends let go).
    pub(super) fn release_link(&mut self) {
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
