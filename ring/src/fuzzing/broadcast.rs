//! Fuzz bodies for the broadcast ring.
//!
//! * [`ops`]: an operation script (send / receive on reader *i* / join / leave / writer
//!   attach and detach) run on a heap ring and checked against a model: the last
//!   `capacity` messages and the tail, plus each reader's cursor and missed total. Every
//!   result must match the model exactly (message bytes, `Overrun { missed }`,
//!   `WouldBlock`, `Timeout`, `BufferTooSmall`, `MessageTooLarge`).
//! * [`hostile`]: the input also plays a hostile peer that, between operations, writes
//!   arbitrary values into the ring's tail, config words, writer table, and slot stamps,
//!   lengths and data. Only termination is required: every call returns data or a typed
//!   error, never panics, never hangs (only `try_*` and `Deadline::now()` are used).

use std::collections::VecDeque;
use std::time::Duration;

use culvert_section::Region;
use culvert_sync::atomic::Ordering;

use crate::broadcast::control::Stamp;
use crate::broadcast::core::BroadcastCore;
use crate::broadcast::{Config, Reader, Ring, Writer};
use crate::{Deadline, Error, WaitStrategy};

/// Most readers / writers a script keeps attached at once.
const MAX_READERS: usize = 4;
const MAX_WRITERS: usize = 3;

/// Reads the fuzz input one byte at a time.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut v = [0u8; 8];
        for b in &mut v {
            *b = self.byte()?;
        }
        Some(u64::from_le_bytes(v))
    }
}

/// The bytes of the `seq`-th message sent, `len` long.
fn payload(seq: u64, len: usize, out: &mut [u8]) {
    for (i, b) in out[..len].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(131).wrapping_add(i * 7) as u8;
    }
}

/// A ring from the first two input bytes: 1..=16 slots, messages up to 0..=39 bytes.
fn make_ring(input: &mut Input<'_>) -> Option<(Region, Config)> {
    let capacity = 1usize << (input.byte()? % 5);
    let max_message = (input.byte()? % 40) as usize;
    let config = Config::new(capacity, max_message);
    let region = Region::heap(Ring::required_size(&config).ok()?)?;
    Ring::init(&region, &config).ok()?;
    Some((region, config))
}

/// A reader endpoint and what the model expects of it.
struct ModelReader {
    reader: Reader,
    /// Next position, as the model computes it.
    cursor: u64,
    missed: u64,
}

