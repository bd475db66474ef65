//! The body of the `port_heap_hostile` fuzz target: the view heap driven by an honest
//! script while the same input plays a hostile peer scribbling on its shared memory.
//!
//! Byte 0 sizes the heap (1..=32 pages); up to 256 operations follow, 4 bytes (op and
//! arguments) and sometimes a word or two each. Honest calls, as this process or as
//! processes that do not exist (this pid, other start times): `try_alloc` and `alloc`
//! (`Deadline::now()`, a failing liveness check, a 200 µs wait) of many lengths, the
//! block then filled with a pattern; `validate` of descriptors, as is or forged
//! (generation, offset or length off, arbitrary words), by the holder or not; `free`,
//! `take_back_and_free`, `hand_over`; the same on freed blocks; `reclaim_dead`;
//! `stats`; attaching again. Scribbles store arbitrary or nudged values in page
//! entries (holder word, generation, page count, length), header words
//! (configuration, next-fit hint, notifier), any table word, data words.
//!
//! The oracle:
//! * Until the first scribble a model of the blocks (pages, holder, generation,
//!   pattern) predicts every result: an allocation succeeds exactly when enough free
//!   pages run together (for `alloc`, once dead holders' blocks are reclaimed), takes
//!   only free pages and bumps the head's generation; blocks read back byte for byte;
//!   the table words and `stats` match the model after every call; `validate` accepts
//!   exactly a held block's descriptor presented by its holder (anything forged is
//!   `Corrupted`); `free`, `take_back_and_free`, `hand_over` and `reclaim_dead` act
//!   exactly when the caller may.
//! * After it, every call returns within 1 s (`CALL_LIMIT`) a value or a typed error
//!   (`Corrupted` from `validate`, `hand_over`, `attach`; `MessageTooLarge`, `Timeout`
//!   or the liveness check's error from `alloc`), never panics and never touches
//!   memory outside the region (ASan in the fuzz build). A new block has the length
//!   asked, lies inside the heap and its table words name this process; a descriptor
//!   that validates names pages inside the data area, at its offset, with its
//!   generation and length, and those bytes are read.
//!
//! The peer knows the `#[repr(C)]` layout: a 256-byte header (configuration words at
//! 0, 8, 16, next-fit hint at 128, notifier at 136), a 32-byte entry per page (`word`,
//! `gen`, `pages`, `len`), the pages from the next page boundary; the clean phase
//! checks these offsets against what the heap does.

use std::time::Duration;

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{Deadline, ProcessIdentity};

use crate::fuzz_script::{timed, Input};
use crate::Error;
use culvert_section::heap::{pages_for, Block, Descriptor, Heap, HeapError, PAGE};

/// Header bytes, entry bytes, and the entry fields' indices.
const HEADER: usize = 256;
const ENTRY: usize = 32;
const WORD: usize = 0;
const GEN: usize = 1;
const PAGES: usize = 2;
const LEN: usize = 3;
/// `word` bit of a member page.
const MEMBER: u64 = 1 << 31;
/// Header words the peer aims at: hint, notifier, magic, pages, data offset.
const HEADER_WORDS: [usize; 5] = [128, 136, 0, 8, 16];
const MAX_PAGES: usize = 32;
const MAX_OPS: usize = 256;
/// Blocks remembered (the oldest is forgotten past this; never before a scribble,
/// as every block has one of the at most 32 pages), freed blocks remembered.
const MAX_HELD: usize = 48;
const MAX_STALE: usize = 16;
const MAX_MESSAGE: u64 = 1 << 20;
/// Allocations per input that may wait 200 µs.
const MAX_WAITING_ALLOCS: u32 = 2;

/// The `len` bytes written into a block filled with `seed`.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let byte = |i| (u64::from(seed) << 32 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
    (0..len).map(|i| byte(i) as u8).collect()
}

/// Offset of the data area of a heap of `pages` pages.
fn data_offset(pages: usize) -> usize {
    (HEADER + pages * ENTRY).div_ceil(PAGE) * PAGE
}

fn corrupted<T>(r: &std::result::Result<T, HeapError>) -> bool {
    matches!(r, Err(HeapError::Corrupted(_)))
}

/// A block the script knows of: its holder in the model and its pattern (`None`:
/// unknown bytes, a block adopted from `validate` on a scribbled heap).
#[derive(Clone, Copy, Debug)]
struct Held {
    block: Block,
    holder: u64,
    seed: Option<u32>,
}

