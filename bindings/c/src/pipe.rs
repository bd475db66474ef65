//! Pipes from C: anonymous pairs, named servers (`bind`/`accept`), clients
//! (`connect`), reads, writes, `read_message` with the "more data" flag, `peek`, read
//! mode, timeouts, non-blocking mode, `transact`.
//!
//! A [`CulvertPipe`] wraps one `culvert::pipe::PipeEnd` behind a mutex: calls on one
//! handle are serialised, so concurrent use from several threads is safe (never
//! undefined behaviour) but a blocking read holds the handle until it returns. Use one
//! thread per pipe end, or non-blocking mode / timeouts, for full-duplex work.

use std::ffi::{c_char, c_void};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use culvert::pipe::{self, PipeEnd, PipeMode, PipeOptions, PipeServer, ReadMode};

use crate::status::{
    bytes_in, bytes_out, deadline, guard, handle, into_handle, lock, name_arg, need_out, put,
    put_opt, take_handle, timeout, CulvertStatus, Failure, FfiResult,
    CULVERT_PIPE_SERVER_DEFAULT_WAIT,
};

/// Pipe mode: a byte stream (writes may be merged or split by reads).
pub const CULVERT_PIPE_BYTE: u32 = 1;
/// Pipe mode: messages (each write is one message; boundaries are kept).
pub const CULVERT_PIPE_MESSAGE: u32 = 2;

/// Read mode: bytes, across message boundaries.
pub const CULVERT_READ_BYTE: u32 = 1;
/// Read mode: at most one message per read (message pipes only).
pub const CULVERT_READ_MESSAGE: u32 = 2;

/// One end of a pipe (anonymous, the server end of an accepted connection, or a
/// connected client).
///
/// Threads: calls on one handle are serialised by an internal lock, so any
/// thread may use it and concurrent calls are safe, but a blocking read in one thread
/// delays a write from another. `culvert_pipe_close` must be the last use.
pub struct CulvertPipe {
    end: Mutex<PipeEnd>,
}

/// A named pipe server (`culvert_pipe_server_bind`).
///
/// Threads: `culvert_pipe_server_accept` may be called from several threads at
/// once (each accepted connection goes to one of them); `culvert_pipe_server_close`
/// must be the last use.
pub struct CulvertPipeServer {
    server: PipeServer,
}

/// How a named pipe server is created. Fill it with `culvert_pipe_options_default`,
/// then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CulvertPipeOptions {
    /// `CULVERT_PIPE_BYTE` (default) or `CULVERT_PIPE_MESSAGE`.
    pub mode: u32,
    /// Connected clients at once, 1..=255 (default 16).
    pub max_instances: u32,
    /// Ring bytes client → server (rounded up to a power of two, at least 4096;
    /// default 65536).
    pub in_buffer: usize,
    /// Ring bytes server → client (default 65536).
    pub out_buffer: usize,
    /// Largest message of a message pipe (default 1 MiB, at most 1 GiB).
    pub max_message: usize,
    /// How long `culvert_pipe_connect` with a negative timeout waits for a free
    /// instance, in milliseconds (default 5000).
    pub default_timeout_ms: u64,
}

/// What `culvert_pipe_peek` saw, without consuming anything.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CulvertPeek {
    /// Bytes that can be read now without waiting (on a message pipe, a lower bound:
    /// the committed bytes of the current fragment).
    pub bytes_available: usize,
    /// Message pipes: bytes left in the message being read, or the length of the
    /// next message; valid when `has_message` is true.
    pub next_message_len: usize,
    /// Whether a message is pending (always false on byte pipes).
    pub has_message: bool,
}

fn mode_of(raw: u32) -> FfiResult<PipeMode> {
    match raw {
        CULVERT_PIPE_BYTE => Ok(PipeMode::Byte),
        CULVERT_PIPE_MESSAGE => Ok(PipeMode::Message),
        _ => Err(Failure::invalid(format!(
            "pipe mode {raw} is neither CULVERT_PIPE_BYTE (1) nor CULVERT_PIPE_MESSAGE (2)"
        ))),
    }
}

fn rust_options(o: &CulvertPipeOptions) -> FfiResult<PipeOptions> {
    Ok(PipeOptions::default()
        .mode(mode_of(o.mode)?)
        .max_instances(o.max_instances as usize)
        .in_buffer(o.in_buffer)
        .out_buffer(o.out_buffer)
        .max_message(o.max_message)
        .default_timeout(Duration::from_millis(o.default_timeout_ms)))
}

