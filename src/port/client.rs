//! The client side: [`PortClient`], [`PendingCall`], [`Reply`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use culvert_ring::spsc;
use culvert_section::{Region, Section, SectionKind};
use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{wait_for, Deadline, WaitStrategy, LIVENESS_RECHECK_INTERVAL};

use super::call_ids::CallIdMap;
use super::heap::{Heap, HeapStats};
use super::layout::{
    at, copy_in, copy_out, put, ConnHeader, ConnSlot, PortHeader, CONN_MAGIC, PORT_MAGIC,
    PORT_OPEN, PORT_VERSION, SLOT_ACCEPTED, SLOT_CLOSING, SLOT_FREEING, SLOT_NAME_MAX,
    SLOT_REJECTED, SLOT_REQUESTED, SLOT_REVIEWING, SLOT_WITHDRAWN,
};
use super::lent::Loan;
use super::payload::{Payload, View};
use super::server::{conn_prefix, OBJ_CONN, OBJ_HEAP, OBJ_REPLIES, OBJ_REQUESTS};
use super::wire::{self, Body};
use super::{alive, me, PortConfig, CONNECT_PAYLOAD_MAX};
use crate::{Error, Result};

/// What [`PortClient::connect`] fails with: an [`Error`]; a rejection is
/// [`Error::Rejected`] carrying the server's reason payload.
pub type ConnectError = Error;

mod connect;
mod pending;
mod replies;

use culvert_ring::WriteEndpoint as _;
use pending::CallState;
pub use pending::PendingCall;

/// A reply to a call: its [`Payload`] (dereferences to it) and the call id.
#[derive(Debug)]
pub struct Reply {
    id: u64,
    payload: Payload,
}

impl Reply {
    /// The call id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The payload.
    pub fn into_payload(self) -> Payload {
        self.payload
    }
}

impl std::ops::Deref for Reply {
    type Target = Payload;
    fn deref(&self) -> &Payload {
        &self.payload
    }
}

/// Why every call of a client fails from now on.
#[derive(Debug, Clone)]
enum Fail {
    PeerDied,
    Closed,
    Corrupted(String),
}

impl Fail {
    fn from_error(e: &Error) -> Option<Fail> {
        match e {
            Error::PeerDied => Some(Fail::PeerDied),
            Error::Closed => Some(Fail::Closed),
            Error::Corrupted { what } => Some(Fail::Corrupted(what.clone())),
            _ => None,
        }
    }

    fn error(&self) -> Error {
        match self {
            Fail::PeerDied => Error::PeerDied,
            Fail::Closed => Error::Closed,
            Fail::Corrupted(w) => Error::Corrupted { what: w.clone() },
        }
    }
}

/// Calls waiting for replies. `calls[id]` is `None` while waiting, `Some` once the
/// reply (or its failure) arrived; an id not in the map is not waited for (replies to
/// it are dropped and their views freed).
#[derive(Default)]
struct Table {
    calls: CallIdMap<Option<Result<Payload>>>,
    /// A thread is reading the reply ring.
    leader: bool,
    /// Threads sleeping on the condition variable.
    followers: usize,
    failed: Option<Fail>,
}

struct ClientInner {
    port_name: String,
    _server_section: Section,
    port: Region,
    slots: Region,
    index: u32,
    epoch: u32,
    server: u64,
    me: u64,
    cfg: PortConfig,
    producer: Mutex<Sender>,
    reader: Mutex<(spsc::MessageReader, Vec<u8>, Instant)>,
    table: Mutex<Table>,
    cv: Condvar,
    /// Process-local: notified when a reply is filed in `table`, for asynchronous
    /// waiters (which do not sleep on `cv`).
    filed: culvert_sync::Notifier,
    /// Address of the reply ring's notifier (in the ring `reader` keeps mapped), for
    /// asynchronous waiters while another thread holds `reader`.
    reply_notifier: usize,
    my_heap: Heap,
    server_heap: Heap,
    next_id: AtomicU64,
    _conn_section: Section,
}

/// A connection to a port. Share it between threads (`&self` everywhere): calls from
/// several threads are in flight at once, and each reply goes to its caller. Dropping
/// the last handle (and every [`PendingCall`]) disconnects.
pub struct PortClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for PortClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortClient")
            .field("port", &self.inner.port_name)
            .field("index", &self.inner.index)
            .finish_non_exhaustive()
    }
}

