//! Shared-memory layout of mailslot and broadcast-group sections.
//!
//! A **mailslot** section (kind [`SectionKind::Mailslot`]) holds two objects:
//!
//! ```text
//! "mailslot"  MailslotControl  (256 bytes: config line, counters line)
//! "ring"      mpmc::MessageRing, `capacity` slots of `max_message_size` bytes
//! ```
//!
//! A **broadcast group** section (kind [`SectionKind::BroadcastGroup`]) holds:
//!
//! ```text
//! "group"     GroupControl     (config line, closing line, member table)
//! "ring"      broadcast::Ring, `capacity` slots of `max_message_size` bytes
//! ```
//!
//! Both control blocks are `#[repr(C, align(128))]` and made of atomics only. Their
//! configuration words are written by the creator before the section is marked ready,
//! and copied out and validated by every opener ([`MailslotView::config`],
//! [`GroupView::config`]); they are never re-read. The other words are counters and
//! identities that peers write; they are treated as untrusted hints.

use culvert_section::{Region, SectionKind, SharedStruct, View};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};
use culvert_sync::owner::{my_owner_id, Holder, OwnerTable, OwnerWord};
use culvert_sync::ProcessIdentity;

use crate::{Error, Result};

/// Magic word of a [`MailslotControl`]: "CLVMSLT" + version byte.
pub(crate) const MAILSLOT_MAGIC: u64 = u64::from_le_bytes(*b"CLVMSLT\x01");
/// Magic word of a [`GroupControl`]: "CLVMGRP" + version byte.
pub(crate) const GROUP_MAGIC: u64 = u64::from_le_bytes(*b"CLVMGRP\x01");
/// Layout version of both control blocks.
pub(crate) const VERSION: u32 = 1;

/// Object-table kind of a mailslot control block.
pub(crate) const OBJ_MAILSLOT: u32 = 0x4d53_0001;
/// Object-table kind of a group control block.
pub(crate) const OBJ_GROUP: u32 = 0x4d53_0002;
/// Object-table kind of the MPMC ring of a mailslot.
pub(crate) const OBJ_SLOT_RING: u32 = 0x4d53_0003;
/// Object-table kind of the broadcast ring of a group.
pub(crate) const OBJ_GROUP_RING: u32 = 0x4d53_0004;

/// Name of the mailslot control object.
pub(crate) const MAILSLOT_OBJ: &str = "mailslot";
/// Name of the group control object.
pub(crate) const GROUP_OBJ: &str = "group";
/// Name of the ring object (both kinds).
pub(crate) const RING_OBJ: &str = "ring";

/// Largest `max_message_size` accepted (the rings' own limit is 1 GiB).
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 64 << 20;
/// Largest `capacity` accepted (messages; the rings' own limit).
pub const MAX_CAPACITY: usize = 1 << 24;
/// Largest ring (bytes) a mailslot or group may ask for.
pub const MAX_RING_BYTES: usize = 1 << 32;
/// Readers a broadcast group can hold at once.
pub const MAX_GROUP_MEMBERS: usize = 240;

/// The configuration line shared by both control blocks.
#[repr(C)]
pub(crate) struct ConfigLine {
    /// [`MAILSLOT_MAGIC`] or [`GROUP_MAGIC`], written last by the creator.
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// Reserved, zero.
    pub flags: AtomicU32,
    /// Largest message. Invariant: `1..=MAX_MESSAGE_SIZE_LIMIT`, equal to the ring's.
    pub max_message_size: AtomicU64,
    /// Ring slots. Invariant: a power of two in `2..=MAX_CAPACITY`, equal to the ring's.
    pub capacity: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 12],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ConfigLine>() == 128);

/// The control block of a mailslot (object `mailslot`).
#[repr(C, align(128))]
pub(crate) struct MailslotControl {
    /// Configuration, written once by the reader (the creator).
    pub config: ConfigLine,
    /// Messages writers dropped because the ring was full. Only grows (honest peers);
    /// any value is reported as found, it is never used as a size.
    pub dropped: AtomicU64,
    /// Packed [`ProcessIdentity`] of a process reclaiming this mailslot after its
    /// reader died (0: nobody). Claimed by compare-exchange from 0 or from a dead
    /// reclaimer; only the holder unlinks the name.
    pub reclaimer: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 14],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<MailslotControl>() == 256);

