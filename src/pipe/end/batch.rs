//! Batches on message pipes: [`PipeEnd::write_messages`] (many messages, one publish)
//! and [`PipeEnd::read_messages`] (many messages read in place, one release).
//!
//! On a plain (not shared) message pipe a message that fits one fragment (up to a
//! quarter of the ring, see [`PipeEnd::max_nonblocking_message`]) is one ring record.
//! A batch write commits such records without publishing each and publishes them with
//! one store of the ring's tail, so the reader sees them together and is woken once; a
//! batch read hands each such record's payload to the caller where it lies in the
//! ring and gives the room of all of them back with one store of the head. A message
//! of several fragments, and every message of a byte or shared pipe, goes through
//! [`write_message`](PipeEnd::write_message) / [`read_message`](PipeEnd::read_message)
//! inside the batch, so both calls work on every pipe with the same meaning.
//!
//! A batch never holds messages back: a write that finds the ring full publishes what
//! it committed before it waits or returns, and a read that finds nothing more gives
//! the room back before it returns.
//!
//! [`PipeEnd::reserve_message`] is the zero-copy form of a write: room for a message
//! of one fragment in the ring, filled in place and committed.

use super::super::layout::FRAG_HEADER;
use super::fragments::{fill_whole, header, whole_message};
use super::{Io, PipeEnd};
use crate::{Error, Result};

/// Room for one message in a message pipe's ring, filled in place (see
/// [`PipeEnd::reserve_message`]). Dropping it without [`commit`](Self::commit) writes
/// nothing.
pub struct MessageGrant<'a> {
    /// The ring grant: the fragment header's 8 bytes, then the payload.
    grant: culvert_ring::spsc::MessageGrant<'a>,
}

impl MessageGrant<'_> {
    /// The message bytes, to fill in place. Their initial contents are unspecified.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.grant.as_mut_slice()[FRAG_HEADER..]
    }

    /// Bytes reserved.
    pub fn len(&self) -> usize {
        self.grant.len() - FRAG_HEADER
    }

    /// Whether a zero-length message was reserved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends the first `len` bytes (clamped to the reservation) as one message.
    pub fn commit(mut self, len: usize) {
        let len = len.min(self.len());
        self.grant.as_mut_slice()[..FRAG_HEADER].copy_from_slice(&header(true, true, len as u32));
        self.grant.commit(FRAG_HEADER + len);
    }
}

impl std::fmt::Debug for MessageGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageGrant")
            .field("len", &self.len())
            .finish()
    }
}

