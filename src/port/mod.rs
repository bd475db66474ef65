//! Ports: ALPC-like local request/reply (after Windows' Advanced Local Procedure Call).
//!
//! A server creates a named port with [`PortServer::create`]; clients
//! [`PortClient::connect`] with a connect payload and get the server's accept payload,
//! or `Error::Rejected` with its reason. Clients then
//! [`call`](PortClient::call) (synchronous), [`call_async`](PortClient::call_async)
//! (with [`PendingCall::wait`], [`try_wait`](PendingCall::try_wait),
//! [`cancel`](PendingCall::cancel)) or [`send_datagram`](PortClient::send_datagram).
//! Server threads [`receive`](PortServer::receive) [`Incoming`] messages and
//! [`reply`](Incoming::reply). A large message can be written in place in shared
//! memory, with no copy on the sender's side: [`PortClient::loan`] and
//! [`call_loaned`](PortClient::call_loaned) for a request, [`Incoming::loan_reply`] and
//! [`reply_loaned`](Incoming::reply_loaned) for a reply.
//!
//! ```no_run
//! use culvert::port::{PortClient, PortOptions, PortServer};
//! use culvert::Deadline;
//! # fn main() -> culvert::Result<()> {
//! let server = PortServer::create("calc", &PortOptions::default())?;
//! // elsewhere: let (client, hello) = PortClient::connect("calc", b"hi", Deadline::never())?;
//! let req = server.listen(Deadline::never())?;
//! req.accept(b"welcome")?;
//! let incoming = server.receive(Deadline::never())?;
//! let answer = incoming.payload.to_vec();
//! incoming.reply(&answer)?;
//! # Ok(()) }
//! ```
//!
//! ## Design
//!
//! Everything travels through sections and rings:
//!
//! * **Server section** `<name>` (kind `Port`): object `port` (`PortHeader`: fixed
//!   configuration, server identity, the notifier servers listen on and the one they
//!   wait for requests on), object `slots` (`max_connections` `ConnSlot`s), and object
//!   `heap` (the server's view heap, from which reply views are allocated).
//! * **Connection section** `<name>.c<pid>-<nonce>` (kind `PortConnection`), created by
//!   each client: object `conn` (connect and answer payload areas), object `requests`
//!   (an `spsc::MessageRing`, client → server), object `replies` (an
//!   `spsc::MessageRing`, server → client), object `heap` (the client's view heap,
//!   from which request views are allocated). The client unlinks its name as soon as
//!   the server answered: both sides have it mapped, and nothing is left behind.
//!   A call thus crosses two single-producer rings, the cheapest hand-off between two
//!   processes, and a busy client never holds up another one.
//! * **Receiving**: a client commits a record to its request ring and notifies the
//!   port's request notifier. A server thread takes records from the connections'
//!   request rings in turn (starting one connection further on each time, so none is
//!   starved), each ring read by one server thread at a time, and sleeps on that
//!   notifier when every ring is empty.
//! * **Connect**: the client claims a free slot with a CAS of its identity into the
//!   slot, writes its section name, sets `REQUESTED` and notifies the listen notifier;
//!   [`PortServer::listen`] CASes `REQUESTED → REVIEWING`, maps the client's section
//!   and hands out a [`ConnectRequest`]; `accept` writes the answer payload, attaches as
//!   reader of the request ring and writer of the reply ring, and sets `ACCEPTED`;
//!   `reject` sets `REJECTED` (the client reads the reason and frees the slot). No free
//!   slot: `Busy`.
//! * **Records** (see `wire`): a 32-byte header (kind, flags, connection index and
//!   epoch, call id, length) and the inline bytes or a view descriptor
//!   `{offset, len, generation}`. A record whose connection index and epoch are not
//!   those of the ring it came from, or longer than the largest record, is dropped.
//! * **Views** (see `heap`): a message above `inline_max` is written into a block of the
//!   sender's heap, whose holder word is handed to the receiver before the descriptor is
//!   sent; the receiver validates holder, generation and bounds (`Corrupted` otherwise)
//!   and frees the block when it drops the [`Payload`]. Holders are process identities,
//!   so blocks of a dead process are reclaimed by whoever finds it dead.
//! * **Calls** carry ids from a per-client counter. Any number of client threads may
//!   wait: one at a time reads the reply ring and files each reply under its id, the
//!   others sleep on a condition variable. A reply for an id nobody waits for (cancelled,
//!   timed out) is dropped and its view freed. [`PendingCall::cancel`] also sends a
//!   `CANCEL` record, so a server that has not replied yet skips the reply.
//! * **Death**: the server checks its clients' liveness at least every
//!   `LIVENESS_RECHECK_INTERVAL` while receiving or listening; a dead client's slot is
//!   freed, its records dropped, the reply-heap blocks it held reclaimed. A dead server
//!   is seen by waiting clients through the reply ring's writer identity (and by their
//!   own liveness checks while sending): every pending call fails with `PeerDied`. A new
//!   server under the same name replaces a section whose creator is dead.
//!
//! Every value read from shared memory is validated; a violation is `Corrupted` on that
//! call or connection, never a panic or a read outside the section.