/// The control block of a broadcast group (object `group`).
#[repr(C, align(128))]
pub(crate) struct GroupControl {
    /// Configuration, written once by the creator (the first reader to join).
    pub config: ConfigLine,
    /// Packed [`ProcessIdentity`] of the process deciding to remove the group (0: the
    /// group is open). Set by compare-exchange from 0 by the last reader to leave (or
    /// by `gc`); reset to 0 if a live member turns up, and never reset once the name
    /// is unlinked. A joiner that finds it set stands back and retries.
    pub closing: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 15],
    /// One entry per joined reader: its packed [`ProcessIdentity`], 0 when free. A
    /// reader claims an entry by compare-exchange from 0 or from a dead holder, and
    /// frees it when it leaves.
    pub members: [AtomicU64; MAX_GROUP_MEMBERS],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<GroupControl>() == 256 + MAX_GROUP_MEMBERS * 8);

/// Validated configuration copied out of a control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    pub max_message_size: usize,
    pub capacity: usize,
}

fn write_config(line: &ConfigLine, magic: u64, cfg: Config) {
    line.version.store(VERSION, Ordering::Relaxed);
    line.flags.store(0, Ordering::Relaxed);
    line.max_message_size
        .store(cfg.max_message_size as u64, Ordering::Relaxed);
    line.capacity.store(cfg.capacity as u64, Ordering::Relaxed);
    line.magic.store(magic, Ordering::Release);
}

fn read_config(line: &ConfigLine, magic: u64, what: &str) -> Result<Config> {
    let bad = |why: &str| Error::Corrupted {
        what: format!("{what} control block: {why}"),
    };
    if line.magic.load(Ordering::Acquire) != magic {
        return Err(bad("wrong magic"));
    }
    if line.version.load(Ordering::Relaxed) != VERSION {
        return Err(bad("unsupported version"));
    }
    let max = line.max_message_size.load(Ordering::Relaxed);
    if max == 0 || max > MAX_MESSAGE_SIZE_LIMIT as u64 {
        return Err(bad("max_message_size out of range"));
    }
    let cap = line.capacity.load(Ordering::Relaxed);
    if !cap.is_power_of_two() || !(2..=MAX_CAPACITY as u64).contains(&cap) {
        return Err(bad("capacity out of range"));
    }
    Ok(Config {
        max_message_size: max as usize,
        capacity: cap as usize,
    })
}

/// A view of the `T` at the start of `region`, or `Corrupted` naming `what`.
fn checked_view<T: SharedStruct>(region: Region, what: &str) -> Result<View<T>> {
    View::new(region).ok_or_else(|| Error::Corrupted {
        what: format!("{what} control object too small or misaligned"),
    })
}

// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for ConfigLine {}
// SAFETY: `repr(C)`, atomics and a `ConfigLine` only.
unsafe impl SharedStruct for MailslotControl {}
// SAFETY: `repr(C)`, atomics and a `ConfigLine` only.
unsafe impl SharedStruct for GroupControl {}

/// Whether a member or owner word names a live process (0: nobody).
pub(crate) fn word_alive(word: u64) -> bool {
    culvert_sync::holder_of(word) == culvert_sync::Holder::Alive
}

/// Checked access to a [`MailslotControl`].
#[derive(Clone)]
pub(crate) struct MailslotView {
    view: View<MailslotControl>,
}

impl MailslotView {
    pub(crate) fn new(region: Region) -> Result<Self> {
        Ok(Self {
            view: checked_view(region, "mailslot")?,
        })
    }

    pub(crate) fn get(&self) -> &MailslotControl {
        self.view.get()
    }

