//! Fuzz body for the MPMC message ring against a hostile peer: [`hostile`].
//!
//! The input picks a ring (2..=16 slots, messages of 5..=64 bytes) and then a script
//! of honest operations — sends and receives on up to three producers and three
//! consumers (`try_*`, or blocking calls with `Deadline::now()`), attaching and
//! detaching endpoints, close, `reclaim_dead` — interleaved with scribbles: arbitrary
//! or structured values stored into the slot words (position tag, state, holder), the
//! slot lengths and data, `enqueue_pos` / `dequeue_pos`, the participant table, the
//! configuration words, the close flag and the counters.
//!
//! The oracle:
//! * Until the first scribble, the ring must match a FIFO model exactly: every result
//!   (`Ok`, `WouldBlock`, `Timeout`, `Closed`, `MessageTooLarge`, `BufferTooSmall`),
//!   every message byte, both shared positions, and at the end a drain that returns
//!   every committed message not yet received, once, in order.
//! * After it, every call returns data or a typed runtime error (never `Busy`,
//!   `InvalidConfig`, `Overrun` or `PeerDied`), within one second (`CALL_LIMIT`); a message
//!   received fits the buffer and `max_message`; `BufferTooSmall` names a length in
//!   `buf.len() + 1..=max_message`; an endpoint that reported `Corrupted` never again
//!   returns data. As long as no scribble touched slot lengths or data (and no
//!   endpoint attached to rewritten configuration words, whose geometry would read the
//!   slots differently), a received message is one a producer committed, byte for
//!   byte, or empty (a never-written slot forged `FULL`): forged slot words may replay
//!   or skip messages, never invent one.
//!
//! Offsets of the shared words are those of `mpmc::control`'s `#[repr(C)]` layout; the
//! clean phase checks them against the endpoints' own view after every operation.

use std::collections::VecDeque;

use culvert_section::Region;
use culvert_sync::atomic::Ordering;

use super::hostile::{encode, runtime_error, timed, Committed, Input, Shared, MSG_HEADER};
use crate::mpmc::{Config, MessageReader, MessageRing, MessageWriter};
use crate::Endpoint as _;
use crate::{Deadline, Error};

/// Offsets in the control block.
const ENQUEUE_POS: usize = 128;
const DEQUEUE_POS: usize = 256;
const CLOSED: usize = 640;
const COUNTERS: usize = 648;
const PARTICIPANTS: usize = 768;
/// Configuration words: magic, version | slot_shift, max_message, max_endpoints,
/// slot_stride, participants_offset, slots_offset, total_size.
const CONFIG_WORDS: usize = 8;
const SLOT_STRIDE: usize = 32;
const SLOTS_OFFSET: usize = 48;
/// Data offset inside a slot (after `state: u64, len: u32, reserved: u32`).
const SLOT_DATA: usize = 16;

const MAX_PRODUCERS: usize = 3;
const MAX_CONSUMERS: usize = 3;
const MAX_ENDPOINTS: usize = 8;
/// A pid above any `pid_max`: an identity naming it is always dead.
const DEAD_IDENTITY: u64 = 0x7fff_fff0;

/// A slot word as `mpmc::control` packs it: state in bits 0..2, holder in bits 2..12,
/// position tag (mod 2^52) in bits 12..64.
fn slot_word(tag: u64, state: u64, who: u64) -> u64 {
    (tag << 12) | ((who & 0x3ff) << 2) | (state & 3)
}

/// An endpoint and whether it reported `Corrupted`.
struct Ep<T> {
    end: T,
    poisoned: bool,
}

impl<T> Ep<T> {
    fn new(end: T) -> Self {
        Self {
            end,
            poisoned: false,
        }
    }
}

/// The script's state: endpoints, the model, and what the peer has done so far.
struct Run {
    shared: Shared,
    region: Region,
    /// The configuration words as `init` wrote them.
    config: [u64; CONFIG_WORDS],
    slots: usize,
    max: usize,
    stride: usize,
    slots_offset: usize,
    producers: Vec<Ep<MessageWriter>>,
    consumers: Vec<Ep<MessageReader>>,
    /// Messages committed and not yet received (clean phase only).
    model: VecDeque<Vec<u8>>,
    closed: bool,
    /// Set by the first scribble: from then on only the hostile oracle holds.
    scribbled: bool,
    /// Set once a received message may be made of bytes no producer wrote.
    forged_data: bool,
    committed: Committed,
    next_id: u32,
}

