//! [`Region`]: a bounded span of memory that rings are laid out in.
//!
//! A region is either part of a mapped [`Section`](crate::Section) (shared with other
//! processes) or zeroed heap memory (tests, benches, loom-free unit checks). It keeps
//! what backs it alive, so a ring endpoint holding a region can never outlive its
//! mapping. A region hands out raw pointers only: bytes another process can write are
//! never turned into `&[u8]`/`&mut [u8]` here: a reference would promise the compiler
//! the bytes do not change under it, which a hostile process can break.

use std::alloc::{self, Layout};
use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;

/// Alignment of heap regions (and of every section's data area): a page.
pub const REGION_ALIGN: usize = 4096;

/// A bounded span of (possibly shared) memory, kept alive while any clone exists.
#[derive(Clone)]
pub struct Region {
    /// First byte. Invariant: `ptr..ptr+len` stays valid for reads and writes (through
    /// raw pointers) while `_owner` lives.
    ptr: NonNull<u8>,
    /// Length in bytes.
    len: usize,
    /// Keeps the backing mapping or allocation alive.
    _owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: a Region is a raw span whose backing store is kept alive by an
// `Arc<dyn Any + Send + Sync>`; it hands out only raw pointers, and every access through
// them is made by code that follows the shared-memory rules (atomics or owned grants).
unsafe impl Send for Region {}
// SAFETY: as above — `&Region` gives nothing but the pointer and length.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

/// A zeroed, page-aligned heap allocation, freed when the last region using it drops.
struct HeapBlock {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the block is plain memory owned by this value; it is only freed in Drop.
unsafe impl Send for HeapBlock {}
// SAFETY: `&HeapBlock` exposes nothing.
unsafe impl Sync for HeapBlock {}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed exactly once, here.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl Region {
    /// `len` zeroed bytes on the heap, aligned to [`REGION_ALIGN`]. For tests and
    /// in-process use. `None` if `len` is zero or the allocation fails.
    pub fn heap(len: usize) -> Option<Region> {
        if len == 0 {
            return None;
        }
        let layout = Layout::from_size_align(len, REGION_ALIGN).ok()?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?;
        let owner = Arc::new(HeapBlock { ptr, layout });
        Some(Region {
            ptr,
            len,
            _owner: owner,
        })
    }

    /// A region over memory kept alive by `owner`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads and writes for as long as `owner` lives.
    pub unsafe fn from_raw_parts(
        ptr: NonNull<u8>,
        len: usize,
        owner: Arc<dyn Any + Send + Sync>,
    ) -> Region {
        Region {
            ptr,
            len,
            _owner: owner,
        }
    }

    /// The first byte.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part `offset..offset+len`, or `None` if it does not lie inside this region.
    pub fn subregion(&self, offset: usize, len: usize) -> Option<Region> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: `offset <= end <= self.len`, so the pointer stays inside the region.
        let ptr = unsafe { self.ptr.add(offset) };
        Some(Region {
            ptr,
            len,
            _owner: self._owner.clone(),
        })
    }

    /// Whether the first byte is aligned to `align` (a power of two).
    pub fn is_aligned_to(&self, align: usize) -> bool {
        align.is_power_of_two() && (self.ptr.as_ptr() as usize) % align == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_regions_are_zeroed_and_aligned() {
        let r = Region::heap(10_000).unwrap();
        assert!(r.is_aligned_to(REGION_ALIGN));
        assert_eq!(r.len(), 10_000);
        for i in 0..r.len() {
            // SAFETY: i < len, and the heap block is alive.
            assert_eq!(unsafe { r.as_ptr().add(i).read() }, 0);
        }
        assert!(Region::heap(0).is_none());
    }

    #[test]
    fn subregions_are_bounds_checked() {
        let r = Region::heap(256).unwrap();
        assert!(r.subregion(0, 256).is_some());
        assert!(r.subregion(128, 128).is_some());
        assert!(r.subregion(129, 128).is_none());
        assert!(r.subregion(usize::MAX, 2).is_none());
        let s = r.subregion(128, 16).unwrap();
        assert_eq!(s.as_ptr() as usize - r.as_ptr() as usize, 128);
        drop(r);
        // The subregion keeps the block alive.
        // SAFETY: `s` is alive, offset 0 < len.
        unsafe { s.as_ptr().write(1) };
    }
}