struct Run {
    heap: Heap,
    /// The region as the peer writes it, and its pages at init.
    region: Region,
    pages: usize,
    /// `[me, dead, dead, dead]`.
    ids: [u64; 4],
    held: Vec<Held>,
    stale: Vec<Block>,
    scribbled: bool,
    seeds: u32,
    waiting_allocs: u32,
}

impl Run {
    /// `holder` when bit 7 of `sel` is clear, else one of the identities.
    fn who(&self, sel: u8, holder: u64) -> u64 {
        [holder, self.ids[usize::from(sel) % 4]][usize::from(sel >> 7)]
    }

    /// The held block `sel` picks (and its index), or with bit 6 a freed one, which
    /// nobody holds (its `holder` is only a default caller).
    fn target(&self, sel: u8) -> Option<(Option<usize>, Block, u64)> {
        if sel & 0x40 != 0 {
            let block = *self.stale.get(usize::from(sel) % self.stale.len().max(1))?;
            return Some((None, block, self.ids[usize::from(sel >> 2) % 4]));
        }
        let i = usize::from(sel & 0x3f) % self.held.len().max(1);
        self.held.get(i).map(|h| (Some(i), h.block, h.holder))
    }

    /// The 8-byte word at `off`, as the peer reaches it.
    fn word(&self, off: usize) -> &AtomicU64 {
        self.region.view(off).expect("word inside the region")
    }

    fn load(&self, page: usize, field: usize) -> u64 {
        self.word(HEADER + page * ENTRY + field * 8)
            .load(Ordering::Acquire)
    }

    /// Which held block owns each page, by the model. Panics on an overlap.
    fn page_map(&self) -> Vec<Option<usize>> {
        let mut map = vec![None; self.heap.total_pages()];
        for (i, h) in self.held.iter().enumerate() {
            for page in &mut map[h.block.head..h.block.head + h.block.pages] {
                assert!(page.replace(i).is_none(), "{h:?} overlaps");
            }
        }
        map
    }

    /// Whether `n` free pages run together in the model.
    fn fits(&self, n: u64) -> bool {
        let map = self.page_map();
        map.split(Option::is_some).any(|run| run.len() as u64 >= n)
    }

    /// Before any scribble: the table and `stats` match the model; with `bytes`,
    /// every block reads back too.
    fn check(&self, bytes: bool) {
        let map = self.page_map();
        for (p, owner) in map.iter().enumerate() {
            let want = owner.map_or(0, |i| match self.held[i] {
                h if h.block.head == p => h.holder,
                h => MEMBER | h.block.head as u64,
            });
            assert_eq!(self.load(p, WORD), want, "word of page {p}");
        }
        for h in &self.held {
            let b = &h.block;
            let entry = [GEN, PAGES, LEN].map(|f| self.load(b.head, f));
            assert_eq!(entry, [b.gen, b.pages as u64, b.len], "head entry of {h:?}");
            if bytes {
                self.read_back(b, h.seed);
            }
        }
        let stats = timed("stats", || self.heap.stats());
        let used = map.iter().flatten().count();
        assert_eq!(stats.total_pages - stats.free_pages, used, "stats");
    }

    /// Reads a block's bytes in place, after checking that they lie inside the data
    /// area where the heap says; before any scribble they must be its pattern.
    fn read_back(&self, b: &Block, seed: Option<u32>) {
        let total = self.heap.total_pages();
        assert!(b.pages >= 1 && b.head + b.pages <= total, "{b:?}");
        assert!(b.len <= (b.pages * PAGE) as u64, "{b:?}");
        let at = self.heap.data_ptr(b) as usize - self.region.as_ptr() as usize;
        assert_eq!(at, data_offset(total) + b.head * PAGE, "data of {b:?}");
        assert!(data_offset(total) + total * PAGE <= self.region.len());
        // SAFETY: the `len <= pages * PAGE` bytes from the block's first byte lie inside
        // the region (asserted above), which `self.region` keeps alive; the body is
        // single-threaded, so nothing writes them while this slice lives.
        let bytes = unsafe { std::slice::from_raw_parts(self.heap.data_ptr(b), b.len as usize) };
        match seed {
            Some(seed) if !self.scribbled => assert!(bytes == pattern(seed, bytes.len()), "{b:?}"),
            _ => _ = std::hint::black_box(bytes.iter().fold(0u8, |a, &x| a ^ x)),
        }
    }

