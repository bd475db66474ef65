//! Broadcast groups: [`join`], [`broadcast`], [`BroadcastSender`].
//!
//! ## Membership protocol
//! A joiner claims an entry of the member table (SeqCst compare-exchange) and *then*
//! loads `closing` (SeqCst). The last reader to leave frees its entry, sets `closing`
//! from 0 to its identity (SeqCst compare-exchange) and *then* scans the table (SeqCst
//! loads); it unlinks the group's name only if no live member is found, and otherwise
//! resets `closing` to 0. In the single total order of SeqCst operations either the
//! joiner's load sees `closing` set (it frees its entry and retries, later creating a
//! fresh group), or the leaver's scan sees the joiner's entry (it keeps the group). So a
//! reader never joins a group that is being unlinked. A remover that dies with
//! `closing` set is detected through its identity: if the name still points at the
//! section, a joiner resets `closing` and goes on.

use std::path::Path;
use std::time::{Duration, Instant};

use culvert_ring::broadcast::{Reader, Ring, Writer};
use culvert_section::{validate_name, Section, SectionOptions};
use culvert_sync::{Deadline, ProcessIdentity};

use super::layout::{
    word_alive, Config, GroupControl, GroupView, GROUP_KIND, GROUP_OBJ, OBJ_GROUP, OBJ_GROUP_RING,
    RING_OBJ,
};
use super::{
    group_ring_config, object, section_options, section_size, still_linked, unlink_if_same,
    unlink_unfinished, MailslotInfo, MailslotOptions,
};
use crate::{Error, Result};

/// Pause before a joiner looks again at a group that is being removed.
const CLOSING_BACKOFF: Duration = Duration::from_micros(200);