fn c_options(o: &PipeOptions) -> CulvertPipeOptions {
    CulvertPipeOptions {
        mode: match o.mode {
            PipeMode::Byte => CULVERT_PIPE_BYTE,
            PipeMode::Message => CULVERT_PIPE_MESSAGE,
        },
        max_instances: u32::try_from(o.max_instances).unwrap_or(u32::MAX),
        in_buffer: o.in_buffer,
        out_buffer: o.out_buffer,
        max_message: o.max_message,
        default_timeout_ms: u64::try_from(o.default_timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

fn new_pipe(end: PipeEnd) -> *mut CulvertPipe {
    into_handle(CulvertPipe {
        end: Mutex::new(end),
    })
}

/// Fills `*options` with the defaults (byte mode, 16 instances, 64 KiB buffers,
/// 1 MiB messages, 5 s default timeout).
///
/// # Safety
/// `options` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_options_default(
    options: *mut CulvertPipeOptions,
) -> CulvertStatus {
    guard("culvert_pipe_options_default", || {
        need_out(options, "options")?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(options, c_options(&PipeOptions::default())) };
        Ok(())
    })
}

/// Creates an anonymous pipe in this process: `mode` is `CULVERT_PIPE_BYTE` or
/// `CULVERT_PIPE_MESSAGE`; the two ends go to `*first` and `*second` (what one writes
/// the other reads). Default buffer sizes (64 KiB each way) and 1 MiB messages.
///
/// # Safety
/// `first` and `second` are NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_anonymous(
    mode: u32,
    first: *mut *mut CulvertPipe,
    second: *mut *mut CulvertPipe,
) -> CulvertStatus {
    guard("culvert_pipe_anonymous", || {
        need_out(first, "first")?;
        need_out(second, "second")?;
        let (a, b) = pipe::anonymous(mode_of(mode)?, &PipeOptions::default())?;
        // SAFETY: both checked non-null; the caller guarantees they are writable.
        unsafe {
            put(first, new_pipe(a));
            put(second, new_pipe(b));
        }
        Ok(())
    })
}

/// Creates the named pipe `name` (`[A-Za-z0-9._-]`, at most 170 characters) in the
/// namespace `$CULVERT_ROOT` (default `/dev/shm`) and stores the server in `*out`.
/// `options` NULL means the defaults.
///
/// Errors: `CULVERT_E_ALREADY_EXISTS` (a live server has the name),
/// `CULVERT_E_INVALID_NAME`, `CULVERT_E_INVALID_ARGUMENT`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `options` is NULL or points to a
/// `CulvertPipeOptions`; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_server_bind(
    name: *const c_char,
    options: *const CulvertPipeOptions,
    out: *mut *mut CulvertPipeServer,
) -> CulvertStatus {
    guard("culvert_pipe_server_bind", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        // SAFETY: the caller passes NULL or a valid options struct (all fields are
        // integers: any bit pattern is a value).
        let opts = match unsafe { options.as_ref() } {
            Some(o) => rust_options(o)?,
            None => PipeOptions::default(),
        };
        let server = PipeServer::bind(name, &opts)?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, into_handle(CulvertPipeServer { server })) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: for ever; 0: only a client already waiting)
/// for a client and stores the server end of the new connection in `*out`.
///
/// Errors: `CULVERT_E_TIMEOUT`.
///
/// # Safety
/// `server` is NULL or an open server handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_server_accept(
    server: *const CulvertPipeServer,
    timeout_ms: i64,
    out: *mut *mut CulvertPipe,
) -> CulvertStatus {
    guard("culvert_pipe_server_accept", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(server, "server") }?;
        let end = s.server.accept_until(deadline(timeout_ms))?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, new_pipe(end)) };
        Ok(())
    })
}

/// Closes the named pipe: the name is free again and new clients get
/// `CULVERT_E_NOT_FOUND`; connections already accepted go on. NULL is a no-op.
///
/// # Safety
/// `server` is NULL or an open server handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_server_close(
    server: *mut CulvertPipeServer,
) -> CulvertStatus {
    guard("culvert_pipe_server_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(server) });
        Ok(())
    })
}

/// Connects to the named pipe `name`, waiting up to `timeout_ms` for a free instance
/// (negative: for ever; `CULVERT_PIPE_SERVER_DEFAULT_WAIT`: the server's
/// `default_timeout_ms`), and stores the client end in `*out`.
///
/// Errors: `CULVERT_E_NOT_FOUND` (no live server), `CULVERT_E_BUSY` (no instance
/// became free in time), `CULVERT_E_INVALID_NAME`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_connect(
    name: *const c_char,
    timeout_ms: i64,
    out: *mut *mut CulvertPipe,
) -> CulvertStatus {
    guard("culvert_pipe_connect", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        let end = if timeout_ms == CULVERT_PIPE_SERVER_DEFAULT_WAIT {
            PipeEnd::connect_default_wait(name, &PipeOptions::default())
        } else {
            PipeEnd::connect(name, timeout(timeout_ms))
        }?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, new_pipe(end)) };
        Ok(())
    })
}

