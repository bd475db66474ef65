#![cfg(loom)]
//! loom models of owner words (`culvert_sync::owner`).
//!
//! Property: however two claimers and a releaser interleave, at most one process holds
//! a word at a time: a claim succeeds only from free (or dead; under loom every
//! recorded holder is alive, so only from free here), a successful claim is seen by
//! every later claim as a live holder, and a release by a holder that no longer holds
//! the word changes nothing. The table form: two claimers of a two-word table never
//! get the same word.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert-loom-tests
//! --release --target-dir target/loom --test owner`.

use culvert_sync::owner::{Claimed, OwnerTable, OwnerWord};
use loom::sync::Arc;
use loom::thread;

/// Two identities (under loom both "alive": models run in one process).
const A: u64 = 0x1111;
const B: u64 = 0x2222;

#[test]
fn one_word_has_one_holder_at_a_time() {
    loom::model(|| {
        let word = Arc::new(OwnerWord::new());
        let w = word.clone();
        let other = thread::spawn(move || w.claim(B).is_ok());
        let mine = word.claim(A).is_ok();
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one of two claims of a free word wins"
        );
        let holder = word.load();
        assert_eq!(holder, if mine { A } else { B });
    });
}

#[test]
fn release_frees_only_for_the_holder() {
    loom::model(|| {
        let word = Arc::new(OwnerWord::new());
        assert_eq!(word.claim(A), Ok(Claimed::Free));
        let w = word.clone();
        // B tries to release A's word and to claim it, while A releases it.
        let other = thread::spawn(move || {
            let released = w.release(B);
            let claimed = w.claim(B).is_ok();
            (released, claimed)
        });
        assert!(word.release(A), "the holder releases its word");
        let (released, claimed) = other.join().unwrap();
        assert!(!released, "a non-holder's release changes nothing");
        assert_eq!(word.load(), if claimed { B } else { 0 });
    });
}

#[test]
fn two_claimers_of_a_table_get_different_words() {
    loom::model(|| {
        let words = Arc::new([OwnerWord::new(), OwnerWord::new()]);
        let w = words.clone();
        let other = thread::spawn(move || OwnerTable::new(&w[..]).claim_any(B).map(|c| c.0));
        let mine = OwnerTable::new(&words[..]).claim_any(A).map(|c| c.0);
        let theirs = other.join().unwrap();
        let (mine, theirs) = (
            mine.expect("a word was free"),
            theirs.expect("a word was free"),
        );
        assert_ne!(mine, theirs);
        assert_eq!(words[mine].load(), A);
        assert_eq!(words[theirs].load(), B);
        assert!(
            OwnerTable::new(&words[..]).claim_any(A).is_none(),
            "both words held"
        );
    });
}
