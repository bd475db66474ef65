//! Ports from C (ALPC-like request/reply): the server (`create`, `listen`, `accept` /
//! `reject`, `receive`, `reply`) and the client (`connect`, `call`, `call_async` with
//! `wait` / `cancel`, datagrams), with zero-copy access to payloads that travelled in
//! shared-memory views.
//!
//! Messages up to the port's `inline_max` are copied through the rings; larger ones
//! (up to `max_message`, default 1 MiB) are written into a view block of the sender's
//! shared heap and read in place by the receiver: [`CulvertBytes::data`] of such a
//! payload points into shared memory (`is_view` is true), valid until the handle that
//! owns it (`CulvertIncoming`, `CulvertReply`) is freed, which returns the block.

use std::ffi::c_void;
use std::sync::Mutex;

use culvert::port::{
    ConnectRequest, ConnectionId, Incoming, Payload, PendingCall, PortClient, PortOptions,
    PortServer, Reply,
};

use crate::status::{bytes_out, lock, put_opt, Failure, FfiResult};

/// Message kind: a request (reply with `culvert_port_reply`).
pub const CULVERT_MESSAGE_REQUEST: u32 = 1;
/// Message kind: a datagram (no reply).
pub const CULVERT_MESSAGE_DATAGRAM: u32 = 2;

/// A port server (`culvert_port_server_create`).
///
/// Threads: fully thread-safe. Any number of threads may call
/// `culvert_port_receive` at once (each message goes to one of them), and one usually
/// calls `culvert_port_listen`. `culvert_port_server_close` must be the last use.
pub struct CulvertPortServer {
    server: PortServer,
}

/// A client's connect request, from `culvert_port_listen`. Answer it with
/// `culvert_port_accept` or `culvert_port_reject` (both free it), or free it with
/// `culvert_connect_request_free` (which rejects with an empty reason).
///
/// Threads: use from one thread at a time (it may move between threads).
pub struct CulvertConnectRequest {
    request: Mutex<Option<ConnectRequest>>,
    payload: Vec<u8>,
    pid: u32,
}

/// A request or datagram from `culvert_port_receive`. Its payload stays readable
/// until `culvert_incoming_free`, also after the reply. A request freed without a
/// reply is answered with "no reply" (the client's call fails with `CULVERT_E_CLOSED`).
///
/// Threads: use from one thread at a time (it may move between threads).
pub struct CulvertIncoming {
    incoming: Mutex<Option<Incoming>>,
    payload: Payload,
    info: CulvertIncomingInfo,
}

/// A connection to a port (`culvert_port_connect`).
///
/// Threads: fully thread-safe. Calls from several threads are in flight at
/// once and each reply goes to its caller. `culvert_port_client_close` must be the last
/// use (pending calls may outlive it).
pub struct CulvertPortClient {
    client: PortClient,
}

/// A call in flight, from `culvert_port_call_async`. Freeing it while pending cancels
/// the call.
///
/// Threads: calls are serialised by an internal lock (safe from any thread; a
/// waiting `culvert_pending_call_wait` holds it).
pub struct CulvertPendingCall {
    call: Mutex<PendingCall>,
    id: u64,
}

/// A reply to a call. Its payload stays readable until `culvert_reply_free`.
///
/// Threads: read-only; any number of threads may read it at once.
/// `culvert_reply_free` must be the last use.
pub struct CulvertReply {
    reply: Reply,
}

/// How a port is laid out. Fill it with `culvert_port_options_default`, then change
/// fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CulvertPortOptions {
    /// Largest message, request or reply (default 1 MiB).
    pub max_message: usize,
    /// Messages up to this size are copied through the rings; larger ones travel in
    /// views (default 4064, at most 1 MiB and `max_message`).
    pub inline_max: usize,
    /// Bytes of each view heap (the server's for replies, each client's for
    /// requests); at least `max_message` when `max_message > inline_max` (default
    /// 4 MiB).
    pub view_heap_size: usize,
    /// Connections at once, 1..=512 (default 64).
    pub max_connections: usize,
    /// Requests of the largest inline size each connection's request ring holds (more
    /// when smaller), 2..=4096 (rounded up to a power of two; default 16).
    pub request_ring_capacity: usize,
}

/// Which connection a message came from: a slot and the slot's epoch at connect.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CulvertConnectionId {
    /// Slot index.
    pub index: u32,
    /// Slot epoch.
    pub epoch: u32,
}

/// What `culvert_incoming_info` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CulvertIncomingInfo {
    /// The call id (unique per connection).
    pub id: u64,
    /// The connection it came from.
    pub connection: CulvertConnectionId,
    /// `CULVERT_MESSAGE_REQUEST` or `CULVERT_MESSAGE_DATAGRAM`.
    pub kind: u32,
    /// The client's process id.
    pub client_pid: u32,
}

/// A payload's bytes: `len` bytes at `data`, read-only. When `is_view` is true they lie
/// in shared memory (a view block, read in place, no copy). Valid until the handle
/// they came from is freed. `data` is non-NULL even for an empty payload.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CulvertBytes {
    /// First byte.
    pub data: *const u8,
    /// Length in bytes.
    pub len: usize,
    /// Whether the payload travelled in a shared-memory view.
    pub is_view: bool,
}

impl CulvertIncoming {
    /// Takes the request out to reply to it: `InvalidArgument` for a datagram (left in
    /// place) or a request replied to already.
    fn take_request(&self) -> FfiResult<Incoming> {
        if self.info.kind == CULVERT_MESSAGE_DATAGRAM {
            return Err(Failure::invalid("a datagram cannot be replied to"));
        }
        lock(&self.incoming)?
            .take()
            .ok_or_else(|| Failure::invalid("the request was already replied to"))
    }
}

fn bytes_of(p: &Payload) -> CulvertBytes {
    let s = p.as_slice();
    CulvertBytes {
        data: s.as_ptr(),
        len: s.len(),
        is_view: p.is_view(),
    }
}

fn rust_options(o: &CulvertPortOptions) -> PortOptions {
    PortOptions {
        max_message: o.max_message,
        inline_max: o.inline_max,
        view_heap_size: o.view_heap_size,
        max_connections: o.max_connections,
        request_ring_capacity: o.request_ring_capacity,
        root: None,
    }
}

fn c_id(id: ConnectionId) -> CulvertConnectionId {
    CulvertConnectionId {
        index: id.index,
        epoch: id.epoch,
    }
}

/// Copies `bytes` into an optional answer buffer: as much as fits; the full length
/// goes to `*len`.
///
/// # Safety
/// `buf` points to `cap` writable bytes (or is NULL with `cap` 0); `len` is NULL or
/// valid for a write.
unsafe fn copy_answer(bytes: &[u8], buf: *mut c_void, cap: usize, len: *mut usize) -> FfiResult {
    // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
    let out = unsafe { bytes_out(buf, cap, "answer") }?;
    let n = out.len().min(bytes.len());
    out[..n].copy_from_slice(&bytes[..n]);
    // SAFETY: the caller passes NULL or a writable pointer.
    unsafe { put_opt(len, bytes.len()) };
    Ok(())
}

mod client;
mod loans;
mod server;

pub use client::*;
pub use loans::*;
pub use server::*;
