//! `shm-floor`: the physical floor every case is compared with.
//!
//! Two processes map one section and spin: ping-pong and calls hand a sequence word on
//! one cache line back and forth (the payload sits on the same line, or in a plain
//! buffer for calls); byte streams go through the leanest possible SPSC ring — a head
//! and a tail on their own lines, `memcpy` in, the reader touching the bytes in place
//! (no copy out), no framing, no bounds checks, no liveness, no sleeping. Message
//! streams go through the least a message channel does: a 1 MiB ring with cached
//! indices, an 8-byte length before each message (8-aligned records, a pad record at
//! the end of a lap), one `Release` store of the tail per message, and the reader
//! copying each message out and releasing it with one store of the head. Nothing real
//! can be faster on the same machine, so the distance from this row to culvert's is
//! what culvert's safety, generality and API cost.
//!
//! `pingpong_8B_sleep` has a floor of its own: the same hand-off through a bare futex
//! word, each side waking the other with one `FUTEX_WAKE` and sleeping in
//! `FUTEX_WAIT` — the least a channel whose peer really sleeps can cost.
//!
//! Spin loops never hang: the parent gives up at a deadline, the peer when its parent
//! process is gone.

use std::io;
use std::ptr;
use std::time::{Duration, Instant};

use culvert_section::{Region, Section, SectionOptions};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::{futex, Deadline};

use super::samples::Samples;
use super::work::{self, StreamReport};

/// Name of the floor's section (in the bench's private namespace).
pub const SECTION: &str = "bench-floor";
/// Ring capacity of the stream floor: 64 KiB, like culvert's default pipe buffer and
/// an OS pipe's.
const RING_CAP: usize = 64 * 1024;
/// Offset of the ping-pong / call line.
const LINE: usize = 0;
/// Offset of the futex ping-pong's sequence word (a futex word, so 32 bits).
const FUTEX_LINE: usize = 64;
/// Offsets of the stream ring's tail, head and closed words (one line each).
const TAIL: usize = 128;
const HEAD: usize = 256;
const CLOSED: usize = 384;
/// Start of the data area (ring data, or the call request buffer).
const DATA: usize = 512;
/// Largest call request.
const CALL_REQUEST_MAX: usize = 1 << 20;
/// Call requests rotate through this many buffers, as culvert's view heap (next-fit)
/// rotates its blocks: rewriting the very bytes the peer just read costs a cache-line
/// invalidation in the peer's cache for each line, which no real channel must pay.
const CALL_BUFFERS: usize = 4;
/// Largest call reply (after the request buffers).
const CALL_REPLY_MAX: usize = 64 * 1024;
/// Offset (in the data area) of the reply buffer.
const CALL_REPLY_AT: usize = CALL_BUFFERS * CALL_REQUEST_MAX;
/// Size of the floor's object.
const OBJECT: usize = DATA + CALL_REPLY_AT + CALL_REPLY_MAX;
/// Ring capacity of the message-stream floor (in the data area, which the call buffers
/// use otherwise).
const MSG_RING_CAP: usize = super::spec::MESSAGE_STREAM_BUFFER;
/// Length word of a pad record (the rest of a lap is skipped).
const PAD: u64 = u64::MAX;
const _: () = assert!(MSG_RING_CAP <= CALL_REPLY_AT);

/// Bytes of ring a `len`-byte message's record takes: the length and the payload,
/// rounded up to 8.
fn msg_record(len: usize) -> usize {
    8 + len.div_ceil(8) * 8
}

/// The sequence value that tells the peer to stop.
const STOP: u64 = u64::MAX;

/// Gives up spinning: at a deadline (parent) or when the parent died (peer).
pub struct Guard {
    deadline: Option<Instant>,
    parent: Option<rustix::process::Pid>,
    spins: u32,
}

impl Guard {
    /// The parent's guard: fail after `limit`.
    pub fn parent(limit: Duration) -> Guard {
        Guard {
            deadline: Some(Instant::now() + limit),
            parent: None,
            spins: 0,
        }
    }

