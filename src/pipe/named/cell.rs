//! The request-cell state machine of the named-pipe connect handshake, written once
//! for the client (`connect`) and the server (`accept`).
//!
//! A cell's `word` is `generation << 32 | state`. A client claims a free cell by CAS,
//! bumping the generation, so a request (cell, generation) names one attempt only:
//!
//! ```text
//! FREE(g) --claim (client)--> CLAIMED(g+1) --post (client, identity first)--> PENDING
//! PENDING --assign (server: ticket, slot first)--> ASSIGNED --take (client)--> FREE
//! PENDING --refuse (server: cause, detail first)--> REFUSED --take (client)--> FREE
//! PENDING --withdraw (client gives up)--> FREE
//! PENDING --drop (server: the client is dead)--> FREE
//! PENDING, ASSIGNED, REFUSED, client dead --reclaim (server)--> FREE
//! ```
//!
//! Every transition out of `PENDING` is a CAS on the whole word, so the server's answer
//! and the client's withdrawal never both win, and a stale request (an old generation)
//! matches nothing. The payload words (`ticket`, `slot`) are written before the CAS
//! that publishes them and read after the load that sees it.
//!
//! **Freeing** a cell goes through `CLAIMED` of the same generation: whoever wins the
//! CAS into it clears `client` to 0 and then stores `FREE`. So a free cell's `client`
//! is always 0, a claimer's identity is never erased by a late free, and the server
//! never mistakes a new claimer for the dead client of an old request (a cell in
//! `CLAIMED` is never reclaimed: it is in its holder's hands). A client killed between
//! its claim and its post leaves its cell `CLAIMED`; that cell stays out of use.
//!
//! Nothing here waits: each transition is one load or CAS; the callers wait on the
//! server's notifiers between them.

use culvert_sync::atomic::Ordering;

use super::layout::{
    cell_word, Cell, CELL_ASSIGNED, CELL_CLAIMED, CELL_FREE, CELL_PENDING, CELL_REFUSED,
};

/// What a client finds in its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Still pending.
    Pending,
    /// The server made the connection: its ticket and instance slot (unchecked: the
    /// caller validates them). The cell is free again.
    Assigned {
        /// The connection's ticket.
        ticket: u64,
        /// The instance slot.
        slot: u64,
    },
    /// The server could not make the connection: the `REFUSED_*` cause and its detail.
    /// The cell is free again.
    Refused {
        /// `REFUSED_*`.
        cause: u64,
        /// The cause's detail (size, errno).
        detail: u64,
    },
    /// The client withdrew the request; nobody answered it.
    Withdrawn,
    /// The cell holds neither this request nor its answer (a hostile peer, or the
    /// server found the client dead).
    Lost,
}

