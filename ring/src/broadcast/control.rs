//! The broadcast control block and slot layout: the `#[repr(C)]` structs that live in
//! shared memory, the packing of slot stamps, and the size arithmetic.
//!
//! ```text
//! offset 0            BroadcastControl (config, tail, notifier, stats, writer table)
//! offset CONTROL      slot 0: SlotHeader { stamp, len } + data words
//!                     slot 1 ...                         (each `slot_stride` bytes)
//! ```

use culvert_sync::atomic::AtomicU64;
use culvert_sync::Notifier;

use crate::layout::{ring_magic, round_up};
use crate::{Error, Result};

/// Kind byte of the broadcast ring's magic.
pub(crate) const KIND_BROADCAST: u8 = 5;

/// Layout version written at init and checked at attach.
pub(crate) const LAYOUT_VERSION: u64 = 1;

/// Largest slot count accepted (16 Mi slots).
pub(crate) const MAX_CAPACITY: usize = 1 << 24;

/// Largest `max_message` accepted (1 GiB).
pub(crate) const MAX_MESSAGE: usize = 1 << 30;

/// Slots are aligned (and strided) to this, so neighbouring slots written by different
/// writers never share a cache line pair.
pub(crate) const SLOT_ALIGN: usize = 128;

/// Entries in the writer table: the most writer endpoints attached at once. Under loom
/// the table is tiny, to keep the model's object count small.
#[cfg(not(loom))]
pub(crate) const MAX_WRITERS: usize = 128;
/// Entries in the writer table (loom build).
#[cfg(loom)]
pub(crate) const MAX_WRITERS: usize = 4;

// ---------------------------------------------------------------------------------
// Stamps
// ---------------------------------------------------------------------------------

/// Bits 0..8 of a stamp: the writer-table index of the slot's last claimant.
const OWNER_MASK: u64 = 0xff;
/// Bit 8 of a stamp: the position is a *gap* (no message will ever be committed there).
const GAP_BIT: u64 = 1 << 8;
/// The sequence number occupies bits 9..64.
const SEQ_SHIFT: u32 = 9;

/// Largest position a writer may claim: `2 * pos + 2` must fit in the 55 sequence bits.
/// (At 10^8 messages a second this is more than five years of traffic.)
pub(crate) const MAX_POSITION: u64 = (1 << (64 - SEQ_SHIFT - 1)) - 2;

const _: () = assert!(MAX_WRITERS as u64 <= OWNER_MASK + 1);

/// A decoded slot stamp.
///
/// `seq == 0`: the slot was never claimed. `seq == 2p + 1`: position `p` is being
/// written (by writer `owner`). `seq == 2p + 2`: position `p` is committed. With `gap`
/// set, position `p` holds no message: odd means the data area is still being written
/// by a stale writer `owner` that was lapped (see the module docs), even means free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Sequence number (see above).
    pub seq: u64,
    /// Writer-table index of the claimant (meaningful while `seq` is odd).
    pub owner: usize,
    /// The position holds no message.
    pub gap: bool,
}

impl Stamp {
    /// Decodes a raw stamp word.
    #[inline(always)]
    pub(crate) const fn unpack(word: u64) -> Stamp {
        Stamp {
            seq: word >> SEQ_SHIFT,
            owner: (word & OWNER_MASK) as usize,
            gap: word & GAP_BIT != 0,
        }
    }

    /// Encodes a stamp. `seq` must be below 2^55 and `owner` below 256.
    #[inline(always)]
    pub(crate) const fn pack(seq: u64, owner: usize, gap: bool) -> u64 {
        (seq << SEQ_SHIFT) | (owner as u64 & OWNER_MASK) | if gap { GAP_BIT } else { 0 }
    }

    /// `2 * pos + 1`: position `pos` being written.
    #[inline(always)]
    pub(crate) const fn writing(pos: u64) -> u64 {
        2 * pos + 1
    }

    /// `2 * pos + 2`: position `pos` committed.
    #[inline(always)]
    pub(crate) const fn committed(pos: u64) -> u64 {
        2 * pos + 2
    }

