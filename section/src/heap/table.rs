//! The view heap's allocator: the lock-free protocol on a table of page entries.
//!
//! [`PageTable`] is the whole concurrent algorithm and nothing else: it borrows a slice
//! of [`PageEntry`] (one per page) and the [`HotLine`] (next-fit hint, "freed"
//! notifier), wherever they live — in a mapped region ([`Heap`](super::Heap)) or, for
//! the loom models, on the heap of one process.
//!
//! A *block* is a run of pages. Its first page (the *head*) has `word` = the packed
//! identity of the process that holds the block; its other pages have
//! `word = MEMBER | head`. A free page has `word = 0`. Pages are claimed one by one
//! with compare-exchanges from 0, head first, so at every instant each claimed page
//! names its block and the head names a holder:
//!
//! * **allocate**: find a run of free pages (next-fit from the hint), CAS the head
//!   `0 → me`, then each member `0 → MEMBER|head` (on a lost race, give the claimed
//!   pages back and look further), then bump the head's generation and record the page
//!   count and length;
//! * **hand over**: before a descriptor `{offset, len, generation}` is published, the
//!   sender CASes the head `me → receiver`; the receiver validates a descriptor
//!   against the entry (holder is itself, generation matches, pages in bounds, length
//!   fits); anything else is `Corrupted`, never a read of another block;
//! * **free** (the holder): members are zeroed from the last to the first, the head
//!   last;
//! * **reclaim**: a head naming a dead holder is CASed to the reclaimer, which frees
//!   the block like its holder would: the members still naming the head always form a
//!   contiguous run after it (claims go forwards, frees backwards), so a process killed
//!   anywhere in allocate, free or reclaim leaks nothing once it is found dead.
//!
//! Every word is untrusted: indices, page counts and generations read from the table
//! are bounds-checked before use, and every loop is bounded by the page count.

use std::collections::HashMap;

use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::Notifier;

use super::{HeapError, PAGE};

/// `word` bit that marks a member page (a holder identity never has bit 31 set).
pub const MEMBER: u64 = 1 << 31;

/// One page's entry. Only `word` is meaningful on member pages.
#[repr(C)]
#[derive(Debug)]
pub struct PageEntry {
    /// 0: free. On a head page: packed identity of the holder (never with bit 31
    /// set). On a member page: `MEMBER | head index`.
    /// Invariant (honest peers): the members of a block form a contiguous run right
    /// after its head; a head is cleared only after all its members.
    pub(super) word: AtomicU64,
    /// Head pages: generation of the block, bumped by every allocation at this head.
    pub(super) gen: AtomicU64,
    /// Head pages: pages of the block. Invariant: `head + pages <= heap pages`.
    pub(super) pages: AtomicU64,
    /// Head pages: payload length. Invariant: `<= pages * PAGE`.
    pub(super) len: AtomicU64,
}

impl Default for PageEntry {
    fn default() -> Self {
        Self::new()
    }
}

impl PageEntry {
    /// A free page's entry.
    pub fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
            gen: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            len: AtomicU64::new(0),
        }
    }

    /// The holder (head), `MEMBER | head` (member) or 0 (free).
    pub fn word(&self) -> u64 {
        self.word.load(Ordering::Acquire)
    }
}

/// Words every allocator and freer touches.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct HotLine {
    /// Next-fit hint: the page after the last allocation. Any value is valid (taken
    /// modulo the page count): it only decides where the search starts.
    pub(super) hint: AtomicU64,
    /// Allocators waiting for room sleep here; every free notifies.
    pub(super) freed: Notifier,
}

impl Default for HotLine {
    fn default() -> Self {
        Self::new()
    }
}

impl HotLine {
    /// A fresh hot line (hint 0, nobody waiting).
    pub fn new() -> Self {
        Self {
            hint: AtomicU64::new(0),
            freed: Notifier::new(),
        }
    }
}

/// A block as its holder knows it (copied out and validated; never re-read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Head page index.
    pub head: usize,
    /// Pages. Invariant: `head + pages <= heap pages`.
    pub pages: usize,
    /// Generation of the block.
    pub gen: u64,
    /// Payload bytes. Invariant: `len <= pages * PAGE`.
    pub len: u64,
}

