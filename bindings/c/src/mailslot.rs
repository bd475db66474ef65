//! Mailslots from C: the one reader (`create`), writers (`open`, `write`, which never
//! blocks), reads with a timeout, `info`, and broadcast groups (`join`, `broadcast`,
//! senders).
//!
//! No delivery guarantee, by design, but never a silent loss: a write into a full
//! mailslot returns `CULVERT_E_FULL` (and the reader's `dropped` counts it), and a
//! broadcast reader that fell behind gets `CULVERT_E_OVERRUN` with the count in
//! `culvert_last_error_detail()`.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use culvert::mailslot::{
    self, BroadcastSender, MailslotOptions, MailslotReader, MailslotWriter, DEFAULT_CAPACITY,
    DEFAULT_MAX_MESSAGE_SIZE,
};

use crate::status::{
    bytes_in, bytes_out, guard, handle, into_handle, lock, name_arg, need_out, put, put_opt,
    take_handle, timeout, CulvertStatus, Failure, CULVERT_E_BUFFER_TOO_SMALL,
};

/// The reader of a mailslot (`culvert_mailslot_create`) or of a broadcast group
/// (`culvert_mailslot_join`).
///
/// Threads: calls are serialised by an internal lock (safe from any thread; a
/// waiting read holds the handle). `culvert_mailslot_close` must be the last use.
pub struct CulvertMailslot {
    slot: Mutex<MailslotReader>,
}

/// A writer to a mailslot (`culvert_mailslot_writer_open`).
///
/// Threads: calls are serialised by an internal lock (safe from any thread).
/// Open one writer per thread for parallel writes. `culvert_mailslot_writer_close`
/// must be the last use.
pub struct CulvertMailslotWriter {
    writer: Mutex<MailslotWriter>,
}

/// A sender to a broadcast group (`culvert_broadcast_sender_open`), for many messages.
///
/// Threads: calls are serialised by an internal lock (safe from any thread).
/// `culvert_broadcast_sender_close` must be the last use.
pub struct CulvertBroadcastSender {
    sender: Mutex<BroadcastSender>,
}

/// What `culvert_mailslot_info` reports (after Windows `GetMailslotInfo`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CulvertMailslotInfo {
    /// Length of the next message; valid when `has_message` is true.
    pub next_message_size: u64,
    /// Messages waiting (a snapshot).
    pub message_count: u64,
    /// Mailslot: messages writers dropped because it was full, since creation. Group
    /// reader: messages this reader missed by falling behind since it joined.
    pub dropped: u64,
    /// Whether a message is waiting.
    pub has_message: bool,
}

fn reader_options(
    max_message_size: usize,
    capacity: usize,
    read_timeout_ms: i64,
) -> MailslotOptions {
    let max = if max_message_size == 0 {
        DEFAULT_MAX_MESSAGE_SIZE
    } else {
        max_message_size
    };
    let cap = if capacity == 0 {
        DEFAULT_CAPACITY
    } else {
        capacity
    };
    MailslotOptions::new()
        .max_message_size(max)
        .capacity(cap)
        .read_timeout(timeout(read_timeout_ms))
}

fn new_reader(slot: MailslotReader) -> *mut CulvertMailslot {
    into_handle(CulvertMailslot {
        slot: Mutex::new(slot),
    })
}

/// Creates the mailslot `name` (in `$CULVERT_ROOT`, default `/dev/shm`) and stores its
/// one reader in `*out`. `max_message_size` is the largest message (0: 4096),
/// `capacity` the messages it holds (0: 256; rounded up to a power of two),
/// `read_timeout_ms` how long `culvert_mailslot_read` waits (negative: for ever; 0:
/// not at all).
///
/// Errors: `CULVERT_E_ALREADY_EXISTS` (a live reader holds the name; a dead reader's
/// mailslot is reclaimed), `CULVERT_E_INVALID_NAME`, `CULVERT_E_INVALID_ARGUMENT`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_create(
    name: *const c_char,
    max_message_size: usize,
    capacity: usize,
    read_timeout_ms: i64,
    out: *mut *mut CulvertMailslot,
) -> CulvertStatus {
    guard("culvert_mailslot_create", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        let opts = reader_options(max_message_size, capacity, read_timeout_ms);
        let slot = MailslotReader::create(name, &opts)?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, new_reader(slot)) };
        Ok(())
    })
}

