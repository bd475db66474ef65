//! The view heap: a crash-safe, lock-free page allocator in shared memory.
//!
//! A heap is a header, a table of one [`PageEntry`] per 4 KiB page, and the pages.
//! A *block* is a run of pages. Its first page (the *head*) has `word` = the packed
//! [`ProcessIdentity`] of the process that holds the block; its other pages have
//! `word = MEMBER | head`. A free page has `word = 0`. Pages are claimed one by one
//! with compare-exchanges from 0, head first, so at every instant each claimed page
//! names its block and the head names a process:
//!
//! * **allocate** (home process only): find a run of free pages (next-fit from a hint),
//!   CAS the head `0 → me`, then each member `0 → MEMBER|head` (on a lost race, give the
//!   claimed pages back and look further), then bump the head's generation and record
//!   the page count and length;
//! * **hand over**: before the descriptor `{offset, len, generation}` is published, the
//!   sender CASes the head `me → receiver`; the receiver validates a descriptor against
//!   the entry (holder is itself, generation matches, pages in bounds, length fits) and
//!   reads the pages in place; anything else is `Corrupted`, never a read of another
//!   block;
//! * **free** (the holder): members are zeroed from the last to the first, the head last;
//! * **reclaim**: a head naming a dead process is CASed to the reclaimer, which frees
//!   the block like its holder would: the members still naming the head always form a
//!   contiguous run after it (claims go forwards, frees backwards), so a process killed
//!   anywhere in allocate, free or reclaim leaks nothing once it is found dead.
//!
//! Every word is untrusted: offsets, page counts and generations read from the table are
//! bounds-checked before any pointer is formed from them.

use std::collections::HashMap;

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{wait_for, Deadline, Notifier, WaitStrategy};

use crate::{Error, Result};

/// Page size of every view heap.
pub(crate) const PAGE: usize = 4096;
/// `word` bit that marks a member page (a pid never has bit 31 set).
const MEMBER: u64 = 1 << 31;
/// Most pages a heap may have (head indices fit in 31 bits).
const MAX_PAGES: usize = (1 << 31) - 1;
/// "CLVHEAP1".
const HEAP_MAGIC: u64 = u64::from_le_bytes(*b"CLVHEAP1");

/// Fixed words, written at init, copied out and validated at attach.
#[repr(C, align(128))]
struct ConfigLine {
    /// Invariant: `HEAP_MAGIC`.
    magic: AtomicU64,
    /// Pages in the data area. Invariant: `1..=MAX_PAGES`.
    pages: AtomicU64,
    /// Offset of the data area from the region start. Invariant: equals
    /// `layout(pages).1`, a multiple of `PAGE`.
    data_offset: AtomicU64,
}

/// Words every allocator and freer touches.
#[repr(C, align(128))]
struct HotLine {
    /// Next-fit hint: the page after the last allocation. Any value is valid (taken
    /// modulo `pages`): it only decides where the search starts.
    hint: AtomicU64,
    /// Allocators waiting for room sleep here; every free notifies.
    freed: Notifier,
}

/// The heap header at the start of its region; the entry table follows it.
#[repr(C)]
struct HeapHeader {
    config: ConfigLine,
    hot: HotLine,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<HeapHeader>() == 256);

/// One page's entry. Only `word` is meaningful on member pages.
#[repr(C)]
struct PageEntry {
    /// 0: free. On a head page: packed identity of the holder (pid in the low 32 bits,
    /// never with bit 31 set). On a member page: `MEMBER | head index`.
    /// Invariant (honest peers): the members of a block form a contiguous run right
    /// after its head; a head is cleared only after all its members.
    word: AtomicU64,
    /// Head pages: generation of the block, bumped by every allocation at this head.
    gen: AtomicU64,
    /// Head pages: pages of the block. Invariant: `head + pages <= heap pages`.
    pages: AtomicU64,
    /// Head pages: payload length. Invariant: `<= pages * PAGE`.
    len: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<PageEntry>() == 32);

