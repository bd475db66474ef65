//! The memory of a named pipe's server section, and [`ServerTables`]: that section
//! mapped and validated, as the server, its clients and every connection's link see it.
//!
//! The objects (see the `named` module for the protocol): `server` ([`ServerHeader`]),
//! `slots` (`max_instances` [`Slot`]s), `cells` ([`CELLS`] [`Cell`]s) and `requests`
//! (an MPMC ring of [`REQUEST_LEN`]-byte requests). Every struct is `#[repr(C)]` with
//! its size asserted; every word is written by CAS or store and may be a hostile
//! peer's: the configuration is validated once, when the section is mapped
//! ([`ServerTables::new`]), and indices read from shared memory are checked by the
//! callers before use. Nothing here waits.

use std::time::Duration;

use culvert_section::{Section, SharedStruct, SliceView, View};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::Notifier;

use super::super::options::{PipeMode, MAX_INSTANCES};
use crate::{Error, Result};

/// Magic of a [`ServerHeader`]: "CLVPSRV" + version.
pub(super) const SERVER_MAGIC: u64 = u64::from_le_bytes(*b"CLVPSRV\x01");
/// Request cells (concurrent connect attempts).
pub(super) const CELLS: usize = 64;
/// Object kinds in the server section.
pub(super) const OBJ_HEADER: u32 = 0x5053_0001;
pub(super) const OBJ_SLOTS: u32 = 0x5053_0002;
pub(super) const OBJ_CELLS: u32 = 0x5053_0003;
pub(super) const OBJ_REQUESTS: u32 = 0x5053_0004;
/// Request message: cell index and generation, both `u32` LE.
pub(super) const REQUEST_LEN: usize = 8;
/// [`ServerHeader::flags`]: the instances are shared (MPMC rings, holder table).
pub(super) const SERVER_FLAG_SHARED: u32 = 1;
/// Largest default timeout honoured from a server's header.
pub(super) const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Cell states (low 32 bits of [`Cell::word`]; the high 32 bits are a generation).
pub(super) const CELL_FREE: u32 = 0;
pub(super) const CELL_CLAIMED: u32 = 1;
pub(super) const CELL_PENDING: u32 = 2;
pub(super) const CELL_ASSIGNED: u32 = 3;
/// The server could not make the connection; the cell's `ticket` holds a
/// `REFUSED_*` cause and `slot` its detail.
pub(super) const CELL_REFUSED: u32 = 4;

/// Refusal causes (a refused cell's `ticket`).
pub(super) const REFUSED_NO_SPACE: u64 = 1;
pub(super) const REFUSED_OS_ERROR: u64 = 2;
pub(super) const REFUSED_OTHER: u64 = 3;

/// A cell's state word: `generation << 32 | state`.
pub(super) fn cell_word(gen: u32, state: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(state)
}

/// One notifier on its own line.
#[repr(C, align(128))]
pub(super) struct NotifierLine {
    pub(super) n: Notifier,
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
pub(super) struct ServerHeader {
    /// [`SERVER_MAGIC`].
    pub(super) magic: AtomicU64,
    /// [`PipeMode::as_u32`] of the instances. Invariant: 1 or 2.
    pub(super) mode: AtomicU32,
    /// Instance slots. Invariant: `1..=MAX_INSTANCES`, matches the `slots` object.
    pub(super) max_instances: AtomicU32,
    /// Request cells. Invariant: `== CELLS`.
    pub(super) cells: AtomicU32,
    /// `SERVER_FLAG_*` bits. Invariant: no unknown bits.
    pub(super) flags: AtomicU32,
    /// Default connect timeout in milliseconds.
    pub(super) default_timeout_ms: AtomicU64,
    /// Packed identity of the server process.
    pub(super) server: AtomicU64,
    /// 1 once the server was dropped.
    pub(super) closed: AtomicU32,
    /// Reserved, zero.
    reserved1: AtomicU32,
    /// Next connection ticket. Only grows; tickets are never 0.
    pub(super) next_ticket: AtomicU64,
    /// Reserved, zero.
    reserved2: [AtomicU64; 9],
    /// The server sleeps here.
    pub(super) events: NotifierLine,
    /// Clients sleep here.
    pub(super) answers: NotifierLine,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ServerHeader>() == 384);

/// An instance slot.
#[repr(C)]
pub(super) struct Slot {
    /// Ticket of the connection holding the slot; 0: free.
    pub(super) ticket: AtomicU64,
    /// Packed identity of that connection's client.
    pub(super) client: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Slot>() == 16);

/// A request cell.
#[repr(C)]
pub(super) struct Cell {
    /// `generation << 32 | CELL_*`.
    pub(super) word: AtomicU64,
    /// Packed identity of the requesting client (valid from `PENDING`).
    pub(super) client: AtomicU64,
    /// The connection's ticket (valid in `ASSIGNED`); the `REFUSED_*` cause in
    /// `REFUSED`.
    pub(super) ticket: AtomicU64,
    /// The connection's slot (valid in `ASSIGNED`; invariant: `< max_instances`); the
    /// cause's detail in `REFUSED`.
    pub(super) slot: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Cell>() == 32);

#[cfg(all(test, loom))]
impl Slot {
    /// A free slot.
    pub(super) fn new() -> Self {
        Self {
            ticket: AtomicU64::new(0),
            client: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
impl Cell {
    /// A free cell (all zero).
    pub(super) fn new() -> Self {
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
pub(super) struct ServerTables {
    /// The pipe's name.
    pub(super) name: String,
    /// Keeps the mapping (the regions do too) and the descriptor.
    pub(super) _section: Section,
    header: View<ServerHeader>,
    /// `max_instances` slots.
    slots: SliceView<Slot>,
    /// [`CELLS`] request cells.
    cells: SliceView<Cell>,
    /// Slots in the instance table (validated: `1..=MAX_INSTANCES`).
    pub(super) max_instances: usize,
    /// The mode of the instances.
    pub(super) mode: PipeMode,
    /// The header's [`SERVER_FLAG_SHARED`].
    pub(super) shared_mode: bool,
}

impl ServerTables {
    /// Validates the server section `section` of pipe `name` and maps its tables.
    /// `Corrupted` for a bad magic, table size, mode or flags.
    pub(super) fn new(name: &str, section: Section) -> Result<Self> {
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
            shared_mode: flags & SERVER_FLAG_SHARED != 0,
        })
    }

    /// The header.
    pub(super) fn header(&self) -> &ServerHeader {
        self.header.get()
    }

    /// Instance slot `k`; `k < max_instances` (callers iterate below it).
    pub(super) fn slot(&self, k: usize) -> &Slot {
        &self.slots.as_slice()[k]
    }

    /// Request cell `k`; `k < CELLS` (callers check indices taken from the ring).
    pub(super) fn cell(&self, k: usize) -> &Cell {
        &self.cells.as_slice()[k]
    }

    /// Whether the server is closed or its process died.
    pub(super) fn server_gone(&self) -> bool {
        let h = self.header();
        h.closed.load(Ordering::Acquire) != 0
            || culvert_sync::holder_of(h.server.load(Ordering::Acquire))
                != culvert_sync::Holder::Alive
    }
}
