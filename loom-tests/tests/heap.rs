#![cfg(loom)]
//! loom models of the view heap's allocator (`culvert_section::heap::PageTable`).
//!
//! Properties:
//! * two allocators racing for the same pages never share a page: each block's head
//!   names its holder and its members name its head, and freeing both leaves every
//!   page free;
//! * a dead holder's block is reclaimed exactly once when two reclaimers race, while an
//!   allocator runs beside them: no page is freed twice (the allocator's block stays
//!   intact) and none leaks;
//! * a handed-over block validates for its receiver once the descriptor's publication
//!   is seen, and the receiver's free leaves the table empty.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert-loom-tests
//! --release --target-dir target/loom --test heap`.

use culvert_section::heap::{Block, HotLine, PageEntry, PageTable, MEMBER, PAGE};
use culvert_sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Holder identities (bit 31 clear, non-zero).
const A: u64 = 0x11;
const B: u64 = 0x22;
const DEAD: u64 = 0x33;

struct Table {
    entries: Vec<PageEntry>,
    hot: HotLine,
}

impl Table {
    fn new(pages: usize) -> Arc<Self> {
        Arc::new(Self {
            entries: (0..pages).map(|_| PageEntry::new()).collect(),
            hot: HotLine::new(),
        })
    }

    fn table(&self) -> PageTable<'_> {
        PageTable::new(&self.entries, &self.hot).expect("a non-empty table")
    }

    /// Asserts that `block`'s pages name it: head = `holder`, members = MEMBER|head.
    fn assert_holds(&self, block: &Block, holder: u64) {
        assert_eq!(self.entries[block.head].word(), holder);
        for k in 1..block.pages {
            assert_eq!(
                self.entries[block.head + k].word(),
                MEMBER | block.head as u64
            );
        }
    }
}

#[test]
fn racing_allocators_never_share_a_page() {
    loom::model(|| {
        let t = Table::new(3);
        let t2 = t.clone();
        let other = thread::spawn(move || t2.table().try_alloc(2 * PAGE as u64, B));
        let mine = t.table().try_alloc(2 * PAGE as u64, A);
        let theirs = other.join().unwrap();
        // Three pages hold one two-page block: exactly one allocator wins or, when
        // both claims collide, both may give up (a lost race is not a wrong answer).
        assert!(
            mine.is_none() || theirs.is_none(),
            "two 2-page blocks in 3 pages"
        );
        if let Some(b) = mine {
            t.assert_holds(&b, A);
            assert!(t.table().free(&b, A));
        }
        if let Some(b) = theirs {
            t.assert_holds(&b, B);
            assert!(t.table().free(&b, B));
        }
        assert_eq!(t.table().free_pages(), 3);
    });
}

#[test]
fn a_dead_holders_block_is_reclaimed_once() {
    loom::model(|| {
        let t = Table::new(3);
        let dead = t
            .table()
            .try_alloc(2 * PAGE as u64, A)
            .expect("empty table");
        t.table().hand_over(&dead, A, DEAD).unwrap();
        let alive = |h: u64| h != DEAD;
        let t2 = t.clone();
        let reclaimer = thread::spawn(move || t2.table().reclaim_dead_with(B, alive));
        let t3 = t.clone();
        let allocator = thread::spawn(move || t3.table().try_alloc(1, B));
        let mine = t.table().reclaim_dead_with(A, alive);
        let theirs = reclaimer.join().unwrap();
        let allocated = allocator.join().unwrap();
        assert_eq!(mine + theirs, 1, "the dead block is reclaimed exactly once");
        let held = match allocated {
            Some(b) => {
                t.assert_holds(&b, B);
                1
            }
            None => 0,
        };
        assert_eq!(
            t.table().free_pages(),
            3 - held,
            "no page leaks or is freed twice"
        );
    });
}

#[test]
fn a_handed_over_block_validates_for_its_receiver() {
    loom::model(|| {
        let t = Table::new(2);
        let published = Arc::new(AtomicU64::new(u64::MAX));
        let (t2, p2) = (t.clone(), published.clone());
        let receiver = thread::spawn(move || {
            let offset = p2.load(Ordering::Acquire);
            if offset == u64::MAX {
                return false;
            }
            let d = culvert_section::heap::Descriptor {
                offset,
                len: 100,
                gen: 1,
            };
            let b = t2
                .table()
                .validate(&d, B, 1 << 20)
                .expect("a published view validates");
            assert!(t2.table().free(&b, B));
            true
        });
        let b = t.table().try_alloc(100, A).expect("empty table");
        t.table().hand_over(&b, A, B).unwrap();
        published.store(b.descriptor().offset, Ordering::Release);
        let freed_by_receiver = receiver.join().unwrap();
        if !freed_by_receiver {
            // The receiver never saw it: the sender takes it back.
            t.table().take_back_and_free(&b, B, A);
        }
        assert_eq!(t.table().free_pages(), 2);
    });
}
