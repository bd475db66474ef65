//! Named pipes: [`PipeServer`] (bind, accept) and [`PipeEnd::connect`], split by role
//! as the port is.
//!
//! * [`layout`] — the server section's memory ([`layout::ServerHeader`],
//!   [`layout::Slot`], [`layout::Cell`], the constants) and [`layout::ServerTables`],
//!   the section mapped and validated, as server, clients and links see it;
//! * [`cell`] — the request-cell state machine, written once for both roles;
//! * [`link`] — the instance-slot transitions, and [`ServerLink`]: the slot a
//!   connection holds, freed by either end;
//! * [`server`] — [`PipeServer`]: bind, queries, drop, readiness; `server/accept`
//!   holds the accept step (requests, instances, answers, reclaiming);
//! * [`client`] — [`PipeEnd::connect`] and its variants: the client's handshake.
//!
//! Who waits: every `connect*` call (on the server's `answers` notifier and for room
//! in the request ring, up to its deadline) and the waiting accepts (`accept`,
//! `accept_until`, `accept_async`, on the `events` notifier). Nothing else here waits:
//! `bind`, `try_accept`, the queries, the cell and slot transitions and every drop
//! return without waiting.
//!
//! The server's section (kind `PipeServer`, named after the pipe) holds:
//!
//! * `server` — a [`layout::ServerHeader`]: configuration, the server's identity, a
//!   `closed` flag, the ticket counter, and two notifiers: `events` (the server sleeps
//!   there: a request arrived, an instance slot was freed) and `answers` (clients sleep
//!   there: a request was answered, a request cell was freed);
//! * `slots` — the instance table, `max_instances` [`layout::Slot`]s; a slot holds the
//!   ticket of the connection using it (0: free) and the client's identity;
//! * `cells` — [`CELLS`](layout::CELLS) request cells a client claims by CAS before
//!   asking; the cell carries the client's identity and, once answered, the
//!   connection's ticket and slot;
//! * `requests` — an MPMC message ring carrying `(cell, generation)` from clients to
//!   the server (the connect handshake goes through a ring, not an OS channel).
//!
//! Connect: claim a cell (`FREE → CLAIMED`, identity, `→ PENDING`), send its number
//! through `requests`, notify `events`, wait on `answers` until the cell is
//! `ASSIGNED`, read the ticket and slot, free the cell, open the instance section
//! `<name>.pipe-<ticket>` (which the server created) and unlink its name. On timeout
//! the client withdraws its cell (`PENDING → FREE`); if that CAS loses, the server
//! answered just in time and the client connects anyway. `Busy` is that timeout
//! (every instance taken, or the server not accepting); `NotFound` is no server, a
//! closed one or a dead one.
//!
//! Accept (never waiting; the blocking forms wait on `events` between steps): with a
//! free slot, take a request, skip withdrawn cells and dead clients, create the
//! instance section (end [`Side::B`](super::layout::Side::B) expected to be the
//! client, so a client dying before it attaches is noticed), answer the cell
//! (`PENDING → ASSIGNED`), and keep the instance until the client attached (it
//! notifies `events`), so the returned end knows its peer, as after Windows'
//! `ConnectNamedPipe`; a client that gives up, dies or takes longer than
//! `ATTACH_GRACE` is dropped. If the instance cannot be made (`NoSpace`, an I/O
//! error), the cell is answered `PENDING → REFUSED` with the cause, so the client fails
//! at once with it, and `accept` returns it. A slot is freed when either end of its
//! connection is dropped or disconnected (both CAS the slot's ticket to 0, so twice is
//! harmless), or, found by `accept`, when the client process died.
//!
//! **Shared named pipes** ([`PipeOptions::shared`](super::PipeOptions::shared); the
//! header's `flags` has [`SERVER_FLAG_SHARED`](layout::SERVER_FLAG_SHARED)): instances
//! are made like shared anonymous pipes (MPMC rings and a holder table), so either end
//! of a connection may be shared with children or cloned. A slot is then freed only
//! when *both* ends are gone as the holder table decides (`shared::end_gone`): a holder
//! that carries the connection's link (the end `accept` or `connect` returned, and its
//! `try_clone`s) checks that when it detaches; holders without one (children) are
//! covered by `accept`, which keeps a view of every instance it made and, at least
//! every `LIVENESS_RECHECK_INTERVAL` while it waits, frees the slots of connections
//! whose ends are both gone (and unlinks the instance's name). A client's death alone
//! frees nothing in shared mode: its children may hold its end.
//!
//! [`PipeEnd::connect`]: super::PipeEnd::connect

mod cell;
mod client;
mod layout;
mod link;
mod server;

pub(crate) use link::ServerLink;
pub use server::PipeServer;

/// The name of the section of connection `ticket` of pipe `pipe`.
fn instance_name(pipe: &str, ticket: u64) -> String {
    format!("{pipe}.pipe-{ticket}")
}
