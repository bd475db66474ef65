//! The view heap: a crash-safe, lock-free page allocator in a shared [`Region`].
//!
//! Any layer can pass a large message *as a view*: allocate a block here, write the
//! payload in place, hand the block over to the receiver and send only its
//! [`Descriptor`]; the receiver [validates](PageTable::validate) the descriptor and reads
//! the pages in place, then frees the block. A process that dies holding blocks leaks
//! nothing: [`Heap::reclaim_dead`] frees them once its death is noticed.
//!
//! A heap is a 256-byte header (configuration words, then the [`HotLine`]), a table of
//! one [`PageEntry`] per 4 KiB page, and the pages, starting at the next page
//! boundary. The allocation protocol itself is [`PageTable`] (module `table`); this
//! module lays it out in a region, validates a peer's layout at attach, and adds the
//! blocking [`Heap::alloc`] over the non-blocking [`PageTable::try_alloc`].
//!
//! ```
//! use culvert_section::heap::{Heap, HeapError, PAGE};
//! use culvert_section::Region;
//!
//! let region = Region::heap(Heap::required_size(16 * PAGE).unwrap()).unwrap();
//! Heap::init(&region, 16 * PAGE)?;
//! let heap = Heap::attach(&region)?;
//! let (me, peer) = (0x10, 0x20); // holder identities (owner ids in real use)
//! let block = heap.table().try_alloc(5000, me).expect("room");
//! heap.write(&block, 0, b"payload");
//! heap.table().hand_over(&block, me, peer)?;
//! // ... the descriptor travels to the peer, which validates and reads it:
//! let got = heap.table().validate(&block.descriptor(), peer, 1 << 20)?;
//! assert_eq!(got, block);
//! assert!(heap.table().free(&got, peer));
//! # Ok::<(), HeapError>(())
//! ```

use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{wait_for, Deadline, Timeout, WaitStrategy};

use crate::{Region, SharedStruct, SliceView, View};

mod table;

pub use table::{pages_for, Block, Descriptor, HotLine, PageEntry, PageTable, MEMBER};

/// Page size of every view heap.
pub const PAGE: usize = 4096;
/// Most pages a heap may have (head indices fit in 31 bits).
const MAX_PAGES: usize = (MEMBER - 1) as usize;
/// "CLVHEAP1".
const HEAP_MAGIC: u64 = u64::from_le_bytes(*b"CLVHEAP1");

/// What the view heap reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeapError {
    /// A word of the heap or a descriptor is not what an honest peer leaves.
    #[error("view heap corrupted: {0}")]
    Corrupted(&'static str),
    /// The heap can never hold a block this large.
    #[error("a {len}-byte view does not fit a heap of {max} bytes")]
    TooLarge {
        /// Bytes asked for.
        len: u64,
        /// Bytes the heap holds.
        max: usize,
    },
    /// The region cannot hold a heap of the size asked (or is misaligned).
    #[error("view heap does not fit its region")]
    DoesNotFit,
}

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

/// The heap header at the start of its region; the entry table follows it.
#[repr(C)]
struct HeapHeader {
    config: ConfigLine,
    hot: HotLine,
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for ConfigLine {}
// SAFETY: `repr(C)`, atomics and a notifier only.
unsafe impl SharedStruct for HotLine {}
// SAFETY: `repr(C)`, a config line and a hot line only.
unsafe impl SharedStruct for HeapHeader {}
// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for PageEntry {}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<HeapHeader>() == 256);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<PageEntry>() == 32);

const HEADER_LEN: usize = std::mem::size_of::<HeapHeader>();
const ENTRY_LEN: usize = std::mem::size_of::<PageEntry>();

/// `(data offset, total bytes)` of a heap of `pages` pages.
fn layout(pages: usize) -> Option<(usize, usize)> {
    let data = pages
        .checked_mul(ENTRY_LEN)?
        .checked_add(HEADER_LEN)?
        .checked_add(PAGE - 1)?
        / PAGE
        * PAGE;
    let total = pages.checked_mul(PAGE)?.checked_add(data)?;
    Some((data, total))
}

/// Free space of a heap at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Pages in the heap.
    pub total_pages: usize,
    /// Pages no block holds.
    pub free_pages: usize,
}

impl HeapStats {
    /// Bytes in the heap.
    pub fn total_bytes(&self) -> usize {
        self.total_pages * PAGE
    }

    /// Bytes no block holds (not necessarily contiguous).
    pub fn free_bytes(&self) -> usize {
        self.free_pages * PAGE
    }
}

