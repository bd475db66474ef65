//! Answering a request: a reply (inline, through a view, or written in place into a
//! loan of the server's view heap), "no reply" when an `Incoming` is dropped
//! unanswered, and a failure record when the reply cannot be sent, so the caller never
//! waits for an answer that will not come.

use super::*;
use crate::port::heap::Block;
use crate::port::lent::Loan;

/// What a request is answered with.
enum Answer<'a> {
    /// Nothing: the request was dropped unanswered ("no reply").
    Nothing,
    /// The reply's bytes, copied inline or into a view.
    Bytes(&'a [u8]),
    /// A block of the server's heap holding the reply, held by this process.
    Loaned(Block),
}

impl Responder {
    fn finish(&mut self, answer: Answer<'_>) -> Result<()> {
        if let Err(e) = self.settle() {
            if let Answer::Loaned(b) = answer {
                self.server.heap.table().free(&b, self.server.me);
            }
            return Err(e);
        }
        let sent = match answer {
            Answer::Nothing => {
                return self
                    .conn
                    .write_record(wire::KIND_NO_REPLY, self.id, Body::None)
            }
            Answer::Bytes(b) => self.server.send_reply(&self.conn, self.id, b),
            Answer::Loaned(b) => self.server.send_view_reply(&self.conn, self.id, b),
        };
        match sent {
            Err(e) if !matches!(e, Error::Closed | Error::PeerDied) => {
                // The caller must not wait for a reply that will never come.
                let _ = self.fail(&e);
                Err(e)
            }
            r => r,
        }
    }

    /// Ends the request's time in flight: `Ok` if an answer is to be sent now.
    fn settle(&mut self) -> Result<()> {
        if !self.pending {
            return Err(Error::InvalidArgument {
                what: "only a request can be replied to, once".into(),
            });
        }
        self.pending = false;
        let cancelled = {
            let mut calls = self.conn.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.inflight.remove(&self.id);
            calls.cancelled.remove(&self.id)
        };
        if cancelled {
            return Err(Error::Cancelled);
        }
        if self.conn.dead.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Tells the client that the reply to its call could not be sent, and why.
    fn fail(&self, e: &Error) -> Result<()> {
        let mut text = e.to_string();
        // The record must fit a ring record (`record_max`).
        let room = self.server.cfg.record_max() - wire::HEADER_LEN;
        let mut cut = text.len().min(wire::FAILURE_TEXT_MAX).min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        self.conn.write_record(
            wire::KIND_REPLY_FAILED,
            self.id,
            Body::Inline(text.as_bytes()),
        )
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.pending {
            let _ = self.finish(Answer::Nothing);
        }
    }
}

impl ServerState {
    /// Sends reply `bytes` to call `id`: inline up to `inline_max`, else copied into a
    /// view of the server's heap.
    fn send_reply(&self, conn: &ServerConn, id: u64, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.cfg.max_message {
            return Err(Error::MessageTooLarge {
                len: bytes.len(),
                max: self.cfg.max_message,
            });
        }
        if bytes.len() <= self.cfg.inline_max {
            return conn.write_record(wire::KIND_REPLY, id, Body::Inline(bytes));
        }
        let block = self
            .heap
            .alloc(bytes.len() as u64, self.me, Deadline::never(), || {
                conn.check_alive()
            })?;
        self.heap.write(&block, 0, bytes);
        self.send_view_reply(conn, id, block)
    }

