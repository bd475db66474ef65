//! The slot machinery shared by [`MessageRing`](super::MessageRing) and
//! [`ByteRing`](super::ByteRing) endpoints.
//!
//! ## Protocol
//! A bounded queue of `slots` fixed-size slots (Vyukov style), with one change: a
//! position is claimed by a compare-exchange on the *slot word*, which records the
//! claimer's participant number in the same write, and only then is the shared
//! position (`enqueue_pos` / `dequeue_pos`) moved on, by the claimer or by anyone who
//! finds the slot already claimed ("helping"). So no instant exists in which a position
//! is taken but its holder unknown, and a holder that dies anywhere is found from the
//! slot alone.
//!
//! Writer at `p = enqueue_pos`, slot word `w` of slot `p mod slots`:
//! `EMPTY(p)` → CAS to `WRITING(p, me)`, help `enqueue_pos` to `p + 1`, copy, store
//! `len`, publish `FULL(p)`. Any other state tagged `p`, or a tag beyond `p` → help
//! `enqueue_pos` on and retry. Tag `p - slots` (last lap still held) → full, unless
//! its holder is dead (see below).
//!
//! Reader at `q = dequeue_pos`: `FULL(q)` → CAS to `READING(q, me)`, help
//! `dequeue_pos`, copy, publish `EMPTY(q + slots)`. `WRITING(q)` → wait for that
//! producer; `EMPTY(q)` or `READING(q - slots)` → empty; `READING(q)` or a tag beyond
//! `q` → help on and retry.
//!
//! ## Dead holders
//! Every endpoint registers its packed [`ProcessIdentity`](culvert_sync::ProcessIdentity)
//! in the participant table at attach. A waiter, blocking or not (at most every
//! [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL) per endpoint,
//! by its [`RecheckClock`]), looks up the
//! holder of the slot it is stuck on; if that process is dead:
//! `WRITING(t, dead)` → `EMPTY(t + slots)`: the half-written message is skipped, never
//! delivered (counted in `abandoned_by_dead_producers`); `READING(t, dead)` →
//! `EMPTY(t + slots)`: the message was consumed by a process that died, and is counted
//! in `lost_to_dead_consumers`, never delivered twice. Both are single CASes, so exactly
//! one waiter does each. A callback that unwinds while its endpoint holds a slot gives
//! the slot up the same way, at once and counted alike (see `Held`); blocking calls
//! run the callback after their wait, so an unwind never leaves a waiter registered.
//! An attach that takes over a dead process's table entry first
//! sweeps the slots for words naming that entry, so a number is never reused while a
//! slot still names its old holder.
//!
//! ## Close
//! `closed` goes 0 → 1 once. A producer checks it before claiming and again *after* its
//! claim CAS; if it is set then, the producer gives the slot back (`EMPTY(p + slots)`)
//! and reports `Closed`. A consumer loads `closed` *before* the slot word, and returns
//! `Closed` only if the ring looked empty. With all four accesses SeqCst, a producer
//! whose claim the consumer missed must see the flag, so no message is committed after
//! a consumer concluded "drained".
//!
//! ## Untrusted memory
//! Configuration words are copied out at attach and validated against a recomputed
//! layout. Slot words are checked (state/holder coherence, tag within one lap of the
//! position), lengths against `max_message`; a violation poisons the endpoint with
//! `Error::Corrupted`. A tag *ahead* of the position is normally a sign of a stale
//! position read, and the claimer helps the position on; but honest peers never leave a
//! tag more than one lap ahead of a position that has not moved (a tag exactly one lap
//! ahead is left by a holder that died before helping the position, and reclaimed), so
//! that state, confirmed by re-reading the position after the slot word, is
//! `Corrupted` rather than something to help through lap by lap. Every loop iteration
//! either returns or observed another endpoint's progress, a claim gives up with
//! `WouldBlock` after a fixed number of rounds, and blocking waits take a `Deadline`.

use std::cell::Cell;
use std::ptr::NonNull;
use std::time::Duration;

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::{Deadline, Notifier, RecheckClock, WaitStrategy};

use super::control::{
    magic, pack, tag_diff, unpack, ConfigWords, Control, Layout, Line, SlotHeader, StateWords,
    EMPTY, FULL, LAYOUT_VERSION, READING, SLOT_DATA, WRITING,
};
use super::Stats;
use crate::layout::control_ptr;
use crate::{Error, Result};