const HEADER_LEN: usize = std::mem::size_of::<HeapHeader>();
const ENTRY_LEN: usize = std::mem::size_of::<PageEntry>();

/// `(entries offset, data offset, total bytes)` of a heap of `pages` pages.
fn layout(pages: usize) -> Option<(usize, usize, usize)> {
    let entries = HEADER_LEN;
    let data = pages
        .checked_mul(ENTRY_LEN)?
        .checked_add(entries)?
        .checked_add(PAGE - 1)?
        / PAGE
        * PAGE;
    let total = pages.checked_mul(PAGE)?.checked_add(data)?;
    Some((entries, data, total))
}

/// Pages a payload of `len` bytes occupies (at least one).
pub(crate) fn pages_for(len: u64) -> u64 {
    len.div_ceil(PAGE as u64).max(1)
}

/// A block as its holder knows it (copied out and validated; never re-read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
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
pub(crate) struct Descriptor {
    /// Byte offset of the block in the heap's data area.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
    /// Block generation.
    pub gen: u64,
}

impl Block {
    /// The descriptor that names this block.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            offset: (self.head * PAGE) as u64,
            len: self.len,
            gen: self.gen,
        }
    }
}

/// Free space of a heap (a snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Pages in the heap.
    pub total_pages: usize,
    /// Pages free now.
    pub free_pages: usize,
}

impl HeapStats {
    /// Bytes in the heap.
    pub fn total_bytes(&self) -> usize {
        self.total_pages * PAGE
    }

    /// Bytes free now.
    pub fn free_bytes(&self) -> usize {
        self.free_pages * PAGE
    }
}

/// One process's handle on a heap laid out in a region.
#[derive(Clone, Debug)]
pub(crate) struct Heap {
    /// Keeps the mapping alive. Invariant: at least `data_offset + pages * PAGE` bytes,
    /// 128-aligned, holding a heap initialised by [`Heap::init`].
    region: Region,
    /// Pages (validated at attach).
    pages: usize,
    /// Offset of the data area (validated at attach).
    data_offset: usize,
}

fn corrupted(what: &str) -> Error {
    Error::Corrupted {
        what: what.to_string(),
    }
}

impl Heap {
    /// Region bytes a heap with room for `data_bytes` of blocks needs.
    pub fn required_size(data_bytes: usize) -> Option<usize> {
        let pages = data_bytes.div_ceil(PAGE).max(1);
        if pages > MAX_PAGES {
            return None;
        }
        layout(pages).map(|l| l.2)
    }

    /// Lays out an empty heap in `region` of exactly `data_bytes` (rounded up to
    /// pages) of blocks. Creator only, before anyone attaches.
    pub fn init(region: &Region, data_bytes: usize) -> Result<()> {
        let pages = data_bytes.div_ceil(PAGE).max(1);
        let bad = || Error::InvalidArgument {
            what: "view heap does not fit its region".into(),
        };
        let (entries, data, total) = layout(pages).ok_or_else(bad)?;
        if pages > MAX_PAGES || region.len() < total || !region.is_aligned_to(128) {
            return Err(bad());
        }
        let base = region.as_ptr();
        for i in 0..pages {
            // SAFETY: entry `i` lies at `entries + i * 32 < data <= region.len()`; the
            // region is 128-aligned so the entry is 8-aligned; nobody attached yet, so
            // this write is exclusive.
            unsafe {
                base.add(entries + i * ENTRY_LEN)
                    .cast::<PageEntry>()
                    .write(PageEntry {
                        word: AtomicU64::new(0),
                        gen: AtomicU64::new(0),
                        pages: AtomicU64::new(0),
                        len: AtomicU64::new(0),
                    })
            };
        }
        let header = HeapHeader {
            config: ConfigLine {
                magic: AtomicU64::new(HEAP_MAGIC),
                pages: AtomicU64::new(pages as u64),
                data_offset: AtomicU64::new(data as u64),
            },
            hot: HotLine {
                hint: AtomicU64::new(0),
                freed: Notifier::new(),
            },
        };
        // SAFETY: the header fits (`HEADER_LEN <= entries <= total <= region.len()`),
        // the region is 128-aligned, and nobody attached yet.
        unsafe { base.cast::<HeapHeader>().write(header) };
        Ok(())
    }