/// What travels instead of the bytes: where the block is and which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Byte offset of the block in the heap's data area.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
    /// Block generation.
    pub gen: u64,
}

impl Block {
    /// The descriptor a receiver validates this block by.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            offset: (self.head * PAGE) as u64,
            len: self.len,
            gen: self.gen,
        }
    }
}

/// Pages a payload of `len` bytes occupies (at least one).
pub fn pages_for(len: u64) -> u64 {
    len.div_ceil(PAGE as u64).max(1)
}

/// The allocator over one table of page entries.
#[derive(Clone, Copy, Debug)]
pub struct PageTable<'a> {
    /// One entry per page. Invariant: non-empty, fewer than `MEMBER` entries.
    entries: &'a [PageEntry],
    /// Hint and notifier shared by every user of this table.
    hot: &'a HotLine,
}

impl<'a> PageTable<'a> {
    /// The allocator over `entries` (one per page). `None` if the table is empty or
    /// has `MEMBER` (2³¹) entries or more.
    pub fn new(entries: &'a [PageEntry], hot: &'a HotLine) -> Option<Self> {
        (!entries.is_empty() && (entries.len() as u64) < MEMBER).then_some(Self { entries, hot })
    }

    /// Pages in the table.
    pub fn pages(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`, clamped into the table (callers pass `i < pages`).
    #[inline]
    fn entry(&self, i: usize) -> &'a PageEntry {
        debug_assert!(i < self.entries.len());
        &self.entries[i.min(self.entries.len() - 1)]
    }

    /// The notifier every free notifies.
    pub fn freed(&self) -> &'a Notifier {
        &self.hot.freed
    }

    /// Free pages now (a snapshot).
    pub fn free_pages(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.word.load(Ordering::Relaxed) == 0)
            .count()
    }

    /// Where to look after finding page `j` busy: past its block (clamped).
    fn skip_past(&self, j: usize) -> usize {
        let w = self.entry(j).word.load(Ordering::Relaxed);
        let head = if w & MEMBER != 0 {
            (w & (MEMBER - 1)) as usize
        } else {
            j
        };
        let end = if head <= j {
            let pages = self.entry(head).pages.load(Ordering::Relaxed);
            head.saturating_add(usize::try_from(pages).unwrap_or(usize::MAX))
        } else {
            0
        };
        end.clamp(j + 1, self.pages())
    }

    /// Claims pages `i..i+n` for a `len`-byte block held by `me`.
    fn claim(&self, i: usize, n: usize, len: u64, me: u64) -> Option<Block> {
        let head = self.entry(i);
        head.word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let member = MEMBER | i as u64;
        for k in 1..n {
            if self
                .entry(i + k)
                .word
                .compare_exchange(0, member, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                for m in (1..k).rev() {
                    self.entry(i + m).word.store(0, Ordering::Release);
                }
                head.word.store(0, Ordering::Release);
                return None;
            }
        }
        let gen = head.gen.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        head.pages.store(n as u64, Ordering::Release);
        head.len.store(len, Ordering::Release);
        self.hot.hint.store((i + n) as u64, Ordering::Relaxed);
        Some(Block {
            head: i,
            pages: n,
            gen,
            len,
        })
    }

    /// Allocates a block for `len` bytes held by `me` (non-zero, bit 31 clear), if a
    /// run of pages is free now. Never waits.
    pub fn try_alloc(&self, len: u64, me: u64) -> Option<Block> {
        let n = usize::try_from(pages_for(len)).ok()?;
        let total = self.pages();
        if n > total || me == 0 || me & MEMBER != 0 {
            return None;
        }
        let hint = self.hot.hint.load(Ordering::Relaxed);
        let mut i = (hint % total as u64) as usize;
        let mut travelled = 0usize;
        let limit = total + n;
        while travelled < limit {
            if i + n > total {
                travelled += total - i;
                i = 0;
                continue;
            }
            let busy = (i..i + n)
                .rev()
                .find(|&j| self.entry(j).word.load(Ordering::Relaxed) != 0);
            if let Some(j) = busy {
                let next = self.skip_past(j);
                travelled += next - i;
                i = next;
                continue;
            }
            if let Some(b) = self.claim(i, n, len, me) {
                return Some(b);
            }
            travelled += 1;
            i += 1;
        }
        None
    }

    /// Passes the block from holder `from` to holder `to` (before publishing its
    /// descriptor). `Corrupted` if `from` does not hold this generation of it.
    pub fn hand_over(&self, block: &Block, from: u64, to: u64) -> Result<(), HeapError> {
        let e = self.entry(block.head);
        if e.gen.load(Ordering::Acquire) != block.gen {
            return Err(HeapError::Corrupted(
                "view block generation changed under its holder",
            ));
        }
        e.word
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| HeapError::Corrupted("view block holder changed under its holder"))
    }

    /// Takes a handed-over block back from `from` (its descriptor was never
    /// delivered) and frees it. Does nothing if the block moved on meanwhile.
    pub fn take_back_and_free(&self, block: &Block, from: u64, me: u64) {
        let e = self.entry(block.head);
        if e.gen.load(Ordering::Acquire) != block.gen {
            return;
        }
        if e.word
            .compare_exchange(from, me, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || from == me
        {
            self.free(block, me);
        }
    }

    /// Validates a descriptor received from a peer: the block must be held by `me`,
    /// of the same generation, inside the table, and long enough; and `len <= max`.
    pub fn validate(&self, d: &Descriptor, me: u64, max: u64) -> Result<Block, HeapError> {
        let bad = HeapError::Corrupted;
        if d.offset % PAGE as u64 != 0 {
            return Err(bad("view offset not on a page boundary"));
        }
        let head = d.offset / PAGE as u64;
        if head >= self.pages() as u64 {
            return Err(bad("view offset outside the heap"));
        }
        if d.len > max {
            return Err(bad("view length above max_message"));
        }
        let head = head as usize;
        let e = self.entry(head);
        if e.word.load(Ordering::Acquire) != me {
            return Err(bad("view names a block this process does not hold"));
        }
        if e.gen.load(Ordering::Acquire) != d.gen {
            return Err(bad("stale view generation"));
        }
        let pages = e.pages.load(Ordering::Acquire);
        if pages == 0 || pages > (self.pages() - head) as u64 {
            return Err(bad("view block page count out of bounds"));
        }
        if d.len > pages * PAGE as u64 {
            return Err(bad("view length beyond its block"));
        }
        Ok(Block {
            head,
            pages: pages as usize,
            gen: d.gen,
            len: d.len,
        })
    }

    /// Frees a block held by `me`. Does nothing (returns false) if `me` does not hold
    /// this generation of it.
    pub fn free(&self, block: &Block, me: u64) -> bool {
        if block.head >= self.pages() || block.pages > self.pages() - block.head {
            return false;
        }
        let e = self.entry(block.head);
        if e.word.load(Ordering::Acquire) != me || e.gen.load(Ordering::Acquire) != block.gen {
            return false;
        }
        let member = MEMBER | block.head as u64;
        for k in (1..block.pages).rev() {
            let _ = self.entry(block.head + k).word.compare_exchange(
                member,
                0,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        let ok = e
            .word
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        self.hot.freed.notify();
        ok
    }

    /// Frees the block headed at `head`, whose holder `dead` was found dead.
    fn reclaim(&self, head: usize, dead: u64, me: u64) -> bool {
        let e = self.entry(head);
        if e.word
            .compare_exchange(dead, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let member = MEMBER | head as u64;
        let mut end = head + 1;
        while end < self.pages() && self.entry(end).word.load(Ordering::Acquire) == member {
            end += 1;
        }
        for k in (head + 1..end).rev() {
            let _ = self.entry(k).word.compare_exchange(
                member,
                0,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        let _ = e
            .word
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
        self.hot.freed.notify();
        true
    }

    /// Frees every block whose holder `alive` says is gone; returns how many. `alive`
    /// is asked once per distinct holder.
    pub fn reclaim_dead_with(&self, me: u64, mut alive: impl FnMut(u64) -> bool) -> usize {
        let mut known: HashMap<u64, bool> = HashMap::new();
        let mut freed = 0;
        for h in 0..self.pages() {
            let w = self.entry(h).word.load(Ordering::Acquire);
            if w == 0 || w & MEMBER != 0 || w == me {
                continue;
            }
            let live = *known.entry(w).or_insert_with(|| alive(w));
            if !live && self.reclaim(h, w, me) {
                freed += 1;
            }
        }
        freed
    }
}
