//! The body of the `pipe_fragments_hostile` fuzz target: a message pipe's fragment
//! reassembly and peek cursor driven by an honest script while the same input plays
//! a hostile writer forging ring records and scribbling on the ring's shared words.
//!
//! The pipe is an anonymous message pipe with 4 KiB rings and an 8 KiB `max_message`,
//! so messages above a quarter of the ring travel as several fragments. The input is
//! up to 200 operations, each an op byte and its arguments:
//!
//! * the honest writer (end `a`) writes a message of an input-chosen length with
//!   `try_write_message`, or closes (`disconnect`);
//! * the reader (end `b`) reads with `try_read_message` into buffers of 0 to 8 KiB
//!   (so a message comes in several parts with `more`), with `read_message` and a
//!   300 µs timeout, or peeks;
//! * the hostile writer commits a forged ring record through `a`'s ring writer: a
//!   fragment header with input-chosen flags and total length, and a payload of any
//!   length (so fragments come out of sequence, claim other totals, overflow the
//!   cursor, or are too short for a header);
//! * it scribbles a word of the ring's control block (configuration, tail, head, closed
//!   flags, owners, notifiers) with an arbitrary or nudged value, or a data word.
//!
//! The oracle:
//! * Until the first forged record or scribble, a model (the queue of messages
//!   written, the reader's offset in the first) predicts every result exactly: each
//!   read returns the next bytes of the current message and `more` exactly when bytes
//!   of it remain; an empty queue is `WouldBlock` (`Timeout` for the timed read), or
//!   `Closed` once the writer closed; a write succeeds, is `WouldBlock`, or is
//!   `MessageTooLarge` exactly above `max_nonblocking_message`; a peek reports the
//!   bytes left in the current message.
//! * After it, every call returns within 1 s (`CALL_LIMIT`) a value or a typed error and
//!   never panics; a read never returns more than its buffer; once a read or peek
//!   reported `Corrupted`, the end stays poisoned (every later read and peek is
//!   `Corrupted`).

use std::collections::VecDeque;
use std::time::Duration;

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU64, Ordering};

use super::super::layout::{A2B, FRAG_FIRST, FRAG_HEADER, FRAG_LAST};
use super::super::{anonymous, MessageRead, PipeMode, PipeOptions};
use super::{Io, PipeEnd};
use crate::fuzz_script::{timed, Input};
use crate::{Error, Result};

const MAX_OPS: usize = 200;
const RING: usize = 4096;
const MAX_MESSAGE: usize = 8192;
/// Words of the SPSC control block the peer aims at: magic, capacity, max_message,
/// tail, head, writer_closed|reader_closed, writer and reader owners, the two
/// notifiers (epoch|waiters).
const RING_WORDS: [usize; 10] = [0, 8, 16, 128, 256, 384, 392, 400, 512, 640];
/// Offset of the data area in the ring object (the control block's size).
const DATA: usize = 768;
/// Read buffer sizes the script picks from.
const BUFS: [usize; 8] = [0, 1, 7, 8, 100, 1000, 4096, MAX_MESSAGE];

/// The bytes of message number `n` of length `len`.
fn pattern(n: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(n.wrapping_mul(7)) as u8)
        .collect()
}

struct Script {
    /// The honest writer; `None` once it closed.
    a: Option<PipeEnd>,
    b: PipeEnd,
    /// The a→b ring object, as the peer writes it.
    ring: Region,
    /// Messages written and not wholly read, and the reader's offset in the first.
    queue: VecDeque<Vec<u8>>,
    offset: usize,
    /// Messages written so far (pattern seed).
    written: u32,
    /// A record was forged or a word scribbled: results are no longer predictable.
    scribbled: bool,
    /// A read or peek reported `Corrupted`.
    poisoned: bool,
}

