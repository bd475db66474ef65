//! The server side: [`PortServer`], [`ConnectRequest`], [`Incoming`].

use std::sync::{Arc, Mutex, RwLock, TryLockError};
use std::time::Duration;

use culvert_ring::spsc;
use culvert_section::{Region, Section, SectionKind, SectionOptions};
use culvert_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use culvert_sync::{wait_for, Deadline, ProcessIdentity, WaitStrategy};

use super::call_ids::CallIdSet;
use super::heap::{Heap, HeapStats};
use super::layout::{
    self, at, copy_in, copy_out, ConnHeader, ConnSlot, ListenLine, PortConfigLine, PortHeader,
    RequestLine, CONN_MAGIC, PORT_CLOSED, PORT_MAGIC, PORT_OPEN, PORT_VERSION, SLOT_ACCEPTED,
    SLOT_CLOSING, SLOT_FREE, SLOT_FREEING, SLOT_REJECTED, SLOT_REQUESTED, SLOT_REVIEWING,
    SLOT_WITHDRAWN,
};
use super::payload::{Payload, View};
use super::wire::{self, Body};
use super::{alive, me, ConnectionId, MessageKind, PortConfig, PortOptions, CONNECT_PAYLOAD_MAX};
use crate::{Error, Result};
use conns::Conns;

/// Most records one receive step takes (dropping malformed ones and those the server
/// skips) before it returns to its caller.
const RECORDS_PER_STEP: usize = 256;

/// Object kinds (the section's caller-defined sub-object kinds).
pub(crate) const OBJ_PORT: u32 = 0x5054_0001;
pub(crate) const OBJ_SLOTS: u32 = 0x5054_0002;
pub(crate) const OBJ_HEAP: u32 = 0x5054_0004;
pub(crate) const OBJ_CONN: u32 = 0x5054_0011;
pub(crate) const OBJ_REPLIES: u32 = 0x5054_0012;
pub(crate) const OBJ_REQUESTS: u32 = 0x5054_0013;

/// How long the server waits for a client's connection section to be ready.
const CONN_OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// The prefix of every connection-section name of port `name`.
pub(crate) fn conn_prefix(name: &str) -> String {
    let cut = name.len().min(160);
    format!("{}.c", &name[..cut])
}

/// A port server. Share it between threads (`&self` everywhere; wrap it in an `Arc`):
/// any number of threads may [`receive`](Self::receive) at once, and one usually
/// [`listen`](Self::listen)s for connections. Dropping it closes the port: clients'
/// pending calls fail with `Closed`, and the name is free again.
pub struct PortServer {
    inner: Arc<ServerState>,
}

impl std::fmt::Debug for PortServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortServer")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// The server's process-local state, shared with its [`Incoming`]s.
pub(crate) struct ServerState {
    name: String,
    sopts: SectionOptions,
    section: Section,
    port: Region,
    slots: Region,
    heap: Heap,
    cfg: PortConfig,
    me: u64,
    /// Accepted connections.
    conns: RwLock<Conns>,
    /// Where the next receive step starts its pass over the live connections (taken
    /// modulo their count): one further on each step, so no connection is starved.
    cursor: AtomicUsize,
    /// Rate limit of the housekeeping's liveness checks (see `maintain`).
    housekeeping: culvert_sync::SharedRecheckClock,
    /// Held by the thread running the housekeeping scan.
    scanning: Mutex<()>,
    closed: AtomicBool,
}

/// One accepted connection, as the server sees it.
pub(crate) struct ServerConn {
    id: ConnectionId,
    client: u64,
    /// The client's view heap (request views).
    heap: Heap,
    /// Reader of the client's request ring; `None` once the connection is shut. Server
    /// threads take turns (`try_lock`): one reads a ring at a time.
    requests: Mutex<Option<spsc::MessageReader>>,
    /// Writer of the client's reply ring; `None` once the connection is shut.
    writer: Mutex<Option<spsc::MessageWriter>>,
    calls: Mutex<Calls>,
    dead: AtomicBool,
    /// Keeps the client's section mapped while requests of it are handled.
    _section: Section,
}

#[derive(Default)]
struct Calls {
    inflight: CallIdSet,
    cancelled: CallIdSet,
}