    /// The position this stamp speaks of (`None` for a never-claimed slot).
    #[inline(always)]
    pub(crate) const fn position(&self) -> Option<u64> {
        if self.seq == 0 {
            None
        } else {
            Some((self.seq - 1) / 2)
        }
    }

    /// Whether a write is in progress (odd sequence).
    #[inline(always)]
    pub(crate) const fn in_progress(&self) -> bool {
        self.seq & 1 == 1
    }
}

// ---------------------------------------------------------------------------------
// Shared structs
// ---------------------------------------------------------------------------------

/// Words fixed at `init`. Copied out and validated once at attach; never re-read.
#[repr(C, align(128))]
pub(crate) struct ConfigLine {
    /// `ring_magic(KIND_BROADCAST)`; stored last by `init` (Release), so an endpoint
    /// that reads it (Acquire) sees every other word initialised.
    pub magic: AtomicU64,
    /// Layout version. Invariant: `== LAYOUT_VERSION`.
    pub version: AtomicU64,
    /// Slot count. Invariant: a power of two in `1..=MAX_CAPACITY`.
    pub capacity: AtomicU64,
    /// Largest message. Invariant: `<= MAX_MESSAGE`.
    pub max_message: AtomicU64,
    /// Bytes per slot. Invariant: `== slot_stride(max_message)`.
    pub slot_stride: AtomicU64,
    /// Entries of the writer table. Invariant: `== MAX_WRITERS`.
    pub max_writers: AtomicU64,
}

/// The claim frontier, written by every writer (hot).
#[repr(C, align(128))]
pub(crate) struct TailLine {
    /// Next position to claim. Invariants: only grows; every position below it has
    /// been claimed (its slot's sequence is `>= 2 * pos + 1`); it lags the highest
    /// claimed position by at most the number of writers in the middle of `write`;
    /// `< MAX_POSITION`.
    pub tail: AtomicU64,
}

/// Readers sleep here; writers notify after each commit (or gap).
#[repr(C, align(128))]
pub(crate) struct NotifierLine {
    /// The eventcount.
    pub notifier: Notifier,
}

/// Diagnostics, written at attach and drop only.
#[repr(C, align(128))]
pub(crate) struct StatsLine {
    /// Readers attached now (honest peers). Never used for a decision.
    pub readers: AtomicU64,
}

/// Who may be writing: one entry per attached writer endpoint.
#[repr(C, align(128))]
pub(crate) struct WriterTable {
    /// Packed `ProcessIdentity` of the process holding each entry, 0 for a free one.
    /// A slot stamp names its claimant by index into this table, so a reader stuck on
    /// an in-progress slot can ask whether that writer's process still lives.
    /// Invariant: an entry is re-used only after every in-progress slot naming it has
    /// been turned into a gap (the new holder scans the slots at attach).
    pub owners: [AtomicU64; MAX_WRITERS],
}

/// The control block at the start of the region. Slots follow at
/// `size_of::<BroadcastControl>()` bytes.
#[repr(C)]
pub(crate) struct BroadcastControl {
    pub config: ConfigLine,
    pub tail: TailLine,
    pub readable: NotifierLine,
    pub stats: StatsLine,
    pub writers: WriterTable,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ConfigLine>() == 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<TailLine>() == 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<NotifierLine>() == 128);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<WriterTable>() == MAX_WRITERS * 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<BroadcastControl>() == 4 * 128 + MAX_WRITERS * 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<BroadcastControl>() == 128);

/// The fixed head of every slot; `ceil(max_message / 8)` data words follow it.
#[repr(C)]
pub(crate) struct SlotHeader {
    /// Seqlock stamp, see [`Stamp`]. Invariants: the sequence only grows; a position
    /// `p` it names satisfies `p % capacity == slot index`; only the claimant named in
    /// an odd stamp writes `len` and the data words.
    pub stamp: AtomicU64,
    /// Length of the message being written / committed. Invariant (when committed):
    /// `<= max_message`. Read only between two equal stamp reads.
    pub len: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SlotHeader>() == 16);