    /// Attaches to the heap in `region`, validating its fixed words.
    pub fn attach(region: &Region) -> Result<Heap> {
        if region.len() < HEADER_LEN || !region.is_aligned_to(128) {
            return Err(corrupted("view heap region too small or misaligned"));
        }
        // SAFETY: the region holds at least a header and is aligned for it; its fields
        // are atomics, read atomically.
        let cfg = unsafe { &(*region.as_ptr().cast::<HeapHeader>()).config };
        if cfg.magic.load(Ordering::Acquire) != HEAP_MAGIC {
            return Err(corrupted("view heap magic"));
        }
        let pages = usize::try_from(cfg.pages.load(Ordering::Relaxed)).unwrap_or(0);
        let data_offset = cfg.data_offset.load(Ordering::Relaxed);
        if pages == 0 || pages > MAX_PAGES {
            return Err(corrupted("view heap page count"));
        }
        match layout(pages) {
            Some((_, data, total)) if data as u64 == data_offset && total <= region.len() => {
                Ok(Heap {
                    region: region.clone(),
                    pages,
                    data_offset: data,
                })
            }
            _ => Err(corrupted("view heap layout words")),
        }
    }

    fn header(&self) -> &HeapHeader {
        // SAFETY: validated at attach (size, alignment); atomics only.
        unsafe { &*self.region.as_ptr().cast::<HeapHeader>() }
    }

    /// Entry `i`; callers guarantee `i < self.pages`.
    #[inline]
    fn entry(&self, i: usize) -> &PageEntry {
        debug_assert!(i < self.pages);
        let i = i.min(self.pages - 1);
        // SAFETY: `i < pages`, so the entry lies in the table (validated layout),
        // 8-aligned, constructed at init; atomics only.
        unsafe {
            &*self
                .region
                .as_ptr()
                .add(HEADER_LEN + i * ENTRY_LEN)
                .cast::<PageEntry>()
        }
    }

    /// First byte of the block's pages. Invariant from [`Block`]: the `pages * PAGE`
    /// bytes from here lie inside the data area.
    #[inline]
    pub fn data_ptr(&self, block: &Block) -> *mut u8 {
        debug_assert!(block.head + block.pages <= self.pages);
        // SAFETY: `head < pages`, so the offset lies inside the data area.
        unsafe {
            self.region
                .as_ptr()
                .add(self.data_offset + block.head.min(self.pages - 1) * PAGE)
        }
    }

    /// Pages in the heap.
    pub fn total_pages(&self) -> usize {
        self.pages
    }

    /// A snapshot of free space.
    pub fn stats(&self) -> HeapStats {
        let free = (0..self.pages)
            .filter(|&i| self.entry(i).word.load(Ordering::Relaxed) == 0)
            .count();
        HeapStats {
            total_pages: self.pages,
            free_pages: free,
        }
    }

    /// Where to look after finding page `j` busy: past its block (clamped).
    fn skip_past(&self, j: usize) -> usize {
        let w = self.entry(j).word.load(Ordering::Relaxed);
        let head = if w & MEMBER != 0 {
            (w & (MEMBER - 1)) as usize
        } else {
            j
        };
        let end = if head < self.pages && head <= j {
            let pages = self.entry(head).pages.load(Ordering::Relaxed);
            head.saturating_add(usize::try_from(pages).unwrap_or(usize::MAX))
        } else {
            0
        };
        end.clamp(j + 1, self.pages)
    }

