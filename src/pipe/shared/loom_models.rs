//! loom models of a shared pipe end's holders (run with `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert --lib --release
//! --target-dir target/loom pipe::shared`).
//!
//! Properties:
//! * a child attaching through the word its parent reserved for it, while the parent
//!   (the only other holder) leaves, always attaches, and the end is never marked gone:
//!   the reservation counts as a holder from before the spawn;
//! * when the last two holders leave at once, end of stream is never lost: the end is
//!   gone as its peer sees it (`end_gone`), and at most one of them marked it (so the
//!   rings are closed once).

use std::any::Any;
use std::ptr::NonNull;

use culvert_section::{Region, SharedStruct, View};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::super::layout::{
    EndState, HolderTable, PipeState, Side, StateView, END_ATTACHED, END_GONE, MAX_HOLDERS,
};
use super::{attach_holder, detach_holder, end_gone, reservation_word, HolderView};

const PARENT: u64 = 0x10;
const CHILD: u64 = 0x20;
const SIDE: Side = Side::B;

/// A region over a boxed `value` (kept alive by the region).
fn region_of<T: SharedStruct + Send + Sync + 'static>(value: T) -> Region {
    let boxed = Box::new(value);
    let ptr = NonNull::from(&*boxed).cast::<u8>();
    let owner: std::sync::Arc<dyn Any + Send + Sync> = std::sync::Arc::new(boxed);
    // SAFETY: the box lives as long as `owner`, which the region keeps, and never moves.
    unsafe { Region::from_raw_parts(ptr, std::mem::size_of::<T>(), owner) }
}

fn end_state(status: u32, holders: u32) -> EndState {
    EndState {
        identity: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        status: AtomicU32::new(status),
        holders: AtomicU32::new(holders),
        reserved: std::array::from_fn(|_| AtomicU64::new(0)),
    }
}

/// End `SIDE` attached, with holder words `words` (the rest free).
fn end_with(words: &[u64]) -> (StateView, HolderView) {
    let state = PipeState {
        magic: AtomicU64::new(0),
        mode: AtomicU32::new(0),
        flags: AtomicU32::new(0),
        max_message: AtomicU64::new(0),
        slot: AtomicU32::new(0),
        reserved0: AtomicU32::new(0),
        ticket: AtomicU64::new(0),
        reserved1: std::array::from_fn(|_| AtomicU64::new(0)),
        ends: [
            end_state(END_ATTACHED, 1),
            end_state(END_ATTACHED, words.len() as u32),
        ],
    };
    let table = HolderTable {
        ends: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
    };
    for (i, &w) in words.iter().enumerate().take(MAX_HOLDERS) {
        table.ends[SIDE.index()][i].store(w, Ordering::Relaxed);
    }
    let state = StateView::new(region_of(state)).expect("a whole state block");
    let holders = HolderView {
        view: View::new(region_of(table)).expect("a whole holder table"),
    };
    (state, holders)
}

#[test]
fn a_reserved_child_attaches_while_its_parent_leaves() {
    loom::model(|| {
        let reservation = reservation_word(CHILD, 5);
        let (state, holders) = end_with(&[PARENT, reservation]);
        let shared = Arc::new((state, holders));
        let s = shared.clone();
        let child = thread::spawn(move || attach_holder(&s.0, &s.1, SIDE, CHILD, Some(1)));
        let (state, holders) = &*shared;
        let marked = detach_holder(state, holders, SIDE, 0, PARENT);
        let attached = child.join().unwrap();
        assert!(
            !marked,
            "the reservation is a holder: the parent was not the last"
        );
        assert_eq!(
            attached.ok(),
            Some(1),
            "the child attaches through its reservation"
        );
        assert_ne!(state.end(SIDE).status.load(Ordering::SeqCst), END_GONE);
        assert!(!end_gone(state, holders, SIDE));
    });
}

#[test]
fn the_last_two_holders_leaving_never_lose_end_of_stream() {
    loom::model(|| {
        let (state, holders) = end_with(&[PARENT, CHILD]);
        let shared = Arc::new((state, holders));
        let s = shared.clone();
        let other = thread::spawn(move || detach_holder(&s.0, &s.1, SIDE, 1, CHILD));
        let (state, holders) = &*shared;
        let mine = detach_holder(state, holders, SIDE, 0, PARENT);
        let theirs = other.join().unwrap();
        assert!(!(mine && theirs), "the end is marked gone at most once");
        assert!(
            end_gone(state, holders, SIDE),
            "with no holder left the peer sees end of stream"
        );
    });
}
