//! Mailslots: one-way, fire-and-forget messages — one reader, any number of writers,
//! and broadcast groups (after Windows mailslots).
//!
//! * [`MailslotReader::create`] makes the one reader of a named mailslot. It lives in its own
//!   section (kind [`SectionKind::Mailslot`](culvert_section::SectionKind)), which
//!   disappears when the reader is dropped — or, if the reader dies, when [`gc`] runs or
//!   the next [`MailslotReader::create`] of the same name reclaims it. Creating a name whose
//!   reader lives is `AlreadyExists`.
//! * [`MailslotWriter::open`] attaches a writer (any number, in any processes).
//!   [`MailslotWriter::write`] **never blocks**: it delivers the whole message, or
//!   reports [`Error::Full`] — the mailslot dropped the message and counted it in a
//!   counter in shared memory that the reader sees in [`MailslotInfo::dropped`]. A
//!   message longer than `max_message_size` is `MessageTooLarge`, and nothing is sent.
//! * The reader's [`MailslotReader::read`] honours the read timeout (`None`: wait for ever;
//!   `Some(0)`: never wait; on expiry `Timeout`), [`MailslotReader::try_read`] never waits
//!   (`WouldBlock`), [`MailslotReader::info`] gives the next message's size, the messages
//!   queued and the drop count.
//! * [`join`] makes a reader of a **broadcast group**: one
//!   [`broadcast::Ring`](culvert_ring::broadcast::Ring) in the group's section
//!   (kind `BroadcastGroup`), created by whoever joins first. [`broadcast`] (or a
//!   [`BroadcastSender`] for many messages) delivers a message to every reader that
//!   joined. A reader that falls behind loses the oldest messages, and its next
//!   [`MailslotReader::read`] returns [`Error::Overrun`]`{ missed }` before the next message
//!   it still can read: loss is never silent. Readers join and leave at any time; the
//!   group's section is removed when the last reader leaves.
//!
//! No delivery guarantee, by design, but never a silent loss: a writer learns of every
//! drop (`Full`), the reader can count them (`dropped`), and a broadcast reader is told
//! how many it missed.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use culvert::mailslot::{self, MailslotReader, MailslotOptions, MailslotWriter};
//! use culvert::Error;
//!
//! # fn main() -> culvert::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! // Tests and examples use their own namespace directory (default: /dev/shm).
//! let opts = MailslotOptions::new().max_message_size(256).capacity(8).read_timeout(Duration::ZERO).root(dir.path());
//!
//! let mut reader = MailslotReader::create("status", &opts)?;
//! let mut writer = MailslotWriter::open_with("status", &opts)?;
//! writer.write(b"disk ok")?;
//! assert_eq!(reader.info()?.next_message_size, Some(7));
//!
//! let mut buf = [0u8; 256];
//! let n = reader.read(&mut buf)?;
//! assert_eq!(&buf[..n], b"disk ok");
//! assert!(matches!(reader.read(&mut buf), Err(Error::Timeout))); // Some(0): no wait
//!
//! // A full mailslot drops the message and says so.
//! for _ in 0..8 {
//!     writer.write(b"x")?;
//! }
//! assert!(matches!(writer.write(b"lost"), Err(Error::Full)));
//! assert_eq!(reader.info()?.dropped, 1);
//!
//! // Broadcast groups: every reader that joined gets every message.
//! let mut a = mailslot::join("alerts", &opts)?;
//! let mut b = mailslot::join("alerts", &opts)?;
//! mailslot::broadcast_with("alerts", b"fire", &opts)?;
//! assert_eq!(a.read(&mut buf)?, 4);
//! assert_eq!(b.read(&mut buf)?, 4);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! A mailslot section holds a control block (configuration, the shared `dropped`
//! counter, a reclaim word) and an MPMC message ring whose one consumer is the reader.
//! Writers `try_send`; a full ring is counted and reported, never waited on. A writer
//! killed mid-write leaves its slot claimed in its own name: the reader skips it once it
//! sees the writer is dead (within `LIVENESS_RECHECK_INTERVAL`), so a torn message is
//! never visible. The reader is the section's creator, so its identity in the section
//! header tells writers (and `create`, and [`gc`]) whether anyone still reads.
//!
//! A group section holds a control block (configuration, a member table of reader
//! identities, a `closing` word) and a broadcast ring. Joining claims a member entry and
//! then checks `closing`; the last reader to leave sets `closing` and then scans the
//! table, unlinking the name only if no live member turned up (both sides use SeqCst,
//! so one always sees the other). The first joiner's sizes are the group's.
//!
//! **Sizing broadcast rings.** Writers never wait for readers, so a reader gets every
//! message only if it keeps within `capacity` messages of the writers. Size the ring
//! for the longest stall a reader may suffer at the writers' rate (or pace the writers);
//! a reader that does fall behind is told exactly how many messages it lost.
//!
//! Messages in a mailslot keep each writer's order. `message_count` is a snapshot that
//! includes messages being written; `dropped` counts every message a writer was told
//! was dropped.

