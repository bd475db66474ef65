//! Errors of the sync layer.

use std::fmt;

/// A blocking call's [`Deadline`](crate::Deadline) passed before the awaited event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline passed before the awaited event")
    }
}

impl std::error::Error for Timeout {}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The deadline passed.
    #[error("deadline passed before the awaited event")]
    Timeout,
    /// An operating-system call failed.
    #[error("system call failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<Timeout> for Error {
    fn from(_: Timeout) -> Self {
        Error::Timeout
    }
}
