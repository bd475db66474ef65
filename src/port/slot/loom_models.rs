//! loom models of the connection-slot state machine (run with `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert --lib --release
//! --target-dir target/loom port::slot`).
//!
//! Properties:
//! * a client giving up and a server answering never both win: the client either
//!   keeps the server's answer, or frees / withdraws the slot and the server's answer
//!   fails (then the reviewer frees it); in every case the slot ends free, unheld, and
//!   exactly one epoch later;
//! * two clients claiming one slot: exactly one holds it;
//! * a free begun by a client that dies is finished exactly once: a server's takeover
//!   racing a second server thread's free of the same slot bumps the epoch once.

use loom::sync::Arc;
use loom::thread;

use super::Withdrawal;
use crate::port::layout::{ConnSlot, SLOT_FREE, SLOT_REVIEWING, SLOT_WITHDRAWN};
use culvert_sync::atomic::Ordering;

const CLIENT: u64 = 0x10;
const OTHER: u64 = 0x20;
const SERVER: u64 = 0x30;

fn requested() -> Arc<ConnSlot> {
    let slot = Arc::new(ConnSlot::new());
    assert!(slot.try_claim(CLIENT));
    assert_eq!(slot.post_request(b"conn"), 0);
    slot
}

fn assert_free_once(slot: &ConnSlot) {
    assert_eq!(slot.state.load(Ordering::Acquire), SLOT_FREE);
    assert_eq!(
        slot.client.load(Ordering::Acquire),
        0,
        "a freed slot is unheld"
    );
    assert_eq!(
        slot.epoch.load(Ordering::Acquire),
        1,
        "each free moves the epoch once"
    );
}

/// The server's side of one request: review, answer, and free on a failed answer the
/// way `PendingConnect` does. Returns whether the answer stood.
fn serve(slot: &ConnSlot, accept: bool) -> bool {
    if !slot.begin_review() {
        return false;
    }
    if slot.answer(accept) {
        return true;
    }
    let client = slot.client.load(Ordering::Acquire);
    if slot.begin_free(SLOT_REVIEWING, client, SERVER)
        || slot.begin_free(SLOT_WITHDRAWN, client, SERVER)
    {
        slot.finish_free();
    }
    false
}

fn withdraw_races_answer(accept: bool) {
    loom::model(move || {
        let slot = requested();
        let s = slot.clone();
        let server = thread::spawn(move || serve(&s, accept));
        let got = slot.withdraw(CLIENT);
        let answered = server.join().unwrap();
        assert_eq!(
            got == Withdrawal::Answered,
            answered,
            "the client keeps an answer exactly when the server's answer stood"
        );
        match got {
            Withdrawal::Answered if accept => {
                // The connection lives, then the client leaves and the server tears down.
                assert!(slot.leave());
                assert!(slot.begin_free(super::SLOT_CLOSING, CLIENT, SERVER));
                slot.finish_free();
            }
            Withdrawal::Answered => {
                // Rejected: the client frees after reading the reason.
                assert!(slot.begin_free(super::SLOT_REJECTED, CLIENT, CLIENT));
                slot.finish_free();
            }
            Withdrawal::Freed | Withdrawal::Withdrawn => {}
            Withdrawal::Lost => panic!("a request in flight is never lost"),
        }
        assert_free_once(&slot);
    });
}

#[test]
fn withdraw_races_accept() {
    withdraw_races_answer(true);
}

#[test]
fn withdraw_races_reject() {
    withdraw_races_answer(false);
}

#[test]
fn two_claims_one_holder() {
    loom::model(|| {
        let slot = Arc::new(ConnSlot::new());
        let s = slot.clone();
        let other = thread::spawn(move || s.try_claim(OTHER));
        let mine = slot.try_claim(CLIENT);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one claim wins");
        let holder = slot.client.load(Ordering::Acquire);
        assert_eq!(holder, if mine { CLIENT } else { OTHER });
    });
}

/// One server thread's maintenance pass over a slot whose client (`CLIENT`) is dead,
/// as `ServerState::maintain` does it. Returns whether this thread finished a free.
fn maintain(slot: &ConnSlot) -> bool {
    let state = slot.state.load(Ordering::Acquire);
    let client = slot.client.load(Ordering::Acquire);
    let begun = match state {
        super::SLOT_FREEING if client == CLIENT => slot.take_over_free(client, SERVER),
        super::SLOT_FREEING => false,
        st => client == CLIENT && slot.begin_free(st, client, SERVER),
    };
    if begun {
        slot.finish_free();
    }
    begun
}

#[test]
fn a_dead_clients_slot_is_freed_once_by_racing_server_threads() {
    loom::model(|| {
        // The client posted its request and died.
        let slot = requested();
        let s = slot.clone();
        let other = thread::spawn(move || maintain(&s));
        let mine = maintain(&slot);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one server thread frees the slot");
        assert_free_once(&slot);
    });
}

#[test]
fn a_free_a_dead_client_began_is_finished_once() {
    loom::model(|| {
        // A rejected client began its free and died before finishing it.
        let slot = requested();
        assert!(slot.begin_review());
        assert!(slot.answer(false));
        assert!(slot.begin_free(super::SLOT_REJECTED, CLIENT, CLIENT));
        let s = slot.clone();
        let other = thread::spawn(move || maintain(&s));
        let mine = maintain(&slot);
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one server thread takes the free over"
        );
        assert_free_once(&slot);
    });
}
