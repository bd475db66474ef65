//! Answering a request: a reply (inline or through a view), "no reply" when an
//! `Incoming` is dropped unanswered, and a failure record when the reply cannot be
//! sent, so the caller never waits for an answer that will not come.

use super::*;

impl Responder {
    fn finish(&mut self, bytes: Option<&[u8]>) -> Result<()> {
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
        match bytes {
            Some(b) => match self.server.send_reply(&self.conn, self.id, b) {
                Err(e) if !matches!(e, Error::Closed | Error::PeerDied) => {
                    // The caller must not wait for a reply that will never come.
                    let _ = self.fail(&e);
                    Err(e)
                }
                r => r,
            },
            None => self
                .conn
                .write_record(wire::KIND_NO_REPLY, self.id, Body::None),
        }
    }
}

impl Responder {
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
            let _ = self.finish(None);
        }
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
        self.responder.finish(Some(bytes))
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
