//! Named pipes: [`PipeServer`] (bind, accept) and [`PipeEnd::connect`].
//!
//! The server's section (kind `PipeServer`, named after the pipe) holds:
//!
//! * `server` — a [`ServerHeader`]: configuration, the server's identity, a `closed`
//!   flag, the ticket counter, and two notifiers: `events` (the server sleeps there:
//!   a request arrived, an instance slot was freed) and `answers` (clients sleep
//!   there: a request was answered, a request cell was freed);
//! * `slots` — the instance table, `max_instances` [`Slot`]s; a slot holds the ticket
//!   of the connection using it (0: free) and the client's identity;
//! * `cells` — [`CELLS`] request cells a client claims by CAS before asking; the cell
//!   carries the client's identity and, once answered, the connection's ticket and slot;
//! * `requests` — an MPMC message ring carrying `(cell, generation)` from clients to
//!   the server (the connect handshake goes through a ring, not an OS channel).
//!
//! Connect: claim a cell (`FREE → CLAIMED`, identity, `→ PENDING`), send its number
//! through `requests`, notify `events`, wait on `answers` until the cell is
//! `ASSIGNED`, read the ticket and slot, free the cell, open the instance section
//! `<name>.pipe-<ticket>` (which the server created) and unlink its name. On timeout
//! the client withdraws its cell (`PENDING → FREE`); if that CAS loses, the server
//! answered just in time and the client connects anyway. `Busy` is that timeout
//! (every instance taken, or the server not accepting); `NotFound` is no server, a
//! closed one or a dead one.
//!
//! Accept (never waiting; the blocking forms wait on `events` between steps): with a
//! free slot, take a request, skip withdrawn cells and dead clients, create the
//! instance section (end 1 expected to be the client, so a client dying before it
//! attaches is noticed), answer the cell (`PENDING → ASSIGNED`), and keep the instance
//! until the client attached (it notifies `events`), so the returned end knows its
//! peer, as after Windows' `ConnectNamedPipe`; a client that gives up, dies or takes
//! longer than `ATTACH_GRACE` is dropped. If the instance
//! cannot be made (`NoSpace`, an I/O error), the cell is answered `PENDING → REFUSED`
//! with the cause, so the client fails at once with it, and `accept` returns it. A slot
//! is freed when either end of its connection is dropped or disconnected (both CAS the
//! slot's ticket to 0, so twice is harmless), or, found by `accept`, when the client
//! process died.
//!
//! **Shared named pipes** ([`PipeOptions::shared`]; the header's `flags` has
//! [`SERVER_FLAG_SHARED`]): instances are made like shared anonymous pipes (MPMC rings
//! and a holder table), so either end of a connection may be shared with children or
//! cloned. A slot is then freed only when *both* ends are gone as the holder table
//! decides (`shared::end_gone`): a holder that carries the connection's link (the end
//! `accept` or `connect` returned, and its `try_clone`s) checks that when it detaches;
//! holders without one (children) are covered by `accept`, which keeps a view of every
//! instance it made and, at least every `LIVENESS_RECHECK_INTERVAL` while it waits,
//! frees the slots of connections whose ends are both gone (and unlinks the instance's
//! name). A client's death alone frees nothing in shared mode: its children may hold
//! its end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use culvert_ring::mpmc;
use culvert_section::{Section, SectionKind, SectionOptions, SharedStruct, SliceView, View};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::{Deadline, Notifier, ProcessIdentity};

use super::end::PipeEnd;
use super::layout::{StateView, SHARED_MESSAGE_MAX};
use super::options::{validate_pipe_name, PipeMode, PipeOptions, MAX_INSTANCES};
use super::shared::{self, HolderView};
use crate::{Error, Result};

mod accept;
mod cell;
mod connect;
#[cfg(all(test, loom))]
mod loom_models;
#[cfg(all(test, not(loom)))]
mod tests;

