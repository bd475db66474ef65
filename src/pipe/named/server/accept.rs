//! `PipeServer::accept`: taking a request from the ring, making the instance,
//! answering the client's cell (or refusing it with the cause), and handing the
//! instance out once the client attached; and freeing the slots of connections whose
//! clients died.
//!
//! Nothing here waits. An answered instance is kept as a [`PendingAccept`] until its
//! client attached (then `try_accept` returns it), gave up, died, or took longer than
//! [`ATTACH_GRACE`]; the client notifies the server's `events` notifier after it
//! attached, so a blocking `accept` (the one waiting adapter over the same step)
//! sleeps there.

use std::time::{Duration, Instant};

use culvert_section::{Section, SectionKind};
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline};

use super::*;
use crate::pipe::layout::{create_instance, Placement, Side, StateView, STATE_NAME};
use crate::pipe::named::instance_name;
use crate::pipe::named::layout::{REFUSED_NO_SPACE, REFUSED_OS_ERROR, REFUSED_OTHER};
use crate::pipe::named::link::ServerLink;
use crate::pipe::shared::{self, HolderView};
use crate::{Error, Result};

/// How long an answered client may take to attach its end before its instance is
/// dropped.
const ATTACH_GRACE: Duration = Duration::from_secs(5);

/// An instance made for a client that has not attached yet.
pub(super) struct PendingAccept {
    /// The server end; its link holds the instance slot.
    end: PipeEnd,
    /// The slot and ticket of the connection.
    slot: usize,
    ticket: u64,
    /// The client's identity.
    client: u64,
    /// Shared mode: the instance's state block (to mark the client's end gone if it
    /// never attaches).
    state: Option<StateView>,
    /// When the client's cell was answered.
    answered: Instant,
}

impl PendingAccept {
    /// Gives the instance up: the client's end counts as gone, the slot is freed.
    pub(super) fn abandon(self) {
        if let Some(state) = &self.state {
            shared::mark_gone(state, Side::B);
        }
        drop(self.end);
    }
}

/// The refusal cause and detail a server writes for `e`.
fn refusal_of(e: &Error) -> (u64, u64) {
    match e {
        Error::Section(culvert_section::Error::NoSpace { size, .. }) => (REFUSED_NO_SPACE, *size),
        Error::Io(io) => match io.raw_os_error() {
            Some(errno) => (REFUSED_OS_ERROR, errno as u64),
            None => (REFUSED_OTHER, 0),
        },
        _ => (REFUSED_OTHER, 0),
    }
}

impl PipeServer {
    /// [`accept`](Self::accept), giving up at `deadline` (a `Duration`, an `Instant`, a
    /// [`Deadline`]…).
    ///
    /// # Errors
    /// `Timeout` when the deadline passed with no client; `Section`/`Io` if an
    /// instance section could not be made (the waiting client is told the cause);
    /// `Corrupted` if the server's shared state broke an invariant.
    pub fn accept_until(&self, deadline: impl Into<Deadline>) -> Result<PipeEnd> {
        let mut first = true;
        wait_for(
            &self.tables.header().events.n,
            self.opts.wait_strategy,
            deadline.into(),
            |ctx| {
                let check = std::mem::take(&mut first) || ctx.liveness_due;
                self.accept_step(check)
            },
        )
    }

