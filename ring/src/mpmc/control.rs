//! The MPMC control block, slot header and slot-state word encoding.
//!
//! Region layout (offsets from the region start, all fixed at `init` and recomputed
//! and compared at attach):
//!
//! ```text
//! 0                    Control            (6 × 128-byte lines)
//! participants_offset  [AtomicU64; max_endpoints]   (packed ProcessIdentity, 0 = free)
//! slots_offset         [Slot; slots], each `slot_stride` bytes:
//!                      SlotHeader { state, len } then `max_message` data bytes
//! ```

use culvert_sync::atomic::{AtomicU32, AtomicU64};
use culvert_sync::Notifier;

use crate::layout::{ring_magic, round_up};
use crate::{Error, Result};

/// Kind byte of the MPMC message ring's magic.
pub(crate) const KIND_MPMC_MESSAGE: u8 = 3;
/// Kind byte of the MPMC byte ring's magic.
pub(crate) const KIND_MPMC_BYTE: u8 = 4;
/// Layout version written at `init` and required at attach.
pub(crate) const LAYOUT_VERSION: u32 = 1;

/// Fewest slots accepted.
pub(crate) const MIN_SLOTS: usize = 2;
/// Most slots accepted (keeps every position difference tiny next to the tag range).
pub(crate) const MAX_SLOTS: usize = 1 << 24;
/// Largest `max_message` accepted (1 GiB).
pub(crate) const MAX_MESSAGE: usize = 1 << 30;
/// Most participants (attached endpoints) a ring can record: the slot word keeps a
/// 10-bit participant number, 0 meaning "nobody".
pub(crate) const MAX_ENDPOINTS: usize = (1 << WHO_BITS) - 1;
/// Alignment of every slot.
pub(crate) const SLOT_ALIGN: usize = 64;

// ---- slot state word ------------------------------------------------------------------
//
// bits 0..2   state: EMPTY, WRITING, FULL, READING
// bits 2..12  who: participant number (1-based) holding the slot; 0 for EMPTY/FULL
// bits 12..64 tag: the ring position the state is about, modulo 2^52

/// The slot is free for the producer of position `tag`.
pub(crate) const EMPTY: u64 = 0;
/// Participant `who` claimed position `tag` and is writing it.
pub(crate) const WRITING: u64 = 1;
/// The message of position `tag` is committed and waits for a consumer.
pub(crate) const FULL: u64 = 2;
/// Participant `who` claimed the message of position `tag` and is reading it.
pub(crate) const READING: u64 = 3;

const STATE_BITS: u32 = 2;
const WHO_BITS: u32 = 10;
const TAG_SHIFT: u32 = STATE_BITS + WHO_BITS;
const TAG_BITS: u32 = 64 - TAG_SHIFT;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// Packs a slot word.
#[inline(always)]
pub(crate) const fn pack(pos: u64, state: u64, who: u32) -> u64 {
    ((pos & TAG_MASK) << TAG_SHIFT) | ((who as u64) << STATE_BITS) | state
}

/// A slot word taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotWord {
    /// Position tag (mod 2^52).
    pub tag: u64,
    /// `EMPTY`, `WRITING`, `FULL` or `READING`.
    pub state: u64,
    /// Participant number, 0 = nobody.
    pub who: u32,
}

/// Unpacks a slot word.
#[inline(always)]
pub(crate) const fn unpack(word: u64) -> SlotWord {
    SlotWord {
        tag: word >> TAG_SHIFT,
        state: word & ((1 << STATE_BITS) - 1),
        who: ((word >> STATE_BITS) & ((1 << WHO_BITS) - 1)) as u32,
    }
}

/// `tag - pos` as a signed distance (tags are positions modulo 2^52).
#[inline(always)]
pub(crate) const fn tag_diff(tag: u64, pos: u64) -> i64 {
    let d = tag.wrapping_sub(pos) & TAG_MASK;
    ((d << TAG_SHIFT) as i64) >> TAG_SHIFT
}

// ---- control block ---------------------------------------------------------------------

