//! The thread-safety contract of the public types, checked at compile time: which
//! values may move to another thread (`Send`) and which may be shared between threads
//! (`Sync`). A change that breaks one of these lines breaks users' code, so it fails
//! this build.

use culvert::mailslot::{BroadcastSender, Mailslot, MailslotOptions, MailslotWriter};
use culvert::pipe::{PendingEnd, PipeEnd, PipeOptions, PipeReader, PipeServer, PipeWriter};
use culvert::port::{
    ConnectRequest, Incoming, PendingCall, PortClient, PortOptions, PortServer, Reply,
};
use culvert::ring::{broadcast, mpmc, spsc};
use culvert::section::{Region, Section};
use culvert::sync::Notifier;
use culvert::{BusyReason, Deadline, Error, Event, WaitSet};

const fn send<T: Send>() {}
const fn send_sync<T: Send + Sync>() {}

// Endpoints with one user at a time: move them to a thread (or wrap them in a Mutex).
const _: () = send::<PipeEnd>();
const _: () = send::<PendingEnd>();
const _: () = send::<PipeReader>();
const _: () = send::<PipeWriter>();
const _: () = send::<Mailslot>();
const _: () = send::<MailslotWriter>();
const _: () = send::<BroadcastSender>();
const _: () = send::<PendingCall>();
const _: () = send::<Reply>();
const _: () = send::<Incoming>();
const _: () = send::<ConnectRequest>();
const _: () = send::<spsc::ByteWriter>();
const _: () = send::<spsc::ByteReader>();
const _: () = send::<spsc::MessageWriter>();
const _: () = send::<spsc::MessageReader>();
const _: () = send::<mpmc::MessageWriter>();
const _: () = send::<mpmc::MessageReader>();
const _: () = send::<mpmc::ByteWriter>();
const _: () = send::<mpmc::ByteReader>();
const _: () = send::<broadcast::Writer>();
const _: () = send::<broadcast::Reader>();
const _: () = send::<culvert::sync::AsyncWait>();
#[cfg(feature = "tokio")]
const _: () = send::<culvert::pipe::AsyncPipeEnd>();
#[cfg(feature = "tokio")]
const _: () = send::<culvert::pipe::AsyncPipeReader>();
#[cfg(feature = "tokio")]
const _: () = send::<culvert::pipe::AsyncPipeWriter>();

// Shared by many threads at once through `&` or an `Arc`.
const _: () = send_sync::<PipeServer>();
const _: () = send_sync::<PortServer>();
const _: () = send_sync::<PortClient>();
const _: () = send_sync::<Section>();
const _: () = send_sync::<Region>();
const _: () = send_sync::<Notifier>();
const _: () = send_sync::<Event>();
const _: () = send_sync::<WaitSet>();

// Plain values.
const _: () = send_sync::<Error>();
const _: () = send_sync::<BusyReason>();
const _: () = send_sync::<Deadline>();
const _: () = send_sync::<PipeOptions>();
const _: () = send_sync::<MailslotOptions>();
const _: () = send_sync::<PortOptions>();

/// The checks above run when this file compiles; this test makes the harness list it.
#[test]
fn public_types_keep_their_thread_safety() {
    let errors: Vec<Box<dyn std::error::Error + Send + Sync>> = vec![Box::new(Error::Timeout)];
    assert_eq!(errors[0].to_string(), "timed out");
}
