//! [`MessageRing`]: SPSC length-prefixed messages; boundaries are kept.
//!
//! A record is an 8-byte header `{ len: u32, kind: u32 }` and the payload, padded to 8
//! bytes. Records are contiguous in the data area: when one does not fit before the
//! end, the writer first publishes a `PAD` record covering the rest of the lap, and the
//! message starts again at offset 0. A message that would straddle the end therefore
//! wraps whole, and read grants are always one slice. That costs at most one message's
//! worth of space per lap, and is why `max_message <= capacity - 8`.

use culvert_section::Region;
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline, WaitStrategy};

use super::control::{Config, KIND_MESSAGE};
use super::core::{self, Core, RECORD_HEADER};
use crate::layout::round_up;
use crate::{owner, Error, Result};

/// Record kind of a message.
const KIND_MSG: u32 = 0x4d53_4721;
/// Record kind of padding up to the end of the lap.
const KIND_PAD: u32 = 0x5041_4421;

/// Bytes a record with a `len`-byte payload occupies.
#[inline(always)]
fn record_size(len: u64) -> u64 {
    RECORD_HEADER as u64 + ((len + 7) & !7)
}

/// Creating and sizing message rings.
pub struct MessageRing;

impl MessageRing {
    /// Bytes of region a message ring with `config` needs.
    pub fn required_size(config: &Config) -> Result<usize> {
        core::required_size(config, true)
    }

    /// Lays out a fresh message ring at the start of `region`. Call once, before any
    /// endpoint attaches.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        core::init(region, config, KIND_MESSAGE, true)
    }

    /// The smallest power-of-two capacity whose ring holds messages of `max_message`.
    pub fn capacity_for(max_message: usize) -> Option<usize> {
        round_up(max_message.checked_add(RECORD_HEADER)?, 8)?
            .max(64)
            .checked_next_power_of_two()
    }
}

/// The writing end of a [`MessageRing`].
pub struct MessageWriter {
    core: Core,
    /// Our tail. Invariant: 8-aligned; `cached_head <= tail <= cached_head + capacity`.
    tail: u64,
    /// Last head read from the reader.
    cached_head: u64,
    strategy: WaitStrategy,
    poisoned: bool,
    /// Set once this writer closed: later writes get `Closed`.
    closed: bool,
}

impl MessageWriter {
    /// Attaches the writer to the message ring in `region`. `Busy` while another live
    /// writer holds it; `Closed` if the writer side was already closed.
    pub fn attach(region: &Region) -> Result<Self> {
        let core = Core::attach(region, KIND_MESSAGE, true)?;
        let ctl = core.ctl();
        owner::claim(&ctl.state.writer_owner, "writer")?;
        if ctl.state.writer_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        let tail = ctl.writer.tail.load(Ordering::Acquire);
        let head = ctl.reader.head.load(Ordering::Acquire);
        core.check_span(head, tail, "message ring positions at attach")?;
        if tail % 8 != 0 {
            return Err(Error::Corrupted {
                what: "message ring tail not 8-aligned",
            });
        }
        Ok(Self {
            core,
            tail,
            cached_head: head,
            strategy: WaitStrategy::default(),
            poisoned: false,
            closed: false,
        })
    }

