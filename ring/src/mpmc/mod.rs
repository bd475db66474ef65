//! Multi-producer multi-consumer rings: [`MessageRing`] and [`ByteRing`].
//!
//! Both are a bounded queue of `slots` fixed-size slots (a power of two), each big
//! enough for one message of up to `max_message` bytes, after Dmitry Vyukov's bounded
//! MPMC queue. Any number of producers and consumers, in any threads or processes,
//! attach to the same region (up to `max_endpoints` at once). Each message is delivered
//! whole to exactly one consumer; messages of one producer are delivered in the order it
//! sent them (with several consumers, *taken* in that order: two consumers may finish
//! copying out of order).
//!
//! * A claim records the claimer in the slot word itself (position, state and a
//!   participant number in one `u64`), so a producer or consumer killed mid-operation is
//!   found from the slot: its half-written message is skipped and never delivered, a
//!   message it had taken is counted in [`Stats::lost_to_dead_consumers`] and never
//!   delivered again. See `core` for the protocol.
//! * `try_*` calls never sleep, and are linearizable as long as no endpoint stalls
//!   mid-operation for more than about 2 ms: one that finds a slot still held by a
//!   live endpoint finishing its send or receive spins, then yields, for at most that
//!   long before it reports `WouldBlock` (see [`MessageWriter::try_write`]). Blocking calls
//!   take a [`Deadline`](culvert_sync::Deadline) and sleep on the ring's two
//!   [`Notifier`](culvert_sync::Notifier)s (not-empty for consumers, not-full for
//!   producers) through [`culvert_sync::wait_for`].
//! * `close()` from any endpoint: producers then get `Closed`; consumers drain what was
//!   committed and then get `Closed`.
//! * A receive whose buffer is too short gets `BufferTooSmall` and the message stays in
//!   the ring. Nothing allocates per message.
//!
//! Memory is laid out by `init` and validated at every attach (see `control`).

mod byte;
pub(crate) mod control;
mod core;
mod endpoint;
mod message;

pub use byte::{ByteReader, ByteRing, ByteWriter};
pub use message::{MessageReader, MessageRing, MessageWriter};

use control::Layout;

use crate::Result;

/// Participant-table entries when the configuration does not say.
pub const DEFAULT_MAX_ENDPOINTS: usize = 64;

/// How to lay out an MPMC ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Slots; a power of two in `2..=2^24`. The ring holds at most this many messages.
    pub slots: usize,
    /// Largest message ([`MessageRing`]), or largest atomic write (`atomic_write_max`,
    /// [`ByteRing`]); at most 1 GiB. Each slot holds this many bytes.
    pub max_message: usize,
    /// Endpoints that may be attached at once (each producer and consumer takes one
    /// entry); `1..=1023`.
    pub max_endpoints: usize,
}

impl Config {
    /// A message ring of `slots` slots for messages of up to `max_message` bytes.
    pub const fn new(slots: usize, max_message: usize) -> Self {
        Self {
            slots,
            max_message,
            max_endpoints: DEFAULT_MAX_ENDPOINTS,
        }
    }

    /// A byte ring of `slots` records of up to `atomic_write_max` bytes.
    pub const fn bytes(slots: usize, atomic_write_max: usize) -> Self {
        Self::new(slots, atomic_write_max)
    }

    /// The same configuration with room for `max_endpoints` attached endpoints.
    pub const fn with_max_endpoints(mut self, max_endpoints: usize) -> Self {
        self.max_endpoints = max_endpoints;
        self
    }

    fn layout(&self) -> Result<Layout> {
        Layout::compute(self.slots, self.max_message, self.max_endpoints)
    }
}

/// Shared counters of a ring (read with relaxed loads; a snapshot, possibly stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages taken by a consumer that died before finishing, or whose in-place
    /// callback ([`MessageReader::try_read_with`]) panicked: consumed, never delivered again.
    pub lost_to_dead_consumers: u64,
    /// Slots claimed by a producer that died (or unwound) before committing: skipped,
    /// never delivered (the message was never committed, so nothing committed is lost).
    pub abandoned_by_dead_producers: u64,
    /// Slots a producer gave back because the ring was closed while it claimed.
    pub aborted_by_close: u64,
    /// Positions claimed by producers so far (approximately).
    pub enqueue_pos: u64,
    /// Positions claimed by consumers so far (approximately).
    pub dequeue_pos: u64,
}

#[cfg(all(test, not(loom)))]
mod tests;
