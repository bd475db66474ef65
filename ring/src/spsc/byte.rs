//! [`ByteRing`]: an SPSC byte stream. Writes may be split and reads may merge writes;
//! only the byte order is kept (like an OS pipe in byte mode).

use culvert_section::Region;
use culvert_sync::Deadline;

use super::control::{Config, KIND_BYTE};
use super::core;
use super::echo::ECHO_MAX;
use super::endpoint::{self, ReaderEnd, WriterEnd};
use crate::{Error, Result};

/// A write larger than `capacity / PUBLISH_PIECES` is published in pieces of that size.
const PUBLISH_PIECES: u64 = 4;
/// ...but never in pieces smaller than this.
const MIN_PUBLISH_PIECE: u64 = 4096;
/// Bytes in a cache line.
const CACHE_LINE: u64 = 64;

/// Creating and sizing byte rings.
pub struct ByteRing;

impl ByteRing {
    /// Bytes of region a byte ring with `config` needs.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring.
    pub fn required_size(config: &Config) -> Result<usize> {
        core::required_size(config, false)
    }

    /// Lays out a fresh byte ring at the start of `region`. Call once, before any
    /// endpoint attaches.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring, or `region` is too small
    /// or misaligned for it.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        core::init(region, config, KIND_BYTE, false)
    }
}

/// The writing end of a [`ByteRing`].
pub struct ByteWriter {
    end: WriterEnd,
}

impl ByteWriter {
    /// Attaches the writer to the byte ring in `region`. `Busy` while another live
    /// writer holds it; `Closed` if the ring's writer side was already closed.
    pub fn attach(region: &Region) -> Result<Self> {
        let end = WriterEnd::attach(region, KIND_BYTE, false, "byte ring positions at attach")?;
        Ok(Self { end })
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.end.core.capacity as usize
    }

    /// Writes as much of `buf` as fits now; `WouldBlock` if nothing fits (`PeerDied`
    /// instead, at most once per liveness interval, if the reader's process died).
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize> {
        let end = &mut self.end;
        end.check_open()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let free = end.free(buf.len() as u64)?;
        if free == 0 {
            return Err(end.blocked());
        }
        let n = (buf.len() as u64).min(free) as usize;
        // Publish large writes in pieces, so the reader copies out the first piece
        // while we copy in the next instead of idling (and maybe falling asleep)
        // through one long copy.
        let piece = (end.core.capacity / PUBLISH_PIECES).max(MIN_PUBLISH_PIECE) as usize;
        let mut done = 0;
        while done < n {
            let k = (n - done).min(piece);
            // SAFETY: `tail + done .. tail + n` is free space (`n <= free`), which
            // the writer owns; `k <= n <= capacity`.
            unsafe { end.core.copy_in(end.tail, &buf[done..done + k]) };
            if k <= ECHO_MAX {
                let ctl = end.core.ctl();
                ctl.writer
                    .echo
                    .record(end.tail + k as u64, &buf[done..done + k]);
            }
            end.publish(end.tail + k as u64);
            done += k;
        }
        // A next write of this size lands right after: own its lines by then — but
        // not the line the reader is about to read, when the tail is inside it.
        let first = end.tail.next_multiple_of(CACHE_LINE);
        let last = end.tail + n.min(MIN_PUBLISH_PIECE as usize) as u64;
        end.core
            .prefetch_write(first, last.saturating_sub(first) as usize);
        Ok(n)
    }

    /// Writes at least one byte of `buf` (as many as fit), waiting for room until
    /// `deadline`. `PeerDied` if the reader's process died.
    pub fn write(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        endpoint::wait(self, deadline, |w| w.try_write(buf))
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
        let end = &mut self.end;
        end.check_open()?;
        let free = end.free(max.max(1) as u64)?;
        let idx = end.tail & end.core.mask;
        let contiguous = (end.core.capacity - idx).min(free).min(max as u64);
        if contiguous == 0 {
            return Err(end.blocked());
        }
        Ok(ByteWriteGrant {
            ptr: end.core.at(end.tail),
            len: contiguous as usize,
            writer: self,
        })
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
            let end = &mut self.writer.end;
            end.core.guard_write(end.tail, n as usize);
            end.publish(end.tail + n);
        }
    }
}

