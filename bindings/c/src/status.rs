//! Status codes, the thread-local last error, the panic guard every entry point runs
//! its body in, and the argument checks (null pointers, lengths, names, timeouts).
//!
//! Every exported function returns a [`CulvertStatus`]: `CULVERT_OK` (0) or a negative
//! `CULVERT_E_*` code. A failing call also records, for the calling thread only, a
//! text ([`culvert_last_error_message`]), its status ([`culvert_last_error_status`])
//! and a numeric detail ([`culvert_last_error_detail`]). Successful calls leave the
//! record alone (like `errno`), so read it right after the failing call.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use culvert::section::Error as SectionError;
use culvert::{Deadline, Error};

/// What every culvert function returns: `CULVERT_OK` (0) or a negative `CULVERT_E_*`
/// code. `culvert_last_error_message()` then says more.
pub type CulvertStatus = i32;

/// Success.
pub const CULVERT_OK: CulvertStatus = 0;
/// A null pointer where a value is required, a length that does not fit, a handle
/// used wrongly (e.g. a reply already taken), or an option out of range.
pub const CULVERT_E_INVALID_ARGUMENT: CulvertStatus = -1;
/// No section, pipe server, mailslot, group or port of that name exists.
pub const CULVERT_E_NOT_FOUND: CulvertStatus = -2;
/// The name is taken by a live object.
pub const CULVERT_E_ALREADY_EXISTS: CulvertStatus = -3;
/// Every instance or connection slot is taken (Windows' `ERROR_PIPE_BUSY`).
pub const CULVERT_E_BUSY: CulvertStatus = -4;
/// The timeout passed.
pub const CULVERT_E_TIMEOUT: CulvertStatus = -5;
/// Non-blocking mode: the call would have to wait.
pub const CULVERT_E_WOULD_BLOCK: CulvertStatus = -6;
/// The other end closed the channel (broken pipe; end of stream for message reads).
pub const CULVERT_E_CLOSED: CulvertStatus = -7;
/// The peer process died.
pub const CULVERT_E_PEER_DIED: CulvertStatus = -8;
/// The message exceeds the channel's maximum; nothing was sent. Detail: the maximum.
pub const CULVERT_E_MESSAGE_TOO_LARGE: CulvertStatus = -9;
/// The buffer cannot hold the next message, which stays queued. Detail: the length
/// needed.
pub const CULVERT_E_BUFFER_TOO_SMALL: CulvertStatus = -10;
/// The mailslot was full: the message was dropped (and counted for the reader).
pub const CULVERT_E_FULL: CulvertStatus = -11;
/// A broadcast reader fell behind. Detail: how many messages it missed. The next read
/// returns the oldest message still available.
pub const CULVERT_E_OVERRUN: CulvertStatus = -12;
/// The call was cancelled.
pub const CULVERT_E_CANCELLED: CulvertStatus = -13;
/// The port server rejected the connection (its reason is in the answer buffer).
pub const CULVERT_E_REJECTED: CulvertStatus = -14;
/// The name is not 1 to 200 characters of `[A-Za-z0-9._-]` (or is not UTF-8).
pub const CULVERT_E_INVALID_NAME: CulvertStatus = -15;
/// The operating system or the owner check refused access.
pub const CULVERT_E_PERMISSION_DENIED: CulvertStatus = -16;
/// The object's creator died before it was ready: unlink it or run `culvert gc`.
pub const CULVERT_E_STALE: CulvertStatus = -17;
/// Shared memory broke an invariant (corruption or a hostile peer); the endpoint that
/// saw it is unusable.
pub const CULVERT_E_CORRUPTED: CulvertStatus = -18;
/// Another operating-system error. Detail: the `errno` value, if there was one.
pub const CULVERT_E_IO: CulvertStatus = -19;
/// The namespace filesystem (`/dev/shm`, or `$CULVERT_ROOT`) has no room.
pub const CULVERT_E_NO_SPACE: CulvertStatus = -20;
/// The name holds another kind of object (e.g. a pipe where a mailslot was expected).
pub const CULVERT_E_WRONG_KIND: CulvertStatus = -21;
/// The section was poisoned (its creator gave up, or a peer found it corrupted).
pub const CULVERT_E_POISONED: CulvertStatus = -22;
/// Another section-level error (see the message).
pub const CULVERT_E_SECTION: CulvertStatus = -23;
/// A bug inside culvert: a Rust panic was caught at the boundary. The handle used may
/// be unusable; close it.
pub const CULVERT_E_INTERNAL: CulvertStatus = -24;
/// The server could not send the reply to this call (too large, no room in its view
/// heap…); the message says why. The connection stays usable.
pub const CULVERT_E_REPLY_FAILED: CulvertStatus = -25;

