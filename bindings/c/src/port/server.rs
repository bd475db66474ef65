//! The port server from C: create, listen, accept or reject, receive, reply, close.

use std::ffi::{c_char, c_void};

use culvert::port::{ConnectRequest, MessageKind, PortServer};

use super::*;
use crate::status::{
    bytes_in, deadline, guard, handle, into_handle, lock, name_arg, need_out, put, put_opt,
    take_handle, CulvertStatus, Failure, FfiResult,
};

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
        m.take_request()?.reply(data)?;
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
