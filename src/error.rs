//! [`Error`]: what the channel layers (pipes, mailslots, ports) report.
//!
//! The lower layers' errors are folded into variants a caller can act on; the ones
//! with no better home keep their source (`Section`). `From<Error> for io::Error` gives
//! the `std::io` kinds a `Read`/`Write` user expects (`BrokenPipe`, `TimedOut`, …).

use std::io;

/// Everything the channel layers can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No pipe server, mailslot, group or port of that name exists.
    #[error("'{name}' not found")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The name is taken by a live object.
    #[error("'{name}' already exists")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// Every instance or connection slot is taken (and the timeout passed), or the
    /// endpoint is held by another live process; `reason` says which.
    #[error("busy: {reason}")]
    Busy {
        /// What is busy.
        reason: BusyReason,
    },
    /// The deadline or timeout passed.
    #[error("timed out")]
    Timeout,
    /// Non-blocking mode: the operation would have to wait.
    #[error("the operation would block")]
    WouldBlock,
    /// The other end closed: writes fail with this (broken pipe); reads return end of
    /// stream instead where the API allows it.
    #[error("the other end closed the channel")]
    Closed,
    /// The peer process died.
    #[error("the peer process died")]
    PeerDied,
    /// The message exceeds the channel's maximum; nothing was sent.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Length offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The buffer cannot hold the next message (which was not consumed).
    #[error("buffer of {got} bytes is too small for the next message of {needed} bytes")]
    BufferTooSmall {
        /// Length of the next message.
        needed: usize,
        /// Buffer length offered.
        got: usize,
    },
    /// The mailslot was full: the message was dropped (and counted).
    #[error("the mailslot is full; the message was dropped")]
    Full,
    /// A broadcast reader fell behind and lost `missed` messages.
    #[error("fell behind and missed {missed} messages")]
    Overrun {
        /// Messages lost.
        missed: u64,
    },
    /// The call was cancelled.
    #[error("the call was cancelled")]
    Cancelled,
    /// The server rejected the connection; `reason` is its payload.
    #[error("connection rejected ({} bytes of reason)", reason.len())]
    Rejected {
        /// The server's reason payload.
        reason: Vec<u8>,
    },
    /// The server could not send the reply to this call (it was too large, or the
    /// server's view heap had no room…); `reason` is the server's error.
    #[error("the server could not reply: {reason}")]
    ReplyFailed {
        /// The server's error, as text.
        reason: String,
    },
    /// The name is not 1 to `max` characters of `[A-Za-z0-9._-]` (200 for sections,
    /// mailslots and ports; [`MAX_PIPE_NAME`](crate::pipe::MAX_PIPE_NAME) for pipes,
    /// whose instance names add a suffix), or is `.` or `..`.
    #[error("invalid name {name:?}: use 1 to {max} characters of [A-Za-z0-9._-]")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The longest name allowed here.
        max: usize,
    },
    /// An argument or option is out of range or inconsistent.
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// What is wrong.
        what: String,
    },
    /// The operating system or the owner check refused access.
    #[error("permission denied: {what}")]
    PermissionDenied {
        /// What was refused.
        what: String,
    },
    /// The object's creator died before it was ready; run `culvert gc` or unlink it.
    #[error("'{name}' is stale: its creator died before it was ready (run `culvert gc`)")]
    Stale {
        /// The name.
        name: String,
    },
    /// Shared memory broke an invariant (corruption or a hostile peer). The endpoint
    /// that saw it is unusable.
    #[error("shared memory is corrupted: {what}")]
    Corrupted {
        /// Which invariant broke.
        what: String,
    },
    /// Another section-level error (wrong kind, no space, …).
    #[error(transparent)]
    Section(culvert_section::Error),
    /// Another operating-system error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Why a call failed with [`Error::Busy`]: what was taken, and by how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusyReason {
    /// Every one of the named pipe's `max_instances` instances is connected (and no
    /// instance became free before the deadline).
    NoFreeInstance {
        /// The pipe's `max_instances`.
        max_instances: usize,
    },
    /// Every connection slot of the port is held by a live client.
    NoFreeConnection {
        /// The port's `max_connections`.
        max_connections: usize,
    },
    /// The pipe end is already attached by another process.
    EndAttached,
    /// Every holder entry of a shared pipe end is taken by a live process.
    HoldersFull {
        /// Holders an end can have.
        max_holders: usize,
    },
    /// The broadcast group has as many live readers as it can hold.
    GroupFull {
        /// Readers a group can have.
        max_members: usize,
    },
    /// `transact` was called while a message waits to be read.
    MessageWaiting,
    /// A ring endpoint that only one process may hold is held by a live one.
    RingEndpoint {
        /// Which endpoint.
        what: &'static str,
    },
}