    /// Drops held block `i` (freed) from what the script knows.
    fn forget(&mut self, i: usize) {
        let h = self.held.remove(i);
        if self.stale.len() >= MAX_STALE {
            self.stale.remove(0);
        }
        self.stale.push(h.block);
    }

    fn hold(&mut self, block: Block, holder: u64, seed: Option<u32>) {
        if self.held.len() >= MAX_HELD {
            self.held.remove(0);
        }
        self.held.push(Held {
            block,
            holder,
            seed,
        });
    }

    /// Before any scribble: forgets, after reading them back, the blocks
    /// `reclaim_dead(who)` frees (holders other than `who` and this process).
    fn reclaim_model(&mut self, who: u64) -> usize {
        let me = self.ids[0];
        let (mut n, dead) = (0, |h: &Held| h.holder != who && h.holder != me);
        while let Some(i) = self.held.iter().position(dead) {
            self.read_back(&self.held[i].block, self.held[i].seed);
            self.forget(i);
            n += 1;
        }
        n
    }

    fn alloc(&mut self, how: u8, v: u16, input: &mut Input<'_>) -> Option<()> {
        let (total, me, mode) = (self.heap.total_pages(), self.ids[0], (how >> 2) % 4);
        let len = match how % 4 {
            0 => u64::from(v) % (PAGE as u64 + 1),
            1 => (u64::from(v) % total as u64 + 1) * PAGE as u64,
            2 => u64::from(v) * 7 % ((total + 1) * PAGE) as u64,
            _ => input.u64()?,
        };
        let n = pages_for(len);
        let gens: Vec<u64> = (0..total).map(|p| self.load(p, GEN)).collect();
        let wait = mode == 3 && self.waiting_allocs < MAX_WAITING_ALLOCS;
        self.waiting_allocs += u32::from(wait);
        let (heap, later) = (&self.heap, Deadline::after(Duration::from_micros(200)));
        let got = timed("alloc", || match mode {
            0 => heap.table().try_alloc(len, me).ok_or(Error::WouldBlock),
            2 => heap.alloc(len, me, Deadline::now(), || Err(Error::PeerDied)),
            3 if wait => heap.alloc(len, me, later, || Ok(())),
            _ => heap.alloc(len, me, Deadline::now(), || Ok(())),
        });
        let outcome = match (&got, mode) {
            (Ok(_), _) => "block",
            (Err(Error::WouldBlock), 0) => "none",
            (Err(Error::MessageTooLarge { .. }), 1..) => "too large",
            (Err(Error::PeerDied), 2) => "peer died",
            (Err(Error::Timeout), 1 | 3) => "timeout",
            (Err(e), _) => panic!("alloc({len}) in mode {mode} gave {e:?}"),
        };
        let want = match mode {
            _ if n > total as u64 => Some(if mode == 0 { "none" } else { "too large" }),
            _ if self.scribbled => None,
            _ if self.fits(n) => Some("block"),
            0 => Some("none"),
            2 => Some("peer died"),
            _ if self.reclaim_model(me) > 0 && self.fits(n) => Some("block"),
            _ => Some("timeout"),
        };
        if let Some(want) = want {
            assert_eq!(outcome, want, "alloc({len}) in mode {mode}");
        }
        if let Ok(b) = got {
            assert_eq!((b.len, b.pages as u64), (len, n), "{b:?}");
            assert_eq!(b.gen, gens[b.head].wrapping_add(1), "generation of {b:?}");
            for p in b.head..b.head + b.pages {
                let want = [me, MEMBER | b.head as u64][usize::from(p != b.head)];
                assert_eq!(self.load(p, WORD), want, "word of page {p} in {b:?}");
            }
            assert_eq!([self.load(b.head, PAGES), self.load(b.head, LEN)], [n, len]);
            self.seeds += 1;
            self.read_back(&b, None);
            self.heap.write(&b, 0, &pattern(self.seeds, len as usize));
            self.hold(b, me, Some(self.seeds));
        }
        Some(())
    }

