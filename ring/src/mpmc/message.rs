//! [`MessageRing`]: N producers, M consumers, whole messages of up to `max_message`.

use culvert_section::Region;
use culvert_sync::Deadline;

use super::control::KIND_MPMC_MESSAGE;
use super::core::{self, MpmcCore, Poll};
use super::endpoint::endpoint_methods;
use super::Config;
use crate::{Error, Result};

/// Creating and sizing MPMC message rings.
#[derive(Debug)]
pub struct MessageRing;

impl MessageRing {
    /// Bytes of region a message ring with `config` needs.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring.
    pub fn required_size(config: &Config) -> Result<usize> {
        Ok(core::required_size(&config.layout()?))
    }

    /// Lays out a fresh message ring at the start of `region` (which must be aligned to
    /// 128 bytes). Call once, before any endpoint attaches.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring, or `region` is too small
    /// or misaligned for it.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        core::init(region, KIND_MPMC_MESSAGE, &config.layout()?)
    }

    /// The notifier consumers of the ring in `region` sleep on (notified after every
    /// send and at close), for a wait that also polls other state than one consumer
    /// (a server waiting for requests and for its own housekeeping). It lives in the
    /// region, so it stays valid while `region` is borrowed.
    ///
    /// # Errors
    /// `InvalidConfig` if `region` is too small or misaligned for a ring.
    pub fn readable_notifier(region: &Region) -> Result<&culvert_sync::Notifier> {
        core::not_empty_in(region)
    }
}

/// Copies `len` bytes from a slot into `dst`.
///
/// # Safety
/// `src..src+len` must be a slot's data this endpoint holds (READING) and
/// `len <= dst.len()`.
#[inline(always)]
unsafe fn copy_out(src: *const u8, len: usize, dst: &mut [u8]) {
    debug_assert!(len <= dst.len());
    // SAFETY: per the contract; the slot and `dst` cannot overlap (`dst` is ours).
    unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), len) }
}

/// A sending end of a [`MessageRing`]. Attach as many as needed (each takes one
/// participant entry).
pub struct MessageWriter {
    core: MpmcCore,
}

endpoint_methods!(MessageWriter, "producer", KIND_MPMC_MESSAGE);
endpoint_methods!(@writer MessageWriter);

impl MessageWriter {
    /// Attaches a producer to the message ring in `region`. `Busy` when the participant
    /// table is full of live endpoints; `Corrupted`/`InvalidConfig` when the region
    /// holds no valid ring.
    pub fn attach(region: &Region) -> Result<Self> {
        Ok(Self {
            core: MpmcCore::attach(region, KIND_MPMC_MESSAGE)?,
        })
    }

    /// Largest message accepted.
    pub fn max_message(&self) -> usize {
        self.core.max_message()
    }

    /// Slots in the ring.
    pub fn slots(&self) -> usize {
        self.core.slots()
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.core.max_message();
        if len > max {
            return Err(Error::MessageTooLarge { len, max });
        }
        Ok(())
    }

    /// Sends `msg` if the ring has room; `WouldBlock` when it is full, `Closed` once
    /// closed, `MessageTooLarge` (nothing written) above `max_message`.
    ///
    /// Linearizable as long as no endpoint stays stalled in the middle of a send or
    /// receive (or dies there) for more than about 2 ms: `WouldBlock` then means the
    /// ring held `slots` messages at some instant of the call. A slot still held by a
    /// live endpoint finishing its operation is waited for, by spinning and then
    /// yielding, up to that bound; past it (or at once if that endpoint's process is
    /// dead) the call gives `WouldBlock` although the ring may have had room.
    pub fn try_write(&mut self, msg: &[u8]) -> Result<()> {
        self.check_len(msg.len())?;
        self.core.try_write_with(msg.len(), Poll::Try, |dst| {
            // SAFETY: `dst` is the data of a slot we hold (WRITING), with room for
            // `max_message >= msg.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, msg.len()) }
        })
    }

