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
//! Accept: with a free slot, take a request, skip withdrawn cells and dead clients,
//! create the instance section (end 1 expected to be the client, so a client dying
//! before it attaches is noticed), answer the cell (`PENDING → ASSIGNED`), and wait
//! (up to `ATTACH_GRACE`, notified on `events`) until the client attached, so the
//! returned end knows its peer, as after Windows' `ConnectNamedPipe`; a client that
//! gives up or dies first is dropped and the next request taken. If the instance
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
use culvert_section::{Region, Section, SectionKind, SectionOptions};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::{wait_for, Deadline, Liveness, Notifier, ProcessIdentity};

use super::end::PipeEnd;
use super::layout::{create_instance, Placement, StateView, SHARED_MESSAGE_MAX};
use super::options::{validate_pipe_name, PipeMode, PipeOptions, MAX_INSTANCES};
use super::shared::{self, HolderView};
use crate::{Error, Result};

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

/// How long `accept` waits for an answered client to attach its end.
const ATTACH_GRACE: Duration = Duration::from_secs(5);

/// The refusal cause and detail a server writes for `e`.
fn refusal_of(e: &Error) -> (u64, u64) {
    match e {
        Error::Section(culvert_section::Error::NoSpace { size, .. }) => (REFUSED_NO_SPACE, *size),
        Error::Io(io) => match io.raw_os_error() {
            Some(errno) => (REFUSED_OS_ERROR, errno as u64),
            None => (REFUSED_OTHER, 0),
        },
        _ => (REFUSED_OTHER, 0),
    }
}

/// The error a client reports for a refusal read from its cell (untrusted values).
fn refusal_error(cause: u64, detail: u64, pipe: &str, root: std::path::PathBuf) -> Error {
    match cause {
        REFUSED_NO_SPACE => Error::Section(culvert_section::Error::NoSpace {
            name: format!("{pipe} (an instance of the pipe)"),
            size: detail,
            root,
        }),
        REFUSED_OS_ERROR if detail <= i32::MAX as u64 => {
            Error::Io(std::io::Error::from_raw_os_error(detail as i32))
        }
        _ => Error::Io(std::io::Error::other(format!(
            "the server of pipe '{pipe}' could not make the connection"
        ))),
    }
}

fn cell_word(gen: u32, state: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(state)
}

/// One notifier on its own line.
#[repr(C, align(128))]
struct NotifierLine {
    n: Notifier,
}

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