mod claim;
mod participants;
mod wait;

pub(crate) use wait::{wait, WaitOn};

/// Bytes of region a ring with this layout needs.
pub(crate) fn required_size(layout: &Layout) -> usize {
    layout.total
}

/// Lays out a fresh ring of `kind` in `region`.
pub(crate) fn init(region: &Region, kind: u8, layout: &Layout) -> Result<()> {
    if region.len() < layout.total {
        return Err(Error::InvalidConfig {
            what: "region smaller than the ring",
        });
    }
    let ctl = control_ptr::<Control>(region)?;
    // Participants and slots first, the control block (with its magic) last.
    for i in 0..layout.max_endpoints {
        let off = layout.participants_offset + i * std::mem::size_of::<AtomicU64>();
        // SAFETY: `off + 8 <= slots_offset <= total <= region.len()` (Layout::compute),
        // the offset is 8-aligned (control size is a multiple of 128) and the region
        // base is page-aligned; nobody attached yet, so the write is exclusive.
        unsafe {
            region
                .as_ptr()
                .add(off)
                .cast::<AtomicU64>()
                .write(AtomicU64::new(0))
        };
    }
    for i in 0..layout.slots {
        let off = layout.slots_offset + i * layout.slot_stride;
        let header = SlotHeader {
            state: AtomicU64::new(pack(i as u64, EMPTY, 0)),
            len: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            #[cfg(loom)]
            data_guard: culvert_sync::atomic::UnsafeCell::new(0),
        };
        // SAFETY: slot `i` lies at `slots_offset + i * stride`, inside `total` bytes;
        // offsets and stride are multiples of 64, so the header is aligned; exclusive
        // as above.
        unsafe { region.as_ptr().add(off).cast::<SlotHeader>().write(header) };
    }
    let control = Control {
        config: Line(ConfigWords {
            magic: AtomicU64::new(magic(kind)),
            version: AtomicU32::new(LAYOUT_VERSION),
            slot_shift: AtomicU32::new(layout.slot_shift),
            max_message: AtomicU64::new(layout.max_message as u64),
            max_endpoints: AtomicU32::new(layout.max_endpoints as u32),
            reserved: AtomicU32::new(0),
            slot_stride: AtomicU64::new(layout.slot_stride as u64),
            participants_offset: AtomicU64::new(layout.participants_offset as u64),
            slots_offset: AtomicU64::new(layout.slots_offset as u64),
            total_size: AtomicU64::new(layout.total as u64),
        }),
        enqueue_pos: Line(AtomicU64::new(0)),
        dequeue_pos: Line(AtomicU64::new(0)),
        not_empty: Line(Notifier::new()),
        not_full: Line(Notifier::new()),
        state: Line(StateWords {
            closed: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            lost_to_dead_consumers: AtomicU64::new(0),
            abandoned_by_dead_producers: AtomicU64::new(0),
            aborted_by_close: AtomicU64::new(0),
        }),
    };
    // SAFETY: `control_ptr` checked size and alignment; nobody attached yet.
    unsafe { ctl.as_ptr().write(control) };
    Ok(())
}

/// Most rounds one claim makes. Every round either returns or saw another endpoint
/// move a slot word or a position, so honest peers never get near this; it bounds a
/// call against a peer rewriting shared words in a loop (the call then reports
/// `WouldBlock`, as if the ring were contended).
const MAX_CLAIM_ROUNDS: u32 = 1 << 16;

/// How long, in all, a non-blocking claim waits for slots that other live endpoints
/// hold mid-operation before it reports `WouldBlock` (see [`Patience`]).
pub(crate) const PATIENCE: Duration = Duration::from_millis(2);

/// Pauses of [`Patience`] that only spin (each twice as long as the one before, up to
/// `1 << PATIENCE_SPIN_SHIFT_MAX` spin hints) before it starts yielding the CPU.
const PATIENCE_SPINS: u32 = 10;
const PATIENCE_SPIN_SHIFT_MAX: u32 = 6;

/// What kind of call a claim serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// A non-blocking call: a slot held mid-operation by a live endpoint is waited for,
    /// up to [`PATIENCE`] per call, before `WouldBlock`.
    Try,
    /// One poll of a blocking wait (which sleeps on a notifier instead), or a follow-up
    /// record of a call that already moved data: never waits.
    Once,
}