    /// Sends `msg`, waiting for a free slot until `deadline` (`Timeout`).
    pub fn write(&mut self, msg: &[u8], deadline: Deadline) -> Result<()> {
        self.check_len(msg.len())?;
        self.core.write_with(msg.len(), deadline, |dst| {
            // SAFETY: as in `try_write`.
            unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, msg.len()) }
        })
    }

    /// Sends a message of `len` bytes written in place: claims a slot (waiting until
    /// `deadline`), lets `fill` write the message into it, and commits it. The slot
    /// holds stale bytes until `fill` writes them. If `fill` unwinds, or the process
    /// dies inside it, nothing is committed and the slot is recovered like a dead
    /// producer's. Errors as [`write`](Self::write).
    pub fn write_with(
        &mut self,
        len: usize,
        deadline: Deadline,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<()> {
        self.check_len(len)?;
        self.core.write_with(len, deadline, |dst| {
            // SAFETY: `dst` is the data of a slot this endpoint holds (WRITING), with
            // room for `max_message >= len` bytes; no reader looks at it until commit.
            fill(unsafe { std::slice::from_raw_parts_mut(dst, len) })
        })
    }
}

/// A receiving end of a [`MessageRing`]. Attach as many as needed.
pub struct MessageReader {
    core: MpmcCore,
}

endpoint_methods!(MessageReader, "consumer", KIND_MPMC_MESSAGE);

impl MessageReader {
    /// Attaches a consumer to the message ring in `region`.
    ///
    /// # Errors
    /// `Corrupted` or `InvalidConfig` when the region holds no valid ring of this kind;
    /// `Busy` when its endpoint table is full of live endpoints.
    pub fn attach(region: &Region) -> Result<Self> {
        Ok(Self {
            core: MpmcCore::attach(region, KIND_MPMC_MESSAGE)?,
        })
    }

    /// Largest message the ring holds.
    pub fn max_message(&self) -> usize {
        self.core.max_message()
    }

    /// Slots in the ring.
    pub fn slots(&self) -> usize {
        self.core.slots()
    }

    /// Receives the next message into `buf`, returning its length. `WouldBlock` when
    /// empty; `Closed` when closed and drained; `BufferTooSmall` (the message stays in
    /// the ring for a later call with a larger buffer) when it does not fit.
    ///
    /// Linearizable as long as no endpoint stays stalled in the middle of a send or
    /// receive (or dies there) for more than about 2 ms: `WouldBlock` then means the
    /// ring was empty at some instant of the call. A message whose send has claimed
    /// its slot but not yet committed is waited for, by spinning and then yielding, up
    /// to that bound; past it (or at once if that producer's process is dead) the call
    /// gives `WouldBlock` although later messages may be committed.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.core.try_read_with(buf.len(), Poll::Try, |src, len| {
            // SAFETY: `src` is the data of the slot we hold (READING); `len <= buf.len()`
            // was checked by the claim.
            unsafe { copy_out(src, len, buf) };
            len
        })
    }

    /// Receives the next message into `buf`, waiting until `deadline` (`Timeout`).
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        let max = buf.len();
        self.core.read_with(max, deadline, |src, len| {
            // SAFETY: as in `try_read`.
            unsafe { copy_out(src, len, buf) };
            len
        })
    }

    /// Hands the next message to `f` in place (no copy), then frees its slot.
    /// `WouldBlock` when empty (with the guarantee of [`try_read`](Self::try_read)),
    /// `Closed` when closed and drained. If `f` panics, the
    /// slot is freed all the same and the message, taken but not handled, is counted in
    /// [`Stats::lost_to_dead_consumers`](super::Stats::lost_to_dead_consumers).
    pub fn try_read_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.core.try_read_with(usize::MAX, Poll::Try, |src, len| {
            // SAFETY: we hold the slot (READING): no honest peer writes these `len <=
            // max_message` bytes until we release it (the slot's grant).
            f(unsafe { std::slice::from_raw_parts(src, len) })
        })
    }

    /// [`try_read_with`](Self::try_read_with), waiting until `deadline` (`f` runs
    /// after the wait, once a message is claimed).
    ///
    /// # Errors
    /// As [`try_read_with`](Self::try_read_with), with `Timeout` for `WouldBlock`.
    pub fn read_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R, deadline: Deadline) -> Result<R> {
        self.core.read_with(usize::MAX, deadline, |src, len| {
            // SAFETY: as in `try_read_with`.
            f(unsafe { std::slice::from_raw_parts(src, len) })
        })
    }
}

// SAFETY: the notifier lives in the ring's region, which the endpoint's core keeps
// mapped at a fixed address, not in the endpoint value.
unsafe impl culvert_sync::Waitable for MessageReader {
    /// True when a receive would not report `WouldBlock`: a committed message at the
    /// dequeue position, the ring closed, a slot held by a dead producer (checked at
    /// most once per liveness interval) or a corruption.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.core.poll_readable(ctx.liveness_due)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        f(self.core.not_empty());
    }
}
