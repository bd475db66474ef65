//! Fuzz body for the SPSC rings against a hostile peer: [`hostile`].
//!
//! Byte 0 picks the framing (bit 0: message or byte ring) and the capacity (64..=512),
//! byte 1 the message ring's `max_message` (5..=capacity - 8). Then a script of honest
//! operations on the one writer and the one reader — `try_*` calls, blocking calls with
//! `Deadline::now()`, write and read grants, `peek_len`, `free_bytes` /
//! `bytes_available`, close — interleaved with scribbles: arbitrary or nudged values
//! stored into the shared tail and head, record headers (length and kind words),
//! data bytes, the byte ring's tail echo, the closed flags, the owner words and the
//! configuration words.
//!
//! The oracle:
//! * Until the first scribble, an exact model of the positions (pad records
//!   included) predicts every result, every byte read, and the shared tail and head
//!   after every operation.
//! * After it, every call returns data or a typed runtime error within
//!   one second (`CALL_LIMIT`): no `Busy`, `InvalidConfig` or `Overrun`; `Timeout` only from a
//!   blocking call; `MessageTooLarge` exactly for lengths above `max_message`;
//!   `BufferTooSmall` names a length in `buf.len() + 1..=max_message`; reads return at
//!   most what was asked (and `max_message`); an endpoint that reported `Corrupted`
//!   never again moves data. In the message ring, as long as no scribble touched the
//!   tail, the head, record headers or data bytes (only closed flags, owner words and
//!   configuration words), every message read is one the writer committed, byte for
//!   byte. A forged position lets the reader parse bytes the honest writer still owns
//!   (the reader keeps its parse of the next record across calls, trusting bytes below
//!   the tail to stay put until released), which the writer then rewrites; that is a
//!   hostile writer's power anyway, and the message stays inside the bounds above.
//!
//! Offsets of the shared words are those of `spsc::control`'s `#[repr(C)]` layout; the
//! clean phase checks the tail and head offsets after every operation.

use std::collections::VecDeque;

use culvert_section::Region;
use culvert_sync::atomic::Ordering;

use super::hostile::{encode, runtime_error, timed, Committed, Input, Shared, MSG_HEADER};
use crate::spsc::{Config, MessageReader, MessageRing, MessageWriter};
use crate::{Deadline, Error};

mod bytes;
use crate::Endpoint as _;
use bytes::Bytes;

/// Offsets in the control block.
const CAPACITY: usize = 8;
const TAIL: usize = 128;
/// The tail's echo: end, length, then five words of bytes.
const ECHO: usize = 136;
const HEAD: usize = 256;
const WRITER_CLOSED: usize = 384;
const READER_CLOSED: usize = 388;
const WRITER_OWNER: usize = 392;
const READER_OWNER: usize = 400;
const DATA: usize = 768;
/// Record header kinds, as `spsc::message` writes them.
const KIND_MSG: u64 = 0x4d53_4721;
const KIND_PAD: u64 = 0x5041_4421;
/// A pid above any `pid_max`: an identity naming it is always dead.
const DEAD_IDENTITY: u64 = 0x7fff_fff0;

/// Ring bytes of a message record with a `len`-byte payload.
fn record(len: usize) -> u64 {
    8 + ((len as u64 + 7) & !7)
}

/// What a scribble did, for the oracle.
#[derive(Default)]
struct Taint {
    /// Any scribble so far: only the hostile oracle holds.
    scribbled: bool,
    /// Positions, record headers or data bytes were rewritten.
    forged_data: bool,
}