/// Magic of a [`ServerHeader`]: "CLVPSRV" + version.
const SERVER_MAGIC: u64 = u64::from_le_bytes(*b"CLVPSRV\x01");
/// Request cells (concurrent connect attempts).
pub(crate) const CELLS: usize = 64;
/// Object kinds in the server section.
const OBJ_HEADER: u32 = 0x5053_0001;
const OBJ_SLOTS: u32 = 0x5053_0002;
const OBJ_CELLS: u32 = 0x5053_0003;
const OBJ_REQUESTS: u32 = 0x5053_0004;
/// Request message: cell index and generation, both `u32` LE.
const REQUEST_LEN: usize = 8;
/// [`ServerHeader::flags`]: the instances are shared (MPMC rings, holder table).
pub(crate) const SERVER_FLAG_SHARED: u32 = 1;
/// Largest default timeout honoured from a server's header.
const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Cell states (low 32 bits of [`Cell::word`]; the high 32 bits are a generation).
const CELL_FREE: u32 = 0;
const CELL_CLAIMED: u32 = 1;
const CELL_PENDING: u32 = 2;
const CELL_ASSIGNED: u32 = 3;
/// The server could not make the connection; the cell's `ticket` holds a
/// `REFUSED_*` cause and `slot` its detail.
const CELL_REFUSED: u32 = 4;

/// Refusal causes (a refused cell's `ticket`).
const REFUSED_NO_SPACE: u64 = 1;
const REFUSED_OS_ERROR: u64 = 2;
const REFUSED_OTHER: u64 = 3;

fn cell_word(gen: u32, state: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(state)
}

/// One notifier on its own line.
#[repr(C, align(128))]
struct NotifierLine {
    n: Notifier,
}

// SAFETY: `repr(C)`, atomics (and notifiers) only.
unsafe impl SharedStruct for NotifierLine {}
// SAFETY: `repr(C)`, atomics and notifier lines only.
unsafe impl SharedStruct for ServerHeader {}
// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for Slot {}
// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for Cell {}

/// The server section's header (object `server`).
#[repr(C, align(128))]
pub(crate) struct ServerHeader {
    /// [`SERVER_MAGIC`].
    magic: AtomicU64,
    /// [`PipeMode::as_u32`] of the instances. Invariant: 1 or 2.
    mode: AtomicU32,
    /// Instance slots. Invariant: `1..=MAX_INSTANCES`, matches the `slots` object.
    max_instances: AtomicU32,
    /// Request cells. Invariant: `== CELLS`.
    cells: AtomicU32,
    /// `SERVER_FLAG_*` bits. Invariant: no unknown bits.
    flags: AtomicU32,
    /// Default connect timeout in milliseconds.
    default_timeout_ms: AtomicU64,
    /// Packed identity of the server process.
    server: AtomicU64,
    /// 1 once the server was dropped.
    closed: AtomicU32,
    /// Reserved, zero.
    reserved1: AtomicU32,
    /// Next connection ticket. Only grows; tickets are never 0.
    next_ticket: AtomicU64,
    /// Reserved, zero.
    reserved2: [AtomicU64; 9],
    /// The server sleeps here.
    events: NotifierLine,
    /// Clients sleep here.
    answers: NotifierLine,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ServerHeader>() == 384);

/// An instance slot.
#[repr(C)]
pub(crate) struct Slot {
    /// Ticket of the connection holding the slot; 0: free.
    ticket: AtomicU64,
    /// Packed identity of that connection's client.
    client: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Slot>() == 16);

/// A request cell.
#[repr(C)]
pub(crate) struct Cell {
    /// `generation << 32 | CELL_*`.
    word: AtomicU64,
    /// Packed identity of the requesting client (valid from `PENDING`).
    client: AtomicU64,
    /// The connection's ticket (valid in `ASSIGNED`); the `REFUSED_*` cause in
    /// `REFUSED`.
    ticket: AtomicU64,
    /// The connection's slot (valid in `ASSIGNED`; invariant: `< max_instances`); the
    /// cause's detail in `REFUSED`.
    slot: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Cell>() == 32);

