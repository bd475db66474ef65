//! Message framing on an SPSC message ring: a pipe message is one or more ring
//! records (*fragments*), each an 8-byte header (`flags`: FIRST/LAST, `total_len`) and
//! up to `frag_payload` bytes. The only writer of a direction is one end, so no other
//! writer's fragments come between those of one message.
//!
//! **Writer.** A message is finished once started (the reader may already hold part
//! of it): in blocking mode the write deadline applies to the first fragment, later
//! ones wait until the reader makes room, closes or dies. In non-blocking mode a
//! message of several fragments is written only whole: `WouldBlock` while the ring has
//! less free room than all its fragments take plus one fragment of slack for the
//! padding at the end of a lap (nothing is written then); a message too long to ever fit that
//! way ([`Framed::max_nonblocking_message`]) fails with `MessageTooLarge`. So a
//! non-blocking write never waits and the reader never sees part of a message the
//! writer gave up on.
//!
//! **Reader.** Fragments are read in place (a ring read grant) against a
//! [`MsgCursor`]: a short buffer gets part of a fragment and the fragment stays in the
//! ring until all of it was handed out. Every header is checked against the cursor; a
//! fragment out of sequence is `Corrupted` and poisons the end.

use culvert_ring::spsc;
use culvert_sync::Deadline;

use super::super::layout::{FRAG_FIRST, FRAG_HEADER, FRAG_LAST};

use super::super::options::{MessageRead, Peek};
use super::rings::{Duplex, EndIo, Rings};
use super::{Base, Io};
use crate::{Error, Result};

/// The exclusive message end: its rings and the reader's place in a message.
pub(super) struct Framed {
    pub rings: Duplex<spsc::MessageWriter, spsc::MessageReader>,
    pub cursor: MsgCursor,
    /// Fragment assembly buffer for writes that cannot be reserved in place; sized
    /// once, to one ring record (empty in a read half).
    pub scratch: Vec<u8>,
    /// Largest fragment payload this end writes: the ring's record less the header.
    pub frag_payload: usize,
    /// The pipe's `max_message`: no message, and no fragment header's total, exceeds it.
    pub max_message: usize,
}

/// Where the reader is inside a message.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MsgCursor {
    /// A message was started (bytes of it handed out) and not finished.
    pub in_message: bool,
    /// Its total length (from the fragment headers).
    pub total: usize,
    /// Payload bytes of it handed out so far.
    pub consumed: usize,
    /// Payload bytes of the fragment at the ring's head already handed out (the
    /// fragment stays in the ring until all of it is). Invariant: `frag_off > 0`
    /// implies `in_message`.
    pub frag_off: usize,
}

/// One parsed fragment at the head of the ring.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fragment {
    pub first: bool,
    pub last: bool,
    pub total: usize,
    pub payload: usize,
}

/// The header of a fragment.
pub(super) fn header(first: bool, last: bool, total: u32) -> [u8; FRAG_HEADER] {
    let flags = if first { FRAG_FIRST } else { 0 } | if last { FRAG_LAST } else { 0 };
    let mut h = [0u8; FRAG_HEADER];
    h[..4].copy_from_slice(&flags.to_le_bytes());
    h[4..].copy_from_slice(&total.to_le_bytes());
    h
}

/// The payload of a ring record if it is one whole message: a single fragment, FIRST
/// and LAST, its total length its payload's, within `max_message`. `None` for anything
/// else (left to the general path, which validates against the reader's cursor).
pub(super) fn whole_message(record: &[u8], max_message: usize) -> Option<&[u8]> {
    let (h, payload) = record.split_first_chunk::<FRAG_HEADER>()?;
    let flags = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let total = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    (flags == FRAG_FIRST | FRAG_LAST && total == payload.len() && total <= max_message)
        .then_some(payload)
}

/// A ring grant filled with `msg` as one whole fragment, ready to commit.
pub(super) struct WholeFragment<'a> {
    grant: culvert_ring::spsc::MessageGrant<'a>,
    len: usize,
}

impl WholeFragment<'_> {
    /// Publishes it (one store of the tail, one notify).
    pub(super) fn commit(self) {
        self.grant.commit(self.len);
    }

    /// Commits it without publishing it (see `MessageGrant::commit_deferred`).
    pub(super) fn commit_deferred(self) {
        self.grant.commit_deferred(self.len);
    }
}