/// A timeout in milliseconds that never passes (any negative value does).
pub const CULVERT_WAIT_FOREVER: i64 = -1;

/// `culvert_pipe_connect` only: wait for a free instance as long as the server's
/// `default_timeout_ms` (Windows' `NMPWAIT_USE_DEFAULT_WAIT`).
pub const CULVERT_PIPE_SERVER_DEFAULT_WAIT: i64 = i64::MIN;

/// A failure on its way to C: status, message, detail.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: CulvertStatus,
    pub message: String,
    pub detail: u64,
}

impl Failure {
    pub fn new(status: CulvertStatus, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            detail: 0,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(CULVERT_E_INVALID_ARGUMENT, message)
    }
}

/// The status code (and detail) of a channel error.
fn classify(e: &Error) -> (CulvertStatus, u64) {
    match e {
        Error::NotFound { .. } => (CULVERT_E_NOT_FOUND, 0),
        Error::AlreadyExists { .. } => (CULVERT_E_ALREADY_EXISTS, 0),
        Error::Busy { .. } => (CULVERT_E_BUSY, 0),
        Error::Timeout => (CULVERT_E_TIMEOUT, 0),
        Error::WouldBlock => (CULVERT_E_WOULD_BLOCK, 0),
        Error::Closed => (CULVERT_E_CLOSED, 0),
        Error::PeerDied => (CULVERT_E_PEER_DIED, 0),
        Error::MessageTooLarge { max, .. } => (CULVERT_E_MESSAGE_TOO_LARGE, *max as u64),
        Error::BufferTooSmall { needed, .. } => (CULVERT_E_BUFFER_TOO_SMALL, *needed as u64),
        Error::Full => (CULVERT_E_FULL, 0),
        Error::Overrun { missed } => (CULVERT_E_OVERRUN, *missed),
        Error::Cancelled => (CULVERT_E_CANCELLED, 0),
        Error::Rejected { reason } => (CULVERT_E_REJECTED, reason.len() as u64),
        Error::ReplyFailed { .. } => (CULVERT_E_REPLY_FAILED, 0),
        Error::InvalidName { .. } => (CULVERT_E_INVALID_NAME, 0),
        Error::InvalidArgument { .. } => (CULVERT_E_INVALID_ARGUMENT, 0),
        Error::PermissionDenied { .. } => (CULVERT_E_PERMISSION_DENIED, 0),
        Error::Stale { .. } => (CULVERT_E_STALE, 0),
        Error::Corrupted { .. } => (CULVERT_E_CORRUPTED, 0),
        Error::Section(s) => classify_section(s),
        Error::Io(io) => (CULVERT_E_IO, io.raw_os_error().unwrap_or(0) as u64),
        _ => (CULVERT_E_SECTION, 0),
    }
}

fn classify_section(e: &SectionError) -> (CulvertStatus, u64) {
    match e {
        SectionError::NotFound { .. } | SectionError::ObjectNotFound { .. } => {
            (CULVERT_E_NOT_FOUND, 0)
        }
        SectionError::AlreadyExists { .. } => (CULVERT_E_ALREADY_EXISTS, 0),
        SectionError::PermissionDenied { .. } => (CULVERT_E_PERMISSION_DENIED, 0),
        SectionError::InvalidName { .. } => (CULVERT_E_INVALID_NAME, 0),
        SectionError::InvalidSize { .. }
        | SectionError::InvalidOperation { .. }
        | SectionError::InvalidRoot { .. } => (CULVERT_E_INVALID_ARGUMENT, 0),
        SectionError::WrongKind { .. } => (CULVERT_E_WRONG_KIND, 0),
        SectionError::Corrupted { .. } => (CULVERT_E_CORRUPTED, 0),
        SectionError::Stale { .. } => (CULVERT_E_STALE, 0),
        SectionError::Poisoned { .. } => (CULVERT_E_POISONED, 0),
        SectionError::Timeout { .. } => (CULVERT_E_TIMEOUT, 0),
        SectionError::NoSpace { .. } => (CULVERT_E_NO_SPACE, 0),
        SectionError::Io(io) => (CULVERT_E_IO, io.raw_os_error().unwrap_or(0) as u64),
        #[allow(unreachable_patterns)]
        _ => (CULVERT_E_SECTION, 0),
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (status, detail) = classify(&e);
        Failure {
            status,
            message: e.to_string(),
            detail,
        }
    }
}

