//! # culvert-ffi — culvert from C
//!
//! The C ABI of culvert (a `cdylib` and a `staticlib`) and the header
//! `include/culvert.h`, generated from this crate by cbindgen (the `header` test
//! fails when the committed header is stale; `CULVERT_BLESS=1 cargo test -p
//! culvert-ffi --test header` rewrites it).
//!
//! ## Conventions
//!
//! * **Status codes.** Every function returns a [`CulvertStatus`]: `CULVERT_OK` (0) or
//!   a negative `CULVERT_E_*` code; results come back through out-parameters. A failing
//!   call records a text for the calling thread, read with
//!   [`culvert_last_error_message`] (and [`culvert_last_error_detail`] for the number
//!   that goes with some codes: bytes needed, messages missed, …).
//! * **No panic crosses the boundary.** Every entry point runs its body inside
//!   `std::panic::catch_unwind`; a panic (a bug in culvert) becomes
//!   `CULVERT_E_INTERNAL`.
//! * **Bad arguments are errors, not crashes.** A NULL handle, NULL out-parameter,
//!   NULL buffer with a non-zero length, a non-UTF-8 name or an out-of-range option
//!   returns `CULVERT_E_INVALID_ARGUMENT` (or `CULVERT_E_INVALID_NAME`). What C cannot
//!   check for us — a dangling handle, a buffer shorter than its stated length — stays
//!   the caller's responsibility (each function's `# Safety` section).
//! * **Handles** are opaque pointers with exactly one `_close` / `_free` function each,
//!   which accepts NULL. Each handle's thread-safety is documented on its type: handles
//!   over a `&mut self` Rust API hold an internal mutex, so even misuse from several
//!   threads is safe (serialised), never undefined behaviour.
//! * **Timeouts** are `int64_t` milliseconds: negative waits for ever
//!   (`CULVERT_WAIT_FOREVER`), 0 does not wait.
//! * **Names** are NUL-terminated `[A-Za-z0-9._-]{1,200}` and live in the namespace
//!   directory `$CULVERT_ROOT` (default `/dev/shm`).
//!
//! This crate adds no behaviour of its own: it converts arguments and errors and
//! calls the `culvert` crate. It must never let a Rust panic or a Rust-owned
//! reference escape to C beyond what the header documents.

mod mailslot;
mod pipe;
mod port;
mod section;
mod status;
mod version;

pub use mailslot::*;
pub use pipe::*;
pub use port::*;
pub use section::*;
pub use status::{
    culvert_last_error_detail, culvert_last_error_message, culvert_last_error_status,
    culvert_status_name, CulvertStatus, CULVERT_E_ALREADY_EXISTS, CULVERT_E_BUFFER_TOO_SMALL,
    CULVERT_E_BUSY, CULVERT_E_CANCELLED, CULVERT_E_CLOSED, CULVERT_E_CORRUPTED, CULVERT_E_FULL,
    CULVERT_E_INTERNAL, CULVERT_E_INVALID_ARGUMENT, CULVERT_E_INVALID_NAME, CULVERT_E_IO,
    CULVERT_E_MESSAGE_TOO_LARGE, CULVERT_E_NOT_FOUND, CULVERT_E_NO_SPACE, CULVERT_E_OVERRUN,
    CULVERT_E_PEER_DIED, CULVERT_E_PERMISSION_DENIED, CULVERT_E_POISONED, CULVERT_E_REJECTED,
    CULVERT_E_REPLY_FAILED, CULVERT_E_SECTION, CULVERT_E_STALE, CULVERT_E_TIMEOUT,
    CULVERT_E_WOULD_BLOCK, CULVERT_OK, CULVERT_PIPE_SERVER_DEFAULT_WAIT, CULVERT_WAIT_FOREVER,
};
pub use version::*;

// The thread-safety promised in the header: every handle may move between threads,
// and the ones documented as shareable are `Sync` (the others are too, through their
// internal mutex, but their docs ask for one thread at a time).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CulvertSection>();
    send_sync::<CulvertPipe>();
    send_sync::<CulvertPipeServer>();
    send_sync::<CulvertMailslot>();
    send_sync::<CulvertMailslotWriter>();
    send_sync::<CulvertBroadcastSender>();
    send_sync::<CulvertPortServer>();
    send_sync::<CulvertPortClient>();
    send_sync::<CulvertPendingCall>();
    send_sync::<CulvertReply>();
};