/// Fills `grant` (reserved for `FRAG_HEADER + msg.len()` bytes) with `msg` as one whole
/// fragment.
pub(super) fn fill_whole<'a>(
    mut grant: culvert_ring::spsc::MessageGrant<'a>,
    msg: &[u8],
) -> WholeFragment<'a> {
    let dst = grant.as_mut_slice();
    dst[..FRAG_HEADER].copy_from_slice(&header(true, true, msg.len() as u32));
    dst[FRAG_HEADER..FRAG_HEADER + msg.len()].copy_from_slice(msg);
    WholeFragment {
        grant,
        len: FRAG_HEADER + msg.len(),
    }
}

impl Framed {
    /// Ring bytes taken by one full fragment.
    fn full_fragment_record(&self) -> usize {
        culvert_ring::spsc::MessageWriter::record_len(FRAG_HEADER + self.frag_payload)
    }

    /// Publishes the records committed without publishing (a batch write's).
    pub(super) fn publish_staged(&mut self) {
        if let Some(w) = &mut self.rings.tx {
            w.flush();
        }
    }

    /// Gives back the room of the records consumed without releasing (a batch read's).
    pub(super) fn release_consumed(&mut self) {
        if let Some(r) = &mut self.rings.rx {
            r.flush();
        }
    }

    /// The longest message that fits one fragment (what `reserve_message` takes).
    pub(super) fn max_reserve(&self) -> usize {
        self.frag_payload.min(self.max_message)
    }

    /// Message pipes: the longest message a non-blocking write can write whole (see
    /// the module doc); longer ones fail with `MessageTooLarge` in non-blocking mode.
    /// A message of one fragment always qualifies.
    pub(super) fn max_nonblocking_message(&self) -> usize {
        let Some(w) = &self.rings.tx else {
            return self.max_message;
        };
        // The reader may hold up to `reader_batch` bytes read but not yet given back.
        let room = w.capacity() - w.reader_batch();
        let whole = ((room + 8) / self.full_fragment_record()).saturating_sub(1);
        (whole * self.frag_payload)
            .max(self.frag_payload)
            .min(self.max_message)
    }

    /// The per-message fast path of a message that fits one fragment: one try,
    /// never waiting. `None` when the ring lacks room now (the caller then takes the
    /// general path, [`write_fragments`](Self::write_fragments), which waits per the
    /// end's settings). The caller checked `msg` against `max_message`.
    #[inline]
    pub(super) fn try_write_single(&mut self, msg: &[u8]) -> Option<Result<usize>> {
        if msg.len() > self.frag_payload {
            return None;
        }
        let Some(w) = &mut self.rings.tx else {
            return None;
        };
        match w.reserve(FRAG_HEADER + msg.len()) {
            Ok(grant) => {
                fill_whole(grant, msg).commit();
                Some(Ok(msg.len()))
            }
            Err(culvert_ring::Error::WouldBlock) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    /// The per-message fast path of a read: when no message is under way and the head
    /// record is a whole message (one fragment, FIRST and LAST, consistent lengths)
    /// that fits `buf`, copies it out and releases it. `None` in every other case
    /// (nothing committed, a message of several fragments, a short `buf`, anything
    /// inconsistent): the caller takes the general path, which waits, validates and
    /// reports.
    #[inline]
    pub(super) fn try_read_single(&mut self, buf: &mut [u8]) -> Option<MessageRead> {
        if self.cursor.in_message {
            return None;
        }
        let Some(r) = &mut self.rings.rx else {
            return None;
        };
        let grant = r.read_grant().ok()?;
        let payload = whole_message(grant.as_slice(), self.max_message)?;
        if payload.len() > buf.len() {
            return None;
        }
        let len = payload.len();
        buf[..len].copy_from_slice(payload);
        grant.release_batched();
        Some(MessageRead { len, more: false })
    }

    /// Writes `msg` as fragments (see the module doc).
    pub(super) fn write_fragments(
        &mut self,
        base: &mut Base,
        msg: &[u8],
        deadline: Deadline,
    ) -> Result<()> {
        if msg.len() > self.max_message {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max_message,
            });
        }
        let several = msg.len() > self.frag_payload;
        if several && base.nonblocking {
            let max = self.max_nonblocking_message();
            if msg.len() > max {
                return Err(Error::MessageTooLarge {
                    len: msg.len(),
                    max,
                });
            }
            let whole = msg.len() / self.frag_payload;
            let tail = msg.len() % self.frag_payload;
            let full = self.full_fragment_record();
            // Padding at the end of a lap is shorter than the record that did not fit.
            let need = (whole + 1) * full - 8
                + if tail > 0 {
                    culvert_ring::spsc::MessageWriter::record_len(FRAG_HEADER + tail)
                } else {
                    0
                };
            let Some(w) = &mut self.rings.tx else {
                return Err(Error::Closed);
            };
            if w.free_bytes()? < need {
                return Err(Error::WouldBlock);
            }
        }
        let total = msg.len() as u32;
        let mut off = 0usize;
        loop {
            let n = (msg.len() - off).min(self.frag_payload);
            let (first, last) = (off == 0, off + n == msg.len());
            let h = header(first, last, total);
            let payload = &msg[off..off + n];
            // Once started, the message is finished (see the module doc).
            let d = if first { deadline } else { Deadline::never() };
            let Framed { rings, scratch, .. } = &mut *self;
            let Some(w) = &mut rings.tx else {
                return Err(Error::Closed);
            };
            let r = base.ring_op(d, |wait| match (w.reserve(FRAG_HEADER + n), wait) {
                (Ok(mut grant), _) => {
                    let dst = grant.as_mut_slice();
                    dst[..FRAG_HEADER].copy_from_slice(&h);
                    dst[FRAG_HEADER..].copy_from_slice(payload);
                    grant.commit(FRAG_HEADER + n);
                    Ok(())
                }
                (Err(culvert_ring::Error::WouldBlock), Some(d)) => {
                    scratch.clear();
                    scratch.extend_from_slice(&h);
                    scratch.extend_from_slice(payload);
                    w.write(scratch, d)
                }
                (Err(e), _) => Err(e),
            });
            match r {
                Ok(()) => {}
                // Room checked above only grows; losing it means the reader's
                // position went backwards.
                Err(Error::WouldBlock) if !first => {
                    base.poisoned = true;
                    return Err(Error::Corrupted {
                        what: "pipe ring room shrank under a non-blocking message write".into(),
                    });
                }
                Err(e) => return Err(e),
            }
            off += n;
            if last {
                return Ok(());
            }
        }
    }

