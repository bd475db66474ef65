//! The body of the `mailslot_hostile` fuzz target: a mailslot and a broadcast group
//! driven by an honest script while the same input plays a hostile peer scribbling on
//! their sections.
//!
//! Bytes 0 and 1 size both (capacity 1..=8 messages from byte 0, rounded up to a
//! power of two; `max_message_size` 1..=64 from byte 1 when bit 3 of byte 0 is set,
//! else 16); up to 192 operations follow, 4 bytes each (op and arguments), a scribble
//! 10 more. Everything runs in this process and thread, in a namespace directory of its
//! own (one per input, under `$TMPDIR`, else `/dev/shm`, removed after it). Honest
//! calls: writers open, write messages of input-chosen lengths (up to `max + 1`) and
//! drop; the reader reads (`try_read`, `read` with a zero or a 200 µs timeout) into
//! buffers of input-chosen sizes, asks `info`, is dropped and created again (and `create` of a live name is
//! tried); group readers join, read, ask `info` and leave; senders open, send and
//! drop, and `broadcast_with` sends once. Scribbles store arbitrary, nudged, zero,
//! small, this process's or a dead process's values into any word of the
//! `MailslotControl` (config line, `dropped`, `reclaimer`), of the `GroupControl`
//! (config line, `closing`, member table) and of either ring (header and slots), through
//! a mapping the peer opens itself. A live identity is never stored in `closing`: a
//! live remover holds joiners off for the open timeout (5 s) by design.
//!
//! The oracle:
//! * Until the first scribble a model predicts every result. The mailslot is one FIFO
//!   (one thread, so every writer's order is the global order): a write is delivered
//!   whole while fewer than `capacity` messages are in the ring, else `Full`;
//!   `MessageTooLarge` past `max_message_size`; `Closed` for writers of a reader that
//!   is gone, `NotFound` to open one then. Reads return the oldest message byte for
//!   byte, `BufferTooSmall` (message kept) into a short buffer, `WouldBlock` or
//!   `Timeout` when empty; `info` gives the next size, the count and `dropped` exactly
//!   (an empty message `info` peeked is held by the reader for the next read and no
//!   longer takes ring room). Each group reader sees every message sent since it
//!   joined; one that fell more than `capacity` behind gets `Overrun { missed }` with
//!   the exact count (a count `info` found first, on its own), then the oldest message
//!   still held; the group goes away with its last reader (senders get `Closed`, new
//!   ones `NotFound`). Accounting holds exactly: written = delivered + queued, and
//!   `dropped` = the writes reported `Full`; per group reader, sent since it joined =
//!   delivered + missed + queued; at the end both drain to zero.
//! * After it, every call returns within 1 s (`CALL_LIMIT`) a value or a typed error of the
//!   kinds its contract names (`Corrupted`, `Closed`, `PeerDied`, ...), never panics;
//!   a read returns at most its buffer's length and the configured maximum; `info`
//!   reports a size within the maximum and a count within the capacity (plus a held
//!   message); opening a writer, a sender or joining a scribbled section works or fails
//!   typed (`Corrupted`, `NotFound`, `Busy`, or `InvalidArgument` for a ring layout
//!   version it does not know).
//!
//! The peer knows the `#[repr(C)]` layouts: `MailslotControl` is 256 bytes (config
//! line: magic, version and flags, `max_message_size`, `capacity`; then `dropped` at
//! 128, `reclaimer` at 136); `GroupControl` is the same config line, `closing` at 128,
//! and 240 member words from 256.

use std::collections::VecDeque;
use std::time::Duration;

use culvert_section::Section;
use culvert_sync::atomic::{AtomicU64, Ordering, StaticCounter};
use culvert_sync::ProcessIdentity;

use super::layout::{word_alive, GROUP_KIND, GROUP_OBJ, MAILSLOT_KIND, MAILSLOT_OBJ, RING_OBJ};
use super::{
    broadcast_with, join, section_options, BroadcastSender, MailslotOptions, MailslotReader,
    MailslotWriter, MAX_GROUP_MEMBERS,
};
use crate::fuzz_script::{timed, Input, Root};
use crate::Error;

const MAX_OPS: usize = 192;
const MAX_WRITERS: usize = 4;
const MAX_MEMBERS: usize = 3;
const MAX_SENDERS: usize = 2;
/// The timeout of a waiting read, and how many of those an input may make.
const WAIT: Duration = Duration::from_micros(200);
const MAX_WAITING_READS: u32 = 4;
/// Offset of `closing` in a `GroupControl`; its size in words.
const CLOSING: usize = 128;
const GROUP_WORDS: usize = 32 + MAX_GROUP_MEMBERS;

