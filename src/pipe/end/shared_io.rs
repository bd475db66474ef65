//! Shared mode I/O of a [`PipeEnd`](super::PipeEnd): each direction is an MPMC ring, so several
//! holders of an end (threads or processes) read and write it at once.
//!
//! A message pipe carries one ring message per pipe message; a byte pipe carries
//! records of up to the ring's atomic write size. An MPMC ring cannot show a message
//! without taking it, so a short read or a `peek` takes the whole next message out of
//! the ring into this holder's [`SharedState`] buffer: it is this holder's to read from
//! then on (other holders will not get it), zero-length messages included.

use culvert_ring::{mpmc, Endpoint, WriteEndpoint};
use culvert_sync::{Deadline, Waitable};

use super::super::options::{MessageRead, Peek};
use super::super::shared::{self, HolderView};
use super::bytes::byte_pipe_io;
use super::rings::{Duplex, EndIo, Rings};
use super::{Base, Io};
use crate::{Error, Result};

/// A shared end: one holder's rings and state.
pub(super) struct Holder<W, R> {
    pub rings: Duplex<W, R>,
    pub state: SharedState,
}

/// The MPMC reader of a shared end: it can free the ring slots of dead holders.
pub(super) trait SharedReader: Endpoint + Waitable {
    /// See `mpmc::MessageReader::reclaim_dead`.
    fn reclaim_dead(&self) -> culvert_ring::Result<usize>;
}

impl SharedReader for mpmc::ByteReader {
    fn reclaim_dead(&self) -> culvert_ring::Result<usize> {
        mpmc::ByteReader::reclaim_dead(self)
    }
}

impl SharedReader for mpmc::MessageReader {
    fn reclaim_dead(&self) -> culvert_ring::Result<usize> {
        mpmc::MessageReader::reclaim_dead(self)
    }
}

/// Shared mode: this holder's word, and the message taken out of the ring whose end
/// it has not read yet.
pub(super) struct SharedState {
    pub holders: HolderView,
    /// Our holder word: index and value.
    pub index: usize,
    pub word: u64,
    /// A message taken whole from the ring is held and not read to its end (it may
    /// be zero-length). Invariant: `!held` implies `start == end`.
    pub held: bool,
    /// Message pipes: the held message's unread bytes are `rest[start..end]`.
    /// Allocated once at attach (`max_message` bytes). Invariant:
    /// `start <= end <= rest.len()`.
    pub rest: Box<[u8]>,
    pub start: usize,
    pub end: usize,
}