impl std::fmt::Display for BusyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFreeInstance { max_instances } => {
                write!(
                    f,
                    "every one of the pipe's {max_instances} instances is taken"
                )
            }
            Self::NoFreeConnection { max_connections } => {
                write!(f, "all {max_connections} connection slots are taken")
            }
            Self::EndAttached => f.write_str("this pipe end is already attached"),
            Self::HoldersFull { max_holders } => {
                write!(
                    f,
                    "every one of the {max_holders} holder entries of this pipe end is taken"
                )
            }
            Self::GroupFull { max_members } => {
                write!(f, "the broadcast group has {max_members} live readers")
            }
            Self::MessageWaiting => f.write_str("transact with a message waiting to be read"),
            Self::RingEndpoint { what } => f.write_str(what),
        }
    }
}

/// `Result` with the channel [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<culvert_section::Error> for Error {
    fn from(e: culvert_section::Error) -> Self {
        use culvert_section::Error as S;
        match e {
            S::NotFound { name, .. } => Error::NotFound { name },
            S::AlreadyExists { name, .. } => Error::AlreadyExists { name },
            S::PermissionDenied { name, reason } => Error::PermissionDenied {
                what: format!("{name}: {reason}"),
            },
            S::InvalidName { name } => Error::InvalidName {
                name,
                max: culvert_section::MAX_NAME_LEN,
            },
            S::Stale { name, .. } => Error::Stale { name },
            S::Timeout { .. } => Error::Timeout,
            S::Corrupted { name, what } => {
                crate::trace::event!(ERROR, section = %name, %what, "section corrupted");
                Error::Corrupted {
                    what: format!("section {name}: {what}"),
                }
            }
            S::Io(e) => Error::Io(e),
            other => Error::Section(other),
        }
    }
}

impl From<culvert_ring::Error> for Error {
    fn from(e: culvert_ring::Error) -> Self {
        use culvert_ring::Error as R;
        match e {
            R::WouldBlock => Error::WouldBlock,
            R::Timeout => Error::Timeout,
            R::Closed => Error::Closed,
            R::PeerDied => Error::PeerDied,
            R::MessageTooLarge { len, max } => Error::MessageTooLarge { len, max },
            R::BufferTooSmall { needed, got } => Error::BufferTooSmall { needed, got },
            R::Overrun { missed } => {
                crate::trace::event!(WARN, missed, "broadcast reader overrun");
                Error::Overrun { missed }
            }
            R::Busy { what } => Error::Busy {
                reason: BusyReason::RingEndpoint { what },
            },
            R::InvalidConfig { what } => Error::InvalidArgument {
                what: what.to_string(),
            },
            R::Corrupted { what } => {
                crate::trace::event!(ERROR, what, "shared memory corrupted");
                Error::Corrupted {
                    what: what.to_string(),
                }
            }
            // The ring error enum may grow; anything new is a corruption-class
            // surprise until mapped explicitly.
            #[allow(unreachable_patterns)]
            other => Error::Corrupted {
                what: other.to_string(),
            },
        }
    }
}

impl From<culvert_section::heap::HeapError> for Error {
    fn from(e: culvert_section::heap::HeapError) -> Self {
        use culvert_section::heap::HeapError as H;
        match e {
            H::Corrupted(what) => {
                crate::trace::event!(ERROR, what, "view heap corrupted");
                Error::Corrupted {
                    what: what.to_string(),
                }
            }
            H::TooLarge { len, max } => Error::MessageTooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max,
            },
            H::DoesNotFit => Error::InvalidArgument {
                what: e.to_string(),
            },
        }
    }
}

impl From<culvert_sync::Timeout> for Error {
    fn from(_: culvert_sync::Timeout) -> Self {
        Error::Timeout
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            Error::Busy { .. } => io::ErrorKind::ResourceBusy,
            Error::Timeout => io::ErrorKind::TimedOut,
            Error::WouldBlock => io::ErrorKind::WouldBlock,
            Error::Closed | Error::PeerDied => io::ErrorKind::BrokenPipe,
            Error::MessageTooLarge { .. } | Error::InvalidArgument { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::InvalidName { .. } => io::ErrorKind::InvalidInput,
            Error::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            Error::Io(inner) => inner.kind(),
            _ => io::ErrorKind::Other,
        };
        match e {
            Error::Io(inner) => inner,
            other => io::Error::new(kind, other),
        }
    }
}