/// Writes `len` bytes: one message on a message pipe (`CULVERT_E_MESSAGE_TOO_LARGE`
/// above its maximum, nothing written), all of them on a byte pipe (in non-blocking
/// mode: what fits, at least one byte, else `CULVERT_E_WOULD_BLOCK`). Stores the bytes
/// written in `*written` (may be NULL).
///
/// Errors: `CULVERT_E_CLOSED` / `CULVERT_E_PEER_DIED` (the reader is gone),
/// `CULVERT_E_TIMEOUT` (write timeout), `CULVERT_E_WOULD_BLOCK`.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle; `data` points to `len` readable bytes (may be
/// NULL when `len` is 0); `written` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_write(
    pipe: *const CulvertPipe,
    data: *const c_void,
    len: usize,
    written: *mut usize,
) -> CulvertStatus {
    guard("culvert_pipe_write", || {
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        let n = lock(&p.end)?.write_message(data)?;
        // SAFETY: the caller passes NULL or a writable pointer.
        unsafe { put_opt(written, n) };
        Ok(())
    })
}

/// Reads into `buf` per the read mode and stores the bytes read in `*read`: byte mode
/// reads at least one byte, across message boundaries; message mode reads at most one
/// message (a longer one continues with the next read; zero-length messages are
/// skipped). `*read == 0` (with `CULVERT_OK`) means end of stream: the peer closed.
///
/// Errors: `CULVERT_E_TIMEOUT` (read timeout), `CULVERT_E_WOULD_BLOCK`
/// (non-blocking), `CULVERT_E_CORRUPTED`; `CULVERT_E_INVALID_ARGUMENT` when `cap` is 0
/// (a read of 0 bytes would look like end of stream).
///
/// # Safety
/// `pipe` is NULL or an open pipe handle; `buf` points to `cap` writable bytes; `read`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_read(
    pipe: *const CulvertPipe,
    buf: *mut c_void,
    cap: usize,
    read: *mut usize,
) -> CulvertStatus {
    guard("culvert_pipe_read", || {
        need_out(read, "read")?;
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        if cap == 0 {
            return Err(Failure::invalid(
                "cap is 0 (a read of 0 bytes means end of stream)",
            ));
        }
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
        let buf = unsafe { bytes_out(buf, cap, "buf") }?;
        let n = lock(&p.end)?.read(buf)?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(read, n) };
        Ok(())
    })
}

/// Reads (part of) the next message into `buf`: `*len` gets the bytes written and
/// `*more` whether more of the same message remains (the message was longer than
/// `cap`; the rest comes with the next call, nothing is lost — Windows'
/// `ERROR_MORE_DATA`). A zero-length message reads as `*len == 0, *more == false`.
/// On a byte pipe, reads what is available (`*more` is always false).
///
/// Errors: `CULVERT_E_CLOSED` / `CULVERT_E_PEER_DIED` at end of stream,
/// `CULVERT_E_TIMEOUT`, `CULVERT_E_WOULD_BLOCK`, `CULVERT_E_CORRUPTED`.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle; `buf` points to `cap` writable bytes (may be
/// NULL when `cap` is 0); `len` and `more` are NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_read_message(
    pipe: *const CulvertPipe,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    more: *mut bool,
) -> CulvertStatus {
    guard("culvert_pipe_read_message", || {
        need_out(len, "len")?;
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
        let buf = unsafe { bytes_out(buf, cap, "buf") }?;
        let m = lock(&p.end)?.read_message(buf)?;
        // SAFETY: `len` checked non-null; `more` NULL or writable, per the caller.
        unsafe {
            put(len, m.len);
            put_opt(more, m.more);
        }
        Ok(())
    })
}

/// Looks at what is waiting, without consuming anything or waiting.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_peek(
    pipe: *const CulvertPipe,
    out: *mut CulvertPeek,
) -> CulvertStatus {
    guard("culvert_pipe_peek", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        let peek = lock(&p.end)?.peek()?;
        let value = CulvertPeek {
            bytes_available: peek.bytes_available,
            next_message_len: peek.next_message_len.unwrap_or(0),
            has_message: peek.next_message_len.is_some(),
        };
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, value) };
        Ok(())
    })
}