/// The request ring's producer, and the buffer records sent from this client are
/// encoded in (so that an inline request allocates nothing).
pub(super) struct Sender {
    pub(super) ring: spsc::MessageWriter,
    pub(super) scratch: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A ring send's outcome as the port's.
fn ring_result(r: culvert_ring::Result<()>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(culvert_ring::Error::WouldBlock) => Err(Error::WouldBlock),
        Err(e) => Err(Error::from(e)),
    }
}

fn corrupt(what: &str) -> Error {
    Error::Corrupted {
        what: what.to_string(),
    }
}

fn slot_at(slots: &Region, i: usize) -> Result<&ConnSlot> {
    at::<ConnSlot>(slots, i * std::mem::size_of::<ConnSlot>())
}

impl PortClient {
    /// Calls the server with `request` and waits until `deadline` for the reply.
    /// `Timeout` cancels the call (a late reply is dropped).
    ///
    /// # Errors
    /// `Timeout`; `MessageTooLarge` above the port's `max_message` (nothing sent);
    /// `Closed` if the server closed the port or dropped the call unanswered;
    /// `PeerDied` if the server died; `ReplyFailed` if the server could not send its
    /// reply; `Corrupted` if the server's reply broke the wire format.
    pub fn call(&self, request: &[u8], deadline: impl Into<Deadline>) -> Result<Reply> {
        let deadline = deadline.into();
        let id = self.inner.register()?;
        if let Err(e) = self.inner.send(wire::KIND_REQUEST, id, request, deadline) {
            lock(&self.inner.table).calls.remove(&id);
            return Err(e);
        }
        self.inner.reply_or_cancel(id, deadline)
    }

    /// Sends `request` and returns at once; the reply is collected through the
    /// [`PendingCall`] (wait on it, or `.await` it). Never waits for room in the request
    /// ring: when the ring is full the request stays in the `PendingCall` and goes out
    /// when it is waited on or awaited. A request too large to go inline waits for room
    /// in the view heap.
    ///
    /// # Errors
    /// `MessageTooLarge` above the port's `max_message` (nothing sent); `Closed` or
    /// `PeerDied` if the server is gone; `Corrupted`.
    pub fn call_async(&self, request: &[u8]) -> Result<PendingCall> {
        let id = self.inner.register()?;
        let unsent = match self
            .inner
            .encode(wire::KIND_REQUEST, id, request, Deadline::never())
            .and_then(|out| match self.inner.try_push(&out) {
                Ok(()) => Ok(None),
                Err(Error::WouldBlock) => Ok(Some(out)),
                Err(e) => {
                    self.inner.drop_outgoing(out);
                    Err(e)
                }
            }) {
            Ok(unsent) => unsent,
            Err(e) => {
                lock(&self.inner.table).calls.remove(&id);
                return Err(e);
            }
        };
        Ok(PendingCall {
            wait: culvert_sync::AsyncWait::new(),
            client: self.inner.clone(),
            id,
            state: CallState::Pending,
            unsent,
        })
    }

    /// Lends `len` bytes of this client's view heap for a request written in place:
    /// fill [`Loan::as_mut_slice`], then [`call_loaned`](Self::call_loaned) sends it
    /// without a copy (the server reads it where it lies). Waits until `deadline` for
    /// room in the heap. Dropping the loan unsent gives the room back.
    ///
    /// # Errors
    /// `MessageTooLarge` above the port's `max_message` or the heap's size; `Timeout`;
    /// `Closed` or `PeerDied` if the server is gone.
    pub fn loan(&self, len: usize, deadline: impl Into<Deadline>) -> Result<Loan> {
        let inner = &self.inner;
        let max = inner.cfg.max_message;
        Loan::borrow(
            inner.clone(),
            &inner.my_heap,
            inner.me,
            len,
            max,
            deadline.into(),
            || inner.check_server(),
        )
    }