/// One scribble, decoded from the input: `op` selects what is written.
fn scribble(op: u8, input: &mut Input<'_>, shared: &Shared, cap: u64, t: &mut Taint) -> Option<()> {
    let (which, value) = (input.byte()?, input.u64()?);
    t.scribbled = true;
    let tail = shared.u64(TAIL).load(Ordering::Relaxed);
    let head = shared.u64(HEAD).load(Ordering::Relaxed);
    let small = value % (2 * cap + 9);
    match op % 4 {
        // A position: arbitrary, nudged, or set from the other one.
        0 => {
            let at = if which & 1 == 0 { TAIL } else { HEAD };
            let cur = if at == TAIL { tail } else { head };
            let v = match (which >> 1) % 6 {
                0 => value,
                1 => cur.wrapping_add(small),
                2 => cur.wrapping_sub(small),
                3 => cur.wrapping_add(small & !7),
                4 => head.wrapping_add(small),
                _ => tail.wrapping_sub(small),
            };
            t.forged_data = true;
            shared.u64(at).store(v, Ordering::Release);
        }
        // A record header at an 8-aligned place near the head or the tail.
        1 => {
            t.forged_data = true;
            let base = if which & 1 == 0 { head } else { tail };
            let pos = base.wrapping_add(8 * ((which >> 1) as u64 % 8)) & (cap - 1) & !7;
            let len = match (which >> 4) % 3 {
                0 => value % (cap + 16),
                1 => cap - (pos & (cap - 1)) - 8,
                _ => value & 0xffff_ffff,
            };
            let kind = match which >> 6 {
                0 | 1 => KIND_MSG,
                2 => KIND_PAD,
                _ => value >> 32,
            };
            let header = len | (kind << 32);
            shared.write_bytes(DATA + pos as usize, &header.to_le_bytes());
        }
        // The tail's echo (byte rings: its end, its length or a byte word).
        2 if which & 0x80 != 0 => {
            t.forged_data = true;
            let at = ECHO + 8 * ((which >> 2) as usize % 7);
            let v = match which % 4 {
                0 => value,
                1 => tail,
                2 => value % 48,
                _ => tail.wrapping_sub(small),
            };
            shared.u64(at).store(v, Ordering::Release);
        }
        // Data bytes anywhere in the data area.
        2 => {
            t.forged_data = true;
            let pos = (value >> 8) % cap;
            let n = (cap - pos).min(1 + (which % 8) as u64) as usize;
            shared.write_bytes(DATA + pos as usize, &value.to_le_bytes()[..n]);
        }
        // Closed flags, owner words, configuration words.
        _ => match which % 8 {
            0 => shared
                .u32(WRITER_CLOSED)
                .store(value as u32 & 1, Ordering::Release),
            1 => shared
                .u32(READER_CLOSED)
                .store(value as u32 & 1, Ordering::Release),
            2 | 3 => {
                let at = if which % 8 == 2 {
                    WRITER_OWNER
                } else {
                    READER_OWNER
                };
                let v = match (which >> 3) % 4 {
                    0 => 0,
                    1 => culvert_sync::owner::my_owner_id(),
                    2 => DEAD_IDENTITY,
                    _ => value,
                };
                shared.u64(at).store(v, Ordering::Release);
            }
            w => shared
                .u64(8 * (w as usize - 4))
                .store(value, Ordering::Release),
        },
    }
    debug_assert!(shared.len() > DATA + CAPACITY);
    Some(())
}

/// Runs the script in `data`; panics when a ring breaks the oracle (module doc).
pub fn hostile(data: &[u8]) {
    let mut input = Input::new(data);
    let (Some(a), Some(b)) = (input.byte(), input.byte()) else {
        return;
    };
    let cap = 64usize << ((a >> 1) % 4);
    if a & 1 == 0 {
        let max = MSG_HEADER + b as usize % (cap - 8 - MSG_HEADER + 1);
        Messages::new(cap, max).run(&mut input);
    } else {
        Bytes::new(cap).run(&mut input);
    }
}

/// Checks an error of a call under the hostile oracle.
fn check_error(e: &Error, blocking: bool, poisoned: bool, what: &str) {
    assert!(runtime_error(e), "{what} gave {e:?}");
    assert!(
        blocking || *e != Error::Timeout,
        "{what} (non-blocking) gave Timeout"
    );
    // A poisoned endpoint still reports a closed side or an oversized message first.
    assert!(
        !poisoned
            || matches!(
                e,
                Error::Corrupted { .. } | Error::Closed | Error::MessageTooLarge { .. }
            ),
        "poisoned {what} gave {e:?}"
    );
}