impl Script {
    /// The model's result of a read into `size` bytes; `empty` is the error when
    /// nothing is committed and the writer is open.
    fn expect_read(&mut self, size: usize, empty: Error) -> Result<(MessageRead, Vec<u8>)> {
        if size == 0 {
            // An empty buffer returns at once and changes nothing.
            let more = self.offset > 0;
            return Ok((MessageRead { len: 0, more }, Vec::new()));
        }
        let Some(m) = self.queue.front() else {
            return Err(if self.a.is_none() {
                Error::Closed
            } else {
                empty
            });
        };
        let n = size.min(m.len() - self.offset);
        let bytes = m[self.offset..self.offset + n].to_vec();
        let more = self.offset + n < m.len();
        if more {
            self.offset += n;
        } else {
            self.queue.pop_front();
            self.offset = 0;
        }
        Ok((MessageRead { len: n, more }, bytes))
    }

    /// Checks a read's result against the model (before any scribble) or against the
    /// hostile-peer rules (after).
    fn check_read(&mut self, what: &str, size: usize, got: Result<MessageRead>, buf: &[u8]) {
        if self.poisoned {
            assert!(
                matches!(got, Err(Error::Corrupted { .. })),
                "{what} on a poisoned end gave {got:?}"
            );
            return;
        }
        if let Err(Error::Corrupted { .. }) = got {
            assert!(self.scribbled, "{what} found corruption in an honest ring");
            self.poisoned = true;
            return;
        }
        if self.scribbled {
            if let Ok(r) = got {
                assert!(r.len <= size, "{what} returned {} bytes into {size}", r.len);
            }
            return;
        }
        let empty = if what == "read_message" {
            Error::Timeout
        } else {
            Error::WouldBlock
        };
        match (self.expect_read(size, empty), got) {
            (Ok((want, bytes)), Ok(r)) => {
                assert_eq!(r, want, "{what} into {size}");
                assert_eq!(&buf[..r.len], &bytes[..], "{what}: message bytes");
            }
            (Err(want), Err(e)) => assert_eq!(
                std::mem::discriminant(&want),
                std::mem::discriminant(&e),
                "{what}: expected {want:?}, got {e:?}"
            ),
            (want, got) => panic!("{what} into {size}: expected {want:?}, got {got:?}"),
        }
    }

    fn write(&mut self, input: &mut Input<'_>) -> Option<()> {
        let len = usize::from(input.u16()?) % (MAX_MESSAGE + 1);
        let Some(a) = &mut self.a else {
            return Some(());
        };
        let msg = pattern(self.written, len);
        let limit = a.max_nonblocking_message();
        let got = timed("try_write_message", || a.try_write_message(&msg));
        if self.scribbled {
            return Some(());
        }
        match got {
            Ok(n) => {
                assert!(len <= limit, "a {len}-byte write above the {limit} limit");
                assert_eq!(n, len);
                self.queue.push_back(msg);
                self.written += 1;
            }
            Err(Error::WouldBlock) => assert!(len <= limit),
            Err(Error::MessageTooLarge { .. }) => assert!(len > limit),
            Err(e) => panic!("honest write of {len} bytes: {e:?}"),
        }
        Some(())
    }

    fn read(&mut self, input: &mut Input<'_>, timed_wait: bool) -> Option<()> {
        let size = BUFS[usize::from(input.byte()?) % BUFS.len()];
        let mut buf = vec![0u8; size];
        let b = &mut self.b;
        let (what, got) = if timed_wait {
            b.set_read_timeout(Some(Duration::from_micros(300)));
            let got = timed("read_message", || b.read_message(&mut buf));
            b.set_read_timeout(None);
            ("read_message", got)
        } else {
            let got = timed("try_read_message", || b.try_read_message(&mut buf));
            ("try_read_message", got)
        };
        self.check_read(what, size, got, &buf);
        Some(())
    }

    fn peek(&mut self) {
        let got = timed("peek", || self.b.peek());
        if self.poisoned {
            assert!(matches!(got, Err(Error::Corrupted { .. })), "peek: {got:?}");
            return;
        }
        if let Err(Error::Corrupted { .. }) = got {
            assert!(self.scribbled, "peek found corruption in an honest ring");
            self.poisoned = true;
            return;
        }
        if self.scribbled {
            return;
        }
        match (self.queue.front(), got) {
            (Some(m), Ok(p)) => {
                let left = m.len() - self.offset;
                assert_eq!(p.next_message_len, Some(left), "peek: bytes left");
                assert!(p.bytes_available <= left, "peek: {p:?}, {left} left");
            }
            (None, Ok(p)) => {
                assert!(self.a.is_some(), "peek after close: {p:?}");
                assert_eq!(p.next_message_len, None);
                assert_eq!(p.bytes_available, 0);
            }
            (None, Err(Error::Closed)) => assert!(self.a.is_none()),
            (front, got) => panic!("peek with {:?} queued: {got:?}", front.map(Vec::len)),
        }
    }