/// Runs the script in `data`; panics when the ring breaks the oracle (module doc).
pub fn hostile(data: &[u8]) {
    let mut input = Input::new(data);
    let (Some(a), Some(b)) = (input.byte(), input.byte()) else {
        return;
    };
    let slots = 1usize << (1 + a % 4);
    let max = MSG_HEADER + (b % 60) as usize;
    let cfg = Config::new(slots, max).with_max_endpoints(MAX_ENDPOINTS);
    let region = Region::heap(MessageRing::required_size(&cfg).unwrap()).unwrap();
    MessageRing::init(&region, &cfg).unwrap();
    let shared = Shared::new(&region);
    let config = std::array::from_fn(|i| shared.u64(8 * i).load(Ordering::Relaxed));
    let stride = shared.u64(SLOT_STRIDE).load(Ordering::Relaxed) as usize;
    let slots_offset = shared.u64(SLOTS_OFFSET).load(Ordering::Relaxed) as usize;
    let mut run = Run {
        producers: vec![Ep::new(MessageWriter::attach(&region).unwrap())],
        consumers: vec![Ep::new(MessageReader::attach(&region).unwrap())],
        shared,
        region,
        config,
        slots,
        max,
        stride,
        slots_offset,
        model: VecDeque::new(),
        closed: false,
        scribbled: false,
        forged_data: false,
        committed: Committed::default(),
        next_id: 0,
    };
    while let Some(op) = input.byte() {
        let done = match op % 16 {
            0..=3 => run.send(&mut input),
            4..=7 => run.recv(&mut input),
            8 => run.churn(&mut input),
            9 => run.close_or_reclaim(&mut input),
            10 => run.scribble_slot(&mut input),
            11 => run.scribble_slot_raw(&mut input),
            12 => run.scribble_slot_contents(&mut input),
            13 => run.scribble_position(&mut input),
            14 => run.scribble_participant(&mut input),
            _ => run.scribble_control(&mut input),
        };
        if done.is_none() {
            break;
        }
        if !run.scribbled {
            run.check_positions();
        }
    }
    if !run.scribbled {
        run.drain();
    }
}

impl Run {
    /// Clean phase: the shared words agree with the model and with the endpoints.
    fn check_positions(&self) {
        let enq = self.shared.u64(ENQUEUE_POS).load(Ordering::Relaxed);
        let deq = self.shared.u64(DEQUEUE_POS).load(Ordering::Relaxed);
        if let Some(p) = self.producers.first() {
            let stats = p.end.stats();
            assert_eq!((stats.enqueue_pos, stats.dequeue_pos), (enq, deq));
            assert_eq!(p.end.is_closed(), self.closed);
        }
        assert_eq!(enq - deq, self.model.len() as u64, "positions vs model");
        let closed = self.shared.u32(CLOSED).load(Ordering::Relaxed);
        assert_eq!(closed != 0, self.closed);
    }

    /// Clean phase, at the end: every message committed and not received comes out
    /// once, in order, and then nothing.
    fn drain(&mut self) {
        if self.consumers.is_empty() {
            self.consumers
                .push(Ep::new(MessageReader::attach(&self.region).unwrap()));
        }
        let c = &mut self.consumers[0].end;
        let mut buf = vec![0u8; self.max];
        for m in self.model.drain(..) {
            let n = timed("drain", || c.try_read(&mut buf)).expect("committed message");
            assert_eq!(&buf[..n], &m[..]);
        }
        let last = timed("drain", || c.try_read(&mut buf));
        assert_eq!(
            last,
            Err(if self.closed {
                Error::Closed
            } else {
                Error::WouldBlock
            })
        );
    }