/// The message ring, its endpoints and the clean-phase model.
struct Messages {
    region: Region,
    shared: Shared,
    cap: u64,
    max: usize,
    writer: MessageWriter,
    reader: MessageReader,
    w_poisoned: bool,
    r_poisoned: bool,
    taint: Taint,
    committed: Committed,
    next_id: u32,
    // The model: positions, records in flight (`None` = a pad of that size), closes.
    tail: u64,
    head: u64,
    records: VecDeque<(u64, Option<Vec<u8>>)>,
    writer_closed: bool,
    reader_closed: bool,
}

impl Messages {
    fn new(cap: usize, max: usize) -> Self {
        let config = Config::messages(cap, max);
        let region = Region::heap(MessageRing::required_size(&config).unwrap()).unwrap();
        MessageRing::init(&region, &config).unwrap();
        Self {
            shared: Shared::new(&region),
            writer: MessageWriter::attach(&region).unwrap(),
            reader: MessageReader::attach(&region).unwrap(),
            region,
            cap: cap as u64,
            max,
            w_poisoned: false,
            r_poisoned: false,
            taint: Taint::default(),
            committed: Committed::default(),
            next_id: 0,
            tail: 0,
            head: 0,
            records: VecDeque::new(),
            writer_closed: false,
            reader_closed: false,
        }
    }

    fn run(mut self, input: &mut Input<'_>) {
        while let Some(op) = input.byte() {
            let done = match op % 12 {
                0..=2 => self.write(op, input),
                3..=5 => self.read(op, input),
                6 => self.grant(input),
                7 => self.close_or_look(input),
                s => scribble(s, input, &self.shared, self.cap, &mut self.taint),
            };
            if done.is_none() {
                break;
            }
            if !self.taint.scribbled {
                assert_eq!(self.shared.u64(TAIL).load(Ordering::Relaxed), self.tail);
                assert_eq!(self.shared.u64(HEAD).load(Ordering::Relaxed), self.head);
            }
        }
        if !self.taint.scribbled {
            // Drain: everything committed comes out, once, in order.
            let mut buf = vec![0u8; self.max];
            while let Some(m) = self.model_next() {
                let n = timed("drain", || self.reader.try_read(&mut buf)).expect("committed");
                assert_eq!(&buf[..n], &m[..]);
                self.pop_message();
            }
        }
        drop(self.region);
    }

    fn free(&self) -> u64 {
        self.cap - (self.tail - self.head)
    }

    /// Model of `reserve(len)`: `Ok` when the writer may write the record at `tail`
    /// (after publishing any pad).
    fn model_reserve(&mut self, len: usize) -> Result<(), Error> {
        if len > self.max {
            return Err(Error::MessageTooLarge { len, max: self.max });
        }
        if self.writer_closed || self.reader_closed {
            return Err(Error::Closed);
        }
        let to_end = self.cap - self.tail % self.cap;
        if record(len) > to_end {
            if self.free() < to_end {
                return Err(Error::WouldBlock);
            }
            self.records.push_back((to_end, None));
            self.tail += to_end;
        }
        if self.free() < record(len) {
            return Err(Error::WouldBlock);
        }
        Ok(())
    }

    fn model_commit(&mut self, msg: Vec<u8>) {
        self.tail += record(msg.len());
        self.records.push_back((record(msg.len()), Some(msg)));
    }

    /// Model of the reader's `next`: skips pads, then the message at the head.
    fn model_next(&mut self) -> Option<Vec<u8>> {
        while let Some((size, None)) = self.records.front() {
            self.head += size;
            self.records.pop_front();
        }
        self.records.front().and_then(|(_, m)| m.clone())
    }

    fn pop_message(&mut self) {
        let (size, _) = self.records.pop_front().expect("a message");
        self.head += size;
    }

    /// The error of a read that finds nothing, in the clean phase.
    fn empty_error(&self, blocking: bool) -> Error {
        if self.writer_closed {
            Error::Closed
        } else if blocking {
            Error::Timeout
        } else {
            Error::WouldBlock
        }
    }

