//! loom models of a named pipe's instance slot (run with `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert --lib --release
//! --target-dir target/loom pipe::named::link::loom_models`).
//!
//! Property: a new connection's claim of a slot is never undone by the old
//! connection's late release or by a reclaim of the old connection's dead client:
//! both act only on the ticket they saw, and tickets never repeat.

use loom::sync::Arc;
use loom::thread;

use super::super::layout::Slot;

const OLD: u64 = 1;
const NEW: u64 = 2;
const DEAD_CLIENT: u64 = 0x10;
const NEW_CLIENT: u64 = 0x20;

#[test]
fn a_new_claim_survives_the_old_connections_release_and_reclaim() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        assert!(slot.claim(OLD, DEAD_CLIENT));
        // The old connection's link releases its slot while a maintenance pass
        // reclaims the old (dead) client's slot; accept claims it for the new one.
        let s = slot.clone();
        let link = thread::spawn(move || s.release(OLD));
        let s = slot.clone();
        let reclaim = thread::spawn(move || s.reclaim_if(|c| c == DEAD_CLIENT));
        let claimed = slot.claim(NEW, NEW_CLIENT);
        let released = link.join().unwrap();
        let reclaimed = reclaim.join().unwrap();
        assert!(
            released ^ reclaimed,
            "the old connection's slot is freed exactly once"
        );
        if claimed {
            assert_eq!(slot.ticket(), NEW, "the new connection keeps its slot");
        } else {
            assert_eq!(
                slot.ticket(),
                0,
                "a claim fails only while the old one holds it"
            );
        }
    });
}
