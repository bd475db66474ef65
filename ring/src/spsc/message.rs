//! [`MessageRing`]: SPSC length-prefixed messages; boundaries are kept.
//!
//! A record is an 8-byte header `{ len: u32, kind: u32 }` and the payload, padded to 8
//! bytes. Records are contiguous in the data area: when one does not fit before the
//! end, the writer first publishes a `PAD` record covering the rest of the lap, and the
//! message starts again at offset 0. A message that would straddle the end therefore
//! wraps whole, and read grants are always one slice. That costs at most one message's
//! worth of space per lap, and is why `max_message <= capacity - 8`.

use culvert_section::Region;
use culvert_sync::Deadline;

use super::control::{Config, KIND_MESSAGE};
use super::core::{self, RECORD_HEADER};
use super::endpoint::{self, ReaderEnd, WriterEnd};
use crate::layout::round_up;
use crate::{Error, Result};

/// How attach names the positions when they fail the span check.
const POSITIONS_AT_ATTACH: &str = "message ring positions at attach";

/// How far past the tail a publishing writer prefetches for its next writes (see
/// `SpscCore::prefetch_write`): a few small records on.
const OWN_AHEAD: u64 = 256;

/// How far past the head a reading reader prefetches: eight lines, a few records on.
const PREFETCH_AHEAD: u64 = 512;
/// A reader prefetches only when more than this many bytes are committed past its
/// head, so that it never asks for a line the writer is still filling. With the
/// prefetch, `culvert bench` on a 2-CPU VM (alternating runs): `stream_64B_batch` on a
/// 64 KiB ring 37 → 52–55 M msg/s, `stream_64B_msgs` on a 1 MiB ring 37–38 → 44–45 M
/// msg/s; a prefetch with no such margin made `stream_64B_msgs` on a 64 KiB ring
/// slower (29 → 24 M msg/s).
const PREFETCH_BEHIND_TAIL: u64 = 4096;

/// Record kind of a message.
const KIND_MSG: u32 = 0x4d53_4721;
/// Record kind of padding up to the end of the lap.
const KIND_PAD: u32 = 0x5041_4421;

/// Bytes a record with a `len`-byte payload occupies.
#[inline(always)]
fn record_size(len: u64) -> u64 {
    RECORD_HEADER as u64 + ((len + 7) & !7)
}

/// Most bytes a reader holds consumed but not yet given back through
/// [`MessageReadGrant::release_batched`]: a sixteenth of the ring, and never so much
/// that a writer facing a drained ring lacks room for its largest record and the
/// padding before it (then 0: every release is immediate).
fn release_batch(capacity: u64, max_message: u64) -> u64 {
    let room = capacity.saturating_sub(2 * record_size(max_message));
    (capacity / 16).min(room) & !7
}

/// Creating and sizing message rings.
pub struct MessageRing;

impl MessageRing {
    /// Bytes of region a message ring with `config` needs.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring.
    pub fn required_size(config: &Config) -> Result<usize> {
        core::required_size(config, true)
    }

    /// Lays out a fresh message ring at the start of `region`. Call once, before any
    /// endpoint attaches.
    ///
    /// # Errors
    /// `InvalidConfig` if the configuration describes no ring, or `region` is too small
    /// or misaligned for it.
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
    end: WriterEnd,
}

impl MessageWriter {
    /// Attaches the writer to the message ring in `region`. `Busy` while another live
    /// writer holds it; `Closed` if the writer side was already closed.
    pub fn attach(region: &Region) -> Result<Self> {
        let end = WriterEnd::attach(region, KIND_MESSAGE, true, POSITIONS_AT_ATTACH)?;
        if end.tail % 8 != 0 {
            return Err(Error::Corrupted {
                what: "message ring tail not 8-aligned",
            });
        }
        Ok(Self { end })
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.end.core.max_message as usize
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.end.core.capacity as usize
    }

    /// Ring bytes a message of `len` bytes takes: its record header and the payload
    /// padded to 8. A message that would straddle the end of the lap also pads the
    /// rest of the lap, at most one record's worth.
    pub fn record_len(len: usize) -> usize {
        record_size(len as u64) as usize
    }

    /// Bytes the reader may keep consumed but not yet given back (see
    /// [`MessageReadGrant::release_batched`]): once the reader read everything, the
    /// writer can count on `capacity() - reader_batch()` free bytes, not more.
    pub fn reader_batch(&self) -> usize {
        release_batch(self.end.core.capacity, self.end.core.max_message) as usize
    }

    /// Free bytes in the ring now (re-reads the reader's position).
    ///
    /// # Errors
    /// `Corrupted` if the reader's position is out of range.
    pub fn free_bytes(&mut self) -> Result<usize> {
        self.end.free(u64::MAX).map(|n| n as usize)
    }