    /// A length for the next message: mostly `MSG_HEADER..=max`, sometimes too large.
    fn pick_len(&self, b: u8) -> usize {
        if b >= 0xf8 {
            self.max + 1 + (b & 7) as usize
        } else {
            MSG_HEADER + b as usize % (self.max - MSG_HEADER + 1)
        }
    }

    fn write(&mut self, op: u8, input: &mut Input<'_>) -> Option<()> {
        let b = input.byte()?;
        let len = self.pick_len(b);
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = vec![0u8; len];
        encode(id, &mut msg);
        let blocking = op % 12 == 2;
        let w = &mut self.writer;
        let got = timed("message write", || {
            if blocking {
                w.write(&msg, Deadline::now())
            } else {
                w.try_write(&msg)
            }
        });
        if !self.taint.scribbled {
            let want = match self.model_reserve(len) {
                Ok(()) => {
                    self.model_commit(msg);
                    Ok(())
                }
                Err(Error::WouldBlock) if blocking => Err(Error::Timeout),
                Err(e) => Err(e),
            };
            assert_eq!(got, want, "write of {len} bytes");
        } else {
            match &got {
                Ok(()) => assert!(!self.w_poisoned && len <= self.max),
                Err(e) => {
                    check_error(e, blocking, self.w_poisoned, "message write");
                    let too_large = matches!(e, Error::MessageTooLarge { .. });
                    assert_eq!(too_large, len > self.max, "{e:?} for {len} bytes");
                    assert!(!matches!(e, Error::BufferTooSmall { .. }));
                }
            }
        }
        match got {
            Ok(()) => self.committed.insert(id, len),
            Err(Error::Corrupted { .. }) => self.w_poisoned = true,
            Err(_) => {}
        }
        Some(())
    }

    /// Checks a message handed out under the hostile oracle.
    fn check_message(&self, m: &[u8], room: usize) {
        assert!(!self.r_poisoned, "a poisoned reader returned data");
        assert!(m.len() <= room && m.len() <= self.max, "{} bytes", m.len());
        if !self.taint.forged_data {
            assert!(self.committed.holds(m), "a message never committed: {m:?}");
        }
    }