    /// The hostile writer commits a forged fragment through `a`'s ring writer.
    fn forge(&mut self, input: &mut Input<'_>) -> Option<()> {
        let flags = match input.byte()? % 5 {
            0 => FRAG_FIRST,
            1 => FRAG_LAST,
            2 => FRAG_FIRST | FRAG_LAST,
            3 => 0,
            _ => input.u32()?,
        };
        let total = match input.byte()? % 3 {
            0 => u32::from(input.u16()?),
            1 => input.u32()?,
            _ => self.queue.front().map_or(0, |m| m.len() as u32),
        };
        let payload = usize::from(input.u16()?) % (RING / 2);
        let header_len = usize::from(input.byte()?) % (FRAG_HEADER + 1);
        let mut record = Vec::with_capacity(FRAG_HEADER + payload);
        record.extend_from_slice(&flags.to_le_bytes());
        record.extend_from_slice(&total.to_le_bytes());
        record.truncate(header_len);
        record.extend(std::iter::repeat_n(0xA5, payload));
        let Some(Io::Messages(f)) = self.a.as_mut().map(|a| &mut a.io) else {
            return Some(());
        };
        let Some(w) = &mut f.rings.tx else {
            return Some(());
        };
        if timed("forge", || w.try_write(&record)).is_ok() {
            self.scribbled = true;
        }
        Some(())
    }

    /// The hostile writer stores into a control word (`data == false`) or a data word.
    fn scribble(&mut self, input: &mut Input<'_>, data: bool) -> Option<()> {
        let off = if data {
            DATA + (usize::from(input.u16()?) % (RING / 8)) * 8
        } else {
            RING_WORDS[usize::from(input.byte()?) % RING_WORDS.len()]
        };
        let Some(word) = self.ring.view::<AtomicU64>(off) else {
            return Some(());
        };
        let old = word.load(Ordering::Relaxed);
        let value = match input.byte()? % 4 {
            0 => input.u64()?,
            1 => old.wrapping_add(u64::from(input.byte()?)),
            2 => old.wrapping_sub(u64::from(input.byte()?)),
            _ => old ^ (1 << (input.byte()? % 64)),
        };
        word.store(value, Ordering::Relaxed);
        self.scribbled = true;
        Some(())
    }

    fn run(&mut self, input: &mut Input<'_>) -> Option<()> {
        for _ in 0..MAX_OPS {
            match input.byte()? % 11 {
                0..=2 => self.write(input)?,
                3 | 4 => self.read(input, false)?,
                5 => self.read(input, true)?,
                6 => self.peek(),
                7 => self.forge(input)?,
                8 => self.scribble(input, false)?,
                9 => self.scribble(input, true)?,
                _ => {
                    // The honest writer closes (the reader drains, then `Closed`).
                    if !self.scribbled {
                        if let Some(mut a) = self.a.take() {
                            a.disconnect();
                        }
                    }
                }
            }
        }
        Some(())
    }
}

/// Runs one fuzz input (see the module doc). Panics only when the oracle fails.
pub fn fragments_hostile(data: &[u8]) {
    let opts = PipeOptions::new()
        .mode(PipeMode::Message)
        .buffers(RING)
        .max_message(MAX_MESSAGE);
    let (a, b) = anonymous(PipeMode::Message, &opts).expect("an anonymous message pipe");
    let ring = a.section().object(A2B).expect("the a-to-b ring object");
    assert!(
        ring.len() >= DATA + RING,
        "ring object of {} bytes",
        ring.len()
    );
    let mut script = Script {
        a: Some(a),
        b,
        ring,
        queue: VecDeque::new(),
        offset: 0,
        written: 0,
        scribbled: false,
        poisoned: false,
    };
    let _ = script.run(&mut Input(data));
}