/// A poll of the ring that could not complete: nothing to do until a peer moves.
struct Blocked;

/// One attached endpoint's view of the ring: validated layout, its participant number
/// and its poison state. Not shared between threads (`&mut self` everywhere).
pub(crate) struct MpmcCore {
    /// Keeps the mapping alive. Invariant: `ctl`, `parts` and `slots` point into it.
    region: Region,
    ctl: NonNull<Control>,
    parts: NonNull<AtomicU64>,
    slots: NonNull<u8>,
    layout: Layout,
    /// `slots - 1`.
    mask: u64,
    /// Our participant number, `1..=max_endpoints`.
    me: u32,
    /// Our packed identity, as written in our table entry.
    identity: u64,
    strategy: WaitStrategy,
    /// Set at the first corruption seen; every later call fails with it.
    poisoned: Cell<Option<&'static str>>,
    /// Rate limit of the holder liveness checks made by blocked claims.
    recheck: RecheckClock,
}

// SAFETY: the raw pointers point into `region`, which the MpmcCore keeps alive and which is
// Send; every access through them is atomic or follows the slot ownership protocol, so
// moving the MpmcCore to another thread is sound.
unsafe impl Send for MpmcCore {}

impl MpmcCore {
    /// Attaches to the ring of `kind` in `region` and registers in the participant table.
    pub(crate) fn attach(region: &Region, kind: u8) -> Result<MpmcCore> {
        let ctl = control_ptr::<Control>(region)?;
        // SAFETY: `control_ptr` checked size and alignment; all fields are atomics.
        let c = unsafe { ctl.as_ref() };
        let w = &c.config.0;
        let corrupt = |what| Err(Error::Corrupted { what });
        if w.magic.load(Ordering::Acquire) != magic(kind) {
            return Err(Error::InvalidConfig {
                what: "region holds no mpmc ring of this kind",
            });
        }
        if w.version.load(Ordering::Relaxed) != LAYOUT_VERSION {
            // The magic says this is an mpmc ring, which only `init` writes, with the
            // one version it knows: another version is a scribbled word.
            return corrupt("mpmc ring layout version");
        }
        let shift = w.slot_shift.load(Ordering::Relaxed);
        if shift >= 32 {
            return corrupt("mpmc slot count");
        }
        let max_message = w.max_message.load(Ordering::Relaxed);
        let max_endpoints = w.max_endpoints.load(Ordering::Relaxed);
        let Ok(layout) = Layout::compute(
            1usize << shift,
            usize::try_from(max_message).unwrap_or(usize::MAX),
            max_endpoints as usize,
        ) else {
            return corrupt("mpmc configuration words");
        };
        if w.slot_stride.load(Ordering::Relaxed) != layout.slot_stride as u64
            || w.participants_offset.load(Ordering::Relaxed) != layout.participants_offset as u64
            || w.slots_offset.load(Ordering::Relaxed) != layout.slots_offset as u64
            || w.total_size.load(Ordering::Relaxed) != layout.total as u64
        {
            return corrupt("mpmc layout words");
        }
        if region.len() < layout.total {
            return corrupt("mpmc ring larger than its region");
        }
        // SAFETY: both offsets are `< total <= region.len()`.
        let (parts, slots) = unsafe {
            (
                NonNull::new_unchecked(region.as_ptr().add(layout.participants_offset)).cast(),
                NonNull::new_unchecked(region.as_ptr().add(layout.slots_offset)),
            )
        };
        let mut core = MpmcCore {
            region: region.clone(),
            ctl,
            parts,
            slots,
            mask: layout.slots as u64 - 1,
            layout,
            me: 0,
            // Models run in one process; skip the /proc read per attach there.
            #[cfg(not(loom))]
            identity: culvert_sync::owner::my_owner_id(),
            #[cfg(loom)]
            identity: 1,
            strategy: WaitStrategy::default(),
            poisoned: Cell::new(None),
            recheck: RecheckClock::new(),
        };
        core.register()?;
        Ok(core)
    }

    /// A second attachment to the same ring (a new participant number).
    pub(crate) fn reattach(&self, kind: u8) -> Result<MpmcCore> {
        let mut c = MpmcCore::attach(&self.region, kind)?;
        c.strategy = self.strategy;
        Ok(c)
    }