/// The reading end of a [`ByteRing`].
pub struct ByteReader {
    end: ReaderEnd,
}

impl ByteReader {
    /// Attaches the reader to the byte ring in `region`. `Busy` while another live
    /// reader holds it.
    pub fn attach(region: &Region) -> Result<Self> {
        let end = ReaderEnd::attach(region, KIND_BYTE, false, "byte ring positions at attach")?;
        Ok(Self { end })
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.end.core.capacity as usize
    }

    /// Committed bytes available, re-reading the writer's tail when the cached one
    /// shows fewer than `want`. `Closed` once the writer closed and everything was read.
    #[inline]
    fn available(&mut self, want: u64) -> Result<u64> {
        self.end.check_poisoned()?;
        self.end.available(want)
    }

    /// Reads up to `buf.len()` committed bytes (all that were committed when it looked,
    /// up to `buf.len()`); `WouldBlock` if there are none yet, `Closed` at end of stream,
    /// `PeerDied` (checked at most once per liveness interval) when the writer's process
    /// died and everything it committed was read.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let avail = self.available(buf.len() as u64)?;
        if avail == 0 {
            return Err(self.end.blocked());
        }
        let n = (buf.len() as u64).min(avail) as usize;
        if n == 0 {
            return Ok(0);
        }
        let end = &mut self.end;
        let echo = &end.core.ctl().writer.echo;
        let n = match echo.read(end.head, end.cached_tail, &mut buf[..n]) {
            Some(n) => {
                end.prefetch_data = false;
                n
            }
            None => {
                end.prefetch_data = true;
                // SAFETY: `head .. head + n` is committed (`n <= avail`), which the
                // reader owns until it releases it; `n <= avail <= capacity`.
                unsafe { end.core.copy_out(end.head, &mut buf[..n]) };
                n
            }
        };
        end.release(n as u64);
        Ok(n)
    }

    /// Reads at least one byte, waiting until `deadline`. `Closed` at end of stream;
    /// `PeerDied` when the writer's process died and everything it committed was read.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        endpoint::wait(self, deadline, |r| r.try_read(buf))
    }

    /// Fills all of `buf`, waiting until `deadline`.
    ///
    /// # Errors
    /// `Timeout` (some bytes may have been consumed); `Closed`/`PeerDied` at end of
    /// stream before `buf` was filled; `Corrupted`.
    pub fn read_exact(&mut self, mut buf: &mut [u8], deadline: Deadline) -> Result<()> {
        while !buf.is_empty() {
            let n = self.read(buf, deadline)?;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Committed bytes ready to read without waiting (0 if none); re-reads the tail.
    ///
    /// # Errors
    /// `Corrupted` if the writer's position is out of range.
    pub fn bytes_available(&mut self) -> Result<usize> {
        match self.available(u64::MAX) {
            Ok(n) => Ok(n as usize),
            Err(Error::Closed) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// A zero-copy grant of the contiguous committed bytes at the head (all that were
    /// committed when it looked, up to the end of the lap); release what was consumed.
    /// `WouldBlock` if there are none, `Closed` at end of stream.
    pub fn read_grant(&mut self) -> Result<ByteReadGrant<'_>> {
        let to_end = self.end.core.capacity - (self.end.head & self.end.core.mask);
        let avail = self.available(to_end)?;
        if avail == 0 {
            return Err(self.end.blocked());
        }
        let end = &self.end;
        let contiguous = to_end.min(avail);
        end.core.guard_read(end.head, contiguous as usize);
        Ok(ByteReadGrant {
            ptr: end.core.at(end.head),
            len: contiguous as usize,
            reader: self,
        })
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
            self.reader.end.release(n);
        }
    }
}

endpoint::endpoint_impls!(ByteWriter, ByteReader);
