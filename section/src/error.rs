//! [`Error`]: everything that can go wrong with a section, and the errno mapping.
//!
//! Every variant says what to do about it. Variants carry the section name where one
//! exists; match them with `Error::NotFound { .. }` and friends.

use std::path::PathBuf;
use std::time::Duration;

use culvert_sync::ProcessIdentity;
use rustix::io::Errno;

use crate::layout::SectionKind;

/// Result of section operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a section.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No section of that name exists in the namespace.
    #[error("section '{name}' not found in {}", root.display())]
    NotFound {
        /// Section name.
        name: String,
        /// Namespace directory searched.
        root: PathBuf,
    },
    /// A section of that name already exists (create is exclusive; use
    /// `open_or_create`, or `unlink` a stale one).
    #[error("section '{name}' already exists in {}", root.display())]
    AlreadyExists {
        /// Section name.
        name: String,
        /// Namespace directory.
        root: PathBuf,
    },
    /// The OS or the owner check refused access.
    #[error("permission denied for section '{name}': {reason}")]
    PermissionDenied {
        /// Section name.
        name: String,
        /// Why (file mode, foreign owner, symlink…).
        reason: String,
    },
    /// The name is not `[A-Za-z0-9._-]{1,200}` (or is `.`/`..`).
    #[error(
        "invalid section name {name:?}: use 1 to 200 characters of [A-Za-z0-9._-], not '.' or '..'"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The namespace directory is unusable as given (an empty path from
    /// `SectionOptions::root` or `CULVERT_ROOT`). Give a directory, or leave both unset
    /// for `/dev/shm`.
    #[error("invalid namespace directory {root:?}: {reason}")]
    InvalidRoot {
        /// The rejected directory.
        root: PathBuf,
        /// Why, and where it came from.
        reason: String,
    },
    /// A size is zero or too large.
    #[error("invalid size {size}: {reason}")]
    InvalidSize {
        /// The rejected size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A sub-object request was rejected (bad name, length or alignment, table full, no
    /// room, duplicate, section already ready, caller not the creator).
    #[error("section '{name}': {reason}")]
    InvalidOperation {
        /// Section name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The section has no sub-object of that name.
    #[error("section '{name}' has no object named '{object}'")]
    ObjectNotFound {
        /// Section name.
        name: String,
        /// Object asked for.
        object: String,
    },
    /// The section holds another kind of object than the caller expects.
    #[error("section '{name}' is a {found:?} section, expected {expected:?}")]
    WrongKind {
        /// Section name.
        name: String,
        /// What the caller expected.
        expected: SectionKind,
        /// What the header says.
        found: SectionKind,
    },
    /// The section's bytes are not a valid section (or a peer scribbled on them).
    #[error("section '{name}' is corrupted: {what}")]
    Corrupted {
        /// Section name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// The creator died before marking the section ready; it never will be. Unlink it
    /// (or run `culvert gc`) and create it again.
    #[error("section '{name}' is stale: its creator (pid {}) died before marking it ready; unlink it or run `culvert gc`", creator.pid)]
    Stale {
        /// Section name.
        name: String,
        /// The dead creator.
        creator: ProcessIdentity,
    },
    /// Someone poisoned the section (its creator gave up, or a peer found it corrupted).
    #[error("section '{name}' is poisoned: its creator gave up or a peer found it corrupted; unlink and recreate it")]
    Poisoned {
        /// Section name.
        name: String,
    },
    /// The section did not become ready within the open timeout (its creator lives).
    #[error("section '{name}' did not become ready within {waited:?} (its creator pid {} is alive but has not called mark_ready)", creator.pid)]
    Timeout {
        /// Section name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// The live creator.
        creator: ProcessIdentity,
    },
    /// The namespace filesystem has no room for the section.
    #[error("no space for section '{name}' ({size} bytes) in {}: the filesystem is full or too small — /dev/shm is only 64 MiB by default in Docker containers (raise it with `--shm-size`), or point CULVERT_ROOT / SectionOptions::root at a larger tmpfs", root.display())]
    NoSpace {
        /// Section name.
        name: String,
        /// Bytes asked for.
        size: u64,
        /// Namespace directory.
        root: PathBuf,
    },
    /// Another operating-system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// `Corrupted` for section `name`.
    pub(crate) fn corrupted(name: &str, what: impl Into<String>) -> Self {
        Error::Corrupted {
            name: name.to_string(),
            what: what.into(),
        }
    }
}

/// Where an errno came from, for [`map_errno`].
pub(crate) struct ErrCtx<'a> {
    pub name: &'a str,
    pub root: &'a std::path::Path,
    pub size: u64,
    pub op: &'static str,
}

/// Maps an errno to the typed error.
pub(crate) fn map_errno(e: Errno, cx: &ErrCtx<'_>) -> Error {
    let name = cx.name.to_string();
    let root = cx.root.to_path_buf();
    match e {
        Errno::NOENT => Error::NotFound { name, root },
        Errno::EXIST => Error::AlreadyExists { name, root },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied {
            name,
            reason: format!("{} failed: {e} (check the file mode and owner)", cx.op),
        },
        Errno::LOOP => Error::PermissionDenied {
            name,
            reason: "it is a symbolic link; sections are never opened through links".into(),
        },
        Errno::NOSPC | Errno::FBIG | Errno::DQUOT => Error::NoSpace {
            name,
            size: cx.size,
            root,
        },
        _ => Error::Io(std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("section '{}': {} failed: {e}", cx.name, cx.op),
        )),
    }
}