    #[inline(always)]
    pub(crate) fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into `self.region`, checked at attach; atomics only.
        unsafe { self.ctl.as_ref() }
    }

    /// The control block with a lifetime not tied to `self`, for `wait_for` closures.
    ///
    /// # Safety
    /// The caller must not use the reference after `self` (and its region) is dropped.
    #[inline(always)]
    pub(crate) unsafe fn ctl_unbound<'a>(&self) -> &'a Control {
        // SAFETY: see the function's contract; the region keeps the memory mapped.
        unsafe { &*self.ctl.as_ptr() }
    }

    #[inline(always)]
    fn part(&self, who: u32) -> &AtomicU64 {
        debug_assert!(who >= 1 && who as usize <= self.layout.max_endpoints);
        // SAFETY: `who - 1 < max_endpoints` (callers validate `who`), so the entry lies
        // inside the participant table, constructed at init.
        unsafe { &*self.parts.as_ptr().add(who as usize - 1) }
    }

    #[inline(always)]
    fn slot(&self, pos: u64) -> &SlotHeader {
        let i = (pos & self.mask) as usize;
        // SAFETY: `i < slots`, so the header lies inside the slot area (Layout), which
        // is 64-aligned; headers were constructed at init.
        unsafe {
            &*self
                .slots
                .as_ptr()
                .add(i * self.layout.slot_stride)
                .cast::<SlotHeader>()
        }
    }

    #[inline(always)]
    fn slot_data(&self, pos: u64) -> *mut u8 {
        let i = (pos & self.mask) as usize;
        // SAFETY: `i * stride + SLOT_DATA + max_message <= slots * stride`.
        unsafe {
            self.slots
                .as_ptr()
                .add(i * self.layout.slot_stride + SLOT_DATA)
        }
    }

    /// Largest message.
    pub(crate) fn max_message(&self) -> usize {
        self.layout.max_message
    }

    /// Slot count.
    pub(crate) fn slots(&self) -> usize {
        self.layout.slots
    }

    pub(crate) fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    pub(crate) fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Whether a blocked claim should check its slot holder's liveness now: at most
    /// once per liveness interval per endpoint, for blocking and non-blocking calls
    /// alike. Never under loom: models run in one process, where no holder dies, and
    /// must not depend on the wall clock.
    fn liveness_due(&self) -> bool {
        !cfg!(loom) && self.recheck.due()
    }

    fn poison(&self, what: &'static str) -> Error {
        self.poisoned.set(Some(what));
        Error::Corrupted { what }
    }

    #[inline(always)]
    fn check_poison(&self) -> Result<()> {
        match self.poisoned.get() {
            Some(what) => Err(Error::Corrupted { what }),
            None => Ok(()),
        }
    }

    /// Validates the holder field of a slot word.
    #[inline(always)]
    fn valid_who(&self, state: u64, who: u32) -> bool {
        match state {
            EMPTY | FULL => who == 0,
            _ => who >= 1 && who as usize <= self.layout.max_endpoints,
        }
    }

    // ---- producer side -----------------------------------------------------------------

    /// Claims the next position for a message of `len` bytes (checked by the caller),
    /// lets `fill` write it, and commits it. `WouldBlock` when full.
    pub(crate) fn try_write_with(
        &mut self,
        len: usize,
        how: Poll,
        fill: impl FnOnce(*mut u8),
    ) -> Result<()> {
        let pos = self.poll_claim_send(len, how)?;
        self.fill_and_commit(pos, len, fill);
        Ok(())
    }

    /// One claim attempt of a producer: `Ok(pos)` when this endpoint now holds
    /// `WRITING(pos)`, `WouldBlock` when full.
    fn poll_claim_send(&mut self, len: usize, how: Poll) -> Result<u64> {
        self.check_poison()?;
        debug_assert!(len <= self.layout.max_message);
        match self.claim_send(how) {
            Ok(r) => r,
            Err(Blocked) => Err(Error::WouldBlock),
        }
    }

    /// Lets `fill` write the claimed slot of `pos`, then commits `len` bytes. If `fill`
    /// unwinds, the slot is given up as a dead producer's would be (see [`Held`]).
    fn fill_and_commit(&self, pos: u64, len: usize, fill: impl FnOnce(*mut u8)) {
        let held = Held {
            core: self,
            pos,
            state: WRITING,
        };
        fill(self.slot_data(pos));
        std::mem::forget(held);
        let slot = self.slot(pos);
        #[cfg(loom)]
        // SAFETY: WRITING(pos, me) grants this endpoint exclusive use of the slot.
        slot.data_guard.with_mut(|p| unsafe { *p = len as u32 });
        slot.len.store(len as u32, Ordering::Relaxed);
        slot.state.store(pack(pos, FULL, 0), Ordering::Release);
        self.ctl().not_empty.0.notify();
    }

    /// Blocking send: waits on `not_full` for a slot, then fills and commits it.
    pub(crate) fn write_with(
        &mut self,
        len: usize,
        deadline: Deadline,
        fill: impl FnOnce(*mut u8),
    ) -> Result<()> {
        let pos = wait(
            self,
            |c| c,
            WaitOn::NotFull,
            deadline,
            |c| c.poll_claim_send(len, Poll::Once),
        )?;
        self.fill_and_commit(pos, len, fill);
        Ok(())
    }

    // ---- consumer side -----------------------------------------------------------------

    /// Claims the next message if it is at most `max_len` bytes (else `BufferTooSmall`,
    /// leaving it in place), lets `take` read it, and releases the slot.
    pub(crate) fn try_read_with<R>(
        &mut self,
        max_len: usize,
        how: Poll,
        take: impl FnOnce(*const u8, usize) -> R,
    ) -> Result<R> {
        let (q, len) = self.poll_claim_recv(max_len, how)?;
        Ok(self.take_and_release(q, len, take))
    }

    /// One claim attempt of a consumer: `Ok((q, len))` when this endpoint now holds
    /// `READING(q)` of a `len`-byte message, `WouldBlock` when empty.
    fn poll_claim_recv(&mut self, max_len: usize, how: Poll) -> Result<(u64, usize)> {
        self.check_poison()?;
        match self.claim_recv(max_len, how) {
            Ok(r) => r,
            Err(Blocked) => Err(Error::WouldBlock),
        }
    }

    /// Lets `take` read the claimed message of `q`, then releases the slot. If `take`
    /// unwinds, the slot is released all the same and the message counted as lost (see
    /// [`Held`]).
    fn take_and_release<R>(
        &self,
        q: u64,
        len: usize,
        take: impl FnOnce(*const u8, usize) -> R,
    ) -> R {
        let slot = self.slot(q);
        #[cfg(loom)]
        // SAFETY: READING(q, me) grants this endpoint exclusive use of the slot.
        slot.data_guard
            .with(|p| assert_eq!(unsafe { *p }, len as u32));
        let held = Held {
            core: self,
            pos: q,
            state: READING,
        };
        let r = take(self.slot_data(q), len);
        std::mem::forget(held);
        slot.state.store(
            pack(q.wrapping_add(self.layout.slots as u64), EMPTY, 0),
            Ordering::Release,
        );
        self.ctl().not_full.0.notify();
        r
    }

    /// Blocking receive: waits on `not_empty` for a message, then lets `take` read it.
    pub(crate) fn read_with<R>(
        &mut self,
        max_len: usize,
        deadline: Deadline,
        take: impl FnOnce(*const u8, usize) -> R,
    ) -> Result<R> {
        let (q, len) = wait(
            self,
            |c| c,
            WaitOn::NotEmpty,
            deadline,
            |c| c.poll_claim_recv(max_len, Poll::Once),
        )?;
        Ok(self.take_and_release(q, len, take))
    }

    // ---- both sides --------------------------------------------------------------------

    /// Closes the ring for every endpoint: producers get `Closed`, consumers drain and
    /// then get `Closed`.
    pub(crate) fn close(&self) {
        self.ctl().state.0.closed.store(1, Ordering::SeqCst);
        self.ctl().not_empty.0.notify();
        self.ctl().not_full.0.notify();
    }

    /// Whether the ring was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.ctl().state.0.closed.load(Ordering::SeqCst) != 0
    }

    /// The shared counters.
    pub(crate) fn stats(&self) -> Stats {
        let st = &self.ctl().state.0;
        Stats {
            lost_to_dead_consumers: st.lost_to_dead_consumers.load(Ordering::Relaxed),
            abandoned_by_dead_producers: st.abandoned_by_dead_producers.load(Ordering::Relaxed),
            aborted_by_close: st.aborted_by_close.load(Ordering::Relaxed),
            enqueue_pos: self.ctl().enqueue_pos.0.load(Ordering::Relaxed),
            dequeue_pos: self.ctl().dequeue_pos.0.load(Ordering::Relaxed),
        }
    }
}