static NAMES: StaticCounter = StaticCounter::new();

mod group;

/// The `len` bytes of message `tag`.
fn pattern(tag: u64, len: usize) -> Vec<u8> {
    let byte = |i| (tag << 24 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
    (0..len).map(|i| byte(i) as u8).collect()
}

/// A group reader and what the model expects it to read.
struct Member {
    reader: MailslotReader,
    /// Messages sent since it joined and not yet read or counted missed.
    queue: VecDeque<Vec<u8>>,
    /// Missed messages `info` found and the next read reports.
    pending_missed: u64,
    /// `info` took the empty message at the front out of the ring (it holds it for the
    /// next read; it no longer takes ring room).
    held: bool,
    sent: u64,
    delivered: u64,
    missed: u64,
}

struct Run {
    opts: MailslotOptions,
    cap: usize,
    max: usize,
    slot: String,
    group: String,
    reader: Option<MailslotReader>,
    /// Bumped each time the reader goes; writers remember the one they opened.
    slot_gen: u32,
    writers: Vec<(MailslotWriter, u32)>,
    queue: VecDeque<Vec<u8>>,
    /// `info` holds the empty message at the front of `queue` out of the ring.
    held: bool,
    /// Of the current reader: writes delivered to the ring, `Full`s, reads.
    written: u64,
    fulls: u64,
    delivered: u64,
    members: Vec<Member>,
    /// Bumped each time the group goes (its last reader left).
    group_gen: u32,
    senders: Vec<(BroadcastSender, u32)>,
    /// `[me, dead, dead]`.
    ids: [u64; 3],
    tags: u64,
    scribbled: bool,
    waiting_reads: u32,
}

/// Whether `r` is an error of one of the kinds a call may give after a scribble.
fn typed<T>(r: &crate::Result<T>, allowed: fn(&Error) -> bool) -> bool {
    r.as_ref().err().is_none_or(allowed)
}

/// Whether `e` is an error opening a writer or sender, or joining, may give after a
/// scribble. A ring whose layout version was scribbled is `InvalidArgument` (the ring
/// crate's word for a version it does not know).
fn opening_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupted { .. }
            | Error::NotFound { .. }
            | Error::Busy { .. }
            | Error::InvalidArgument { .. }
    )
}

impl Run {
    fn tag(&mut self) -> u64 {
        self.tags += 1;
        self.tags
    }

    fn open_writer(&mut self) {
        let got = timed("open writer", || {
            MailslotWriter::open_with(&self.slot, &self.opts)
        });
        if !self.scribbled {
            match (&got, &self.reader) {
                (Ok(w), Some(_)) => assert_eq!(w.max_message_size(), self.max),
                (Err(Error::NotFound { .. }), None) => {}
                (r, _) => panic!("open writer gave {r:?} (reader: {})", self.reader.is_some()),
            }
        }
        assert!(typed(&got, opening_error), "open writer gave {got:?}");
        if let Ok(w) = got {
            if self.writers.len() >= MAX_WRITERS {
                self.writers.remove(0);
            }
            self.writers.push((w, self.slot_gen));
        }
    }

    fn write(&mut self, sel: u8, len: u8) {
        if self.writers.is_empty() {
            return;
        }
        let i = usize::from(sel) % self.writers.len();
        let len = usize::from(len) % (self.max + 2);
        let msg = pattern(self.tag(), len);
        let (w, gen) = &mut self.writers[i];
        let got = timed("write", || w.write(&msg));
        let live = *gen == self.slot_gen && self.reader.is_some();
        match &got {
            Err(Error::MessageTooLarge { len: l, max }) => {
                assert!(*l == len && *max == self.max && len > self.max, "{got:?}");
            }
            _ => assert!(len <= self.max, "write of {len} gave {got:?}"),
        }
        if !self.scribbled {
            let want = match () {
                _ if len > self.max => "too large",
                _ if !live => "closed",
                _ if self.queue.len() - usize::from(self.held) >= self.cap => "full",
                _ => "ok",
            };
            let outcome = match &got {
                Ok(()) => "ok",
                Err(Error::MessageTooLarge { .. }) => "too large",
                Err(Error::Closed) => "closed",
                Err(Error::Full) => "full",
                Err(e) => panic!("write gave {e:?}"),
            };
            assert_eq!(outcome, want, "write of {len} bytes");
            match outcome {
                "ok" => {
                    self.written += 1;
                    self.queue.push_back(msg);
                }
                "full" => self.fulls += 1,
                _ => {}
            }
        }
        assert!(
            typed(&got, |e| matches!(
                e,
                Error::MessageTooLarge { .. }
                    | Error::Closed
                    | Error::Full
                    | Error::PeerDied
                    | Error::Corrupted { .. }
            )),
            "write gave {got:?}"
        );
    }

