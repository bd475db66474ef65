//! A counting global allocator for the allocation tests (the per-message paths
//! allocate nothing).
//!
//! [`Counting`] wraps `System` and counts every allocation (and reallocation) in a
//! `const` thread-local — itself allocation-free — so the test harness's own threads
//! cannot disturb a thread's count. Each test file that uses it is its own crate and
//! installs it with its own line:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: culvert_testkit::alloc::Counting = culvert_testkit::alloc::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator: `System`, plus a per-thread allocation count.
pub struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

impl Counting {
    #[inline]
    fn count() {
        // `try_with`: allocations during thread teardown are simply not counted.
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; counting touches only a const thread-local, which does not
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: our caller upholds `alloc`'s contract, which we pass on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: as in `dealloc`; `new_size` satisfies `realloc`'s contract per our caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made so far on this thread.
pub fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// Allocations made by `f` on this thread.
pub fn allocations_in(f: impl FnOnce()) -> usize {
    let before = allocs();
    f();
    (allocs() - before) as usize
}