/// A look at the ring that takes nothing.
impl MpmcCore {
    /// Bytes of the committed messages from the dequeue position on, up to the first
    /// slot that holds none (at most one lap). A snapshot: other consumers may take
    /// them meanwhile. Lengths above `max_message` count as `max_message`.
    pub(crate) fn committed_len(&self) -> usize {
        let q = self.ctl().dequeue_pos.0.load(Ordering::Acquire);
        let mut total = 0usize;
        for pos in q..q.wrapping_add(self.layout.slots as u64) {
            let slot = self.slot(pos);
            let s = unpack(slot.state.load(Ordering::Acquire));
            if s.state != FULL || tag_diff(s.tag, pos) != 0 {
                break;
            }
            let len = slot.len.load(Ordering::Relaxed) as usize;
            total = total.saturating_add(len.min(self.layout.max_message));
        }
        total
    }

    /// Never waits: whether a receive would not report `WouldBlock` — a committed
    /// message at the dequeue position, the ring closed, this endpoint poisoned, or
    /// the slot there held by a producer whose process died (checked only when
    /// `liveness_due`; the receive clock is then reset, so the receive that follows
    /// checks again and reclaims the slot). May be spuriously true.
    pub(crate) fn poll_readable(&self, liveness_due: bool) -> bool {
        if self.poisoned.get().is_some() || self.is_closed() {
            return true;
        }
        let q = self.ctl().dequeue_pos.0.load(Ordering::Acquire);
        let s = unpack(self.slot(q).state.load(Ordering::Acquire));
        if tag_diff(s.tag, q) != 0 {
            // Another consumer moved on, or a stale position: let a receive look.
            return s.state != EMPTY && s.state != READING;
        }
        match s.state {
            FULL => true,
            WRITING if liveness_due && !cfg!(loom) && self.holder_dead(s.who) => {
                self.recheck.reset();
                true
            }
            _ => false,
        }
    }