    /// Validates `d` as `who`; with `adopt`, a block validated on a scribbled heap is
    /// held (by `who`) from then on.
    fn validate(&mut self, d: Descriptor, who: u64, max: u64, adopt: bool) {
        let got = timed("validate", || self.heap.table().validate(&d, who, max));
        assert!(got.is_ok() || corrupted(&got), "validate gave {got:?}");
        if !self.scribbled {
            let want = self.held.iter().find(|h| {
                let b = &h.block;
                let room = max.min((b.pages * PAGE) as u64);
                d.offset == (b.head * PAGE) as u64
                    && h.holder == who
                    && b.gen == d.gen
                    && d.len <= room
            });
            let want = want.map(|h| Block {
                len: d.len,
                ..h.block
            });
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{d:?}");
        }
        if let Ok(b) = got {
            let named = ((b.head * PAGE) as u64, b.len, b.gen);
            assert!(named == (d.offset, d.len, d.gen) && b.len <= max, "{d:?}");
            self.read_back(&b, None);
            if adopt && self.scribbled {
                self.hold(b, who, None);
            }
        }
    }

    /// A block's descriptor, as is (`how % 8 == 0`) or forged.
    fn forged(&mut self, sel: u8, how: u8, who: u8, input: &mut Input<'_>) -> Option<()> {
        let (v, page, total) = (input.u64()?, PAGE as u64, self.heap.total_pages() as u64);
        let (mut d, pages, holder) = match self.target(sel) {
            Some((_, b, holder)) => (b.descriptor(), b.pages as u64, holder),
            None => (Descriptor::default(), 1, self.ids[0]),
        };
        match how % 8 {
            0 => {}
            1 => d.gen = d.gen.wrapping_add(1 + v % 3),
            2 => d.gen = d.gen.wrapping_sub(1 + v % 3),
            3 => d.offset = d.offset.wrapping_add((1 + v % 4) * page),
            4 => d.offset = d.offset.wrapping_add(1 + v % (page - 1)),
            5 => d.len = pages * page + 1 + v % page,
            6 => (d.offset, d.gen) = ((v % (total + 4)) * page, (v >> 32) % 4),
            _ => (d.offset, d.len, d.gen) = (v, input.u64()?, input.u64()?),
        }
        let max = [MAX_MESSAGE, v % (2 * page)][usize::from(how >> 7)];
        self.validate(d, self.who(who, holder), max, how & 0x40 != 0);
        Some(())
    }

    /// `free` (`how & 3 == 0`), `take_back_and_free` (1) or `hand_over` (2, 3) of a
    /// block, by its holder or another identity.
    fn release(&mut self, sel: u8, how: u8, who: u8) {
        let Some((i, b, holder)) = self.target(sel) else {
            return;
        };
        let (heap, me, who) = (&self.heap, self.ids[0], self.who(who, holder));
        let legit = i.is_some() && who == holder;
        self.read_back(&b, None);
        let freed = match how & 3 {
            0 => {
                let freed = timed("free", || heap.table().free(&b, who));
                assert!(freed == legit || self.scribbled, "free {b:?}");
                freed
            }
            1 => {
                timed("take_back", || heap.table().take_back_and_free(&b, who, me));
                // It frees exactly when `who` held the block; the table check after
                // the call verifies that.
                legit || self.scribbled
            }
            _ => {
                let to = self.ids[usize::from(how >> 2) % 4];
                let got = timed("hand_over", || heap.table().hand_over(&b, who, to));
                assert!(got.is_ok() || corrupted(&got), "hand_over gave {got:?}");
                assert!(got.is_ok() == legit || self.scribbled, "hand over {b:?}");
                if let (Ok(()), Some(i)) = (got, i) {
                    self.held[i].holder = to;
                }
                false
            }
        };
        if let (true, Some(i)) = (freed, i) {
            self.forget(i);
        }
    }

    fn attach(&mut self) {
        match timed("attach", || Heap::attach(&self.region)) {
            Ok(heap) => {
                let total = heap.total_pages();
                assert!(total <= self.pages && (total == self.pages || self.scribbled));
                self.heap = heap;
                self.held.retain(|h| h.block.head + h.block.pages <= total);
                self.stale.retain(|b| b.head + b.pages <= total);
            }
            Err(e) => assert!(self.scribbled && matches!(e, HeapError::Corrupted(_))),
        }
    }

