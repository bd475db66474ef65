//! [`ByteRing`]: N writers, M readers of byte records (the PIPE_BUF rule).
//!
//! Each slot holds one record of up to `atomic_write_max` (the config's `max_message`)
//! bytes. A write of at most `atomic_write_max` bytes is one record, so its bytes are
//! never interleaved with another writer's; a longer write is split into records of
//! `atomic_write_max` bytes, between which other writers' records may land. A read
//! returns the bytes of one or more whole records; a record longer than the caller's
//! buffer is taken whole into a buffer the reader allocated at attach, and handed out
//! by the following reads (nothing is lost, nothing allocated per record).

use culvert_section::Region;
use culvert_sync::Deadline;

use super::control::KIND_MPMC_BYTE;
use super::core::{self, MpmcCore, Poll};
use super::core::{wait, WaitOn};
use super::endpoint::endpoint_methods;
use super::Config;
use crate::{Error, Result};

/// Creating and sizing MPMC byte rings.
#[derive(Debug)]
pub struct ByteRing;

impl ByteRing {
    /// Bytes of region a byte ring with `config` needs (`config.max_message` is the
    /// atomic write size, see [`Config::bytes`]).
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring.
    pub fn required_size(config: &Config) -> Result<usize> {
        Ok(core::required_size(&config.layout()?))
    }

    /// Lays out a fresh byte ring at the start of `region`. Call once, before any
    /// endpoint attaches. `atomic_write_max` must be at least 1.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring, or `region` is too small
    /// or misaligned for it.
    pub fn init(region: &Region, config: &Config) -> Result<()> {
        if config.max_message == 0 {
            return Err(Error::InvalidConfig {
                what: "atomic_write_max must be at least 1",
            });
        }
        core::init(region, KIND_MPMC_BYTE, &config.layout()?)
    }
}

/// A writing end of a [`ByteRing`].
pub struct ByteWriter {
    core: MpmcCore,
}

endpoint_methods!(ByteWriter, "writer", KIND_MPMC_BYTE);
endpoint_methods!(@writer ByteWriter);

impl ByteWriter {
    /// Attaches a writer to the byte ring in `region`.
    ///
    /// # Errors
    /// `Corrupted` or `InvalidConfig` when the region holds no valid ring of this kind;
    /// `Busy` when its endpoint table is full of live endpoints.
    pub fn attach(region: &Region) -> Result<Self> {
        let core = MpmcCore::attach(region, KIND_MPMC_BYTE)?;
        if core.max_message() == 0 {
            return Err(Error::Corrupted {
                what: "mpmc byte ring with a zero atomic write size",
            });
        }
        Ok(Self { core })
    }

    /// The largest write that is never interleaved with other writers' bytes.
    pub fn atomic_write_max(&self) -> usize {
        self.core.max_message()
    }

    /// Writes one record of `chunk.len() <= atomic_write_max` bytes, if a slot is free.
    fn try_record(&mut self, chunk: &[u8], how: Poll) -> Result<()> {
        self.core.try_write_with(chunk.len(), how, |dst| {
            // SAFETY: `dst` is the data of a slot we hold (WRITING), with room for
            // `atomic_write_max >= chunk.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, chunk.len()) }
        })
    }

    /// Writes as many whole records of `buf` as fit now; returns the bytes written.
    /// `how` applies to the first record; later ones never wait.
    fn poll_write(&mut self, buf: &[u8], how: Poll) -> Result<usize> {
        let max = self.core.max_message();
        let mut done = 0;
        for chunk in buf.chunks(max) {
            let how = if done == 0 { how } else { Poll::Once };
            match self.try_record(chunk, how) {
                Ok(()) => done += chunk.len(),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Writes what fits now, as whole records: all of `buf` or `WouldBlock` when
    /// `buf.len() <= atomic_write_max`; otherwise a prefix made of whole records.
    /// `Ok(0)` for an empty `buf`. The first record has the guarantee of
    /// [`MessageWriter::try_write`](super::MessageWriter::try_write) (a slot held by a live
    /// endpoint mid-operation is waited for up to about 2 ms); later ones are written
    /// only if a slot is free at once.
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.poll_write(buf, Poll::Try)
    }

    /// Like [`try_write`](Self::try_write), but waits until at least one record is
    /// written (or `deadline` passes: `Timeout`).
    pub fn write(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        wait(
            self,
            |w| &w.core,
            WaitOn::NotFull,
            deadline,
            |w| w.poll_write(buf, Poll::Once),
        )
    }

    /// Writes all of `buf`, waiting for room until `deadline`.
    ///
    /// # Errors
    /// `Timeout` (part of `buf` may have been written); `Closed` once the ring is
    /// closed; `PeerDied` once every reader died; `Corrupted`.
    pub fn write_all(&mut self, mut buf: &[u8], deadline: Deadline) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf, deadline)?;
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// A reading end of a [`ByteRing`].
pub struct ByteReader {
    core: MpmcCore,
    /// A record taken whole that the caller's buffer could not hold. Invariant:
    /// `start <= end <= spill.len() == atomic_write_max`; `spill[start..end]` is unread.
    spill: Box<[u8]>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for ByteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpmc::ByteReader")
            .field("buffered", &(self.end - self.start))
            .finish_non_exhaustive()
    }
}

endpoint_methods!(@forward ByteReader);

impl ByteReader {
    /// Attaches a reader to the byte ring in `region` (allocates its spill buffer of
    /// `atomic_write_max` bytes here, once).
    ///
    /// # Errors
    /// `Corrupted` or `InvalidConfig` when the region holds no valid ring of this kind;
    /// `Busy` when its endpoint table is full of live endpoints.
    pub fn attach(region: &Region) -> Result<Self> {
        Self::from_core(MpmcCore::attach(region, KIND_MPMC_BYTE)?)
    }