impl From<SectionError> for Failure {
    fn from(e: SectionError) -> Self {
        let (status, detail) = classify_section(&e);
        Failure {
            status,
            message: e.to_string(),
            detail,
        }
    }
}

impl From<std::io::Error> for Failure {
    /// `std::io` errors from `Read`/`Write` wrap a channel [`Error`]: unwrap it to
    /// keep its precise status.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(channel) = inner.downcast::<Error>() {
                    return Failure::from(*channel);
                }
            }
            return Failure::new(CULVERT_E_IO, "I/O error");
        }
        let status = match e.kind() {
            K::TimedOut => CULVERT_E_TIMEOUT,
            K::WouldBlock => CULVERT_E_WOULD_BLOCK,
            K::BrokenPipe => CULVERT_E_CLOSED,
            K::NotFound => CULVERT_E_NOT_FOUND,
            K::PermissionDenied => CULVERT_E_PERMISSION_DENIED,
            K::InvalidInput => CULVERT_E_INVALID_ARGUMENT,
            _ => CULVERT_E_IO,
        };
        Failure {
            status,
            detail: e.raw_os_error().unwrap_or(0) as u64,
            message: e.to_string(),
        }
    }
}

/// `Result` of an entry point's body.
pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

/// The calling thread's last failure.
struct LastError {
    status: CulvertStatus,
    detail: u64,
    message: CString,
}

thread_local! {
    static LAST: RefCell<LastError> = RefCell::new(LastError {
        status: CULVERT_OK,
        detail: 0,
        message: CString::default(),
    });
}

fn record(function: &str, f: Failure) -> CulvertStatus {
    let text = format!("{function}: {}", f.message).replace('\0', "\\0");
    let message = CString::new(text).unwrap_or_default();
    let status = f.status;
    // `try_with`: during thread teardown the slot may be gone; the status still
    // reaches the caller.
    let _ = LAST.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = LastError {
                status,
                detail: f.detail,
                message,
            };
        }
    });
    status
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs an entry point's body: no panic escapes (it becomes `CULVERT_E_INTERNAL`),
/// and a failure is recorded as the thread's last error.
pub(crate) fn guard(function: &'static str, body: impl FnOnce() -> FfiResult) -> CulvertStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CULVERT_OK,
        Ok(Err(f)) => record(function, f),
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            // Dropping a payload can itself panic; keep that inside too.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            record(
                function,
                Failure::new(
                    CULVERT_E_INTERNAL,
                    format!("internal error (a Rust panic was caught): {text}"),
                ),
            )
        }
    }
}

/// Locks a handle's mutex; a mutex poisoned by a caught panic makes the handle
/// unusable (`CULVERT_E_INTERNAL`) rather than exposing half-updated state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> FfiResult<MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        Failure::new(
            CULVERT_E_INTERNAL,
            "the handle is unusable after an internal error; close it",
        )
    })
}

// ---- argument checks -------------------------------------------------------------

/// A handle argument.
///
/// # Safety
/// `p` is null or points to a live `T` created by this library and not yet closed.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees `p` is null or a live handle.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// A NUL-terminated UTF-8 name.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn name_arg<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| {
        Failure::new(
            CULVERT_E_INVALID_NAME,
            format!("{what} is not UTF-8 (names are [A-Za-z0-9._-])"),
        )
    })
}

/// `len` readable bytes at `p` (`p` may be null only when `len` is 0).
///
/// # Safety
/// When `len > 0`, `p` is null or points to `len` readable bytes that stay valid and
/// unmodified during the call.
pub(crate) unsafe fn bytes_in<'a>(p: *const c_void, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "{what}: length {len} is too large"
        )));
    }
    // SAFETY: non-null, `len <= isize::MAX`, and the caller guarantees `len` readable
    // bytes for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// `cap` writable bytes at `p` (`p` may be null only when `cap` is 0).
///
/// # Safety
/// When `cap > 0`, `p` is null or points to `cap` writable bytes that nothing else
/// accesses during the call.
pub(crate) unsafe fn bytes_out<'a>(
    p: *mut c_void,
    cap: usize,
    what: &str,
) -> FfiResult<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its capacity is {cap}"
        )));
    }
    if cap > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "{what}: capacity {cap} is too large"
        )));
    }
    // SAFETY: non-null, `cap <= isize::MAX`, and the caller guarantees `cap` writable
    // bytes that nothing else touches during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), cap) })
}

