//! [`Reader`]: a broadcast receiver with its own cursor. Any number may be attached,
//! joining and leaving at any time.

use std::time::Instant;

use culvert_section::Region;
use culvert_sync::atomic::{fence, Ordering};
use culvert_sync::{wait_for, Deadline, WaitStrategy, LIVENESS_RECHECK_INTERVAL};

use super::control::{Stamp, MAX_POSITION};
use super::core::BroadcastCore;
use crate::{Error, Result};

/// Torn copies retried within one poll before it reports `WouldBlock` (a reader being
/// lapped again and again by writers gets an `Overrun` on a later poll instead).
const MAX_TORN_RETRIES: u32 = 16;

/// A broadcast receiver. It starts at the ring's tail when it attaches, so it sees
/// every message published after it joined, in order — unless it falls more than
/// `capacity` messages behind, in which case its next read returns
/// [`Error::Overrun`] with the exact number of positions it lost and the read after
/// that returns the oldest message still held.
#[derive(Debug)]
pub struct Reader {
    core: BroadcastCore,
    state: ReaderState,
    strategy: WaitStrategy,
}

/// The reader's private state (kept apart from `core` so a wait can borrow both).
#[derive(Debug)]
struct ReaderState {
    /// Next position to read.
    cursor: u64,
    /// Positions lost to overruns since attach.
    missed_total: u64,
    /// Messages delivered since attach.
    delivered: u64,
    /// Set once shared memory broke an invariant; every later call fails with it.
    poisoned: Option<&'static str>,
    /// Since when the read at a position has been waiting on an in-progress write
    /// (bounds how long `try_read` callers go without a liveness check).
    stalled_at: Option<(u64, Instant)>,
}

impl std::fmt::Debug for BroadcastCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("broadcast::BroadcastCore")
            .field("capacity", &self.capacity)
            .field("max_message", &self.max_message)
            .finish()
    }
}

impl Reader {
    /// Attaches a reader to the broadcast ring initialised in `region`. It will see
    /// messages published from now on.
    ///
    /// # Errors
    /// `Corrupted` or `InvalidConfig` when the region holds no valid broadcast ring.
    pub fn attach(region: &Region) -> Result<Reader> {
        let core = BroadcastCore::attach(region)?;
        let cursor = core.tail()?;
        core.ctl().stats.readers.fetch_add(1, Ordering::Relaxed);
        Ok(Reader {
            core,
            state: ReaderState {
                cursor,
                missed_total: 0,
                delivered: 0,
                poisoned: None,
                stalled_at: None,
            },
            strategy: WaitStrategy::default(),
        })
    }