impl Cell {
    /// Client: claims this cell if it is free. Returns the request's generation.
    pub(super) fn try_claim(&self) -> Option<u32> {
        let word = self.word.load(Ordering::Acquire);
        if word as u32 != CELL_FREE {
            return None;
        }
        let gen = ((word >> 32) as u32).wrapping_add(1);
        self.word
            .compare_exchange(
                word,
                cell_word(gen, CELL_CLAIMED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()
            .map(|_| gen)
    }

    /// Client, holding the claimed cell: records its identity and posts the request.
    /// `false` if the cell was taken from it (only a hostile peer does that).
    pub(super) fn post(&self, gen: u32, me: u64) -> bool {
        self.client.store(me, Ordering::Release);
        self.word
            .compare_exchange(
                cell_word(gen, CELL_CLAIMED),
                cell_word(gen, CELL_PENDING),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Frees the cell from state word `from` (by CAS into `CLAIMED` of its generation,
    /// clearing `client`, then `FREE`). `false` if the word was not `from`.
    fn free_from(&self, from: u64) -> bool {
        let gen = (from >> 32) as u32;
        if self
            .word
            .compare_exchange(
                from,
                cell_word(gen, CELL_CLAIMED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return false;
        }
        self.client.store(0, Ordering::Release);
        self.word
            .store(cell_word(gen, CELL_FREE), Ordering::Release);
        true
    }

    /// Client: reads the answer to request `gen`, taking the cell back (`FREE`) when
    /// there is one.
    pub(super) fn answer(&self, gen: u32) -> Answer {
        let word = self.word.load(Ordering::Acquire);
        let answer = if word == cell_word(gen, CELL_PENDING) {
            return Answer::Pending;
        } else if word == cell_word(gen, CELL_ASSIGNED) {
            Answer::Assigned {
                ticket: self.ticket.load(Ordering::Acquire),
                slot: self.slot.load(Ordering::Acquire),
            }
        } else if word == cell_word(gen, CELL_REFUSED) {
            Answer::Refused {
                cause: self.ticket.load(Ordering::Acquire),
                detail: self.slot.load(Ordering::Acquire),
            }
        } else {
            return Answer::Lost;
        };
        // The server may reclaim it meanwhile (if it took us for dead): then it is
        // free already and the answer read stands.
        self.free_from(word);
        answer
    }

    /// Client, giving up on request `gen`: withdraws it, unless the server answered
    /// first — then that answer (the cell taken back), which the caller honours.
    pub(super) fn withdraw(&self, gen: u32) -> Answer {
        if self.free_from(cell_word(gen, CELL_PENDING)) {
            return Answer::Withdrawn;
        }
        match self.answer(gen) {
            Answer::Pending => Answer::Lost,
            other => other,
        }
    }

    /// Server: the client identity of request `gen` while it is pending.
    pub(super) fn pending_client(&self, gen: u32) -> Option<u64> {
        (self.word.load(Ordering::Acquire) == cell_word(gen, CELL_PENDING))
            .then(|| self.client.load(Ordering::Acquire))
    }

    /// Server: answers request `gen` with a connection. `false` if it was withdrawn.
    pub(super) fn assign(&self, gen: u32, ticket: u64, slot: u64) -> bool {
        self.ticket.store(ticket, Ordering::Release);
        self.slot.store(slot, Ordering::Release);
        self.settle(gen, CELL_ASSIGNED)
    }

    /// Server: answers request `gen` with a refusal. `false` if it was withdrawn.
    pub(super) fn refuse(&self, gen: u32, cause: u64, detail: u64) -> bool {
        self.ticket.store(cause, Ordering::Release);
        self.slot.store(detail, Ordering::Release);
        self.settle(gen, CELL_REFUSED)
    }

    /// Server: drops request `gen` of a client found dead. `false` if it moved on.
    pub(super) fn drop_pending(&self, gen: u32) -> bool {
        self.free_from(cell_word(gen, CELL_PENDING))
    }

    /// `PENDING(gen) → to`, by CAS.
    fn settle(&self, gen: u32, to: u32) -> bool {
        self.word
            .compare_exchange(
                cell_word(gen, CELL_PENDING),
                cell_word(gen, to),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Server: frees this cell if its client is dead (`dead` says so), whatever state
    /// it was left in. `true` if it did.
    pub(super) fn reclaim_if(&self, dead: impl FnOnce(u64) -> bool) -> bool {
        let word = self.word.load(Ordering::Acquire);
        let state = word as u32;
        if !matches!(state, CELL_PENDING | CELL_ASSIGNED | CELL_REFUSED) {
            return false;
        }
        let client = self.client.load(Ordering::Acquire);
        client != 0 && dead(client) && self.free_from(word)
    }
}

#[cfg(all(test, loom))]
mod loom_models;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const DEAD: u64 = 0x7fff_fff0 | (1 << 32);
    const LIVE: u64 = 0x10;

    /// The interleaving of a server's two maintenance passes and a new claimer, step by
    /// step: the second pass must not take the cell the claimer got after the first.
    #[test]
    fn reclaim_spares_a_cell_claimed_after_it() {
        let cell = Cell::new();
        let gen = cell.try_claim().unwrap();
        assert!(cell.post(gen, DEAD));
        let dead = |c| c == DEAD;
        assert!(
            cell.reclaim_if(dead),
            "the dead client's request is reclaimed"
        );
        let mine = cell.try_claim().expect("the reclaimed cell is free");
        assert!(
            !cell.reclaim_if(dead),
            "a claimed cell is not the dead client's"
        );
        assert!(cell.post(mine, LIVE));
        assert_eq!(cell.pending_client(mine), Some(LIVE));
        assert!(!cell.reclaim_if(dead));
        assert_eq!(cell.withdraw(mine), Answer::Withdrawn);
        assert_eq!(cell.client.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_refusal_is_never_taken_for_an_assignment() {
        let cell = Cell::new();
        let gen = cell.try_claim().unwrap();
        assert!(cell.post(gen, LIVE));
        assert!(cell.refuse(gen, REFUSED, 17));
        assert_eq!(
            cell.withdraw(gen),
            Answer::Refused {
                cause: REFUSED,
                detail: 17
            }
        );
        assert_eq!(cell.try_claim(), Some(gen + 1), "the cell is free again");
    }

    const REFUSED: u64 = 1;
}