/// Bytes of control block before the first slot.
pub(crate) const CONTROL_SIZE: usize = std::mem::size_of::<BroadcastControl>();

/// Data words per slot for `max_message`.
pub(crate) const fn data_words(max_message: usize) -> usize {
    max_message.div_ceil(8)
}

/// Bytes per slot for `max_message` (header, data words, rounded up to `SLOT_ALIGN`).
pub(crate) fn slot_stride(max_message: usize) -> Option<usize> {
    let data = data_words(max_message).checked_mul(std::mem::size_of::<AtomicU64>())?;
    round_up(
        std::mem::size_of::<SlotHeader>().checked_add(data)?,
        SLOT_ALIGN,
    )
}

/// Checks a configuration and returns `(slot_stride, total bytes)`.
pub(crate) fn layout(capacity: u64, max_message: u64) -> Result<(usize, usize)> {
    if !capacity.is_power_of_two() || capacity > MAX_CAPACITY as u64 {
        return Err(Error::InvalidConfig {
            what: "broadcast capacity must be a power of two between 1 and 2^24 slots",
        });
    }
    if max_message > MAX_MESSAGE as u64 {
        return Err(Error::InvalidConfig {
            what: "broadcast max_message must be at most 1 GiB",
        });
    }
    let stride = slot_stride(max_message as usize).ok_or(Error::InvalidConfig {
        what: "broadcast slot size overflows",
    })?;
    let total = stride
        .checked_mul(capacity as usize)
        .and_then(|slots| slots.checked_add(CONTROL_SIZE))
        .ok_or(Error::InvalidConfig {
            what: "broadcast ring size overflows",
        })?;
    Ok((stride, total))
}

impl BroadcastControl {
    /// A fresh control block; `magic` is left 0 for `init` to publish last.
    pub(crate) fn new(capacity: u64, max_message: u64, stride: u64) -> Self {
        Self {
            config: ConfigLine {
                magic: AtomicU64::new(0),
                version: AtomicU64::new(LAYOUT_VERSION),
                capacity: AtomicU64::new(capacity),
                max_message: AtomicU64::new(max_message),
                slot_stride: AtomicU64::new(stride),
                max_writers: AtomicU64::new(MAX_WRITERS as u64),
            },
            tail: TailLine {
                tail: AtomicU64::new(0),
            },
            readable: NotifierLine {
                notifier: Notifier::new(),
            },
            stats: StatsLine {
                readers: AtomicU64::new(0),
            },
            writers: WriterTable {
                owners: std::array::from_fn(|_| AtomicU64::new(0)),
            },
        }
    }
}

/// The broadcast ring's magic word.
pub(crate) const fn magic() -> u64 {
    ring_magic(KIND_BROADCAST)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for (seq, owner, gap) in [
            (0, 0, false),
            (1, 5, true),
            (MAX_POSITION * 2 + 2, 127, false),
        ] {
            let s = Stamp::unpack(Stamp::pack(seq, owner, gap));
            assert_eq!(s, Stamp { seq, owner, gap });
        }
        assert_eq!(
            Stamp::unpack(Stamp::pack(Stamp::writing(7), 0, false)).position(),
            Some(7)
        );
        assert_eq!(
            Stamp::unpack(Stamp::pack(Stamp::committed(7), 0, false)).position(),
            Some(7)
        );
        assert_eq!(Stamp::unpack(0).position(), None);
    }

    #[test]
    fn layout_checks_configs() {
        assert!(layout(3, 8).is_err());
        assert!(layout(0, 8).is_err());
        assert!(layout(8, MAX_MESSAGE as u64 + 1).is_err());
        let (stride, total) = layout(8, 100).unwrap();
        assert_eq!(stride, 128);
        assert_eq!(total, CONTROL_SIZE + 8 * 128);
        assert_eq!(layout(4, 0).unwrap().0, 128);
        assert_eq!(layout(4, 113).unwrap().0, 256);
    }
}
