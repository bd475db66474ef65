//! The ring layer's error type.

/// What a ring operation can report. Every variant is something a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing to read, or no room to write, right now (`try_*` calls).
    #[error("the operation would block")]
    WouldBlock,
    /// The deadline passed first.
    #[error("deadline passed")]
    Timeout,
    /// The other side closed: a writer's reader is gone, or a reader drained
    /// everything a closed writer committed (end of stream).
    #[error("the ring is closed")]
    Closed,
    /// The other side's process died (found through its liveness identity). A reader
    /// gets this only after draining every committed message.
    #[error("the peer process died")]
    PeerDied,
    /// The message is longer than the ring's `max_message`; nothing was written.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Length offered.
        len: usize,
        /// The ring's limit.
        max: usize,
    },
    /// The caller's buffer is shorter than the next message, which stays in the ring.
    #[error("buffer of {got} bytes is too small for the next message of {needed} bytes")]
    BufferTooSmall {
        /// Length of the next message.
        needed: usize,
        /// Length of the buffer offered.
        got: usize,
    },
    /// A broadcast reader fell behind: `missed` messages were overwritten before it
    /// read them. The next read returns the oldest message still held.
    #[error("reader fell behind and missed {missed} messages")]
    Overrun {
        /// How many messages this reader lost.
        missed: u64,
    },
    /// The endpoint is already held by another live process or handle.
    #[error("the {what} endpoint is already attached")]
    Busy {
        /// Which endpoint.
        what: &'static str,
    },
    /// The configuration cannot describe a ring (not a power of two, too small, …).
    #[error("invalid ring configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// A value read from shared memory broke an invariant: the shared memory was
    /// corrupted, or a peer is hostile. The endpoint is poisoned and fails from now on.
    #[error("shared ring memory is corrupted: {what}")]
    Corrupted {
        /// Which invariant broke.
        what: &'static str,
    },
}

impl From<culvert_sync::Timeout> for Error {
    fn from(_: culvert_sync::Timeout) -> Self {
        Error::Timeout
    }
}

/// `Result` with the ring [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