/// Runs an operation script against the model; panics on any divergence.
pub fn ops(data: &[u8]) {
    let mut input = Input { data };
    let Some((region, config)) = make_ring(&mut input) else {
        return;
    };
    let capacity = config.capacity as u64;
    let max = config.max_message;
    // The model: positions `tail - held.len() .. tail` are held (lengths only; bytes
    // follow from the position).
    let mut held: VecDeque<usize> = VecDeque::new();
    let mut tail = 0u64;
    let mut writers: Vec<Writer> = vec![Writer::attach(&region).expect("first writer")];
    let mut readers: Vec<ModelReader> = Vec::new();
    let mut msg = vec![0u8; max + 1];
    let mut buf = vec![0u8; max + 8];
    let mut want = vec![0u8; max + 8];

    while let Some(op) = input.byte() {
        match op % 8 {
            // send
            0 | 1 => {
                let Some(len) = input.byte() else { break };
                let len = len as usize % (max + 2);
                let Some(w) = input.byte() else { break };
                if writers.is_empty() {
                    continue;
                }
                let w = w as usize % writers.len();
                payload(tail, len.min(max), &mut msg);
                let got = writers[w].write(&msg[..len]);
                if len > max {
                    assert_eq!(got, Err(Error::MessageTooLarge { len, max }));
                } else {
                    assert_eq!(got, Ok(()));
                    held.push_back(len);
                    if held.len() as u64 > capacity {
                        held.pop_front();
                    }
                    tail += 1;
                }
            }
            // receive (try, or recv with a deadline that has passed)
            2..=4 => {
                let Some(sel) = input.byte() else { break };
                if readers.is_empty() {
                    continue;
                }
                let n = readers.len();
                let r = &mut readers[sel as usize % n];
                let short = sel & 0x80 != 0;
                let blocking = op == 4;
                let buf_len = if short {
                    (sel as usize >> 3) % (max + 1)
                } else {
                    max
                };
                let got = if blocking {
                    r.reader.read(&mut buf[..buf_len], Deadline::now())
                } else {
                    r.reader.try_read(&mut buf[..buf_len])
                };
                let oldest = tail - held.len() as u64;
                let expected = if r.cursor < oldest {
                    let missed = oldest - r.cursor;
                    r.cursor = oldest;
                    r.missed += missed;
                    Err(Error::Overrun { missed })
                } else if r.cursor == tail {
                    Err(if blocking {
                        Error::Timeout
                    } else {
                        Error::WouldBlock
                    })
                } else {
                    let len = held[(r.cursor - oldest) as usize];
                    if len > buf_len {
                        Err(Error::BufferTooSmall {
                            needed: len,
                            got: buf_len,
                        })
                    } else {
                        payload(r.cursor, len, &mut want);
                        r.cursor += 1;
                        Ok(len)
                    }
                };
                assert_eq!(got, expected, "receive at model position {}", r.cursor);
                if let Ok(len) = got {
                    assert_eq!(&buf[..len], &want[..len], "message bytes");
                }
                assert_eq!(r.reader.missed_total(), r.missed);
                assert_eq!(r.reader.position(), r.cursor);
            }
            // a reader joins
            5 => {
                if readers.len() < MAX_READERS {
                    let mut reader = Reader::attach(&region).expect("reader attach");
                    reader.set_wait_strategy(WaitStrategy::Blocking);
                    readers.push(ModelReader {
                        reader,
                        cursor: tail,
                        missed: 0,
                    });
                }
            }
            // a reader leaves
            6 => {
                let Some(sel) = input.byte() else { break };
                if !readers.is_empty() {
                    let i = sel as usize % readers.len();
                    readers.swap_remove(i);
                }
            }
            // a writer attaches or detaches
            _ => {
                let Some(sel) = input.byte() else { break };
                if sel & 1 == 0 && writers.len() < MAX_WRITERS {
                    writers.push(Writer::attach(&region).expect("writer attach"));
                } else if !writers.is_empty() {
                    let i = sel as usize % writers.len();
                    writers.swap_remove(i);
                }
            }
        }
        if let Some(r) = readers.first() {
            assert_eq!(r.reader.tail(), Ok(tail));
        }
    }
}

