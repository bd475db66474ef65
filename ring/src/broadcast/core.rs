//! [`BroadcastCore`]: the validated view of one broadcast ring that every endpoint holds —
//! control block, slot addressing, word-wise data copies, and the checks applied to
//! every stamp read from shared memory.

use std::ptr::NonNull;

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU64, Ordering};

use super::control::{
    data_words, layout, magic, BroadcastControl, SlotHeader, Stamp, CONTROL_SIZE, LAYOUT_VERSION,
    MAX_POSITION, MAX_WRITERS,
};
use crate::layout::control_ptr;
use crate::{Error, Result};

/// Writes a fresh broadcast ring into `region` (see [`super::Ring::init`]).
pub(crate) fn init(region: &Region, capacity: u64, max_message: u64) -> Result<()> {
    let (stride, total) = layout(capacity, max_message)?;
    if region.len() < total {
        return Err(Error::InvalidConfig {
            what: "region smaller than required_size(config)",
        });
    }
    let ctl = control_ptr::<BroadcastControl>(region)?;
    // SAFETY: `ctl` is aligned and in bounds (control_ptr); the creator initialises the
    // ring before any endpoint attaches, so nobody else accesses these bytes now.
    // `write` constructs every atomic (loom needs that) without reading the old bytes.
    unsafe {
        ctl.as_ptr()
            .write(BroadcastControl::new(capacity, max_message, stride as u64))
    };
    let words = data_words(max_message as usize);
    for index in 0..capacity as usize {
        // Slot `index` ends at `CONTROL_SIZE + (index + 1) * stride <= region.len()`, starts
        // 128-aligned (sizes are multiples of 128), and holds its header and `words` words.
        // SAFETY: in bounds, aligned, exclusive (nobody attached yet).
        unsafe {
            let slot = region.as_ptr().add(CONTROL_SIZE + index * stride);
            slot.cast::<SlotHeader>().write(SlotHeader {
                stamp: AtomicU64::new(0),
                len: AtomicU64::new(0),
            });
            let data = slot
                .add(std::mem::size_of::<SlotHeader>())
                .cast::<AtomicU64>();
            for w in 0..words {
                data.add(w).write(AtomicU64::new(0));
            }
        }
    }
    // SAFETY: written just above.
    let c = unsafe { ctl.as_ref() };
    c.config.magic.store(magic(), Ordering::Release);
    Ok(())
}

/// The validated view of one broadcast ring.
pub(crate) struct BroadcastCore {
    /// Keeps the mapping alive. Invariant: holds the control block and `capacity` slots
    /// of `stride` bytes after it.
    region: Region,
    /// The control block at the start of `region`.
    ctl: NonNull<BroadcastControl>,
    /// Slot count, copied out at attach (never re-read). A power of two.
    pub capacity: u64,
    /// `capacity - 1`.
    pub mask: u64,
    /// Largest message, copied out at attach.
    pub max_message: usize,
    /// Bytes per slot, copied out at attach.
    stride: usize,
}

// SAFETY: BroadcastCore holds raw pointers into `region`, which it keeps alive; every access to
// the shared bytes goes through atomics, so sharing or sending it between threads
// cannot cause a data race.
unsafe impl Send for BroadcastCore {}
// SAFETY: as above — `&BroadcastCore` only leads to atomic accesses.
unsafe impl Sync for BroadcastCore {}

impl BroadcastCore {
    /// Validates the control block in `region` and builds the view.
    pub(crate) fn attach(region: &Region) -> Result<BroadcastCore> {
        let ctl = control_ptr::<BroadcastControl>(region)?;
        // SAFETY: aligned and in bounds (control_ptr). Only atomics are read; in memory
        // never initialised they read as zero, which fails the magic check below.
        let c = unsafe { ctl.as_ref() };
        if c.config.magic.load(Ordering::Acquire) != magic() {
            return Err(Error::Corrupted {
                what: "ring magic does not match the broadcast ring",
            });
        }
        if c.config.version.load(Ordering::Relaxed) != LAYOUT_VERSION {
            return Err(Error::Corrupted {
                what: "broadcast ring layout version is unknown",
            });
        }
        let capacity = c.config.capacity.load(Ordering::Relaxed);
        let max_message = c.config.max_message.load(Ordering::Relaxed);
        let stride = c.config.slot_stride.load(Ordering::Relaxed);
        let max_writers = c.config.max_writers.load(Ordering::Relaxed);
        let (want_stride, total) = layout(capacity, max_message).map_err(|_| Error::Corrupted {
            what: "broadcast ring configuration words are invalid",
        })?;
        if stride != want_stride as u64 || max_writers != MAX_WRITERS as u64 {
            return Err(Error::Corrupted {
                what: "broadcast ring configuration words are inconsistent",
            });
        }
        if region.len() < total {
            return Err(Error::Corrupted {
                what: "broadcast ring size exceeds its region",
            });
        }
        Ok(BroadcastCore {
            region: region.clone(),
            ctl,
            capacity,
            mask: capacity - 1,
            max_message: max_message as usize,
            stride: want_stride,
        })
    }