#[cfg(not(loom))]
pub mod fuzzing;
mod group;
mod layout;
mod reader;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use culvert_ring::{broadcast as bring, mpmc};
use culvert_section::{Region, Section, SectionKind, SectionOptions};

use crate::{Error, Result};

pub use group::{broadcast, broadcast_with, BroadcastSender};
pub use layout::{MAX_CAPACITY, MAX_GROUP_MEMBERS, MAX_MESSAGE_SIZE_LIMIT, MAX_RING_BYTES};
pub use reader::{join, MailslotReader};

/// The former name of [`MailslotReader`].
pub type Mailslot = MailslotReader;
pub use writer::MailslotWriter;

/// Default [`MailslotOptions::max_message_size`].
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4096;
/// Default [`MailslotOptions::capacity`].
pub const DEFAULT_CAPACITY: usize = 256;

/// How a mailslot or a broadcast-group reader is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotOptions {
    /// Largest message, in bytes: `1..=MAX_MESSAGE_SIZE_LIMIT`. A longer write fails
    /// with `MessageTooLarge`. Default 4096.
    pub max_message_size: usize,
    /// Messages the mailslot (or group ring) holds: `1..=MAX_CAPACITY`, rounded up to a
    /// power of two (at least 2). Default 256.
    pub capacity: usize,
    /// How long [`MailslotReader::read`] waits: `None` for ever, `Some(0)` not at all.
    /// Default `None`.
    pub read_timeout: Option<Duration>,
    /// Namespace directory; `None`: `$CULVERT_ROOT`, else `/dev/shm`. Writers and
    /// broadcasters use only this field of the options they are given.
    pub root: Option<PathBuf>,
}

impl Default for MailslotOptions {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            capacity: DEFAULT_CAPACITY,
            read_timeout: None,
            root: None,
        }
    }
}

impl MailslotOptions {
    /// The default options: 4096-byte messages, 256 of them, reads that wait for ever,
    /// the default namespace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Self::capacity`].
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = messages;
        self
    }

    /// Sets [`Self::root`].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Sets [`Self::read_timeout`]: a `Duration`, `Some(d)`, or `None` for ever.
    pub fn read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.read_timeout = timeout.into();
        self
    }

    /// Checks the sizes; returns the ring configuration (capacity rounded up).
    fn validate(&self) -> Result<layout::Config> {
        let bad = |what: String| Err(Error::InvalidArgument { what });
        if self.max_message_size == 0 {
            return bad("max_message_size must be at least 1".into());
        }
        if self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return bad(format!(
                "max_message_size {} exceeds the limit of {MAX_MESSAGE_SIZE_LIMIT}",
                self.max_message_size
            ));
        }
        if self.capacity == 0 {
            return bad("capacity must be at least 1 message".into());
        }
        if self.capacity > MAX_CAPACITY {
            return bad(format!(
                "capacity {} exceeds the limit of {MAX_CAPACITY} messages",
                self.capacity
            ));
        }
        let capacity = self.capacity.next_power_of_two().max(2);
        let bytes = capacity.saturating_mul(self.max_message_size);
        if bytes > MAX_RING_BYTES {
            return bad(format!(
                "capacity {capacity} × max_message_size {} = {bytes} bytes exceeds the \
                 {MAX_RING_BYTES}-byte limit",
                self.max_message_size
            ));
        }
        Ok(layout::Config {
            max_message_size: self.max_message_size,
            capacity,
        })
    }
}

/// What [`MailslotReader::info`] reports (after Windows `GetMailslotInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailslotInfo {
    /// Length of the next message, `None` when none is waiting.
    pub next_message_size: Option<usize>,
    /// Messages waiting (a snapshot; for a mailslot it includes messages being
    /// written, for a group reader it is at most `capacity`).
    pub message_count: u64,
    /// Mailslot: messages writers dropped because it was full (counted in shared
    /// memory since creation). Group reader: messages this reader missed by falling
    /// behind since it joined.
    pub dropped: u64,
}