    /// Writes the configuration (creator, before `mark_ready`).
    pub(crate) fn init(&self, cfg: Config) {
        let c = self.get();
        c.dropped.store(0, Ordering::Relaxed);
        c.reclaimer.store(0, Ordering::Relaxed);
        write_config(&c.config, MAILSLOT_MAGIC, cfg);
    }

    pub(crate) fn config(&self) -> Result<Config> {
        read_config(&self.get().config, MAILSLOT_MAGIC, "mailslot")
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.get().dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn count_drop(&self) {
        self.get().dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` messages lost before they reached the ring (see
    /// [`MailslotWriter::report_lost`](super::MailslotWriter::report_lost)).
    pub(crate) fn count_drops(&self, n: u64) {
        self.get().dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Claims the right to remove this (dead) mailslot: from nobody, or from a dead
    /// reclaimer. `false` when a live process holds it.
    pub(crate) fn claim_reclaim(&self) -> bool {
        OwnerWord::from_atomic(&self.get().reclaimer)
            .claim(my_owner_id())
            .is_ok()
    }
}

/// Checked access to a [`GroupControl`].
#[derive(Clone)]
pub(crate) struct GroupView {
    view: View<GroupControl>,
}

impl GroupView {
    pub(crate) fn new(region: Region) -> Result<Self> {
        Ok(Self {
            view: checked_view(region, "broadcast group")?,
        })
    }

    pub(crate) fn get(&self) -> &GroupControl {
        self.view.get()
    }

    /// Writes the configuration (creator, before `mark_ready`).
    pub(crate) fn init(&self, cfg: Config) {
        let c = self.get();
        c.closing.store(0, Ordering::Relaxed);
        for m in &c.members {
            m.store(0, Ordering::Relaxed);
        }
        write_config(&c.config, GROUP_MAGIC, cfg);
    }

    pub(crate) fn config(&self) -> Result<Config> {
        read_config(&self.get().config, GROUP_MAGIC, "broadcast group")
    }

    /// The `closing` word (SeqCst: pairs with the member-table accesses).
    pub(crate) fn closing(&self) -> u64 {
        self.get().closing.load(Ordering::SeqCst)
    }

    /// Claims a free member entry (or one held by a dead process) for this process.
    /// Returns its index; `Busy` when every entry is held by a live reader.
    pub(crate) fn claim_member(&self) -> Result<usize> {
        if let Some((i, _)) = self.members().claim_any(my_owner_id()) {
            return Ok(i);
        }
        Err(Error::Busy {
            reason: crate::BusyReason::GroupFull {
                max_members: MAX_GROUP_MEMBERS,
            },
        })
    }

    /// Frees member entry `index` if it still holds our identity.
    pub(crate) fn release_member(&self, index: usize) {
        if let Some(entry) = self.members().get(index) {
            entry.release(my_owner_id());
        }
    }

    /// The member table, as owner words (every access SeqCst).
    fn members(&self) -> OwnerTable<'_> {
        OwnerTable::new(OwnerWord::from_atomics(&self.get().members))
    }

    /// Entries naming a process (live or not): a cheap count, no liveness checks.
    pub(crate) fn member_words(&self) -> usize {
        self.get()
            .members
            .iter()
            .filter(|m| m.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Whether any entry names a live process (SeqCst loads).
    pub(crate) fn any_live_member(&self) -> bool {
        OwnerWord::from_atomics(&self.get().members)
            .iter()
            .any(|m| m.holder() == Holder::Alive)
    }

    /// Tries to become the remover: `closing` 0 → us.
    pub(crate) fn begin_close(&self) -> bool {
        let me = ProcessIdentity::me().packed();
        self.get()
            .closing
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives up removing (a live member turned up), or clears a dead remover's word.
    pub(crate) fn reopen(&self, from: u64) -> bool {
        self.get()
            .closing
            .compare_exchange(from, 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }
}

/// The section kind a mailslot name must have.
pub(crate) const MAILSLOT_KIND: SectionKind = SectionKind::Mailslot;
/// The section kind a group name must have.
pub(crate) const GROUP_KIND: SectionKind = SectionKind::BroadcastGroup;