    /// The peer's guard: fail once our parent process is gone.
    pub fn peer() -> Guard {
        Guard {
            deadline: None,
            parent: rustix::process::getppid(),
            spins: 0,
        }
    }

    /// Called in every spin; checks now and then.
    #[inline(always)]
    fn spin(&mut self) -> io::Result<()> {
        std::hint::spin_loop();
        self.spins = self.spins.wrapping_add(1);
        if self.spins % (1 << 16) == 0 {
            if let Some(d) = self.deadline {
                if Instant::now() > d {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "shm-floor peer stopped answering",
                    ));
                }
            }
            if self.parent.is_some() && rustix::process::getppid() != self.parent {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the bench parent died",
                ));
            }
        }
        Ok(())
    }
}

/// The floor's shared memory, as seen by one side.
pub struct Floor {
    _section: Section,
    region: Region,
}

impl Floor {
    /// Parent: creates and publishes the section.
    pub fn create(opts: &SectionOptions) -> io::Result<Floor> {
        let _ = Section::unlink(SECTION, opts);
        let mut section =
            Section::create(SECTION, OBJECT as u64 + 4096, opts).map_err(io::Error::other)?;
        let region = section
            .add_object("floor", 1, OBJECT as u64, 4096)
            .map_err(io::Error::other)?;
        section.mark_ready().map_err(io::Error::other)?;
        Ok(Floor {
            _section: section,
            region,
        })
    }

    /// Peer: opens the section.
    pub fn open(opts: &SectionOptions) -> io::Result<Floor> {
        let section = Section::open(SECTION, opts).map_err(io::Error::other)?;
        let region = section.object("floor").map_err(io::Error::other)?;
        if region.len() < OBJECT {
            return Err(io::Error::other("floor object too small"));
        }
        Ok(Floor {
            _section: section,
            region,
        })
    }