    fn send(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (len_b, sel) = (input.byte()?, input.byte()?);
        if self.producers.is_empty() {
            return Some(());
        }
        let n = self.producers.len();
        let p = &mut self.producers[sel as usize % n];
        let pmax = p.end.max_message();
        let len = if len_b >= 0xf0 && pmax < u8::MAX as usize {
            pmax + 1 + (len_b & 3) as usize
        } else {
            let low = MSG_HEADER.min(pmax);
            (low + len_b as usize % (pmax - low + 1)).min(u8::MAX as usize)
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = vec![0u8; len];
        encode(id, &mut msg);
        let blocking = sel & 0x80 != 0;
        let got = timed("send", || {
            if blocking {
                p.end.write(&msg, Deadline::now())
            } else {
                p.end.try_write(&msg)
            }
        });
        if !self.scribbled {
            let want = if len > pmax {
                Err(Error::MessageTooLarge { len, max: pmax })
            } else if self.closed {
                Err(Error::Closed)
            } else if self.model.len() == self.slots {
                Err(if blocking {
                    Error::Timeout
                } else {
                    Error::WouldBlock
                })
            } else {
                self.model.push_back(msg);
                Ok(())
            };
            assert_eq!(got, want, "send of {len} bytes");
        } else {
            match &got {
                Ok(()) => assert!(len <= pmax && !p.poisoned, "send accepted"),
                Err(Error::MessageTooLarge { len: l, max }) => {
                    assert!(*l == len && *max == pmax && len > pmax, "{got:?}")
                }
                Err(e) => {
                    assert!(len <= pmax, "{e:?} for an oversized send");
                    assert!(!p.poisoned || matches!(e, Error::Corrupted { .. }), "{e:?}");
                    let typed = runtime_error(e)
                        && !matches!(e, Error::PeerDied | Error::BufferTooSmall { .. });
                    assert!(typed, "send gave {e:?}");
                    assert!(blocking || *e != Error::Timeout, "try_write gave Timeout");
                }
            }
        }
        match got {
            Ok(()) => self.committed.insert(id, len),
            Err(Error::Corrupted { .. }) => p.poisoned = true,
            Err(_) => {}
        }
        Some(())
    }

    fn recv(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (sel, size_b) = (input.byte()?, input.byte()?);
        if self.consumers.is_empty() {
            return Some(());
        }
        let n = self.consumers.len();
        let c = &mut self.consumers[sel as usize % n];
        let cmax = c.end.max_message();
        let cap = cmax.min(300);
        let size = if size_b & 0x80 != 0 {
            size_b as usize % (cap + 2)
        } else {
            cap
        };
        let mode = (sel >> 4) % 3;
        let mut buf = vec![0u8; size];
        let got: Result<Vec<u8>, Error> = timed("recv", || match mode {
            0 => c.end.try_read(&mut buf).map(|n| buf[..n].to_vec()),
            1 => c
                .end
                .read(&mut buf, Deadline::now())
                .map(|n| buf[..n].to_vec()),
            _ => c.end.try_read_with(|m| m.to_vec()),
        });
        let size = if mode == 2 { usize::MAX } else { size };
        if !self.scribbled {
            let want = match self.model.front() {
                None if self.closed => Err(Error::Closed),
                None if mode == 1 => Err(Error::Timeout),
                None => Err(Error::WouldBlock),
                Some(m) if m.len() > size => Err(Error::BufferTooSmall {
                    needed: m.len(),
                    got: size,
                }),
                Some(_) => Ok(self.model.pop_front().unwrap()),
            };
            assert_eq!(got, want, "receive into {size} bytes");
        } else {
            match &got {
                Ok(m) => {
                    assert!(!c.poisoned, "a poisoned consumer returned data");
                    assert!(m.len() <= size && m.len() <= cmax, "{} bytes", m.len());
                    if !self.forged_data {
                        assert!(
                            m.is_empty() || self.committed.holds(m),
                            "a message no producer committed: {m:?}"
                        );
                    }
                }
                Err(Error::BufferTooSmall { needed, got }) => {
                    assert!(!c.poisoned);
                    assert!(
                        *got == size && *needed > size && *needed <= cmax,
                        "{needed}"
                    );
                }
                Err(e) => {
                    assert!(!c.poisoned || matches!(e, Error::Corrupted { .. }), "{e:?}");
                    let typed = runtime_error(e)
                        && !matches!(e, Error::PeerDied | Error::MessageTooLarge { .. });
                    assert!(typed, "receive gave {e:?}");
                    assert!(mode == 1 || *e != Error::Timeout, "try_read gave Timeout");
                }
            }
        }
        if let Err(Error::Corrupted { .. }) = got {
            c.poisoned = true;
        }
        Some(())
    }

    /// Attaches or detaches a producer or a consumer.
    fn churn(&mut self, input: &mut Input<'_>) -> Option<()> {
        let arg = input.byte()?;
        let producer = arg & 1 == 0;
        let detach = arg & 2 != 0;
        let live = self.producers.len() + self.consumers.len();
        if detach {
            if producer && !self.producers.is_empty() {
                let i = (arg >> 2) as usize % self.producers.len();
                self.producers.swap_remove(i);
            } else if !producer && !self.consumers.is_empty() {
                let i = (arg >> 2) as usize % self.consumers.len();
                self.consumers.swap_remove(i);
            }
            return Some(());
        }
        let room = if producer {
            self.producers.len() < MAX_PRODUCERS
        } else {
            self.consumers.len() < MAX_CONSUMERS
        };
        if !room {
            return Some(());
        }
        let region = &self.region;
        let got = timed("attach", || {
            if producer {
                MessageWriter::attach(region).map(|p| self.producers.push(Ep::new(p)))
            } else {
                MessageReader::attach(region).map(|c| self.consumers.push(Ep::new(c)))
            }
        });
        if !self.scribbled {
            assert!(live < MAX_ENDPOINTS);
            got.expect("attach to a clean ring");
        } else {
            match got {
                Ok(()) => {
                    let now: [u64; CONFIG_WORDS] =
                        std::array::from_fn(|i| self.shared.u64(8 * i).load(Ordering::Relaxed));
                    if now != self.config {
                        // This endpoint lays the slots out differently.
                        self.forged_data = true;
                    }
                }
                Err(e) => assert!(
                    matches!(
                        e,
                        Error::Busy { .. } | Error::Corrupted { .. } | Error::InvalidConfig { .. }
                    ),
                    "attach gave {e:?}"
                ),
            }
        }
        Some(())
    }

    fn close_or_reclaim(&mut self, input: &mut Input<'_>) -> Option<()> {
        let arg = input.byte()?;
        let Some(c) = self.consumers.first_mut() else {
            return Some(());
        };
        if arg % 8 == 0 {
            timed("close", || c.end.close());
            self.closed = true;
            return Some(());
        }
        let got = timed("reclaim_dead", || c.end.reclaim_dead());
        let _ = c.end.stats();
        if !self.scribbled {
            assert_eq!(got, Ok(0));
        } else {
            match &got {
                Ok(n) => assert!(*n <= self.slots.max(c.end.slots()), "freed {n}"),
                Err(e) => assert!(matches!(e, Error::Corrupted { .. }), "{e:?}"),
            }
        }
        if got.is_err() {
            self.consumers[0].poisoned = true;
        }
        Some(())
    }

    fn slot_offset(&self, slot: u64) -> usize {
        self.slots_offset + (slot as usize % self.slots) * self.stride
    }

    /// A slot word near the live positions: a tag some laps around the enqueue or
    /// dequeue position (sometimes not of this slot), any state, a plausible holder.
    fn scribble_slot(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (slot, kind, who) = (input.byte()?, input.byte()?, input.byte()?);
        self.scribbled = true;
        let cap = self.slots as u64;
        let i = slot as u64 % cap;
        let at = if kind & 1 == 0 {
            ENQUEUE_POS
        } else {
            DEQUEUE_POS
        };
        let base = self.shared.u64(at).load(Ordering::Relaxed);
        let laps = ((kind >> 1) % 5) as u64;
        let mut tag = (base & !(cap - 1)) | i;
        tag = tag
            .wrapping_add(laps.wrapping_mul(cap))
            .wrapping_sub(2 * cap);
        if kind & 0x80 != 0 {
            tag = tag.wrapping_add(1);
        }
        let state = u64::from((kind >> 4) & 3);
        let who = match who % 4 {
            0 => 0,
            1 => 1 + u64::from(who >> 2) % MAX_ENDPOINTS as u64,
            2 => u64::from(who >> 2),
            _ => 1023,
        };
        let off = self.slot_offset(i);
        self.shared
            .u64(off)
            .store(slot_word(tag, state, who), Ordering::Release);
        Some(())
    }

    fn scribble_slot_raw(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (slot, value) = (input.byte()?, input.u64()?);
        self.scribbled = true;
        let off = self.slot_offset(u64::from(slot));
        self.shared.u64(off).store(value, Ordering::Release);
        Some(())
    }

    /// A slot's length word or eight of its data bytes.
    fn scribble_slot_contents(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (slot, what, value) = (input.byte()?, input.byte()?, input.u64()?);
        self.scribbled = true;
        self.forged_data = true;
        let off = self.slot_offset(u64::from(slot));
        if what & 1 == 0 {
            let len = if what & 2 == 0 {
                (value % (self.max as u64 + 4)) as u32
            } else {
                value as u32
            };
            self.shared.u32(off + 8).store(len, Ordering::Release);
        } else {
            let at = (what as usize >> 1) % self.max.max(1);
            let end = off + SLOT_DATA + self.max;
            let bytes = value.to_le_bytes();
            let n = (end - (off + SLOT_DATA + at)).min(8);
            self.shared.write_bytes(off + SLOT_DATA + at, &bytes[..n]);
        }
        Some(())
    }

    /// `enqueue_pos` or `dequeue_pos`: arbitrary, nudged, or set from the other.
    fn scribble_position(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (which, value) = (input.byte()?, input.u64()?);
        self.scribbled = true;
        let (at, other) = if which & 1 == 0 {
            (ENQUEUE_POS, DEQUEUE_POS)
        } else {
            (DEQUEUE_POS, ENQUEUE_POS)
        };
        let word = self.shared.u64(at);
        let cur = word.load(Ordering::Relaxed);
        let peer = self.shared.u64(other).load(Ordering::Relaxed);
        let small = value % (2 * self.slots as u64 + 2);
        let v = match (which >> 1) % 5 {
            0 => value,
            1 => cur.wrapping_add(small),
            2 => cur.wrapping_sub(small),
            3 => peer.wrapping_add(small),
            _ => peer.wrapping_sub(small),
        };
        word.store(v, Ordering::Release);
        Some(())
    }

    /// A participant entry: free, this process, a dead process, or anything.
    fn scribble_participant(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (which, value) = (input.byte()?, input.u64()?);
        self.scribbled = true;
        let i = (which >> 2) as usize % MAX_ENDPOINTS;
        let v = match which % 4 {
            0 => 0,
            1 => culvert_sync::owner::my_owner_id(),
            2 => DEAD_IDENTITY,
            _ => value,
        };
        self.shared
            .u64(PARTICIPANTS + 8 * i)
            .store(v, Ordering::Release);
        Some(())
    }

    /// A configuration word, the close flag or a counter.
    fn scribble_control(&mut self, input: &mut Input<'_>) -> Option<()> {
        let (which, value) = (input.byte()?, input.u64()?);
        self.scribbled = true;
        let value = if which & 0x80 != 0 {
            value & 0xff
        } else {
            value
        };
        match which % 12 {
            i @ 0..=7 => {
                let word = self.shared.u64(8 * i as usize);
                let v = if which & 0x40 != 0 {
                    // A small change to a plausible word.
                    self.config[i as usize] ^ (1 << (value % 64))
                } else {
                    value
                };
                word.store(v, Ordering::Release);
            }
            8 => {
                let v = if which & 0x40 != 0 { 0 } else { value as u32 };
                self.shared.u32(CLOSED).store(v, Ordering::Release);
            }
            w => {
                let off = COUNTERS + 8 * (w as usize - 9);
                self.shared.u64(off).store(value, Ordering::Release);
            }
        }
        debug_assert!(self.shared.len() >= PARTICIPANTS + 8 * MAX_ENDPOINTS);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clean scripts exercise the offsets: `check_positions` compares them with the
    /// endpoints' stats after every operation.
    #[test]
    fn clean_scripts_run_exactly() {
        // 4 slots, 20-byte messages: sends, receives, a full ring, a close, a drain.
        let mut script = vec![1u8, 15];
        for i in 0..6u8 {
            script.extend([0, i * 9, i]);
        }
        script.extend([4, 0, 0, 5, 0x85, 3, 6, 0x20, 0, 9, 0]);
        hostile(&script);
    }

    #[test]
    fn scribbled_slot_words_give_typed_results() {
        let mut script = vec![2u8, 30, 0, 10, 0, 1, 0, 10, 1, 0x21, 5];
        script.extend([4, 0, 0, 4, 1, 0, 13, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]);
        hostile(&script);
    }
}