    /// Parses the fragment at the ring's head against the cursor. Waits until the
    /// deadline if one is given; otherwise `WouldBlock` when none is committed.
    pub(super) fn head_fragment(
        &mut self,
        base: &mut Base,
        deadline: Option<Deadline>,
    ) -> Result<Fragment> {
        let Some(r) = &mut self.rings.rx else {
            return Err(Error::Closed);
        };
        match deadline {
            Some(d) => {
                base.ring_op(d, |wait| match wait {
                    None => r.peek_len(),
                    Some(d) => r.wait_peek_len(d),
                })?;
            }
            None => {
                r.peek_len()?;
            }
        }
        let grant = r.read_grant()?;
        let bytes = grant.as_slice();
        let bad = |what: &str| Error::Corrupted {
            what: format!("pipe fragment: {what}"),
        };
        if bytes.len() < FRAG_HEADER {
            return Err(bad("shorter than its header"));
        }
        let flags = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let total = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let payload = bytes.len() - FRAG_HEADER;
        let f = Fragment {
            first: flags & FRAG_FIRST != 0,
            last: flags & FRAG_LAST != 0,
            total,
            payload,
        };
        let c = &self.cursor;
        let ok = flags & !(FRAG_FIRST | FRAG_LAST) == 0
            && total <= self.max_message
            && if c.in_message {
                // frag_off > 0: the head is the fragment we are part-way through (it
                // may be the FIRST one); otherwise a continuation.
                (c.frag_off > 0 || !f.first)
                    && total == c.total
                    && c.consumed - c.frag_off + payload <= total
            } else {
                f.first && payload <= total
            }
            && (!f.last || {
                let before = if c.in_message {
                    c.consumed - c.frag_off
                } else {
                    0
                };
                before + payload == total
            })
            && c.frag_off <= payload;
        if !ok {
            return Err(bad("out of sequence or lengths inconsistent"));
        }
        Ok(f)
    }

