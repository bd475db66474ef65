//! [`PortServer::mark_dead`]: a port that relays for a process elsewhere (the culvert
//! bridge's proxy ports, see [`crate::remote`]) made to look, to its clients, as if its
//! own process had died.
//!
//! A client waiting for replies reads the server's death from the owner word of the
//! writer of its reply ring: once that word names a dead process and every reply
//! already committed was read, the wait fails with `PeerDied`, and so does every later
//! call. `mark_dead` puts [`DEAD_STAND_IN`](crate::remote::DEAD_STAND_IN) there for
//! each accepted connection, by a compare-exchange from this process's identity, and
//! marks the connections dead on the server's side: their records are dropped and
//! nothing more is written to them (a "no reply" record or a closed reply ring would
//! read as a close). The caller keeps the port open — a closed port reads as `Closed`
//! too — until [`connection_count`](PortServer::connection_count) drops to zero, which
//! the housekeeping brings about once each client disconnected or died.
//! The word is handed over with the ring writer's
//! [`hand_owner_to`](culvert_ring::spsc::MessageWriter::hand_owner_to), which writes
//! only if it holds this process's identity; when it holds anything else `mark_dead`
//! reports `false` and the caller closes the port instead.

use super::*;

impl PortServer {
    /// For a server that relays for a process elsewhere: makes every accepted
    /// connection look to its client as if this server's process had died (see the
    /// module doc). The client reads the replies already sent, then its pending and
    /// later calls fail with `PeerDied` within `LIVENESS_RECHECK_INTERVAL`; requests
    /// that arrive from then on are dropped, and `Incoming`s already received send
    /// nothing when answered or dropped. Connections accepted later are not marked.
    /// Keep the port open until [`connection_count`](Self::connection_count) is zero.
    ///
    /// Returns `false` if some connection's reply ring could not be marked (its
    /// client would then wait in vain: close the port instead).
    pub fn mark_dead(&self) -> bool {
        self.inner.mark_dead()
    }
}

impl ServerState {
    fn mark_dead(&self) -> bool {
        let conns: Vec<Arc<ServerConn>> = self.conns().live().to_vec();
        let mut all = true;
        for c in conns {
            c.dead.store(true, Ordering::Release);
            let w = c.writer.lock().unwrap_or_else(|e| e.into_inner());
            all &= w
                .as_ref()
                .is_some_and(|w| w.hand_owner_to(crate::remote::DEAD_STAND_IN));
        }
        all
    }
}
