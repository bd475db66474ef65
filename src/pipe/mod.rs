//! # Pipes — two-way byte or message channels, anonymous and named
//!
//! After Windows pipes, built only from sections and rings: no OS pipe,
//! socket or kernel queue carries data or control, the connection handshake of named
//! pipes included.
//!
//! * [`anonymous`] → two [`PipeEnd`]s; [`anonymous_pending`] keeps the second end
//!   unattached so a child process can take it ([`PipeCommandExt::inherit_pipe_end`]
//!   in the parent, [`PipeEnd::from_inherited`] in the child).
//! * [`PipeServer::bind`] creates a named pipe with `max_instances`, per-direction
//!   buffer sizes and a default timeout; [`PipeServer::accept`] (blocking, with a
//!   deadline, or [`try_accept`](PipeServer::try_accept)) returns the server end of each
//!   connection; [`PipeEnd::connect`] is the client, failing with `Busy` when every
//!   instance stays taken until its timeout, `NotFound` when there is no server.
//! * [`PipeEnd`] is `std::io::Read + Write`, and has [`read_message`](PipeEnd::read_message)
//!   (with [`MessageRead::more`], Windows' `ERROR_MORE_DATA`: nothing is lost),
//!   [`set_read_mode`](PipeEnd::set_read_mode), [`peek`](PipeEnd::peek),
//!   [`transact`](PipeEnd::transact), non-blocking mode, timeouts,
//!   [`peer_pid`](PipeEnd::peer_pid), a [`WaitStrategy`](crate::WaitStrategy) per end,
//!   the half-close [`shutdown_write`](PipeEnd::shutdown_write) and
//!   [`disconnect`](PipeEnd::disconnect).
//! * A `PipeEnd` is used by one thread at a time; [`PipeEnd::split`] gives a
//!   [`PipeReader`] and a [`PipeWriter`] that two threads use at once (full duplex).
//!
//! ```
//! use std::io::{Read, Write};
//! use culvert::pipe::{self, PipeMode, PipeOptions};
//!
//! # fn main() -> culvert::Result<()> {
//! let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
//! for _ in 0..4 {
//!     a.write_all(&[7u8; 128])?;
//! }
//! let mut buf = [0u8; 512];
//! for _ in 0..4 {
//!     assert_eq!(b.read(&mut buf)?, 128); // one message per read
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Design
//!
//! **Instance.** Every pipe instance (an anonymous pipe, or one connection of a named
//! pipe) is one section of kind `Pipe` holding a `#[repr(C)]` state block (mode,
//! `max_message`, and per end: process identity, expected identity, status
//! `Unattached → Attached → Gone`) and two SPSC rings: `a2b`, written by end 0 (the
//! creating or server end), and `b2a`, written by end 1. Anonymous instances are
//! sealed memfds; named ones are sections `<pipe>.pipe-<ticket>`, unlinked as soon as
//! the client opened them.
//!
//! **Byte mode** uses byte rings: reads may merge writes, writes may be split across
//! reads; a blocking `write` writes all of its buffer.
//!
//! **Message mode** uses message rings whose records are *fragments*: an 8-byte header
//! (`flags`: FIRST/LAST, `total_len`) and up to a quarter of the ring of payload. A
//! message longer than that is written as several fragments, so messages up to
//! [`PipeOptions::max_message`] (default 1 MiB) pass through a ring of any size; the
//! only writer of a direction is one end, so no other writer's fragments can come
//! between them. A larger message gets `MessageTooLarge` before anything is written.
//! The reader reads fragments in place (a ring read grant) and keeps a cursor (offset
//! in the current fragment, bytes of the message handed out): a short buffer gets part
//! of the message and `more == true`, the fragment stays in the ring, and the next call
//! continues at the offset — no reassembly buffer, no allocation per message. Every
//! fragment header is checked against the cursor (sequence, lengths, `max_message`);
//! a violation is `Corrupted` and poisons the end. A writer that started a message
//! finishes it even past its write timeout (the reader may already hold part of it);
//! the timeout applies to its start.
//!
//! **End of stream.** Dropping or [`disconnect`](PipeEnd::disconnect)ing an end closes
//! both its rings and marks it gone: the peer reads what was committed, then `Ok(0)`
//! from `Read` (`Closed` from `read_message`), and writes get `BrokenPipe`. A peer
//! process that dies is found by the rings through their owner identities within
//! [`LIVENESS_RECHECK_INTERVAL`](crate::sync::LIVENESS_RECHECK_INTERVAL) (reads drain
//! first, then see end of stream; `read_message` gives `PeerDied`); a writer whose ring
//! still has room checks the reader's liveness at most once per interval (every 32nd
//! write reads the clock). Until the peer attaches (a child not yet started, a client
//! not yet connected) waits are cut into naps of that interval and the *expected* peer
//! (the client's identity; for a child, see [`PipeEnd::expect_peer`]) is checked.
//!
//! **Named pipes.** See the [`PipeServer`] docs and the `named` module: the server's
//! section holds an instance table of `max_instances` slots, a table of request
//! cells, and an MPMC ring carrying connect requests; clients and server wake each
//! other through two notifiers in it.
//!
//! **Shared mode** ([`PipeOptions::shared`], anonymous and named pipes): each
//! direction is an MPMC ring, so an end may be held by several processes at once, each
//! attaching its own producer and consumer to the rings. A shared named pipe's
//! instances are made the same way (holder table included), so either end of a
//! connection can be shared; its instance slot is freed only when both ends are gone
//! (checked by every holder that detaches in the processes of `accept` and `connect`,
//! and by `accept` itself at least every `LIVENESS_RECHECK_INTERVAL`, which covers
//! holders in children).
//!
//! * *Sharing.* [`PendingEnd::spawn_child`] (or `pass_to_child` + `expect_child`) may
//!   be called for any number of children, each of which attaches as one more holder
//!   with [`PipeEnd::from_inherited`]; an attached end is shared with
//!   [`PipeEnd::spawn_child`] / [`PipeEnd::share_with_child`] (the side travels in
//!   `<var>_SIDE`) or, in the same process, [`PipeEnd::try_clone`].
//! * *Holders and end of stream.* The instance section holds a holder table: one word
//!   per attached end (a packed process identity) and *reservations* made for a child
//!   before it is spawned and then converted to name it, so the end does not look
//!   closed in the window before the child attaches, and a child that dies before
//!   attaching is discounted. An end is gone when no word names a live process; the
//!   last holder to close marks it gone, a killed one is found by the other end's
//!   waits (naps of `LIVENESS_RECHECK_INTERVAL`, then a table scan). Whoever finds an
//!   end gone closes both rings: readers drain what was committed, then see end of
//!   stream; writers get `BrokenPipe`. One holder dropping or
//!   [`disconnect`](PipeEnd::disconnect)ing detaches only itself.
//! * *Messages are never fragmented:* an MPMC slot holds `max_message` bytes (at most
//!   1 MiB in shared mode), so messages of different writers cannot interleave and a
//!   message goes whole to one reader — no cross-process write or read lock needed. The
//!   cost is memory: `slots × max_message` per direction (see [`PipeOptions::shared`]).
//!   A `read_message` with a short buffer takes the whole message out of the ring and
//!   keeps the rest in a per-end buffer of `max_message` bytes allocated at attach, so
//!   [`MessageRead::more`] works and nothing is lost; `peek` of a shared message pipe
//!   takes the next message into that buffer too (an MPMC ring cannot show a message
//!   without claiming it), after which it is this holder's to read.
//! * *Byte mode* uses `mpmc::ByteRing` with an atomic write size of 4096 bytes
//!   (`PIPE_BUF`): a write of up to 4096 bytes is never interleaved with another
//!   writer's bytes; a longer one is split into 4096-byte records.
//! * A writer or reader killed mid-operation is handled by the MPMC rings themselves
//!   (its half-written slot is skipped, a taken message counted lost).

mod anon;
mod end;
/// The bodies of the pipe fuzz targets (`pipe_fragments_hostile`: a message pipe's
/// fragment reassembly against a hostile writer forging records and scribbling on its
/// ring).
#[cfg(not(loom))]
pub mod fuzzing {
    pub use super::end::fuzzing::fragments_hostile;
}
mod layout;
mod named;
mod options;
mod shared;
mod standin;

pub use anon::{anonymous, anonymous_pending, PendingEnd, PipeCommandExt, PIPE_FD_ENV};
#[cfg(feature = "tokio")]
pub use end::{AsyncPipeEnd, AsyncPipeReader, AsyncPipeWriter};
pub use end::{MessageGrant, PipeEnd, PipeReader, PipeWriter};
pub use named::PipeServer;
pub use options::{
    MessageRead, Peek, PipeMode, PipeOptions, ReadMode, DEFAULT_BUFFER, DEFAULT_MAX_MESSAGE,
    MAX_BUFFER, MAX_INSTANCES, MAX_MESSAGE_LIMIT, MAX_PIPE_NAME, MIN_BUFFER,
};
pub use standin::StandIn;