    /// Sends block `b` of the server's heap (held by this process) as the reply to
    /// call `id`: hands it to the client, then sends its descriptor. On failure the
    /// block is freed (or taken back from the client and freed).
    fn send_view_reply(&self, conn: &ServerConn, id: u64, b: Block) -> Result<()> {
        if let Err(e) = self.heap.table().hand_over(&b, self.me, conn.client) {
            self.heap.table().free(&b, self.me);
            return Err(e.into());
        }
        if let Err(e) = conn.write_record(wire::KIND_REPLY, id, Body::View(b.descriptor())) {
            self.heap
                .table()
                .take_back_and_free(&b, conn.client, self.me);
            return Err(e);
        }
        Ok(())
    }
}

impl Incoming {
    /// Replies to the request: inline up to `inline_max`, else through a view of the
    /// server's heap. `Cancelled` if the client cancelled the call (nothing is sent);
    /// `Closed`/`PeerDied` if the client is gone; `InvalidArgument` for a datagram.
    /// Any other failure (`MessageTooLarge` above `max_message`, no room in the view
    /// heap…) is returned here and reaches the caller at once as
    /// [`Error::ReplyFailed`](crate::Error::ReplyFailed) with its text.
    pub fn reply(mut self, bytes: &[u8]) -> Result<()> {
        self.responder.finish(Answer::Bytes(bytes))
    }

    /// Lends `len` bytes of the server's view heap for a reply written in place: fill
    /// [`Loan::as_mut_slice`], then [`reply_loaned`](Self::reply_loaned) sends
    /// it without a copy (the client reads it where it lies). Waits until `deadline`
    /// for room in the heap, as long as the client lives. Dropping the loan unsent
    /// gives the room back.
    ///
    /// ```no_run
    /// # fn main() -> culvert::Result<()> {
    /// use culvert::port::{PortOptions, PortServer};
    /// use culvert::Deadline;
    ///
    /// let server = PortServer::create("tiles", &PortOptions::default())?;
    /// let incoming = server.receive(Deadline::never())?;
    /// let mut loan = incoming.loan_reply(1 << 20, Deadline::never())?;
    /// loan.as_mut_slice().fill(0x5a); // render the reply in place
    /// incoming.reply_loaned(loan)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a datagram; `MessageTooLarge` above the port's
    /// `max_message` or the heap's size; `Timeout`; `Closed` or `PeerDied` if the
    /// client is gone.
    pub fn loan_reply(&self, len: usize, deadline: impl Into<Deadline>) -> Result<Loan> {
        let r = &self.responder;
        if !r.pending {
            return Err(Error::InvalidArgument {
                what: "only a request can be replied to".into(),
            });
        }
        let (server, max) = (&r.server, r.server.cfg.max_message);
        Loan::borrow(
            server.clone(),
            &server.heap,
            server.me,
            len,
            max,
            deadline.into(),
            || r.conn.check_alive(),
        )
    }

    /// Replies with the bytes written into `loan` (see
    /// [`loan_reply`](Self::loan_reply)): the client gets them as a view of the
    /// server's heap, not copied. Unsent (on an error) the loan's room goes back.
    ///
    /// # Errors
    /// As [`reply`](Self::reply); `InvalidArgument` for a loan this port did not lend
    /// (another port's, or a client's request loan), which like any failure to reply
    /// reaches the caller as [`Error::ReplyFailed`](crate::Error::ReplyFailed).
    pub fn reply_loaned(mut self, mut loan: Loan) -> Result<()> {
        if !loan.lent_by(&self.responder.server) {
            // Dropped with the error, the loan goes back to the heap that lent it.
            let e = Error::InvalidArgument {
                what: "a reply loan is sent by the port that lent it".into(),
            };
            if self.responder.settle().is_ok() {
                let _ = self.responder.fail(&e);
            }
            return Err(e);
        }
        let Some(block) = loan.take() else {
            return Err(Error::Closed);
        };
        self.responder.finish(Answer::Loaned(block))
    }

    /// Whether the client cancelled this call (a reply would be dropped).
    pub fn is_cancelled(&self) -> bool {
        self.responder
            .conn
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancelled
            .contains(&self.id)
    }

    /// The client's process id.
    pub fn client_pid(&self) -> u32 {
        ProcessIdentity::from_packed(self.responder.conn.client).pid
    }
}