mod call_ids;
mod client;
#[cfg(not(loom))]
pub mod fuzzing;
use culvert_section::heap;
mod layout;
mod lent;
mod payload;
mod server;
mod slot;
mod wire;

use culvert_ring::spsc;
use culvert_section::SectionOptions;
use culvert_sync::ProcessIdentity;
use std::path::PathBuf;

pub use client::{ConnectError, PendingCall, PortClient, Reply};
pub use heap::HeapStats;
pub use lent::Loan;
pub use payload::{Payload, View};
pub use server::{ConnectRequest, Incoming, PortServer, ServerEvent};

use crate::{Error, Result};

/// Largest connect, accept or reject payload.
pub const CONNECT_PAYLOAD_MAX: usize = 64 * 1024;
/// Largest `inline_max`.
pub const INLINE_MAX_LIMIT: usize = 1 << 20;
/// Largest request ring of a connection (see [`PortOptions::request_ring_capacity`]).
const REQUEST_RING_LIMIT: usize = 1 << 30;
/// Most connections a port can hold.
pub const MAX_CONNECTIONS_LIMIT: usize = 512;

/// How a port is laid out, and where its name lives. `PortOptions::default()` suits
/// small RPC; set fields with the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOptions {
    /// Largest message (request or reply). Default 1 MiB.
    pub max_message: usize,
    /// Messages up to this size are copied through the rings; larger ones travel in
    /// views. At most [`INLINE_MAX_LIMIT`] and `max_message`. Default 4064.
    pub inline_max: usize,
    /// Bytes of each view heap (the server's, for replies, and each client's, for
    /// requests). At least `max_message` when `max_message > inline_max`. Default 4 MiB.
    pub view_heap_size: usize,
    /// Connections at once (`1..=512`). Default 64.
    pub max_connections: usize,
    /// Requests of the largest inline size (`inline_max`) that each connection's
    /// request ring holds — more when they are smaller (rounded up to a power of two,
    /// `2..=4096`). A client whose requests fill its ring waits for the server to take
    /// some; other clients are not held up. Default 16 (a 128 KiB ring with the default
    /// `inline_max`).
    pub request_ring_capacity: usize,
    /// Namespace directory; `None`: `$CULVERT_ROOT`, else `/dev/shm`. Clients use only
    /// this field of the options they are given.
    pub root: Option<PathBuf>,
}

impl Default for PortOptions {
    fn default() -> Self {
        Self {
            max_message: 1 << 20,
            inline_max: 4064,
            view_heap_size: 4 << 20,
            max_connections: 64,
            request_ring_capacity: 16,
            root: None,
        }
    }
}

impl PortOptions {
    /// The default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::max_message`].
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Sets [`Self::inline_max`].
    pub fn inline_max(mut self, bytes: usize) -> Self {
        self.inline_max = bytes;
        self
    }

    /// Sets [`Self::view_heap_size`].
    pub fn view_heap_size(mut self, bytes: usize) -> Self {
        self.view_heap_size = bytes;
        self
    }