    /// The peer stores into a page entry (`kind` 0), a header word (1), any word of
    /// the header and table (2) or a data word (3).
    fn scribble(&mut self, kind: u8, at: u8, how: u8, input: &mut Input<'_>) -> Option<()> {
        let v = input.u64()?;
        if !self.scribbled {
            self.check(true);
            self.scribbled = true;
        }
        let (pages, data) = (self.pages as u64, data_offset(self.pages));
        let nudged = |cur: u64| match how % 4 {
            0 => v,
            1 => cur.wrapping_add(1 + v % 4),
            2 => cur.wrapping_sub(1 + v % 4),
            _ => v % (2 * pages + 2),
        };
        let (page, field) = (usize::from(at) % self.pages, usize::from(how >> 2) % 4);
        let off = match kind {
            0 => HEADER + page * ENTRY + field * 8,
            1 => HEADER_WORDS[usize::from(at) % 5],
            2 => usize::from(u16::from_le_bytes(input.bytes()?)) % (data / 8) * 8,
            _ => data + (v >> 8) as usize % (self.pages * PAGE) / 8 * 8,
        };
        let w = self.word(off);
        let value = match (kind, (how >> 4) % 8) {
            (0, 0) => 0,
            (0, 1) => self.ids[0],
            (0, 2) => self.ids[1 + (v % 3) as usize],
            (0, 3) => MEMBER | (v % (pages + 2)),
            (0, 4) if field == LEN => v % ((pages + 1) * PAGE as u64),
            _ => nudged(w.load(Ordering::Relaxed)),
        };
        w.store(value, Ordering::Release);
        Some(())
    }

    /// One operation, `[op, a, b, c]`: `op % 16` 0–2 allocate, 3–4 validate, 5–7 and 9
    /// release, 8 `reclaim_dead`, 10 `stats`, 11 attach, 12–15 scribble.
    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let [op, a, b, c] = input.bytes()?;
        match op % 16 {
            0..=2 => return self.alloc(a, u16::from_le_bytes([b, c]), input),
            3 | 4 => return self.forged(a, b, c, input),
            5..=7 | 9 => self.release(a, b, c),
            8 => {
                let who = self.ids[usize::from(a) % 4];
                let n = timed("reclaim_dead", || self.heap.reclaim_dead(who));
                assert!(n <= self.heap.total_pages());
                assert!(self.scribbled || n == self.reclaim_model(who), "{n}");
            }
            10 => {
                let s = timed("stats", || self.heap.stats());
                assert!(s.free_pages <= s.total_pages && s.total_pages == self.heap.total_pages());
            }
            11 => self.attach(),
            k => return self.scribble(k - 12, a, b, input),
        }
        Some(())
    }

    /// Frees what is left, each block by its holder; before any scribble the heap is
    /// then whole again.
    fn finish(mut self) {
        if !self.scribbled {
            self.check(true);
        }
        for h in std::mem::take(&mut self.held) {
            let freed = timed("free", || self.heap.table().free(&h.block, h.holder));
            assert!(freed || self.scribbled, "{h:?} not freed by its holder");
        }
        let s = self.heap.stats();
        assert!(self.scribbled || s.free_pages == s.total_pages, "leak");
    }
}

/// Runs the script in `data` against a fresh view heap: honest calls (allocate, fill,
/// hand over, validate honest and forged descriptors, free, reclaim dead holders)
/// interleaved with a hostile peer's scribbles on page entries, header and data.
/// Panics when a result differs from the model before the first scribble, or, after
/// it, when a call panics, takes a second, gives an untyped error, or validates a
/// descriptor that does not name memory inside the heap's data area.
pub fn heap_hostile(data: &[u8]) {
    let mut input = Input(data);
    let Some([first]) = input.bytes() else { return };
    let pages = 1 + usize::from(first) % MAX_PAGES;
    let size = Heap::required_size(pages * PAGE).expect("heap size");
    let region = Region::heap(size).expect("region");
    Heap::init(&region, pages * PAGE).expect("heap init");
    let heap = Heap::attach(&region).expect("heap attach");
    let id = ProcessIdentity::me();
    let dead = |k| ProcessIdentity::from_parts(id.pid, id.start_time.wrapping_add(k)).packed();
    let me = culvert_sync::owner::my_owner_id();
    let ids = [me, dead(1), dead(2), dead(3)];
    let mut run = Run {
        heap,
        region,
        pages,
        ids,
        held: Vec::new(),
        stale: Vec::new(),
        scribbled: false,
        seeds: 0,
        waiting_allocs: 0,
    };
    for _ in 0..MAX_OPS {
        if run.step(&mut input).is_none() {
            break;
        }
        if !run.scribbled {
            run.check(false);
        }
    }
    run.finish();
}