    /// How a read waits: `try_read` (0), no time (1), a little (2).
    fn read_mode(&mut self, how: u8) -> u8 {
        let mode = how % 3;
        if mode == 2 && self.waiting_reads >= MAX_WAITING_READS {
            return 1;
        }
        self.waiting_reads += u32::from(mode == 2);
        mode
    }

    /// Reads from `reader` in `mode` into a buffer of `len` bytes; checks what any read
    /// must satisfy.
    fn read_from(
        reader: &mut MailslotReader,
        mode: u8,
        len: usize,
        max: usize,
    ) -> (crate::Result<usize>, Vec<u8>) {
        let mut buf = vec![0u8; len];
        let got = timed("read", || match mode {
            0 => reader.try_read(&mut buf),
            _ => {
                reader.set_read_timeout(Some([Duration::ZERO, WAIT][usize::from(mode == 2)]));
                reader.read(&mut buf)
            }
        });
        if let Ok(n) = got {
            assert!(
                n <= len && n <= max,
                "read {n} bytes into {len} (max {max})"
            );
            buf.truncate(n);
        }
        if let Err(Error::BufferTooSmall { needed, .. }) = got {
            assert!(needed > len && needed <= max, "needed {needed} for {len}");
        }
        assert!(
            typed(&got, |e| matches!(
                e,
                Error::BufferTooSmall { .. }
                    | Error::Closed
                    | Error::PeerDied
                    | Error::Corrupted { .. }
                    | Error::Overrun { .. }
                    | Error::WouldBlock
                    | Error::Timeout
            )),
            "read in mode {mode} gave {got:?}"
        );
        // `try_read` says `WouldBlock`, `read` says `Timeout`.
        let wrong = matches!(got, Err(Error::Timeout) if mode == 0)
            || matches!(got, Err(Error::WouldBlock) if mode != 0);
        assert!(!wrong, "read in mode {mode} gave {got:?}");
        (got, buf)
    }

    /// Checks a read before any scribble against the front of `queue` (after `missed`
    /// messages the reader has to be told of); pops what it consumed.
    fn expect_read(
        queue: &mut VecDeque<Vec<u8>>,
        missed: u64,
        got: &crate::Result<usize>,
        buf: &[u8],
        mode: u8,
        len: usize,
    ) -> (u64, bool) {
        if missed > 0 {
            assert!(
                matches!(got, Err(Error::Overrun { missed: m }) if *m == missed),
                "read gave {got:?}, want {missed} missed"
            );
            return (missed, false);
        }
        match queue.front() {
            None => {
                let empty = matches!(got, Err(Error::WouldBlock) if mode == 0)
                    || matches!(got, Err(Error::Timeout) if mode != 0);
                assert!(empty, "read of an empty queue in mode {mode} gave {got:?}");
                (0, false)
            }
            Some(m) if m.len() > len => {
                assert!(
                    matches!(got, Err(Error::BufferTooSmall { needed, .. }) if *needed == m.len()),
                    "read of {} into {len} gave {got:?}",
                    m.len()
                );
                (0, false)
            }
            Some(m) => {
                assert_eq!(got.as_ref().ok(), Some(&m.len()), "read");
                assert!(buf == &m[..], "message bytes differ");
                queue.pop_front();
                (0, true)
            }
        }
    }

    fn read(&mut self, how: u8, len: u8) {
        let mode = self.read_mode(how);
        let (len, max) = (usize::from(len) % (self.max + 2), self.max);
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        let (got, buf) = Self::read_from(reader, mode, len, max);
        assert!(
            !matches!(got, Err(Error::Overrun { .. })),
            "mailslot read gave {got:?}"
        );
        if !self.scribbled {
            let (_, read) = Self::expect_read(&mut self.queue, 0, &got, &buf, mode, len);
            self.delivered += u64::from(read);
            self.held &= !read;
        }
    }