/// Runs an operation script while the input scribbles on shared words between
/// operations. Requires only that every call returns.
pub fn hostile(data: &[u8]) {
    let mut input = Input { data };
    let Some((region, config)) = make_ring(&mut input) else {
        return;
    };
    let max = config.max_message;
    let capacity = config.capacity as u64;
    let Ok(peer) = BroadcastCore::attach(&region) else {
        return;
    };
    let mut writers: Vec<Writer> = Vec::new();
    let mut readers: Vec<Reader> = Vec::new();
    let mut msg = vec![0u8; max + 1];
    let mut buf = vec![0u8; max + 8];
    let mut sent = 0u64;

    while let Some(op) = input.byte() {
        match op % 10 {
            0 | 1 => {
                let Some(len) = input.byte() else { break };
                let len = len as usize % (max + 2);
                if writers.is_empty() {
                    if let Ok(mut w) = Writer::attach(&region) {
                        w.set_stall_limits(Duration::ZERO, Duration::ZERO);
                        writers.push(w);
                    }
                }
                if let Some(w) = writers.last_mut() {
                    payload(sent, len.min(max), &mut msg);
                    let _ = w.write(&msg[..len]);
                    sent += 1;
                }
            }
            2 | 3 => {
                let Some(sel) = input.byte() else { break };
                if readers.is_empty() {
                    if let Ok(r) = Reader::attach(&region) {
                        readers.push(r);
                    }
                }
                if !readers.is_empty() {
                    let i = sel as usize % readers.len();
                    let buf_len = if sel & 0x80 != 0 {
                        (sel as usize >> 3) % (max + 1)
                    } else {
                        max
                    };
                    let got = if op % 10 == 3 {
                        readers[i].set_wait_strategy(WaitStrategy::Blocking);
                        readers[i].read(&mut buf[..buf_len], Deadline::now())
                    } else {
                        readers[i].try_read(&mut buf[..buf_len])
                    };
                    if let Ok(n) = got {
                        assert!(n <= buf_len && n <= max, "delivered {n} bytes");
                    }
                    let _ = readers[i].lag();
                }
            }
            4 => {
                if readers.len() < MAX_READERS {
                    if let Ok(r) = Reader::attach(&region) {
                        readers.push(r);
                    }
                } else {
                    readers.remove(0);
                }
            }
            5 => {
                if writers.len() < MAX_WRITERS {
                    if let Ok(mut w) = Writer::attach(&region) {
                        w.set_stall_limits(Duration::ZERO, Duration::ZERO);
                        writers.push(w);
                    }
                } else {
                    writers.remove(0);
                }
            }
            // Scribble: a slot's stamp, structured near the live positions.
            6 => {
                let (Some(slot), Some(kind), Some(owner)) =
                    (input.byte(), input.byte(), input.byte())
                else {
                    break;
                };
                let t = peer.ctl().tail.tail.load(Ordering::Relaxed);
                let base = t.saturating_sub(capacity) & !peer.mask;
                let pos = base.wrapping_add(slot as u64 % (2 * capacity + 1));
                // The tail itself may be hostile: wrap rather than overflow.
                let writing = pos.wrapping_mul(2).wrapping_add(1);
                let seq = match kind % 4 {
                    0 => writing,
                    1 => writing.wrapping_add(1),
                    2 => kind as u64 >> 2,
                    _ => writing.wrapping_add(1).wrapping_add(kind as u64),
                };
                let word = Stamp::pack(seq & ((1 << 55) - 1), owner as usize, kind & 0x40 != 0);
                peer.slot(slot as u64).stamp.store(word, Ordering::Release);
            }
            // Scribble: a raw stamp, length or data.
            7 => {
                let (Some(slot), Some(what), Some(value)) =
                    (input.byte(), input.byte(), input.u64())
                else {
                    break;
                };
                let header = peer.slot(slot as u64);
                match what % 3 {
                    0 => header.stamp.store(value, Ordering::Release),
                    1 => header
                        .len
                        .store(value % (max as u64 + 4), Ordering::Release),
                    _ => {
                        let bytes = value.to_le_bytes();
                        let n = max.min(8);
                        peer.write_data(slot as u64, &bytes[..n]);
                    }
                }
            }
            // Scribble: the tail.
            8 => {
                let (Some(kind), Some(value)) = (input.byte(), input.u64()) else {
                    break;
                };
                let tail = &peer.ctl().tail.tail;
                let t = tail.load(Ordering::Relaxed);
                let v = match kind % 3 {
                    0 => value,
                    1 => t.wrapping_add(value % 8),
                    _ => t.wrapping_sub(value % 8),
                };
                tail.store(v, Ordering::Release);
            }
            // Scribble: the writer table, config words or reader count.
            _ => {
                let (Some(which), Some(value)) = (input.byte(), input.u64()) else {
                    break;
                };
                let ctl = peer.ctl();
                let value = if which & 0x80 != 0 {
                    value & 0xff
                } else {
                    value
                };
                match which % 8 {
                    0 => ctl.config.magic.store(value, Ordering::Release),
                    1 => ctl.config.capacity.store(value, Ordering::Release),
                    2 => ctl.config.max_message.store(value, Ordering::Release),
                    3 => ctl.config.slot_stride.store(value, Ordering::Release),
                    4 => ctl.config.version.store(value, Ordering::Release),
                    5 => ctl.stats.readers.store(value, Ordering::Release),
                    _ => {
                        let entries = &ctl.writers.owners;
                        let i = (value >> 8) as usize % entries.len();
                        // 0 frees the entry; anything else names some process.
                        entries[i].store(value & 0xffff_0000_00ff, Ordering::Release);
                    }
                }
            }
        }
    }
}
