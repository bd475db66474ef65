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

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use culvert::port::{
    ConnectRequest, ConnectionId, Incoming, MessageKind, Payload, PendingCall, PortClient,
    PortOptions, PortServer, Reply,
};
use culvert::Error;

use crate::status::{
    bytes_in, bytes_out, deadline, guard, handle, into_handle, lock, name_arg, need_out, put,
    put_opt, take_handle, CulvertStatus, Failure, FfiResult,
};

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
    /// Requests of all clients in flight at once, 2..=65536 (rounded up to a power of
    /// two; default 256).
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

// ---- server ----------------------------------------------------------------------

/// Fills `*options` with the defaults (1 MiB messages, 4064 bytes inline, 4 MiB view
/// heaps, 64 connections, 256 requests in flight).
///
/// # Safety
/// `options` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_options_default(
    options: *mut CulvertPortOptions,
) -> CulvertStatus {
    guard("culvert_port_options_default", || {
        need_out(options, "options")?;
        let d = PortOptions::default();
        let value = CulvertPortOptions {
            max_message: d.max_message,
            inline_max: d.inline_max,
            view_heap_size: d.view_heap_size,
            max_connections: d.max_connections,
            request_ring_capacity: d.request_ring_capacity,
        };
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(options, value) };
        Ok(())
    })
}

/// Creates the port `name` (in `$CULVERT_ROOT`, default `/dev/shm`) and stores the
/// server in `*out`. `options` NULL means the defaults. A leftover port of a dead
/// server is replaced.
///
/// Errors: `CULVERT_E_ALREADY_EXISTS` (a live server), `CULVERT_E_INVALID_NAME`,
/// `CULVERT_E_INVALID_ARGUMENT`, `CULVERT_E_NO_SPACE`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `options` is NULL or points to a
/// `CulvertPortOptions`; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_server_create(
    name: *const c_char,
    options: *const CulvertPortOptions,
    out: *mut *mut CulvertPortServer,
) -> CulvertStatus {
    guard("culvert_port_server_create", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        // SAFETY: the caller passes NULL or a valid options struct (integer fields:
        // any bit pattern is a value).
        let opts = match unsafe { options.as_ref() } {
            Some(o) => rust_options(o),
            None => PortOptions::default(),
        };
        let server = PortServer::create(name, &opts)?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, into_handle(CulvertPortServer { server })) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: for ever) for a client's connect request and
/// stores it in `*out`. Also tears down connections whose client left or died.
///
/// Errors: `CULVERT_E_TIMEOUT`, `CULVERT_E_CLOSED`.
///
/// # Safety
/// `server` is NULL or an open server handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_listen(
    server: *const CulvertPortServer,
    timeout_ms: i64,
    out: *mut *mut CulvertConnectRequest,
) -> CulvertStatus {
    guard("culvert_port_listen", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(server, "server") }?;
        let mut request = s.server.listen(deadline(timeout_ms))?;
        let payload = std::mem::take(&mut request.payload);
        let h = into_handle(CulvertConnectRequest {
            pid: request.pid,
            payload,
            request: Mutex::new(Some(request)),
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, h) };
        Ok(())
    })
}

/// Stores the connect request's payload in `*payload` (valid until the request is
/// answered or freed) and the client's process id in `*pid` (either may be NULL).
///
/// # Safety
/// `request` is NULL or an unanswered request handle; `payload` and `pid` are NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_connect_request_info(
    request: *const CulvertConnectRequest,
    payload: *mut CulvertBytes,
    pid: *mut u32,
) -> CulvertStatus {
    guard("culvert_connect_request_info", || {
        // SAFETY: the caller passes NULL or a live handle.
        let r = unsafe { handle(request, "request") }?;
        let bytes = CulvertBytes {
            data: r.payload.as_ptr(),
            len: r.payload.len(),
            is_view: false,
        };
        // SAFETY: the caller passes NULL or writable pointers.
        unsafe {
            put_opt(payload, bytes);
            put_opt(pid, r.pid);
        }
        Ok(())
    })
}

fn take_request(r: &CulvertConnectRequest) -> FfiResult<ConnectRequest> {
    lock(&r.request)?
        .take()
        .ok_or_else(|| Failure::invalid("the connect request was already answered"))
}