    #[inline]
    fn write_header(&self, pos: u64, len: u32, kind: u32) {
        let header = u64::from(len) | (u64::from(kind) << 32);
        self.end.core.guard_write(pos, RECORD_HEADER);
        // `pos` is 8-aligned (tails move by 8-aligned record sizes) and the data area is
        // 128-aligned with a capacity that is a multiple of 8, so the header never wraps.
        // SAFETY: 8 aligned, in-bounds bytes of free space the writer owns.
        unsafe { self.end.core.at(pos).cast::<u64>().write(header.to_le()) };
    }

    /// Reserves room for a message of up to `len` bytes, to be written in place and
    /// committed. `MessageTooLarge` above `max_message`; `WouldBlock` if the ring has
    /// no room now (`PeerDied` instead, at most once per liveness interval, if the
    /// reader's process died); `Closed` if the reader closed.
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<MessageGrant<'_>> {
        // The usual case in a few comparisons: the record fits before the end of the
        // lap, in room the cached head already shows.
        let end = &self.end;
        let need = record_size(len as u64);
        if len as u64 <= end.core.max_message
            && !end.poisoned
            && need <= end.core.capacity - (end.tail & end.core.mask)
            && need <= end.core.capacity - (end.tail - end.cached_head)
        {
            end.check_open()?;
            return Ok(MessageGrant {
                ptr: end.core.at(end.tail + RECORD_HEADER as u64),
                len,
                writer: self,
            });
        }
        self.reserve_slow(len)
    }

    /// [`reserve`](Self::reserve) when the record needs padding first, more room than
    /// the cached head shows, or fails.
    #[cold]
    fn reserve_slow(&mut self, len: usize) -> Result<MessageGrant<'_>> {
        if len as u64 > self.end.core.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.end.core.max_message as usize,
            });
        }
        self.end.check_open()?;
        let need = record_size(len as u64);
        let to_end = self.end.core.capacity - (self.end.tail & self.end.core.mask);
        if need > to_end {
            // Pad to the end of the lap first (publishing the pad is harmless: the
            // reader skips it), then the message starts at offset 0.
            if self.end.free(to_end)? < to_end {
                self.end.flush();
                return Err(self.end.blocked());
            }
            self.write_header(
                self.end.tail,
                (to_end - RECORD_HEADER as u64) as u32,
                KIND_PAD,
            );
            self.end.publish(self.end.tail + to_end);
        }
        if self.end.free(need)? < need {
            // No room: publish a pending batch before anyone waits for the reader.
            self.end.flush();
            return Err(self.end.blocked());
        }
        Ok(MessageGrant {
            ptr: self.end.core.at(self.end.tail + RECORD_HEADER as u64),
            len,
            writer: self,
        })
    }

    /// Writes `msg` as one message if it fits now; `WouldBlock` otherwise (`PeerDied`
    /// if the reader's process died, see [`reserve`](Self::reserve)).
    #[inline]
    pub fn try_write(&mut self, msg: &[u8]) -> Result<()> {
        let mut grant = self.reserve(msg.len())?;
        grant.as_mut_slice().copy_from_slice(msg);
        grant.commit(msg.len());
        Ok(())
    }

    /// Publishes the messages committed with
    /// [`commit_deferred`](MessageGrant::commit_deferred) since the last publish: one
    /// store of the tail and one notify for the whole batch. A `reserve` that finds no
    /// room, and `close`, publish the batch too, so a reader never waits on a message
    /// the writer committed.
    #[inline]
    pub fn flush(&mut self) {
        self.end.flush();
    }

    /// Waits until `deadline` for room for a message of `len` bytes (then a
    /// [`reserve`](Self::reserve) of it succeeds). Errors as `reserve`, and `Timeout`.
    pub fn wait_for_room(&mut self, len: usize, deadline: Deadline) -> Result<()> {
        endpoint::wait(self, deadline, |w| w.reserve(len).map(drop))
    }

    /// Writes `msg` as one message, waiting for room until `deadline`. `PeerDied` if
    /// the reader's process died.
    pub fn write(&mut self, msg: &[u8], deadline: Deadline) -> Result<()> {
        endpoint::wait(self, deadline, |w| w.try_write(msg))
    }

    /// For a relay writing on behalf of a process elsewhere: puts `stand_in` — an
    /// identity no live process has — in this writer's owner word, in place of this
    /// process's, so that the reader, once it read everything committed, reports the
    /// writer's death (`PeerDied`) as if the far process had died. Keep the writer
    /// open (closing reads as a close) and write nothing more. Whether the word now
    /// holds `stand_in` (`false`: a peer scribbled it).
    pub fn hand_owner_to(&self, stand_in: u64) -> bool {
        self.end.hand_owner_to(stand_in)
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

impl<'a> MessageGrant<'a> {
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
        let (w, tail) = self.seal(len);
        // A few records on, the writer will store again: own that line by then.
        w.end.core.prefetch_write(tail + OWN_AHEAD, 1);
        w.end.publish(tail);
    }

    /// Commits a message of the first `len` payload bytes (clamped to the grant)
    /// without publishing it: it becomes visible to the reader with the next
    /// [`MessageWriter::flush`] or publishing call (a batch of messages, one store).
    #[inline]
    pub fn commit_deferred(self, len: usize) {
        let (w, tail) = self.seal(len);
        w.end.advance(tail);
    }

    /// Writes the record header of a `len`-byte message (clamped to the grant); returns
    /// the writer and the tail after the record.
    #[inline]
    fn seal(self, len: usize) -> (&'a mut MessageWriter, u64) {
        let len = len.min(self.len);
        let w = self.writer;
        w.end
            .core
            .guard_write(w.end.tail + RECORD_HEADER as u64, len);
        w.write_header(w.end.tail, len as u32, KIND_MSG);
        let tail = w.end.tail + record_size(len as u64);
        (w, tail)
    }
}

