//! [`MailslotReader`]: the reader of a mailslot, or of a broadcast group.

use std::path::Path;
use std::time::Duration;

use culvert_ring::mpmc::{MessageReader, MessageRing};
use culvert_section::{InitState, Section, SectionOptions};
use culvert_sync::{Deadline, Liveness};

use super::group::{join_group, GroupReader};
use super::layout::{
    Config, MailslotControl, MailslotView, MAILSLOT_KIND, MAILSLOT_OBJ, OBJ_MAILSLOT,
    OBJ_SLOT_RING, RING_OBJ,
};
use super::{
    object, section_options, section_size, slot_ring_config, unlink_if_same, unlink_unfinished,
    MailslotInfo, MailslotOptions,
};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

/// Joins the broadcast group `group` as a new reader, creating the group if nobody has
/// joined yet (its ring is then sized by `opts`; later joiners' sizes are ignored —
/// see [`MailslotReader::max_message_size`]). The reader sees messages broadcast from now on.
///
/// Errors: `InvalidName`; `InvalidArgument` for bad sizes; `Section(WrongKind)` when the
/// name holds another kind of section; `Busy` when the group has
/// [`MAX_GROUP_MEMBERS`](super::MAX_GROUP_MEMBERS) live readers; `Timeout` if the group
/// stays in the middle of being removed for the open timeout (5 s).
pub fn join(group: &str, opts: &MailslotOptions) -> Result<MailslotReader> {
    let reader = join_group(group, opts)?;
    Ok(MailslotReader::from_group(group, opts.read_timeout, reader))
}

/// The reader of a mailslot ([`MailslotReader::create`]) or of a broadcast group
/// ([`join`](super::join)).
///
/// Dropping it closes the mailslot (writers then get `Closed`, new writers `NotFound`)
/// and removes its section; a group reader leaves the group (the last one out removes
/// the group's section).
pub struct MailslotReader {
    name: String,
    read_timeout: Option<Duration>,
    inner: Inner,
}

pub(crate) enum Inner {
    Slot(SlotReader),
    Group(GroupReader),
}

