//! The byte-ring half of [`super::hostile`]: one writer and one reader of a
//! [`ByteRing`], an exact byte-queue model for the clean phase, and bounds for the
//! hostile one (see the parent module's doc).

use std::collections::VecDeque;

use culvert_section::Region;
use culvert_sync::atomic::Ordering;

use super::{check_error, scribble, Taint, HEAD, TAIL};
use crate::fuzzing::hostile::{timed, Input, Shared};
use crate::spsc::{ByteReader, ByteRing, ByteWriter, Config};
use crate::Endpoint as _;
use crate::{Deadline, Error};

/// The byte ring, its endpoints and the clean-phase model.
pub(super) struct Bytes {
    region: Region,
    shared: Shared,
    cap: u64,
    writer: ByteWriter,
    reader: ByteReader,
    w_poisoned: bool,
    r_poisoned: bool,
    taint: Taint,
    next: u8,
    // The model.
    tail: u64,
    head: u64,
    queue: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
}

impl Bytes {
    pub(super) fn new(cap: usize) -> Self {
        let config = Config::bytes(cap);
        let region = Region::heap(ByteRing::required_size(&config).unwrap()).unwrap();
        ByteRing::init(&region, &config).unwrap();
        Self {
            shared: Shared::new(&region),
            writer: ByteWriter::attach(&region).unwrap(),
            reader: ByteReader::attach(&region).unwrap(),
            region,
            cap: cap as u64,
            w_poisoned: false,
            r_poisoned: false,
            taint: Taint::default(),
            next: 0,
            tail: 0,
            head: 0,
            queue: VecDeque::new(),
            writer_closed: false,
            reader_closed: false,
        }
    }

    pub(super) fn run(mut self, input: &mut Input<'_>) {
        while let Some(op) = input.byte() {
            let Some(b) = input.byte() else { break };
            let len = b as usize % (2 * self.cap as usize + 1);
            let done = match op % 10 {
                0 | 1 => self.write(op % 10 == 1, len),
                2 | 3 => self.read(op % 10 == 3, len),
                4 => self.write_grant(op, len),
                5 => self.read_grant(op, len),
                6 => self.close_or_look(b),
                _ => scribble(b, input, &self.shared, self.cap, &mut self.taint),
            };
            if done.is_none() {
                break;
            }
            if !self.taint.scribbled {
                assert_eq!(self.shared.u64(TAIL).load(Ordering::Relaxed), self.tail);
                assert_eq!(self.shared.u64(HEAD).load(Ordering::Relaxed), self.head);
                assert_eq!(self.tail - self.head, self.queue.len() as u64);
            }
        }
        drop(self.region);
    }

    fn free(&self) -> u64 {
        self.cap - (self.tail - self.head)
    }

    /// Clean phase: `WouldBlock` / `Timeout` / `Closed` when the writer finds no room.
    fn writer_blocked(&self, blocking: bool) -> Error {
        if blocking {
            Error::Timeout
        } else {
            Error::WouldBlock
        }
    }

    fn reader_empty(&self, blocking: bool) -> Error {
        if self.writer_closed {
            Error::Closed
        } else {
            self.writer_blocked(blocking)
        }
    }

    fn bytes(&self, n: usize) -> Vec<u8> {
        (0..n).map(|i| self.next.wrapping_add(i as u8)).collect()
    }