/// Joins the broadcast group `group` as a new reader (creating the group if nobody
/// has joined; then `max_message_size` and `capacity` size its ring, 0 for the
/// defaults; later joiners' sizes are ignored) and stores it in `*out`. The reader
/// sees messages broadcast from now on. Read it with `culvert_mailslot_read`.
///
/// Errors: `CULVERT_E_BUSY` (the group is full), `CULVERT_E_WRONG_KIND`,
/// `CULVERT_E_INVALID_NAME`, `CULVERT_E_INVALID_ARGUMENT`.
///
/// # Safety
/// `group` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_join(
    group: *const c_char,
    max_message_size: usize,
    capacity: usize,
    read_timeout_ms: i64,
    out: *mut *mut CulvertMailslot,
) -> CulvertStatus {
    guard("culvert_mailslot_join", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let group = unsafe { name_arg(group, "group") }?;
        let opts = reader_options(max_message_size, capacity, read_timeout_ms);
        let slot = mailslot::join(group, &opts)?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, new_reader(slot)) };
        Ok(())
    })
}

/// Reads the next message into `buf` and stores its length in `*len`, waiting as the
/// read timeout says.
///
/// Errors: `CULVERT_E_TIMEOUT` (nothing arrived in time; at once with timeout 0);
/// `CULVERT_E_BUFFER_TOO_SMALL` (the message, which stays queued, needs `*len` bytes);
/// `CULVERT_E_OVERRUN` (broadcast reader: it fell behind and lost
/// `culvert_last_error_detail()` messages; read again for the oldest one left);
/// `CULVERT_E_CLOSED`.
///
/// # Safety
/// `slot` is NULL or an open mailslot handle; `buf` points to `cap` writable bytes
/// (may be NULL when `cap` is 0); `len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_read(
    slot: *const CulvertMailslot,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> CulvertStatus {
    let mut needed = None;
    let status = guard("culvert_mailslot_read", || {
        need_out(len, "len")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(slot, "slot") }?;
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
        let buf = unsafe { bytes_out(buf, cap, "buf") }?;
        match lock(&s.slot)?.read(buf) {
            Ok(n) => {
                // SAFETY: checked non-null; the caller guarantees it is writable.
                unsafe { put(len, n) };
                Ok(())
            }
            Err(e) => {
                if let culvert::Error::BufferTooSmall { needed: n, .. } = &e {
                    needed = Some(*n);
                }
                Err(Failure::from(e))
            }
        }
    });
    if status == CULVERT_E_BUFFER_TOO_SMALL {
        if let Some(n) = needed {
            // SAFETY: `len` was checked non-null inside the guard (we got this far
            // only past that check); the caller guarantees it is writable.
            unsafe { put(len, n) };
        }
    }
    status
}

/// Sets how long `culvert_mailslot_read` waits, in milliseconds (negative: for ever;
/// 0: not at all).
///
/// # Safety
/// `slot` is NULL or an open mailslot handle.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_set_read_timeout(
    slot: *const CulvertMailslot,
    read_timeout_ms: i64,
) -> CulvertStatus {
    guard("culvert_mailslot_set_read_timeout", || {
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(slot, "slot") }?;
        lock(&s.slot)?.set_read_timeout(timeout(read_timeout_ms));
        Ok(())
    })
}

/// Stores the next message's size, the messages waiting and the drop count in
/// `*info`. Never waits.
///
/// # Safety
/// `slot` is NULL or an open mailslot handle; `info` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_info(
    slot: *const CulvertMailslot,
    info: *mut CulvertMailslotInfo,
) -> CulvertStatus {
    guard("culvert_mailslot_info", || {
        need_out(info, "info")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(slot, "slot") }?;
        let i = lock(&s.slot)?.info()?;
        let value = CulvertMailslotInfo {
            next_message_size: i.next_message_size.unwrap_or(0) as u64,
            message_count: i.message_count,
            dropped: i.dropped,
            has_message: i.next_message_size.is_some(),
        };
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(info, value) };
        Ok(())
    })
}

/// Closes the reader: a mailslot is removed (writers get `CULVERT_E_CLOSED`); a group
/// reader leaves its group. NULL is a no-op.
///
/// # Safety
/// `slot` is NULL or an open mailslot handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_close(slot: *mut CulvertMailslot) -> CulvertStatus {
    guard("culvert_mailslot_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(slot) });
        Ok(())
    })
}

/// Opens a writer to the mailslot `name` and stores it in `*out`.
///
/// Errors: `CULVERT_E_NOT_FOUND` (no mailslot with a live reader),
/// `CULVERT_E_WRONG_KIND`, `CULVERT_E_BUSY` (too many writers), `CULVERT_E_INVALID_NAME`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_writer_open(
    name: *const c_char,
    out: *mut *mut CulvertMailslotWriter,
) -> CulvertStatus {
    guard("culvert_mailslot_writer_open", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        let writer = MailslotWriter::open(name)?;
        let h = into_handle(CulvertMailslotWriter {
            writer: Mutex::new(writer),
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, h) };
        Ok(())
    })
}