impl Slot {
    /// Accept: takes this free slot for connection `ticket` of `client` (the client's
    /// identity is recorded first, so whoever sees the ticket sees the client). Tickets
    /// never repeat, so every later CAS against a ticket names one connection only.
    pub(crate) fn claim(&self, ticket: u64, client: u64) -> bool {
        self.client.store(client, Ordering::Release);
        self.ticket
            .compare_exchange(0, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Frees the slot if connection `ticket` still holds it. `true` if this call did.
    pub(crate) fn release(&self, ticket: u64) -> bool {
        ticket != 0
            && self
                .ticket
                .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Frees the slot if the client of the connection holding it is dead (`dead` says
    /// so). `true` if this call did.
    pub(crate) fn reclaim_if(&self, dead: impl FnOnce(u64) -> bool) -> bool {
        let ticket = self.ticket.load(Ordering::Acquire);
        ticket != 0 && dead(self.client.load(Ordering::Acquire)) && self.release(ticket)
    }

    /// The ticket of the connection holding the slot (0: free).
    pub(crate) fn ticket(&self) -> u64 {
        self.ticket.load(Ordering::Acquire)
    }
}

#[cfg(all(test, loom))]
impl Slot {
    /// A free slot.
    pub(crate) fn new() -> Self {
        Self {
            ticket: AtomicU64::new(0),
            client: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
impl Cell {
    /// A free cell (all zero).
    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
            client: AtomicU64::new(0),
            ticket: AtomicU64::new(0),
            slot: AtomicU64::new(0),
        }
    }
}

/// The mapped server section, validated; shared by the server and the connection
/// links that must free their slot.
pub(crate) struct ServerShared {
    name: String,
    /// Keeps the mapping (the regions do too) and the descriptor.
    _section: Section,
    header: View<ServerHeader>,
    /// `max_instances` slots.
    slots: SliceView<Slot>,
    /// [`CELLS`] request cells.
    cells: SliceView<Cell>,
    max_instances: usize,
    mode: PipeMode,
    /// The header's [`SERVER_FLAG_SHARED`].
    shared: bool,
}

impl ServerShared {
    fn new(name: &str, section: Section) -> Result<Self> {
        let bad = |what: &str| Error::Corrupted {
            what: format!("pipe server '{name}': {what}"),
        };
        let header = View::<ServerHeader>::new(section.object("server")?)
            .ok_or_else(|| bad("header object too small or misaligned"))?;
        let h = header.get();
        if h.magic.load(Ordering::Acquire) != SERVER_MAGIC {
            return Err(bad("wrong magic"));
        }
        let max = h.max_instances.load(Ordering::Relaxed) as usize;
        if max == 0 || max > MAX_INSTANCES {
            return Err(bad("instance table size"));
        }
        let slots = SliceView::new(section.object("slots")?, max)
            .ok_or_else(|| bad("instance table size"))?;
        if h.cells.load(Ordering::Relaxed) as usize != CELLS {
            return Err(bad("request cell table"));
        }
        let cells = SliceView::new(section.object("cells")?, CELLS)
            .ok_or_else(|| bad("request cell table"))?;
        let flags = h.flags.load(Ordering::Relaxed);
        if flags & !SERVER_FLAG_SHARED != 0 {
            return Err(bad("unknown flags"));
        }
        let mode = PipeMode::from_u32(h.mode.load(Ordering::Relaxed)).ok_or_else(|| bad("mode"))?;
        Ok(Self {
            name: name.to_string(),
            _section: section,
            header,
            slots,
            cells,
            max_instances: max,
            mode,
            shared: flags & SERVER_FLAG_SHARED != 0,
        })
    }

    fn header(&self) -> &ServerHeader {
        self.header.get()
    }

    /// Instance slot `k`; `k < max_instances` (callers iterate below it).
    fn slot(&self, k: usize) -> &Slot {
        &self.slots.as_slice()[k]
    }

    /// Request cell `k`; `k < CELLS` (callers check indices taken from the ring).
    fn cell(&self, k: usize) -> &Cell {
        &self.cells.as_slice()[k]
    }

    /// Whether the server is closed or its process died.
    fn server_gone(&self) -> bool {
        let h = self.header();
        h.closed.load(Ordering::Acquire) != 0
            || culvert_sync::holder_of(h.server.load(Ordering::Acquire))
                != culvert_sync::Holder::Alive
    }
}

/// The instance slot a connection holds; freed on drop of either end (shared mode:
/// on the drop of a holder that finds both ends gone).
pub(crate) struct ServerLink {
    shared: Arc<ServerShared>,
    slot: usize,
    ticket: u64,
    /// Server side: the instance section's name, unlinked on release (the client
    /// normally unlinked it already).
    instance: Option<(String, culvert_section::SectionOptions)>,
    /// Shared instances, once an end is attached: its state block and holder table.
    /// The slot is then freed only when both ends are gone.
    views: Option<(StateView, HolderView)>,
}

impl ServerLink {
    /// Frees the slot (if this connection still holds it) and wakes the server.
    pub(crate) fn release(self) {
        drop(self);
    }

    /// Shared mode: from now on, frees the slot only when both ends of the instance
    /// (`state`, `holders`) are gone.
    pub(crate) fn set_shared_views(&mut self, state: StateView, holders: HolderView) {
        self.views = Some((state, holders));
    }

    /// A link for another holder of the same end in this process (shared mode).
    pub(crate) fn for_another_holder(&self) -> ServerLink {
        ServerLink {
            shared: self.shared.clone(),
            slot: self.slot,
            ticket: self.ticket,
            instance: None,
            views: self.views.clone(),
        }
    }
}

impl Drop for ServerLink {
    fn drop(&mut self) {
        if let Some((state, holders)) = &self.views {
            if !(shared::end_gone(state, holders, 0) && shared::end_gone(state, holders, 1)) {
                // Another holder of either end lives: it, or `accept`, frees the slot.
                return;
            }
        }
        if self.shared.slot(self.slot).release(self.ticket) {
            self.shared.header().events.n.notify();
        }
        if let Some((name, opts)) = &self.instance {
            let _ = Section::unlink(name, opts);
        }
    }
}

/// Shared mode: what `accept` keeps of an instance it made, to free its slot once both
/// ends are gone.
struct TrackedInstance {
    ticket: u64,
    state: StateView,
    holders: HolderView,
    name: String,
}

fn instance_name(pipe: &str, ticket: u64) -> String {
    format!("{pipe}.pipe-{ticket}")
}

/// The server of a named pipe: owns the name, accepts connections.
///
/// Each accepted connection is an instance with its own section and rings; at most
/// [`PipeOptions::max_instances`] exist at once. A client that finds every instance
/// taken waits (up to its timeout) and then gets `Error::Busy`. Dropping the server
/// removes the name; connections already made live on.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
///
/// # fn main() -> culvert::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("culvert-doc-server-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let opts = PipeOptions::default()
///     .mode(PipeMode::Message)
///     .max_instances(2)
///     .root(&dir); // tests and examples use their own namespace directory
/// let server = PipeServer::bind("example-pipe", &opts)?;
/// let client = std::thread::spawn({
///     let opts = opts.clone();
///     move || -> culvert::Result<Vec<u8>> {
///         let mut end = PipeEnd::connect_with("example-pipe", Duration::from_secs(5), &opts)?;
///         let mut reply = [0u8; 64];
///         let got = end.transact(b"hello", &mut reply)?;
///         Ok(reply[..got.len].to_vec())
///     }
/// });
/// let mut conn = server.accept()?;
/// let mut buf = [0u8; 64];
/// let n = conn.read(&mut buf)?;
/// conn.write_all(&buf[..n].to_ascii_uppercase())?;
/// assert_eq!(client.join().unwrap()?, b"HELLO");
/// # drop(server);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct PipeServer {
    shared: Arc<ServerShared>,
    consumer: Mutex<mpmc::Consumer>,
    opts: PipeOptions,
    /// Shared mode: per slot, the instance made for it (see [`TrackedInstance`]).
    tracked: Mutex<Vec<Option<TrackedInstance>>>,
    /// Instances answered whose client has not attached yet.
    pending: Mutex<Vec<accept::PendingAccept>>,
}

impl std::fmt::Debug for PipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeServer")
            .field("name", &self.shared.name)
            .field("max_instances", &self.shared.max_instances)
            .finish_non_exhaustive()
    }
}

impl PipeServer {
    /// Creates the named pipe `name` (`[A-Za-z0-9._-]`, at most 170 characters) with
    /// the mode, `max_instances`, buffer sizes, `max_message` and default timeout of
    /// `opts`. `AlreadyExists` if a live server has the name (a dead server's section is
    /// replaced); `InvalidName`, `InvalidArgument` on bad arguments.
    pub fn bind(name: &str, opts: &PipeOptions) -> Result<PipeServer> {
        validate_pipe_name(name)?;
        opts.validate()?;
        if opts.max_instances == 0 || opts.max_instances > MAX_INSTANCES {
            return Err(Error::InvalidArgument {
                what: format!("max_instances must be 1 to {MAX_INSTANCES}"),
            });
        }
        if opts.shared && opts.mode == PipeMode::Message && opts.max_message > SHARED_MESSAGE_MAX {
            return Err(Error::InvalidArgument {
                what: format!(
                    "shared message pipes carry messages of at most {SHARED_MESSAGE_MAX} bytes \
                     (each ring slot holds a whole message); max_message is {}",
                    opts.max_message
                ),
            });
        }
        let ring_config = mpmc::Config::new(CELLS, REQUEST_LEN).with_max_endpoints(256);
        let ring_len = mpmc::MessageRing::required_size(&ring_config)?;
        let slots_len = opts.max_instances * std::mem::size_of::<Slot>();
        let cells_len = CELLS * std::mem::size_of::<Cell>();
        let total = std::mem::size_of::<ServerHeader>() + slots_len + cells_len + ring_len + 8192;
        let sopts = opts.section_for(SectionKind::PipeServer);
        let mut section = Section::create_replacing_stale(name, total as u64, &sopts, |old| {
            Self::server_gone_in(name, old, &sopts)
        })
        .map_err(|e| match e {
            culvert_section::Error::AlreadyExists { .. } => Error::AlreadyExists {
                name: name.to_string(),
            },
            e => e.into(),
        })?;
        let header = section.add_object(
            "server",
            OBJ_HEADER,
            std::mem::size_of::<ServerHeader>() as u64,
            128,
        )?;
        section.add_object("slots", OBJ_SLOTS, slots_len as u64, 64)?;
        section.add_object("cells", OBJ_CELLS, cells_len as u64, 64)?;
        let requests = section.add_object("requests", OBJ_REQUESTS, ring_len as u64, 4096)?;
        mpmc::MessageRing::init(&requests, &ring_config)?;
        {
            // Nobody else maps the section until it is marked ready.
            let h = header
                .view::<ServerHeader>(0)
                .ok_or_else(|| Error::Corrupted {
                    what: "pipe server header object misplaced".into(),
                })?;
            h.mode.store(opts.mode.as_u32(), Ordering::Relaxed);
            h.max_instances
                .store(opts.max_instances as u32, Ordering::Relaxed);
            h.cells.store(CELLS as u32, Ordering::Relaxed);
            h.flags.store(
                if opts.shared { SERVER_FLAG_SHARED } else { 0 },
                Ordering::Relaxed,
            );
            h.default_timeout_ms.store(
                opts.default_timeout.as_millis().min(u128::from(u64::MAX)) as u64,
                Ordering::Relaxed,
            );
            h.server
                .store(ProcessIdentity::me().packed(), Ordering::Relaxed);
            h.next_ticket.store(1, Ordering::Relaxed);
            h.magic.store(SERVER_MAGIC, Ordering::Release);
        }
        section.mark_ready()?;
        let mut consumer = mpmc::Consumer::attach(&requests)?;
        consumer.set_wait_strategy(opts.wait_strategy);
        Ok(PipeServer {
            shared: Arc::new(ServerShared::new(name, section)?),
            consumer: Mutex::new(consumer),
            opts: opts.clone(),
            tracked: Mutex::new((0..opts.max_instances).map(|_| None).collect()),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Whether `section` (at `name`) belongs to a server that is gone: closed, its
    /// process dead, or its header unreadable.
    fn server_gone_in(name: &str, section: &Section, sopts: &SectionOptions) -> bool {
        let view = section
            .as_fd()
            .try_clone_to_owned()
            .map_err(Error::from)
            .and_then(|fd| Ok(Section::from_fd_with(fd, name, sopts)?))
            .and_then(|s| ServerShared::new(name, s));
        view.map_or(true, |shared| shared.server_gone())
    }

    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The mode of its instances.
    pub fn mode(&self) -> PipeMode {
        self.shared.mode
    }

    /// Instances in use (connections whose ends are not both gone).
    pub fn instances_in_use(&self) -> usize {
        if self.shared.shared {
            self.reclaim_shared_instances();
        }
        (0..self.shared.max_instances)
            .filter(|&k| self.shared.slot(k).ticket() != 0)
            .count()
    }

    /// Waits for a client and returns the server end of the new connection.
    ///
    /// # Errors
    /// As [`accept_until`](Self::accept_until), without `Timeout`.
    pub fn accept(&self) -> Result<PipeEnd> {
        self.accept_until(Deadline::never())
    }

    /// [`accept`](Self::accept) as a future: waits for a client without blocking the
    /// thread.
    ///
    /// # Errors
    /// As [`accept_until`](Self::accept_until), without `Timeout`.
    pub async fn accept_async(&self) -> Result<PipeEnd> {
        let mut me = self;
        crate::asyncio::until_ready(
            &mut me,
            |s| s.try_accept(),
            |s, f| culvert_sync::Waitable::notifiers(*s, f),
        )
        .await
    }

    /// Accepts a client that is already waiting, never waiting itself; `WouldBlock`
    /// if none is (or no instance is free). A client whose request was answered is
    /// handed out by the first call after it attached its end.
    pub fn try_accept(&self) -> Result<PipeEnd> {
        match self.accept_step(true)? {
            Some(end) => Ok(end),
            None => Err(Error::WouldBlock),
        }
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|p| p.into_inner()));
        pending.into_iter().for_each(accept::PendingAccept::abandon);
        let h = self.shared.header();
        h.closed.store(1, Ordering::Release);
        h.answers.n.notify();
        if let Ok(c) = self.consumer.get_mut() {
            c.close();
        }
        let _ = Section::unlink(
            &self.shared.name,
            &self.opts.section_for(SectionKind::PipeServer),
        );
    }
}

impl PipeServer {
    /// Never waits: a client's connect request is waiting (or the request ring broke),
    /// or an answered client attached.
    fn connect_waiting(&self, ctx: culvert_sync::WaitContext) -> bool {
        self.attached_waiting()
            || culvert_sync::Waitable::poll_ready(
                &mut *self.consumer.lock().unwrap_or_else(|e| e.into_inner()),
                ctx,
            )
    }

    /// The request ring's notifier, and `events` (clients notify it once attached).
    fn request_notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        let consumer = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        culvert_sync::Waitable::notifiers(&*consumer, f);
        f(&self.shared.header().events.n);
    }
}

// SAFETY: the notifier lives in the server's mapped section, not in the server value.
unsafe impl culvert_sync::Waitable for PipeServer {
    /// True when a client's connect request is waiting (or the request ring broke):
    /// [`try_accept`](PipeServer::try_accept) then answers it, unless every instance is
    /// taken.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.connect_waiting(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.request_notifiers(f);
    }
}

// SAFETY: as for `PipeServer`.
unsafe impl culvert_sync::Waitable for &PipeServer {
    /// As for [`PipeServer`]; for a server shared between threads or tasks.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.connect_waiting(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.request_notifiers(f);
    }
}
