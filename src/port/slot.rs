//! The connection-slot state machine of the connect handshake, written once for the
//! client and the server.
//!
//! A slot's `client` word is its *holder*: 0 when free, the client from its claim until
//! the slot is freed, then whoever finishes the free. Its `state` word moves:
//!
//! ```text
//! FREE (client 0) --claim: client 0 -> me-->  FREE (client = me)
//! FREE --post_request--> REQUESTED --begin_review (server)--> REVIEWING
//! REVIEWING --answer (server)--> ACCEPTED | REJECTED
//! REQUESTED  --withdraw (client gives up)--> freed by the client
//! REVIEWING  --withdraw--> WITHDRAWN, freed by the reviewer when its answer fails
//! REJECTED   --(client, reason read)--> freed by the client
//! ACCEPTED   --leave (client)--> CLOSING, torn down and freed by the server
//! any state whose client died --(server)--> freed by the server
//! ```
//!
//! **Freeing** is two steps. [`ConnSlot::begin_free`] moves `state` from an expected
//! value to `FREEING` by CAS (one winner) and makes the freer the holder by a CAS of
//! `client` from the holder it read; [`ConnSlot::finish_free`] then clears the name,
//! bumps the epoch, stores `FREE`, and last stores `client = 0`, so the slot is
//! claimable only once fully reset. A client that dies between the two steps leaves
//! `FREEING` with its own (dead) identity as holder: the server
//! [takes the free over](ConnSlot::take_over_free) with a CAS of `client` from the dead
//! holder, so exactly one process finishes each free and the epoch moves once.
//!
//! Every state read may be a hostile peer's; callers treat unknown values as
//! `Corrupted` or as "not mine to touch", and no transition here loops.

use culvert_sync::atomic::Ordering;

use super::layout::{
    ConnSlot, SLOT_ACCEPTED, SLOT_CLOSING, SLOT_FREE, SLOT_FREEING, SLOT_REJECTED, SLOT_REQUESTED,
    SLOT_REVIEWING, SLOT_WITHDRAWN,
};

/// What a client giving up on its request finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Withdrawal {
    /// Not reviewed yet: the client freed the slot.
    Freed,
    /// Under review: now `WITHDRAWN`; the reviewer frees it. Wake the server.
    Withdrawn,
    /// The server answered first (`ACCEPTED` or `REJECTED`): the answer stands.
    Answered,
    /// Anything else (the server freed it, or a peer scribbled): not ours any more.
    Lost,
}

impl ConnSlot {
    /// Client: claims this slot if it is free (`client` 0 → `me`).
    pub(crate) fn try_claim(&self, me: u64) -> bool {
        self.client
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Client, holding the claimed slot: names its connection section and posts the
    /// request. Returns the epoch the request belongs to.
    pub(crate) fn post_request(&self, conn_name: &[u8]) -> u32 {
        self.set_name(conn_name);
        let epoch = self.epoch.load(Ordering::Acquire);
        self.state.store(SLOT_REQUESTED, Ordering::Release);
        epoch
    }

    /// Server: takes a posted request for review (`REQUESTED → REVIEWING`).
    pub(crate) fn begin_review(&self) -> bool {
        self.state.load(Ordering::Acquire) == SLOT_REQUESTED
            && self
                .state
                .compare_exchange(
                    SLOT_REQUESTED,
                    SLOT_REVIEWING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// Server, reviewing: answers (`REVIEWING → ACCEPTED | REJECTED`) and wakes the
    /// client. `false` if the client withdrew first (then the reviewer frees the slot
    /// from `WITHDRAWN`).
    pub(crate) fn answer(&self, accepted: bool) -> bool {
        let to = if accepted {
            SLOT_ACCEPTED
        } else {
            SLOT_REJECTED
        };
        let ok = self
            .state
            .compare_exchange(SLOT_REVIEWING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ok {
            self.answered.notify();
        }
        ok
    }

    /// Client `me`, giving up on its request: frees an unreviewed slot, withdraws
    /// one under review, or finds the answer.
    pub(crate) fn withdraw(&self, me: u64) -> Withdrawal {
        if self.begin_free(SLOT_REQUESTED, me, me) {
            self.finish_free();
            return Withdrawal::Freed;
        }
        if self
            .state
            .compare_exchange(
                SLOT_REVIEWING,
                SLOT_WITHDRAWN,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            return Withdrawal::Withdrawn;
        }
        match self.state.load(Ordering::Acquire) {
            SLOT_ACCEPTED | SLOT_REJECTED => Withdrawal::Answered,
            _ => Withdrawal::Lost,
        }
    }

    /// Client: leaves an accepted connection (`ACCEPTED → CLOSING`) for the server to
    /// tear down. `true` if it did (then wake the server).
    pub(crate) fn leave(&self) -> bool {
        self.state
            .compare_exchange(
                SLOT_ACCEPTED,
                SLOT_CLOSING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Starts freeing the slot: `state` `from → FREEING` (one winner), then `me` becomes
    /// the holder in place of `holder` (the `client` word the caller read before).
    /// `false` if the state was not `from`, or if a server took the free over (it
    /// finishes it). On `true` the caller must call [`finish_free`](Self::finish_free).
    pub(crate) fn begin_free(&self, from: u32, holder: u64, me: u64) -> bool {
        if from == SLOT_FREEING
            || self
                .state
                .compare_exchange(from, SLOT_FREEING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        holder == me
            || self
                .client
                .compare_exchange(holder, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Server `me`: takes over a free that `dead` (the holder, found dead) began and
    /// never finished. On `true` the caller must call [`finish_free`](Self::finish_free).
    pub(crate) fn take_over_free(&self, dead: u64, me: u64) -> bool {
        dead != me
            && self.state.load(Ordering::Acquire) == SLOT_FREEING
            && self
                .client
                .compare_exchange(dead, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Finishes a free begun by [`begin_free`](Self::begin_free) or
    /// [`take_over_free`](Self::take_over_free): the slot becomes claimable again, one
    /// epoch later, and a client waiting on it wakes.
    pub(crate) fn finish_free(&self) {
        self.name_len.store(0, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.state.store(SLOT_FREE, Ordering::Release);
        self.client.store(0, Ordering::Release);
        self.answered.notify();
    }
}

#[cfg(all(test, loom))]
mod loom_models;