    /// One step of accepting, never waiting: hands out an instance whose client
    /// attached, else answers the waiting requests (while instance slots are free).
    /// `check` also frees the slots and cells of dead clients and drops instances whose
    /// client died before attaching.
    pub(super) fn accept_step(&self, check: bool) -> Result<Option<PipeEnd>> {
        if check {
            self.reclaim_dead_clients();
        }
        if let Some(end) = self.take_attached(check) {
            return Ok(Some(end));
        }
        let tables = &self.tables;
        let mut consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let Some(k) = (0..tables.max_instances).find(|&k| tables.slot(k).ticket() == 0) else {
                return Ok(None);
            };
            let mut msg = [0u8; REQUEST_LEN];
            match consumer.try_read(&mut msg) {
                Ok(REQUEST_LEN) => {}
                Ok(_) => continue, // malformed: skip
                Err(culvert_ring::Error::WouldBlock) => return Ok(None),
                Err(culvert_ring::Error::BufferTooSmall { .. }) => {
                    // Hostile oversized request: drain it into a scratch buffer.
                    let _ = consumer.try_read_with(|_| ());
                    continue;
                }
                Err(e) => return Err(Error::from(e)),
            }
            let idx = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
            let gen = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
            if idx >= CELLS {
                continue;
            }
            if let Some(pending) = self.answer(idx, gen, k)? {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(pending);
                if let Some(end) = self.take_attached(false) {
                    return Ok(Some(end));
                }
            }
        }
    }

    /// Whether an answered client attached (so `try_accept` returns its instance).
    pub(super) fn attached_waiting(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|p| p.end.peer_attach_outcome() == Some(true))
    }

    /// Takes the instance of a client that attached, dropping those whose client gave
    /// up, let its slot go, took longer than [`ATTACH_GRACE`], or (when `check`) died.
    fn take_attached(&self, check: bool) -> Option<PipeEnd> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = 0;
        while i < pending.len() {
            let p = &pending[i];
            let keep = match p.end.peer_attach_outcome() {
                Some(true) => {
                    let p = pending.swap_remove(i);
                    crate::trace::event!(INFO, pipe = %self.tables.name, client_pid = p.end.peer_pid().unwrap_or(0), "pipe connection accepted");
                    return Some(p.end);
                }
                Some(false) => false,
                None => {
                    let released = self.tables.slot(p.slot).ticket() != p.ticket;
                    let died =
                        check && culvert_sync::holder_of(p.client) != culvert_sync::Holder::Alive;
                    !(released || died || p.answered.elapsed() > ATTACH_GRACE)
                }
            };
            if keep {
                i += 1;
            } else {
                pending.swap_remove(i).abandon();
            }
        }
        None
    }

    /// Shared mode: frees the slots of connections whose ends are both gone (every
    /// holder of each closed or died), and unlinks their instance sections' names.
    pub(super) fn reclaim_shared_instances(&self) {
        let tables = &self.tables;
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        for (k, entry) in tracked.iter_mut().enumerate().take(tables.max_instances) {
            let Some(t) = entry else { continue };
            let slot = tables.slot(k);
            let ticket = slot.ticket();
            if ticket == t.ticket
                && !(shared::end_gone(&t.state, &t.holders, Side::A)
                    && shared::end_gone(&t.state, &t.holders, Side::B))
            {
                continue;
            }
            if ticket == t.ticket {
                slot.release(ticket);
            }
            // Freed here, or already by a holder's link: forget the instance.
            let _ = Section::unlink(&t.name, &self.opts.section_for(SectionKind::Pipe));
            *entry = None;
        }
    }

    /// Frees the slots of clients that died (shared mode: of connections whose ends
    /// are both gone).
    fn reclaim_dead_clients(&self) {
        let tables = &self.tables;
        // Shared mode: the client's death alone frees nothing (its children may hold
        // its end); both ends must be gone.
        let slots = if tables.shared_mode {
            self.reclaim_shared_instances();
            0
        } else {
            tables.max_instances
        };
        let dead = |c| culvert_sync::holder_of(c) == culvert_sync::Holder::Dead;
        for k in 0..slots {
            tables.slot(k).reclaim_if(dead);
        }
        // Cells of dead clients (a client that died while asking).
        let freed = (0..CELLS)
            .filter(|&i| tables.cell(i).reclaim_if(dead))
            .count();
        if freed > 0 {
            tables.header().answers.n.notify();
        }
    }

    /// Answers the request in cell `idx` (generation `gen`) with instance slot `k`.
    /// `None` when the request was withdrawn or its client died.
    fn answer(&self, idx: usize, gen: u32, k: usize) -> Result<Option<PendingAccept>> {
        let tables = &self.tables;
        let cell = tables.cell(idx);
        let Some(client) = cell.pending_client(gen) else {
            return Ok(None);
        };
        if culvert_sync::holder_of(client) != culvert_sync::Holder::Alive {
            if cell.drop_pending(gen) {
                tables.header().answers.n.notify();
            }
            return Ok(None);
        }
        match self.make_instance(cell, gen, k, client) {
            Ok(end) => Ok(end),
            Err(e) => {
                // Tell the client why, at once, then report it to our caller.
                crate::trace::event!(WARN, pipe = %tables.name, error = %e, "pipe connection refused");
                let (cause, detail) = refusal_of(&e);
                if cell.refuse(gen, cause, detail) {
                    tables.header().answers.n.notify();
                }
                Err(e)
            }
        }
    }

    /// Creates the instance for the request in `cell` (generation `gen`) in slot `k`
    /// and answers the cell. `None` when the request was withdrawn meanwhile (the slot
    /// is then free again).
    fn make_instance(
        &self,
        cell: &Cell,
        gen: u32,
        k: usize,
        client: u64,
    ) -> Result<Option<PendingAccept>> {
        let tables = &self.tables;
        let sopts = self.opts.section_for(SectionKind::Pipe);
        let mut attempts = 0;
        let (section, ticket, name) = loop {
            let ticket = tables.header().next_ticket.fetch_add(1, Ordering::AcqRel);
            let name = instance_name(&tables.name, ticket);
            let mut opts = self.opts.clone();
            opts.mode = tables.mode;
            match create_instance(
                Placement::Named(&name),
                tables.mode,
                &opts,
                k as u32,
                ticket,
                client,
            ) {
                Ok(s) => break (s, ticket, name),
                Err(Error::AlreadyExists { .. }) if attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let slot = tables.slot(k);
        if !slot.claim(ticket, client) {
            let _ = Section::unlink(&name, &sopts);
            return Ok(None);
        }
        let link = ServerLink::new(
            tables.clone(),
            k,
            ticket,
            Some((name.clone(), sopts.clone())),
        );
        let end = PipeEnd::attach(section, Side::A, self.opts.wait_strategy, Some(link))?;
        let views = if tables.shared_mode {
            let state = StateView::new(end.section().object(STATE_NAME)?)?;
            let holders = HolderView::open(end.section())?;
            let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
            tracked[k] = Some(TrackedInstance {
                ticket,
                state: state.clone(),
                holders,
                name: name.clone(),
            });
            Some(state)
        } else {
            None
        };
        if !cell.assign(gen, ticket, k as u64) {
            // Withdrawn at the last moment: dropping the end frees the slot. Shared
            // mode: the client will not attach, so its end is gone too.
            if let Some(state) = &views {
                shared::mark_gone(state, Side::B);
            }
            drop(end);
            return Ok(None);
        }
        tables.header().answers.n.notify();
        // The client attaches next: the instance is handed out once it did (its pid
        // known), so a caller never sees a connection whose client is not there yet.
        Ok(Some(PendingAccept {
            end,
            slot: k,
            ticket,
            client,
            state: views,
            answered: Instant::now(),
        }))
    }
}
