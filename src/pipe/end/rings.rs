//! The kinds of pipe end and the one interface the end's calls use on them.
//!
//! An end's kind is fixed when it attaches ([`Io`]): exclusive (one holder, SPSC
//! rings) or shared (any number of holders, MPMC rings), each in byte or message mode.
//! Each kind is one type holding its two rings (a [`Duplex`], seen through [`Rings`])
//! and the state only that kind needs; all of them implement [`EndIo`]. A call of
//! [`PipeEnd`](super::PipeEnd) checks what every kind checks (usable, peer) on its
//! [`Base`], then hands the work to its kind through [`Io::as_dyn`] together with the
//! base, through which the kind waits ([`Base::ring_op`]) and checks the peer. So no
//! call matches on a kind it cannot be.
//!
//! A split end's halves hold the same kind with one ring given away (`None`).

use culvert_ring::{Endpoint, WriteEndpoint};
use culvert_sync::{Deadline, Notifier, WaitStrategy, Waitable};

use super::super::options::{MessageRead, Peek};
use super::{Base, Io};
use crate::Result;

/// What an end does with its rings, whatever its kind. `base` is the end's
/// [`Base`]: its settings, and the waiting and peer checks the kind goes through.
/// Outcomes are the pipe's (see the calls of `PipeEnd` of the same names); a
/// corruption is passed on, and the caller poisons the end.
pub(super) trait EndIo {
    /// Writes one message (message pipes) or bytes (byte pipes), waiting per `deadline`
    /// (see `PipeEnd::write_message`). The caller checked the end and the peer.
    fn write(&mut self, base: &mut Base, buf: &[u8], deadline: Deadline) -> Result<usize>;

    /// Reads (part of) the next message into a non-empty `buf` (a byte pipe: what is
    /// available, never `more`).
    fn read_message(
        &mut self,
        base: &mut Base,
        buf: &mut [u8],
        deadline: Deadline,
    ) -> Result<MessageRead>;

    /// Byte read mode: at least one byte into a non-empty `buf`, across message
    /// boundaries, waiting only for the first.
    fn read_bytes(&mut self, base: &mut Base, buf: &mut [u8], deadline: Deadline) -> Result<usize>;

    /// What is waiting, never waiting; `None` when nothing is.
    fn peek(&mut self, base: &mut Base) -> Result<Option<Peek>>;

    /// Whether part of a message was read and the rest of it remains.
    fn in_message(&self) -> bool;

    /// The peer end was seen gone (called once it was; idempotent).
    fn peer_gone(&mut self) {}

    /// The end leaves its instance (disconnect or drop): closes what this kind closes
    /// when one end (or one holder) goes, and frees what it holds.
    fn leave(&mut self, base: &mut Base);

    /// For a split: gives the ring this end writes away, as an end of the same kind
    /// that only writes. `None` for a shared end (its halves are two holders).
    fn take_write_half(&mut self) -> Option<Io>;

    /// The end's two rings.
    fn rings(&self) -> &dyn Rings;

    /// The end's two rings, to close or configure.
    fn rings_mut(&mut self) -> &mut dyn Rings;
}

/// The two rings of an end: the one it writes and the one it reads. `None` is the
/// half a split end gave away.
pub(super) struct Duplex<W, R> {
    pub tx: Option<W>,
    pub rx: Option<R>,
}

/// The two rings of an end, whatever their ring types. None of these calls waits.
pub(super) trait Rings {
    /// Closes the ring this end writes (the peer drains it, then reads end of stream).
    fn close_write(&mut self);

    /// Closes both rings.
    fn close(&mut self);

    /// How the rings' blocking calls wait.
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);

    /// The notifier of the ring this end reads (none for a write half).
    fn readable_notifiers(&self, f: &mut dyn FnMut(&Notifier));

    /// The notifier of the ring this end writes (none for a read half).
    fn writable_notifiers(&self, f: &mut dyn FnMut(&Notifier));

    /// For a split: drops the ring this end reads (the half that only writes).
    fn drop_read(&mut self);

    /// For a split: drops the ring this end writes (the half that only reads).
    fn drop_write(&mut self);
}

impl<W, R> Duplex<W, R> {
    pub(super) fn new(tx: W, rx: R) -> Self {
        Self {
            tx: Some(tx),
            rx: Some(rx),
        }
    }

    /// The ring this end writes, alone (the write half of a split).
    pub(super) fn take_write_half(&mut self) -> Self {
        Self {
            tx: self.tx.take(),
            rx: None,
        }
    }
}

impl<W: WriteEndpoint, R: Endpoint + Waitable> Rings for Duplex<W, R> {
    fn close_write(&mut self) {
        if let Some(w) = &mut self.tx {
            w.close();
        }
    }

    fn close(&mut self) {
        self.close_write();
        if let Some(r) = &mut self.rx {
            r.close();
        }
    }

    fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        if let Some(w) = &mut self.tx {
            w.set_wait_strategy(strategy);
        }
        if let Some(r) = &mut self.rx {
            r.set_wait_strategy(strategy);
        }
    }

    fn readable_notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        if let Some(r) = &self.rx {
            r.notifiers(f);
        }
    }

    fn writable_notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        if let Some(w) = &self.tx {
            f(w.writable_notifier());
        }
    }

    fn drop_read(&mut self) {
        self.rx = None;
    }

    fn drop_write(&mut self) {
        self.tx = None;
    }
}
