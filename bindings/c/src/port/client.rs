//! The port client from C: connect, call, call_async with wait or cancel, datagrams,
//! replies, close.

use std::ffi::{c_char, c_void};

use culvert::port::PortClient;
use culvert::Error;

use super::*;
use crate::status::{
    bytes_in, bytes_out, deadline, guard, handle, into_handle, lock, name_arg, need_out, put,
    put_opt, take_handle, CulvertStatus,
};

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
