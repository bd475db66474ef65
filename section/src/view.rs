//! Typed views of shared structs: the one way a layer turns bytes of a [`Region`] into
//! a `&T`.
//!
//! A [`SharedStruct`] is a `#[repr(C)]` struct made only of atomics (or of other shared
//! structs), so every bit pattern another process can leave in it is a valid value and
//! every access to it is atomic: a reference to one is sound even while a hostile peer
//! writes the same bytes. [`View`] checks once, when it is made, that its region is
//! large and aligned enough for a `T`, keeps the region (and so the mapping) alive, and
//! then hands out `&T` without further checks. [`SliceView`] does the same for a run of
//! `T`s. [`Region::view`] is the one-off form for a `T` at an offset.
//!
//! Values read through a view are still untrusted: the type says the bits are *a*
//! value, not a *valid* one; callers validate what they read (lengths, offsets,
//! states) as the shared-memory rules require.

use std::marker::PhantomData;

use crate::Region;

/// A struct that may live in memory another process writes.
///
/// # Safety
/// The type must be `#[repr(C)]` (or `#[repr(transparent)]`) and made only of atomics
/// and other `SharedStruct`s (arrays of them included), with no padding that matters
/// and no invariant the compiler relies on: every bit pattern is a valid value, and all
/// access goes through atomic operations.
pub unsafe trait SharedStruct: Sized {}

#[cfg(not(loom))]
mod atomics {
    use super::SharedStruct;
    use culvert_sync::atomic::{AtomicU32, AtomicU64};

    // SAFETY: an atomic integer is valid for every bit pattern and accessed atomically.
    unsafe impl SharedStruct for AtomicU64 {}
    // SAFETY: as above.
    unsafe impl SharedStruct for AtomicU32 {}
    // `AtomicBool` is left out on purpose: only 0 and 1 are valid bool values, so a
    // flag in shared memory is an `AtomicU32`.
    // SAFETY: a `repr(C)` pair of `AtomicU32`s (epoch, waiter count).
    unsafe impl SharedStruct for culvert_sync::Notifier {}
    // SAFETY: `repr(transparent)` over `AtomicU64`.
    unsafe impl SharedStruct for culvert_sync::OwnerWord {}
}

// SAFETY: an array of shared structs is laid out without gaps of its own and each
// element is a shared struct.
unsafe impl<T: SharedStruct, const N: usize> SharedStruct for [T; N] {}

/// Whether `len` bytes at `ptr` hold a `T`, aligned.
fn fits<T>(ptr: *const u8, len: usize) -> bool {
    len >= std::mem::size_of::<T>() && (ptr as usize) % std::mem::align_of::<T>() == 0
}

impl Region {
    /// The `T` at `offset`, or `None` when it does not lie inside the region or is
    /// misaligned there.
    pub fn view<T: SharedStruct>(&self, offset: usize) -> Option<&T> {
        let len = self.len().checked_sub(offset)?;
        let ptr = self.as_ptr().wrapping_add(offset);
        if !fits::<T>(ptr, len) {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above); `T` is a `SharedStruct`; the
        // reference lives no longer than the borrow of `self`, which keeps it mapped.
        Some(unsafe { &*ptr.cast::<T>() })
    }
}

/// A region known to start with a `T` (checked once, at [`View::new`]).
pub struct View<T: SharedStruct> {
    /// Invariant: at least `size_of::<T>()` bytes, aligned for `T`; kept mapped.
    region: Region,
    _marker: PhantomData<fn() -> T>,
}

impl<T: SharedStruct> Clone for View<T> {
    fn clone(&self) -> Self {
        Self {
            region: self.region.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T: SharedStruct> std::fmt::Debug for View<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("type", &std::any::type_name::<T>())
            .field("region", &self.region)
            .finish()
    }
}

impl<T: SharedStruct> View<T> {
    /// A view of the `T` at the start of `region`; `None` when it is too small or
    /// misaligned for one.
    pub fn new(region: Region) -> Option<Self> {
        fits::<T>(region.as_ptr(), region.len()).then_some(Self {
            region,
            _marker: PhantomData,
        })
    }

    /// The struct.
    #[inline]
    pub fn get(&self) -> &T {
        // SAFETY: size and alignment checked in `new` (the region never changes);
        // `T` is a `SharedStruct`; `self.region` keeps it mapped for the borrow.
        unsafe { &*self.region.as_ptr().cast::<T>() }
    }

    /// The region it views.
    pub fn region(&self) -> &Region {
        &self.region
    }
}

impl<T: SharedStruct> std::ops::Deref for View<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.get()
    }
}

/// A region known to hold `len` consecutive `T`s from its start (checked once).
pub struct SliceView<T: SharedStruct> {
    /// Invariant: at least `len * size_of::<T>()` bytes, aligned for `T`; kept mapped.
    region: Region,
    len: usize,
    _marker: PhantomData<fn() -> T>,
}

impl<T: SharedStruct> Clone for SliceView<T> {
    fn clone(&self) -> Self {
        Self {
            region: self.region.clone(),
            len: self.len,
            _marker: PhantomData,
        }
    }
}

impl<T: SharedStruct> std::fmt::Debug for SliceView<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceView")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len)
            .finish()
    }
}

impl<T: SharedStruct> SliceView<T> {
    /// A view of `len` `T`s at the start of `region`; `None` when they do not fit or
    /// are misaligned.
    pub fn new(region: Region, len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let aligned = (region.as_ptr() as usize) % std::mem::align_of::<T>() == 0;
        (aligned && region.len() >= bytes).then_some(Self {
            region,
            len,
            _marker: PhantomData,
        })
    }

    /// Element `i`, or `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| {
            // SAFETY: `i < len`, and `len` elements fit, aligned (checked in `new`);
            // `T` is a `SharedStruct`; `self.region` keeps them mapped.
            unsafe { &*self.region.as_ptr().cast::<T>().add(i) }
        })
    }

    /// The elements, as a slice.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: as in `get`, for all `len` elements.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr().cast::<T>(), self.len) }
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use culvert_sync::atomic::{AtomicU64, Ordering};

    #[repr(C)]
    struct Pair {
        a: AtomicU64,
        b: AtomicU64,
    }
    // SAFETY: `repr(C)`, atomics only.
    unsafe impl SharedStruct for Pair {}

    #[test]
    fn views_check_size_and_alignment_once() {
        let r = Region::heap(64).unwrap();
        let v = View::<Pair>::new(r.clone()).unwrap();
        v.a.store(7, Ordering::Relaxed);
        assert_eq!(r.view::<AtomicU64>(0).unwrap().load(Ordering::Relaxed), 7);
        assert!(r.view::<Pair>(56).is_none(), "past the end");
        assert!(r.view::<AtomicU64>(4).is_none(), "misaligned");
        assert!(r.view::<AtomicU64>(usize::MAX).is_none());
        assert!(View::<Pair>::new(r.subregion(0, 15).unwrap()).is_none());
        let s = SliceView::<AtomicU64>::new(r.clone(), 8).unwrap();
        assert_eq!(s.get(0).unwrap().load(Ordering::Relaxed), 7);
        assert!(s.get(8).is_none());
        assert_eq!(s.as_slice().len(), 8);
        assert!(SliceView::<AtomicU64>::new(r, 9).is_none());
        assert!(SliceView::<AtomicU64>::new(Region::heap(64).unwrap(), usize::MAX).is_none());
    }
}
