//! Owner words and owner tables: which process holds a piece of shared memory (a ring
//! side, a participant entry, a connection slot), in a way PID reuse cannot fool.
//!
//! An owner word is a 64-bit atomic holding 0 ("free") or a
//! [`ProcessIdentity::packed`] value. What it says is always read the same way,
//! through [`holder_of`]: [`Holder::Free`], [`Holder::Alive`] or [`Holder::Dead`] —
//! never "0 counts as dead" in one place and "0 counts as alive" in another. A word is
//! claimed from free or from a dead holder by one compare-exchange, released by its
//! holder, and reclaimed (dead → free) by anyone. A table is a run of owner words with
//! the same three operations over all of them, plus a scan.
//!
//! Every access is `SeqCst`, so a protocol that orders an owner-word claim against
//! another `SeqCst` access (a broadcast group's `closing` word) can rely on one total
//! order; on x86 this costs nothing over acquire/release.
//!
//! Values come from memory other processes can write: a forged word is at worst
//! reported alive or dead wrongly (it costs a `Busy` or a takeover), never more. Every
//! loop is bounded: a claim that keeps losing its compare-exchange to a word that
//! changes under it gives up as busy after [`CLAIM_ROUNDS`] rounds.
//!
//! Under `--cfg loom` models run in one process: every recorded holder is alive.

use crate::atomic::{AtomicU64, Ordering};
use crate::{Liveness, ProcessIdentity};

/// Most compare-exchange rounds one claim makes before reporting the word busy.
pub const CLAIM_ROUNDS: u32 = 64;

/// Who holds an owner word, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    /// Nobody (the word is 0).
    Free,
    /// A process that still runs (or whose liveness could not be read: never declared
    /// dead without evidence).
    Alive,
    /// A process that exited, was killed, or whose pid now names another process.
    Dead,
}

/// What the value `word` of an owner word says (reads `/proc` unless it is 0 or names
/// the calling process).
pub fn holder_of(word: u64) -> Holder {
    if word == 0 {
        return Holder::Free;
    }
    if cfg!(loom) || word == my_owner_id() {
        // Models run in one process; and this process is alive without asking /proc.
        return Holder::Alive;
    }
    match ProcessIdentity::packed_liveness(word) {
        Liveness::Alive => Holder::Alive,
        Liveness::Dead => Holder::Dead,
    }
}

/// The packed identity of the calling process, as owner words record it (cached,
/// fork-aware).
pub fn my_owner_id() -> u64 {
    ProcessIdentity::me().packed()
}

/// A successful claim: what the word held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// It was free.
    Free,
    /// It named a dead process (`previous`): whatever that process held through the
    /// word is the claimer's to clean up.
    FromDead {
        /// The dead holder's packed identity.
        previous: u64,
    },
}

/// An owner word in shared memory: 0 or a packed identity.
#[repr(transparent)]
#[derive(Debug, Default)]
pub struct OwnerWord(AtomicU64);

impl OwnerWord {
    /// A free word.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// A free word.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Views an atomic of a shared struct as an owner word.
    pub fn from_atomic(word: &AtomicU64) -> &OwnerWord {
        // SAFETY: `OwnerWord` is `repr(transparent)` over `AtomicU64`: same size,
        // alignment and validity, and the reference keeps the borrow's lifetime.
        unsafe { &*(word as *const AtomicU64).cast::<OwnerWord>() }
    }

    /// Views the atomics of a shared table as owner words.
    pub fn from_atomics(words: &[AtomicU64]) -> &[OwnerWord] {
        // SAFETY: `OwnerWord` is `repr(transparent)` over `AtomicU64`, so a slice of
        // one is a slice of the other, element for element.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<OwnerWord>(), words.len()) }
    }

    /// The raw value (0 or a packed identity).
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Who holds the word now.
    pub fn holder(&self) -> Holder {
        holder_of(self.load())
    }

    /// Claims the word for `me` (a packed identity, usually [`my_owner_id`]): from
    /// free, or from a dead holder.
    ///
    /// # Errors
    /// The live holder's packed identity when a live process holds it, or when the
    /// word kept changing for [`CLAIM_ROUNDS`] rounds.
    pub fn claim(&self, me: u64) -> Result<Claimed, u64> {
        let mut current = self.load();
        for _ in 0..CLAIM_ROUNDS {
            if current == me {
                // Held by this very process: alive, no need to ask /proc.
                return Err(me);
            }
            let claimed = match holder_of(current) {
                Holder::Alive => return Err(current),
                Holder::Free => Claimed::Free,
                Holder::Dead => Claimed::FromDead { previous: current },
            };
            match self
                .0
                .compare_exchange(current, me, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(claimed),
                Err(now) => current = now,
            }
        }
        Err(current)
    }

