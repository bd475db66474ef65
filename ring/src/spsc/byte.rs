//! [`ByteRing`]: an SPSC byte stream. Writes may be split and reads may merge writes;
//! only the byte order is kept (like an OS pipe in byte mode).

use culvert_section::Region;
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline, WaitStrategy};

use super::control::{Config, KIND_BYTE};
use super::core::{self, Core};
use crate::{owner, Error, Result};

/// Creating and sizing byte rings.
pub struct ByteRing;

impl ByteRing {
    /// Bytes of region a byte ring with `config` needs.
    pub fn required_size(config: &Config) -> Result<usize> {
        core::required_size(config, false)
    }

    /// Lays out a fresh byte ring at the start of `region`. Call once, before any
    /// endpoint attaches.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        core::init(region, config, KIND_BYTE, false)
    }
}

/// The writing end of a [`ByteRing`].
pub struct ByteWriter {
    core: Core,
    /// Our tail (the shared one is only ever written from here). Invariant:
    /// `cached_head <= tail <= cached_head + capacity`.
    tail: u64,
    /// Last head read from the reader. Invariant: `<=` the reader's real head.
    cached_head: u64,
    strategy: WaitStrategy,
    /// Set after a corruption was detected: every later call fails.
    poisoned: bool,
    /// Set once this writer closed: later writes get `Closed`.
    closed: bool,
}

impl ByteWriter {
    /// Attaches the writer to the byte ring in `region`. `Busy` while another live
    /// writer holds it; `Closed` if the ring's writer side was already closed.
    pub fn attach(region: &Region) -> Result<Self> {
        let core = Core::attach(region, KIND_BYTE, false)?;
        let ctl = core.ctl();
        owner::claim(&ctl.state.writer_owner, "writer")?;
        if ctl.state.writer_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        let tail = ctl.writer.tail.load(Ordering::Acquire);
        let head = ctl.reader.head.load(Ordering::Acquire);
        core.check_span(head, tail, "byte ring positions at attach")?;
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

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity as usize
    }

    fn corrupted(&mut self, what: &'static str) -> Error {
        self.poisoned = true;
        Error::Corrupted { what }
    }