/// Accepts the connection, sending `len` bytes of `payload` (at most 64 KiB) to the
/// client, stores its id in `*id` (may be NULL), and frees the request — also on
/// error.
///
/// Errors: `CULVERT_E_TIMEOUT` (the client gave up meanwhile),
/// `CULVERT_E_MESSAGE_TOO_LARGE`.
///
/// # Safety
/// `request` is NULL or an unanswered request handle, not used again afterwards;
/// `payload` points to `len` readable bytes (may be NULL when `len` is 0); `id` is
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_accept(
    request: *mut CulvertConnectRequest,
    payload: *const c_void,
    len: usize,
    id: *mut CulvertConnectionId,
) -> CulvertStatus {
    guard("culvert_port_accept", || {
        // SAFETY: the caller hands the handle back exactly once.
        let Some(r) = (unsafe { take_handle(request) }) else {
            return Err(Failure::invalid("request is NULL"));
        };
        // SAFETY: the caller guarantees `len` readable bytes at `payload`.
        let payload = unsafe { bytes_in(payload, len, "payload") }?;
        let cid = take_request(&r)?.accept(payload)?;
        // SAFETY: the caller passes NULL or a writable pointer.
        unsafe { put_opt(id, c_id(cid)) };
        Ok(())
    })
}

/// Rejects the connection with a `len`-byte reason (at most 64 KiB; the client gets
/// `CULVERT_E_REJECTED` and the reason) and frees the request — also on error.
///
/// # Safety
/// `request` is NULL or an unanswered request handle, not used again afterwards;
/// `reason` points to `len` readable bytes (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_port_reject(
    request: *mut CulvertConnectRequest,
    reason: *const c_void,
    len: usize,
) -> CulvertStatus {
    guard("culvert_port_reject", || {
        // SAFETY: the caller hands the handle back exactly once.
        let Some(r) = (unsafe { take_handle(request) }) else {
            return Err(Failure::invalid("request is NULL"));
        };
        // SAFETY: the caller guarantees `len` readable bytes at `reason`.
        let reason = unsafe { bytes_in(reason, len, "reason") }?;
        take_request(&r)?.reject(reason)?;
        Ok(())
    })
}

/// Frees a connect request without answering it, which rejects it with an empty
/// reason. NULL is a no-op.
///
/// # Safety
/// `request` is NULL or an unanswered request handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_connect_request_free(
    request: *mut CulvertConnectRequest,
) -> CulvertStatus {
    guard("culvert_connect_request_free", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(request) });
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: for ever) for the next request or datagram
/// from any client and stores it in `*out`.
///
/// Errors: `CULVERT_E_TIMEOUT`, `CULVERT_E_CLOSED`, `CULVERT_E_CORRUPTED`.
///
/// # Safety
/// `server` is NULL or an open server handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_receive(
    server: *const CulvertPortServer,
    timeout_ms: i64,
    out: *mut *mut CulvertIncoming,
) -> CulvertStatus {
    guard("culvert_port_receive", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(server, "server") }?;
        let mut incoming = s.server.receive(deadline(timeout_ms))?;
        let payload = std::mem::take(&mut incoming.payload);
        let info = CulvertIncomingInfo {
            id: incoming.id,
            connection: c_id(incoming.connection),
            kind: match incoming.kind {
                MessageKind::Request => CULVERT_MESSAGE_REQUEST,
                MessageKind::Datagram => CULVERT_MESSAGE_DATAGRAM,
            },
            client_pid: incoming.client_pid(),
        };
        let h = into_handle(CulvertIncoming {
            incoming: Mutex::new(Some(incoming)),
            payload,
            info,
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, h) };
        Ok(())
    })
}

/// Stores the message's id, connection, kind and client pid in `*info`.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `info` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_incoming_info(
    incoming: *const CulvertIncoming,
    info: *mut CulvertIncomingInfo,
) -> CulvertStatus {
    guard("culvert_incoming_info", || {
        need_out(info, "info")?;
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(info, m.info) };
        Ok(())
    })
}