/// The work of [`join`](super::join): the member entry, and the group's section made
/// or opened.
pub(crate) fn join_group(group: &str, opts: &MailslotOptions) -> Result<GroupReader> {
    validate_name(group)?;
    let cfg = opts.validate()?;
    let sopts = section_options(opts.root.as_deref(), GROUP_KIND);
    let ring_len = Ring::required_size(&group_ring_config(cfg))?;
    let size = section_size(std::mem::size_of::<GroupControl>(), ring_len)?;
    let deadline = Instant::now() + sopts.open_timeout;
    loop {
        if Instant::now() > deadline {
            return Err(Error::Timeout);
        }
        let (mut section, created) = match Section::open_or_create(group, size, &sopts) {
            Ok(x) => x,
            Err(culvert_section::Error::Stale { creator, .. }) => {
                unlink_unfinished(group, &sopts, creator);
                continue;
            }
            Err(culvert_section::Error::Poisoned { .. }) => {
                // A creator that gave up; it unlinks the name itself unless it died.
                if let Ok(h) = Section::inspect(group, &sopts) {
                    unlink_unfinished(group, &sopts, h.creator);
                }
                std::thread::sleep(CLOSING_BACKOFF);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if created {
            if let Err(e) = build(&mut section, cfg, ring_len) {
                let _ = Section::unlink(group, &sopts);
                return Err(e);
            }
        }
        let view = GroupView::new(object(&section, GROUP_OBJ)?)?;
        let gcfg = view.config()?;
        let index = view.claim_member()?;
        let closing = view.closing();
        if closing != 0 {
            // Being removed: stand back. A remover that died is cleared if the name
            // still points here (it never unlinked), else we retry on the new name.
            view.release_member(index);
            if !word_alive(closing) && still_linked(&section) {
                view.reopen(closing);
            } else {
                std::thread::sleep(CLOSING_BACKOFF);
            }
            continue;
        }
        let attached = object(&section, RING_OBJ).and_then(|r| Ok(Reader::attach(&r)?));
        let reader = match attached {
            Ok(r)
                if r.max_message() == gcfg.max_message_size
                    && r.capacity() == gcfg.capacity as u64 =>
            {
                r
            }
            other => {
                view.release_member(index);
                return Err(match other {
                    Err(e) => e,
                    Ok(_) => Error::Corrupted {
                        what: "broadcast ring does not match its group control block".into(),
                    },
                });
            }
        };
        let g = GroupReader {
            reader: Some(reader),
            view,
            cfg: gcfg,
            index,
            pending_missed: 0,
            pending_empty: false,
            sopts,
            section,
        };
        return Ok(g);
    }
}

/// Lays out a freshly created group section and publishes it.
fn build(section: &mut Section, cfg: Config, ring_len: usize) -> Result<()> {
    let ctl = section.add_object(
        GROUP_OBJ,
        OBJ_GROUP,
        std::mem::size_of::<GroupControl>() as u64,
        128,
    )?;
    let ring = section.add_object(RING_OBJ, OBJ_GROUP_RING, ring_len as u64, 128)?;
    GroupView::new(ctl)?.init(cfg);
    Ring::init(&ring, &group_ring_config(cfg))?;
    section.mark_ready()?;
    Ok(())
}

/// Removes the group if no live reader is in it (see the module doc); `true` if this
/// call unlinked the name.
fn remove_if_empty(
    section: &Section,
    view: &GroupView,
    name: &str,
    sopts: &SectionOptions,
) -> bool {
    if view.any_live_member() || !view.begin_close() {
        return false;
    }
    if view.any_live_member() {
        view.reopen(ProcessIdentity::me().packed());
        return false;
    }
    unlink_if_same(section, name, sopts)
}

/// For [`gc`](super::gc): removes the group `name` if no live reader is in it.
pub(crate) fn remove_if_idle(name: &str, root: Option<&Path>) -> Result<bool> {
    let sopts = section_options(root, GROUP_KIND);
    let section = match Section::open(name, &sopts) {
        Ok(s) => s,
        Err(culvert_section::Error::NotFound { .. }) => return Ok(false),
        Err(culvert_section::Error::Stale { creator, .. }) => {
            return Ok(unlink_unfinished(name, &sopts, creator))
        }
        Err(culvert_section::Error::Poisoned { .. }) => {
            return Ok(match Section::inspect(name, &sopts) {
                Ok(h) => unlink_unfinished(name, &sopts, h.creator),
                Err(_) => false,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let view = GroupView::new(object(&section, GROUP_OBJ)?)?;
    view.config()?;
    let closing = view.closing();
    if closing != 0 {
        if word_alive(closing) || !still_linked(&section) {
            return Ok(false);
        }
        view.reopen(closing);
    }
    Ok(remove_if_empty(&section, &view, name, &sopts))
}

/// The reading side of a broadcast group: one broadcast-ring reader and one member
/// entry.
pub(crate) struct GroupReader {
    /// `None` only while dropping.
    reader: Option<Reader>,
    view: GroupView,
    cfg: Config,
    /// Our member-table entry.
    index: usize,
    /// Messages `info` found missed (by peeking), to report on the next read.
    pending_missed: u64,
    /// `info` peeked a zero-length message (which it could not leave in the ring).
    pending_empty: bool,
    sopts: SectionOptions,
    section: Section,
}

impl GroupReader {
    pub(crate) fn config(&self) -> Config {
        self.cfg
    }

    fn reader(&mut self) -> Result<&mut Reader> {
        self.reader.as_mut().ok_or(Error::Closed)
    }

    /// What `info` held back, if anything.
    fn pending(&mut self) -> Option<Result<usize>> {
        if self.pending_missed > 0 {
            let missed = std::mem::take(&mut self.pending_missed);
            crate::trace::event!(WARN, missed, "broadcast reader overrun");
            return Some(Err(Error::Overrun { missed }));
        }
        if self.pending_empty {
            self.pending_empty = false;
            return Some(Ok(0));
        }
        None
    }

    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if let Some(r) = self.pending() {
            return r;
        }
        Ok(self.reader()?.try_read(buf)?)
    }

    pub(crate) fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize> {
        if let Some(r) = self.pending() {
            return r;
        }
        Ok(self.reader()?.read(buf, deadline)?)
    }

    pub(crate) fn info(&mut self) -> Result<MailslotInfo> {
        let mut next_message_size = None;
        if self.pending_empty {
            next_message_size = Some(0);
        } else {
            // Overruns found while peeking are kept for the next read; a lap of them
            // in a row means writers outrun us — report no size rather than spin.
            for _ in 0..4 {
                match self.reader()?.try_read(&mut []) {
                    Err(culvert_ring::Error::BufferTooSmall { needed, .. }) => {
                        next_message_size = Some(needed);
                        break;
                    }
                    Ok(_) => {
                        self.pending_empty = true;
                        next_message_size = Some(0);
                        break;
                    }
                    Err(culvert_ring::Error::Overrun { missed }) => {
                        self.pending_missed = self.pending_missed.saturating_add(missed);
                    }
                    Err(culvert_ring::Error::WouldBlock) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let capacity = self.cfg.capacity as u64;
        let reader = self.reader()?;
        let lag = reader.lag()?.min(capacity);
        let dropped = reader.missed_total();
        Ok(MailslotInfo {
            next_message_size,
            message_count: lag + u64::from(self.pending_empty),
            dropped,
        })
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        self.reader = None;
        self.view.release_member(self.index);
        let name = self.section.name().to_string();
        remove_if_empty(&self.section, &self.view, &name, &self.sopts);
    }
}

/// A sender to a broadcast group, for many messages ([`broadcast`] opens one per call).
/// Sends never wait for readers.
pub struct BroadcastSender {
    group: String,
    writer: Writer,
    view: GroupView,
    max: usize,
    _section: Section,
}

impl std::fmt::Debug for BroadcastSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastSender")
            .field("group", &self.group)
            .field("max_message_size", &self.max)
            .finish_non_exhaustive()
    }
}

impl BroadcastSender {
    /// Opens a sender to `group` in the default namespace.
    ///
    /// Errors: `InvalidName`; `NotFound` when nobody has joined the group (or every
    /// reader left); `Section(WrongKind)` for a section of another kind; `Busy` when
    /// the ring's writer table is full; `Corrupted`.
    pub fn open(group: &str) -> Result<Self> {
        Self::open_with(group, &MailslotOptions::default())
    }

    /// [`BroadcastSender::open`] in the namespace of `opts.root` (other fields unused).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(group: &str, opts: &MailslotOptions) -> Result<Self> {
        if let Some(remote) = crate::remote::parse(group)? {
            // `//host/group` or `//*/group`: the bridge makes a local proxy group.
            let request = crate::remote::Request {
                kind: crate::remote::ObjectKind::Group,
                host: remote.host.to_string(),
                name: remote.name.to_string(),
                timeout: None,
                payload: Vec::new(),
            };
            let deadline = Deadline::after(Duration::from_secs(10));
            let proxy = crate::remote::redirect(&request, group, opts.root.as_deref(), deadline)?;
            return Self::open_with(&proxy, opts);
        }
        validate_name(group)?;
        let sopts = section_options(opts.root.as_deref(), GROUP_KIND);
        let not_found = || Error::NotFound {
            name: group.to_string(),
        };
        let section = match Section::open(group, &sopts) {
            Ok(s) => s,
            Err(culvert_section::Error::Stale { .. } | culvert_section::Error::Poisoned { .. }) => {
                return Err(not_found())
            }
            Err(e) => return Err(e.into()),
        };
        let view = GroupView::new(object(&section, GROUP_OBJ)?)?;
        let cfg = view.config()?;
        if view.closing() != 0 {
            return Err(not_found());
        }
        let writer = Writer::attach(&object(&section, RING_OBJ)?)?;
        if writer.max_message() != cfg.max_message_size || writer.capacity() != cfg.capacity as u64
        {
            return Err(Error::Corrupted {
                what: "broadcast ring does not match its group control block".into(),
            });
        }
        Ok(Self {
            group: group.to_string(),
            writer,
            view,
            max: cfg.max_message_size,
            _section: section,
        })
    }

    /// Delivers `msg` to every reader of the group, never waiting: a reader that is a
    /// whole ring behind loses its oldest message and is told so.
    ///
    /// `MessageTooLarge` (nothing sent); `Closed` when the group was removed after the
    /// last reader left (open a new sender: a new group may exist by now).
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        if self.view.closing() != 0 {
            return Err(Error::Closed);
        }
        Ok(self.writer.write(msg)?)
    }

    /// Member-table entries in use: the readers of the group (a reader that died
    /// stays counted until its entry is reused).
    pub fn readers(&self) -> usize {
        self.view.member_words()
    }

    /// Largest message the group carries.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }
}

/// Delivers `msg` to every current reader of the broadcast group `group` (default
/// namespace). `NotFound` when nobody has joined; see [`BroadcastSender::send`].
pub fn broadcast(group: &str, msg: &[u8]) -> Result<()> {
    broadcast_with(group, msg, &MailslotOptions::default())
}

/// [`broadcast`] in the namespace of `opts.root`.
///
/// # Errors
/// As [`broadcast`]: `NotFound`, `InvalidName`, `MessageTooLarge` (nothing sent),
/// `Corrupted`.
pub fn broadcast_with(group: &str, msg: &[u8], opts: &MailslotOptions) -> Result<()> {
    BroadcastSender::open_with(group, opts)?.send(msg)
}

impl GroupReader {
    /// Never waits: a message, a lost-message count or a held-back empty message is
    /// waiting (see the `Waitable` impl of the mailslot reader).
    pub(crate) fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        use culvert_sync::Waitable;
        self.pending_missed > 0
            || self.pending_empty
            || self.reader.as_mut().is_none_or(|r| r.poll_ready(ctx))
    }

    /// The broadcast ring's notifier.
    pub(crate) fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        use culvert_sync::Waitable;
        if let Some(r) = &self.reader {
            r.notifiers(f);
        }
    }
}