/// Checks that a required out-parameter is not null.
pub(crate) fn need_out<T>(p: *mut T, what: &str) -> FfiResult<()> {
    if p.is_null() {
        Err(Failure::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// Writes `value` through an optional out-parameter (null: not wanted).
///
/// # Safety
/// `p` is null or valid for a write of `T` (alignment included).
pub(crate) unsafe fn put_opt<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: non-null, and the caller guarantees it is valid for a write.
        unsafe { p.write(value) };
    }
}

/// Writes `value` through a required out-parameter checked with [`need_out`].
///
/// # Safety
/// `p` is non-null and valid for a write of `T` (alignment included).
pub(crate) unsafe fn put<T>(p: *mut T, value: T) {
    // SAFETY: the caller guarantees `p` is valid for a write.
    unsafe { p.write(value) };
}

/// A new handle for C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes a handle back to drop it; null is a no-op.
///
/// # Safety
/// `p` is null or a handle made by [`into_handle`] that is not used again.
pub(crate) unsafe fn take_handle<T>(p: *mut T) -> Option<Box<T>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the caller passes a pointer from `Box::into_raw` exactly once.
        Some(unsafe { Box::from_raw(p) })
    }
}

/// `timeout_ms` as a Rust timeout: negative waits for ever, 0 polls.
pub(crate) fn timeout(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// `timeout_ms` as a deadline from now.
pub(crate) fn deadline(ms: i64) -> Deadline {
    Deadline::from_timeout(timeout(ms))
}

// ---- the exported error functions ------------------------------------------------

/// The text of the calling thread's last failure (e.g. `"culvert_pipe_connect:
/// 'echo' not found"`), or `""` if no call failed yet on this thread.
///
/// The pointer is never NULL. It stays valid until the next failing culvert call on
/// the same thread; copy the text to keep it. Thread-safe (each thread has its own).
#[no_mangle]
pub extern "C" fn culvert_last_error_message() -> *const c_char {
    static EMPTY: &CStr = c"";
    catch_unwind(|| {
        LAST.try_with(|last| match last.try_borrow() {
            // The CString lives in the thread-local until the next failure replaces it.
            Ok(l) => l.message.as_ptr(),
            Err(_) => EMPTY.as_ptr(),
        })
        .unwrap_or(EMPTY.as_ptr())
    })
    .unwrap_or(EMPTY.as_ptr())
}

/// The status of the calling thread's last failure (`CULVERT_OK` if none yet).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn culvert_last_error_status() -> CulvertStatus {
    catch_unwind(|| {
        LAST.try_with(|last| last.try_borrow().map(|l| l.status).unwrap_or(CULVERT_OK))
            .unwrap_or(CULVERT_OK)
    })
    .unwrap_or(CULVERT_E_INTERNAL)
}

