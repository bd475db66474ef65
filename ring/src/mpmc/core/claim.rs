//! The claim loops: how a producer takes `WRITING(p)` of the slot at the enqueue
//! position and a consumer `READING(q)` of the one at the dequeue position, helping
//! positions on, reclaiming slots of dead holders, waiting briefly ([`Patience`]) for
//! live ones, and poisoning the endpoint on states honest peers cannot produce (see
//! the protocol in the parent module's doc).

use std::time::Instant;

use super::*;

/// The bounded wait of one non-blocking claim for slots held mid-operation: a few
/// growing spins, then `yield_now` until [`PATIENCE`] has passed since the first yield,
/// and one last look after that. Stops at once if the holder's process is dead (the
/// liveness check reclaims such slots; waiting cannot help). Under loom it never waits:
/// models must stay finite, and they check the protocol, not the timing.
struct Patience {
    /// False once this call may not wait (any more).
    enabled: bool,
    /// Pauses made so far.
    pauses: u32,
    /// When the yielding phase ends; set at its first pause.
    until: Option<Instant>,
}

impl Patience {
    fn new(how: Poll) -> Self {
        Self {
            enabled: how == Poll::Try && !cfg!(loom),
            pauses: 0,
            until: None,
        }
    }

    /// Waits a moment for the slot held by participant `who` (validated) to move on.
    /// True: look again; false: this call's patience is spent.
    fn pause(&mut self, core: &MpmcCore, who: u32) -> bool {
        if !self.enabled {
            return false;
        }
        self.pauses += 1;
        if self.pauses <= PATIENCE_SPINS {
            for _ in 0..1u32 << self.pauses.min(PATIENCE_SPIN_SHIFT_MAX) {
                std::hint::spin_loop();
            }
            return true;
        }
        let now = Instant::now();
        match self.until {
            None => {
                if core.holder_dead(who) {
                    self.enabled = false;
                    return false;
                }
                self.until = Some(now + PATIENCE);
            }
            Some(until) if now >= until => {
                // Spent; the caller looks once more (we may have been descheduled
                // while the holder finished).
                self.enabled = false;
                return true;
            }
            Some(_) => {}
        }
        std::thread::yield_now();
        true
    }
}

