//! # culvert — lock-free shared-memory channels for Linux
//!
//! The facade crate. It re-exports the layers below and owns the channel layers
//! built only from sections and rings:
//!
//! * [`pipe`] — two-way byte or message pipes, anonymous and named (Windows
//!   named-pipe semantics);
//! * [`mailslot`] — one-way, many writers, broadcast groups, never silent loss;
//! * [`port`] — ALPC-like request/reply with inline copies and shared-memory views.
//!
//! Below them: [`sync`] (cross-process wait/wake), [`section`] (shared memory
//! objects) and [`ring`] (the rings the layers are built on).
//!
//! ## Conventions shared by every layer
//!
//! * **Waiting.** A call that may wait takes its limit as `impl Into<`[`Deadline`]`>`:
//!   a `Duration` from now, an `Instant`, `None` for ever, or a `Deadline`
//!   (`Deadline::now()` polls once). A timeout *stored* on an endpoint or in options
//!   (`set_read_timeout`, `MailslotOptions::read_timeout`) is an `Option<Duration>`
//!   applied to each call, as `std::net::TcpStream` does. A call that would wait
//!   past its deadline fails with [`Error::Timeout`]; a non-blocking one with
//!   [`Error::WouldBlock`].
//! * **Namespace.** Named objects live in one directory: `$CULVERT_ROOT`, else
//!   `/dev/shm`. Each layer's options set another one the same way —
//!   [`PipeOptions::root`](pipe::PipeOptions::root),
//!   [`MailslotOptions::root`](mailslot::MailslotOptions::root),
//!   [`PortOptions::root`](port::PortOptions::root) — and the `*_with` form of each
//!   `open`/`connect` call takes those options.
//! * **Which calls wait.** Calls named `try_*`, every `Waitable::poll_ready`, writes to
//!   a mailslot or a broadcast group, and `PortClient::call_async` (for an inline
//!   request) never wait. Calls that take a deadline wait at most until it:
//!   `PipeServer::accept_until`, `PipeEnd::connect*`, `PortClient::connect*`, `call`,
//!   `send_datagram_until`, `PendingCall::wait`, `PortServer::listen`, `receive` and
//!   `next_event`, `WaitSet::wait`; their forms without a deadline (`accept`,
//!   `send_datagram`) wait as long as the peer lives. The `std::io` calls of a pipe end
//!   (`read`, `write`, `read_message`, `write_message`, `transact`) wait by the end's
//!   settings (its read and write timeouts, or not at all after
//!   `set_nonblocking(true)`), as `MailslotReader::read` waits by its read timeout. Every
//!   `*_async` call returns a future and never blocks its thread.
//! * **Many endpoints at once.** Every receiving endpoint — [`PipeEnd`](pipe::PipeEnd),
//!   [`PipeReader`](pipe::PipeReader), [`PipeServer`](pipe::PipeServer),
//!   [`MailslotReader`](mailslot::MailslotReader), [`PortServer`](port::PortServer), the ring
//!   readers — implements [`Waitable`]: a [`WaitSet`] sleeps on any mix of them (and on
//!   process-local [`Event`]s) with one deadline and says which are ready; their
//!   `try_*` calls, which never wait, then do the work. A peer that closed or died
//!   makes its endpoint ready (a dead process within
//!   [`LIVENESS_RECHECK_INTERVAL`](sync::LIVENESS_RECHECK_INTERVAL)).
//!
//!   ```
//!   use std::time::Duration;
//!   use culvert::pipe::{self, PipeMode, PipeOptions};
//!   use culvert::{WaitSet, Waitable};
//!
//!   # fn main() -> culvert::Result<()> {
//!   let (mut a, mut a_peer) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
//!   let (mut b, mut b_peer) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
//!   b_peer.write_message(b"to b")?;
//!   let mut set = WaitSet::new();
//!   let ready = set.wait(&mut [&mut a as &mut dyn Waitable, &mut b], Duration::from_secs(5))?;
//!   assert_eq!(ready, &[1]);
//!   let mut buf = [0u8; 16];
//!   assert_eq!(b.try_read_message(&mut buf)?.len, 4);
//!   # drop((a_peer, a));
//!   # Ok(())
//!   # }
//!   ```
//! * **Async.** Every waiting call has a future beside it, for any executor (a reactor
//!   thread per process sleeps on the endpoints' futex words and wakes the tasks):
//!   [`PipeEnd::read_message_async`](pipe::PipeEnd::read_message_async),
//!   [`write_message_async`](pipe::PipeEnd::write_message_async),
//!   [`PipeServer::accept_async`](pipe::PipeServer::accept_async),
//!   [`PipeEnd::connect_async`](pipe::PipeEnd::connect_async),
//!   [`MailslotReader::read_async`](mailslot::MailslotReader::read_async),
//!   [`PortServer::next_event_async`](port::PortServer::next_event_async); a
//!   [`PendingCall`](port::PendingCall) is a future (dropping it cancels the call). With
//!   the `tokio` feature, `PipeEnd::into_async` gives tokio's `AsyncRead + AsyncWrite`.
//!
//!   ```
//!   use culvert::pipe::{self, PipeMode, PipeOptions};
//!
//!   # fn main() -> culvert::Result<()> {
//!   let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default())?;
//!   let reader = std::thread::spawn(move || {
//!       // Any executor works; a minimal one here.
//!       let mut buf = [0u8; 16];
//!       let n = block_on(b.read_message_async(&mut buf)).map(|m| m.len);
//!       (n, buf)
//!   });
//!   a.write_message(b"async")?;
//!   let (n, buf) = reader.join().unwrap();
//!   assert_eq!(&buf[..n?], b"async");
//!   # Ok(())
//!   # }
//!   # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//!   #     struct Unpark(std::thread::Thread);
//!   #     impl std::task::Wake for Unpark {
//!   #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark(); }
//!   #     }
//!   #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
//!   #     let mut cx = std::task::Context::from_waker(&waker);
//!   #     let mut f = std::pin::pin!(f);
//!   #     loop {
//!   #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
//!   #         std::thread::park();
//!   #     }
//!   # }
//!   ```
//! * **Errors.** One [`Error`] type; fields a caller acts on are typed
//!   ([`BusyReason`], `MessageTooLarge { len, max }`, …). Each call's docs list what
//!   it returns.
//!
//! This crate must never carry data or control through a socket, an OS pipe or a
//! kernel message queue: the kernel maps memory, sleeps and wakes, and tells who is
//! alive.

#![warn(missing_docs)]

mod asyncio;
mod error;
#[cfg(not(loom))]
mod fuzz_script;
pub mod mailslot;
pub mod pipe;
pub mod port;
pub mod remote;
mod trace;

pub use culvert_ring as ring;
pub use culvert_section as section;
pub use culvert_sync as sync;
pub use culvert_sync::{Backend, Deadline, Event, WaitContext, WaitSet, WaitStrategy, Waitable};
pub use error::{BusyReason, Error, Result};

// The README's example runs as a doctest, so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