    /// The atomic word at `offset` (8-aligned, inside the object).
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= DATA);
        // SAFETY: the object is at least OBJECT bytes (checked at open/create) and
        // 4096-aligned, `offset` is 8-aligned and below DATA; AtomicU64 has the layout
        // of u64; the reference cannot outlive `self`, which keeps the mapping alive.
        unsafe { &*self.region.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// The futex word at `offset` (4-aligned, inside the object).
    fn word32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= DATA);
        // SAFETY: as in `word`: in bounds, aligned, and AtomicU32 has the layout of u32.
        unsafe { &*self.region.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// Parent side of the sleeping ping-pong: publish the odd sequence, wake the
    /// peer, sleep until it publishes the next even one; `gap` idle between rounds.
    pub fn futex_pingpong_client(
        &self,
        gap: Duration,
        warmup: Duration,
        duration: Duration,
    ) -> io::Result<Samples> {
        let seq = self.word32(FUTEX_LINE);
        let give_up = Instant::now() + duration + warmup + Duration::from_secs(30);
        let mut next = 1u32;
        let out = work::timed_loop_with_gaps(warmup, duration, gap, || {
            seq.store(next, Ordering::Release);
            futex::wake(seq, 1);
            loop {
                let s = seq.load(Ordering::Acquire);
                if s == next.wrapping_add(1) {
                    break;
                }
                if Instant::now() > give_up {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "shm-floor peer stopped answering",
                    ));
                }
                let _ = futex::wait(seq, s, Deadline::after(Duration::from_millis(100)));
            }
            next = next.wrapping_add(2);
            Ok(())
        });
        seq.store(u32::MAX, Ordering::Release);
        futex::wake(seq, 1);
        out
    }

    /// Peer side of the sleeping ping-pong.
    pub fn futex_pingpong_server(&self) -> io::Result<()> {
        let seq = self.word32(FUTEX_LINE);
        let parent = rustix::process::getppid();
        let mut expect = 1u32;
        loop {
            let s = seq.load(Ordering::Acquire);
            if s == u32::MAX {
                return Ok(());
            }
            if s != expect {
                if rustix::process::getppid() != parent {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the bench parent died",
                    ));
                }
                let _ = futex::wait(seq, s, Deadline::after(Duration::from_millis(100)));
                continue;
            }
            seq.store(expect.wrapping_add(1), Ordering::Release);
            futex::wake(seq, 1);
            expect = expect.wrapping_add(2);
        }
    }

    /// Pointer to data byte `i`.
    fn data(&self, i: usize) -> *mut u8 {
        debug_assert!(DATA + i <= OBJECT);
        // SAFETY: `DATA + i <= OBJECT <= region.len()`.
        unsafe { self.region.as_ptr().add(DATA + i) }
    }

    /// Parent side of a ping-pong: both sides spin on one line.
    pub fn pingpong_client(&self, warmup: Duration, duration: Duration) -> io::Result<Samples> {
        let seq = self.word(LINE);
        let payload = self.word(LINE + 8);
        let mut guard = Guard::parent(duration + warmup + Duration::from_secs(30));
        let mut next = 1u64;
        let out = work::timed_loop(warmup, duration, || {
            payload.store(next, Ordering::Relaxed);
            seq.store(next, Ordering::Release);
            while seq.load(Ordering::Acquire) != next + 1 {
                guard.spin()?;
            }
            std::hint::black_box(payload.load(Ordering::Relaxed));
            next += 2;
            Ok(())
        });
        seq.store(STOP, Ordering::Release);
        out
    }

    /// Peer side of a ping-pong.
    pub fn pingpong_server(&self) -> io::Result<()> {
        let seq = self.word(LINE);
        let payload = self.word(LINE + 8);
        let mut guard = Guard::peer();
        let mut expect = 1u64;
        loop {
            let s = loop {
                let s = seq.load(Ordering::Acquire);
                if s == expect || s == STOP {
                    break s;
                }
                guard.spin()?;
            };
            if s == STOP {
                return Ok(());
            }
            let v = payload.load(Ordering::Relaxed);
            payload.store(v, Ordering::Relaxed);
            seq.store(expect + 1, Ordering::Release);
            expect += 2;
        }
    }

    /// Parent side of a call: request copied into shared memory, reply copied out.
    pub fn call_client(
        &self,
        request: usize,
        reply: usize,
        warmup: Duration,
        duration: Duration,
    ) -> io::Result<Samples> {
        assert!(request <= CALL_REQUEST_MAX && reply <= CALL_REPLY_MAX);
        let seq = self.word(LINE);
        let req: Vec<u8> = (0..request).map(|i| i as u8).collect();
        let mut rep = vec![0u8; reply];
        let mut guard = Guard::parent(duration + warmup + Duration::from_secs(30));
        let mut next = 1u64;
        let out = work::timed_loop(warmup, duration, || {
            let at = (next / 2) as usize % CALL_BUFFERS * CALL_REQUEST_MAX;
            // SAFETY: the request buffers are ours while the peer waits for an odd
            // sequence; `req` is local; `at + request <= CALL_REPLY_AT`.
            unsafe { ptr::copy_nonoverlapping(req.as_ptr(), self.data(at), request) };
            seq.store(next, Ordering::Release);
            while seq.load(Ordering::Acquire) != next + 1 {
                guard.spin()?;
            }
            // SAFETY: the reply buffer is ours again once the sequence is even; reply
            // <= CALL_REPLY_MAX, so it lies inside the object.
            unsafe { ptr::copy_nonoverlapping(self.data(CALL_REPLY_AT), rep.as_mut_ptr(), reply) };
            next += 2;
            Ok(())
        });
        seq.store(STOP, Ordering::Release);
        std::hint::black_box(&rep);
        out
    }

    /// Peer side of a call: touches the request in place, writes the reply.
    pub fn call_server(&self, request: usize, reply: usize) -> io::Result<()> {
        let seq = self.word(LINE);
        let mut guard = Guard::peer();
        let mut rep = vec![0u8; reply];
        let mut expect = 1u64;
        loop {
            let s = loop {
                let s = seq.load(Ordering::Acquire);
                if s == expect || s == STOP {
                    break s;
                }
                guard.spin()?;
            };
            if s == STOP {
                return Ok(());
            }
            let at = (expect / 2) as usize % CALL_BUFFERS * CALL_REQUEST_MAX;
            // SAFETY: between the odd and the even sequence the request and reply
            // buffers belong to us (the parent spins on the sequence word); both lie
            // inside the object.
            let fold = unsafe { work::touch(std::slice::from_raw_parts(self.data(at), request)) };
            rep[..8].copy_from_slice(&fold.to_ne_bytes());
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(rep.as_ptr(), self.data(CALL_REPLY_AT), reply) };
            seq.store(expect + 1, Ordering::Release);
            expect += 2;
        }
    }

    /// Parent side of a stream: `write`-byte writes into the lean ring for `duration`.
    pub fn stream_writer(&self, write: usize, duration: Duration) -> io::Result<u64> {
        assert!(write <= RING_CAP && RING_CAP % write == 0);
        let (tail_w, head_w) = (self.word(TAIL), self.word(HEAD));
        let buf: Vec<u8> = (0..write).map(|i| i as u8).collect();
        let mut guard = Guard::parent(duration + Duration::from_secs(30));
        let mut tail = tail_w.load(Ordering::Relaxed);
        let mut head = head_w.load(Ordering::Acquire);
        let end = Instant::now() + duration;
        let mut sent = 0u64;
        'outer: loop {
            for _ in 0..16 {
                while RING_CAP as u64 - (tail - head) < write as u64 {
                    head = head_w.load(Ordering::Acquire);
                    guard.spin()?;
                }
                let at = (tail % RING_CAP as u64) as usize;
                // SAFETY: `at + write <= RING_CAP` (RING_CAP is a multiple of `write`
                // and tail advances by `write`), and those bytes are free: the reader
                // released them (head) — the lean ring's whole protocol.
                unsafe { ptr::copy_nonoverlapping(buf.as_ptr(), self.data(at), write) };
                tail += write as u64;
                tail_w.store(tail, Ordering::Release);
                sent += write as u64;
            }
            if Instant::now() >= end {
                break 'outer;
            }
        }
        self.word(CLOSED).store(1, Ordering::Release);
        Ok(sent)
    }

    /// Parent side of a message stream: `len`-byte messages into the framed 1 MiB ring
    /// (in the data area) for `duration`, one tail store per message.
    pub fn message_stream_writer(&self, len: usize, duration: Duration) -> io::Result<u64> {
        let record = msg_record(len);
        assert!(record <= MSG_RING_CAP / 2);
        let (tail_w, head_w) = (self.word(TAIL), self.word(HEAD));
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut guard = Guard::parent(duration + Duration::from_secs(30));
        let mut tail = tail_w.load(Ordering::Relaxed);
        let mut head = head_w.load(Ordering::Acquire);
        let end = Instant::now() + duration;
        let mut sent = 0u64;
        loop {
            for _ in 0..64 {
                let at = (tail % MSG_RING_CAP as u64) as usize;
                let pad = if at + record > MSG_RING_CAP {
                    MSG_RING_CAP - at
                } else {
                    0
                };
                // Cached head: reloaded only when the cached free space is not enough.
                while MSG_RING_CAP as u64 - (tail - head) < (pad + record) as u64 {
                    head = head_w.load(Ordering::Acquire);
                    guard.spin()?;
                }
                if pad > 0 {
                    // SAFETY: `at + 8 <= MSG_RING_CAP` (records and positions are
                    // 8-aligned) in free space the reader released; a pad marker.
                    unsafe { self.data(at).cast::<u64>().write(PAD) };
                    tail += pad as u64;
                }
                let at = (tail % MSG_RING_CAP as u64) as usize;
                // SAFETY: `at + record <= MSG_RING_CAP` (a record never wraps: padded
                // above), in free space the reader released (head), 8-aligned.
                unsafe {
                    self.data(at).cast::<u64>().write(len as u64);
                    ptr::copy_nonoverlapping(msg.as_ptr(), self.data(at + 8), len);
                }
                tail += record as u64;
                tail_w.store(tail, Ordering::Release);
                sent += len as u64;
            }
            if Instant::now() >= end {
                break;
            }
        }
        self.word(CLOSED).store(1, Ordering::Release);
        Ok(sent)
    }

    /// Reader side of both streams: whether bytes past `head` are committed (`tail`
    /// re-read, with Acquire, only when the cached one shows none), spinning until
    /// they are; `false` once the writer closed and everything was read.
    fn readable(&self, head: u64, tail: &mut u64, guard: &mut Guard) -> io::Result<bool> {
        let (tail_w, closed) = (self.word(TAIL), self.word(CLOSED));
        while *tail == head {
            *tail = tail_w.load(Ordering::Acquire);
            if *tail != head {
                break;
            }
            if closed.load(Ordering::Acquire) != 0 {
                *tail = tail_w.load(Ordering::Acquire);
                return Ok(*tail != head);
            }
            guard.spin()?;
        }
        Ok(true)
    }

    /// Peer side of a message stream: copies each message out (into a `max`-byte
    /// buffer), folds its first byte, and releases it with one head store.
    pub fn message_stream_reader(&self, max: usize) -> io::Result<StreamReport> {
        let (tail_w, head_w) = (self.word(TAIL), self.word(HEAD));
        let mut guard = Guard::peer();
        let mut head = head_w.load(Ordering::Relaxed);
        let mut tail = tail_w.load(Ordering::Acquire);
        let mut buf = vec![0u8; max.max(1)];
        let mut report = StreamReport::default();
        let mut start = None;
        while self.readable(head, &mut tail, &mut guard)? {
            if start.is_none() {
                start = Some(Instant::now());
            }
            let at = (head % MSG_RING_CAP as u64) as usize;
            // SAFETY: `head < tail` (read with Acquire): the 8-aligned word at `at` was
            // published by the writer and not yet released.
            let len = unsafe { self.data(at).cast::<u64>().read() };
            if len == PAD {
                head += (MSG_RING_CAP - at) as u64;
                continue;
            }
            let len = (len as usize).min(buf.len()).min(MSG_RING_CAP - at - 8);
            // SAFETY: the record's payload follows its length inside the ring (records
            // never wrap), published and not yet released; `buf` is local.
            unsafe { ptr::copy_nonoverlapping(self.data(at + 8), buf.as_mut_ptr(), len) };
            report.fold ^= u64::from(buf[0]);
            report.bytes += len as u64;
            head += msg_record(len) as u64;
            head_w.store(head, Ordering::Release);
        }
        report.nanos = start.map_or(0, |s: Instant| s.elapsed().as_nanos() as u64);
        Ok(report)
    }

    /// Peer side of a stream: takes up to `read_size` bytes at a time and touches each
    /// in place.
    pub fn stream_reader(&self, read_size: usize) -> io::Result<StreamReport> {
        let (tail_w, head_w) = (self.word(TAIL), self.word(HEAD));
        let mut guard = Guard::peer();
        let mut head = head_w.load(Ordering::Relaxed);
        let mut tail = tail_w.load(Ordering::Acquire);
        let mut report = StreamReport::default();
        let mut start = None;
        while self.readable(head, &mut tail, &mut guard)? {
            if start.is_none() {
                start = Some(Instant::now());
            }
            let at = (head % RING_CAP as u64) as usize;
            let n = ((tail - head) as usize).min(read_size).min(RING_CAP - at);
            // Read in place (no copy out: the floor does the least work possible).
            // SAFETY: `head..head + n` is committed (below the tail read with Acquire)
            // and not yet released, so the writer leaves it alone until we publish
            // the new head; `at + n <= RING_CAP`.
            report.fold ^= unsafe { work::touch(std::slice::from_raw_parts(self.data(at), n)) };
            report.bytes += n as u64;
            head += n as u64;
            head_w.store(head, Ordering::Release);
        }
        report.nanos = start.map_or(0, |s: Instant| s.elapsed().as_nanos() as u64);
        Ok(report)
    }
}