impl MpmcCore {
    /// The claim loop of a producer. `Ok(Ok(pos))`: this endpoint holds `WRITING(pos)`.
    pub(super) fn claim_send(&self, how: Poll) -> std::result::Result<Result<u64>, Blocked> {
        let cap = self.layout.slots as u64;
        let mut checked_live = false;
        let mut patience = Patience::new(how);
        for _ in 0..MAX_CLAIM_ROUNDS {
            if self.ctl().state.0.closed.load(Ordering::SeqCst) != 0 {
                return Ok(Err(Error::Closed));
            }
            let enq = &self.ctl().enqueue_pos.0;
            let p = enq.load(Ordering::Acquire);
            let slot = self.slot(p);
            let w = slot.state.load(Ordering::Acquire);
            let s = unpack(w);
            if !self.valid_who(s.state, s.who) {
                return Ok(Err(self.poison("mpmc slot word holder")));
            }
            let d = tag_diff(s.tag, p);
            if d == 0 && s.state == EMPTY {
                let mine = pack(p, WRITING, self.me);
                if slot
                    .state
                    .compare_exchange(w, mine, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                advance(enq, p);
                if self.ctl().state.0.closed.load(Ordering::SeqCst) != 0 {
                    // Closed between our check and our claim: give the slot back.
                    slot.state
                        .store(pack(p.wrapping_add(cap), EMPTY, 0), Ordering::Release);
                    self.ctl()
                        .state
                        .0
                        .aborted_by_close
                        .fetch_add(1, Ordering::Relaxed);
                    self.ctl().not_empty.0.notify();
                    self.ctl().not_full.0.notify();
                    return Ok(Err(Error::Closed));
                }
                return Ok(Ok(p));
            }
            if d >= 0 {
                // Position `p` is taken (or long gone).
                if let Err(e) = self.pass_ahead(
                    d,
                    enq,
                    p,
                    "mpmc slot tag more than a lap ahead of the enqueue position",
                ) {
                    return Ok(Err(e));
                }
                continue;
            }
            if d == -(cap as i64) && s.state != EMPTY {
                // The previous lap still holds the slot: full, unless its holder died.
                if (s.state == WRITING || s.state == READING)
                    && self.took_from_dead(slot, w, &mut checked_live)
                {
                    continue;
                }
                // Re-read the position: if it moved, the ring is not full for us.
                if enq.load(Ordering::Acquire) != p {
                    continue;
                }
                // A slot mid-operation (a send or receive of the last lap still
                // running) is not a full ring: give its holder a moment.
                if (s.state == WRITING || s.state == READING) && patience.pause(self, s.who) {
                    continue;
                }
                return Err(Blocked);
            }
            if enq.load(Ordering::Acquire) != p {
                // Our slot read raced with a lap change; retry with the new position.
                continue;
            }
            return Ok(Err(self.poison("mpmc slot tag behind the enqueue position")));
        }
        Err(Blocked)
    }

    /// The claim loop of a consumer. `Ok(Ok((q, len)))`: this endpoint holds
    /// `READING(q)` of a `len`-byte message.
    pub(super) fn claim_recv(
        &self,
        max_len: usize,
        how: Poll,
    ) -> std::result::Result<Result<(u64, usize)>, Blocked> {
        let cap = self.layout.slots as u64;
        let mut checked_live = false;
        let mut patience = Patience::new(how);
        for _ in 0..MAX_CLAIM_ROUNDS {
            // Load `closed` before the slot word (see the module doc on close).
            let closed = self.ctl().state.0.closed.load(Ordering::SeqCst) != 0;
            let deq = &self.ctl().dequeue_pos.0;
            let q = deq.load(Ordering::Acquire);
            let slot = self.slot(q);
            let w = slot.state.load(Ordering::SeqCst);
            let s = unpack(w);
            if !self.valid_who(s.state, s.who) {
                return Ok(Err(self.poison("mpmc slot word holder")));
            }
            let d = tag_diff(s.tag, q);
            if d == 0 {
                match s.state {
                    FULL => {
                        let len = slot.len.load(Ordering::Relaxed) as usize;
                        if slot.state.load(Ordering::Acquire) != w {
                            continue;
                        }
                        if len > self.layout.max_message {
                            return Ok(Err(self.poison("mpmc message length above max_message")));
                        }
                        if len > max_len {
                            return Ok(Err(Error::BufferTooSmall {
                                needed: len,
                                got: max_len,
                            }));
                        }
                        let mine = pack(q, READING, self.me);
                        if slot
                            .state
                            .compare_exchange(w, mine, Ordering::AcqRel, Ordering::Relaxed)
                            .is_err()
                        {
                            continue;
                        }
                        advance(deq, q);
                        return Ok(Ok((q, len)));
                    }
                    WRITING => {
                        // A producer is writing our position: wait for it, unless dead.
                        if self.took_from_dead(slot, w, &mut checked_live) {
                            continue;
                        }
                        if deq.load(Ordering::Acquire) != q {
                            continue;
                        }
                        // A send in progress is not an empty ring: give it a moment.
                        if patience.pause(self, s.who) {
                            continue;
                        }
                        return Err(Blocked);
                    }
                    EMPTY => {
                        if deq.load(Ordering::Acquire) != q {
                            continue;
                        }
                        return if closed {
                            Ok(Err(Error::Closed))
                        } else {
                            Err(Blocked)
                        };
                    }
                    _ => {
                        // READING(q): another consumer has it; help the position on.
                        advance(deq, q);
                        continue;
                    }
                }
            }
            if d > 0 {
                if let Err(e) = self.pass_ahead(
                    d,
                    deq,
                    q,
                    "mpmc slot tag more than a lap ahead of the dequeue position",
                ) {
                    return Ok(Err(e));
                }
                continue;
            }
            if d == -(cap as i64) && s.state == READING {
                // A consumer of the previous lap still reads this slot: empty for us.
                if self.took_from_dead(slot, w, &mut checked_live) {
                    continue;
                }
                if deq.load(Ordering::Acquire) != q {
                    continue;
                }
                return if closed {
                    Ok(Err(Error::Closed))
                } else {
                    Err(Blocked)
                };
            }
            if deq.load(Ordering::Acquire) != q {
                continue;
            }
            return Ok(Err(self.poison("mpmc slot tag behind the dequeue position")));
        }
        Err(Blocked)
    }

    /// A slot whose tag is `d >= 0` positions ahead of position `p` of `pos` (the
    /// enqueue or dequeue word) and not claimable: `p` is taken or long gone, so helps
    /// `pos` on. Poisons
    /// (`Err`) when the tag is not of this slot, or (with `lap_ahead`) when it is more
    /// than a lap ahead of a position that did not move.
    fn pass_ahead(&self, d: i64, pos: &AtomicU64, p: u64, lap_ahead: &'static str) -> Result<()> {
        let cap = self.layout.slots as i64;
        if d % cap != 0 {
            return Err(self.poison("mpmc slot tag not of this slot"));
        }
        if d > cap && pos.load(Ordering::Acquire) == p {
            return Err(self.poison(lap_ahead));
        }
        advance(pos, p);
        Ok(())
    }

    /// Whether `slot`, seen holding word `w`, was taken back from a dead holder. The
    /// holder's liveness is read at most once per claim (`checked_live`) and only when
    /// the endpoint's liveness clock says so.
    fn took_from_dead(&self, slot: &SlotHeader, w: u64, checked_live: &mut bool) -> bool {
        if *checked_live || !self.liveness_due() {
            return false;
        }
        *checked_live = true;
        if !self.holder_dead(unpack(w).who) {
            return false;
        }
        self.take_from_dead(slot, w);
        true
    }
}

/// Moves position word `pos` on from `p` if no one did yet (its holder is known).
#[inline]
fn advance(pos: &AtomicU64, p: u64) {
    let _ = pos.compare_exchange(p, p.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed);
}
