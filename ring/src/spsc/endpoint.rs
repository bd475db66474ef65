//! [`WriterEnd`] and [`ReaderEnd`]: the framing-independent state and logic of the two
//! SPSC endpoints, shared by the byte and message rings.
//!
//! Each holds the [`SpscCore`], its own position and a cached copy of the peer's, and
//! implements attach (claiming the side, checking positions), the validated refresh of
//! the peer's position (`free` / `available`), publishing, closing, the peer liveness
//! check, and the blocking wait around [`culvert_sync::wait_for`]. The framings keep
//! only record layout. Everything on the hot path is `#[inline]` and statically
//! dispatched.
//!
//! ## Peer death
//! Every call that would block (non-blocking or inside a blocking wait) asks the end's
//! [`RecheckClock`] whether a liveness check is due (at most once per
//! [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL), and at the
//! first blocked call); if so and the peer's owner word names a dead process, the call
//! reports `PeerDied` instead of `WouldBlock`. A writer does so at once (nothing it
//! writes can be read any more); a reader first re-reads the tail, and reports
//! `PeerDied` only if nothing committed is left unread (a dead writer commits nothing
//! new), so nothing the writer committed before dying is lost. A caller polling
//! `try_*` therefore learns of the death within about one interval, as a blocked one
//! does.

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::{wait_for, Deadline, Notifier, RecheckClock, WaitStrategy};

use super::control::SpscControl;
use super::core::SpscCore;
use crate::layout::control_ptr;
use crate::{Error, Result};

/// The error of every call on an endpoint that detected corruption earlier.
const POISONED: Error = Error::Corrupted {
    what: "endpoint poisoned by an earlier corruption",
};

/// The writer's state, common to both framings.
pub(crate) struct WriterEnd {
    pub core: SpscCore,
    /// Our tail (the shared one is only ever written from here). Invariant:
    /// `cached_head <= tail <= cached_head + capacity` (8-aligned in message rings).
    pub tail: u64,
    /// The tail last stored in the shared word. Invariant: `published <= tail`; bytes
    /// between them are whole records committed but not yet published (a batch).
    pub published: u64,
    /// Last head read from the reader. Invariant: `<=` the reader's real head.
    pub cached_head: u64,
    pub strategy: WaitStrategy,
    /// Set after a corruption was detected: every later call fails.
    pub poisoned: bool,
    /// Set once this writer closed: later writes get `Closed`.
    pub closed: bool,
    /// Rate limit of the reader liveness check made by calls that find no room.
    pub recheck: RecheckClock,
    /// Set by [`wait`] around each poll: whether that poll checks the peer's liveness,
    /// by the wait's own cadence, instead of reading `recheck`'s clock. Taken by
    /// `blocked`.
    pub verdict: Option<bool>,
}

impl WriterEnd {
    /// The notifier the writer sleeps on (notified when the reader frees room or
    /// closes).
    pub(crate) fn writable_notifier(&self) -> &Notifier {
        Side::Writer.notifier(self.core.ctl())
    }

    /// Attaches to the ring in `region` as its writer (see [`attach`]).
    pub(crate) fn attach(
        region: &Region,
        kind: u8,
        message: bool,
        positions: &'static str,
    ) -> Result<Self> {
        let (core, head, tail) = attach(region, kind, message, positions, Side::Writer)?;
        Ok(Self {
            core,
            tail,
            published: tail,
            cached_head: head,
            strategy: WaitStrategy::default(),
            poisoned: false,
            closed: false,
            recheck: RecheckClock::new(),
            verdict: None,
        })
    }

    /// The error of a call that found no room: `PeerDied` when a liveness check is due
    /// and the reader's process is dead, `WouldBlock` otherwise.
    #[cold]
    pub(crate) fn blocked(&mut self) -> Error {
        let reader = Side::Writer.peer_owner(self.core.ctl());
        let due = take_verdict(&mut self.verdict, &self.recheck);
        if due && self.core.owner_died(reader.load(Ordering::Acquire)) {
            return Error::PeerDied;
        }
        Error::WouldBlock
    }