    /// The notifier receivers sleep on.
    pub(crate) fn not_empty(&self) -> &Notifier {
        &self.ctl().not_empty.0
    }

    /// The notifier senders sleep on (notified when a slot is freed or on close).
    pub(crate) fn not_full(&self) -> &Notifier {
        &self.ctl().not_full.0
    }
}

/// The `not_empty` notifier of the ring laid out in `region`, without attaching.
pub(crate) fn not_empty_in(region: &Region) -> Result<&Notifier> {
    let ctl = control_ptr::<Control>(region)?;
    // SAFETY: `control_ptr` checked that the control block lies in the region, aligned;
    // the notifier is atomics only (valid for any bits another process leaves), and the
    // reference lives no longer than the borrow of `region`, which keeps it mapped.
    Ok(unsafe { &(*ctl.as_ptr()).not_empty.0 })
}

/// A slot this endpoint holds (`WRITING(pos, me)` or `READING(pos, me)`) while a
/// callback runs. The normal path forgets it and commits or releases the slot itself;
/// dropping it means the callback unwound, and the slot is then given up exactly as a
/// dead holder's is reclaimed: `EMPTY(pos + slots)`, counted in
/// `abandoned_by_dead_producers` (nothing was committed) or `lost_to_dead_consumers`
/// (the message was taken and is never delivered again).
struct Held<'a> {
    core: &'a MpmcCore,
    pos: u64,
    /// `WRITING` or `READING`.
    state: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let c = self.core;
        let next = pack(self.pos.wrapping_add(c.layout.slots as u64), EMPTY, 0);
        c.slot(self.pos).state.store(next, Ordering::Release);
        let st = &c.ctl().state.0;
        if self.state == READING {
            st.lost_to_dead_consumers.fetch_add(1, Ordering::Relaxed);
        } else {
            st.abandoned_by_dead_producers
                .fetch_add(1, Ordering::Relaxed);
        }
        c.ctl().not_full.0.notify();
        c.ctl().not_empty.0.notify();
    }
}

impl Drop for MpmcCore {
    fn drop(&mut self) {
        if self.me != 0 {
            // Free our entry (we hold no slot between calls). A CAS, so a hostile
            // rewrite of the entry is left alone.
            let _ = self.part(self.me).compare_exchange(
                self.identity,
                0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}