/// The record header at the reader's head: payload length and kind. The caller saw at
/// least 8 committed bytes there.
#[inline(always)]
fn head_header(end: &ReaderEnd) -> (u64, u32) {
    end.core.guard_read(end.head, RECORD_HEADER);
    // `head` is 8-aligned (checked at attach; moves by 8-aligned record sizes), the data
    // area 128-aligned with a capacity that is a multiple of 8: no wrap.
    // SAFETY: 8 aligned, in-bounds bytes the writer published (the caller's `avail >= 8`).
    let header = u64::from_le(unsafe { end.core.at(end.head).cast::<u64>().read() });
    (header & 0xffff_ffff, (header >> 32) as u32)
}

/// The message record of a `len`-byte payload at the reader's head, with `avail` bytes
/// committed there, if it lies within `max_message`, the lap and the committed bytes
/// (`None`: out of bounds). A reader more than [`PREFETCH_BEHIND_TAIL`] behind also
/// asks for the line [`PREFETCH_AHEAD`] bytes on.
#[inline(always)]
fn message_at_head(end: &ReaderEnd, len: u64, avail: u64) -> Option<NextMessage> {
    let record = record_size(len);
    let to_end = end.core.capacity - (end.head & end.core.mask);
    if len > end.core.max_message || record > to_end || record > avail {
        return None;
    }
    if avail > PREFETCH_BEHIND_TAIL {
        end.core.prefetch(end.head + PREFETCH_AHEAD);
    }
    Some(NextMessage {
        pos: end.head + RECORD_HEADER as u64,
        len: len as usize,
        record,
    })
}