    /// Claims pages `i..i+n` for a `len`-byte block held by `me`.
    fn claim(&self, i: usize, n: usize, len: u64, me: u64) -> Option<Block> {
        let head = self.entry(i);
        if head
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
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
        self.header()
            .hot
            .hint
            .store((i + n) as u64, Ordering::Relaxed);
        Some(Block {
            head: i,
            pages: n,
            gen,
            len,
        })
    }

    /// Allocates a block for `len` bytes held by `me`, if a run of pages is free now.
    pub fn try_alloc(&self, len: u64, me: u64) -> Option<Block> {
        let n = usize::try_from(pages_for(len)).ok()?;
        let total = self.pages;
        if n > total {
            return None;
        }
        let hint = self.header().hot.hint.load(Ordering::Relaxed);
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

    /// Allocates a block, waiting for room until `deadline`. `check` runs at least
    /// every liveness interval while waiting (e.g. to give up when the peer died);
    /// dead holders' blocks are reclaimed then too. `MessageTooLarge` if the heap can
    /// never hold `len` bytes.
    pub fn alloc(
        &self,
        len: u64,
        me: u64,
        deadline: Deadline,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<Block> {
        if pages_for(len) > self.pages as u64 {
            return Err(Error::MessageTooLarge {
                len: len as usize,
                max: self.pages * PAGE,
            });
        }
        let mut reclaimed = false;
        wait_for(
            &self.header().hot.freed,
            WaitStrategy::Blocking,
            deadline,
            |ctx| {
                if let Some(b) = self.try_alloc(len, me) {
                    return Ok(Some(b));
                }
                if ctx.liveness_due || !reclaimed {
                    reclaimed = true;
                    check()?;
                    if self.reclaim_dead(me) > 0 {
                        return Ok(self.try_alloc(len, me));
                    }
                }
                Ok(None)
            },
        )
    }

    /// Copies `bytes` into the block at `offset`. The caller holds the block.
    pub fn write(&self, block: &Block, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len());
        assert!(end <= block.pages * PAGE, "write beyond the block");
        // SAFETY: `offset + len <= pages * PAGE`, and the block's pages lie inside the
        // data area (Block invariant); the caller holds the block, so no honest peer
        // touches these bytes; `bytes` is local memory, so no overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.data_ptr(block).add(offset),
                bytes.len(),
            )
        }
    }

    /// Passes the block from holder `from` to holder `to` (before publishing its
    /// descriptor). `Corrupted` if `from` does not hold it.
    pub fn hand_over(&self, block: &Block, from: u64, to: u64) -> Result<()> {
        let e = self.entry(block.head);
        if e.gen.load(Ordering::Acquire) != block.gen {
            return Err(corrupted("view block generation changed under its holder"));
        }
        e.word
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| corrupted("view block holder changed under its holder"))
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
    /// of the same generation, inside the heap, and long enough; and `len <= max`.
    pub fn validate(&self, d: &Descriptor, me: u64, max: u64) -> Result<Block> {
        if d.offset % PAGE as u64 != 0 {
            return Err(corrupted("view offset not on a page boundary"));
        }
        let head = d.offset / PAGE as u64;
        if head >= self.pages as u64 {
            return Err(corrupted("view offset outside the heap"));
        }
        if d.len > max {
            return Err(corrupted("view length above max_message"));
        }
        let head = head as usize;
        let e = self.entry(head);
        if e.word.load(Ordering::Acquire) != me {
            return Err(corrupted("view names a block this process does not hold"));
        }
        if e.gen.load(Ordering::Acquire) != d.gen {
            return Err(corrupted("stale view generation"));
        }
        let pages = e.pages.load(Ordering::Acquire);
        if pages == 0 || pages > (self.pages - head) as u64 {
            return Err(corrupted("view block page count out of bounds"));
        }
        if d.len > pages * PAGE as u64 {
            return Err(corrupted("view length beyond its block"));
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
        if block.head >= self.pages || block.head + block.pages > self.pages {
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
        self.header().hot.freed.notify();
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
        while end < self.pages && self.entry(end).word.load(Ordering::Acquire) == member {
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
        self.header().hot.freed.notify();
        true
    }

    /// Frees every block held by a dead process; returns how many.
    pub fn reclaim_dead(&self, me: u64) -> usize {
        let mut alive: HashMap<u64, bool> = HashMap::new();
        let mut freed = 0;
        for h in 0..self.pages {
            let w = self.entry(h).word.load(Ordering::Acquire);
            if w == 0 || w & MEMBER != 0 || w == me {
                continue;
            }
            let live = *alive
                .entry(w)
                .or_insert_with(|| culvert_sync::holder_of(w) == culvert_sync::Holder::Alive);
            if !live && self.reclaim(h, w, me) {
                freed += 1;
            }
        }
        freed
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn heap(pages: usize) -> Heap {
        let r = Region::heap(Heap::required_size(pages * PAGE).unwrap()).unwrap();
        Heap::init(&r, pages * PAGE).unwrap();
        Heap::attach(&r).unwrap()
    }

    #[test]
    fn alloc_free_and_whole_again() {
        let h = heap(16);
        let me = culvert_sync::owner::my_owner_id();
        let a = h.try_alloc(5000, me).unwrap();
        assert_eq!(a.pages, 2);
        let b = h.try_alloc(4096 * 10, me).unwrap();
        assert!(h.try_alloc(4096 * 5, me).is_none());
        let c = h.try_alloc(4096 * 4, me).unwrap();
        assert_eq!(h.stats().free_pages, 0);
        assert!(h.free(&b, me));
        assert!(!h.free(&b, me));
        let d = h.try_alloc(4096 * 9, me).unwrap();
        h.free(&a, me);
        h.free(&c, me);
        h.free(&d, me);
        assert_eq!(h.stats().free_pages, 16);
    }

    #[test]
    fn descriptors_are_checked() {
        let h = heap(8);
        let me = culvert_sync::owner::my_owner_id();
        let other = me ^ 0x1_0000_0000;
        let a = h.try_alloc(100, me).unwrap();
        let d = a.descriptor();
        assert!(h.validate(&d, me, 1 << 20).is_ok());
        assert!(h.validate(&d, other, 1 << 20).is_err());
        let mut stale = d;
        stale.gen += 1;
        assert!(h.validate(&stale, me, 1 << 20).is_err());
        let mut long = d;
        long.len = 5000;
        assert!(h.validate(&long, me, 1 << 20).is_err());
        let mut off = d;
        off.offset = 8 * PAGE as u64;
        assert!(h.validate(&off, me, 1 << 20).is_err());
        h.hand_over(&a, me, other).unwrap();
        assert!(h.validate(&d, other, 1 << 20).is_ok());
        h.take_back_and_free(&a, other, me);
        assert_eq!(h.stats().free_pages, 8);
    }

    #[test]
    fn dead_holders_are_reclaimed() {
        let h = heap(8);
        let me = culvert_sync::owner::my_owner_id();
        // A holder that cannot be alive: pid 0x7fff_fff0 does not exist.
        let dead = 0x7fff_fff0u64 | (1 << 32);
        let a = h.try_alloc(3 * 4096, me).unwrap();
        h.hand_over(&a, me, dead).unwrap();
        // Simulate a claim cut short: head held by the dead process, one member.
        let b = h.try_alloc(4096 * 3, me).unwrap();
        h.entry(b.head + 2).word.store(0, Ordering::Release);
        h.entry(b.head).word.store(dead, Ordering::Release);
        assert_eq!(h.reclaim_dead(me), 2);
        assert_eq!(h.stats().free_pages, 8);
    }
}