    fn write(&mut self, blocking: bool, len: usize) -> Option<()> {
        let src = self.bytes(len);
        let w = &mut self.writer;
        let got = timed("byte write", || {
            if blocking {
                w.write(&src, Deadline::now())
            } else {
                w.try_write(&src)
            }
        });
        if !self.taint.scribbled {
            let want = if self.writer_closed || self.reader_closed {
                Err(Error::Closed)
            } else if len == 0 {
                Ok(0)
            } else if self.free() == 0 {
                Err(self.writer_blocked(blocking))
            } else {
                Ok(len.min(self.free() as usize))
            };
            assert_eq!(got, want, "write of {len}");
            if let Ok(n) = got {
                self.commit(&src[..n]);
            }
        } else {
            match &got {
                Ok(n) => assert!(*n <= len && (*n == 0 || !self.w_poisoned), "wrote {n}"),
                Err(e) => check_error(e, blocking, self.w_poisoned, "byte write"),
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            self.w_poisoned = true;
        }
        Some(())
    }

    fn commit(&mut self, bytes: &[u8]) {
        self.queue.extend(bytes);
        self.tail += bytes.len() as u64;
        self.next = self.next.wrapping_add(bytes.len() as u8);
    }

    fn take(&mut self, got: &[u8]) {
        for &b in got {
            assert_eq!(Some(b), self.queue.pop_front(), "byte order");
        }
        self.head += got.len() as u64;
    }

    fn read(&mut self, blocking: bool, len: usize) -> Option<()> {
        let mut buf = vec![0u8; len];
        let r = &mut self.reader;
        let got = timed("byte read", || {
            if blocking {
                r.read(&mut buf, Deadline::now())
            } else {
                r.try_read(&mut buf)
            }
        });
        if !self.taint.scribbled {
            let want = if self.queue.is_empty() {
                Err(self.reader_empty(blocking))
            } else {
                Ok(len.min(self.queue.len()))
            };
            assert_eq!(got, want, "read of {len}");
            if let Ok(n) = got {
                self.take(&buf[..n]);
            }
        } else {
            match &got {
                Ok(n) => assert!(*n <= len && (*n == 0 || !self.r_poisoned), "read {n}"),
                Err(e) => check_error(e, blocking, self.r_poisoned, "byte read"),
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            self.r_poisoned = true;
        }
        Some(())
    }

    fn write_grant(&mut self, op: u8, len: usize) -> Option<()> {
        let contiguous = (self.cap - self.tail % self.cap).min(self.free());
        let src = self.bytes(len.min(self.cap as usize));
        let w = &mut self.writer;
        let got = timed("byte reserve", || {
            w.reserve(len).map(|mut g| {
                let n = g.len();
                g.as_mut_slice().copy_from_slice(&src[..n]);
                let keep = op as usize % (n + 1);
                g.commit(keep);
                (n, keep)
            })
        });
        if !self.taint.scribbled {
            let n = contiguous.min(len as u64) as usize;
            let want = if self.writer_closed || self.reader_closed {
                Err(Error::Closed)
            } else if n == 0 {
                Err(Error::WouldBlock)
            } else {
                Ok((n, op as usize % (n + 1)))
            };
            assert_eq!(got, want, "reserve of {len}");
            if let Ok((_, keep)) = got {
                self.commit(&src[..keep]);
            }
        } else {
            match &got {
                Ok((n, _)) => assert!(*n <= len && *n > 0 && !self.w_poisoned, "granted {n}"),
                Err(e) => check_error(e, false, self.w_poisoned, "byte reserve"),
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            self.w_poisoned = true;
        }
        Some(())
    }

    fn read_grant(&mut self, op: u8, len: usize) -> Option<()> {
        let to_end = (self.cap - self.head % self.cap) as usize;
        let r = &mut self.reader;
        let got = timed("byte read grant", || {
            r.read_grant().map(|g| {
                let take = len % (g.len() + 1);
                let bytes = g.as_slice()[..take].to_vec();
                let n = g.len();
                if op & 0x80 == 0 {
                    g.release(take);
                }
                (n, bytes)
            })
        });
        if !self.taint.scribbled {
            match &got {
                Ok((n, bytes)) => {
                    assert_eq!(*n, to_end.min(self.queue.len()), "grant length");
                    if op & 0x80 == 0 {
                        self.take(bytes);
                    } else {
                        assert!(bytes.iter().eq(self.queue.iter().take(bytes.len())));
                    }
                }
                Err(e) => {
                    assert!(self.queue.is_empty(), "{e:?} with bytes queued");
                    assert_eq!(*e, self.reader_empty(false));
                }
            }
        } else {
            match &got {
                Ok((n, _)) => assert!(*n > 0 && *n as u64 <= self.cap, "granted {n}"),
                Err(e) => check_error(e, false, self.r_poisoned, "byte read grant"),
            }
            if got.is_ok() {
                assert!(!self.r_poisoned, "a poisoned reader granted data");
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            self.r_poisoned = true;
        }
        Some(())
    }

    fn close_or_look(&mut self, b: u8) -> Option<()> {
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
                let r = &mut self.reader;
                let got = timed("bytes_available", || r.bytes_available());
                if !self.taint.scribbled {
                    assert_eq!(got, Ok(self.queue.len()));
                } else {
                    match got {
                        Ok(n) => assert!(n as u64 <= self.cap && (n == 0 || !self.r_poisoned)),
                        Err(e) => {
                            assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
                            self.r_poisoned = true;
                        }
                    }
                }
            }
        }
        Some(())
    }
}
