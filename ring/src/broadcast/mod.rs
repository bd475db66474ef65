//! The broadcast ring: any number of writers, any number of readers, every reader sees
//! every message — unless it falls behind, and then it is told exactly how many it lost.
//!
//! ```
//! use culvert_ring::{broadcast, Deadline, Error, Region};
//!
//! let config = broadcast::Config::new(8, 64);
//! let region = Region::heap(broadcast::Ring::required_size(&config).unwrap()).unwrap();
//! broadcast::Ring::init(&region, &config).unwrap();
//! let mut writer = broadcast::Writer::attach(&region).unwrap();
//! let mut fast = broadcast::Reader::attach(&region).unwrap();
//! let mut slow = broadcast::Reader::attach(&region).unwrap();
//! let mut buf = [0u8; 64];
//! for i in 0..20u8 {
//!     writer.write(&[i]).unwrap(); // never blocks: a full ring overwrites its oldest
//!     assert_eq!(fast.read(&mut buf, Deadline::never()), Ok(1));
//!     assert_eq!(buf[0], i);
//! }
//! assert_eq!(slow.try_read(&mut buf), Err(Error::Overrun { missed: 12 }));
//! assert_eq!(slow.try_read(&mut buf), Ok(1));
//! assert_eq!(buf[0], 12); // the oldest message still held
//! ```
//!
//! ## Layout
//! A control block (config words, the claim frontier `tail`, a [`Notifier`] readers sleep
//! on, a reader counter, and a *writer table* of packed process identities) followed by
//! `capacity` slots (a power of two), each a 16-byte header (`stamp`, `len`) and
//! `ceil(max_message / 8)` data words, padded to 128 bytes. Position `p` lives in slot
//! `p % capacity`.
//!
//! ## Protocol
//! * A slot's **stamp** packs a sequence (`2p+1`: position `p` being written, `2p+2`:
//!   committed, 0: never used), the writer-table index of the claimant, and a *gap* bit.
//!   Sequences in a slot only grow, so a CAS on the stamp can never be fooled by ABA.
//! * A **writer** reads `tail = t` and the stamp of slot `t`. If the slot already names
//!   `t` or later, it helps `tail` past `t` and retries; otherwise it claims `t` by a CAS
//!   of the stamp to `2t+1 | me`, issues a release fence, bumps `tail`, stores `len` and
//!   the data words (relaxed atomics, so racing readers are not UB), and commits with a
//!   CAS to `2t+2 | me`, then notifies. Claiming by CAS on the slot (not `fetch_add`
//!   on `tail`) means a position is never claimed anonymously: every odd stamp names
//!   the writer to blame, and a writer killed between the two steps leaves no hole.
//! * A **reader** at cursor `c` reads the stamp of slot `c` (Acquire): `2c+2` → copy
//!   `len` and the words out, fence (Acquire), re-read the stamp; equal → deliver,
//!   different → the copy may be torn, never delivered, look again. An older stamp →
//!   nothing new (`WouldBlock`). `2c+1` → a write in progress: wait. A later position
//!   `q` → overrun: the reader resumes at `max(tail, q+1) - capacity`, the oldest
//!   position still held, and reports the positions in between as `missed`.
//! * **Two writers in one slot.** A writer that finds the slot's *older* write still in
//!   progress (the ring lapped a preempted writer) must not copy over it. If that
//!   writer's process is dead it reclaims the slot. If it lives, the new writer waits for
//!   it up to 100 ms (once per `write`; usually it was just preempted), then gives
//!   position `t` up as a **gap** (`2t+1 | slow owner | GAP`) and moves on to `t+1`.
//!   The slow writer's commit CAS then fails; it turns the slot into a committed gap
//!   (its message counts as overwritten). Readers skip gaps without counting them.
//!   So `write` never waits for readers, only, in that rare case, for a peer's copy.
//! * **A writer dies mid-write.** Its stamp stays `2p+1 | index`. A reader waiting on
//!   `p` checks the process in writer-table entry `index` whenever
//!   [`WaitContext::liveness_due`](culvert_sync::WaitContext) is set (or, for
//!   `try_read`, after it has been stuck there for
//!   [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL)); if it is
//!   dead, the reader marks `p` a committed gap and skips it. **The half-written
//!   message was never committed, so it is not counted as missed** by readers that
//!   skip it this way. A writer lapping such a slot reclaims it. A new writer taking
//!   over a dead writer's table entry first turns that writer's in-progress slots into
//!   gaps, so an index never points at the wrong process.
//!
//! ## Accounting
//! `missed` counts *positions*. Every position holds exactly one message except gaps,
//! which arise only when a writer dies mid-copy or stalls for more than 100 ms while the
//! whole ring laps it; a reader that is overrun across such a gap counts it as missed
//! (it cannot tell: the slot was overwritten). Without those events, for every reader
//! `delivered + missed` equals the number of messages sent after it attached.
//!
//! ## Shared memory is untrusted
//! Config words are copied out and validated at attach. Every stamp must name a
//! position of its own slot below `MAX_POSITION`; a committed `len` must be at most
//! `max_message`; the tail must not be behind a claimed position; a writer index must
//! lie in the table. A violation poisons the endpoint with [`Error::Corrupted`]. Every
//! loop is bounded, so no call spins for ever on hostile values.
//!
//! [`Notifier`]: culvert_sync::Notifier
//! [`Error::Corrupted`]: crate::Error::Corrupted

pub(crate) mod control;
pub(crate) mod core;
mod reader;
#[cfg(all(test, not(loom)))]
mod tests;
mod writer;

use culvert_section::Region;

pub use reader::Reader;
pub use writer::Writer;

use crate::Result;

/// How to lay out a broadcast ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Slots: how many messages the ring holds before overwriting the oldest. A power
    /// of two, at most 2^24.
    pub capacity: usize,
    /// Largest message in bytes (at most 1 GiB). Every slot is sized for it.
    pub max_message: usize,
}

impl Config {
    /// A ring of `capacity` slots holding messages of up to `max_message` bytes.
    pub const fn new(capacity: usize, max_message: usize) -> Self {
        Self {
            capacity,
            max_message,
        }
    }
}

/// The broadcast ring: creation and sizing. Endpoints are [`Writer`] and [`Reader`].
#[derive(Debug)]
pub struct Ring;

impl Ring {
    /// Bytes a ring with `config` needs (control block plus slots).
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring.
    pub fn required_size(config: &Config) -> Result<usize> {
        Ok(control::layout(config.capacity as u64, config.max_message as u64)?.1)
    }

    /// Writes a fresh, empty ring for `config` at the start of `region`.
    ///
    /// Run by the region's creator before any endpoint attaches (while the section is
    /// still initialising); endpoints attached to an earlier ring in the same region
    /// would see it as a corrupted peer.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring, or `region` is too small
    /// or misaligned for it.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        core::init(region, config.capacity as u64, config.max_message as u64)
    }
}