    /// Gives the word up if `me` still holds it; whether it did.
    pub fn release(&self, me: u64) -> bool {
        self.0
            .compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Hands the word from `me` to `stand_in` if `me` holds it: a relay that holds an
    /// endpoint for a process elsewhere puts an identity no live process has there, so
    /// that peers read the far process's death as this holder's. Idempotent: whether
    /// the word now holds `stand_in`.
    pub fn hand_to(&self, me: u64, stand_in: u64) -> bool {
        match self
            .0
            .compare_exchange(me, stand_in, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(now) => now == stand_in,
        }
    }

    /// Frees the word if its holder is dead; returns the dead holder when this call
    /// freed it.
    pub fn reclaim_dead(&self) -> Option<u64> {
        let current = self.load();
        (holder_of(current) == Holder::Dead
            && self
                .0
                .compare_exchange(current, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok())
        .then_some(current)
    }
}

/// How many words of a table are free, held by live processes, or by dead ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Free words.
    pub free: usize,
    /// Words of live holders.
    pub alive: usize,
    /// Words of dead holders.
    pub dead: usize,
}

impl Scan {
    /// Nobody alive holds any word (all free or dead).
    pub fn none_alive(&self) -> bool {
        self.alive == 0
    }
}

/// A run of owner words (a participant table, a holder table).
#[derive(Debug, Clone, Copy)]
pub struct OwnerTable<'a> {
    words: &'a [OwnerWord],
}

impl<'a> OwnerTable<'a> {
    /// The table over `words`.
    pub fn new(words: &'a [OwnerWord]) -> Self {
        Self { words }
    }

    /// Word `i` (`None` past the end).
    pub fn get(&self, i: usize) -> Option<&'a OwnerWord> {
        self.words.get(i)
    }

    /// Claims the first word that is free or held by a dead process, for `me`;
    /// returns its index and what it held. `None` when live processes hold every word.
    pub fn claim_any(&self, me: u64) -> Option<(usize, Claimed)> {
        self.words
            .iter()
            .enumerate()
            .find_map(|(i, w)| w.claim(me).ok().map(|c| (i, c)))
    }

    /// Counts free, live and dead words (one `/proc` read per held word).
    pub fn scan(&self) -> Scan {
        let mut s = Scan::default();
        for w in self.words {
            match w.holder() {
                Holder::Free => s.free += 1,
                Holder::Alive => s.alive += 1,
                Holder::Dead => s.dead += 1,
            }
        }
        s
    }

    /// Frees every word of a dead holder; returns the indices this call freed.
    pub fn reclaim_dead(&self) -> Vec<usize> {
        self.words
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.reclaim_dead().map(|_| i))
            .collect()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A packed identity of a process that does not exist (our pid, another start
    /// time).
    fn dead_id() -> u64 {
        let me = ProcessIdentity::me();
        ProcessIdentity::from_parts(me.pid, me.start_time.wrapping_add(1)).packed()
    }

    #[test]
    fn free_alive_and_dead_are_told_apart() {
        assert_eq!(holder_of(0), Holder::Free);
        assert_eq!(holder_of(my_owner_id()), Holder::Alive);
        assert_eq!(holder_of(dead_id()), Holder::Dead);
    }

    #[test]
    fn a_word_is_claimed_from_free_or_dead_never_from_alive() {
        let me = my_owner_id();
        let w = OwnerWord::new();
        assert_eq!(w.claim(me), Ok(Claimed::Free));
        assert_eq!(w.claim(me), Err(me), "a live holder (even us) keeps it");
        assert!(w.release(me));
        assert!(!w.release(me), "released once");
        let dead = dead_id();
        let w = OwnerWord(AtomicU64::new(dead));
        assert_eq!(w.claim(me), Ok(Claimed::FromDead { previous: dead }));
        assert_eq!(w.load(), me);
    }

    #[test]
    fn reclaim_frees_only_dead_holders() {
        let words = [
            OwnerWord(AtomicU64::new(0)),
            OwnerWord(AtomicU64::new(my_owner_id())),
            OwnerWord(AtomicU64::new(dead_id())),
            OwnerWord(AtomicU64::new(dead_id())),
        ];
        let t = OwnerTable::new(&words);
        assert_eq!(
            t.scan(),
            Scan {
                free: 1,
                alive: 1,
                dead: 2
            }
        );
        assert_eq!(t.reclaim_dead(), vec![2, 3]);
        assert_eq!(t.scan().dead, 0);
        assert!(!t.scan().none_alive());
        assert_eq!(t.claim_any(my_owner_id()).map(|c| c.0), Some(0));
        assert_eq!(t.claim_any(my_owner_id()).map(|c| c.0), Some(2));
    }

    #[test]
    fn a_view_of_an_atomic_is_the_same_word() {
        let raw = AtomicU64::new(0);
        let w = OwnerWord::from_atomic(&raw);
        assert_eq!(w.claim(my_owner_id()), Ok(Claimed::Free));
        assert_eq!(raw.load(Ordering::Relaxed), my_owner_id());
    }
}
