//! `PipeServer::accept`: taking a request from the ring, making the instance,
//! answering the client's cell (or refusing it with the cause) and waiting for the client
//! to attach; and freeing the slots of connections whose clients died.

use std::time::Duration;

use culvert_section::{Section, SectionKind};
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline};

use super::super::end::PipeEnd;
use super::super::layout::{create_instance, Placement, StateView};
use super::super::shared::{self, HolderView};
use super::*;
use crate::{Error, Result};

/// How long `accept` waits for an answered client to attach its end.
const ATTACH_GRACE: Duration = Duration::from_secs(5);

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
        let deadline = deadline.into();
        let mut consumer = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let shared = &self.shared;
        let mut first = true;
        wait_for(
            &shared.header().events.n,
            self.opts.wait_strategy,
            deadline,
            |ctx| {
                if ctx.liveness_due || first {
                    first = false;
                    self.reclaim_dead_clients();
                }
                loop {
                    let Some(k) = (0..shared.max_instances)
                        .find(|&k| shared.slot(k).ticket.load(Ordering::Acquire) == 0)
                    else {
                        return Ok(None);
                    };
                    let mut msg = [0u8; REQUEST_LEN];
                    match consumer.try_recv(&mut msg) {
                        Ok(REQUEST_LEN) => {}
                        Ok(_) => continue, // malformed: skip
                        Err(culvert_ring::Error::WouldBlock) => return Ok(None),
                        Err(culvert_ring::Error::BufferTooSmall { .. }) => {
                            // Hostile oversized request: drain it into a scratch buffer.
                            let _ = consumer.try_recv_with(|_| ());
                            continue;
                        }
                        Err(e) => return Err(Error::from(e)),
                    }
                    let idx = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
                    let gen = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
                    if idx >= CELLS {
                        continue;
                    }
                    if let Some(end) = self.answer(idx, gen, k)? {
                        return Ok(Some(end));
                    }
                }
            },
        )
    }

    /// Shared mode: frees the slots of connections whose ends are both gone (every
    /// holder of each closed or died), and unlinks their instance sections' names.
    pub(super) fn reclaim_shared_instances(&self) {
        let shared = &self.shared;
        let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        for (k, entry) in tracked.iter_mut().enumerate().take(shared.max_instances) {
            let Some(t) = entry else { continue };
            let slot = shared.slot(k);
            let ticket = slot.ticket.load(Ordering::Acquire);
            if ticket == t.ticket
                && !(shared::end_gone(&t.state, &t.holders, 0)
                    && shared::end_gone(&t.state, &t.holders, 1))
            {
                continue;
            }
            if ticket == t.ticket {
                let _ =
                    slot.ticket
                        .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire);
            }
            // Freed here, or already by a holder's link: forget the instance.
            let _ = Section::unlink(&t.name, &self.opts.section_for(SectionKind::Pipe));
            *entry = None;
        }
    }

    /// Frees the slots of clients that died (shared mode: of connections whose ends
    /// are both gone).
    fn reclaim_dead_clients(&self) {
        let shared = &self.shared;
        // Shared mode: the client's death alone frees nothing (its children may hold
        // its end); both ends must be gone.
        let slots = if shared.shared {
            self.reclaim_shared_instances();
            0
        } else {
            shared.max_instances
        };
        for k in 0..slots {
            let slot = shared.slot(k);
            let ticket = slot.ticket.load(Ordering::Acquire);
            if ticket == 0 {
                continue;
            }
            let client = slot.client.load(Ordering::Acquire);
            if culvert_sync::holder_of(client) == culvert_sync::Holder::Dead {
                let _ =
                    slot.ticket
                        .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        // Cells of dead clients (a client that died while asking).
        let dead = |c| culvert_sync::holder_of(c) == culvert_sync::Holder::Dead;
        let freed = (0..CELLS)
            .filter(|&i| shared.cell(i).reclaim_if(dead))
            .count();
        if freed > 0 {
            shared.header().answers.n.notify();
        }
    }

    /// Answers the request in cell `idx` (generation `gen`) with instance slot `k`.
    /// `None` when the request was withdrawn or its client died.
    fn answer(&self, idx: usize, gen: u32, k: usize) -> Result<Option<PipeEnd>> {
        let shared = &self.shared;
        let cell = shared.cell(idx);
        let Some(client) = cell.pending_client(gen) else {
            return Ok(None);
        };
        if culvert_sync::holder_of(client) != culvert_sync::Holder::Alive {
            if cell.drop_pending(gen) {
                shared.header().answers.n.notify();
            }
            return Ok(None);
        }
        match self.make_instance(cell, gen, k, client) {
            Ok(end) => Ok(end),
            Err(e) => {
                // Tell the client why, at once, then report it to our caller.
                crate::trace::event!(WARN, pipe = %shared.name, error = %e, "pipe connection refused");
                let (cause, detail) = refusal_of(&e);
                if cell.refuse(gen, cause, detail) {
                    shared.header().answers.n.notify();
                }
                Err(e)
            }
        }
    }

    /// Creates the instance for the request in `cell` (generation `gen`) in slot `k`,
    /// answers the cell and waits (up to [`ATTACH_GRACE`]) for the client to attach.
    /// `None` when the request was withdrawn, or the client gave up or died before
    /// attaching (the slot is then free again).
    fn make_instance(
        &self,
        cell: &Cell,
        gen: u32,
        k: usize,
        client: u64,
    ) -> Result<Option<PipeEnd>> {
        let shared = &self.shared;
        let sopts = self.opts.section_for(SectionKind::Pipe);
        let mut attempts = 0;
        let (section, ticket, name) = loop {
            let ticket = shared.header().next_ticket.fetch_add(1, Ordering::AcqRel);
            let name = instance_name(&shared.name, ticket);
            let mut opts = self.opts.clone();
            opts.mode = shared.mode;
            match create_instance(
                Placement::Named(&name),
                shared.mode,
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
        let slot = shared.slot(k);
        slot.client.store(client, Ordering::Release);
        if slot
            .ticket
            .compare_exchange(0, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            let _ = Section::unlink(&name, &sopts);
            return Ok(None);
        }
        let link = ServerLink {
            shared: shared.clone(),
            slot: k,
            ticket,
            instance: Some((name.clone(), sopts.clone())),
            views: None,
        };
        let end = PipeEnd::attach(section, 0, self.opts.wait_strategy, Some(link))?;
        let views = if shared.shared {
            let state = StateView::new(end.section().object(super::super::layout::STATE_NAME)?)?;
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
                shared::mark_gone(state, 1);
            }
            drop(end);
            return Ok(None);
        }
        shared.header().answers.n.notify();
        // The client attaches next; return once it did (its pid known), so a caller
        // never sees a connection whose client is not there yet.
        let attached: Result<bool> = wait_for(
            &shared.header().events.n,
            self.opts.wait_strategy,
            Deadline::after(ATTACH_GRACE),
            |ctx| {
                // The client claims its end, then records its identity: a connection
                // is handed out only once both are done (its pid known).
                if let Some(outcome) = end.peer_attach_outcome() {
                    return Ok(Some(outcome));
                }
                let released = slot.ticket.load(Ordering::Acquire) != ticket;
                let died = ctx.liveness_due
                    && culvert_sync::holder_of(client) != culvert_sync::Holder::Alive;
                Ok((released || died).then_some(false))
            },
        );
        match attached {
            Ok(true) if end.peer_pid().is_some() => {
                crate::trace::event!(INFO, pipe = %shared.name, client_pid = end.peer_pid().unwrap_or(0), "pipe connection accepted");
                Ok(Some(end))
            }
            _ => {
                if let Some(state) = &views {
                    shared::mark_gone(state, 1);
                }
                drop(end);
                Ok(None)
            }
        }
    }
}