    /// The control block.
    #[inline(always)]
    pub(crate) fn ctl(&self) -> &BroadcastControl {
        // SAFETY: validated at attach; the region (kept alive by `self.region`) holds
        // it; only atomics are accessed through the reference.
        unsafe { self.ctl.as_ref() }
    }

    /// The region this ring lives in.
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// First byte of the slot for position `pos`.
    #[inline(always)]
    fn slot_ptr(&self, pos: u64) -> *mut u8 {
        let index = (pos & self.mask) as usize;
        // SAFETY: `index < capacity`, and the region holds `CONTROL_SIZE + capacity *
        // stride` bytes (checked at attach), so the slot start is inside it.
        unsafe { self.region.as_ptr().add(CONTROL_SIZE + index * self.stride) }
    }

    /// The header of the slot for position `pos`.
    #[inline(always)]
    pub(crate) fn slot(&self, pos: u64) -> &SlotHeader {
        // SAFETY: the slot lies in the region (slot_ptr), is aligned for SlotHeader
        // (128-aligned start), was constructed by `init`, and is only accessed through
        // its atomics.
        unsafe { &*self.slot_ptr(pos).cast::<SlotHeader>() }
    }

    /// The data words of the slot for position `pos`.
    #[inline(always)]
    fn data(&self, pos: u64) -> *const AtomicU64 {
        // SAFETY: the header is followed, inside the same slot, by the data words.
        unsafe {
            self.slot_ptr(pos)
                .add(std::mem::size_of::<SlotHeader>())
                .cast::<AtomicU64>()
        }
    }

    /// Stores `src` (at most `max_message` bytes) into the data words of the slot for
    /// `pos`, with relaxed atomic stores. The caller holds the slot's odd stamp.
    #[inline]
    pub(crate) fn write_data(&self, pos: u64, src: &[u8]) {
        debug_assert!(src.len() <= self.max_message);
        let data = self.data(pos);
        let mut chunks = src.chunks_exact(8);
        let mut i = 0;
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // SAFETY: `i < ceil(src.len() / 8) <= data_words(max_message)`, so the word
            // lies inside the slot; it was constructed by `init`.
            unsafe { &*data.add(i) }.store(u64::from_ne_bytes(word), Ordering::Relaxed);
            i += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // SAFETY: as above.
            unsafe { &*data.add(i) }.store(u64::from_ne_bytes(word), Ordering::Relaxed);
        }
    }

    /// Loads the slot's data words into `dst` (at most `max_message` bytes) with relaxed
    /// atomic loads. The bytes may be torn: the caller validates the stamp afterwards.
    #[inline]
    pub(crate) fn read_data(&self, pos: u64, dst: &mut [u8]) {
        debug_assert!(dst.len() <= self.max_message);
        let data = self.data(pos);
        let mut chunks = dst.chunks_exact_mut(8);
        let mut i = 0;
        for chunk in &mut chunks {
            // SAFETY: `i < ceil(dst.len() / 8) <= data_words(max_message)`, inside the
            // slot; constructed by `init`.
            let word = unsafe { &*data.add(i) }.load(Ordering::Relaxed);
            chunk.copy_from_slice(&word.to_ne_bytes());
            i += 1;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            // SAFETY: as above.
            let word = unsafe { &*data.add(i) }.load(Ordering::Relaxed);
            let n = rest.len();
            rest.copy_from_slice(&word.to_ne_bytes()[..n]);
        }
    }

    /// Checks a stamp read from the slot of position `pos`: the position it names must
    /// map to that slot and be claimable.
    #[inline(always)]
    pub(crate) fn check_stamp(&self, stamp: Stamp, pos: u64) -> Result<()> {
        match stamp.position() {
            None => Ok(()),
            Some(p) if p <= MAX_POSITION && (p ^ pos) & self.mask == 0 => Ok(()),
            Some(_) => Err(Error::Corrupted {
                what: "broadcast slot stamp names a position of another slot",
            }),
        }
    }

    /// The writer-table entry `index` (untrusted index: checked).
    pub(crate) fn owner_entry(&self, index: usize) -> Result<&AtomicU64> {
        self.ctl()
            .writers
            .owners
            .get(index)
            .ok_or(Error::Corrupted {
                what: "broadcast slot stamp names a writer outside the writer table",
            })
    }

    /// Whether the writer in table entry `index` is known dead (its process is gone or
    /// the entry was released).
    pub(crate) fn writer_dead(&self, index: usize) -> Result<bool> {
        let entry = culvert_sync::OwnerWord::from_atomic(self.owner_entry(index)?);
        Ok(entry.holder() != culvert_sync::Holder::Alive)
    }

    /// The shared tail, checked against the largest position.
    #[inline(always)]
    pub(crate) fn tail(&self) -> Result<u64> {
        let t = self.ctl().tail.tail.load(Ordering::Acquire);
        if t > MAX_POSITION {
            return Err(Error::Corrupted {
                what: "broadcast tail beyond the largest position",
            });
        }
        Ok(t)
    }
}