impl std::fmt::Debug for MailslotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailslotReader")
            .field("name", &self.name)
            .field("broadcast", &self.is_broadcast())
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl MailslotReader {
    pub(crate) fn from_group(name: &str, read_timeout: Option<Duration>, g: GroupReader) -> Self {
        Self {
            name: name.to_string(),
            read_timeout,
            inner: Inner::Group(g),
        }
    }

    /// Creates the mailslot `name` and returns its one reader.
    ///
    /// Errors: `InvalidName`; `InvalidArgument` for a zero or absurd
    /// `max_message_size`/`capacity`; `AlreadyExists` when a live reader holds the
    /// name, or the name holds another kind of section. A mailslot whose reader died
    /// is reclaimed: its section is unlinked and created anew.
    pub fn create(name: &str, opts: &MailslotOptions) -> Result<Self> {
        culvert_section::validate_name(name)?;
        let cfg = opts.validate()?;
        let root = opts.root.as_deref();
        let sopts = section_options(root, MAILSLOT_KIND);
        let ring_cfg = slot_ring_config(cfg);
        let ring_len = MessageRing::required_size(&ring_cfg)?;
        let size = section_size(std::mem::size_of::<MailslotControl>(), ring_len)?;
        // A dead reader's mailslot is replaced; its reclaimer word makes joiners
        // stand back (a corrupted control block leaves nothing to coordinate on).
        let section = Section::create_replacing_stale(name, size, &sopts, |old| {
            !old.header().creator.is_alive()
                && object(old, MAILSLOT_OBJ)
                    .and_then(MailslotView::new)
                    .map_or(true, |view| view.claim_reclaim())
        })?;
        match SlotReader::build(section, cfg, ring_len, &sopts) {
            Ok(r) => Ok(Self {
                name: name.to_string(),
                read_timeout: opts.read_timeout,
                inner: Inner::Slot(r),
            }),
            Err(e) => {
                let _ = Section::unlink(name, &sopts);
                Err(e)
            }
        }
    }

    /// Reads the next message into `buf` and returns its length, waiting as the read
    /// timeout says: `Timeout` when it passes (at once for `Some(0)`).
    ///
    /// `BufferTooSmall` when `buf` cannot hold the next message (which stays queued).
    /// A broadcast reader that fell behind gets `Overrun { missed }` once, before the
    /// oldest message it can still read. `Closed` if a peer closed the ring.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self.read_timeout {
            Some(t) if t.is_zero() => match self.try_read(buf) {
                Err(Error::WouldBlock) => Err(Error::Timeout),
                other => other,
            },
            t => {
                let deadline = Deadline::from_timeout(t);
                match &mut self.inner {
                    Inner::Slot(s) => s.read(buf, deadline),
                    Inner::Group(g) => g.read(buf, deadline),
                }
            }
        }
    }

    /// Reads the next message if one is waiting; `WouldBlock` otherwise. Errors as for
    /// [`read`](Self::read).
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match &mut self.inner {
            Inner::Slot(s) => s.try_read(buf),
            Inner::Group(g) => g.try_read(buf),
        }
    }

    /// [`read`](Self::read) as a future: waits for a message without blocking the
    /// thread (the read timeout does not apply; wrap the future in the runtime's own
    /// timeout). Cancel-safe: a message is taken only by the poll that returns it.
    ///
    /// # Errors
    /// As [`read`](Self::read), without `Timeout`.
    pub async fn read_async(&mut self, buf: &mut [u8]) -> Result<usize> {
        crate::asyncio::until_ready(
            self,
            |m| m.try_read(buf),
            |m, f| culvert_sync::Waitable::notifiers(m, f),
        )
        .await
    }

    /// The next message's size, the number of messages waiting, and the drop count.
    ///
    /// # Errors
    /// `Corrupted` if a writer broke the ring's invariants.
    pub fn info(&mut self) -> Result<MailslotInfo> {
        match &mut self.inner {
            Inner::Slot(s) => s.info(),
            Inner::Group(g) => g.info(),
        }
    }

    /// Sets how long [`read`](Self::read) waits (`None`: for ever, `Some(0)`: never).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The mailslot's (or group's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this reader belongs to a broadcast group.
    pub fn is_broadcast(&self) -> bool {
        matches!(self.inner, Inner::Group(_))
    }

    /// Largest message (for a group: the size chosen by its first reader).
    pub fn max_message_size(&self) -> usize {
        match &self.inner {
            Inner::Slot(s) => s.cfg.max_message_size,
            Inner::Group(g) => g.config().max_message_size,
        }
    }

    /// Messages the mailslot (or the group ring) holds (a power of two).
    pub fn capacity(&self) -> usize {
        match &self.inner {
            Inner::Slot(s) => s.cfg.capacity,
            Inner::Group(g) => g.config().capacity,
        }
    }

    /// Closes the mailslot now (what dropping it does).
    pub fn close(self) {}
}

/// The reading side of a mailslot section.
pub(crate) struct SlotReader {
    consumer: MessageReader,
    view: MailslotView,
    cfg: Config,
    /// `info` peeked a zero-length message (which an empty buffer cannot leave in the
    /// ring): the next read returns it.
    pending_empty: bool,
    sopts: SectionOptions,
    section: Section,
}

