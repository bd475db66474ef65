//! [`Writer`]: a broadcast sender. Any number may be attached, in any processes.

use std::time::{Duration, Instant};

use culvert_section::Region;
use culvert_sync::atomic::{fence, spin_hint, yield_now, Ordering};

use super::control::{Stamp, MAX_POSITION};
use super::core::BroadcastCore;
use crate::{Error, Result};

/// How long `write` waits, at most once per call, for a live writer whose copy into the
/// slot it needs is still in progress a whole lap behind, before giving that position up
/// as a gap (see the module docs). Long enough for a preempted writer to be scheduled
/// again; short enough that a stopped or hostile peer costs little.
#[cfg(not(loom))]
const STALL_LIMIT: Duration = Duration::from_millis(100);
/// Under loom a stall is resolved at once (the model must not wait on a clock).
#[cfg(loom)]
const STALL_LIMIT: Duration = Duration::ZERO;

/// How long `write` waits when every slot is held by a stalled writer, before it fails
/// with `Busy`.
#[cfg(not(loom))]
const FULL_STALL_LIMIT: Duration = Duration::from_secs(1);
/// Under loom the stalled writer is always scheduled eventually: never give up.
#[cfg(loom)]
const FULL_STALL_LIMIT: Duration = Duration::MAX;

/// When a stall lasts this long, `write` checks whether the stalled writer died.
const STALL_LIVENESS_CHECK: Duration = Duration::from_millis(2);

/// Loop iterations after which `write` declares the ring corrupted. An honest ring needs
/// a handful; only a peer rewriting shared words without end could use them up.
const MAX_SEND_STEPS: u32 = 1 << 22;

/// A broadcast sender. `write` never waits for readers: a full ring overwrites its
/// oldest message, and readers that had not read it are told how many they missed.
///
/// Each writer holds one entry of the ring's writer table (released on drop), which
/// slot stamps name so readers can tell a writer that died mid-copy. Use one `Writer`
/// per thread (`write` takes `&mut self`).
pub struct Writer {
    core: BroadcastCore,
    /// Our writer-table index. Invariant: `< MAX_WRITERS`; the entry holds `identity`.
    index: usize,
    /// Our packed process identity, as stored in the table entry.
    identity: u64,
    /// Set once shared memory broke an invariant; every later call fails with it.
    poisoned: Option<&'static str>,
    /// How long to wait for a live writer stalled in our slot before giving the
    /// position up as a gap.
    stall_limit: Duration,
    /// How long to wait when every slot is held by stalled writers before failing.
    full_limit: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("broadcast::Writer")
            .field("index", &self.index)
            .field("capacity", &self.core.capacity)
            .field("max_message", &self.core.max_message)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// Per-`write` bookkeeping of waits on stalled writers.
#[derive(Default)]
struct SendState {
    /// The stale stamp being waited on, and since when.
    stall: Option<(u64, Instant)>,
    /// This call already waited the stall limit once (later stalls give up at once).
    stalled_once: bool,
    /// Backoff steps of the current wait.
    waits: u32,
    /// Positions this call gave up as gaps.
    gaps: u64,
}

/// What to do about a slot whose older write is still in progress.
enum Stale {
    /// Look at the slot again (it changed, we are waiting, or we made it a gap).
    Retry,
    /// Its writer is dead: claim the slot over it.
    Reclaim,
}

impl Writer {
    /// Attaches a writer to the broadcast ring initialised in `region`.
    ///
    /// Fails with `Busy` when every writer-table entry is held by a live writer, and
    /// with `Corrupted` when the control block is invalid. Taking over the entry of a
    /// writer that died turns that writer's unfinished slots into gaps first.
    pub fn attach(region: &Region) -> Result<Writer> {
        let core = BroadcastCore::attach(region)?;
        core.tail()?;
        let identity = culvert_sync::owner::my_owner_id();
        let owners = &core.ctl().writers.owners;
        let mut claimed = None;
        for (index, entry) in owners.iter().enumerate() {
            // An entry of a live writer (one of this process's included) is skipped.
            if let Ok(c) = culvert_sync::OwnerWord::from_atomic(entry).claim(identity) {
                let from_dead = matches!(c, culvert_sync::owner::Claimed::FromDead { .. });
                claimed = Some((index, from_dead));
                break;
            }
        }
        let Some((index, was_held)) = claimed else {
            return Err(Error::Busy {
                what: "broadcast writer (every writer-table entry is held)",
            });
        };
        let writer = Writer {
            core,
            index,
            identity,
            poisoned: None,
            stall_limit: STALL_LIMIT,
            full_limit: FULL_STALL_LIMIT,
        };
        if was_held {
            writer.retire_dead_predecessor();
        }
        Ok(writer)
    }