    /// Sets [`Self::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`Self::request_ring_capacity`].
    pub fn request_ring_capacity(mut self, slots: usize) -> Self {
        self.request_ring_capacity = slots;
        self
    }

    /// Sets [`Self::root`].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Section options for the namespace of these options.
    pub(crate) fn section_options(&self) -> SectionOptions {
        match &self.root {
            Some(r) => SectionOptions::default().root(r),
            None => SectionOptions::default(),
        }
    }
}

/// The validated configuration (also what clients read from the port header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortConfig {
    pub max_message: usize,
    pub inline_max: usize,
    pub view_heap_size: usize,
    pub max_connections: usize,
    pub request_slots: usize,
}

fn invalid(what: &str) -> Error {
    Error::InvalidArgument {
        what: what.to_string(),
    }
}

impl PortConfig {
    /// Validates options.
    pub(crate) fn new(o: &PortOptions) -> Result<Self> {
        let slots = o
            .request_ring_capacity
            .max(2)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        let c = PortConfig {
            max_message: o.max_message,
            inline_max: o.inline_max,
            view_heap_size: o.view_heap_size.div_ceil(heap::PAGE).max(1) * heap::PAGE,
            max_connections: o.max_connections,
            request_slots: slots,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks every invariant (also on values read back from shared memory).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.inline_max > INLINE_MAX_LIMIT {
            return Err(invalid("inline_max above 1 MiB"));
        }
        if self.inline_max > self.max_message {
            return Err(invalid("inline_max above max_message"));
        }
        if self.max_message > (1 << 40) {
            return Err(invalid("max_message above 1 TiB"));
        }
        if self.view_heap_size == 0 || self.view_heap_size > (1 << 42) {
            return Err(invalid("view_heap_size out of range"));
        }
        if self.max_message > self.inline_max
            && heap::pages_for(self.max_message as u64) * heap::PAGE as u64
                > self.view_heap_size as u64
        {
            return Err(invalid(
                "view_heap_size must hold a max_message view (or make max_message <= inline_max)",
            ));
        }
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&self.max_connections) {
            return Err(invalid("max_connections must be in 1..=512"));
        }
        if !self.request_slots.is_power_of_two() || !(2..=4096).contains(&self.request_slots) {
            return Err(invalid("request_ring_capacity must be in 2..=4096"));
        }
        if self.request_ring().capacity > REQUEST_RING_LIMIT {
            return Err(invalid(
                "request ring above 1 GiB (lower request_ring_capacity or inline_max)",
            ));
        }
        Ok(())
    }

    /// Largest record on either ring.
    pub(crate) fn record_max(&self) -> usize {
        wire::HEADER_LEN + self.inline_max.max(wire::DESCRIPTOR_LEN)
    }

    /// The configuration of a connection's request ring: `request_slots` records of
    /// the largest size.
    pub(crate) fn request_ring(&self) -> spsc::Config {
        let cap = spsc::MessageRing::capacity_for(self.record_max())
            .unwrap_or(1 << 16)
            .saturating_mul(self.request_slots);
        spsc::Config::messages(cap, self.record_max())
    }

    /// The reply ring's configuration.
    pub(crate) fn reply_ring(&self) -> spsc::Config {
        let cap = spsc::MessageRing::capacity_for(self.record_max())
            .unwrap_or(1 << 16)
            .saturating_mul(4)
            .max(1 << 16);
        spsc::Config::messages(cap, self.record_max())
    }
}

/// Which connection a message came from: its slot and the slot's epoch at connect
/// (so an old connection is never confused with a newer one in the same slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// Slot index.
    pub index: u32,
    /// Slot epoch.
    pub epoch: u32,
}

/// What kind of message an [`Incoming`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A call: reply with [`Incoming::reply`].
    Request,
    /// A datagram: no reply.
    Datagram,
}

/// Our packed identity.
pub(crate) fn me() -> u64 {
    ProcessIdentity::me().packed()
}

/// Whether the process with this packed identity is alive.
pub(crate) fn alive(packed: u64) -> bool {
    culvert_sync::holder_of(packed) == culvert_sync::Holder::Alive
}