/// Stores the message's payload in `*payload`: read in place when it travelled in a
/// view (`is_view`), valid until `culvert_incoming_free`.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `payload` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn culvert_incoming_payload(
    incoming: *const CulvertIncoming,
    payload: *mut CulvertBytes,
) -> CulvertStatus {
    guard("culvert_incoming_payload", || {
        need_out(payload, "payload")?;
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(payload, bytes_of(&m.payload)) };
        Ok(())
    })
}

/// Replies to a request with `len` bytes (inline up to `inline_max`, else through a
/// view of the server's heap). The payload stays readable (so it may itself be the
/// reply); free the handle with `culvert_incoming_free` afterwards.
///
/// Errors: `CULVERT_E_CANCELLED` (the client cancelled; nothing sent),
/// `CULVERT_E_CLOSED` / `CULVERT_E_PEER_DIED` (the client is gone),
/// `CULVERT_E_INVALID_ARGUMENT` (a datagram, or replied already),
/// `CULVERT_E_MESSAGE_TOO_LARGE`.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `data` points to `len` readable bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_port_reply(
    incoming: *const CulvertIncoming,
    data: *const c_void,
    len: usize,
) -> CulvertStatus {
    guard("culvert_port_reply", || {
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        if m.info.kind == CULVERT_MESSAGE_DATAGRAM {
            return Err(Failure::invalid("a datagram cannot be replied to"));
        }
        let taken = lock(&m.incoming)?
            .take()
            .ok_or_else(|| Failure::invalid("the request was already replied to"))?;
        taken.reply(data)?;
        Ok(())
    })
}

/// Whether the client cancelled this call (a reply would be dropped), in `*cancelled`.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `cancelled` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn culvert_incoming_is_cancelled(
    incoming: *const CulvertIncoming,
    cancelled: *mut bool,
) -> CulvertStatus {
    guard("culvert_incoming_is_cancelled", || {
        need_out(cancelled, "cancelled")?;
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        let c = lock(&m.incoming)?
            .as_ref()
            .is_some_and(Incoming::is_cancelled);
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(cancelled, c) };
        Ok(())
    })
}

/// Frees an incoming message and returns its view block. A request not replied to
/// is answered "no reply" (the client's call fails with `CULVERT_E_CLOSED`). NULL is a
/// no-op.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle, not used again afterwards; pointers
/// from `culvert_incoming_payload` become invalid.
#[no_mangle]
pub unsafe extern "C" fn culvert_incoming_free(incoming: *mut CulvertIncoming) -> CulvertStatus {
    guard("culvert_incoming_free", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(incoming) });
        Ok(())
    })
}

/// Closes the port: clients' pending calls fail with `CULVERT_E_CLOSED` and the name
/// is free again. NULL is a no-op.
///
/// # Safety
/// `server` is NULL or an open server handle, not used again afterwards (nor by
/// another thread meanwhile).
#[no_mangle]
pub unsafe extern "C" fn culvert_port_server_close(
    server: *mut CulvertPortServer,
) -> CulvertStatus {
    guard("culvert_port_server_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(server) });
        Ok(())
    })
}

// ---- client ----------------------------------------------------------------------