impl SharedState {
    pub(super) fn new(holders: HolderView, index: usize, word: u64, rest_len: usize) -> Self {
        Self {
            holders,
            index,
            word,
            held: false,
            rest: vec![0u8; rest_len].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Moves held bytes into `buf`; returns how many and whether more remain. Reading
    /// the last byte (or a zero-length message) releases the message.
    fn take(&mut self, buf: &mut [u8]) -> MessageRead {
        let k = self.buffered().min(buf.len());
        buf[..k].copy_from_slice(&self.rest[self.start..self.start + k]);
        self.start += k;
        self.held = self.start < self.end;
        MessageRead {
            len: k,
            more: self.held,
        }
    }

    /// Holds a message just taken from the ring, `r` bytes of it not yet read.
    fn hold(&mut self, r: usize) {
        self.start = 0;
        self.end = r;
        self.held = true;
    }
}

/// Reports slots of dead holders freed by a reclaim.
fn reclaimed(r: culvert_ring::Result<usize>) {
    if let Ok(slots) = r {
        if slots > 0 {
            crate::trace::event!(INFO, slots, "reclaimed ring slots of dead pipe holders");
        }
    }
}

/// Copies a message taken from the ring: what fits into `buf`, the rest into `rest`
/// (which holds `max_message` bytes). Returns (bytes in `buf`, bytes in `rest`).
fn split_message(msg: &[u8], buf: &mut [u8], rest: &mut [u8]) -> (usize, usize) {
    let k = msg.len().min(buf.len());
    buf[..k].copy_from_slice(&msg[..k]);
    let r = (msg.len() - k).min(rest.len());
    rest[..r].copy_from_slice(&msg[k..k + r]);
    (k, r)
}

impl<W: WriteEndpoint, R: SharedReader> Holder<W, R> {
    /// Closes both rings for everyone (the other end is gone, or this was the last
    /// holder of its end) and frees the slots of dead holders, so what was committed
    /// drains.
    fn close_rings(&mut self) {
        self.rings.close();
        if let Some(r) = &self.rings.rx {
            reclaimed(r.reclaim_dead());
        }
    }

    /// This holder leaves: the rings close only when it was the last one.
    fn leave_end(&mut self, base: &mut Base) {
        let sh = &self.state;
        if shared::detach_holder(&base.state, &sh.holders, base.side, sh.index, sh.word) {
            self.close_rings();
        }
        base.release_link();
    }
}

/// What every shared kind does alike: closing when the peer goes, leaving, the halves.
macro_rules! holder_common {
    () => {
        fn peer_gone(&mut self) {
            self.close_rings();
        }

        fn leave(&mut self, base: &mut Base) {
            self.leave_end(base);
        }

        fn take_write_half(&mut self) -> Option<Io> {
            None
        }

        fn rings(&self) -> &dyn Rings {
            &self.rings
        }

        fn rings_mut(&mut self) -> &mut dyn Rings {
            &mut self.rings
        }
    };
}

/// Shared byte pipes: records of up to the ring's atomic write size.
impl EndIo for Holder<mpmc::ByteWriter, mpmc::ByteReader> {
    byte_pipe_io!(rings);

    /// The bytes held and committed in the ring.
    fn peek(&mut self, _base: &mut Base) -> Result<Option<Peek>> {
        let Some(r) = &mut self.rings.rx else {
            return Err(Error::Closed);
        };
        let n = r.bytes_available();
        if n == 0 && r.is_closed() && r.bytes_available() == 0 {
            // Closed, and everything committed was read: end of stream.
            return Err(Error::Closed);
        }
        Ok((n > 0).then_some(Peek {
            bytes_available: n,
            next_message_len: None,
        }))
    }

    holder_common!();
}

/// Shared message pipes: one ring message per pipe message.
impl EndIo for Holder<mpmc::MessageWriter, mpmc::MessageReader> {
    fn write(&mut self, base: &mut Base, buf: &[u8], deadline: Deadline) -> Result<usize> {
        if buf.len() > base.max_message {
            return Err(Error::MessageTooLarge {
                len: buf.len(),
                max: base.max_message,
            });
        }
        let Some(w) = &mut self.rings.tx else {
            return Err(Error::Closed);
        };
        base.ring_op(deadline, |wait| match wait {
            None => w.try_write(buf),
            Some(d) => w.write(buf, d),
        })?;
        Ok(buf.len())
    }

    fn read_message(
        &mut self,
        base: &mut Base,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<MessageRead> {
        let sh = &mut self.state;
        if sh.held {
            return Ok(sh.take(buf));
        }
        let Some(c) = &mut self.rings.rx else {
            return Err(Error::Closed);
        };
        let (k, r) = base.ring_op(deadline, |wait| {
            let rest = &mut sh.rest[..];
            let f = |msg: &[u8]| split_message(msg, buf, rest);
            match wait {
                None => c.try_read_with(f),
                Some(d) => c.read_with(f, d),
            }
        })?;
        if r > 0 {
            sh.hold(r);
        }
        Ok(MessageRead {
            len: k,
            more: r > 0,
        })
    }

    /// What is held and the messages committed now, across boundaries (waiting only
    /// for the first).
    fn read_bytes(&mut self, base: &mut Base, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        let mut pos = self.read_message(base, buf, deadline)?.len;
        while pos < buf.len() && !self.state.held {
            let (Some(c), sh) = (&mut self.rings.rx, &mut self.state) else {
                break;
            };
            let rest = &mut sh.rest[..];
            let dst = &mut buf[pos..];
            match c.try_read_with(|msg| split_message(msg, dst, rest)) {
                Ok((k, r)) => {
                    if r > 0 {
                        sh.hold(r);
                    }
                    pos += k;
                }
                Err(culvert_ring::Error::Corrupted { what }) => {
                    return Err(Error::Corrupted { what: what.into() })
                }
                Err(_) => break,
            }
        }
        Ok(pos)
    }

    /// Takes the next message out of the ring into this holder's buffer (see the
    /// module doc).
    fn peek(&mut self, _base: &mut Base) -> Result<Option<Peek>> {
        let Some(c) = &mut self.rings.rx else {
            return Err(Error::Closed);
        };
        let sh = &mut self.state;
        if !sh.held {
            take_for_peek(c, sh)?;
        }
        let n = sh.buffered();
        Ok(sh.held.then_some(Peek {
            bytes_available: n,
            next_message_len: Some(n),
        }))
    }

    fn in_message(&self) -> bool {
        self.state.held
    }

    holder_common!();
}

/// Takes the next message (if any is committed) out of the ring into `sh`'s buffer.
fn take_for_peek(c: &mut mpmc::MessageReader, sh: &mut SharedState) -> Result<()> {
    let rest = &mut sh.rest[..];
    match c.try_read_with(|msg| split_message(msg, &mut [], rest)) {
        Ok((_, r)) => {
            sh.hold(r);
            Ok(())
        }
        Err(culvert_ring::Error::Corrupted { what }) => Err(Error::Corrupted { what: what.into() }),
        // Closed, and everything committed was taken: end of stream.
        Err(culvert_ring::Error::Closed) => Err(Error::Closed),
        Err(_) => Ok(()),
    }
}