/// The reading end of a [`MessageRing`].
pub struct MessageReader {
    end: ReaderEnd,
    /// The message at the head as last parsed and validated, so that peeking, then
    /// granting, then releasing parses a record once. Valid only while `pos` is
    /// `head + 8` (the head moves only through this reader).
    parsed: Option<NextMessage>,
    /// [`release_batch`] of the ring, fixed at attach.
    batch: u64,
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
        let end = ReaderEnd::attach(region, KIND_MESSAGE, true, POSITIONS_AT_ATTACH)?;
        if end.head % 8 != 0 {
            return Err(Error::Corrupted {
                what: "message ring head not 8-aligned",
            });
        }
        let batch = release_batch(end.core.capacity, end.core.max_message);
        Ok(Self {
            end,
            parsed: None,
            batch,
        })
    }

    /// Largest message this ring carries.
    pub fn max_message(&self) -> usize {
        self.end.core.max_message as usize
    }

    /// Finds the next message, skipping padding. `WouldBlock` if none is committed
    /// (`PeerDied` if the writer died, see [`ReaderEnd::blocked`]). A reader far behind
    /// the writer also asks for the line [`PREFETCH_AHEAD`] bytes on, so that the lines
    /// of the next messages are on their way from the writer's cache while it handles
    /// this one.
    #[inline]
    fn next(&mut self) -> Result<NextMessage> {
        match self.cached_next() {
            Some(m) => Ok(m),
            None => self.next_checked(),
        }
    }

    /// The usual case of [`next`](Self::next) in a few comparisons: a message record
    /// at the head that the cached tail already shows committed. `None` for anything
    /// else (a tail to re-read, padding, a poisoned reader, a bad header), which
    /// [`next_checked`](Self::next_checked) then handles and reports.
    #[inline(always)]
    fn cached_next(&mut self) -> Option<NextMessage> {
        let end = &self.end;
        let avail = end.cached_tail - end.head;
        if end.poisoned || avail < RECORD_HEADER as u64 || avail % 8 != 0 {
            return None;
        }
        match head_header(end) {
            (len, KIND_MSG) => message_at_head(end, len, avail),
            _ => None,
        }
    }

    /// [`next`](Self::next) with every check: re-reads the tail when the cached one
    /// shows nothing, skips padding, validates the record and remembers it in `parsed`.
    fn next_checked(&mut self) -> Result<NextMessage> {
        let end = &mut self.end;
        end.check_poisoned()?;
        if let Some(m) = self.parsed {
            if m.pos == end.head + RECORD_HEADER as u64 {
                return Ok(m);
            }
        }
        loop {
            // Tails move by whole records, so any committed byte means a whole record.
            let avail = end.available(1)?;
            if avail == 0 {
                // Nothing to read: give the batch read so far back before anyone waits.
                end.flush();
                return Err(end.blocked());
            }
            if avail < RECORD_HEADER as u64 || avail % 8 != 0 {
                return Err(end.corrupted("partial record published"));
            }
            match head_header(end) {
                (len, KIND_PAD) => {
                    let to_end = end.core.capacity - (end.head & end.core.mask);
                    if len + RECORD_HEADER as u64 != to_end || to_end > avail {
                        return Err(end.corrupted("padding record of the wrong length"));
                    }
                    end.release(to_end);
                }
                (len, KIND_MSG) => {
                    let Some(m) = message_at_head(end, len, avail) else {
                        return Err(end.corrupted("message record length out of bounds"));
                    };
                    self.parsed = Some(m);
                    return Ok(m);
                }
                _ => return Err(end.corrupted("unknown record kind")),
            }
        }
    }

    /// Reads the next message into `buf` and returns its length. `WouldBlock` if none
    /// is committed; `BufferTooSmall` (message left in place) if it does not fit;
    /// `Closed` at end of stream; `PeerDied` (checked at most once per liveness
    /// interval) when the writer's process died and every message it committed was read.
    #[inline]
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let next = self.next()?;
        if next.len > buf.len() {
            return Err(Error::BufferTooSmall {
                needed: next.len,
                got: buf.len(),
            });
        }
        // SAFETY: `next` was validated against the committed span (its record lies
        // between head and tail, so `next.len <= capacity`), which the reader owns.
        unsafe { self.end.core.copy_out(next.pos, &mut buf[..next.len]) };
        self.end.release(next.record);
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
        op: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        endpoint::wait(self, deadline, op)
    }

    /// Length of the next committed message, without consuming it; `WouldBlock` if
    /// none, `Closed` at end of stream.
    pub fn peek_len(&mut self) -> Result<usize> {
        self.next().map(|m| m.len)
    }

    /// Waits until a message is committed and returns its length without consuming it.
    ///
    /// # Errors
    /// `Timeout`; `Closed`/`PeerDied` once the writer is gone and the ring is drained;
    /// `Corrupted`.
    pub fn wait_peek_len(&mut self, deadline: Deadline) -> Result<usize> {
        self.wait_readable(deadline, |r| r.peek_len())
    }

    /// A zero-copy grant of the next message, read in place and then released.
    /// Dropping the grant without [`release`](MessageReadGrant::release) leaves the
    /// message in the ring.
    ///
    /// # Errors
    /// `WouldBlock` when no message is committed; `Closed`/`PeerDied` once the writer
    /// is gone and the ring is drained; `Corrupted`.
    pub fn read_grant(&mut self) -> Result<MessageReadGrant<'_>> {
        let next = self.next()?;
        self.end.core.guard_read(next.pos, next.len);
        Ok(MessageReadGrant {
            ptr: self.end.core.at(next.pos),
            len: next.len,
            record: next.record,
            reader: self,
        })
    }

    /// Gives the room of messages consumed with
    /// [`consume_deferred`](MessageReadGrant::consume_deferred) back to the writer: one
    /// store of the head and one notify for the whole batch.
    #[inline]
    pub fn flush(&mut self) {
        self.end.flush();
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
        self.reader.end.release(self.record);
    }

    /// Consumes the message and gives its room back to the writer in batches: at
    /// once when the writer announced that it sleeps for room, else once the reader
    /// holds [`MessageWriter::reader_batch`] bytes consumed, finds nothing more to
    /// read, or closes. A writer polling for room then sees it grow by a batch
    /// instead of a message at a time (one store of the head for many messages), and
    /// a writer facing a drained ring always has room for its largest message.
    #[inline]
    pub fn release_batched(self) {
        let r = self.reader;
        r.end.consume(self.record);
        if r.end.head - r.end.released >= r.batch || r.end.writer_sleeps() {
            r.end.flush();
        }
    }

    /// Consumes the message without giving its room back to the writer yet: that
    /// happens with the next [`MessageReader::flush`], or when the reader finds nothing
    /// more to read or closes (a batch of messages, one store).
    #[inline]
    pub fn consume_deferred(self) {
        self.reader.end.consume(self.record);
    }
}

endpoint::endpoint_impls!(MessageWriter, MessageReader);