/// Connects to the port `name`, sending `payload_len` bytes of `payload` (at most
/// 64 KiB), waiting up to `timeout_ms` (negative: for ever) for the server's answer,
/// and stores the client in `*out`. The server's accept payload — or, on
/// `CULVERT_E_REJECTED`, its reason — is copied into `answer` (as much as fits in
/// `answer_cap` bytes) and its full length stored in `*answer_len` (may be NULL).
///
/// Errors: `CULVERT_E_NOT_FOUND`, `CULVERT_E_BUSY` (every connection slot taken),
/// `CULVERT_E_REJECTED`, `CULVERT_E_TIMEOUT`, `CULVERT_E_PEER_DIED`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `payload` points to `payload_len`
/// readable bytes and `answer` to `answer_cap` writable bytes (each may be NULL when
/// its length is 0); `answer_len` is NULL or valid for a write; `out` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_connect(
    name: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    timeout_ms: i64,
    answer: *mut c_void,
    answer_cap: usize,
    answer_len: *mut usize,
    out: *mut *mut CulvertPortClient,
) -> CulvertStatus {
    guard("culvert_port_connect", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        // SAFETY: the caller guarantees `payload_len` readable bytes at `payload`.
        let payload = unsafe { bytes_in(payload, payload_len, "payload") }?;
        // Check the answer buffer before connecting, so a bad one fails early.
        // SAFETY: the caller guarantees `answer_cap` writable bytes at `answer`.
        unsafe { bytes_out(answer, answer_cap, "answer") }?;
        match PortClient::connect(name, payload, deadline(timeout_ms)) {
            Ok((client, accepted)) => {
                // SAFETY: as checked above; `answer_len` NULL or writable.
                unsafe { copy_answer(&accepted, answer, answer_cap, answer_len) }?;
                // SAFETY: checked non-null; the caller guarantees it is writable.
                unsafe { put(out, into_handle(CulvertPortClient { client })) };
                Ok(())
            }
            Err(Error::Rejected { reason }) => {
                // SAFETY: as checked above; `answer_len` NULL or writable.
                unsafe { copy_answer(&reason, answer, answer_cap, answer_len) }?;
                Err(Error::Rejected { reason }.into())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// Calls the server with `len` bytes of `request` and waits up to `timeout_ms`
/// (negative: for ever) for the reply, stored in `*reply` (free it with
/// `culvert_reply_free`). A timeout cancels the call.
///
/// Errors: `CULVERT_E_TIMEOUT`, `CULVERT_E_CLOSED` (the server closed, or freed the
/// request without a reply), `CULVERT_E_PEER_DIED`, `CULVERT_E_MESSAGE_TOO_LARGE`.
///
/// # Safety
/// `client` is NULL or an open client handle; `request` points to `len` readable bytes
/// (may be NULL when `len` is 0); `reply` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_call(
    client: *const CulvertPortClient,
    request: *const c_void,
    len: usize,
    timeout_ms: i64,
    reply: *mut *mut CulvertReply,
) -> CulvertStatus {
    guard("culvert_port_call", || {
        need_out(reply, "reply")?;
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `request`.
        let request = unsafe { bytes_in(request, len, "request") }?;
        let r = c.client.call(request, deadline(timeout_ms))?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(reply, into_handle(CulvertReply { reply: r })) };
        Ok(())
    })
}

/// Sends `len` bytes of `request` and returns at once with the pending call in
/// `*call` (collect the reply with `culvert_pending_call_wait`). Waits only for room
/// in the request ring or view heap.
///
/// # Safety
/// `client` is NULL or an open client handle; `request` points to `len` readable bytes
/// (may be NULL when `len` is 0); `call` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_call_async(
    client: *const CulvertPortClient,
    request: *const c_void,
    len: usize,
    call: *mut *mut CulvertPendingCall,
) -> CulvertStatus {
    guard("culvert_port_call_async", || {
        need_out(call, "call")?;
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `request`.
        let request = unsafe { bytes_in(request, len, "request") }?;
        let pending = c.client.call_async(request)?;
        let h = into_handle(CulvertPendingCall {
            id: pending.id(),
            call: Mutex::new(pending),
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(call, h) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: for ever; 0: just look) for the reply of a
/// pending call and stores it in `*reply`.
///
/// Errors: `CULVERT_E_TIMEOUT` (the call stays pending: wait again or cancel),
/// `CULVERT_E_CANCELLED` (after `culvert_pending_call_cancel`),
/// `CULVERT_E_INVALID_ARGUMENT` (the reply was already taken), `CULVERT_E_CLOSED`,
/// `CULVERT_E_PEER_DIED`.
///
/// # Safety
/// `call` is NULL or a live pending-call handle; `reply` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pending_call_wait(
    call: *const CulvertPendingCall,
    timeout_ms: i64,
    reply: *mut *mut CulvertReply,
) -> CulvertStatus {
    guard("culvert_pending_call_wait", || {
        need_out(reply, "reply")?;
        // SAFETY: the caller passes NULL or a live handle.
        let p = unsafe { handle(call, "call") }?;
        let mut pending = lock(&p.call)?;
        let r = if timeout_ms == 0 {
            pending.try_wait()?.ok_or(Error::Timeout)?
        } else {
            pending.wait(deadline(timeout_ms))?
        };
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(reply, into_handle(CulvertReply { reply: r })) };
        Ok(())
    })
}

/// Cancels a pending call: later waits get `CULVERT_E_CANCELLED`; a reply that
/// arrives is dropped and its view freed; the server sees the call cancelled.
///
/// # Safety
/// `call` is NULL or a live pending-call handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_pending_call_cancel(
    call: *const CulvertPendingCall,
) -> CulvertStatus {
    guard("culvert_pending_call_cancel", || {
        // SAFETY: the caller passes NULL or a live handle.
        let p = unsafe { handle(call, "call") }?;
        lock(&p.call)?.cancel();
        Ok(())
    })
}

/// Stores the call id (what the server sees as `CulvertIncomingInfo.id`) in `*id`.
///
/// # Safety
/// `call` is NULL or a live pending-call handle; `id` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pending_call_id(
    call: *const CulvertPendingCall,
    id: *mut u64,
) -> CulvertStatus {
    guard("culvert_pending_call_id", || {
        need_out(id, "id")?;
        // SAFETY: the caller passes NULL or a live handle.
        let p = unsafe { handle(call, "call") }?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(id, p.id) };
        Ok(())
    })
}

