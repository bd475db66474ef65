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
                let _ =
                    enq.compare_exchange(p, p.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed);
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
                if d % cap as i64 != 0 {
                    return Ok(Err(self.poison("mpmc slot tag not of this slot")));
                }
                if d > cap as i64 && enq.load(Ordering::Acquire) == p {
                    // More than a lap ahead of a position that did not move.
                    return Ok(Err(self.poison(
                        "mpmc slot tag more than a lap ahead of the enqueue position",
                    )));
                }
                // Position `p` is taken (or long gone): help the position on.
                let _ =
                    enq.compare_exchange(p, p.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            if d == -(cap as i64) && s.state != EMPTY {
                // The previous lap still holds the slot: full, unless its holder died.
                if (s.state == WRITING || s.state == READING)
                    && !checked_live
                    && self.liveness_due()
                {
                    checked_live = true;
                    if self.holder_dead(s.who) {
                        self.take_from_dead(slot, w);
                        continue;
                    }
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
                        let _ = deq.compare_exchange(
                            q,
                            q.wrapping_add(1),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                        return Ok(Ok((q, len)));
                    }
                    WRITING => {
                        // A producer is writing our position: wait for it, unless dead.
                        if !checked_live && self.liveness_due() {
                            checked_live = true;
                            if self.holder_dead(s.who) {
                                self.take_from_dead(slot, w);
                                continue;
                            }
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
                        let _ = deq.compare_exchange(
                            q,
                            q.wrapping_add(1),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                        continue;
                    }
                }
            }
            if d > 0 {
                if d % cap as i64 != 0 {
                    return Ok(Err(self.poison("mpmc slot tag not of this slot")));
                }
                if d > cap as i64 && deq.load(Ordering::Acquire) == q {
                    // More than a lap ahead of a position that did not move.
                    return Ok(Err(self.poison(
                        "mpmc slot tag more than a lap ahead of the dequeue position",
                    )));
                }
                let _ =
                    deq.compare_exchange(q, q.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            if d == -(cap as i64) && s.state == READING {
                // A consumer of the previous lap still reads this slot: empty for us.
                if !checked_live && self.liveness_due() {
                    checked_live = true;
                    if self.holder_dead(s.who) {
                        self.take_from_dead(slot, w);
                        continue;
                    }
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
}
