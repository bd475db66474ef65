//! # culvert-zenoh — culvert's named objects across hosts
//!
//! This crate owns the *bridge*: one process per host (`culvert bridge`) that
//! carries named pipes, mailslots, broadcast groups and ports between hosts of a
//! *domain* over
//! [Zenoh](https://zenoh.io). It depends on the core crate `culvert`; the core never
//! depends on it, on Zenoh or on tokio.
//!
//! ## The redirector model, and why
//!
//! Applications keep calling the ordinary API with a host-qualified name:
//! `PipeEnd::connect("//hostb/echo", …)`. The core's `culvert::remote` module parses
//! such names and sends one request, over culvert's own shared memory, to the
//! *redirector*: the local bridge's message-mode pipe `culvert.bridge` in the
//! caller's namespace root. The bridge opens the object on the far host (through the
//! far host's bridge), creates a **local proxy object** (for a pipe, a one-instance
//! named pipe of the far pipe's mode and maximum message; for a port, a
//! one-connection port; for a mailslot or group, a local mailslot or group shared by
//! the writers to that target) and answers with the proxy's name; the core opens the
//! proxy with the local call and returns an ordinary `PipeEnd` (`MailslotWriter`,
//! `BroadcastSender`, `PortClient`). This is how Windows serves
//! `\\server\pipe\name` (the redirector), and it was chosen over a separate client API
//! in this crate because:
//!
//! * every user of the local calls — blocking, async, the C binding — reaches remote
//!   names with no new API, and the returned endpoint *is* a local endpoint (every
//!   read mode, `transact`, `peek`, `WaitSet` work unchanged);
//! * the core stays free of Zenoh and tokio, and its local fast path is untouched: a
//!   name without `//` takes exactly the code it took before;
//! * one process per host holds the network session, the allow-list and the TLS
//!   keys; applications hold none.
//!
//! The cost is one extra shared-memory hop on each side (caller ↔ proxy ↔ bridge),
//! small against a network round trip.
//!
//! ## On the wire
//!
//! Keys live under `culvert/<domain>/`: `b/<host>` (liveliness token of each
//! bridge), `h/<host>/open` (each bridge's open queryable), `c/<opener>/<id>/…`
//! (one pipe or port connection's keys), `m/…` and `g/…` (mailslot and broadcast
//! group messages). Every sample is a [`wire::Frame`]: a
//! versioned, length-checked header; a malformed sample is a typed
//! [`wire::WireError`] and ends at most the connection it arrived on, never the
//! bridge. See [`pipe`] for message boundaries, the credit window and how ends
//! propagate, [`mailslot`] for sequence numbers and loss counting, [`port`] for
//! calls, cancel and datagrams, and [`open`] for the open handshake.
//!
//! ## Faults
//!
//! A remote peer's death reads as a local peer's would. When the far peer *process*
//! dies (the far bridge sees `PeerDied` on its local end), its bridge sends
//! [`wire::Kind::PeerDied`] after the data before it; when the far *bridge* dies or
//! its link drops, the others see its liveliness token vanish (about a millisecond on
//! loopback) and take it the same way. The near bridge then keeps the proxy open with
//! its identity words marked dead ([`culvert::pipe::StandIn`],
//! [`culvert::port::PortServer::mark_dead`]) until the local caller goes, so the caller
//! reads what reached it, then `PeerDied`, within culvert's liveness recheck interval
//! (50 ms). A far peer that closes cleanly is still a close: end of stream, `Closed`.
//! Measured on loopback (tests `peer_death`, `bridge_kill`, asserted below 500 ms):
//!
//! * far pipe or port server SIGKILLed: the remote client's read, or its call in
//!   flight, fails with `PeerDied` after about 150 ms (the far bridge's liveness check,
//!   then the caller's);
//! * far bridge SIGKILLed: the remote client's pipe read or pending call fails with
//!   `PeerDied` after 50–100 ms; the far pipe server, whose client was the dead
//!   bridge, sees `PeerDied` too, and a far port server sees its connection go;
//! * pipes and ports on the killed bridge's own host: the proxy's holder process
//!   died, so reads, writes and pending calls fail with `PeerDied` within the same
//!   interval.
//!
//! A bridge that stops cleanly ([`Bridge::stop`]) aborts its connections and tells
//! the far sides, whose local peers see a close.
//!
//! A restarted bridge serves again (its redirector pipe replaces the dead one's; it
//! reconnects to its configured peers). A malformed sample from the network is
//! a typed error: a bad open request gets an `InvalidArgument` reply, a bad frame on
//! a connection aborts that connection only, a bad mailslot frame is ignored.
//!
//! ## Security
//!
//! Nothing is reachable unless exported ([`BridgeConfig::exports`]); Zenoh scouting
//! (multicast and gossip) is off and the session listens and connects only on the
//! configured endpoints; with the `tls` feature, `tls/` endpoints use Zenoh's TLS
//! with mutual authentication ([`config::TlsFiles`]). **File modes do not cross
//! hosts**: a remote caller acts with the rights of the far bridge's user; the
//! allow-list, and the network's own protection, are the access control.
//!
//! ## Example
//!
//! ```no_run
//! use culvert_zenoh::{Bridge, BridgeConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = Bridge::start(
//!     BridgeConfig::new("lab", "hosta")
//!         .listen("tcp/127.0.0.1:7447")
//!         .export("echo"),
//! )?;
//! // Another process on this host may now `PipeEnd::connect("//hostb/name", …)`
//! // when hostb's bridge connects to tcp/127.0.0.1:7447 and exports `name`.
//! bridge.stop();
//! # Ok(())
//! # }
//! ```

pub mod bridge;
pub mod config;
pub mod mailslot;
pub mod open;
pub mod pipe;
pub mod port;
pub mod wire;

pub use bridge::Bridge;
pub use config::{BridgeConfig, TlsFiles};
/// The Zenoh crate this bridge is built on (for tools that compare against it).
pub use zenoh;

/// What starting a bridge can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The configuration is invalid.
    #[error("bridge configuration: {0}")]
    Config(String),
    /// Zenoh refused (a listen endpoint taken, …).
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// A local object could not be served.
    #[error("local: {0}")]
    Local(String),
}
