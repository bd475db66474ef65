//! # Pipes — two-way byte or message channels, anonymous and named
//!
//! After Windows pipes (DESIGN §7), built only from sections and rings: no OS pipe,
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
//!   [`peer_pid`](PipeEnd::peer_pid), a [`WaitStrategy`](crate::WaitStrategy) per end and
//!   [`disconnect`](PipeEnd::disconnect).
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
//! **Named pipes.** See the [`PipeServer`] docs and the `server` module: the server's
//! section holds an instance table of `max_instances` slots, a table of request
//! cells, and an MPMC ring carrying connect requests; clients and server wake each
//! other through two notifiers in it.
//!
//! **Shared mode** ([`PipeOptions::shared`]) is not implemented in this build: creating
//! a shared pipe fails with `InvalidArgument`.

mod anon;
mod end;
mod layout;
mod options;
mod server;

pub use anon::{anonymous, anonymous_pending, PendingEnd, PipeCommandExt, PIPE_FD_ENV};
pub use end::PipeEnd;
pub use options::{
    MessageRead, Peek, PipeMode, PipeOptions, ReadMode, DEFAULT_BUFFER, DEFAULT_MAX_MESSAGE,
    MAX_BUFFER, MAX_INSTANCES, MAX_MESSAGE_LIMIT, MAX_PIPE_NAME, MIN_BUFFER,
};
pub use server::PipeServer;