/// One 128-byte line: keeps atomics written by different sides off each other's lines.
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

/// Words fixed at `init`. Copied out and validated once at attach; never re-read.
#[repr(C)]
pub(crate) struct ConfigWords {
    /// `ring_magic(KIND_MPMC_*)`.
    pub magic: AtomicU64,
    /// Invariant: `LAYOUT_VERSION`.
    pub version: AtomicU32,
    /// Invariant: `slots` is `1 << slot_shift`, in `MIN_SLOTS..=MAX_SLOTS`.
    pub slot_shift: AtomicU32,
    /// Largest message. Invariant: `<= MAX_MESSAGE`.
    pub max_message: AtomicU64,
    /// Participant table entries. Invariant: `1..=MAX_ENDPOINTS`.
    pub max_endpoints: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// Invariant: equals `Layout::compute(..).slot_stride` for the words above.
    pub slot_stride: AtomicU64,
    /// Invariant: equals `Layout::compute(..).participants_offset`.
    pub participants_offset: AtomicU64,
    /// Invariant: equals `Layout::compute(..).slots_offset`.
    pub slots_offset: AtomicU64,
    /// Invariant: equals `Layout::compute(..).total`, and `<=` the region length.
    pub total_size: AtomicU64,
}

/// The shared counters and the close flag.
#[repr(C)]
pub(crate) struct StateWords {
    /// 0 open, 1 closed. Only goes 0 → 1. Accessed SeqCst (see `core` on close).
    pub closed: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// Messages a consumer claimed and died (or unwound out of its callback) before
    /// releasing: reclaimed, never delivered again. Only grows.
    pub lost_to_dead_consumers: AtomicU64,
    /// Slots a producer claimed and died (or unwound) before committing: skipped, never
    /// delivered.
    /// Only grows.
    pub abandoned_by_dead_producers: AtomicU64,
    /// Slots a producer claimed and gave back because the ring closed meanwhile.
    /// Only grows.
    pub aborted_by_close: AtomicU64,
}

/// The control block at the start of every MPMC ring.
#[repr(C, align(128))]
pub(crate) struct Control {
    /// Written once by `init`.
    pub config: Line<ConfigWords>,
    /// Next position producers claim (written by producers, CAS-helped forward).
    /// Invariant: only grows; lags the highest claimed position by at most the number
    /// of producers in flight; `enqueue_pos - dequeue_pos` stays within
    /// `-(endpoints)..=slots` (checked loosely: slot tags are the real authority).
    pub enqueue_pos: Line<AtomicU64>,
    /// Next position consumers claim (written by consumers). Invariant: only grows.
    pub dequeue_pos: Line<AtomicU64>,
    /// Consumers sleep here; notified after a commit, a skip, or close.
    pub not_empty: Line<Notifier>,
    /// Producers sleep here; notified after a release, a reclaim, or close.
    pub not_full: Line<Notifier>,
    /// Close flag and counters.
    pub state: Line<StateWords>,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Control>() == 6 * 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<Control>() == 128);

/// The header at the start of every slot; the message bytes follow at `SLOT_DATA`.
#[repr(C)]
pub(crate) struct SlotHeader {
    /// `pack(tag, state, who)`. Invariant: the tag of slot `i` is `≡ i (mod slots)`;
    /// EMPTY/FULL carry `who == 0`, WRITING/READING a participant `1..=max_endpoints`;
    /// tags only grow: EMPTY(p) → WRITING(p) → FULL(p) → READING(p) → EMPTY(p + slots),
    /// with the dead-holder/close shortcuts WRITING(p) → EMPTY(p + slots).
    pub state: AtomicU64,
    /// Message length, written by the producer before FULL is published. Invariant:
    /// `<= max_message` (checked on every read).
    pub len: AtomicU32,
    /// Reserved, zero.
    pub reserved: AtomicU32,
    /// Loom only: a cell the writer writes and the reader reads, so loom checks that
    /// the slot state hands the data over with a happens-before edge.
    #[cfg(loom)]
    pub data_guard: culvert_sync::atomic::UnsafeCell<u32>,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SlotHeader>() == 16);