    /// [`call`](Self::call) with a request written into `loan` (see
    /// [`loan`](Self::loan)): the server gets the loaned bytes as a view.
    ///
    /// # Errors
    /// As [`call`](Self::call); `InvalidArgument` for a loan this client did not
    /// lend (another client's, or a server's reply loan).
    pub fn call_loaned(&self, mut loan: Loan, deadline: impl Into<Deadline>) -> Result<Reply> {
        if !loan.lent_by(&self.inner) {
            return Err(Error::InvalidArgument {
                what: "a loan is sent by the client that lent it".into(),
            });
        }
        let deadline = deadline.into();
        let Some(block) = loan.take() else {
            return Err(Error::Closed);
        };
        let inner = &self.inner;
        let id = match inner.register() {
            Ok(id) => id,
            Err(e) => {
                inner.my_heap.table().free(&block, inner.me);
                return Err(e);
            }
        };
        let sent = inner
            .view_record(wire::KIND_REQUEST, id, block)
            .and_then(|out| {
                let sent = inner.push(&out, deadline);
                if sent.is_err() {
                    inner.drop_outgoing(out);
                }
                sent
            });
        if let Err(e) = sent {
            lock(&inner.table).calls.remove(&id);
            return Err(e);
        }
        inner.reply_or_cancel(id, deadline)
    }

    /// Sends a datagram (no reply), waiting for room as long as the server lives.
    ///
    /// # Errors
    /// As [`call_async`](Self::call_async).
    pub fn send_datagram(&self, bytes: &[u8]) -> Result<()> {
        self.send_datagram_until(bytes, Deadline::never())
    }

    /// [`send_datagram`](Self::send_datagram), waiting for room until `deadline`.
    ///
    /// # Errors
    /// As [`call_async`](Self::call_async), and `Timeout`.
    pub fn send_datagram_until(&self, bytes: &[u8], deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.send(wire::KIND_DATAGRAM, id, bytes, deadline)
    }

    /// Free space of this client's view heap (request views).
    pub fn view_heap_stats(&self) -> HeapStats {
        self.inner.my_heap.stats()
    }

    /// Free space of the server's view heap (reply views).
    pub fn server_view_heap_stats(&self) -> HeapStats {
        self.inner.server_heap.stats()
    }

    /// Largest message of this port.
    pub fn max_message(&self) -> usize {
        self.inner.cfg.max_message
    }

    /// Largest message copied inline.
    pub fn inline_max(&self) -> usize {
        self.inner.cfg.inline_max
    }
}

impl ClientInner {
    fn header(&self) -> &PortHeader {
        at::<PortHeader>(&self.port, 0).expect("port header checked at connect")
    }

    fn slot(&self) -> &ConnSlot {
        slot_at(&self.slots, self.index as usize).expect("slot checked at connect")
    }

    /// `Closed` if the server closed the port, `PeerDied` if it died.
    fn check_server(&self) -> Result<()> {
        if self.header().config.state.load(Ordering::Acquire) != PORT_OPEN {
            return Err(Error::Closed);
        }
        if !alive(self.server) {
            return Err(Error::PeerDied);
        }
        Ok(())
    }

