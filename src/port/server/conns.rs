//! The server's table of accepted connections, kept two ways: by slot index (lookups
//! and teardown) and as a dense list, which is what a receive step scans, so that a
//! pass over the request rings costs one step per live connection, not one per slot.
//! Callers hold it behind the server's `RwLock`.

use std::sync::Arc;

use super::ServerConn;

pub(super) struct Conns {
    /// By slot index. Invariant: `by_slot.len()` is the port's `max_connections`, and
    /// `by_slot[i]` is `Some(c)` exactly when `live` holds `c`, with `c.id.index == i`.
    by_slot: Vec<Option<Arc<ServerConn>>>,
    /// The accepted connections, densely, in no particular order.
    live: Vec<Arc<ServerConn>>,
}

impl Conns {
    /// An empty table of `slots` slots.
    pub(super) fn new(slots: usize) -> Self {
        Self {
            by_slot: vec![None; slots],
            live: Vec::with_capacity(slots),
        }
    }

    /// The connection in slot `i`, if any.
    pub(super) fn get(&self, i: usize) -> Option<&Arc<ServerConn>> {
        self.by_slot.get(i)?.as_ref()
    }

    /// Every accepted connection.
    pub(super) fn live(&self) -> &[Arc<ServerConn>] {
        &self.live
    }

    /// Files `conn` under its slot (replacing and returning any connection there).
    pub(super) fn insert(&mut self, conn: Arc<ServerConn>) -> Option<Arc<ServerConn>> {
        let i = conn.id.index as usize;
        let old = self.take(i);
        self.live.push(conn.clone());
        self.by_slot[i] = Some(conn);
        old
    }

    /// Takes the connection out of slot `i`.
    pub(super) fn take(&mut self, i: usize) -> Option<Arc<ServerConn>> {
        let conn = self.by_slot.get_mut(i)?.take()?;
        if let Some(at) = self.live.iter().position(|c| Arc::ptr_eq(c, &conn)) {
            self.live.swap_remove(at);
        }
        Some(conn)
    }

    /// Takes every connection out.
    pub(super) fn take_all(&mut self) -> Vec<Arc<ServerConn>> {
        self.by_slot.iter_mut().for_each(|c| *c = None);
        std::mem::take(&mut self.live)
    }
}