/// Frees a pending call, cancelling it if its reply was not taken. NULL is a no-op.
///
/// # Safety
/// `call` is NULL or a live pending-call handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_pending_call_free(call: *mut CulvertPendingCall) -> CulvertStatus {
    guard("culvert_pending_call_free", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(call) });
        Ok(())
    })
}

/// Sends a datagram (no reply) of `len` bytes, waiting up to `timeout_ms` (negative:
/// as long as the server lives) for room.
///
/// # Safety
/// `client` is NULL or an open client handle; `data` points to `len` readable bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_port_send_datagram(
    client: *const CulvertPortClient,
    data: *const c_void,
    len: usize,
    timeout_ms: i64,
) -> CulvertStatus {
    guard("culvert_port_send_datagram", || {
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        c.client.send_datagram_until(data, deadline(timeout_ms))?;
        Ok(())
    })
}

/// Stores the port's largest message and inline limit (either may be NULL).
///
/// # Safety
/// `client` is NULL or an open client handle; the out-parameters are NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_client_limits(
    client: *const CulvertPortClient,
    max_message: *mut usize,
    inline_max: *mut usize,
) -> CulvertStatus {
    guard("culvert_port_client_limits", || {
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        // SAFETY: the caller passes NULL or writable pointers.
        unsafe {
            put_opt(max_message, c.client.max_message());
            put_opt(inline_max, c.client.inline_max());
        }
        Ok(())
    })
}

/// Disconnects (once pending calls are freed too). NULL is a no-op.
///
/// # Safety
/// `client` is NULL or an open client handle, not used again afterwards (nor by
/// another thread meanwhile).
#[no_mangle]
pub unsafe extern "C" fn culvert_port_client_close(
    client: *mut CulvertPortClient,
) -> CulvertStatus {
    guard("culvert_port_client_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(client) });
        Ok(())
    })
}

/// Stores the reply's payload in `*payload` (read in place when it travelled in a
/// view), valid until `culvert_reply_free`.
///
/// # Safety
/// `reply` is NULL or a live reply handle; `payload` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_reply_payload(
    reply: *const CulvertReply,
    payload: *mut CulvertBytes,
) -> CulvertStatus {
    guard("culvert_reply_payload", || {
        need_out(payload, "payload")?;
        // SAFETY: the caller passes NULL or a live handle.
        let r = unsafe { handle(reply, "reply") }?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(payload, bytes_of(&r.reply)) };
        Ok(())
    })
}

/// Frees a reply and returns its view block to the server's heap. NULL is a no-op.
///
/// # Safety
/// `reply` is NULL or a live reply handle, not used again afterwards; pointers from
/// `culvert_reply_payload` become invalid.
#[no_mangle]
pub unsafe extern "C" fn culvert_reply_free(reply: *mut CulvertReply) -> CulvertStatus {
    guard("culvert_reply_free", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(reply) });
        Ok(())
    })
}