/// Section options for `root` and `kind`, expecting that kind on open.
fn section_options(root: Option<&Path>, kind: SectionKind) -> SectionOptions {
    let mut o = SectionOptions::default().kind(kind).expect_kind(kind);
    if let Some(r) = root {
        o = o.root(r);
    }
    o
}

/// Object `name` of a section whose kind promised it; a missing one is corruption.
fn object(section: &Section, name: &str) -> Result<Region> {
    section.object(name).map_err(|e| match e {
        culvert_section::Error::ObjectNotFound { name, object } => Error::Corrupted {
            what: format!("section {name} has no '{object}' object"),
        },
        other => other.into(),
    })
}

/// Section data bytes for a control block of `ctl` bytes plus a ring of `ring` bytes.
fn section_size(ctl: usize, ring: usize) -> Result<u64> {
    ctl.checked_add(ring)
        .and_then(|n| n.checked_add(2 * 4096))
        .map(|n| n as u64)
        .ok_or_else(|| Error::InvalidArgument {
            what: "mailslot size overflows".into(),
        })
}

/// Bytes of an MPMC message ring for `cfg` (room for the reader and many writers).
fn slot_ring_config(cfg: layout::Config) -> mpmc::Config {
    mpmc::Config::new(cfg.capacity, cfg.max_message_size).with_max_endpoints(1023)
}

/// The broadcast ring configuration for `cfg`.
fn group_ring_config(cfg: layout::Config) -> bring::Config {
    bring::Config::new(cfg.capacity, cfg.max_message_size)
}

/// Whether `section`'s file is still the one its name points at.
fn still_linked(section: &Section) -> bool {
    section.is_linked()
}

/// Unlinks `section`'s name if it still points at `section`; `true` if we did.
fn unlink_if_same(section: &Section, _name: &str, _sopts: &SectionOptions) -> bool {
    section.unlink_if_linked()
}

/// Unlinks `name` if its header still names the dead `creator` and is not ready (a
/// create that never finished).
fn unlink_unfinished(
    name: &str,
    sopts: &SectionOptions,
    creator: culvert_sync::ProcessIdentity,
) -> bool {
    match Section::inspect(name, sopts) {
        Ok(h)
            if h.creator == creator
                && h.state != culvert_section::InitState::Ready
                && !creator.is_alive() =>
        {
            Section::unlink(name, sopts).is_ok()
        }
        _ => false,
    }
}

/// Removes mailslots whose reader died and broadcast groups with no live reader from
/// the namespace of `opts.root`; returns the names removed. Live ones are untouched.
///
/// `culvert gc` removes a section only when every recorded endpoint is dead; a
/// mailslot whose reader died is useless even while writers live, which this call
/// knows and the generic one does not.
///
/// # Errors
/// `PermissionDenied` or `Io` if the namespace directory cannot be read (a missing
/// one is `Io` with kind `NotFound`); sections that cannot be inspected are skipped.
pub fn gc(opts: &MailslotOptions) -> Result<Vec<String>> {
    let root = opts.root.as_deref();
    let any = section_options(root, SectionKind::Raw);
    let mut removed = Vec::new();
    for name in Section::list(&any)? {
        let Ok(h) = Section::inspect(&name, &any) else {
            continue;
        };
        let gone = match h.kind {
            SectionKind::Mailslot => reader::reclaim_dead(&name, root)?,
            SectionKind::BroadcastGroup => group::remove_if_idle(&name, root)?,
            _ => false,
        };
        if gone {
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let ok = MailslotOptions::new()
            .max_message_size(100)
            .capacity(5)
            .validate()
            .unwrap();
        assert_eq!(ok.capacity, 8);
        assert_eq!(
            MailslotOptions::new()
                .max_message_size(1)
                .capacity(1)
                .validate()
                .unwrap()
                .capacity,
            2
        );
        for bad in [
            MailslotOptions::new().max_message_size(0).capacity(8),
            MailslotOptions::new().max_message_size(8).capacity(0),
            MailslotOptions::new()
                .max_message_size(MAX_MESSAGE_SIZE_LIMIT + 1)
                .capacity(8),
            MailslotOptions::new()
                .max_message_size(8)
                .capacity(MAX_CAPACITY + 1),
            MailslotOptions::new()
                .max_message_size(MAX_MESSAGE_SIZE_LIMIT)
                .capacity(MAX_CAPACITY),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
    }
}