    fn info(&mut self) {
        let (cap, max) = (self.cap as u64, self.max);
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        let got = timed("info", || reader.info());
        match &got {
            Ok(i) => {
                assert!(i.next_message_size.is_none_or(|n| n <= max), "{i:?}");
                assert!(i.message_count <= cap + 1, "{i:?}");
            }
            Err(e) => assert!(
                matches!(e, Error::Corrupted { .. } | Error::Closed | Error::PeerDied),
                "info gave {e:?}"
            ),
        }
        if !self.scribbled {
            let i = got.expect("info");
            assert_eq!(
                i.next_message_size,
                self.queue.front().map(Vec::len),
                "{i:?}"
            );
            assert_eq!(i.message_count, self.queue.len() as u64, "{i:?}");
            assert_eq!(i.dropped, self.fulls, "{i:?}");
            self.held = self.queue.front().is_some_and(Vec::is_empty);
        }
    }

    /// Drops the reader (`how % 4 == 3`: leaves none), creates it again, or (1) tries
    /// to create a second reader of a live name.
    fn recreate(&mut self, how: u8) {
        if how % 4 == 1 {
            let got = timed("create", || MailslotReader::create(&self.slot, &self.opts));
            match (&got, &self.reader) {
                (Err(Error::AlreadyExists { .. }), Some(_)) => {}
                (Ok(_), None) => {}
                (r, _) if self.scribbled => {
                    assert!(
                        typed(r, |e| matches!(
                            e,
                            Error::AlreadyExists { .. } | Error::Corrupted { .. }
                        )),
                        "create gave {r:?}"
                    );
                }
                (r, _) => panic!("create gave {r:?}"),
            }
            if let (Ok(r), None) = (got, &self.reader) {
                self.reader = Some(r);
                self.slot_gen += 1;
            }
            return;
        }
        if self.reader.is_some() {
            self.slot_gen += 1;
            if !self.scribbled {
                self.check_slot_accounting();
            }
            timed("drop reader", || self.reader = None);
            self.queue.clear();
            self.held = false;
            (self.written, self.fulls, self.delivered) = (0, 0, 0);
        }
        if how % 4 != 3 {
            let got = timed("create", || MailslotReader::create(&self.slot, &self.opts));
            assert!(self.scribbled || got.is_ok(), "create gave {got:?}");
            assert!(
                typed(&got, |e| matches!(
                    e,
                    Error::AlreadyExists { .. } | Error::Corrupted { .. }
                )),
                "create gave {got:?}"
            );
            self.reader = got.ok();
        }
    }

    fn check_slot_accounting(&self) {
        assert_eq!(
            self.written,
            self.delivered + self.queue.len() as u64,
            "mailslot accounting"
        );
    }

    /// The peer stores into a word of the mailslot control block (`kind` 0), the group
    /// control block (1), the mailslot's ring (2) or the group's ring (3).
    fn scribble(&mut self, kind: u8, how: u8, input: &mut Input<'_>) -> Option<()> {
        let v = input.u64()?;
        let at = usize::from(u16::from_le_bytes(input.bytes()?));
        if !self.scribbled {
            self.check_all();
            self.scribbled = true;
        }
        let (name, sk, obj) = match kind % 4 {
            0 => (&self.slot, MAILSLOT_KIND, MAILSLOT_OBJ),
            1 => (&self.group, GROUP_KIND, GROUP_OBJ),
            2 => (&self.slot, MAILSLOT_KIND, RING_OBJ),
            _ => (&self.group, GROUP_KIND, RING_OBJ),
        };
        let Ok(section) = Section::open(name, &section_options(self.opts.root.as_deref(), sk))
        else {
            return Some(());
        };
        let Ok(region) = section.object(obj) else {
            return Some(());
        };
        let words = region.len() / 8;
        let off = match kind % 4 {
            0 => at % 32 * 8,
            1 => at % GROUP_WORDS * 8,
            // Ring header and first slots more often than the rest.
            _ if how & 0x80 != 0 => at % words.min(128) * 8,
            _ => at % words.max(1) * 8,
        };
        let Some(w) = region.view::<AtomicU64>(off) else {
            return Some(());
        };
        let cur = w.load(Ordering::Relaxed);
        let mut value = match how % 8 {
            0 => v,
            1 => cur.wrapping_add(1 + v % 4),
            2 => cur.wrapping_sub(1 + v % 4),
            3 => 0,
            4 => self.ids[0],
            5 => self.ids[1 + (v % 2) as usize],
            6 => v % 80,
            _ => cur ^ (1 << (v % 64)),
        };
        if kind % 4 == 1 && off == CLOSING && (value == self.ids[0] || word_alive(value)) {
            value = self.ids[1];
        }
        w.store(value, Ordering::Release);
        Some(())
    }