    /// Turns every in-progress slot still naming our table index (left by the dead
    /// writer that held it before us) into a committed gap, so nobody mistakes those
    /// slots for ours and waits on them.
    fn retire_dead_predecessor(&self) {
        let mut changed = false;
        for pos in 0..self.core.capacity {
            let slot = self.core.slot(pos);
            let mut word = slot.stamp.load(Ordering::Acquire);
            // Each failed CAS means the stamp moved forward; bounded for hostile peers.
            for _ in 0..64 {
                let s = Stamp::unpack(word);
                if !s.in_progress() || s.owner != self.index {
                    break;
                }
                let gap = Stamp::pack(s.seq + 1, self.index, true);
                match slot
                    .stamp
                    .compare_exchange(word, gap, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        changed = true;
                        break;
                    }
                    Err(now) => word = now,
                }
            }
        }
        if changed {
            self.core.ctl().readable.notifier.notify();
        }
    }

    /// Sends one message to every reader. Never waits for readers; a full ring
    /// overwrites its oldest message. `MessageTooLarge` (nothing sent) when `msg` is
    /// longer than the ring's `max_message`.
    pub fn write(&mut self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.core.max_message {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.core.max_message,
            });
        }
        if let Some(what) = self.poisoned {
            return Err(Error::Corrupted { what });
        }
        match self.send_inner(msg) {
            Err(Error::Corrupted { what }) => {
                self.poisoned = Some(what);
                Err(Error::Corrupted { what })
            }
            other => other,
        }
    }

    fn send_inner(&self, msg: &[u8]) -> Result<()> {
        let core = &self.core;
        let ctl = core.ctl();
        let mut st = SendState::default();
        for _ in 0..MAX_SEND_STEPS {
            let t = core.tail()?;
            if t >= MAX_POSITION {
                return Err(Error::Corrupted {
                    what: "broadcast tail reached the largest position",
                });
            }
            let slot = core.slot(t);
            let word = slot.stamp.load(Ordering::Acquire);
            let s = Stamp::unpack(word);
            core.check_stamp(s, t)?;
            if s.seq >= Stamp::writing(t) {
                // Position `t` is claimed already: help move the tail past it. The
                // claimant read `tail == p` before claiming position `p`, so a slot
                // naming a position beyond `t` while the tail still reads `t` means
                // the tail went backwards.
                let bumped = ctl
                    .tail
                    .tail
                    .compare_exchange(t, t + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if bumped && s.position() != Some(t) {
                    return Err(Error::Corrupted {
                        what: "broadcast tail went back behind a claimed slot",
                    });
                }
                continue;
            }
            // The slot holds an older position (or none): `t` is ours to claim, unless
            // that older write is still in progress.
            if s.in_progress() {
                match self.stale_write(word, s, t, &mut st)? {
                    Stale::Retry => continue,
                    Stale::Reclaim => {}
                }
            }
            let mine = Stamp::pack(Stamp::writing(t), self.index, false);
            if slot
                .stamp
                .compare_exchange(word, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // Seqlock writer: the odd stamp is ordered before every data store (a
            // reader that loads any of them and then fences sees the odd stamp).
            fence(Ordering::Release);
            let _ = ctl
                .tail
                .tail
                .compare_exchange(t, t + 1, Ordering::AcqRel, Ordering::Acquire);
            slot.len.store(msg.len() as u64, Ordering::Relaxed);
            core.write_data(t, msg);
            self.commit(t, mine);
            ctl.readable.notifier.notify();
            return Ok(());
        }
        Err(Error::Corrupted {
            what: "broadcast send made no progress",
        })
    }

    /// Deals with slot `word` (= `s`), whose write of an older position is still in
    /// progress although the ring has lapped it and we want position `t`.
    ///
    /// Two writers must never copy into one slot at once. A dead owner (or one naming
    /// our own entry: we are not writing it, so it is stale) is reclaimed. A live one
    /// is given up to `stall_limit` to finish (it is usually just preempted); after
    /// that — or at once if the slot is already such a gap, or if this call already
    /// waited once — position `t` is turned into a gap that still names the slow owner
    /// (`2t+1 | owner | GAP`): readers skip it, later writers lap it the same way, and
    /// the owner, on finding its commit refused, marks it a committed gap, freeing the
    /// slot. At most `capacity` positions are given up per call: if every slot is held
    /// by a stalled writer, the call waits for one, up to `full_limit`, then fails
    /// with `Busy` rather than burn positions or wait for ever.
    fn stale_write(&self, word: u64, s: Stamp, t: u64, st: &mut SendState) -> Result<Stale> {
        let core = &self.core;
        if s.owner == self.index {
            return Ok(Stale::Reclaim);
        }
        let can_give_up = st.gaps < core.capacity;
        if !(can_give_up && (s.gap || st.stalled_once)) {
            let since = match st.stall {
                Some((w, since)) if w == word => since,
                _ => {
                    let now = Instant::now();
                    st.stall = Some((word, now));
                    st.waits = 0;
                    now
                }
            };
            let waited = since.elapsed();
            if waited >= STALL_LIVENESS_CHECK && st.waits % 64 == 0 && core.writer_dead(s.owner)? {
                return Ok(Stale::Reclaim);
            }
            if !(can_give_up && waited >= self.stall_limit) {
                if !can_give_up && waited >= self.full_limit {
                    return Err(Error::Busy {
                        what: "broadcast slots (every slot is held by a stalled writer)",
                    });
                }
                backoff(&mut st.waits);
                return Ok(Stale::Retry);
            }
        }
        if core.writer_dead(s.owner)? {
            return Ok(Stale::Reclaim);
        }
        st.stalled_once = true;
        st.gaps += 1;
        let gap = Stamp::pack(Stamp::writing(t), s.owner, true);
        if core
            .slot(t)
            .stamp
            .compare_exchange(word, gap, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Readers waiting at `t` may skip it now.
            core.ctl().readable.notifier.notify();
        }
        Ok(Stale::Retry)
    }

    /// Publishes position `t`, claimed with stamp `mine`. If a writer lapped us while
    /// we copied (it found us slow and relabelled the slot as a gap naming us), our
    /// message counts as overwritten and we release the slot as a committed gap.
    fn commit(&self, t: u64, mine: u64) {
        let slot = self.core.slot(t);
        let mut expected = mine;
        let mut target = Stamp::pack(Stamp::committed(t), self.index, false);
        for _ in 0..MAX_SEND_STEPS {
            match slot
                .stamp
                .compare_exchange(expected, target, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => {
                    let s = Stamp::unpack(now);
                    if s.in_progress()
                        && s.gap
                        && s.owner == self.index
                        && s.seq > Stamp::writing(t)
                    {
                        expected = now;
                        target = Stamp::pack(s.seq + 1, self.index, true);
                    } else {
                        // Reclaimed by someone who found our table entry dead (or a
                        // hostile peer): the slot is no longer ours to touch.
                        return;
                    }
                }
            }
        }
    }

    /// Sets how long `write` waits for stalled peers (fuzzing, where a hostile peer
    /// fakes them: zero keeps every call fast).
    pub(crate) fn set_stall_limits(&mut self, stall_limit: Duration, full_limit: Duration) {
        self.stall_limit = stall_limit;
        self.full_limit = full_limit;
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.core.max_message
    }

    /// Slots in the ring: how many messages it holds before overwriting.
    pub fn capacity(&self) -> u64 {
        self.core.capacity
    }

    /// Positions claimed so far (messages sent by all writers, plus rare gaps).
    /// Diagnostics only: read from shared memory, not validated beyond its range.
    ///
    /// # Errors
    /// `Corrupted` if the value read from shared memory is out of range.
    pub fn tail(&self) -> Result<u64> {
        self.core.tail()
    }

    /// Messages currently held: `min(tail, capacity)` (diagnostics).
    ///
    /// # Errors
    /// `Corrupted` if the value read from shared memory is out of range.
    pub fn fill(&self) -> Result<u64> {
        Ok(self.core.tail()?.min(self.core.capacity))
    }

    /// The region this ring lives in.
    pub fn region(&self) -> &Region {
        self.core.region()
    }
}

/// Waits a little for a stalled writer: spin, then yield, then short sleeps.
fn backoff(waits: &mut u32) {
    *waits = waits.wrapping_add(1);
    if *waits < 32 {
        spin_hint();
    } else if *waits < 64 || cfg!(loom) {
        yield_now();
    } else {
        #[cfg(not(loom))]
        std::thread::sleep(Duration::from_micros(50));
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Release our table entry (only if it still names us).
        if let Ok(entry) = self.core.owner_entry(self.index) {
            let _ = entry.compare_exchange(self.identity, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}
