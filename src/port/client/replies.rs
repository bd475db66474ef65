//! Collecting replies on a client's reply ring. One thread at a time — the *leader* —
//! reads the ring and files each reply under its call id in the client's table, waking
//! the threads (and futures) waiting for it; the other callers (*followers*) sleep on
//! the table's condition variable until their reply is filed or the leader leaves, and
//! one of them leads next. A leader's own reply is handed straight back, not filed. A
//! blocking wait waits until its deadline (`Timeout` cancels the call); a non-blocking
//! one (`PendingCall` polls) never waits.

use super::*;

impl ClientInner {
    /// Waits until `deadline` for the reply to `id`; cancels the call on `Timeout`.
    pub(super) fn reply_or_cancel(&self, id: u64, deadline: Deadline) -> Result<Reply> {
        match self.wait(id, deadline, true) {
            Err(Error::Timeout) => {
                self.cancel(id);
                Err(Error::Timeout)
            }
            r => r,
        }
    }

    /// Gives up on call `id`: a reply already here is dropped (its view freed), a later
    /// one will be; the server is told, so it may skip the reply.
    pub(super) fn cancel(&self, id: u64) {
        let removed = lock(&self.table).calls.remove(&id);
        drop(removed);
        let _ = self.try_push_record(wire::KIND_CANCEL, id, Body::None);
    }

    /// Waits for the reply to `id`. Non-blocking (`blocking == false`): `WouldBlock`
    /// when it has not arrived.
    pub(super) fn wait(&self, id: u64, deadline: Deadline, blocking: bool) -> Result<Reply> {
        let mut t = lock(&self.table);
        let mut gave_up: Option<Error> = None;
        loop {
            match t.calls.get_mut(&id) {
                None => return Err(Error::Cancelled),
                Some(slot @ Some(_)) => {
                    let r = slot.take().unwrap_or(Err(Error::Cancelled));
                    t.calls.remove(&id);
                    return r.map(|payload| Reply { id, payload });
                }
                Some(None) => {}
            }
            if let Some(f) = &t.failed {
                let e = f.error();
                t.calls.remove(&id);
                return Err(e);
            }
            if let Some(e) = gave_up.take() {
                return Err(e);
            }
            if t.leader {
                if !blocking {
                    return Err(Error::WouldBlock);
                }
                let Some(left) = deadline
                    .remaining()
                    .or(Some(LIVENESS_RECHECK_INTERVAL))
                    .filter(|d| !d.is_zero())
                else {
                    return Err(Error::Timeout);
                };
                t.followers += 1;
                t = self
                    .cv
                    .wait_timeout(t, left.min(LIVENESS_RECHECK_INTERVAL))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                t.followers -= 1;
                continue;
            }
            t.leader = true;
            drop(t);
            let r = self.pump(id, deadline, blocking);
            t = lock(&self.table);
            t.leader = false;
            if t.followers > 0 {
                self.cv.notify_all();
            }
            match r {
                // Our own reply, handed over by `pump` without filing it.
                Ok(Some(mine)) => {
                    t.calls.remove(&id);
                    return mine.map(|payload| Reply { id, payload });
                }
                Ok(None) => {}
                Err(e) => match Fail::from_error(&e) {
                    Some(f) => t.failed = Some(f),
                    None => gave_up = Some(e),
                },
            }
        }
    }

    /// The leader's work: reads replies and files those of other calls until `want`'s
    /// arrives (blocking) or the ring is empty (non-blocking). `want`'s own reply is
    /// returned, not filed: no other thread waits for it.
    fn pump(
        &self,
        want: u64,
        deadline: Deadline,
        blocking: bool,
    ) -> Result<Option<Result<Payload>>> {
        let mut g = lock(&self.reader);
        let (reader, buf, last_check) = &mut *g;
        loop {
            let n = if blocking {
                reader.read(buf, deadline)
            } else {
                reader.try_read(buf)
            };
            let n = match n {
                Ok(n) => n,
                Err(culvert_ring::Error::WouldBlock) => {
                    if last_check.elapsed() >= LIVENESS_RECHECK_INTERVAL {
                        *last_check = Instant::now();
                        self.check_server()?;
                    }
                    return Err(Error::WouldBlock);
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(mine) = self.dispatch(&buf[..n], want)? {
                return Ok(Some(mine));
            }
        }
    }

    /// Files one reply record under its call id (or drops it), except the reply to
    /// `want`, which is returned.
    fn dispatch(&self, bytes: &[u8], want: u64) -> Result<Option<Result<Payload>>> {
        let (h, body) = wire::decode(
            bytes,
            &[
                wire::KIND_REPLY,
                wire::KIND_NO_REPLY,
                wire::KIND_REPLY_FAILED,
            ],
        )?;
        if h.conn != self.index || h.epoch != self.epoch {
            return Err(corrupt("reply for another connection"));
        }
        let result = match (h.kind, body) {
            (wire::KIND_NO_REPLY, _) => Err(Error::Closed),
            (wire::KIND_REPLY_FAILED, Body::Inline(b)) if b.len() <= wire::FAILURE_TEXT_MAX => {
                Err(Error::ReplyFailed {
                    reason: String::from_utf8_lossy(b).into_owned(),
                })
            }
            (wire::KIND_REPLY_FAILED, _) => Err(corrupt("reply failure record")),
            (_, Body::Inline(b)) => Ok(Payload::copy_of(b)),
            (_, Body::View(d)) => self
                .server_heap
                .table()
                .validate(&d, self.me, self.cfg.max_message as u64)
                .map_err(Error::from)
                .map(|b| Payload::view(View::new(self.server_heap.clone(), b, self.me))),
            _ => Err(corrupt("reply without a body")),
        };
        if h.id == want {
            return Ok(Some(result));
        }
        let mut t = lock(&self.table);
        match t.calls.get_mut(&h.id) {
            Some(slot @ None) => {
                *slot = Some(result);
                if t.followers > 0 {
                    self.cv.notify_all();
                }
                self.filed.notify();
            }
            _ => {
                // Nobody waits for it (cancelled or timed out): dropped, view freed.
                drop(t);
                drop(result);
            }
        }
        Ok(None)
    }
}