    /// Free bytes, re-reading the reader's head only when the cached one shows less
    /// than `want`.
    #[inline]
    pub(crate) fn free(&mut self, want: u64) -> Result<u64> {
        if self.poisoned {
            return Err(POISONED);
        }
        let mut free = self.core.capacity - (self.tail - self.cached_head);
        if free < want {
            let head = self.core.ctl().reader.head.load(Ordering::Acquire);
            if head < self.cached_head || self.core.check_span(head, self.tail, "").is_err() {
                self.poisoned = true;
                return Err(Error::Corrupted {
                    what: "reader head outside [tail - capacity, tail]",
                });
            }
            self.cached_head = head;
            free = self.core.capacity - (self.tail - head);
        }
        Ok(free)
    }

    /// `Closed` if this writer or the reader closed.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed || self.reader_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Whether the reader closed its side.
    #[inline]
    pub(crate) fn reader_closed(&self) -> bool {
        self.core.ctl().state.reader_closed.load(Ordering::Acquire) != 0
    }

    /// Moves the tail to `new_tail`, publishing everything before it to the reader.
    #[inline]
    pub(crate) fn publish(&mut self, new_tail: u64) {
        self.tail = new_tail;
        self.published = new_tail;
        let ctl = self.core.ctl();
        ctl.writer.tail.store(new_tail, Ordering::Release);
        ctl.readable.notifier.notify();
    }

    /// Moves the tail to `new_tail` without publishing it (see [`flush`](Self::flush)).
    #[inline]
    pub(crate) fn advance(&mut self, new_tail: u64) {
        self.tail = new_tail;
    }

    /// Publishes every record committed since the last publish, with one store and one
    /// notify; nothing if there is none.
    #[inline]
    pub(crate) fn flush(&mut self) {
        if self.published != self.tail {
            self.publish(self.tail);
        }
    }

    /// Hands this writer's owner word to `stand_in` (see
    /// [`OwnerWord::hand_to`](culvert_sync::OwnerWord::hand_to)); whether it now holds it.
    pub(crate) fn hand_owner_to(&self, stand_in: u64) -> bool {
        culvert_sync::OwnerWord::from_atomic(Side::Writer.own_owner(self.core.ctl()))
            .hand_to(culvert_sync::owner::my_owner_id(), stand_in)
    }

    /// Closes the writing side (idempotent), publishing a pending batch first.
    pub(crate) fn close(&mut self) {
        self.flush();
        self.closed = true;
        let ctl = self.core.ctl();
        ctl.state.writer_closed.store(1, Ordering::Release);
        ctl.readable.notifier.notify();
    }
}

/// The reader's state, common to both framings.
pub(crate) struct ReaderEnd {
    pub core: SpscCore,
    /// Our head (the shared one is only ever written from here). Invariant:
    /// `head <= cached_tail <= head + capacity` (8-aligned in message rings).
    pub head: u64,
    /// The head last stored in the shared word. Invariant: `released <= head`; bytes
    /// between them were read but not yet given back to the writer (a batch).
    pub released: u64,
    /// Last tail read from the writer.
    pub cached_tail: u64,
    pub strategy: WaitStrategy,
    /// Set after a corruption was detected: every later call fails.
    pub poisoned: bool,
    /// Rate limit of the writer liveness check made by calls that find nothing to read.
    pub recheck: RecheckClock,
    /// As [`WriterEnd::verdict`].
    pub verdict: Option<bool>,
    /// Whether a poll of an empty ring fetches the data line at the head along with
    /// the tail: false while reads are served from the tail's echo (byte rings, see
    /// `echo`), whose writer would otherwise have to take that line back first.
    pub prefetch_data: bool,
}

impl ReaderEnd {
    /// Attaches to the ring in `region` as its reader (see [`attach`]).
    pub(crate) fn attach(
        region: &Region,
        kind: u8,
        message: bool,
        positions: &'static str,
    ) -> Result<Self> {
        let (core, head, tail) = attach(region, kind, message, positions, Side::Reader)?;
        Ok(Self {
            core,
            head,
            released: head,
            cached_tail: tail,
            strategy: WaitStrategy::default(),
            poisoned: false,
            recheck: RecheckClock::new(),
            verdict: None,
            prefetch_data: true,
        })
    }

