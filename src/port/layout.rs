//! The shared structs of a port: the port header and connection slots (in the server's
//! section) and the connection header (in each client's connection section).
//!
//! All `#[repr(C)]`, fixed width, atomics only; configuration words are copied out and
//! validated once, state words are re-validated on every read.

use culvert_section::{Region, SharedStruct};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::Notifier;

use crate::{Error, Result};

/// "CLVPORT1".
pub(crate) const PORT_MAGIC: u64 = u64::from_le_bytes(*b"CLVPORT1");
/// "CLVCONN1".
pub(crate) const CONN_MAGIC: u64 = u64::from_le_bytes(*b"CLVCONN1");
/// Version of this layout (2: each connection has its own request ring, and the port
/// header a line where servers sleep for requests).
pub(crate) const PORT_VERSION: u32 = 2;

/// Port state: serving.
pub(crate) const PORT_OPEN: u32 = 1;
/// Port state: the server closed it.
pub(crate) const PORT_CLOSED: u32 = 2;

// Connection slot states. A slot with `client == 0` is free; a client claims it with a
// CAS of `client` from 0 (state stays FREE until it has written its name).
/// Free (or being claimed: `client != 0`).
pub(crate) const SLOT_FREE: u32 = 0;
/// The client wrote its request; the server has not looked yet.
pub(crate) const SLOT_REQUESTED: u32 = 1;
/// A server thread is deciding.
pub(crate) const SLOT_REVIEWING: u32 = 2;
/// Accepted: the connection is live.
pub(crate) const SLOT_ACCEPTED: u32 = 3;
/// Rejected: the reason is in the client's section; the client frees the slot.
pub(crate) const SLOT_REJECTED: u32 = 4;
/// The client gave up while the server was reviewing; the server frees the slot.
pub(crate) const SLOT_WITHDRAWN: u32 = 5;
/// The client disconnected; the server tears the connection down and frees the slot.
pub(crate) const SLOT_CLOSING: u32 = 6;
/// Being freed by whoever won the CAS to this state.
pub(crate) const SLOT_FREEING: u32 = 7;

/// Longest connection-section name a slot holds.
pub(crate) const SLOT_NAME_MAX: usize = 208;
const NAME_WORDS: usize = SLOT_NAME_MAX / 8;

/// Fixed configuration of a port, written by the server at create.
#[repr(C, align(128))]
pub(crate) struct PortConfigLine {
    /// Invariant: `PORT_MAGIC`.
    pub magic: AtomicU64,
    /// Invariant: `PORT_VERSION`.
    pub version: AtomicU32,
    /// `PORT_OPEN` or `PORT_CLOSED`; goes OPEN → CLOSED once.
    pub state: AtomicU32,
    /// Packed identity of the server process.
    pub server: AtomicU64,
    /// Largest message. Invariant: validated like `PortOptions` (`PortConfig::validate`).
    pub max_message: AtomicU64,
    /// Largest inline message.
    pub inline_max: AtomicU64,
    /// Bytes of each view heap.
    pub view_heap_size: AtomicU64,
    /// Connection slots.
    pub max_connections: AtomicU64,
    /// Records of the largest inline size each connection's request ring holds (a
    /// power of two; see `PortConfig::request_ring`).
    pub request_slots: AtomicU64,
}

/// The server sleeps here waiting for connect requests and disconnections.
#[repr(C, align(128))]
pub(crate) struct ListenLine {
    /// Notified by clients after a request, a withdrawal or a disconnect.
    pub connect: Notifier,
}

/// Server threads sleep here waiting for requests, datagrams and cancels.
#[repr(C, align(128))]
pub(crate) struct RequestLine {
    /// Notified by a client after each record it commits to its request ring.
    pub sent: Notifier,
}

/// Object `port` of the server section.
#[repr(C)]
pub(crate) struct PortHeader {
    pub config: PortConfigLine,
    pub listen: ListenLine,
    pub requests: RequestLine,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<PortHeader>() == 384);

/// One connection slot (object `slots`: `max_connections` of them).
#[repr(C, align(128))]
pub(crate) struct ConnSlot {
    /// `SLOT_*`. Invariant: one of the values above (others are `Corrupted`).
    pub state: AtomicU32,
    /// Bumped each time the slot is freed; requests carry it so a record of an old
    /// connection is never taken for one of a newer connection in the same slot.
    pub epoch: AtomicU32,
    /// Packed identity of the client holding the slot; 0 when free.
    pub client: AtomicU64,
    /// The client waits here for the answer.
    pub answered: Notifier,
    /// Length of `name`. Invariant: `<= SLOT_NAME_MAX`.
    pub name_len: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// The client's connection-section name, little-endian bytes.
    pub name: [AtomicU64; NAME_WORDS],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ConnSlot>() == 256);

