//! loom models of the named-pipe request cell (run with `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert --lib --release
//! --target-dir target/loom pipe::named::cell`).
//!
//! Properties:
//! * a client giving up and the server answering never both win: the client gets the
//!   server's answer (assignment or refusal) exactly when the server's answer stood,
//!   and a refusal is never taken for an assignment; the cell ends free and unheld;
//! * two clients claiming one cell: exactly one holds it.
//!
//! The server's reclaim of a dead client's cell racing a new claimer is checked by the
//! unit test `reclaim_spares_a_cell_claimed_after_it` instead: its race is a load then
//! a CAS in the reclaiming thread against a load in the claimer, and loom's
//! exploration (one last access remembered per atomic) does not reorder those.

use loom::sync::Arc;
use loom::thread;

use super::super::layout::{cell_word, Cell, CELL_FREE};
use super::Answer;
use culvert_sync::atomic::Ordering;

const CLIENT: u64 = 0x10;

fn posted(by: u64) -> (Arc<Cell>, u32) {
    let cell = Arc::new(Cell::new());
    let gen = cell.try_claim().expect("a new cell is free");
    assert!(cell.post(gen, by));
    (cell, gen)
}

fn assert_free(cell: &Cell, gen: u32) {
    assert_eq!(cell.word.load(Ordering::Acquire), cell_word(gen, CELL_FREE));
    assert_eq!(
        cell.client.load(Ordering::Acquire),
        0,
        "a free cell is unheld"
    );
}

fn withdraw_races(refuse: bool) {
    loom::model(move || {
        let (cell, gen) = posted(CLIENT);
        let c = cell.clone();
        let server = thread::spawn(move || {
            if c.pending_client(gen) != Some(CLIENT) {
                return false;
            }
            if refuse {
                c.refuse(gen, 1, 42)
            } else {
                c.assign(gen, 7, 3)
            }
        });
        let got = cell.withdraw(gen);
        let answered = server.join().unwrap();
        eprintln!("WITER {got:?} {answered}");
        match got {
            Answer::Withdrawn => assert!(!answered, "a withdrawn request has no answer"),
            Answer::Assigned { ticket, slot } => {
                assert!(answered && !refuse, "an assignment only from assign");
                assert_eq!((ticket, slot), (7, 3));
            }
            Answer::Refused { cause, detail } => {
                assert!(answered && refuse, "a refusal only from refuse");
                assert_eq!((cause, detail), (1, 42));
            }
            other => panic!("a request in flight gave {other:?}"),
        }
        assert_free(&cell, gen);
    });
}

#[test]
fn withdraw_races_assign() {
    withdraw_races(false);
}

#[test]
fn withdraw_races_refuse() {
    withdraw_races(true);
}

#[test]
fn two_claims_one_holder() {
    loom::model(|| {
        let cell = Arc::new(Cell::new());
        let c = cell.clone();
        let other = thread::spawn(move || c.try_claim());
        let mine = cell.try_claim();
        let theirs = other.join().unwrap();
        assert!(mine.is_some() ^ theirs.is_some(), "exactly one claim wins");
    });
}
