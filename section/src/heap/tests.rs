//! Single-process checks of the heap's allocation, validation and reclaim.

use super::*;

fn heap(pages: usize) -> Heap {
    let r = Region::heap(Heap::required_size(pages * PAGE).unwrap()).unwrap();
    Heap::init(&r, pages * PAGE).unwrap();
    Heap::attach(&r).unwrap()
}

fn me() -> u64 {
    culvert_sync::owner::my_owner_id()
}

#[test]
fn alloc_free_and_whole_again() {
    let h = heap(16);
    let (t, me) = (h.table(), me());
    let a = t.try_alloc(5000, me).unwrap();
    assert_eq!(a.pages, 2);
    let b = t.try_alloc(4096 * 10, me).unwrap();
    assert!(t.try_alloc(4096 * 5, me).is_none());
    let c = t.try_alloc(4096 * 4, me).unwrap();
    assert_eq!(h.stats().free_pages, 0);
    assert!(t.free(&b, me));
    assert!(!t.free(&b, me));
    let d = t.try_alloc(4096 * 9, me).unwrap();
    t.free(&a, me);
    t.free(&c, me);
    t.free(&d, me);
    assert_eq!(h.stats().free_pages, 16);
}

#[test]
fn descriptors_are_checked() {
    let h = heap(8);
    let (t, me) = (h.table(), me());
    let other = me ^ 0x1_0000_0000;
    let a = t.try_alloc(100, me).unwrap();
    let d = a.descriptor();
    assert!(t.validate(&d, me, 1 << 20).is_ok());
    assert!(t.validate(&d, other, 1 << 20).is_err());
    let mut stale = d;
    stale.gen += 1;
    assert!(t.validate(&stale, me, 1 << 20).is_err());
    let mut long = d;
    long.len = 5000;
    assert!(t.validate(&long, me, 1 << 20).is_err());
    let mut off = d;
    off.offset = 8 * PAGE as u64;
    assert!(t.validate(&off, me, 1 << 20).is_err());
    t.hand_over(&a, me, other).unwrap();
    assert!(t.validate(&d, other, 1 << 20).is_ok());
    t.take_back_and_free(&a, other, me);
    assert_eq!(h.stats().free_pages, 8);
}

#[test]
fn dead_holders_are_reclaimed() {
    let h = heap(8);
    let (t, me) = (h.table(), me());
    // A holder that cannot be alive: pid 0x7fff_fff0 does not exist.
    let dead = 0x7fff_fff0u64 | (1 << 32);
    let a = t.try_alloc(3 * 4096, me).unwrap();
    t.hand_over(&a, me, dead).unwrap();
    // A claim cut short: head held by the dead process, one member of two claimed.
    let b = t.try_alloc(4096 * 3, me).unwrap();
    h.entries.as_slice()[b.head + 2]
        .word
        .store(0, Ordering::Release);
    h.entries.as_slice()[b.head]
        .word
        .store(dead, Ordering::Release);
    assert_eq!(h.reclaim_dead(me), 2);
    assert_eq!(h.stats().free_pages, 8);
}

#[test]
fn alloc_reports_too_large_and_timeout() {
    let h = heap(2);
    let me = me();
    let err = h
        .alloc::<AllocError>(3 * 4096, me, Deadline::now(), || Ok(()))
        .unwrap_err();
    assert_eq!(
        err,
        AllocError::Heap(HeapError::TooLarge {
            len: 3 * 4096,
            max: 2 * PAGE
        })
    );
    let _held = h.table().try_alloc(2 * 4096, me).unwrap();
    let err = h
        .alloc::<AllocError>(1, me, Deadline::now(), || Ok(()))
        .unwrap_err();
    assert_eq!(err, AllocError::Timeout);
}

#[test]
fn bad_identities_never_allocate() {
    let h = heap(2);
    assert!(h.table().try_alloc(1, 0).is_none());
    assert!(h.table().try_alloc(1, MEMBER | 5).is_none());
    assert_eq!(h.stats().free_pages, 2);
}

#[test]
fn attach_rejects_a_scribbled_header() {
    let r = Region::heap(Heap::required_size(4 * PAGE).unwrap()).unwrap();
    Heap::init(&r, 4 * PAGE).unwrap();
    let pages: &AtomicU64 = r.view(8).unwrap();
    pages.store(1 << 40, Ordering::Relaxed);
    assert_eq!(
        Heap::attach(&r).unwrap_err(),
        HeapError::Corrupted("view heap page count")
    );
    pages.store(5, Ordering::Relaxed);
    assert_eq!(
        Heap::attach(&r).unwrap_err(),
        HeapError::Corrupted("view heap layout words")
    );
}

#[derive(Debug, PartialEq)]
enum AllocError {
    Heap(HeapError),
    Timeout,
}

impl From<HeapError> for AllocError {
    fn from(e: HeapError) -> Self {
        AllocError::Heap(e)
    }
}

impl From<Timeout> for AllocError {
    fn from(_: Timeout) -> Self {
        AllocError::Timeout
    }
}
