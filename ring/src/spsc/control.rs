//! The SPSC control block: the `#[repr(C)]` struct at the start of every SPSC ring.

use culvert_sync::atomic::{AtomicU32, AtomicU64};
use culvert_sync::Notifier;

use super::echo::Echo;
use crate::layout::ring_magic;

/// Kind byte of the byte ring's magic.
pub(crate) const KIND_BYTE: u8 = 1;
/// Kind byte of the message ring's magic.
pub(crate) const KIND_MESSAGE: u8 = 2;
/// Smallest capacity accepted.
pub(crate) const MIN_CAPACITY: usize = 64;
/// Largest capacity accepted (1 TiB): keeps every position sum far from overflow.
pub(crate) const MAX_CAPACITY: usize = 1 << 40;

/// How to lay out an SPSC ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Data bytes; a power of two, at least 64.
    pub capacity: usize,
    /// Largest message (message ring); at most `capacity - 8`. Ignored by byte rings.
    pub max_message: usize,
}

impl Config {
    /// A byte ring of `capacity` bytes.
    pub const fn bytes(capacity: usize) -> Self {
        Self {
            capacity,
            max_message: 0,
        }
    }

    /// A message ring of `capacity` bytes holding messages of up to `max_message` bytes.
    pub const fn messages(capacity: usize, max_message: usize) -> Self {
        Self {
            capacity,
            max_message,
        }
    }
}

/// Words fixed at `init`. Copied out and validated once at attach; never re-read.
#[repr(C, align(128))]
pub(crate) struct ConfigLine {
    /// `ring_magic(KIND_*)`.
    pub magic: AtomicU64,
    /// Data bytes. Invariant: power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub capacity: AtomicU64,
    /// Largest message payload. Invariant: `<= capacity - 8` (0 for byte rings).
    pub max_message: AtomicU64,
}

/// Written only by the writer (hot).
#[repr(C, align(128))]
pub(crate) struct WriterLine {
    /// Bytes ever committed. Invariant: `head <= tail <= head + capacity`; only grows.
    pub tail: AtomicU64,
    /// Byte rings: a copy of the last small write, on the tail's cache line (see
    /// `echo`). Unused by message rings.
    pub echo: Echo,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(WriterLine, echo) + std::mem::size_of::<Echo>() <= 64);

/// Written only by the reader (hot).
#[repr(C, align(128))]
pub(crate) struct ReaderLine {
    /// Bytes ever released. Invariant: `head <= tail`; only grows; 8-aligned in
    /// message rings.
    pub head: AtomicU64,
}

/// Written rarely: at attach and close.
#[repr(C, align(128))]
pub(crate) struct StateLine {
    /// 1 once the writer closed (after its last tail store). Never goes back to 0.
    pub writer_closed: AtomicU32,
    /// 1 once the reader closed. Never goes back to 0.
    pub reader_closed: AtomicU32,
    /// Packed `ProcessIdentity` of the writer's process, 0 before one attached.
    pub writer_owner: AtomicU64,
    /// Packed `ProcessIdentity` of the reader's process, 0 before one attached.
    pub reader_owner: AtomicU64,
}

/// One notifier on its own line.
#[repr(C, align(128))]
pub(crate) struct NotifierLine {
    /// The eventcount.
    pub notifier: Notifier,
}

/// Data guards under loom (ring positions are mapped onto them modulo this; the
/// models use capacities up to it, so each data byte has its own guard).
#[cfg(loom)]
pub(crate) const LOOM_DATA_GUARDS: usize = 256;

/// The control block. Data follows at `size_of::<SpscControl>()` bytes.
#[repr(C)]
pub(crate) struct SpscControl {
    pub config: ConfigLine,
    pub writer: WriterLine,
    pub reader: ReaderLine,
    pub state: StateLine,
    /// Readers sleep here; the writer notifies after each commit and at close.
    pub readable: NotifierLine,
    /// The writer sleeps here; the reader notifies after each release and at close.
    pub writable: NotifierLine,
    /// Loom only: one cell per data byte, written by the writer's copies and read by
    /// the reader's, so loom checks that the tail and head hand every byte over with a
    /// happens-before edge (see `SpscCore::guard_write`).
    #[cfg(loom)]
    pub data_guards: [culvert_sync::atomic::UnsafeCell<()>; LOOM_DATA_GUARDS],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SpscControl>() == 6 * 128);

impl SpscControl {
    /// A fresh control block for a validated configuration.
    pub(crate) fn new(kind: u8, capacity: u64, max_message: u64) -> Self {
        Self {
            config: ConfigLine {
                magic: AtomicU64::new(ring_magic(kind)),
                capacity: AtomicU64::new(capacity),
                max_message: AtomicU64::new(max_message),
            },
            writer: WriterLine {
                tail: AtomicU64::new(0),
                echo: Echo::new(),
            },
            reader: ReaderLine {
                head: AtomicU64::new(0),
            },
            state: StateLine {
                writer_closed: AtomicU32::new(0),
                reader_closed: AtomicU32::new(0),
                writer_owner: AtomicU64::new(0),
                reader_owner: AtomicU64::new(0),
            },
            readable: NotifierLine {
                notifier: Notifier::new(),
            },
            writable: NotifierLine {
                notifier: Notifier::new(),
            },
            #[cfg(loom)]
            data_guards: std::array::from_fn(|_| culvert_sync::atomic::UnsafeCell::new(())),
        }
    }
}