    /// Copies from the head fragment into `buf`; returns (bytes copied, message
    /// done). Copying nothing of a fragment that has bytes changes nothing.
    pub(super) fn take_from_fragment(
        &mut self,
        f: Fragment,
        buf: &mut [u8],
    ) -> Result<(usize, bool)> {
        let Some(r) = &mut self.rings.rx else {
            return Err(Error::Closed);
        };
        let c = &mut self.cursor;
        let k = buf.len().min(f.payload - c.frag_off);
        if k == 0 && f.payload > c.frag_off {
            return Ok((0, false));
        }
        if !c.in_message {
            *c = MsgCursor {
                in_message: true,
                total: f.total,
                consumed: 0,
                frag_off: 0,
            };
        }
        let grant = r.read_grant()?;
        let bytes = grant.as_slice();
        if bytes.len() != FRAG_HEADER + f.payload {
            return Err(Error::Corrupted {
                what: "pipe fragment changed under the reader".into(),
            });
        }
        let src = FRAG_HEADER + c.frag_off;
        buf[..k].copy_from_slice(&bytes[src..src + k]);
        c.frag_off += k;
        c.consumed += k;
        if c.frag_off == f.payload {
            grant.release();
            c.frag_off = 0;
            if f.last {
                *c = MsgCursor::default();
                return Ok((k, true));
            }
        }
        Ok((k, false))
    }

    /// Reads (part of) the next message into a non-empty `buf` (see
    /// `PipeEnd::read_message`).
    pub(super) fn read_fragments(
        &mut self,
        base: &mut Base,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<MessageRead> {
        let mut pos = 0;
        loop {
            let f = match self.head_fragment(base, Some(deadline)) {
                Ok(f) => f,
                Err(e) if pos > 0 && !matches!(e, Error::Corrupted { .. }) => {
                    return Ok(MessageRead {
                        len: pos,
                        more: true,
                    })
                }
                Err(e) => return Err(e),
            };
            let (k, done) = self.take_from_fragment(f, &mut buf[pos..])?;
            pos += k;
            if done || pos == buf.len() {
                return Ok(MessageRead {
                    len: pos,
                    more: !done,
                });
            }
        }
    }

    /// Byte read mode on a message pipe: the bytes of the fragments committed now,
    /// across message boundaries (waiting only for the first).
    pub(super) fn read_fragments_across(
        &mut self,
        base: &mut Base,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize> {
        let mut pos = 0;
        while pos < buf.len() {
            let wait = if pos == 0 { Some(deadline) } else { None };
            let f = match self.head_fragment(base, wait) {
                Ok(f) => f,
                Err(e) if pos > 0 && !matches!(e, Error::Corrupted { .. }) => break,
                Err(e) => return Err(e),
            };
            let (k, _) = self.take_from_fragment(f, &mut buf[pos..])?;
            pos += k;
        }
        Ok(pos)
    }
}

impl EndIo for Framed {
    fn write(&mut self, base: &mut Base, buf: &[u8], deadline: Deadline) -> Result<usize> {
        self.write_fragments(base, buf, deadline)?;
        Ok(buf.len())
    }

    fn read_message(
        &mut self,
        base: &mut Base,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<MessageRead> {
        self.read_fragments(base, buf, deadline)
    }

    fn read_bytes(&mut self, base: &mut Base, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        self.read_fragments_across(base, buf, deadline)
    }

    /// The rest of the message under way, else the next one's length and first
    /// fragment.
    fn peek(&mut self, base: &mut Base) -> Result<Option<Peek>> {
        let c = self.cursor;
        match self.head_fragment(base, None) {
            Ok(f) if c.in_message => Ok(Some(Peek {
                bytes_available: f.payload - c.frag_off,
                next_message_len: Some(c.total - c.consumed),
            })),
            Ok(f) => Ok(Some(Peek {
                bytes_available: f.payload,
                next_message_len: Some(f.total),
            })),
            // Between messages, a drained ring whose writer closed or died is the end
            // of the stream.
            Err(e @ (Error::Closed | Error::PeerDied)) if !c.in_message => Err(e),
            Err(Error::WouldBlock | Error::Closed | Error::PeerDied) => {
                Ok(c.in_message.then_some(Peek {
                    bytes_available: 0,
                    next_message_len: Some(c.total - c.consumed),
                }))
            }
            Err(e) => Err(e),
        }
    }

    fn in_message(&self) -> bool {
        self.cursor.in_message
    }

    fn leave(&mut self, base: &mut Base) {
        self.rings.close();
        base.leave_exclusive();
    }

    fn take_write_half(&mut self) -> Option<Io> {
        Some(Io::Messages(Framed {
            rings: self.rings.take_write_half(),
            cursor: MsgCursor::default(),
            scratch: std::mem::take(&mut self.scratch),
            frag_payload: self.frag_payload,
            max_message: self.max_message,
        }))
    }

    fn rings(&self) -> &dyn Rings {
        &self.rings
    }

    fn rings_mut(&mut self) -> &mut dyn Rings {
        &mut self.rings
    }
}