/// The mapped server section, validated; shared by the server and the connection
/// links that must free their slot.
pub(crate) struct ServerShared {
    name: String,
    /// Keeps the mapping (the regions do too) and the descriptor.
    _section: Section,
    header: Region,
    slots: Region,
    cells: Region,
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
        let header = section.object("server")?;
        if header.len() < std::mem::size_of::<ServerHeader>()
            || !header.is_aligned_to(std::mem::align_of::<ServerHeader>())
        {
            return Err(bad("header object too small or misaligned"));
        }
        let slots = section.object("slots")?;
        let cells = section.object("cells")?;
        let mut s = Self {
            name: name.to_string(),
            _section: section,
            header,
            slots,
            cells,
            max_instances: 0,
            mode: PipeMode::Byte,
            shared: false,
        };
        let h = s.header();
        if h.magic.load(Ordering::Acquire) != SERVER_MAGIC {
            return Err(bad("wrong magic"));
        }
        let max = h.max_instances.load(Ordering::Relaxed) as usize;
        if max == 0 || max > MAX_INSTANCES || s.slots.len() < max * std::mem::size_of::<Slot>() {
            return Err(bad("instance table size"));
        }
        if h.cells.load(Ordering::Relaxed) as usize != CELLS
            || s.cells.len() < CELLS * std::mem::size_of::<Cell>()
            || !s.slots.is_aligned_to(8)
            || !s.cells.is_aligned_to(8)
        {
            return Err(bad("request cell table"));
        }
        let flags = h.flags.load(Ordering::Relaxed);
        if flags & !SERVER_FLAG_SHARED != 0 {
            return Err(bad("unknown flags"));
        }
        s.mode = PipeMode::from_u32(h.mode.load(Ordering::Relaxed)).ok_or_else(|| bad("mode"))?;
        s.shared = flags & SERVER_FLAG_SHARED != 0;
        s.max_instances = max;
        Ok(s)
    }

    fn header(&self) -> &ServerHeader {
        // SAFETY: checked in `new`: the object is large and aligned enough; the region
        // keeps the mapping alive; every field is atomic.
        unsafe { &*self.header.as_ptr().cast::<ServerHeader>() }
    }

    fn slot(&self, k: usize) -> &Slot {
        assert!(k < self.max_instances);
        // SAFETY: `k < max_instances`, and the object holds `max_instances` slots (checked
        // in `new`), 8-aligned; all fields are atomic.
        unsafe { &*self.slots.as_ptr().cast::<Slot>().add(k) }
    }

    fn cell(&self, k: usize) -> &Cell {
        assert!(k < CELLS);
        // SAFETY: `k < CELLS`, and the object holds `CELLS` cells (checked in `new`),
        // 8-aligned; all fields are atomic.
        unsafe { &*self.cells.as_ptr().cast::<Cell>().add(k) }
    }

    /// Whether the server is closed or its process died.
    fn server_gone(&self) -> bool {
        let h = self.header();
        h.closed.load(Ordering::Acquire) != 0
            || ProcessIdentity::packed_liveness(h.server.load(Ordering::Acquire)) == Liveness::Dead
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
        let slot = self.shared.slot(self.slot);
        if slot
            .ticket
            .compare_exchange(self.ticket, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
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
///         let mut end = PipeEnd::connect_with("example-pipe", Some(Duration::from_secs(5)), &opts)?;
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
            // SAFETY: the object is size_of::<ServerHeader>() bytes, 128-aligned, zeroed,
            // and nobody else maps the section until it is marked ready.
            let h = unsafe { &*header.as_ptr().cast::<ServerHeader>() };
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
            .filter(|&k| self.shared.slot(k).ticket.load(Ordering::Acquire) != 0)
            .count()
    }

    /// Waits for a client and returns the server end of the new connection.
    pub fn accept(&self) -> Result<PipeEnd> {
        self.accept_deadline(Deadline::never())
    }

    /// [`accept`](Self::accept), giving up with `Timeout` after `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<PipeEnd> {
        self.accept_deadline(Deadline::after(timeout))
    }

    /// Accepts a client that is already waiting; `WouldBlock` if none is (or no
    /// instance is free).
    pub fn try_accept(&self) -> Result<PipeEnd> {
        match self.accept_deadline(Deadline::now()) {
            Err(Error::Timeout) => Err(Error::WouldBlock),
            other => other,
        }
    }

    /// [`accept`](Self::accept) until `deadline` (`Timeout`).
    pub fn accept_deadline(&self, deadline: Deadline) -> Result<PipeEnd> {
        let mut consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let shared = &self.shared;
        let mut first = true;
        wait_for(
            &shared.header().events.n,
            self.opts.wait_strategy,
            deadline,
            |ctx| {
                if ctx.liveness_due || first {
                    first = false;
                    self.reclaim_dead_clients();
                }
                loop {
                    let Some(k) = (0..shared.max_instances)
                        .find(|&k| shared.slot(k).ticket.load(Ordering::Acquire) == 0)
                    else {
                        return Ok(None);
                    };
                    let mut msg = [0u8; REQUEST_LEN];
                    match consumer.try_recv(&mut msg) {
                        Ok(REQUEST_LEN) => {}
                        Ok(_) => continue, // malformed: skip
                        Err(culvert_ring::Error::WouldBlock) => return Ok(None),
                        Err(culvert_ring::Error::BufferTooSmall { .. }) => {
                            // Hostile oversized request: drain it into a scratch buffer.
                            let _ = consumer.try_recv_with(|_| ());
                            continue;
                        }
                        Err(e) => return Err(Error::from(e)),
                    }
                    let idx = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
                    let gen = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
                    if idx >= CELLS {
                        continue;
                    }
                    if let Some(end) = self.answer(idx, gen, k)? {
                        return Ok(Some(end));
                    }
                }
            },
        )
    }

    /// Shared mode: frees the slots of connections whose ends are both gone (every
    /// holder of each closed or died), and unlinks their instance sections' names.
    fn reclaim_shared_instances(&self) {
        let shared = &self.shared;
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        for (k, entry) in tracked.iter_mut().enumerate().take(shared.max_instances) {
            let Some(t) = entry else { continue };
            let slot = shared.slot(k);
            let ticket = slot.ticket.load(Ordering::Acquire);
            if ticket == t.ticket
                && !(shared::end_gone(&t.state, &t.holders, 0)
                    && shared::end_gone(&t.state, &t.holders, 1))
            {
                continue;
            }
            if ticket == t.ticket {
                let _ =
                    slot.ticket
                        .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire);
            }
            // Freed here, or already by a holder's link: forget the instance.
            let _ = Section::unlink(&t.name, &self.opts.section_for(SectionKind::Pipe));
            *entry = None;
        }
    }

    /// Frees the slots of clients that died (shared mode: of connections whose ends
    /// are both gone).
    fn reclaim_dead_clients(&self) {
        let shared = &self.shared;
        // Shared mode: the client's death alone frees nothing (its children may hold
        // its end); both ends must be gone.
        let slots = if shared.shared {
            self.reclaim_shared_instances();
            0
        } else {
            shared.max_instances
        };
        for k in 0..slots {
            let slot = shared.slot(k);
            let ticket = slot.ticket.load(Ordering::Acquire);
            if ticket == 0 {
                continue;
            }
            let client = slot.client.load(Ordering::Acquire);
            if client != 0 && ProcessIdentity::packed_liveness(client) == Liveness::Dead {
                let _ =
                    slot.ticket
                        .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        // Cells of dead clients (a client that died while asking).
        for i in 0..CELLS {
            let cell = shared.cell(i);
            let word = cell.word.load(Ordering::Acquire);
            let state = word as u32;
            if state == CELL_FREE {
                continue;
            }
            let client = cell.client.load(Ordering::Acquire);
            if client != 0 && ProcessIdentity::packed_liveness(client) == Liveness::Dead {
                let gen = (word >> 32) as u32;
                if cell
                    .word
                    .compare_exchange(
                        word,
                        cell_word(gen, CELL_FREE),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    shared.header().answers.n.notify();
                }
            }
        }
    }

    /// Answers the request in cell `idx` (generation `gen`) with instance slot `k`.
    /// `None` when the request was withdrawn or its client died.
    fn answer(&self, idx: usize, gen: u32, k: usize) -> Result<Option<PipeEnd>> {
        let shared = &self.shared;
        let cell = shared.cell(idx);
        let pending = cell_word(gen, CELL_PENDING);
        if cell.word.load(Ordering::Acquire) != pending {
            return Ok(None);
        }
        let client = cell.client.load(Ordering::Acquire);
        if ProcessIdentity::packed_liveness(client) == Liveness::Dead {
            let _ = cell.word.compare_exchange(
                pending,
                cell_word(gen, CELL_FREE),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            return Ok(None);
        }
        match self.make_instance(cell, gen, k, client) {
            Ok(end) => Ok(end),
            Err(e) => {
                // Tell the client why, at once, then report it to our caller.
                crate::trace::event!(WARN, pipe = %shared.name, error = %e, "pipe connection refused");
                let (cause, detail) = refusal_of(&e);
                cell.ticket.store(cause, Ordering::Release);
                cell.slot.store(detail, Ordering::Release);
                if cell
                    .word
                    .compare_exchange(
                        pending,
                        cell_word(gen, CELL_REFUSED),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    shared.header().answers.n.notify();
                }
                Err(e)
            }
        }
    }

    /// Creates the instance for the request in `cell` (generation `gen`) in slot `k`,
    /// answers the cell and waits (up to [`ATTACH_GRACE`]) for the client to attach.
    /// `None` when the request was withdrawn, or the client gave up or died before
    /// attaching (the slot is then free again).
    fn make_instance(
        &self,
        cell: &Cell,
        gen: u32,
        k: usize,
        client: u64,
    ) -> Result<Option<PipeEnd>> {
        let shared = &self.shared;
        let pending = cell_word(gen, CELL_PENDING);
        let sopts = self.opts.section_for(SectionKind::Pipe);
        let mut attempts = 0;
        let (section, ticket, name) = loop {
            let ticket = shared.header().next_ticket.fetch_add(1, Ordering::AcqRel);
            let name = instance_name(&shared.name, ticket);
            let mut opts = self.opts.clone();
            opts.mode = shared.mode;
            match create_instance(
                Placement::Named(&name),
                shared.mode,
                &opts,
                k as u32,
                ticket,
                client,
            ) {
                Ok(s) => break (s, ticket, name),
                Err(Error::AlreadyExists { .. }) if attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let slot = shared.slot(k);
        slot.client.store(client, Ordering::Release);
        if slot
            .ticket
            .compare_exchange(0, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            let _ = Section::unlink(&name, &sopts);
            return Ok(None);
        }
        let link = ServerLink {
            shared: shared.clone(),
            slot: k,
            ticket,
            instance: Some((name.clone(), sopts.clone())),
            views: None,
        };
        let end = PipeEnd::attach(section, 0, self.opts.wait_strategy, Some(link))?;
        let views = if shared.shared {
            let state = StateView::new(end.section().object(super::layout::STATE_NAME)?)?;
            let holders = HolderView::open(end.section())?;
            let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            tracked[k] = Some(TrackedInstance {
                ticket,
                state: state.clone(),
                holders,
                name: name.clone(),
            });
            Some(state)
        } else {
            None
        };
        cell.ticket.store(ticket, Ordering::Release);
        cell.slot.store(k as u64, Ordering::Release);
        if cell
            .word
            .compare_exchange(
                pending,
                cell_word(gen, CELL_ASSIGNED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Withdrawn at the last moment: dropping the end frees the slot. Shared
            // mode: the client will not attach, so its end is gone too.
            if let Some(state) = &views {
                shared::mark_gone(state, 1);
            }
            drop(end);
            return Ok(None);
        }
        shared.header().answers.n.notify();
        // The client attaches next; return once it did (its pid known), so a caller
        // never sees a connection whose client is not there yet.
        let attached: Result<bool> = wait_for(
            &shared.header().events.n,
            self.opts.wait_strategy,
            Deadline::after(ATTACH_GRACE),
            |ctx| {
                if end.is_peer_attached() {
                    return Ok(Some(true));
                }
                let released = slot.ticket.load(Ordering::Acquire) != ticket;
                let died =
                    ctx.liveness_due && ProcessIdentity::packed_liveness(client) == Liveness::Dead;
                Ok((released || died).then_some(false))
            },
        );
        match attached {
            Ok(true) if end.peer_pid().is_some() => {
                crate::trace::event!(INFO, pipe = %shared.name, client_pid = end.peer_pid().unwrap_or(0), "pipe connection accepted");
                Ok(Some(end))
            }
            _ => {
                if let Some(state) = &views {
                    shared::mark_gone(state, 1);
                }
                drop(end);
                Ok(None)
            }
        }
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
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

impl PipeEnd {
    /// Connects to the named pipe `name` in the default namespace (`$CULVERT_ROOT`, else
    /// `/dev/shm`), waiting up to `timeout` for a free instance (`None`: the server's
    /// default timeout). `NotFound` if no live server has the name; `Busy` if no
    /// instance became free in time (Windows' `WaitNamedPipe` rule).
    pub fn connect(name: &str, timeout: Option<Duration>) -> Result<PipeEnd> {
        Self::connect_with(name, timeout, &PipeOptions::default())
    }

    /// [`connect`](Self::connect) with the namespace, wait strategy and section options
    /// of `opts` (its other fields come from the server).
    pub fn connect_with(
        name: &str,
        timeout: Option<Duration>,
        opts: &PipeOptions,
    ) -> Result<PipeEnd> {
        validate_pipe_name(name)?;
        let not_found = || Error::NotFound {
            name: name.to_string(),
        };
        let sopts = opts.section_for(SectionKind::PipeServer);
        let section = match Section::open(name, &sopts) {
            Ok(s) => s,
            Err(
                culvert_section::Error::NotFound { .. }
                | culvert_section::Error::Stale { .. }
                | culvert_section::Error::Poisoned { .. },
            ) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let requests = section.object("requests")?;
        let shared = Arc::new(ServerShared::new(name, section)?);
        if shared.server_gone() {
            return Err(not_found());
        }
        let h = shared.header();
        let timeout = timeout.unwrap_or_else(|| {
            Duration::from_millis(h.default_timeout_ms.load(Ordering::Relaxed))
                .min(MAX_DEFAULT_TIMEOUT)
        });
        let deadline = Deadline::after(timeout);
        let strategy = opts.wait_strategy;
        let busy = || Error::Busy {
            what: format!("every instance of pipe '{name}' is taken"),
        };
        let me = ProcessIdentity::me().packed();

        // 1. Claim a request cell.
        let claimed = wait_for(&h.answers.n, strategy, deadline, |ctx| {
            if ctx.liveness_due && shared.server_gone() {
                return Err(not_found());
            }
            for i in 0..CELLS {
                let cell = shared.cell(i);
                let word = cell.word.load(Ordering::Acquire);
                if word as u32 != CELL_FREE {
                    continue;
                }
                let gen = ((word >> 32) as u32).wrapping_add(1);
                if cell
                    .word
                    .compare_exchange(
                        word,
                        cell_word(gen, CELL_CLAIMED),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    return Ok(Some((i, gen)));
                }
            }
            Ok(None)
        });
        let (idx, gen) = match claimed {
            Ok(c) => c,
            Err(Error::Timeout) => return Err(busy()),
            Err(e) => return Err(e),
        };
        let cell = shared.cell(idx);
        cell.client.store(me, Ordering::Release);
        cell.word
            .store(cell_word(gen, CELL_PENDING), Ordering::Release);
        let withdraw = || {
            let ok = cell
                .word
                .compare_exchange(
                    cell_word(gen, CELL_PENDING),
                    cell_word(gen, CELL_FREE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            if ok {
                h.answers.n.notify();
            }
            ok
        };

        // 2. Ask through the request ring.
        let mut msg = [0u8; REQUEST_LEN];
        msg[..4].copy_from_slice(&(idx as u32).to_le_bytes());
        msg[4..].copy_from_slice(&gen.to_le_bytes());
        let sent = mpmc::Producer::attach(&requests).and_then(|mut p| {
            p.set_wait_strategy(strategy);
            p.send(&msg, deadline)
        });
        if let Err(e) = sent {
            withdraw();
            return Err(match e {
                culvert_ring::Error::Timeout | culvert_ring::Error::Busy { .. } => busy(),
                culvert_ring::Error::Closed => not_found(),
                e => e.into(),
            });
        }
        h.events.n.notify();

        // 3. Wait for the answer.
        let assigned = cell_word(gen, CELL_ASSIGNED);
        let refused = cell_word(gen, CELL_REFUSED);
        let answered = wait_for(&h.answers.n, strategy, deadline, |ctx| {
            let word = cell.word.load(Ordering::Acquire);
            if word == assigned {
                return Ok(Some(()));
            }
            if word == refused {
                let cause = cell.ticket.load(Ordering::Acquire);
                let detail = cell.slot.load(Ordering::Acquire);
                cell.word
                    .store(cell_word(gen, CELL_FREE), Ordering::Release);
                h.answers.n.notify();
                let root = opts.section.namespace_root().unwrap_or_default();
                return Err(refusal_error(cause, detail, name, root));
            }
            if word != cell_word(gen, CELL_PENDING) {
                return Err(Error::Corrupted {
                    what: format!("pipe server '{name}': request cell changed hands"),
                });
            }
            if ctx.liveness_due && shared.server_gone() {
                return Err(not_found());
            }
            Ok(None)
        });
        match answered {
            Ok(()) => {}
            Err(e @ (Error::Timeout | Error::NotFound { .. })) => {
                if withdraw() {
                    return Err(if matches!(e, Error::Timeout) {
                        busy()
                    } else {
                        e
                    });
                }
                // Answered just in time: connect after all.
            }
            Err(e) => return Err(e),
        }
        let ticket = cell.ticket.load(Ordering::Acquire);
        let slot = cell.slot.load(Ordering::Acquire) as usize;
        cell.word
            .store(cell_word(gen, CELL_FREE), Ordering::Release);
        h.answers.n.notify();
        if ticket == 0 || slot >= shared.max_instances {
            return Err(Error::Corrupted {
                what: format!("pipe server '{name}': answer out of range"),
            });
        }

        // 4. Open the instance.
        let link = ServerLink {
            shared: shared.clone(),
            slot,
            ticket,
            instance: None,
            views: None,
        };
        let iname = instance_name(name, ticket);
        let iopts = opts.section_for(SectionKind::Pipe);
        let section = match Section::open(&iname, &iopts) {
            Ok(s) => s,
            Err(e) => {
                link.release();
                return Err(e.into());
            }
        };
        let _ = Section::unlink(&iname, &iopts);
        let end = PipeEnd::attach(section, 1, strategy, Some(link));
        // The server's accept waits for this attach.
        h.events.n.notify();
        end
    }
}