    /// The error of a call that found nothing committed: `PeerDied` when a liveness
    /// check is due, the writer's process is dead and a fresh look at the tail still
    /// shows nothing unread; `WouldBlock` otherwise (also when that look found bytes
    /// the writer committed before it died: the next call reads them, and checks again
    /// at once).
    #[cold]
    pub(crate) fn blocked(&mut self) -> Error {
        let writer = Side::Reader.peer_owner(self.core.ctl());
        let due = take_verdict(&mut self.verdict, &self.recheck);
        if !due || !self.core.owner_died(writer.load(Ordering::Acquire)) {
            return Error::WouldBlock;
        }
        match self.available(u64::MAX) {
            Ok(0) => Error::PeerDied,
            Ok(_) => {
                self.recheck.reset();
                Error::WouldBlock
            }
            Err(e) => e,
        }
    }

    /// Never waits: whether a read would not report `WouldBlock` — committed bytes,
    /// end of stream, a poisoned endpoint, or a dead writer (checked as [`Self::blocked`]
    /// does: by a verdict the caller left, else at most once per liveness interval).
    pub(crate) fn poll_readable(&mut self) -> bool {
        if self.poisoned {
            return true;
        }
        match self.available(1) {
            Ok(0) => {
                // Nothing to read: give a batch read so far back before anyone waits.
                self.flush();
                !matches!(self.blocked(), Error::WouldBlock)
            }
            _ => true,
        }
    }

    /// The notifier the reader sleeps on (notified on commit and close).
    pub(crate) fn readable_notifier(&self) -> &Notifier {
        Side::Reader.notifier(self.core.ctl())
    }

    /// Marks the endpoint poisoned and returns the corruption error.
    pub(crate) fn corrupted(&mut self, what: &'static str) -> Error {
        self.poisoned = true;
        Error::Corrupted { what }
    }

    /// `Corrupted` once the endpoint was poisoned.
    #[inline(always)]
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            return Err(POISONED);
        }
        Ok(())
    }

    /// Committed bytes after `head`, re-reading the writer's tail only when the cached
    /// one shows fewer than `want` (so `want == u64::MAX` always re-reads, and a caller
    /// never sees less than it asked for while more is committed). `Closed` once the
    /// writer closed and everything was read. Does not check the poison flag.
    #[inline]
    pub(crate) fn available(&mut self, want: u64) -> Result<u64> {
        let cached = self.cached_tail - self.head;
        if cached >= want.max(1) {
            return Ok(cached);
        }
        let ctl = self.core.ctl();
        let mut closed = false;
        // The next bytes will land on the line at the head: fetch it alongside the tail,
        // so that a reader polling an empty ring takes both misses at once.
        if self.prefetch_data {
            self.core.prefetch(self.head);
        }
        loop {
            let tail = ctl.writer.tail.load(Ordering::Acquire);
            if tail < self.cached_tail || self.core.check_span(self.head, tail, "").is_err() {
                return Err(self.corrupted("writer tail outside [head, head + capacity]"));
            }
            self.cached_tail = tail;
            if tail != self.head {
                return Ok(tail - self.head);
            }
            if closed {
                return Err(Error::Closed);
            }
            // The writer sets `closed` after its last tail store: if we see it, one
            // more tail read sees everything it committed.
            if ctl.state.writer_closed.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
            closed = true;
        }
    }

    /// Moves the head on by `n` bytes, handing them back to the writer.
    #[inline]
    pub(crate) fn release(&mut self, n: u64) {
        self.head += n;
        self.released = self.head;
        let ctl = self.core.ctl();
        ctl.reader.head.store(self.head, Ordering::Release);
        ctl.writable.notifier.notify();
    }

    /// Moves the head past `n` bytes without releasing them to the writer yet (see
    /// [`flush`](Self::flush)).
    #[inline]
    pub(crate) fn consume(&mut self, n: u64) {
        self.head += n;
    }

    /// Whether the writer announced that it sleeps (waits for room). A hint: it may
    /// be stale, so no wake-up may depend on it.
    #[inline]
    pub(crate) fn writer_sleeps(&self) -> bool {
        Side::Writer.notifier(self.core.ctl()).waiter_count() != 0
    }

    /// Releases every byte consumed since the last release, with one store and one
    /// notify; nothing if there is none.
    #[inline]
    pub(crate) fn flush(&mut self) {
        if self.released != self.head {
            self.release(0);
        }
    }

    /// Whether the writer closed its side.
    #[inline]
    pub(crate) fn writer_closed(&self) -> bool {
        self.core.ctl().state.writer_closed.load(Ordering::Acquire) != 0
    }

    /// Closes the reading side (idempotent).
    pub(crate) fn close(&mut self) {
        self.flush();
        let ctl = self.core.ctl();
        ctl.state.reader_closed.store(1, Ordering::Release);
        ctl.writable.notifier.notify();
    }
}