/// A number about the calling thread's last failure: for `CULVERT_E_BUFFER_TOO_SMALL`
/// the length needed, for `CULVERT_E_MESSAGE_TOO_LARGE` the maximum, for
/// `CULVERT_E_OVERRUN` the messages missed, for `CULVERT_E_REJECTED` the reason's
/// length, for `CULVERT_E_IO` the `errno` (or 0); otherwise 0. Thread-safe.
#[no_mangle]
pub extern "C" fn culvert_last_error_detail() -> u64 {
    catch_unwind(|| {
        LAST.try_with(|last| last.try_borrow().map(|l| l.detail).unwrap_or(0))
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

/// The name of a status code (`"CULVERT_E_TIMEOUT"`), or `"CULVERT_E_UNKNOWN"`. The
/// string is static. Thread-safe.
#[no_mangle]
pub extern "C" fn culvert_status_name(status: CulvertStatus) -> *const c_char {
    let name: &'static CStr = match status {
        CULVERT_OK => c"CULVERT_OK",
        CULVERT_E_INVALID_ARGUMENT => c"CULVERT_E_INVALID_ARGUMENT",
        CULVERT_E_NOT_FOUND => c"CULVERT_E_NOT_FOUND",
        CULVERT_E_ALREADY_EXISTS => c"CULVERT_E_ALREADY_EXISTS",
        CULVERT_E_BUSY => c"CULVERT_E_BUSY",
        CULVERT_E_TIMEOUT => c"CULVERT_E_TIMEOUT",
        CULVERT_E_WOULD_BLOCK => c"CULVERT_E_WOULD_BLOCK",
        CULVERT_E_CLOSED => c"CULVERT_E_CLOSED",
        CULVERT_E_PEER_DIED => c"CULVERT_E_PEER_DIED",
        CULVERT_E_MESSAGE_TOO_LARGE => c"CULVERT_E_MESSAGE_TOO_LARGE",
        CULVERT_E_BUFFER_TOO_SMALL => c"CULVERT_E_BUFFER_TOO_SMALL",
        CULVERT_E_FULL => c"CULVERT_E_FULL",
        CULVERT_E_OVERRUN => c"CULVERT_E_OVERRUN",
        CULVERT_E_CANCELLED => c"CULVERT_E_CANCELLED",
        CULVERT_E_REJECTED => c"CULVERT_E_REJECTED",
        CULVERT_E_INVALID_NAME => c"CULVERT_E_INVALID_NAME",
        CULVERT_E_PERMISSION_DENIED => c"CULVERT_E_PERMISSION_DENIED",
        CULVERT_E_STALE => c"CULVERT_E_STALE",
        CULVERT_E_CORRUPTED => c"CULVERT_E_CORRUPTED",
        CULVERT_E_IO => c"CULVERT_E_IO",
        CULVERT_E_NO_SPACE => c"CULVERT_E_NO_SPACE",
        CULVERT_E_WRONG_KIND => c"CULVERT_E_WRONG_KIND",
        CULVERT_E_POISONED => c"CULVERT_E_POISONED",
        CULVERT_E_SECTION => c"CULVERT_E_SECTION",
        CULVERT_E_INTERNAL => c"CULVERT_E_INTERNAL",
        CULVERT_E_REPLY_FAILED => c"CULVERT_E_REPLY_FAILED",
        _ => c"CULVERT_E_UNKNOWN",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_message() -> String {
        // SAFETY: the pointer is a valid C string until the next failure on this thread.
        unsafe { CStr::from_ptr(culvert_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status() {
        let s = guard("culvert_test", || panic!("boom {}", 42));
        assert_eq!(s, CULVERT_E_INTERNAL);
        assert_eq!(culvert_last_error_status(), CULVERT_E_INTERNAL);
        let m = last_message();
        assert!(m.starts_with("culvert_test: internal error"), "{m}");
        assert!(m.contains("boom 42"), "{m}");
    }

    #[test]
    fn failures_are_recorded_per_thread() {
        let s = guard("culvert_a", || {
            Err(Error::BufferTooSmall { needed: 99, got: 1 }.into())
        });
        assert_eq!(s, CULVERT_E_BUFFER_TOO_SMALL);
        assert_eq!(culvert_last_error_detail(), 99);
        assert!(last_message().starts_with("culvert_a: buffer of 1 bytes"));
        std::thread::spawn(|| {
            assert_eq!(culvert_last_error_status(), CULVERT_OK);
            assert_eq!(last_message(), "");
        })
        .join()
        .unwrap();
        // Success leaves the record alone.
        assert_eq!(guard("culvert_b", || Ok(())), CULVERT_OK);
        assert_eq!(culvert_last_error_status(), CULVERT_E_BUFFER_TOO_SMALL);
    }

    #[test]
    fn io_errors_keep_the_channel_status() {
        let io: std::io::Error = Error::Timeout.into();
        assert_eq!(Failure::from(io).status, CULVERT_E_TIMEOUT);
        let io: std::io::Error = Error::Overrun { missed: 7 }.into();
        let f = Failure::from(io);
        assert_eq!((f.status, f.detail), (CULVERT_E_OVERRUN, 7));
        let raw = std::io::Error::from_raw_os_error(28);
        assert_eq!(Failure::from(raw).status, CULVERT_E_IO);
    }

    #[test]
    fn argument_checks() {
        // SAFETY: null pointers and zero lengths only.
        unsafe {
            assert!(bytes_in(std::ptr::null(), 0, "x").unwrap().is_empty());
            assert!(bytes_in(std::ptr::null(), 1, "x").is_err());
            assert!(bytes_out(std::ptr::null_mut(), 1, "x").is_err());
            assert!(name_arg(std::ptr::null(), "name").is_err());
            assert!(handle::<u8>(std::ptr::null(), "h").is_err());
        }
        let bad = c"\xff";
        // SAFETY: a valid C string.
        let r = unsafe { name_arg(bad.as_ptr(), "name") };
        assert_eq!(r.unwrap_err().status, CULVERT_E_INVALID_NAME);
        assert_eq!(timeout(-1), None);
        assert_eq!(timeout(0), Some(Duration::ZERO));
        // SAFETY: culvert_status_name returns static C strings.
        let n = unsafe { CStr::from_ptr(culvert_status_name(CULVERT_E_TIMEOUT)) };
        assert_eq!(n.to_str().unwrap(), "CULVERT_E_TIMEOUT");
    }
}