/// Offset of the data inside a slot.
pub(crate) const SLOT_DATA: usize = match round_up(std::mem::size_of::<SlotHeader>(), 16) {
    Some(v) => v,
    None => panic!("slot header size overflows"),
};

/// Offsets and sizes of one ring, a pure function of its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub slots: usize,
    pub slot_shift: u32,
    pub max_message: usize,
    pub max_endpoints: usize,
    pub slot_stride: usize,
    pub participants_offset: usize,
    pub slots_offset: usize,
    pub total: usize,
}

impl Layout {
    /// Validates a configuration and lays it out.
    ///
    /// # Errors
    /// `InvalidConfig` when `slots` is not a power of two in range, or `max_message` or
    /// `max_endpoints` is out of range.
    pub fn compute(slots: usize, max_message: usize, max_endpoints: usize) -> Result<Layout> {
        if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
            return Err(Error::InvalidConfig {
                what: "slot count must be a power of two in 2..=2^24",
            });
        }
        if max_message > MAX_MESSAGE {
            return Err(Error::InvalidConfig {
                what: "max_message above 1 GiB",
            });
        }
        if !(1..=MAX_ENDPOINTS).contains(&max_endpoints) {
            return Err(Error::InvalidConfig {
                what: "max_endpoints must be in 1..=1023",
            });
        }
        let overflow = Error::InvalidConfig {
            what: "ring size overflows",
        };
        let slot_stride = SLOT_DATA
            .checked_add(max_message)
            .and_then(|n| round_up(n, SLOT_ALIGN))
            .ok_or(overflow.clone())?;
        let participants_offset = std::mem::size_of::<Control>();
        let participants_len = max_endpoints
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .ok_or(overflow.clone())?;
        let slots_offset = participants_offset
            .checked_add(participants_len)
            .and_then(|n| round_up(n, 128))
            .ok_or(overflow.clone())?;
        let total = slots
            .checked_mul(slot_stride)
            .and_then(|n| n.checked_add(slots_offset))
            .ok_or(overflow)?;
        Ok(Layout {
            slots,
            slot_shift: slots.trailing_zeros(),
            max_message,
            max_endpoints,
            slot_stride,
            participants_offset,
            slots_offset,
            total,
        })
    }
}

/// The magic word of a ring kind.
pub(crate) const fn magic(kind: u8) -> u64 {
    ring_magic(kind)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slot_words_round_trip_and_diffs_wrap() {
        let w = pack(12345, READING, 1023);
        assert_eq!(
            unpack(w),
            SlotWord {
                tag: 12345,
                state: READING,
                who: 1023
            }
        );
        assert_eq!(tag_diff(unpack(pack(5, EMPTY, 0)).tag, 9), -4);
        assert_eq!(tag_diff(unpack(pack(13, EMPTY, 0)).tag, 9), 4);
        // Across the 2^52 wrap.
        let big = (1u64 << 52) - 2;
        assert_eq!(tag_diff(unpack(pack(big + 4, FULL, 0)).tag, big), 4);
        assert_eq!(tag_diff(unpack(pack(big, FULL, 0)).tag, big + 4), -4);
    }

    #[test]
    fn layouts_are_checked() {
        assert!(Layout::compute(3, 8, 4).is_err());
        assert!(Layout::compute(1, 8, 4).is_err());
        assert!(Layout::compute(4, MAX_MESSAGE + 1, 4).is_err());
        assert!(Layout::compute(4, 8, 0).is_err());
        assert!(Layout::compute(4, 8, 1024).is_err());
        let l = Layout::compute(4, 100, 8).unwrap();
        assert_eq!(l.slot_stride % SLOT_ALIGN, 0);
        assert!(l.slot_stride >= SLOT_DATA + 100);
        assert_eq!(l.slots_offset % 128, 0);
        assert_eq!(l.total, l.slots_offset + 4 * l.slot_stride);
    }
}
