//! [`StandIn`]: what a relay keeps of a pipe end it serves for a process elsewhere (the
//! culvert bridge's proxies, see [`crate::remote`]), to let that end's peer see the far
//! process die.
//!
//! The peer of an exclusive end reads that end's death from its identity word: while
//! the end's status says attached and the word names a dead process, the peer's reads
//! drain what was committed and then fail with `PeerDied`, and its writes fail with
//! `PeerDied`, each within `LIVENESS_RECHECK_INTERVAL`. [`StandIn::mark_dead`] puts
//! [`DEAD_STAND_IN`] in that word, by a compare-exchange from the caller's own identity,
//! and touches nothing else. The caller then keeps its end open — not dropped,
//! disconnected or half-closed, which the peer would read as a close — and writes
//! nothing more on it, until [`StandIn::peer_left`] says the peer end is gone.
//!
//! Exclusive pipes only: a shared end's liveness is its holder table, where a holder's
//! death counts as a close.

use culvert_sync::atomic::Ordering;
use culvert_sync::owner::my_owner_id;

use super::end::PipeEnd;
use super::layout::{Side, StateView, END_ATTACHED, STATE_NAME};
use crate::remote::DEAD_STAND_IN;
use crate::{Error, Result};

/// One end of an exclusive pipe connection, as the relay that holds it for a process
/// elsewhere sees it. Cheap to clone; keeps the instance's state block mapped.
#[derive(Clone)]
pub struct StandIn {
    state: StateView,
    side: Side,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("side", &self.side.index())
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// For `end`, an end [`PipeServer::accept`](super::PipeServer::accept) returned (the
    /// server end of its instance), attached by this process.
    ///
    /// # Errors
    /// `InvalidArgument` for a shared end, or one this process does not hold attached
    /// on that side; `Corrupted` or `Section` if the state block cannot be read.
    pub fn server_end(end: &PipeEnd) -> Result<StandIn> {
        Self::new(end, Side::A)
    }

    /// For `end`, an end [`PipeEnd::connect`] returned (the client end of its
    /// instance), attached by this process.
    ///
    /// # Errors
    /// As [`server_end`](Self::server_end).
    pub fn client_end(end: &PipeEnd) -> Result<StandIn> {
        Self::new(end, Side::B)
    }

    fn new(end: &PipeEnd, side: Side) -> Result<StandIn> {
        let state = StateView::new(end.section().object(STATE_NAME)?)?;
        let invalid = |what: &str| Error::InvalidArgument {
            what: format!("stand-in: {what}"),
        };
        if state.config()?.shared {
            return Err(invalid("a shared pipe end"));
        }
        let e = state.end(side);
        if e.status.load(Ordering::Acquire) != END_ATTACHED
            || e.identity.load(Ordering::Acquire) != my_owner_id()
        {
            return Err(invalid(
                "not an end this process holds attached on that side",
            ));
        }
        Ok(StandIn { state, side })
    }

    /// Makes the end look to its peer as if the process holding it had died (see the
    /// module doc). Idempotent. `false` if the end's identity word names neither this
    /// process nor [`DEAD_STAND_IN`] (a hostile peer scribbled it).
    pub fn mark_dead(&self) -> bool {
        culvert_sync::OwnerWord::from_atomic(&self.state.end(self.side).identity)
            .hand_to(my_owner_id(), DEAD_STAND_IN)
    }

    /// Whether the peer end is gone: it closed or gave up, or the process recorded for
    /// it died (one `/proc` read unless its status already says so).
    pub fn peer_left(&self) -> bool {
        self.state.peer_gone(self.side)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::{PipeMode, PipeOptions, PipeServer};
    use super::*;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn a_marked_end_reads_as_dead_to_its_peer_after_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let opts = PipeOptions::default().root(dir.path());
        let server = PipeServer::bind("standin", &opts.clone().mode(PipeMode::Message)).unwrap();
        let client = std::thread::spawn(move || PipeEnd::connect_with("standin", T, &opts));
        let mut end = server.accept_until(T).unwrap();
        let mut client = client.join().unwrap().unwrap();
        let stand_in = StandIn::server_end(&end).unwrap();
        end.write_message(b"last words").unwrap();
        assert!(stand_in.mark_dead());
        assert!(stand_in.mark_dead(), "idempotent");
        client.set_read_timeout(Some(T));
        let mut buf = [0u8; 32];
        let r = client.read_message(&mut buf).unwrap();
        assert_eq!(&buf[..r.len], b"last words");
        let started = Instant::now();
        assert!(matches!(
            client.read_message(&mut buf),
            Err(Error::PeerDied)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(matches!(client.write_message(b"x"), Err(Error::PeerDied)));
        assert!(!stand_in.peer_left());
        drop(client);
        assert!(stand_in.peer_left());
        drop(end);
    }
}