    /// Free bytes, re-reading the reader's head only when the cached one shows less
    /// than `want`.
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
                return Err(self.corrupted("reader head outside [tail - capacity, tail]"));
            }
            self.cached_head = head;
            free = self.core.capacity - (self.tail - head);
        }
        Ok(free)
    }

    #[inline]
    fn check_open(&self) -> Result<()> {
        if self.closed || self.core.ctl().state.reader_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        Ok(())
    }

    #[inline]
    fn publish(&mut self, n: u64) {
        self.tail += n;
        let ctl = self.core.ctl();
        ctl.writer.tail.store(self.tail, Ordering::Release);
        ctl.readable.notifier.notify();
    }

    /// Writes as much of `buf` as fits now; `WouldBlock` if nothing fits.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize> {
        self.check_open()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let free = self.free(buf.len() as u64)?;
        if free == 0 {
            return Err(Error::WouldBlock);
        }
        let n = (buf.len() as u64).min(free) as usize;
        self.core.copy_in(self.tail, &buf[..n]);
        self.publish(n as u64);
        Ok(n)
    }

    /// Writes at least one byte of `buf` (as many as fit), waiting for room until
    /// `deadline`. `PeerDied` if the reader's process died.
    pub fn write(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        let strategy = self.strategy;
        let ctl_ptr: *const _ = self.core.ctl();
        // SAFETY: the control block lives as long as `self.core` (its region), which
        // outlives this call; only its notifier (atomics) is used through this pointer.
        let notifier = unsafe { &(*ctl_ptr).writable.notifier };
        wait_for(notifier, strategy, deadline, |ctx| {
            match self.try_write(buf) {
                Ok(n) => Ok(Some(n)),
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

    /// Writes all of `buf`, waiting for room until `deadline`. On error, some prefix
    /// may have been written; [`Self::write`] tells how much.
    pub fn write_all(&mut self, mut buf: &[u8], deadline: Deadline) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf, deadline)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// A zero-copy grant of up to `max` contiguous free bytes (at least one), to be
    /// filled in place and committed. `WouldBlock` if the ring is full.
    pub fn reserve(&mut self, max: usize) -> Result<ByteWriteGrant<'_>> {
        self.check_open()?;
        let free = self.free(max.max(1) as u64)?;
        let idx = self.tail & self.core.mask;
        let contiguous = (self.core.capacity - idx).min(free).min(max as u64);
        if contiguous == 0 {
            return Err(Error::WouldBlock);
        }
        Ok(ByteWriteGrant {
            ptr: self.core.at(self.tail),
            len: contiguous as usize,
            writer: self,
        })
    }

    /// Closes the writing side: the reader drains what was committed, then gets
    /// `Closed`. Idempotent; dropping the writer closes it too.
    pub fn close(&mut self) {
        self.closed = true;
        let ctl = self.core.ctl();
        ctl.state.writer_closed.store(1, Ordering::Release);
        ctl.readable.notifier.notify();
    }

    /// Whether the reader closed its side.
    pub fn is_closed(&self) -> bool {
        self.check_open().is_err()
    }

    /// The region the ring lives in.
    pub fn region(&self) -> &Region {
        self.core.region()
    }
}

impl Drop for ByteWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Contiguous free bytes of a [`ByteWriter`], owned by the writer until committed.
/// Dropping the grant without [`commit`](Self::commit) writes nothing.
pub struct ByteWriteGrant<'a> {
    writer: &'a mut ByteWriter,
    /// First granted byte. Invariant: `ptr..ptr+len` lies in the data area between the
    /// writer's tail and head + capacity, so only this grant writes it.
    ptr: *mut u8,
    len: usize,
}

impl ByteWriteGrant<'_> {
    /// The granted bytes, to fill in place. Their initial contents are unspecified.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the SPSC protocol gives the writer exclusive ownership of the free
        // span `tail..head+capacity`; the reader only reads bytes below the published
        // tail. `ptr..ptr+len` is inside that span and inside the data area.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Number of bytes granted.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publishes the first `n` bytes (clamped to the grant) to the reader.
    pub fn commit(self, n: usize) {
        let n = n.min(self.len) as u64;
        if n > 0 {
            self.writer.publish(n);
        }
    }
}

/// The reading end of a [`ByteRing`].
pub struct ByteReader {
    core: Core,
    /// Our head (the shared one is only ever written from here). Invariant:
    /// `head <= cached_tail <= head + capacity`.
    head: u64,
    /// Last tail read from the writer.
    cached_tail: u64,
    strategy: WaitStrategy,
    poisoned: bool,
}

impl ByteReader {
    /// Attaches the reader to the byte ring in `region`. `Busy` while another live
    /// reader holds it.
    pub fn attach(region: &Region) -> Result<Self> {
        let core = Core::attach(region, KIND_BYTE, false)?;
        let ctl = core.ctl();
        owner::claim(&ctl.state.reader_owner, "reader")?;
        if ctl.state.reader_closed.load(Ordering::Acquire) != 0 {
            return Err(Error::Closed);
        }
        let head = ctl.reader.head.load(Ordering::Acquire);
        let tail = ctl.writer.tail.load(Ordering::Acquire);
        core.check_span(head, tail, "byte ring positions at attach")?;
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

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity as usize
    }