/// Writes `request` as one message and reads the reply message into `reply`
/// (Windows' `TransactNamedPipe`); `*len` and `*more` as for
/// `culvert_pipe_read_message`. Message pipes in message read mode only
/// (`CULVERT_E_INVALID_ARGUMENT` otherwise); `CULVERT_E_BUSY` when a message is
/// already waiting to be read. Either way nothing is sent.
///
/// # Safety
/// As for `culvert_pipe_write` (`request`, `request_len`) and
/// `culvert_pipe_read_message` (`reply`, `cap`, `len`, `more`).
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_transact(
    pipe: *const CulvertPipe,
    request: *const c_void,
    request_len: usize,
    reply: *mut c_void,
    cap: usize,
    len: *mut usize,
    more: *mut bool,
) -> CulvertStatus {
    guard("culvert_pipe_transact", || {
        need_out(len, "len")?;
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        // SAFETY: the caller guarantees `request_len` readable bytes at `request`.
        let request = unsafe { bytes_in(request, request_len, "request") }?;
        // SAFETY: the caller guarantees `cap` writable bytes at `reply`.
        let reply = unsafe { bytes_out(reply, cap, "reply") }?;
        let m = lock(&p.end)?.transact(request, reply)?;
        // SAFETY: `len` checked non-null; `more` NULL or writable, per the caller.
        unsafe {
            put(len, m.len);
            put_opt(more, m.more);
        }
        Ok(())
    })
}

/// Sets how `culvert_pipe_read` reads: `CULVERT_READ_BYTE` (on a message pipe, reads
/// across message boundaries) or `CULVERT_READ_MESSAGE` (message pipes only; the
/// default there).
///
/// # Safety
/// `pipe` is NULL or an open pipe handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_set_read_mode(
    pipe: *const CulvertPipe,
    mode: u32,
) -> CulvertStatus {
    guard("culvert_pipe_set_read_mode", || {
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        let mode = match mode {
            CULVERT_READ_BYTE => ReadMode::Byte,
            CULVERT_READ_MESSAGE => ReadMode::Message,
            other => {
                return Err(Failure::invalid(format!(
                "read mode {other} is neither CULVERT_READ_BYTE (1) nor CULVERT_READ_MESSAGE (2)"
            )))
            }
        };
        lock(&p.end)?.set_read_mode(mode)?;
        Ok(())
    })
}

/// Sets the read and write timeouts in milliseconds (negative: wait for ever, the
/// default). A read or write that times out fails with `CULVERT_E_TIMEOUT`.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_set_timeouts(
    pipe: *const CulvertPipe,
    read_timeout_ms: i64,
    write_timeout_ms: i64,
) -> CulvertStatus {
    guard("culvert_pipe_set_timeouts", || {
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        let mut end = lock(&p.end)?;
        end.set_read_timeout(timeout(read_timeout_ms));
        end.set_write_timeout(timeout(write_timeout_ms));
        Ok(())
    })
}

/// In non-blocking mode (`nonblocking` true), reads and writes that would wait fail
/// with `CULVERT_E_WOULD_BLOCK`.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_set_nonblocking(
    pipe: *const CulvertPipe,
    nonblocking: bool,
) -> CulvertStatus {
    guard("culvert_pipe_set_nonblocking", || {
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        lock(&p.end)?.set_nonblocking(nonblocking);
        Ok(())
    })
}

/// Half-close: closes the direction this end writes (like `shutdown(SHUT_WR)`). The
/// peer reads what was written, then end of stream; this end goes on reading. Later
/// writes fail with `CULVERT_E_CLOSED`.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_shutdown_write(pipe: *const CulvertPipe) -> CulvertStatus {
    guard("culvert_pipe_shutdown_write", || {
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        lock(&p.end)?.shutdown_write()?;
        Ok(())
    })
}

/// Stores the peer's process id in `*pid` (0 while no peer has attached). A hint: a
/// hostile peer could write anything there.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle; `pid` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_peer_pid(
    pipe: *const CulvertPipe,
    pid: *mut u32,
) -> CulvertStatus {
    guard("culvert_pipe_peer_pid", || {
        need_out(pid, "pid")?;
        // SAFETY: the caller passes NULL or an open handle.
        let p = unsafe { handle(pipe, "pipe") }?;
        let v = lock(&p.end)?.peer_pid().unwrap_or(0);
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(pid, v) };
        Ok(())
    })
}

/// Closes the pipe end: the peer reads what was committed, then end of stream; its
/// writes fail with `CULVERT_E_CLOSED`. Unread data is discarded. NULL is a no-op.
///
/// # Safety
/// `pipe` is NULL or an open pipe handle, not used again afterwards (nor by another
/// thread meanwhile).
#[no_mangle]
pub unsafe extern "C" fn culvert_pipe_close(pipe: *mut CulvertPipe) -> CulvertStatus {
    guard("culvert_pipe_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(pipe) });
        Ok(())
    })
}