    /// A fresh call id, registered as waiting.
    fn register(&self) -> Result<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut t = lock(&self.table);
        if let Some(f) = &t.failed {
            return Err(f.error());
        }
        t.calls.insert(id, None);
        Ok(id)
    }

    fn send(&self, kind: u8, id: u64, bytes: &[u8], deadline: Deadline) -> Result<()> {
        if bytes.len() <= self.cfg.inline_max.min(self.cfg.max_message) {
            // The usual case: sent at once from the sender's buffer, no allocation.
            match self.try_push_record(kind, id, Body::Inline(bytes)) {
                Err(Error::WouldBlock) => {}
                r => return r,
            }
        }
        let out = self.encode(kind, id, bytes, deadline)?;
        let sent = self.push(&out, deadline);
        if sent.is_err() {
            self.drop_outgoing(out);
        }
        sent
    }

    /// The record of a message: inline, or its bytes written into a view of our heap
    /// (waiting until `deadline` for room there) handed over to the server.
    fn encode(&self, kind: u8, id: u64, bytes: &[u8], deadline: Deadline) -> Result<Outgoing> {
        if bytes.len() > self.cfg.max_message {
            return Err(Error::MessageTooLarge {
                len: bytes.len(),
                max: self.cfg.max_message,
            });
        }
        if bytes.len() > self.cfg.inline_max {
            let b = self
                .my_heap
                .alloc(bytes.len() as u64, self.me, deadline, || {
                    self.check_server()
                })?;
            self.my_heap.write(&b, 0, bytes);
            return self.view_record(kind, id, b);
        }
        Ok(Outgoing {
            rec: self.record(kind, id, Body::Inline(bytes)),
            block: None,
        })
    }

    /// The wire record of message `id` of this connection.
    fn record(&self, kind: u8, id: u64, body: Body<'_>) -> Vec<u8> {
        let mut rec = Vec::with_capacity(wire::HEADER_LEN + body.len());
        wire::encode(&mut rec, kind, self.index, self.epoch, id, body);
        rec
    }

    /// The record of a message already written into block `b` of our heap: the block
    /// is handed over to the server (freed if that fails).
    fn view_record(&self, kind: u8, id: u64, b: super::heap::Block) -> Result<Outgoing> {
        if let Err(e) = self.my_heap.table().hand_over(&b, self.me, self.server) {
            self.my_heap.table().free(&b, self.me);
            return Err(e.into());
        }
        Ok(Outgoing {
            rec: self.record(kind, id, Body::View(b.descriptor())),
            block: Some(b),
        })
    }

    /// Sends an encoded record, waiting until `deadline` for room in the request ring
    /// as long as the server lives. The ring is locked only to try a send, never while
    /// waiting, so other senders (and asynchronous ones) are never held up by a wait.
    fn push(&self, out: &Outgoing, deadline: Deadline) -> Result<()> {
        let strategy = culvert_sync::WaitStrategy::default();
        culvert_sync::wait_for(self.room_notifier(), strategy, deadline, |ctx| {
            if ctx.liveness_due {
                self.check_server()?;
            }
            match self.try_push(out) {
                Ok(()) => Ok(Some(())),
                Err(Error::WouldBlock) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Sends an encoded record if there is room now; `WouldBlock` otherwise.
    fn try_push(&self, out: &Outgoing) -> Result<()> {
        let sent = ring_result(lock(&self.producer).ring.try_write(&out.rec));
        self.sent(sent)
    }

    /// Encodes a record of message `id` in the sender's buffer and sends it if there
    /// is room now; `WouldBlock` otherwise.
    fn try_push_record(&self, kind: u8, id: u64, body: Body<'_>) -> Result<()> {
        let mut s = lock(&self.producer);
        let Sender { ring, scratch } = &mut *s;
        wire::encode(scratch, kind, self.index, self.epoch, id, body);
        let sent = ring_result(ring.try_write(scratch));
        drop(s);
        self.sent(sent)
    }

    /// After a send: a committed record wakes a server thread sleeping for requests.
    #[inline]
    fn sent(&self, sent: Result<()>) -> Result<()> {
        if sent.is_ok() {
            self.header().requests.sent.notify();
        }
        sent
    }

    /// Our request ring's "room freed" notifier, where senders wait.
    fn room_notifier(&self) -> &culvert_sync::Notifier {
        let p = lock(&self.producer);
        let n: *const culvert_sync::Notifier = p.ring.writable_notifier();
        drop(p);
        // SAFETY: the notifier lives in the request ring's region, which the producer
        // in `self.producer` keeps mapped while `self` lives (it is never replaced).
        unsafe { &*n }
    }

    /// Takes back the view of a record that was never sent.
    fn drop_outgoing(&self, out: Outgoing) {
        if let Some(b) = &out.block {
            self.my_heap
                .table()
                .take_back_and_free(b, self.server, self.me);
        }
    }
}

/// Leaves an accepted connection slot: marks it closing, for the server to tear down,
/// and wakes the server's listener to do so.
fn leave_slot(slot: &ConnSlot, hdr: &PortHeader) {
    if slot.leave() {
        hdr.listen.connect.notify();
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        leave_slot(self.slot(), self.header());
    }
}

/// An encoded message not sent yet.
struct Outgoing {
    rec: Vec<u8>,
    /// The view holding the bytes, when they did not fit inline.
    block: Option<super::heap::Block>,
}
