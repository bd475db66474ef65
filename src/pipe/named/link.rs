//! An instance slot and the link a connection holds it by.
//!
//! A slot of the server's instance table holds the ticket of the connection using it
//! (0: free). [`Slot::claim`] (by `accept`) takes a free slot for a new ticket; every
//! other transition is a CAS from the ticket its caller saw, and tickets never repeat,
//! so a late release or reclaim of an old connection never frees a newer one's slot
//! (loom model `link::loom_models`).
//!
//! A [`ServerLink`] is the slot one connection holds: each end of it carries one (the
//! server end's also unlinks the instance's name), and dropping either frees the slot
//! and wakes the server, twice being harmless. In shared mode a link frees the slot
//! only once both ends are gone as the holder table decides. Nothing here waits.

use std::sync::Arc;

use culvert_section::{Section, SectionOptions};
use culvert_sync::atomic::Ordering;

use super::super::layout::{Side, StateView};
use super::super::shared::{self, HolderView};
use super::layout::{ServerTables, Slot};

impl Slot {
    /// Accept: takes this free slot for connection `ticket` of `client` (the client's
    /// identity is recorded first, so whoever sees the ticket sees the client). Tickets
    /// never repeat, so every later CAS against a ticket names one connection only.
    pub(super) fn claim(&self, ticket: u64, client: u64) -> bool {
        self.client.store(client, Ordering::Release);
        self.ticket
            .compare_exchange(0, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Frees the slot if connection `ticket` still holds it. `true` if this call did.
    pub(super) fn release(&self, ticket: u64) -> bool {
        ticket != 0
            && self
                .ticket
                .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Frees the slot if the client of the connection holding it is dead (`dead` says
    /// so). `true` if this call did.
    pub(super) fn reclaim_if(&self, dead: impl FnOnce(u64) -> bool) -> bool {
        let ticket = self.ticket.load(Ordering::Acquire);
        ticket != 0 && dead(self.client.load(Ordering::Acquire)) && self.release(ticket)
    }

    /// The ticket of the connection holding the slot (0: free).
    pub(super) fn ticket(&self) -> u64 {
        self.ticket.load(Ordering::Acquire)
    }
}

/// The instance slot a connection holds; freed on drop of either end (shared mode:
/// on the drop of a holder that finds both ends gone).
pub(crate) struct ServerLink {
    tables: Arc<ServerTables>,
    slot: usize,
    ticket: u64,
    /// Server side: the instance section's name, unlinked on release (the client
    /// normally unlinked it already).
    instance: Option<(String, SectionOptions)>,
    /// Shared instances, once an end is attached: its state block and holder table.
    /// The slot is then freed only when both ends are gone.
    views: Option<(StateView, HolderView)>,
}

impl ServerLink {
    /// The link of connection `ticket` in instance slot `slot` of the server `shared`;
    /// `instance` (the server end's) names the instance section to unlink on release.
    pub(super) fn new(
        tables: Arc<ServerTables>,
        slot: usize,
        ticket: u64,
        instance: Option<(String, SectionOptions)>,
    ) -> ServerLink {
        ServerLink {
            tables,
            slot,
            ticket,
            instance,
            views: None,
        }
    }

    /// Frees the slot (if this connection still holds it) and wakes the server.
    pub(crate) fn release(self) {
        drop(self);
    }

    /// Shared mode: from now on, frees the slot only when both ends of the instance
    /// (`state`, `holders`) are gone.
    pub(crate) fn set_shared_views(&mut self, state: StateView, holders: HolderView) {
        self.views = Some((state, holders));
    }

    /// A link for another holder of the same end in this process (shared mode).
    pub(crate) fn for_another_holder(&self) -> ServerLink {
        ServerLink {
            tables: self.tables.clone(),
            slot: self.slot,
            ticket: self.ticket,
            instance: None,
            views: self.views.clone(),
        }
    }
}

impl Drop for ServerLink {
    fn drop(&mut self) {
        if let Some((state, holders)) = &self.views {
            if !(shared::end_gone(state, holders, Side::A)
                && shared::end_gone(state, holders, Side::B))
            {
                // Another holder of either end lives: it, or `accept`, frees the slot.
                return;
            }
        }
        if self.tables.slot(self.slot).release(self.ticket) {
            self.tables.header().events.n.notify();
        }
        if let Some((name, opts)) = &self.instance {
            let _ = Section::unlink(name, opts);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models;