/// Object `conn` of a connection section; the connect and answer payload areas
/// (`payload_max` bytes each) follow it.
#[repr(C, align(128))]
pub(crate) struct ConnHeader {
    /// Invariant: `CONN_MAGIC`.
    pub magic: AtomicU64,
    /// Bytes of each payload area. Invariant: `CONNECT_PAYLOAD_MAX`.
    pub payload_max: AtomicU64,
    /// Length of the client's connect payload. Invariant: `<= payload_max`.
    pub connect_len: AtomicU64,
    /// Length of the server's accept/reject payload. Invariant: `<= payload_max`.
    pub answer_len: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ConnHeader>() == 128);

// SAFETY: `repr(C)`, atomics and a notifier only.
unsafe impl SharedStruct for ListenLine {}
// SAFETY: `repr(C)`, atomics and a listen line only.
unsafe impl SharedStruct for PortHeader {}
// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for ConnSlot {}
// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for ConnHeader {}

/// A shared struct at `offset` of `region`, bounds- and alignment-checked.
pub(crate) fn at<T: SharedStruct>(region: &Region, offset: usize) -> Result<&T> {
    region.view::<T>(offset).ok_or_else(|| Error::Corrupted {
        what: "port object too small or misaligned".into(),
    })
}

/// Writes a shared struct at `offset` of `region` (creator only, before publishing).
pub(crate) fn put<T: SharedStruct>(region: &Region, offset: usize, value: T) -> Result<()> {
    at::<T>(region, offset)?;
    // SAFETY: bounds and alignment checked by `at`; the region is not yet published, so
    // this write is exclusive.
    unsafe { region.as_ptr().add(offset).cast::<T>().write(value) };
    Ok(())
}

/// Copies `bytes` into `region` at `offset`, bounds-checked.
pub(crate) fn copy_in(region: &Region, offset: usize, bytes: &[u8]) -> Result<()> {
    match offset.checked_add(bytes.len()) {
        Some(end) if end <= region.len() => {
            // SAFETY: `offset..end` lies inside the region; `bytes` is local memory.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    region.as_ptr().add(offset),
                    bytes.len(),
                )
            };
            Ok(())
        }
        _ => Err(Error::Corrupted {
            what: "payload outside its area".into(),
        }),
    }
}

/// Copies `len` bytes out of `region` at `offset`, bounds-checked.
pub(crate) fn copy_out(region: &Region, offset: usize, len: usize) -> Result<Vec<u8>> {
    match offset.checked_add(len) {
        Some(end) if end <= region.len() => {
            let mut v = vec![0u8; len];
            // SAFETY: `offset..end` lies inside the region; `v` is local memory.
            unsafe {
                std::ptr::copy_nonoverlapping(region.as_ptr().add(offset), v.as_mut_ptr(), len)
            };
            Ok(v)
        }
        _ => Err(Error::Corrupted {
            what: "payload outside its area".into(),
        }),
    }
}

impl ConnSlot {
    /// A free slot (all zero).
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU32::new(SLOT_FREE),
            epoch: AtomicU32::new(0),
            client: AtomicU64::new(0),
            answered: Notifier::new(),
            name_len: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            name: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Stores a name (at most `SLOT_NAME_MAX` bytes; the caller checked).
    pub(crate) fn set_name(&self, name: &[u8]) {
        let mut padded = [0u8; SLOT_NAME_MAX];
        let n = name.len().min(SLOT_NAME_MAX);
        padded[..n].copy_from_slice(&name[..n]);
        for (i, w) in self.name.iter().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&padded[i * 8..i * 8 + 8]);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        self.name_len.store(n as u32, Ordering::Release);
    }

    /// Reads the name back; `None` if it is not a valid section name.
    pub(crate) fn name(&self) -> Option<String> {
        let n = self.name_len.load(Ordering::Acquire) as usize;
        if n == 0 || n > SLOT_NAME_MAX {
            return None;
        }
        let mut bytes = Vec::with_capacity(SLOT_NAME_MAX);
        for w in &self.name {
            bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(n);
        let s = String::from_utf8(bytes).ok()?;
        culvert_section::validate_name(&s).ok()?;
        Some(s)
    }
}