impl PipeEnd {
    /// Reserves room for a message of up to `len` bytes in the ring, to be written in
    /// place and sent with [`MessageGrant::commit`] (no copy). Waits for room per the
    /// end's mode and write timeout, like [`write_message`](Self::write_message).
    ///
    /// Plain message pipes only, and messages of one fragment (`len` up to
    /// [`max_reserve`](Self::max_reserve), a quarter of the ring); other pipes and
    /// longer messages use `write_message`.
    ///
    /// ```
    /// use culvert::pipe::{self, PipeMode, PipeOptions};
    ///
    /// # fn main() -> culvert::Result<()> {
    /// let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
    /// let mut grant = a.reserve_message(64)?;
    /// let n = grant.as_mut_slice().len().min(5);
    /// grant.as_mut_slice()[..n].copy_from_slice(b"hello");
    /// grant.commit(n);
    /// let mut buf = [0u8; 64];
    /// let got = b.read_message(&mut buf)?;
    /// assert_eq!(&buf[..got.len], b"hello");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` on a byte or shared pipe; `MessageTooLarge` above one
    /// fragment; otherwise as [`write_message`](Self::write_message).
    pub fn reserve_message(&mut self, len: usize) -> Result<MessageGrant<'_>> {
        let PipeEnd { base, io } = self;
        let Io::Messages(f) = io else {
            return Err(Error::InvalidArgument {
                what: "reserve_message needs a plain (not shared) message pipe".into(),
            });
        };
        let max = f.max_reserve();
        if len > max {
            return Err(Error::MessageTooLarge { len, max });
        }
        // An exclusive end's kind needs no word of a gone peer (see `PipeEnd::settle`).
        base.check_writable()?;
        let deadline = base.write_deadline();
        let Some(w) = &mut f.rings.tx else {
            return Err(Error::Closed);
        };
        // Wait for room with a probe reservation, then take the grant for real (the
        // ring's grant borrows the writer, which the wait loop needs too).
        let r = base.ring_op(deadline, |wait| match wait {
            None => w.reserve(FRAG_HEADER + len).map(drop),
            Some(d) => w.wait_for_room(FRAG_HEADER + len, d),
        });
        if let Err(e) = r {
            return Err(base.poison_on(e));
        }
        // Room was just there and only the reader frees or takes it; a ring that
        // breaks here poisons its writer, so later calls report it too.
        let grant = w.reserve(FRAG_HEADER + len).map_err(Error::from)?;
        Ok(MessageGrant { grant })
    }

    /// The longest message [`reserve_message`](Self::reserve_message) takes (one
    /// fragment); 0 on byte and shared pipes.
    pub fn max_reserve(&self) -> usize {
        match &self.io {
            Io::Messages(f) => f.max_reserve(),
            _ => 0,
        }
    }

    /// Writes the messages of `msgs` in order, as
    /// [`write_message`](Self::write_message) would one by one, but publishing them to
    /// the reader in batches (one store and one wake-up for all that fit the ring).
    ///
    /// Returns how many were written: all of them in blocking mode; in non-blocking
    /// mode as many as fit now (`WouldBlock` if not even the first did). An error after
    /// some were written ends the call early with their count; the next call reports
    /// it.
    ///
    /// ```
    /// use culvert::pipe::{self, PipeMode, PipeOptions};
    ///
    /// # fn main() -> culvert::Result<()> {
    /// let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
    /// assert_eq!(a.write_messages(&[b"one", b"two", b"three"])?, 3);
    /// let mut got = Vec::new();
    /// while got.len() < 3 {
    ///     b.read_messages(16, |m| got.push(m.to_vec()))?;
    /// }
    /// assert_eq!(got, [&b"one"[..], b"two", b"three"]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`write_message`](Self::write_message), when no message was written.
    pub fn write_messages(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        let mut written = 0;
        let r = self.write_batch(msgs, &mut written);
        if let Io::Messages(f) = &mut self.io {
            f.publish_staged();
        }
        match r {
            Err(e) if written == 0 => Err(e),
            _ => Ok(written),
        }
    }

    fn write_batch(&mut self, msgs: &[&[u8]], written: &mut usize) -> Result<()> {
        if !matches!(self.io, Io::Messages(_)) {
            for m in msgs {
                self.write_message(m)?;
                *written += 1;
            }
            return Ok(());
        }
        self.check_writable()?;
        for m in msgs {
            if self.stage(m)? {
                *written += 1;
                continue;
            }
            // No room now, or several fragments: the usual write (which publishes the
            // batch first, as every publish covers what was committed before it, and
            // waits in blocking mode).
            self.write_message(m)?;
            *written += 1;
        }
        Ok(())
    }

    /// Commits `m` as one record without publishing it; `false` if it takes several
    /// fragments or the ring has no room for it now (the batch so far is then
    /// published).
    fn stage(&mut self, m: &[u8]) -> Result<bool> {
        let Io::Messages(f) = &mut self.io else {
            return Ok(false);
        };
        let Some(w) = &mut f.rings.tx else {
            return Ok(false);
        };
        if m.len() > f.frag_payload {
            return Ok(false);
        }
        match w.reserve(FRAG_HEADER + m.len()) {
            Ok(grant) => {
                fill_whole(grant, m).commit_deferred();
                Ok(true)
            }
            Err(culvert_ring::Error::WouldBlock) => Ok(false),
            Err(e) => Err(self.base.poison_on(e.into())),
        }
    }

    /// Hands up to `max` whole messages to `f`, in order, and returns how many.
    ///
    /// Waits (per the end's mode and read timeout) only for the first message; then
    /// takes what is waiting without waiting. On a plain message pipe each message of
    /// one fragment is handed over where it lies in the ring (no copy) and the room of
    /// all of them goes back to the writer at once; other messages are assembled first.
    /// A message `f` receives is always whole, however long (up to `max_message`).
    ///
    /// Use either this or [`read_message`](Self::read_message) on an end, not both: a
    /// message this call began and could not finish without waiting (non-blocking mode
    /// or a timeout) is kept and delivered whole by its next call.
    ///
    /// # Errors
    /// As [`read_message`](Self::read_message), when no message was handed over.
    pub fn read_messages(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize> {
        let mut taken = 0;
        let r = self.read_batch(max, &mut f, &mut taken);
        if let Io::Messages(f) = &mut self.io {
            f.release_consumed();
        }
        match r {
            Err(e) if taken == 0 => Err(e),
            _ => Ok(taken),
        }
    }

    fn read_batch(
        &mut self,
        max: usize,
        f: &mut impl FnMut(&[u8]),
        taken: &mut usize,
    ) -> Result<()> {
        while *taken < max {
            let at_boundary = self.base.partial.is_empty() && !self.io.as_dyn_ref().in_message();
            if at_boundary && self.take_in_place(f)? {
                *taken += 1;
                continue;
            }
            if *taken > 0 {
                // Only the first message may wait or need assembling.
                break;
            }
            if let (true, Io::Messages(framed)) = (at_boundary, &mut self.io) {
                // Wait for the first message where it will lie, and take it in place
                // if it is whole: no buffer to assemble it in.
                let deadline = self.base.read_deadline();
                let r = framed.head_fragment(&mut self.base, Some(deadline));
                self.settle(r)?;
                if self.take_in_place(f)? {
                    *taken += 1;
                    continue;
                }
            }
            let msg = self.read_whole()?;
            f(&msg);
            *taken += 1;
        }
        Ok(())
    }

    /// Hands the message at the ring's head to `f` in place if it is one whole
    /// fragment, consuming it without releasing its room yet. `false` if there is none
    /// now or it is anything else (left for [`read_whole`](Self::read_whole), which
    /// validates it).
    fn take_in_place(&mut self, f: &mut impl FnMut(&[u8])) -> Result<bool> {
        let Io::Messages(framed) = &mut self.io else {
            return Ok(false);
        };
        let Some(r) = &mut framed.rings.rx else {
            return Ok(false);
        };
        let grant = match r.read_grant() {
            Ok(g) => g,
            Err(
                culvert_ring::Error::WouldBlock
                | culvert_ring::Error::Closed
                | culvert_ring::Error::PeerDied,
            ) => return Ok(false),
            Err(e) => return Err(self.base.poison_on(e.into())),
        };
        let Some(payload) = whole_message(grant.as_slice(), self.base.max_message) else {
            return Ok(false);
        };
        f(payload);
        grant.consume_deferred();
        Ok(true)
    }

    /// Reads one whole message (waiting per the end's settings), continuing one a
    /// previous call began.
    fn read_whole(&mut self) -> Result<Vec<u8>> {
        let mut out = std::mem::take(&mut self.base.partial);
        let chunk = self.max_reserve().max(4096);
        loop {
            let start = out.len();
            out.resize(start + chunk, 0);
            match self.read_message(&mut out[start..]) {
                Ok(r) => {
                    out.truncate(start + r.len);
                    if !r.more {
                        return Ok(out);
                    }
                }
                Err(e) => {
                    out.truncate(start);
                    if matches!(e, Error::WouldBlock | Error::Timeout) {
                        self.base.partial = out;
                    }
                    return Err(e);
                }
            }
        }
    }
}