/// Which side a blocked call waits as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Sleeps on `writable`; a dead reader means `PeerDied` at once.
    Writer,
    /// Sleeps on `readable`; a dead writer means `PeerDied` once drained.
    Reader,
}

impl Side {
    /// The owner word of this side.
    fn own_owner(self, ctl: &SpscControl) -> &AtomicU64 {
        match self {
            Side::Writer => &ctl.state.writer_owner,
            Side::Reader => &ctl.state.reader_owner,
        }
    }

    /// This side's closed flag.
    fn own_closed(self, ctl: &SpscControl) -> &AtomicU32 {
        match self {
            Side::Writer => &ctl.state.writer_closed,
            Side::Reader => &ctl.state.reader_closed,
        }
    }

    fn notifier(self, ctl: &SpscControl) -> &Notifier {
        match self {
            Side::Writer => &ctl.writable.notifier,
            Side::Reader => &ctl.readable.notifier,
        }
    }

    fn peer_owner(self, ctl: &SpscControl) -> &AtomicU64 {
        match self {
            Side::Writer => &ctl.state.reader_owner,
            Side::Reader => &ctl.state.writer_owner,
        }
    }
}

/// Attaches to the ring in `region` as `side`: validates the ring, claims the side
/// (`Busy` while another live endpoint holds it), `Closed` if the side was already
/// closed, and checks the positions (`positions` names them in the error). Returns the
/// core and the shared head and tail.
fn attach(
    region: &Region,
    kind: u8,
    message: bool,
    positions: &'static str,
    side: Side,
) -> Result<(SpscCore, u64, u64)> {
    let core = SpscCore::attach(region, kind, message)?;
    let ctl = core.ctl();
    let name = match side {
        Side::Writer => "writer",
        Side::Reader => "reader",
    };
    culvert_sync::OwnerWord::from_atomic(side.own_owner(ctl))
        .claim(culvert_sync::owner::my_owner_id())
        .map_err(|_| Error::Busy { what: name })?;
    if side.own_closed(ctl).load(Ordering::Acquire) != 0 {
        return Err(Error::Closed);
    }
    // Each side loads its own position first.
    let (head, tail) = match side {
        Side::Writer => {
            let tail = ctl.writer.tail.load(Ordering::Acquire);
            (ctl.reader.head.load(Ordering::Acquire), tail)
        }
        Side::Reader => {
            let head = ctl.reader.head.load(Ordering::Acquire);
            (head, ctl.writer.tail.load(Ordering::Acquire))
        }
    };
    core.check_span(head, tail, positions)?;
    Ok((core, head, tail))
}

/// Whether this blocked call checks the peer's liveness: by the verdict a blocking wait
/// left (recorded on `clock` when it says yes), else by `clock`.
#[inline]
fn take_verdict(verdict: &mut Option<bool>, clock: &RecheckClock) -> bool {
    match verdict.take() {
        Some(true) => {
            clock.checked();
            true
        }
        Some(false) => false,
        None => check_due(clock),
    }
}

/// Whether a liveness check of the peer is due by `clock`. Never under loom: models run
/// in one process, where no peer dies, and must not depend on the wall clock.
#[inline]
fn check_due(clock: &RecheckClock) -> bool {
    !cfg!(loom) && clock.due()
}

/// An SPSC endpoint of either framing, as [`wait`] sees it.
pub(crate) trait Endpoint {
    /// Which side it is.
    const SIDE: Side;
    /// Its ring.
    fn core(&self) -> &SpscCore;
    /// How its blocking calls wait.
    fn strategy(&self) -> WaitStrategy;
    /// Its [`WriterEnd::verdict`] / [`ReaderEnd::verdict`].
    fn verdict(&mut self) -> &mut Option<bool>;
}