    fn read(&mut self, op: u8, input: &mut Input<'_>) -> Option<()> {
        let b = input.byte()?;
        let size = if b & 0x80 != 0 {
            b as usize % (self.max + 1)
        } else {
            self.max
        };
        let blocking = op % 12 == 5;
        let peek = op % 12 == 4 && b & 0x40 != 0;
        let mut buf = vec![0u8; size];
        let r = &mut self.reader;
        let got: Result<Vec<u8>, Error> = timed("message read", || {
            if peek {
                r.peek_len().map(|n| vec![0; n])
            } else if blocking {
                r.read(&mut buf, Deadline::now()).map(|n| buf[..n].to_vec())
            } else {
                r.try_read(&mut buf).map(|n| buf[..n].to_vec())
            }
        });
        if !self.taint.scribbled {
            let want = match self.model_next() {
                None => Err(self.empty_error(blocking)),
                Some(m) if peek => Ok(vec![0; m.len()]),
                Some(m) if m.len() > size => Err(Error::BufferTooSmall {
                    needed: m.len(),
                    got: size,
                }),
                Some(m) => {
                    self.pop_message();
                    Ok(m)
                }
            };
            assert_eq!(got, want, "read into {size} bytes");
        } else {
            match &got {
                Ok(m) if peek => assert!(!self.r_poisoned && m.len() <= self.max),
                Ok(m) => self.check_message(m, size),
                Err(Error::BufferTooSmall { needed, got }) => {
                    assert!(*got == size && *needed > size && *needed <= self.max);
                }
                Err(e) => {
                    check_error(e, blocking, self.r_poisoned, "message read");
                    assert!(!matches!(e, Error::MessageTooLarge { .. }));
                }
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            self.r_poisoned = true;
        }
        Some(())
    }

    /// A write grant (filled and committed, possibly shorter, or dropped unfilled) or
    /// a read grant (released or dropped).
    fn grant(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (sel, b) = (input.byte()?, input.byte()?);
        if sel & 1 == 0 {
            let len = self.pick_len(b);
            let keep = MSG_HEADER + (sel >> 1) as usize % (len.saturating_sub(MSG_HEADER) + 1);
            let keep = keep.min(len);
            let commit = sel & 0x80 == 0;
            let id = self.next_id;
            self.next_id += 1;
            let w = &mut self.writer;
            let got = timed("reserve", || {
                w.reserve(len).map(|mut g| {
                    if commit {
                        encode(id, &mut g.as_mut_slice()[..keep]);
                        g.commit(keep);
                    }
                })
            });
            if !self.taint.scribbled {
                let want = self.model_reserve(len);
                if want.is_ok() && commit {
                    let mut msg = vec![0u8; keep];
                    encode(id, &mut msg);
                    self.model_commit(msg);
                }
                assert_eq!(got, want, "reserve of {len}");
            } else if let Err(e) = &got {
                check_error(e, false, self.w_poisoned, "reserve");
            } else {
                assert!(!self.w_poisoned && len <= self.max);
            }
            match got {
                Ok(()) if commit => self.committed.insert(id, keep),
                Err(Error::Corrupted { .. }) => self.w_poisoned = true,
                _ => {}
            }
        } else {
            let release = b & 1 == 0;
            let r = &mut self.reader;
            let got = timed("read grant", || {
                r.read_grant().map(|g| {
                    let m = g.as_slice().to_vec();
                    if release {
                        g.release();
                    }
                    m
                })
            });
            if !self.taint.scribbled {
                let want = self.model_next().ok_or(self.empty_error(false));
                if want.is_ok() && release {
                    self.pop_message();
                }
                assert_eq!(got, want, "read grant");
            } else {
                match &got {
                    Ok(m) => self.check_message(m, usize::MAX),
                    Err(e) => check_error(e, false, self.r_poisoned, "read grant"),
                }
            }
            if let Err(Error::Corrupted { .. }) = got {
                self.r_poisoned = true;
            }
        }
        Some(())
    }

    fn close_or_look(&mut self, input: &mut Input<'_>) -> Option<()> {
        let b = input.byte()?;
        match b % 16 {
            0 => {
                timed("close", || self.writer.close());
                self.writer_closed = true;
            }
            1 => {
                timed("close", || self.reader.close());
                self.reader_closed = true;
            }
            _ => {
                let w = &mut self.writer;
                let got = timed("free_bytes", || w.free_bytes());
                if !self.taint.scribbled {
                    assert_eq!(got, Ok(self.free() as usize));
                    assert_eq!(self.writer.is_closed(), self.reader_closed);
                } else {
                    match got {
                        Ok(n) => assert!(!self.w_poisoned && n as u64 <= self.cap),
                        Err(e) => {
                            assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
                            self.w_poisoned = true;
                        }
                    }
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_message_script_runs_exactly() {
        // 64-byte ring, 40-byte messages: fill, pad at the lap end, drain, close.
        let mut script = vec![0u8, 35];
        for i in 0..8u8 {
            script.extend([0, i * 31, 3, 0]);
        }
        script.extend([6, 0, 9, 7, 0, 3, 0x85, 6, 1, 0]);
        hostile(&script);
    }

    #[test]
    fn clean_byte_script_runs_exactly() {
        let script = [
            1u8, 0, 0, 100, 2, 30, 4, 50, 5, 20, 6, 5, 0, 90, 3, 200, 6, 0,
        ];
        hostile(&script);
    }

    #[test]
    fn scribbled_positions_give_typed_results() {
        let mut script = vec![0u8, 20, 0, 10, 0, 10];
        // Tail forward, head backward, then reads and writes.
        script.extend([
            8, 1, 16, 0, 0, 0, 0, 0, 0, 0, 3, 0, 3, 0, 8, 2, 8, 0, 0, 0, 0,
        ]);
        script.extend([0, 0, 0, 0, 0, 0, 5, 0, 0, 5]);
        hostile(&script);
        let mut bytes = vec![1u8, 0, 0, 50];
        bytes.extend([7, 1, 1, 40, 0, 0, 0, 0, 0, 0, 0, 2, 60, 5, 60, 6, 3]);
        hostile(&bytes);
    }
}