    /// Before any scribble: `info` of every reader matches the model.
    fn check_all(&mut self) {
        if self.reader.is_some() {
            self.info();
            self.check_slot_accounting();
        }
        for i in 0..self.members.len() {
            self.group_info(i as u8);
            Self::check_member_accounting(&self.members[i]);
        }
    }

    /// One operation, `[op, a, b, c]`: `op % 16` 0 opens a writer, 1 drops one, 2–3
    /// write, 4 reads, 5 `info`, 6 drops or creates the reader, 7 joins the group, 8
    /// leaves, 9 opens a sender (or broadcasts once), 10 sends, 11 reads a group reader,
    /// 12 its `info`, 13–15 scribble.
    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let [op, a, b, c] = input.bytes()?;
        match op % 16 {
            0 => self.open_writer(),
            1 => {
                if !self.writers.is_empty() {
                    let w = self.writers.remove(usize::from(a) % self.writers.len());
                    timed("drop writer", || drop(w));
                }
            }
            2 | 3 => self.write(a, b),
            4 => self.read(a, b),
            5 => self.info(),
            6 => self.recreate(a),
            7 => self.join(),
            8 => self.leave(a),
            9 => self.open_sender(a, b),
            10 => self.send(a, b),
            11 => self.group_read(a, b, c),
            12 => self.group_info(a),
            _ => return self.scribble(a, b, input),
        }
        Some(())
    }

    /// Before any scribble: drains every reader, each message as the model says, and
    /// checks the accounting comes to zero. Then drops everything.
    fn finish(mut self) {
        if !self.scribbled {
            let len = self.max as u8 + 1;
            while !self.queue.is_empty() {
                self.read(0, len);
            }
            self.info();
            self.check_slot_accounting();
            for i in 0..self.members.len() {
                while self.members[i].queue.len() + self.members[i].pending_missed as usize > 0 {
                    self.group_read(i as u8, 0, len);
                }
                self.group_read(i as u8, 0, len);
                let m = &self.members[i];
                assert_eq!(m.sent, m.delivered + m.missed, "group accounting");
            }
        }
        let Run {
            reader,
            writers,
            members,
            senders,
            ..
        } = self;
        timed("drop", || drop((writers, senders, members, reader)));
    }
}

/// Runs the script in `data` against a fresh mailslot and broadcast group: honest
/// writers, readers, group readers and senders, interleaved with a hostile peer's
/// scribbles on their control blocks and rings. Panics when a result differs from the
/// model before the first scribble, or, after it, when a call panics, takes a second,
/// gives an error of a kind it may not, or returns more bytes than its buffer or the
/// configured maximum.
pub fn hostile(data: &[u8]) {
    let mut input = Input(data);
    let Some([first, second]) = input.bytes() else {
        return;
    };
    let cap = (1 + usize::from(first) % 8).next_power_of_two().max(2);
    let max = [16, 1 + usize::from(second) % 64][usize::from(first & 8 != 0)];
    let n = NAMES.next();
    let root = Root::new("mailslot", n);
    let opts = MailslotOptions::new()
        .capacity(1 + usize::from(first) % 8)
        .max_message_size(max)
        .read_timeout(Duration::ZERO)
        .root(&root.0);
    let slot = format!("ms{n}");
    let reader = timed("create", || MailslotReader::create(&slot, &opts)).expect("create mailslot");
    assert_eq!((reader.capacity(), reader.max_message_size()), (cap, max));
    let id = ProcessIdentity::me();
    let dead = |k| ProcessIdentity::from_parts(id.pid, id.start_time.wrapping_add(k)).packed();
    let mut run = Run {
        opts,
        cap,
        max,
        slot,
        group: format!("grp{n}"),
        reader: Some(reader),
        slot_gen: 0,
        writers: Vec::new(),
        queue: VecDeque::new(),
        held: false,
        written: 0,
        fulls: 0,
        delivered: 0,
        members: Vec::new(),
        group_gen: 0,
        senders: Vec::new(),
        ids: [culvert_sync::owner::my_owner_id(), dead(1), dead(2)],
        tags: 0,
        scribbled: false,
        waiting_reads: 0,
    };
    for _ in 0..MAX_OPS {
        if run.step(&mut input).is_none() {
            break;
        }
    }
    run.finish();
    drop(root);
}