/// One process's handle on a heap laid out in a region.
#[derive(Clone)]
pub struct Heap {
    /// The header at offset 0 (validated at attach).
    header: View<HeapHeader>,
    /// One entry per page, right after the header. Invariant: `pages` entries.
    entries: SliceView<PageEntry>,
    /// The whole region. Invariant: at least `data_offset + pages * PAGE` bytes.
    region: Region,
    /// Pages (validated at attach). Invariant: `1..=MAX_PAGES`.
    pages: usize,
    /// Offset of the data area (validated at attach), a multiple of `PAGE`.
    data_offset: usize,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("pages", &self.pages)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl Heap {
    /// Region bytes a heap with room for `data_bytes` of blocks needs.
    pub fn required_size(data_bytes: usize) -> Option<usize> {
        let pages = data_bytes.div_ceil(PAGE).max(1);
        if pages > MAX_PAGES {
            return None;
        }
        layout(pages).map(|l| l.1)
    }

    /// Lays out an empty heap in `region` of exactly `data_bytes` (rounded up to
    /// pages) of blocks. Creator only, before anyone attaches.
    pub fn init(region: &Region, data_bytes: usize) -> Result<(), HeapError> {
        let pages = data_bytes.div_ceil(PAGE).max(1);
        let (data, total) = layout(pages).ok_or(HeapError::DoesNotFit)?;
        if pages > MAX_PAGES || region.len() < total || !region.is_aligned_to(128) {
            return Err(HeapError::DoesNotFit);
        }
        let base = region.as_ptr();
        for i in 0..pages {
            // SAFETY: entry `i` lies at `HEADER_LEN + i * ENTRY_LEN < data <= len`, 8-aligned
            // (128-aligned region); nobody attached yet, so the write is exclusive.
            unsafe {
                base.add(HEADER_LEN + i * ENTRY_LEN)
                    .cast::<PageEntry>()
                    .write(PageEntry::new())
            };
        }
        let header = HeapHeader {
            config: ConfigLine {
                magic: AtomicU64::new(HEAP_MAGIC),
                pages: AtomicU64::new(pages as u64),
                data_offset: AtomicU64::new(data as u64),
            },
            hot: HotLine::new(),
        };
        // SAFETY: the header fits (`HEADER_LEN <= data <= region.len()`), the region is
        // 128-aligned, and nobody attached yet.
        unsafe { base.cast::<HeapHeader>().write(header) };
        Ok(())
    }

    /// Attaches to the heap in `region`, validating its fixed words.
    pub fn attach(region: &Region) -> Result<Heap, HeapError> {
        let bad = HeapError::Corrupted;
        let header = View::<HeapHeader>::new(region.clone())
            .ok_or(bad("view heap region too small or misaligned"))?;
        let cfg = &header.get().config;
        if cfg.magic.load(Ordering::Acquire) != HEAP_MAGIC {
            return Err(bad("view heap magic"));
        }
        let pages = usize::try_from(cfg.pages.load(Ordering::Relaxed)).unwrap_or(0);
        let data_offset = cfg.data_offset.load(Ordering::Relaxed);
        if pages == 0 || pages > MAX_PAGES {
            return Err(bad("view heap page count"));
        }
        let (data, total) = layout(pages).ok_or(bad("view heap layout words"))?;
        if data as u64 != data_offset || total > region.len() {
            return Err(bad("view heap layout words"));
        }
        let entries = region
            .subregion(HEADER_LEN, pages * ENTRY_LEN)
            .and_then(|r| SliceView::new(r, pages))
            .ok_or(bad("view heap entry table"))?;
        Ok(Heap {
            header,
            entries,
            region: region.clone(),
            pages,
            data_offset: data,
        })
    }

    /// The allocator over this heap's page table.
    pub fn table(&self) -> PageTable<'_> {
        PageTable::new(self.entries.as_slice(), &self.header.get().hot)
            .expect("attach validated 1..=MAX_PAGES entries")
    }

    /// Pages in the heap.
    pub fn total_pages(&self) -> usize {
        self.pages
    }

    /// A snapshot of free space.
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            total_pages: self.pages,
            free_pages: self.table().free_pages(),
        }
    }

    /// First byte of the block's pages. Invariant from [`Block`]: the `pages * PAGE`
    /// bytes from here lie inside the data area.
    #[inline]
    pub fn data_ptr(&self, block: &Block) -> *mut u8 {
        debug_assert!(block.head + block.pages <= self.pages);
        let page = block.head.min(self.pages - 1);
        // SAFETY: `page < pages`, so the offset lies inside the data area, which lies
        // inside the region (validated at attach).
        unsafe { self.region.as_ptr().add(self.data_offset + page * PAGE) }
    }

    /// Copies `bytes` into the block at `offset`. The caller holds the block.
    ///
    /// # Panics
    /// If `offset + bytes.len()` passes the end of the block.
    pub fn write(&self, block: &Block, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len());
        assert!(
            block.head < self.pages
                && block.pages <= self.pages - block.head
                && end <= block.pages * PAGE,
            "write beyond the block"
        );
        // SAFETY: `offset + len <= pages * PAGE` and the block's pages lie inside the data
        // area (checked above); the caller holds the block, so no honest peer touches
        // these bytes; `bytes` is local memory, so no overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.data_ptr(block).add(offset),
                bytes.len(),
            )
        }
    }

    /// Allocates a block, waiting for room until `deadline`. `check` runs at least
    /// every liveness interval while waiting (e.g. to give up when the peer died);
    /// blocks of dead holders are reclaimed then too. `TooLarge` if the heap can never
    /// hold `len` bytes.
    pub fn alloc<E>(
        &self,
        len: u64,
        me: u64,
        deadline: Deadline,
        mut check: impl FnMut() -> Result<(), E>,
    ) -> Result<Block, E>
    where
        E: From<HeapError> + From<Timeout>,
    {
        if pages_for(len) > self.pages as u64 {
            return Err(HeapError::TooLarge {
                len,
                max: self.pages * PAGE,
            }
            .into());
        }
        let table = self.table();
        let mut reclaimed = false;
        wait_for(table.freed(), WaitStrategy::Blocking, deadline, |ctx| {
            if let Some(b) = table.try_alloc(len, me) {
                return Ok(Some(b));
            }
            if ctx.liveness_due || !reclaimed {
                reclaimed = true;
                check()?;
                if self.reclaim_dead(me) > 0 {
                    return Ok(table.try_alloc(len, me));
                }
            }
            Ok(None)
        })
    }

    /// Frees every block held by a dead process; returns how many.
    pub fn reclaim_dead(&self, me: u64) -> usize {
        self.table().reclaim_dead_with(me, |holder| {
            culvert_sync::holder_of(holder) == culvert_sync::Holder::Alive
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