/// Writes, for a framing's writer and reader types (each with an `end` field of
/// [`WriterEnd`] / [`ReaderEnd`]), their [`Endpoint`] impls (this module's and the
/// crate's public [`crate::Endpoint`]), the writer's [`crate::WriteEndpoint`] impl,
/// `Drop` (closing the side) and the reader's [`Waitable`](culvert_sync::Waitable) impl.
macro_rules! endpoint_impls {
    (@endpoint $ty:ty, $side:ident) => {
        impl $crate::spsc::endpoint::Endpoint for $ty {
            const SIDE: $crate::spsc::endpoint::Side = $crate::spsc::endpoint::Side::$side;
            fn core(&self) -> &$crate::spsc::core::SpscCore {
                &self.end.core
            }
            fn strategy(&self) -> culvert_sync::WaitStrategy {
                self.end.strategy
            }
            fn verdict(&mut self) -> &mut Option<bool> {
                &mut self.end.verdict
            }
        }
    };
    (@public $ty:ty, $peer_closed:ident) => {
        impl $crate::Endpoint for $ty {
            fn set_wait_strategy(&mut self, strategy: culvert_sync::WaitStrategy) {
                self.end.strategy = strategy;
            }
            fn close(&mut self) {
                self.end.close();
            }
            fn is_closed(&self) -> bool {
                self.end.$peer_closed()
            }
            fn region(&self) -> &culvert_section::Region {
                self.end.core.region()
            }
        }

        impl Drop for $ty {
            fn drop(&mut self) {
                self.end.close();
            }
        }
    };
    ($writer:ty, $reader:ty) => {
        $crate::spsc::endpoint::endpoint_impls!(@endpoint $writer, Writer);
        $crate::spsc::endpoint::endpoint_impls!(@endpoint $reader, Reader);
        $crate::spsc::endpoint::endpoint_impls!(@public $writer, reader_closed);
        $crate::spsc::endpoint::endpoint_impls!(@public $reader, writer_closed);

        impl $crate::WriteEndpoint for $writer {
            fn writable_notifier(&self) -> &culvert_sync::Notifier {
                self.end.writable_notifier()
            }
        }

        // SAFETY: the notifier lives in the ring's region, which the endpoint keeps
        // mapped at a fixed address, not in the endpoint value.
        unsafe impl culvert_sync::Waitable for $reader {
            /// True when a read would not report `WouldBlock`: something committed,
            /// end of stream, a dead writer (checked when the set says a liveness
            /// check is due) or a corruption.
            fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
                self.end.verdict = Some(ctx.liveness_due);
                let ready = self.end.poll_readable();
                self.end.verdict = None;
                ready
            }

            fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
                f(self.end.readable_notifier());
            }
        }
    };
}
pub(crate) use endpoint_impls;

/// Runs `op` on `endpoint` until it stops returning `WouldBlock`, sleeping on the
/// side's notifier until `deadline`. `op` reports a dead peer itself (`PeerDied`, see
/// the module doc), when the wait says a liveness check is due: `wait_for` says so at
/// least once per liveness interval, and the polls in between read no clock.
#[inline]
pub(crate) fn wait<E: Endpoint, T>(
    endpoint: &mut E,
    deadline: Deadline,
    mut op: impl FnMut(&mut E) -> Result<T>,
) -> Result<T> {
    // The first try, and a quick spin, need no wait set up (no region clone, no clock
    // read): on a busy stream most calls complete in the first try, and a peer
    // answering at once is caught by the spin.
    let mut quick = |endpoint: &mut E| {
        *endpoint.verdict() = Some(false);
        let r = op(endpoint);
        *endpoint.verdict() = None;
        match r {
            Err(Error::WouldBlock) => None,
            done => Some(done),
        }
    };
    if let Some(done) = quick(endpoint) {
        return done;
    }
    let strategy = endpoint.strategy();
    if let Some(done) = culvert_sync::quick_spin(strategy, || quick(endpoint)) {
        return done;
    }
    // The notifier lives in the ring's mapping; a clone of the region keeps it there
    // for this call, independently of the borrow of `endpoint` that `op` takes.
    let region = endpoint.core().region().clone();
    let ctl = control_ptr::<SpscControl>(&region)?;
    // SAFETY: `control_ptr` checked size and alignment, `region` keeps it mapped for
    // the whole call, and only the notifier's atomics are used through it.
    let notifier = E::SIDE.notifier(unsafe { ctl.as_ref() });
    wait_for(notifier, strategy, deadline, |ctx| {
        *endpoint.verdict() = Some(ctx.liveness_due);
        let r = op(endpoint);
        *endpoint.verdict() = None;
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Error::WouldBlock) => Ok(None),
            Err(e) => Err(e),
        }
    })
}