impl SlotReader {
    /// Lays out a freshly created section and publishes it.
    fn build(
        mut section: Section,
        cfg: Config,
        ring_len: usize,
        sopts: &SectionOptions,
    ) -> Result<Self> {
        let ctl = section.add_object(
            MAILSLOT_OBJ,
            OBJ_MAILSLOT,
            std::mem::size_of::<MailslotControl>() as u64,
            128,
        )?;
        let ring = section.add_object(RING_OBJ, OBJ_SLOT_RING, ring_len as u64, 128)?;
        let view = MailslotView::new(ctl)?;
        view.init(cfg);
        MessageRing::init(&ring, &slot_ring_config(cfg))?;
        let consumer = MessageReader::attach(&ring)?;
        section.mark_ready()?;
        Ok(Self {
            consumer,
            view,
            cfg,
            pending_empty: false,
            sopts: sopts.clone(),
            section,
        })
    }

    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.pending_empty {
            self.pending_empty = false;
            return Ok(0);
        }
        Ok(self.consumer.try_read(buf)?)
    }

    fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        if self.pending_empty {
            self.pending_empty = false;
            return Ok(0);
        }
        Ok(self.consumer.read(buf, deadline)?)
    }

    fn info(&mut self) -> Result<MailslotInfo> {
        let next_message_size = if self.pending_empty {
            Some(0)
        } else {
            // An empty buffer leaves a non-empty message in place (BufferTooSmall) and
            // takes an empty one, which we then hold back for the next read.
            match self.consumer.try_read(&mut []) {
                Err(culvert_ring::Error::BufferTooSmall { needed, .. }) => Some(needed),
                Ok(_) => {
                    self.pending_empty = true;
                    Some(0)
                }
                Err(culvert_ring::Error::WouldBlock | culvert_ring::Error::Closed) => None,
                Err(e) => return Err(e.into()),
            }
        };
        // Only this reader moves `dequeue_pos`, and it cannot move while we hold
        // `&mut self`, so `enqueue_pos - dequeue_pos` lies in `0..=capacity`.
        let stats = self.consumer.stats();
        let queued = stats.enqueue_pos.wrapping_sub(stats.dequeue_pos);
        if stats.enqueue_pos < stats.dequeue_pos || queued > self.cfg.capacity as u64 {
            return Err(Error::Corrupted {
                what: "mailslot ring positions out of range".into(),
            });
        }
        Ok(MailslotInfo {
            next_message_size,
            message_count: queued + u64::from(self.pending_empty),
            dropped: self.view.dropped(),
        })
    }
}

impl Drop for SlotReader {
    fn drop(&mut self) {
        self.consumer.close();
        let name = self.section.name().to_string();
        let _ = unlink_if_same(&self.section, &name, &self.sopts);
    }
}

/// Removes the mailslot `name` if its reader is dead; `true` if this call removed it.
/// Only one of several concurrent callers wins (the `reclaimer` word).
pub(crate) fn reclaim_dead(name: &str, root: Option<&Path>) -> Result<bool> {
    let sopts = section_options(root, MAILSLOT_KIND);
    let h = match Section::inspect(name, &sopts) {
        Ok(h) => h,
        Err(culvert_section::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if h.kind != MAILSLOT_KIND || h.creator.liveness() == Liveness::Alive {
        return Ok(false);
    }
    if h.state != InitState::Ready {
        // A create that never finished (or a poisoned one): nobody ever attached.
        return Ok(unlink_unfinished(name, &sopts, h.creator));
    }
    let section = match Section::open(name, &sopts) {
        Ok(s) => s,
        Err(culvert_section::Error::NotFound { .. }) => return Ok(false),
        Err(culvert_section::Error::Stale { .. } | culvert_section::Error::Poisoned { .. }) => {
            return Ok(unlink_unfinished(name, &sopts, h.creator))
        }
        Err(e) => return Err(e.into()),
    };
    if section.header().creator != h.creator {
        return Ok(false);
    }
    // A dead reader's corrupted control block leaves nothing to coordinate on.
    if let Ok(view) = object(&section, MAILSLOT_OBJ).and_then(MailslotView::new) {
        if !view.claim_reclaim() {
            return Ok(false);
        }
    }
    Ok(unlink_if_same(&section, name, &sopts))
}

// SAFETY: the notifiers live in the mailslot's (or group's) mapped section, not in the
// reader value.
unsafe impl culvert_sync::Waitable for MailslotReader {
    /// True when a message (or a count of lost ones) is waiting to be read, or the
    /// ring broke.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        match &mut self.inner {
            Inner::Slot(s) => s.pending_empty || s.consumer.poll_ready(ctx),
            Inner::Group(g) => g.poll_ready(ctx),
        }
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        match &self.inner {
            Inner::Slot(s) => s.consumer.notifiers(f),
            Inner::Group(g) => g.notifiers(f),
        }
    }
}