    fn from_core(core: MpmcCore) -> Result<Self> {
        if core.max_message() == 0 {
            return Err(Error::Corrupted {
                what: "mpmc byte ring with a zero atomic write size",
            });
        }
        let spill = vec![0u8; core.max_message()].into_boxed_slice();
        Ok(Self {
            core,
            spill,
            start: 0,
            end: 0,
        })
    }

    /// Another reader on the same ring (a new attachment, with its own spill buffer).
    ///
    /// # Errors
    /// `Corrupted` or `InvalidConfig` when the region holds no valid ring of this kind;
    /// `Busy` when its endpoint table is full of live endpoints.
    pub fn try_clone(&self) -> Result<Self> {
        Self::from_core(self.core.reattach(KIND_MPMC_BYTE)?)
    }

    /// The ring's atomic write size (largest record).
    pub fn atomic_write_max(&self) -> usize {
        self.core.max_message()
    }

    /// Bytes of a record already taken from the ring and not yet read.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes ready to read without waiting: those [`buffered`](Self::buffered) and
    /// those of the records committed in the ring now (a snapshot: other readers may
    /// take them first).
    pub fn bytes_available(&self) -> usize {
        self.buffered() + self.core.committed_len()
    }

    /// Reads what is committed now into `buf`; `how` applies to the first record, later
    /// ones never wait.
    fn poll_read(&mut self, buf: &mut [u8], how: Poll) -> Result<usize> {
        let mut n = 0;
        if self.start < self.end {
            let k = (self.end - self.start).min(buf.len());
            buf[..k].copy_from_slice(&self.spill[self.start..self.start + k]);
            self.start += k;
            n = k;
            if self.start < self.end {
                return Ok(n);
            }
        }
        while n < buf.len() {
            let rest = &mut buf[n..];
            let room = rest.len();
            let how = if n == 0 { how } else { Poll::Once };
            let got = self.core.try_read_with(room, how, |src, len| {
                // SAFETY: `src` is the data of the slot we hold (READING); `len <= room`.
                unsafe { std::ptr::copy_nonoverlapping(src, rest.as_mut_ptr(), len) };
                len
            });
            match got {
                Ok(len) => n += len,
                Err(Error::BufferTooSmall { .. }) if n == 0 => {
                    let spill = &mut self.spill;
                    let cap = spill.len();
                    let once = Poll::Once;
                    let len = self.core.try_read_with(cap, once, |src, len| {
                        // SAFETY: as above, with `len <= max_message == spill.len()`.
                        unsafe { std::ptr::copy_nonoverlapping(src, spill.as_mut_ptr(), len) };
                        len
                    });
                    match len {
                        Ok(len) => {
                            let k = len.min(buf.len());
                            buf[..k].copy_from_slice(&self.spill[..k]);
                            self.start = k;
                            self.end = len;
                            return Ok(k);
                        }
                        // Another reader took it meanwhile: try again from the top.
                        Err(Error::WouldBlock) | Err(Error::BufferTooSmall { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Reads the bytes of one or more records now available. `WouldBlock` when none;
    /// `Closed` when the ring is closed and drained; `Ok(0)` only for an empty `buf`.
    /// The first record has the guarantee of
    /// [`MessageReader::try_read`](super::MessageReader::try_read) (a record being written by a
    /// live endpoint is waited for up to about 2 ms); later ones are taken only if
    /// committed already.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.poll_read(buf, Poll::Try)
    }

    /// Like [`try_read`](Self::try_read), waiting until `deadline` for a record.
    ///
    /// # Errors
    /// As [`try_read`](Self::try_read), with `Timeout` for `WouldBlock`.
    pub fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        wait(
            self,
            |r| &r.core,
            WaitOn::NotEmpty,
            deadline,
            |r| r.poll_read(buf, Poll::Once),
        )
    }

    /// Reads exactly `buf.len()` bytes, waiting until `deadline`.
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
}

// SAFETY: the notifier lives in the ring's region, which the endpoint's core keeps
// mapped at a fixed address, not in the endpoint value.
unsafe impl culvert_sync::Waitable for ByteReader {
    /// True when a receive would not report `WouldBlock`: a committed message at the
    /// dequeue position, the ring closed, a slot held by a dead producer (checked at
    /// most once per liveness interval) or a corruption. Bytes of a record
    /// already taken and not yet read count too.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.end > self.start || self.core.poll_readable(ctx.liveness_due)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        f(self.core.not_empty());
    }
}