    /// Committed bytes available, re-reading the writer's tail when the cached one
    /// shows none. `Closed` once the writer closed and everything was read.
    #[inline]
    fn available(&mut self, fresh: bool) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Corrupted {
                what: "endpoint poisoned by an earlier corruption",
            });
        }
        if !fresh && self.cached_tail != self.head {
            return Ok(self.cached_tail - self.head);
        }
        let ctl = self.core.ctl();
        let mut closed = false;
        loop {
            let tail = ctl.writer.tail.load(Ordering::Acquire);
            if tail < self.cached_tail || self.core.check_span(self.head, tail, "").is_err() {
                self.poisoned = true;
                return Err(Error::Corrupted {
                    what: "writer tail outside [head, head + capacity]",
                });
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

    #[inline]
    fn release(&mut self, n: u64) {
        self.head += n;
        let ctl = self.core.ctl();
        ctl.reader.head.store(self.head, Ordering::Release);
        ctl.writable.notifier.notify();
    }

    /// Reads up to `buf.len()` committed bytes; `WouldBlock` if there are none yet,
    /// `Closed` at end of stream.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let avail = self.available(false)?;
        if avail == 0 {
            return Err(Error::WouldBlock);
        }
        let n = (buf.len() as u64).min(avail) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.core.copy_out(self.head, &mut buf[..n]);
        self.release(n as u64);
        Ok(n)
    }

    /// Reads at least one byte, waiting until `deadline`. `Closed` at end of stream;
    /// `PeerDied` when the writer's process died and everything it committed was read.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        let strategy = self.strategy;
        let ctl_ptr: *const _ = self.core.ctl();
        // SAFETY: the control block lives as long as `self.core`; only its notifier
        // (atomics) is used through this reference.
        let notifier = unsafe { &(*ctl_ptr).readable.notifier };
        wait_for(notifier, strategy, deadline, |ctx| {
            match self.try_read(buf) {
                Ok(n) => Ok(Some(n)),
                Err(Error::WouldBlock) => {
                    if ctx.liveness_due {
                        let owner = self.core.ctl().state.writer_owner.load(Ordering::Acquire);
                        if self.core.owner_died(owner) {
                            // A dead writer commits nothing more: drain, then report.
                            return match self.try_read(buf) {
                                Ok(n) => Ok(Some(n)),
                                Err(Error::WouldBlock) => Err(Error::PeerDied),
                                Err(e) => Err(e),
                            };
                        }
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Fills all of `buf`, waiting until `deadline`.
    pub fn read_exact(&mut self, mut buf: &mut [u8], deadline: Deadline) -> Result<()> {
        while !buf.is_empty() {
            let n = self.read(buf, deadline)?;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Committed bytes ready to read without waiting (0 if none); re-reads the tail.
    pub fn bytes_available(&mut self) -> Result<usize> {
        match self.available(true) {
            Ok(n) => Ok(n as usize),
            Err(Error::Closed) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// A zero-copy grant of the contiguous committed bytes at the head; release what
    /// was consumed. `WouldBlock` if there are none, `Closed` at end of stream.
    pub fn read_grant(&mut self) -> Result<ByteReadGrant<'_>> {
        let avail = self.available(false)?;
        if avail == 0 {
            return Err(Error::WouldBlock);
        }
        let idx = self.head & self.core.mask;
        let contiguous = (self.core.capacity - idx).min(avail);
        Ok(ByteReadGrant {
            ptr: self.core.at(self.head),
            len: contiguous as usize,
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

impl Drop for ByteReader {
    fn drop(&mut self) {
        self.close();
    }
}

/// Contiguous committed bytes of a [`ByteReader`], read in place.
/// Dropping the grant without [`release`](Self::release) consumes nothing.
pub struct ByteReadGrant<'a> {
    reader: &'a mut ByteReader,
    /// Invariant: `ptr..ptr+len` holds committed bytes between head and tail.
    ptr: *const u8,
    len: usize,
}

impl ByteReadGrant<'_> {
    /// The granted bytes. An honest writer never touches them until released; a
    /// hostile one could, so treat them as untrusted input.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the bytes lie in the data area between head and the published tail;
        // the SPSC protocol forbids the writer from writing them until we release.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Number of bytes granted.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Consumes the first `n` bytes (clamped to the grant).
    pub fn release(self, n: usize) {
        let n = n.min(self.len) as u64;
        if n > 0 {
            self.reader.release(n);
        }
    }
}