    /// How blocking calls wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.core.max_message as usize
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity as usize
    }

    #[inline]
    fn free(&mut self, want: u64) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Corrupted {
                what: "endpoint poisoned by an earlier corruption",
            });
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

    #[inline]
    fn write_header(&self, pos: u64, len: u32, kind: u32) {
        let mut header = [0u8; RECORD_HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&kind.to_le_bytes());
        self.core.copy_in(pos, &header);
    }

    #[inline]
    fn publish(&mut self, new_tail: u64) {
        self.tail = new_tail;
        let ctl = self.core.ctl();
        ctl.writer.tail.store(new_tail, Ordering::Release);
        ctl.readable.notifier.notify();
    }

    /// Reserves room for a message of up to `len` bytes, to be written in place and
    /// committed. `MessageTooLarge` above `max_message`; `WouldBlock` if the ring has
    /// no room now; `Closed` if the reader closed.
    pub fn reserve(&mut self, len: usize) -> Result<MessageGrant<'_>> {
        if len as u64 > self.core.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.core.max_message as usize,
            });
        }
        if self.closed || self.core.ctl().state.reader_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        let need = record_size(len as u64);
        let to_end = self.core.capacity - (self.tail & self.core.mask);
        if need > to_end {
            // Pad to the end of the lap first (publishing the pad is harmless: the
            // reader skips it), then the message starts at offset 0.
            if self.free(to_end)? < to_end {
                return Err(Error::WouldBlock);
            }
            self.write_header(self.tail, (to_end - RECORD_HEADER as u64) as u32, KIND_PAD);
            self.publish(self.tail + to_end);
        }
        if self.free(need)? < need {
            return Err(Error::WouldBlock);
        }
        Ok(MessageGrant {
            ptr: self.core.at(self.tail + RECORD_HEADER as u64),
            len,
            writer: self,
        })
    }

    /// Writes `msg` as one message if it fits now; `WouldBlock` otherwise.
    #[inline]
    pub fn try_write(&mut self, msg: &[u8]) -> Result<()> {
        let mut grant = self.reserve(msg.len())?;
        grant.as_mut_slice().copy_from_slice(msg);
        grant.commit(msg.len());
        Ok(())
    }

    /// Writes `msg` as one message, waiting for room until `deadline`. `PeerDied` if
    /// the reader's process died.
    pub fn write(&mut self, msg: &[u8], deadline: Deadline) -> Result<()> {
        let strategy = self.strategy;
        let ctl_ptr: *const _ = self.core.ctl();
        // SAFETY: the control block lives as long as `self.core`; only its notifier
        // (atomics) is used through this reference.
        let notifier = unsafe { &(*ctl_ptr).writable.notifier };
        wait_for(notifier, strategy, deadline, |ctx| {
            match self.try_write(msg) {
                Ok(()) => Ok(Some(())),
                Err(Error::WouldBlock) => {
                    if ctx.liveness_due {
                        let owner = self.core.ctl().state.reader_owner.load(Ordering::Acquire);
                        if self.core.owner_died(owner) {
                            return Err(Error::PeerDied);
                        }
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Closes the writing side: the reader drains, then gets `Closed`. Idempotent;
    /// dropping the writer closes it too.
    pub fn close(&mut self) {
        self.closed = true;
        let ctl = self.core.ctl();
        ctl.state.writer_closed.store(1, Ordering::Release);
        ctl.readable.notifier.notify();
    }

    /// Whether the reader closed its side.
    pub fn is_closed(&self) -> bool {
        self.core.ctl().state.reader_closed.load(Ordering::Acquire) != 0
    }

    /// The region the ring lives in.
    pub fn region(&self) -> &Region {
        self.core.region()
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Room for one message, owned by the writer until committed. Dropping the grant
/// without [`commit`](Self::commit) writes nothing.
pub struct MessageGrant<'a> {
    writer: &'a mut MessageWriter,
    /// Payload start. Invariant: `ptr..ptr+len` is contiguous free space after the
    /// record header at the writer's tail, owned by the writer.
    ptr: *mut u8,
    len: usize,
}

impl MessageGrant<'_> {
    /// The payload bytes, to fill in place. Their initial contents are unspecified.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the record lies in free space the SPSC protocol grants to the writer
        // (between tail and head + capacity), contiguous by construction in `reserve`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The payload length reserved.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether a zero-length message was reserved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publishes a message of the first `len` payload bytes (clamped to the grant).
    #[inline]
    pub fn commit(self, len: usize) {
        let len = len.min(self.len);
        let w = self.writer;
        w.write_header(w.tail, len as u32, KIND_MSG);
        w.publish(w.tail + record_size(len as u64));
    }
}

/// The reading end of a [`MessageRing`].
pub struct MessageReader {
    core: Core,
    /// Our head. Invariant: 8-aligned; `head <= cached_tail <= head + capacity`.
    head: u64,
    /// Last tail read from the writer.
    cached_tail: u64,
    strategy: WaitStrategy,
    poisoned: bool,
}

/// Where the next message lies: payload position, length, and record size.
#[derive(Clone, Copy)]
struct NextMessage {
    pos: u64,
    len: usize,
    record: u64,
}

impl MessageReader {
    /// Attaches the reader to the message ring in `region`. `Busy` while another live
    /// reader holds it.
    pub fn attach(region: &Region) -> Result<Self> {
        let core = Core::attach(region, KIND_MESSAGE, true)?;
        let ctl = core.ctl();
        owner::claim(&ctl.state.reader_owner, "reader")?;
        if ctl.state.reader_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        let head = ctl.reader.head.load(Ordering::Acquire);
        let tail = ctl.writer.tail.load(Ordering::Acquire);
        core.check_span(head, tail, "message ring positions at attach")?;
        if head % 8 != 0 {
            return Err(Error::Corrupted {
                what: "message ring head not 8-aligned",
            });
        }
        Ok(Self {
            core,
            head,
            cached_tail: tail,
            strategy: WaitStrategy::default(),
            poisoned: false,
        })
    }

    /// How blocking calls wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.core.max_message as usize
    }

    fn corrupted(&mut self, what: &'static str) -> Error {
        self.poisoned = true;
        Error::Corrupted { what }
    }

    /// Committed bytes after `head`, re-reading the tail when the cache shows none.
    #[inline]
    fn available(&mut self) -> Result<u64> {
        if self.cached_tail != self.head {
            return Ok(self.cached_tail - self.head);
        }
        let ctl = self.core.ctl();
        let mut closed = false;
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
            if ctl.state.writer_closed.load(Ordering::Acquire) == 0 {
                return Ok(0);
            }
            closed = true;
        }
    }

    /// Finds the next message, skipping padding. `WouldBlock` if none is committed.
    #[inline]
    fn next(&mut self) -> Result<NextMessage> {
        if self.poisoned {
            return Err(Error::Corrupted {
                what: "endpoint poisoned by an earlier corruption",
            });
        }
        loop {
            let avail = self.available()?;
            if avail == 0 {
                return Err(Error::WouldBlock);
            }
            if avail < RECORD_HEADER as u64 || avail % 8 != 0 {
                return Err(self.corrupted("partial record published"));
            }
            let mut header = [0u8; RECORD_HEADER];
            self.core.copy_out(self.head, &mut header);
            let len = u64::from(u32::from_le_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let kind = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let to_end = self.core.capacity - (self.head & self.core.mask);
            match kind {
                KIND_PAD => {
                    if len + RECORD_HEADER as u64 != to_end || to_end > avail {
                        return Err(self.corrupted("padding record of the wrong length"));
                    }
                    self.release(to_end);
                }
                KIND_MSG => {
                    let record = record_size(len);
                    if len > self.core.max_message || record > to_end || record > avail {
                        return Err(self.corrupted("message record length out of bounds"));
                    }
                    return Ok(NextMessage {
                        pos: self.head + RECORD_HEADER as u64,
                        len: len as usize,
                        record,
                    });
                }
                _ => return Err(self.corrupted("unknown record kind")),
            }
        }
    }

    #[inline]
    fn release(&mut self, n: u64) {
        self.head += n;
        let ctl = self.core.ctl();
        ctl.reader.head.store(self.head, Ordering::Release);
        ctl.writable.notifier.notify();
    }

    /// Reads the next message into `buf` and returns its length. `WouldBlock` if none
    /// is committed; `BufferTooSmall` (message left in place) if it does not fit;
    /// `Closed` at end of stream.
    #[inline]
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let next = self.next()?;
        if next.len > buf.len() {
            return Err(Error::BufferTooSmall {
                needed: next.len,
                got: buf.len(),
            });
        }
        self.core.copy_out(next.pos, &mut buf[..next.len]);
        self.release(next.record);
        Ok(next.len)
    }

    /// Reads the next message, waiting until `deadline`. `Closed` at end of stream;
    /// `PeerDied` when the writer's process died and every committed message was read.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        self.wait_readable(deadline, |r| r.try_read(buf))
    }

    /// Waits until `op` stops returning `WouldBlock` (or the deadline / a dead writer).
    fn wait_readable<T>(
        &mut self,
        deadline: Deadline,
        mut op: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let strategy = self.strategy;
        let ctl_ptr: *const _ = self.core.ctl();
        // SAFETY: the control block lives as long as `self.core`; only its notifier
        // (atomics) is used through this reference.
        let notifier = unsafe { &(*ctl_ptr).readable.notifier };
        wait_for(notifier, strategy, deadline, |ctx| match op(self) {
            Ok(v) => Ok(Some(v)),
            Err(Error::WouldBlock) => {
                if ctx.liveness_due {
                    let owner = self.core.ctl().state.writer_owner.load(Ordering::Acquire);
                    if self.core.owner_died(owner) {
                        return match op(self) {
                            Ok(v) => Ok(Some(v)),
                            Err(Error::WouldBlock) => Err(Error::PeerDied),
                            Err(e) => Err(e),
                        };
                    }
                }
                Ok(None)
            }
            Err(e) => Err(e),
        })
    }

    /// Length of the next committed message, without consuming it; `WouldBlock` if
    /// none, `Closed` at end of stream.
    pub fn peek_len(&mut self) -> Result<usize> {
        self.next().map(|m| m.len)
    }

    /// Waits until a message is committed and returns its length without consuming it.
    pub fn wait_peek_len(&mut self, deadline: Deadline) -> Result<usize> {
        self.wait_readable(deadline, |r| r.peek_len())
    }

    /// A zero-copy grant of the next message, read in place and then released.
    /// Dropping the grant without [`release`](MessageReadGrant::release) leaves the
    /// message in the ring.
    pub fn read_grant(&mut self) -> Result<MessageReadGrant<'_>> {
        let next = self.next()?;
        Ok(MessageReadGrant {
            ptr: self.core.at(next.pos),
            len: next.len,
            record: next.record,
            reader: self,
        })
    }

    /// Closes the reading side: the writer gets `Closed`. Idempotent; dropping the
    /// reader closes it too.
    pub fn close(&mut self) {
        let ctl = self.core.ctl();
        ctl.state.reader_closed.store(1, Ordering::Release);
        ctl.writable.notifier.notify();
    }

    /// The region the ring lives in.
    pub fn region(&self) -> &Region {
        self.core.region()
    }
}

impl Drop for MessageReader {
    fn drop(&mut self) {
        self.close();
    }
}

/// The next message of a [`MessageReader`], read in place.
pub struct MessageReadGrant<'a> {
    reader: &'a mut MessageReader,
    /// Invariant: `ptr..ptr+len` is the committed, contiguous payload at the head.
    ptr: *const u8,
    len: usize,
    record: u64,
}

impl MessageReadGrant<'_> {
    /// The message payload. An honest writer never touches it until released; a
    /// hostile one could, so treat it as untrusted input.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the payload was validated to lie inside the data area, below the
        // published tail; the SPSC protocol forbids the writer from writing it until
        // the reader releases it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Consumes the message.
    pub fn release(self) {
        self.reader.release(self.record);
    }
}
