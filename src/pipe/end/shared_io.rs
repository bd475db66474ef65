//! Shared mode I/O of a [`PipeEnd`]: each direction is an MPMC ring, so several
//! holders of an end (threads or processes) read and write it at once.
//!
//! A message pipe carries one ring message per pipe message; a byte pipe carries
//! records of up to the ring's atomic write size. An MPMC ring cannot show a message
//! without taking it, so a short read or a `peek` takes the whole next message out of
//! the ring into this holder's [`SharedState`] buffer: it is this holder's to read from
//! then on (other holders will not get it), zero-length messages included.

use culvert_ring::mpmc;
use culvert_sync::Deadline;

use super::super::options::{MessageRead, Peek, PipeMode};
use super::super::shared::HolderView;
use super::{PipeEnd, Rx, Tx};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

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

impl PipeEnd {
    /// The shared state; `Closed` on an end that is not shared (never reached: the
    /// callers dispatch on it).
    fn shared_state(&mut self) -> Result<&mut SharedState> {
        self.shared.as_mut().ok_or(Error::Closed)
    }

    /// Whether this holder holds part of a message (shared mode).
    pub(super) fn shared_holds_message(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.held)
    }

    /// Closes both rings for everyone (the other end is gone, or we were the last
    /// holder of ours) and frees the slots of dead holders, so what was committed
    /// drains.
    pub(super) fn close_shared_rings(&mut self) {
        match &mut self.tx {
            Tx::SharedBytes(w) => w.close(),
            Tx::SharedMessages(w) => w.close(),
            _ => {}
        }
        match &mut self.rx {
            Rx::SharedBytes(r) => {
                r.close();
                reclaimed(r.reclaim_dead());
            }
            Rx::SharedMessages(r) => {
                r.close();
                reclaimed(r.reclaim_dead());
            }
            _ => {}
        }
    }

    /// Message pipes: reads (part of) the next message into `buf`.
    pub(super) fn shared_read_message(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<MessageRead> {
        let sh = self.shared_state()?;
        if sh.held {
            return Ok(sh.take(buf));
        }
        let (k, r) = self.ring_op(deadline, |me, wait| {
            let (Rx::SharedMessages(c), Some(sh)) = (&mut me.rx, me.shared.as_mut()) else {
                return Err(culvert_ring::Error::Closed);
            };
            let rest = &mut sh.rest[..];
            let f = |msg: &[u8]| split_message(msg, buf, rest);
            match wait {
                None => c.try_read_with(f),
                Some(d) => c.read_with(f, d),
            }
        })?;
        let sh = self.shared_state()?;
        if r > 0 {
            sh.hold(r);
        }
        Ok(MessageRead {
            len: k,
            more: r > 0,
        })
    }

    /// Message pipes, byte read mode: what is held and the messages committed now,
    /// across boundaries (waiting only for the first).
    pub(super) fn shared_read_across(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize> {
        let mut pos = 0;
        while pos < buf.len() {
            let m = if pos == 0 {
                self.shared_read_message(buf, deadline)?
            } else {
                let (Rx::SharedMessages(c), Some(sh)) = (&mut self.rx, self.shared.as_mut()) else {
                    break;
                };
                let rest = &mut sh.rest[..];
                let dst = &mut buf[pos..];
                match c.try_read_with(|msg| split_message(msg, dst, rest)) {
                    Ok((k, r)) => {
                        if r > 0 {
                            sh.hold(r);
                        }
                        MessageRead {
                            len: k,
                            more: r > 0,
                        }
                    }
                    Err(culvert_ring::Error::Corrupted { what }) => {
                        return Err(Error::Corrupted { what: what.into() })
                    }
                    Err(_) => break,
                }
            };
            pos += m.len;
            if m.more {
                break;
            }
        }
        Ok(pos)
    }

    /// Byte pipes: the bytes of the records committed now (waiting for the first).
    pub(super) fn shared_read_bytes(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize> {
        self.ring_op(deadline, |me, wait| match (&mut me.rx, wait) {
            (Rx::SharedBytes(r), None) => r.try_read(buf),
            (Rx::SharedBytes(r), Some(d)) => r.read(buf, d),
            _ => Err(culvert_ring::Error::Closed),
        })
    }

    /// A message is one ring message; bytes go in records of up to the atomic write
    /// size (see `write_bytes`).
    pub(super) fn shared_write(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        match self.mode {
            PipeMode::Message => {
                if buf.len() > self.max_message {
                    return Err(Error::MessageTooLarge {
                        len: buf.len(),
                        max: self.max_message,
                    });
                }
                self.ring_op(deadline, |me, wait| match (&mut me.tx, wait) {
                    (Tx::SharedMessages(p), None) => p.try_write(buf),
                    (Tx::SharedMessages(p), Some(d)) => p.write(buf, d),
                    _ => Err(culvert_ring::Error::Closed),
                })?;
                Ok(buf.len())
            }
            PipeMode::Byte => self.write_bytes(buf, deadline),
        }
    }

    /// `peek` in shared mode: a message pipe takes the next message out of the ring
    /// into this holder's buffer (see the module doc); a byte pipe counts the bytes
    /// held and committed in the ring. `None` when nothing is waiting.
    pub(super) fn shared_peek(&mut self) -> Result<Option<Peek>> {
        let Some(sh) = self.shared.as_mut() else {
            return Err(Error::Closed);
        };
        match &mut self.rx {
            Rx::SharedBytes(r) => {
                let n = r.bytes_available();
                Ok((n > 0).then_some(Peek {
                    bytes_available: n,
                    next_message_len: None,
                }))
            }
            Rx::SharedMessages(c) => {
                if !sh.held {
                    take_for_peek(c, sh).map_err(|e| self.poison_on(e))?;
                }
                let sh = self.shared_state()?;
                let n = sh.buffered();
                Ok(sh.held.then_some(Peek {
                    bytes_available: n,
                    next_message_len: Some(n),
                }))
            }
            _ => Err(Error::Closed),
        }
    }
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
        Err(_) => Ok(()),
    }
}
