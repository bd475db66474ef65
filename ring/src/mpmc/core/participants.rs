//! The participant table and dead holders: registering this endpoint (sweeping the
//! slots of a dead previous holder of its entry first), checking whether a slot's
//! holder lives, and giving a dead holder's slot on (`WRITING` → skipped, counted in
//! `abandoned_by_dead_producers`; `READING` → counted in `lost_to_dead_consumers`).

use super::*;
use culvert_sync::owner::{Claimed, Holder, OwnerWord};

impl MpmcCore {
    /// Claims a free or dead participant entry.
    pub(super) fn register(&mut self) -> Result<()> {
        for who in 1..=self.layout.max_endpoints as u32 {
            let entry = OwnerWord::from_atomic(self.part(who));
            match entry.claim(self.identity) {
                Ok(claimed) => {
                    self.me = who;
                    if matches!(claimed, Claimed::FromDead { .. }) {
                        self.sweep(who);
                    }
                    return Ok(());
                }
                Err(_) => continue,
            }
        }
        Err(Error::Busy {
            what: "mpmc participant table (all entries held by live endpoints)",
        })
    }

    /// Frees every slot that names participant `who` (whose process died).
    pub(super) fn sweep(&self, who: u32) {
        for i in 0..self.layout.slots as u64 {
            let slot = self.slot(i);
            let w = slot.state.load(Ordering::Acquire);
            let s = unpack(w);
            if s.who == who && (s.state == WRITING || s.state == READING) {
                self.take_from_dead(slot, w);
            }
        }
    }

    /// Moves a slot held by a dead participant on to `EMPTY(tag + slots)`, counting it.
    /// Returns whether this call did it.
    pub(super) fn take_from_dead(&self, slot: &SlotHeader, w: u64) -> bool {
        let s = unpack(w);
        let next = pack(s.tag.wrapping_add(self.layout.slots as u64), EMPTY, 0);
        if slot
            .state
            .compare_exchange(w, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let st = &self.ctl().state.0;
        if s.state == READING {
            st.lost_to_dead_consumers.fetch_add(1, Ordering::Relaxed);
        } else {
            st.abandoned_by_dead_producers
                .fetch_add(1, Ordering::Relaxed);
        }
        self.ctl().not_full.0.notify();
        self.ctl().not_empty.0.notify();
        true
    }

    /// Frees every slot held by a dead process (what waiters do lazily when they are
    /// stuck on one). Returns how many slots this call freed.
    pub(crate) fn reclaim_dead(&self) -> Result<usize> {
        self.check_poison()?;
        let mut freed = 0;
        for i in 0..self.layout.slots as u64 {
            let slot = self.slot(i);
            let w = slot.state.load(Ordering::Acquire);
            let s = unpack(w);
            if !self.valid_who(s.state, s.who) {
                return Err(self.poison("mpmc slot word holder"));
            }
            if (s.state == WRITING || s.state == READING)
                && self.holder_dead(s.who)
                && self.take_from_dead(slot, w)
            {
                freed += 1;
            }
        }
        Ok(freed)
    }

    /// Whether participant `who` (validated) is gone: its process died, or its entry
    /// was released (a slot naming a released entry has no holder left to finish it).
    pub(super) fn holder_dead(&self, who: u32) -> bool {
        OwnerWord::from_atomic(self.part(who)).holder() != Holder::Alive
    }
}