impl ServerConn {
    /// Writes the record of message `id` (kind `kind`, `body`) into the reply ring in
    /// place, waiting for room as long as the client lives.
    fn write_record(&self, kind: u8, id: u64, body: wire::Body<'_>) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = w.as_mut() else {
            return Err(Error::Closed);
        };
        let len = wire::HEADER_LEN + body.len();
        loop {
            match w.reserve(len) {
                Ok(mut grant) => {
                    let (index, epoch) = (self.id.index, self.id.epoch);
                    wire::encode_into(grant.as_mut_slice(), kind, index, epoch, id, body);
                    grant.commit(len);
                    return Ok(());
                }
                Err(culvert_ring::Error::WouldBlock) => {
                    w.wait_for_room(len, Deadline::never())?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Ends the connection on the server's side: marks it dead and closes both rings
    /// (the client's sends and waits then fail with `Closed`).
    fn shut(&self) {
        self.dead.store(true, Ordering::Release);
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn check_alive(&self) -> Result<()> {
        if self.dead.load(Ordering::Acquire) || !alive(self.client) {
            Err(Error::PeerDied)
        } else {
            Ok(())
        }
    }
}

/// A request ring that reported anything but "empty": closed by its client, its
/// client dead, or corrupted.
struct RingEnded;

/// A record as taken off a request ring.
enum OwnedBody {
    None,
    Inline(Payload),
    View(super::heap::Descriptor),
}

fn decode_request(bytes: &[u8]) -> Result<(wire::Header, OwnedBody)> {
    let (h, b) = wire::decode(
        bytes,
        &[wire::KIND_REQUEST, wire::KIND_DATAGRAM, wire::KIND_CANCEL],
    )?;
    let body = match b {
        Body::None => OwnedBody::None,
        Body::Inline(s) => OwnedBody::Inline(Payload::copy_of(s)),
        Body::View(d) => OwnedBody::View(d),
    };
    Ok((h, body))
}

impl PortServer {
    /// Creates the port `name` in the namespace of `opts` ([`PortOptions::root`]). A
    /// leftover port of a dead server is replaced.
    ///
    /// # Errors
    /// `AlreadyExists` if a live server has the name; `InvalidName`;
    /// `InvalidArgument` for options out of range; `PermissionDenied`, `Section`
    /// (no space…) or `Io` if the section could not be made.
    pub fn create(name: &str, opts: &PortOptions) -> Result<PortServer> {
        let cfg = PortConfig::new(opts)?;
        let mut so = opts.section_options();
        so.kind = SectionKind::Port;
        so.expect_kind = None;
        let heap_len =
            Heap::required_size(cfg.view_heap_size).ok_or_else(|| Error::InvalidArgument {
                what: "view_heap_size too large".into(),
            })?;
        let slots_len = std::mem::size_of::<ConnSlot>() * cfg.max_connections;
        let size = std::mem::size_of::<PortHeader>() + slots_len + heap_len + 4 * 4096;
        // A port whose creator died (a crashed server) is replaced.
        let mut section = Section::create_replacing_stale(name, size as u64, &so, |old| {
            !old.header().creator.is_alive()
        })
        .map_err(|e| match e {
            culvert_section::Error::AlreadyExists { .. } => Error::AlreadyExists {
                name: name.to_string(),
            },
            e => e.into(),
        })?;
        let me = me();
        let port = section.add_object(
            "port",
            OBJ_PORT,
            std::mem::size_of::<PortHeader>() as u64,
            128,
        )?;
        let slots = section.add_object("slots", OBJ_SLOTS, slots_len as u64, 128)?;
        let heap_region = section.add_object("heap", OBJ_HEAP, heap_len as u64, 4096)?;
        Heap::init(&heap_region, cfg.view_heap_size)?;
        for i in 0..cfg.max_connections {
            layout::put(&slots, i * std::mem::size_of::<ConnSlot>(), ConnSlot::new())?;
        }
        use culvert_sync::atomic::{AtomicU32, AtomicU64};
        layout::put(
            &port,
            0,
            PortHeader {
                config: PortConfigLine {
                    magic: AtomicU64::new(PORT_MAGIC),
                    version: AtomicU32::new(PORT_VERSION),
                    state: AtomicU32::new(PORT_OPEN),
                    server: AtomicU64::new(me),
                    max_message: AtomicU64::new(cfg.max_message as u64),
                    inline_max: AtomicU64::new(cfg.inline_max as u64),
                    view_heap_size: AtomicU64::new(cfg.view_heap_size as u64),
                    max_connections: AtomicU64::new(cfg.max_connections as u64),
                    request_slots: AtomicU64::new(cfg.request_slots as u64),
                },
                listen: ListenLine {
                    connect: Default::default(),
                },
                requests: RequestLine {
                    sent: Default::default(),
                },
            },
        )?;
        let heap = Heap::attach(&heap_region)?;
        section.mark_ready()?;
        let mut sopts_conn = opts.section_options();
        sopts_conn.kind = SectionKind::PortConnection;
        Ok(PortServer {
            inner: Arc::new(ServerState {
                name: name.to_string(),
                sopts: sopts_conn,
                section,
                port,
                slots,
                heap,
                cfg,
                me,
                conns: RwLock::new(Conns::new(cfg.max_connections)),
                cursor: AtomicUsize::new(0),
                housekeeping: culvert_sync::SharedRecheckClock::new(),
                scanning: Mutex::new(()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Waits until `deadline` for a client's connect request. Answer it with
    /// [`ConnectRequest::accept`] or [`ConnectRequest::reject`] (dropping it rejects).
    /// Also tears down connections whose client disconnected or died.
    ///
    /// # Errors
    /// `Timeout`; `Corrupted` if a client forged its slot beyond recovery.
    pub fn listen(&self, deadline: impl Into<Deadline>) -> Result<ConnectRequest> {
        self.inner.listen(deadline.into())
    }

    /// Waits until `deadline` for the next request or datagram from any client.
    /// Several threads may receive at once; each message goes to one of them.
    ///
    /// A record that breaks the wire format is dropped; a client that corrupts its
    /// request ring, closes it or dies has its connection torn down. The server goes
    /// on either way.
    ///
    /// # Errors
    /// `Timeout`; `Closed` once the server closed.
    pub fn receive(&self, deadline: impl Into<Deadline>) -> Result<Incoming> {
        self.inner.receive_on(deadline.into())
    }

    /// [`listen`](Self::listen) without waiting: the connect request already waiting,
    /// else `WouldBlock`.
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as [`listen`](Self::listen).
    pub fn try_listen(&self) -> Result<ConnectRequest> {
        self.inner.listen_step()?.ok_or(Error::WouldBlock)
    }

    /// [`receive`](Self::receive) without waiting: the request or datagram already
    /// waiting, else `WouldBlock`.
    ///
    /// # Errors
    /// `WouldBlock`; otherwise as [`receive`](Self::receive).
    pub fn try_receive(&self) -> Result<Incoming> {
        self.inner.receive_step()?.ok_or(Error::WouldBlock)
    }

    /// Free space of the server's view heap (reply views).
    pub fn view_heap_stats(&self) -> HeapStats {
        self.inner.heap.stats()
    }

    /// Connections accepted and not yet torn down.
    pub fn connection_count(&self) -> usize {
        self.inner.conns().live().len()
    }

    /// Free space of the view heap of a connection's client (request views), while
    /// the connection lives.
    pub fn client_heap_stats(&self, id: ConnectionId) -> Option<HeapStats> {
        self.inner
            .conns()
            .get(id.index as usize)
            .filter(|c| c.id == id)
            .map(|c| c.heap.stats())
    }

    /// Runs the housekeeping now: tears down connections of clients that
    /// disconnected or died and reclaims the view blocks they held.
    pub fn maintain(&self) {
        self.inner.maintain(true, true);
    }

    /// Closes the port (also done on drop).
    pub fn close(&self) {
        self.inner.close();
    }
}

impl Drop for PortServer {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl ServerState {
    fn header(&self) -> &PortHeader {
        // The region was checked at create (size and alignment).
        at::<PortHeader>(&self.port, 0).expect("port header placed at create")
    }

    /// The connection table, for reading.
    fn conns(&self) -> std::sync::RwLockReadGuard<'_, Conns> {
        self.conns.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection table, for changing.
    fn conns_mut(&self) -> std::sync::RwLockWriteGuard<'_, Conns> {
        self.conns.write().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, i: usize) -> &ConnSlot {
        at::<ConnSlot>(&self.slots, i * std::mem::size_of::<ConnSlot>())
            .expect("slot placed at create")
    }

    /// One step of receiving, never waiting: runs the housekeeping when due, then takes
    /// records off the connections' request rings, one pass starting at the cursor,
    /// until one is a request or datagram to hand out (malformed records are dropped;
    /// at most [`RECORDS_PER_STEP`] per step, so a flooding client cannot hold it). A
    /// connection whose request ring ended (closed, its client dead, or corrupted) is
    /// torn down.
    fn receive_step(self: &Arc<Self>) -> Result<Option<Incoming>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.maintain(false, false);
        let mut budget = RECORDS_PER_STEP;
        let mut ended = None;
        {
            let conns = self.conns();
            let live = conns.live();
            let n = live.len();
            let start = match n {
                0 => 0,
                _ => self.cursor.fetch_add(1, Ordering::Relaxed) % n,
            };
            for conn in live[start..].iter().chain(&live[..start]) {
                match self.receive_from(conn, &mut budget) {
                    Ok(Some(incoming)) => return Ok(Some(incoming)),
                    Ok(None) if budget == 0 => break,
                    Ok(None) => {}
                    Err(RingEnded) => ended = ended.or(Some(conn.id.index as usize)),
                }
            }
        }
        if let Some(i) = ended {
            if !self.teardown(i, SLOT_CLOSING) {
                self.teardown(i, SLOT_ACCEPTED);
            }
        }
        Ok(None)
    }

    /// Takes records off `conn`'s request ring, unless another thread is reading it,
    /// until one is a request or datagram to hand out, the ring is empty, or `budget`
    /// (records) runs out. `RingEnded` when the ring reports anything but "empty".
    fn receive_from(
        self: &Arc<Self>,
        conn: &Arc<ServerConn>,
        budget: &mut usize,
    ) -> std::result::Result<Option<Incoming>, RingEnded> {
        let mut guard = match conn.requests.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(None),
        };
        let Some(ring) = guard.as_mut() else {
            return Ok(None);
        };
        while *budget > 0 {
            let record = match ring.read_grant() {
                Ok(grant) => {
                    // A record longer than any a client sends is dropped unread.
                    let r = (grant.len() <= self.cfg.record_max())
                        .then(|| decode_request(grant.as_slice()));
                    grant.release();
                    r
                }
                Err(culvert_ring::Error::WouldBlock) => return Ok(None),
                Err(_) => return Err(RingEnded),
            };
            *budget -= 1;
            if let Some(Ok((h, body))) = record {
                if let Some(incoming) = self.process(conn, h, body) {
                    return Ok(Some(incoming));
                }
            }
        }
        Ok(None)
    }

    /// Waits until `deadline` for a request or datagram: [`receive_step`](Self::receive_step)
    /// whenever a client sends, and at least every liveness interval for the
    /// housekeeping.
    fn receive_on(self: &Arc<Self>, deadline: Deadline) -> Result<Incoming> {
        let sent = &self.header().requests.sent;
        wait_for(sent, WaitStrategy::default(), deadline, |_| {
            self.receive_step()
        })
    }

    /// Whether a request ring holds a record, or ended: what
    /// [`receive_step`](Self::receive_step) would act on. Rings another thread is
    /// reading are skipped.
    fn request_ready(&self, ctx: culvert_sync::WaitContext) -> bool {
        self.conns()
            .live()
            .iter()
            .any(|conn| match conn.requests.try_lock() {
                Ok(mut g) => g
                    .as_mut()
                    .is_some_and(|r| culvert_sync::Waitable::poll_ready(r, ctx)),
                Err(_) => false,
            })
    }

    /// A record of connection `conn`, from its request ring: the [`Incoming`] to hand
    /// out, or `None` (a cancel, a record naming another connection, a bad descriptor).
    fn process(
        self: &Arc<Self>,
        conn: &Arc<ServerConn>,
        h: wire::Header,
        body: OwnedBody,
    ) -> Option<Incoming> {
        // A record names the connection whose ring it came from; others are dropped.
        if h.conn != conn.id.index || h.epoch != conn.id.epoch || conn.dead.load(Ordering::Acquire)
        {
            return None;
        }
        let kind = match h.kind {
            wire::KIND_CANCEL => {
                let mut calls = conn.calls.lock().unwrap_or_else(|e| e.into_inner());
                if calls.inflight.contains(&h.id) {
                    calls.cancelled.insert(h.id);
                }
                return None;
            }
            wire::KIND_REQUEST => MessageKind::Request,
            _ => MessageKind::Datagram,
        };
        let pending = kind == MessageKind::Request;
        if pending {
            conn.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .inflight
                .insert(h.id);
        }
        // Dropped unanswered (e.g. below, on a bad descriptor), a request is answered
        // with "no reply".
        let responder = Responder {
            server: self.clone(),
            conn: conn.clone(),
            id: h.id,
            pending,
        };
        let payload = match body {
            OwnedBody::Inline(p) => p,
            OwnedBody::View(d) => {
                match conn
                    .heap
                    .table()
                    .validate(&d, self.me, self.cfg.max_message as u64)
                {
                    Ok(b) => Payload::view(View::new(conn.heap.clone(), b, self.me)),
                    // A forged or stale descriptor: never read.
                    Err(_) => return None,
                }
            }
            OwnedBody::None => return None,
        };
        Some(Incoming {
            connection: conn.id,
            id: h.id,
            kind,
            payload,
            responder,
        })
    }

    /// Housekeeping: slots of disconnected or dead clients. `force` scans even when
    /// the liveness interval has not passed (liveness itself is checked only then, or
    /// when `check_all`).
    fn maintain(&self, force: bool, check_all: bool) {
        // Per receive poll this costs a coarse clock read, nothing more.
        let due = check_all || self.housekeeping.claim();
        if !due && !force {
            return;
        }
        let Ok(_scan) = self.scanning.try_lock() else {
            if due {
                // Another thread is scanning; the check it may skip stays due.
                self.housekeeping.reset();
            }
            return;
        };
        let mut reclaim = false;
        for i in 0..self.cfg.max_connections {
            let slot = self.slot(i);
            let st = slot.state.load(Ordering::Acquire);
            let client = slot.client.load(Ordering::Acquire);
            match st {
                SLOT_CLOSING => {
                    self.teardown(i, SLOT_CLOSING);
                    reclaim = true;
                }
                SLOT_ACCEPTED if due && !alive(client) => {
                    self.teardown(i, SLOT_ACCEPTED);
                    reclaim = true;
                }
                SLOT_FREE | SLOT_REQUESTED | SLOT_REJECTED
                    if due && client != 0 && !alive(client) =>
                {
                    self.free_slot(i, st);
                }
                SLOT_FREEING if due && client != 0 && client != self.me && !alive(client) => {
                    self.take_over_free(i, client);
                }
                _ => {}
            }
        }
        // Blocks handed to a client that died (replies in flight, views it held) go
        // back; a reply racing the teardown may hand one over late, so this runs at
        // every liveness check, not only right after a teardown.
        if reclaim || due {
            let blocks = self.heap.reclaim_dead(self.me);
            if blocks > 0 {
                crate::trace::event!(INFO, port = %self.name, blocks, "reclaimed views of dead clients");
            }
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.header()
            .config
            .state
            .store(PORT_CLOSED, Ordering::Release);
        let conns = self.conns_mut().take_all();
        for c in conns {
            c.shut();
        }
        for i in 0..self.cfg.max_connections {
            self.slot(i).answered.notify();
        }
        // Unlink the name only if it is still ours.
        let so = SectionOptions {
            expect_kind: None,
            ..self.sopts.clone()
        };
        if let Ok(info) = Section::inspect(&self.name, &so) {
            if info.creator == self.section.header().creator {
                let _ = Section::unlink(&self.name, &so);
            }
        }
    }
}

/// A client's connect request, from [`PortServer::listen`]. Answer it with
/// [`accept`](Self::accept) or [`reject`](Self::reject); dropping it rejects with an
/// empty reason.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The client's process id.
    pub pid: u32,
    /// The client's connect payload.
    pub payload: Vec<u8>,
    pending: PendingConnect,
}

struct PendingConnect {
    server: Arc<ServerState>,
    index: usize,
    epoch: u32,
    client: u64,
    /// `None` once answered.
    section: Option<Section>,
}

impl std::fmt::Debug for PendingConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingConnect")
            .field("index", &self.index)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A request or datagram from a client, from [`PortServer::receive`].
///
/// Reply to a request with [`reply`](Self::reply). A request dropped without a reply is
/// answered with "no reply" (the client's call fails with `Closed`). Take the payload
/// out with `std::mem::take(&mut incoming.payload)` to keep it past the reply; a view
/// payload returns to the client's heap when dropped.
#[derive(Debug)]
pub struct Incoming {
    /// The connection it came from.
    pub connection: ConnectionId,
    /// The call id (unique per connection).
    pub id: u64,
    /// Request or datagram.
    pub kind: MessageKind,
    /// The message.
    pub payload: Payload,
    responder: Responder,
}

struct Responder {
    server: Arc<ServerState>,
    conn: Arc<ServerConn>,
    id: u64,
    /// A request not yet answered.
    pending: bool,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("id", &self.id)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

mod conns;
mod events;
mod handshake;
mod incoming;
mod standin;

pub use events::ServerEvent;
#[cfg(test)]
mod tests;