    /// How [`read`](Self::read) waits.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Reads the next message into `buf` without waiting; returns its length.
    ///
    /// * `WouldBlock`: nothing new yet;
    /// * `Overrun { missed }`: this reader fell behind and `missed` messages were
    ///   overwritten; the cursor moved to the oldest message still held, which the next
    ///   call returns;
    /// * `BufferTooSmall`: `buf` is shorter than the next message, which stays unread.
    ///
    /// On an error the contents of `buf` are unspecified.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.state.poll(&self.core, buf, false)
    }

    /// Like [`try_read`](Self::try_read), but waits (by the wait strategy) until a
    /// message arrives or `deadline` passes (`Timeout`). An `Overrun` is returned at
    /// once.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        let Reader {
            core,
            state,
            strategy,
        } = self;
        let notifier = &core.ctl().readable.notifier;
        wait_for(notifier, *strategy, deadline, |ctx| {
            match state.poll(core, buf, ctx.liveness_due) {
                Ok(n) => Ok(Some(n)),
                Err(Error::WouldBlock) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Positions this reader lost to overruns since it attached.
    pub fn missed_total(&self) -> u64 {
        self.state.missed_total
    }

    /// Messages this reader received since it attached.
    pub fn delivered(&self) -> u64 {
        self.state.delivered
    }

    /// The next position this reader will read.
    pub fn position(&self) -> u64 {
        self.state.cursor
    }

    /// Positions published but not yet read by this reader: `tail - position`
    /// (more than `capacity` means an overrun is coming). Diagnostics.
    ///
    /// # Errors
    /// `Corrupted` if the value read from shared memory is out of range.
    pub fn lag(&self) -> Result<u64> {
        Ok(self.core.tail()?.saturating_sub(self.state.cursor))
    }

    /// Positions claimed so far by all writers (diagnostics).
    ///
    /// # Errors
    /// `Corrupted` if the value read from shared memory is out of range.
    pub fn tail(&self) -> Result<u64> {
        self.core.tail()
    }

    /// Readers attached to the ring now, as counted in shared memory (diagnostics;
    /// a peer that died without detaching stays counted).
    pub fn reader_count(&self) -> u64 {
        self.core.ctl().stats.readers.load(Ordering::Relaxed)
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.core.max_message
    }

    /// Slots in the ring: how far a reader may fall behind before it loses messages.
    pub fn capacity(&self) -> u64 {
        self.core.capacity
    }

    /// The region this ring lives in.
    pub fn region(&self) -> &Region {
        self.core.region()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.core
            .ctl()
            .stats
            .readers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReaderState {
    /// One non-blocking read attempt (see [`Reader::try_read`]). `liveness_due` asks
    /// for a liveness check of a writer the read is stuck behind.
    fn poll(&mut self, core: &BroadcastCore, buf: &mut [u8], liveness_due: bool) -> Result<usize> {
        if let Some(what) = self.poisoned {
            return Err(Error::Corrupted { what });
        }
        match self.poll_inner(core, buf, liveness_due) {
            Err(Error::Corrupted { what }) => {
                self.poisoned = Some(what);
                Err(Error::Corrupted { what })
            }
            other => other,
        }
    }

    fn poll_inner(
        &mut self,
        core: &BroadcastCore,
        buf: &mut [u8],
        liveness_due: bool,
    ) -> Result<usize> {
        let mut torn = 0u32;
        // Gaps are skipped in the loop; a full lap of them bounds it.
        let max_steps = core.capacity.saturating_mul(2).saturating_add(64);
        for _ in 0..max_steps {
            let c = self.cursor;
            if c > MAX_POSITION {
                return Err(Error::Corrupted {
                    what: "broadcast reader position beyond the largest position",
                });
            }
            let slot = core.slot(c);
            let word = slot.stamp.load(Ordering::Acquire);
            let s = Stamp::unpack(word);
            core.check_stamp(s, c)?;

            if s.seq < Stamp::writing(c) {
                // The slot still holds an older position: `c` is not claimed yet.
                self.stalled_at = None;
                return Err(Error::WouldBlock);
            }

            if s.seq == Stamp::writing(c) {
                if s.gap {
                    // A gap whose slot is still being left by a lapped writer: no
                    // message will ever be committed at `c`.
                    self.skip();
                    continue;
                }
                if self.liveness_check_due(c, liveness_due) && core.writer_dead(s.owner)? {
                    // The writer died mid-copy: its message was never committed. Mark
                    // the position a committed gap so nobody else waits on it.
                    let gap = Stamp::pack(Stamp::committed(c), s.owner, true);
                    if slot
                        .stamp
                        .compare_exchange(word, gap, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        core.ctl().readable.notifier.notify();
                    }
                    continue;
                }
                return Err(Error::WouldBlock);
            }

            if s.seq == Stamp::committed(c) {
                if s.gap {
                    self.skip();
                    continue;
                }
                // Seqlock reader: stamp (Acquire), payload (relaxed), fence, stamp.
                let len = slot.len.load(Ordering::Relaxed);
                let plausible = len <= core.max_message as u64;
                let fits = plausible && len as usize <= buf.len();
                if fits {
                    core.read_data(c, &mut buf[..len as usize]);
                }
                fence(Ordering::Acquire);
                if slot.stamp.load(Ordering::Relaxed) != word {
                    // Overwritten while we copied: look again (it is an overrun now).
                    torn += 1;
                    if torn >= MAX_TORN_RETRIES {
                        return Err(Error::WouldBlock);
                    }
                    continue;
                }
                if !plausible {
                    return Err(Error::Corrupted {
                        what: "broadcast message length exceeds max_message",
                    });
                }
                if !fits {
                    return Err(Error::BufferTooSmall {
                        needed: len as usize,
                        got: buf.len(),
                    });
                }
                self.cursor = c + 1;
                self.delivered += 1;
                self.stalled_at = None;
                return Ok(len as usize);
            }

            // The slot names a later position `q` (same slot, so `q >= c + capacity`):
            // position `c` was overwritten. Resume at the oldest position that can
            // still be held, `front - capacity`, where `front` is the claim frontier.
            let q = s.position().unwrap_or(0);
            let tail = core.tail()?;
            if tail < q {
                // Whoever claimed `q` read `tail == q` first; we read the stamp (Acquire)
                // before the tail, so the tail cannot be behind `q`.
                return Err(Error::Corrupted {
                    what: "broadcast tail behind a claimed slot",
                });
            }
            let front = tail.max(q + 1);
            let oldest = front - core.capacity;
            if oldest <= c {
                // Impossible for a stamp that check_stamp accepted; refuse to loop.
                return Err(Error::Corrupted {
                    what: "broadcast slot stamp is inconsistent with the reader position",
                });
            }
            let missed = oldest - c;
            self.cursor = oldest;
            self.missed_total = self.missed_total.saturating_add(missed);
            self.stalled_at = None;
            return Err(Error::Overrun { missed });
        }
        Err(Error::WouldBlock)
    }

    /// Moves past a gap (a position holding no message; not counted as missed).
    fn skip(&mut self) {
        self.cursor += 1;
        self.stalled_at = None;
    }

    /// Whether to check the liveness of the writer that position `c` waits on: when
    /// the wait asks for it, or when `try_read` calls have been stuck at `c` for a
    /// liveness interval.
    fn liveness_check_due(&mut self, c: u64, asked: bool) -> bool {
        let now = Instant::now();
        match self.stalled_at {
            Some((pos, since)) if pos == c => {
                if asked || now.duration_since(since) >= LIVENESS_RECHECK_INTERVAL {
                    self.stalled_at = Some((c, now));
                    true
                } else {
                    false
                }
            }
            _ => {
                self.stalled_at = Some((c, now));
                asked
            }
        }
    }
}

// SAFETY: the notifier lives in the ring's region, which the reader's core keeps
// mapped at a fixed address, not in the reader value.
unsafe impl culvert_sync::Waitable for Reader {
    /// True when a position was published that this reader has not read (its write
    /// may still be in progress), or on a corruption. A writer that died mid-write is
    /// skipped by `try_read` within the liveness interval.
    fn poll_ready(&mut self, _ctx: culvert_sync::WaitContext) -> bool {
        self.state.poisoned.is_some() || !matches!(self.lag(), Ok(0))
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        f(&self.core.ctl().readable.notifier);
    }
}