/// Sends one message, never waiting.
///
/// Errors: `CULVERT_E_FULL` (the mailslot was full: the message was dropped and
/// counted), `CULVERT_E_MESSAGE_TOO_LARGE` (nothing sent), `CULVERT_E_CLOSED` /
/// `CULVERT_E_PEER_DIED` (the reader is gone).
///
/// # Safety
/// `writer` is NULL or an open writer handle; `data` points to `len` readable bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_write(
    writer: *const CulvertMailslotWriter,
    data: *const c_void,
    len: usize,
) -> CulvertStatus {
    guard("culvert_mailslot_write", || {
        // SAFETY: the caller passes NULL or an open handle.
        let w = unsafe { handle(writer, "writer") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        lock(&w.writer)?.write(data)?;
        Ok(())
    })
}

/// Closes a writer. NULL is a no-op.
///
/// # Safety
/// `writer` is NULL or an open writer handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_mailslot_writer_close(
    writer: *mut CulvertMailslotWriter,
) -> CulvertStatus {
    guard("culvert_mailslot_writer_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(writer) });
        Ok(())
    })
}

/// Delivers one message to every current reader of the broadcast group `group`,
/// never waiting (opens and closes a sender; use `culvert_broadcast_sender_open` for
/// many messages).
///
/// Errors: `CULVERT_E_NOT_FOUND` (nobody joined), `CULVERT_E_MESSAGE_TOO_LARGE`.
///
/// # Safety
/// `group` is NULL or a NUL-terminated string; `data` points to `len` readable bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_broadcast(
    group: *const c_char,
    data: *const c_void,
    len: usize,
) -> CulvertStatus {
    guard("culvert_broadcast", || {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let group = unsafe { name_arg(group, "group") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        mailslot::broadcast(group, data)?;
        Ok(())
    })
}

/// Opens a sender to the broadcast group `group` and stores it in `*out`.
///
/// Errors: `CULVERT_E_NOT_FOUND` (nobody joined), `CULVERT_E_WRONG_KIND`,
/// `CULVERT_E_BUSY`.
///
/// # Safety
/// `group` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_broadcast_sender_open(
    group: *const c_char,
    out: *mut *mut CulvertBroadcastSender,
) -> CulvertStatus {
    guard("culvert_broadcast_sender_open", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let group = unsafe { name_arg(group, "group") }?;
        let sender = BroadcastSender::open(group)?;
        let h = into_handle(CulvertBroadcastSender {
            sender: Mutex::new(sender),
        });
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(out, h) };
        Ok(())
    })
}

/// Delivers one message to every reader of the sender's group, never waiting: a
/// reader a whole ring behind loses its oldest message and is told so.
///
/// Errors: `CULVERT_E_MESSAGE_TOO_LARGE`; `CULVERT_E_CLOSED` (the group was removed
/// after its last reader left: open a new sender).
///
/// # Safety
/// `sender` is NULL or an open sender handle; `data` points to `len` readable bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn culvert_broadcast_sender_send(
    sender: *const CulvertBroadcastSender,
    data: *const c_void,
    len: usize,
) -> CulvertStatus {
    guard("culvert_broadcast_sender_send", || {
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(sender, "sender") }?;
        // SAFETY: the caller guarantees `len` readable bytes at `data`.
        let data = unsafe { bytes_in(data, len, "data") }?;
        lock(&s.sender)?.send(data)?;
        Ok(())
    })
}

/// Stores the number of readers of the sender's group in `*readers` (a reader that
/// died stays counted until its entry is reused).
///
/// # Safety
/// `sender` is NULL or an open sender handle; `readers` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_broadcast_sender_readers(
    sender: *const CulvertBroadcastSender,
    readers: *mut usize,
) -> CulvertStatus {
    guard("culvert_broadcast_sender_readers", || {
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(sender, "sender") }?;
        let n = lock(&s.sender)?.readers();
        // SAFETY: the caller passes NULL or a writable pointer.
        unsafe { put_opt(readers, n) };
        Ok(())
    })
}

/// Closes a sender. NULL is a no-op.
///
/// # Safety
/// `sender` is NULL or an open sender handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_broadcast_sender_close(
    sender: *mut CulvertBroadcastSender,
) -> CulvertStatus {
    guard("culvert_broadcast_sender_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(sender) });
        Ok(())
    })
}
