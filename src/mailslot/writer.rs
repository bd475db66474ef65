//! [`MailslotWriter`]: one of any number of writers to a mailslot.

use std::time::Instant;

use culvert_ring::mpmc::MessageWriter;
use culvert_section::{validate_name, Section};
use culvert_sync::{Liveness, ProcessIdentity, LIVENESS_RECHECK_INTERVAL};

use super::layout::{MailslotView, MAILSLOT_KIND, MAILSLOT_OBJ, RING_OBJ};
use super::{object, section_options, MailslotOptions};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

/// A writer to a mailslot. Writes never block: a message is delivered whole or
/// dropped — and then counted, and reported as [`Error::Full`].
///
/// Open as many as needed, in any processes (each holds one entry of the ring's
/// participant table, freed on drop or reclaimed after the process dies).
pub struct MailslotWriter {
    name: String,
    producer: MessageWriter,
    view: MailslotView,
    /// The reader (the section's creator).
    reader: ProcessIdentity,
    /// `max_message_size` of the mailslot (validated, equal to the ring's).
    max: usize,
    /// When to check next that the reader lives.
    next_liveness: Instant,
    /// Keeps the mapping alive (the regions do too; this keeps the header).
    _section: Section,
}

impl std::fmt::Debug for MailslotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailslotWriter")
            .field("name", &self.name)
            .field("max_message_size", &self.max)
            .field("reader_pid", &self.reader.pid)
            .finish_non_exhaustive()
    }
}

impl MailslotWriter {
    /// Opens a writer to the mailslot `name` in the default namespace (`$CULVERT_ROOT`,
    /// else `/dev/shm`).
    ///
    /// Errors: `InvalidName`; `NotFound` when no mailslot of that name has a live
    /// reader (never created, closed, or its reader died); `Section(WrongKind)` when
    /// the name holds another kind of section; `Busy` when 1022 writers are attached;
    /// `Corrupted` when its shared memory is not a valid mailslot.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &MailslotOptions::default())
    }

    /// [`MailslotWriter::open`] in the namespace of `opts.root` (the other fields are
    /// the reader's business and are ignored).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(name: &str, opts: &MailslotOptions) -> Result<Self> {
        if let Some(remote) = crate::remote::parse(name)? {
            // `//host/name` or `//*/name`: the bridge makes a local proxy mailslot.
            let request = crate::remote::Request {
                kind: crate::remote::ObjectKind::Mailslot,
                host: remote.host.to_string(),
                name: remote.name.to_string(),
                timeout: None,
                payload: Vec::new(),
            };
            let deadline = culvert_sync::Deadline::after(std::time::Duration::from_secs(10));
            let proxy = crate::remote::redirect(&request, name, opts.root.as_deref(), deadline)?;
            return Self::open_with(&proxy, opts);
        }
        validate_name(name)?;
        let sopts = section_options(opts.root.as_deref(), MAILSLOT_KIND);
        let not_found = || Error::NotFound {
            name: name.to_string(),
        };
        let section = match Section::open(name, &sopts) {
            Ok(s) => s,
            // A reader that died while creating it, or gave up: nobody reads.
            Err(culvert_section::Error::Stale { .. } | culvert_section::Error::Poisoned { .. }) => {
                return Err(not_found())
            }
            Err(e) => return Err(e.into()),
        };
        let reader = section.header().creator;
        if reader.liveness() == Liveness::Dead {
            return Err(not_found());
        }
        let view = MailslotView::new(object(&section, MAILSLOT_OBJ)?)?;
        let cfg = view.config()?;
        let producer = MessageWriter::attach(&object(&section, RING_OBJ)?)?;
        if producer.max_message() != cfg.max_message_size || producer.slots() != cfg.capacity {
            return Err(Error::Corrupted {
                what: "mailslot ring does not match its control block".into(),
            });
        }
        if producer.is_closed() {
            return Err(not_found());
        }
        Ok(Self {
            name: name.to_string(),
            producer,
            view,
            reader,
            max: cfg.max_message_size,
            next_liveness: Instant::now() + LIVENESS_RECHECK_INTERVAL,
            _section: section,
        })
    }

    /// Sends `msg` without ever waiting.
    ///
    /// * `Ok(())`: the whole message is in the mailslot;
    /// * `Full`: the mailslot was full; the message was dropped and counted in the
    ///   reader's [`MailslotInfo::dropped`](super::MailslotInfo::dropped);
    /// * `MessageTooLarge`: longer than `max_message_size`; nothing was sent;
    /// * `Closed`: the reader closed the mailslot; `PeerDied`: the reader died (checked
    ///   at most every `LIVENESS_RECHECK_INTERVAL`).
    pub fn write(&mut self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        let now = Instant::now();
        if now >= self.next_liveness {
            self.next_liveness = now + LIVENESS_RECHECK_INTERVAL;
            if self.reader.liveness() == Liveness::Dead {
                return Err(Error::PeerDied);
            }
        }
        match self.producer.try_write(msg) {
            Ok(()) => Ok(()),
            Err(culvert_ring::Error::WouldBlock) => {
                self.view.count_drop();
                crate::trace::event!(INFO, mailslot = %self.name, len = msg.len(), "mailslot full: message dropped");
                Err(Error::Full)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts `n` messages that were lost on their way to this mailslot before they
    /// reached it (a bridge relaying from another host reports the gaps it sees in a
    /// remote writer's sequence numbers), in the same counter as the drops of a full
    /// mailslot: the reader's [`MailslotInfo::dropped`](super::MailslotInfo::dropped).
    pub fn report_lost(&self, n: u64) {
        if n > 0 {
            self.view.count_drops(n);
            crate::trace::event!(INFO, mailslot = %self.name, lost = n, "messages lost before the mailslot");
        }
    }

    /// The mailslot's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Largest message accepted.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// Pid of the reader.
    pub fn reader_pid(&self) -> u32 {
        self.reader.pid
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MailslotOptions, MailslotReader};
    use super::MailslotWriter;

    #[test]
    fn report_lost_adds_to_the_readers_drop_count() {
        let dir = tempfile::tempdir().unwrap();
        let opts = MailslotOptions::default().capacity(2).root(dir.path());
        let mut reader = MailslotReader::create("lost", &opts).unwrap();
        let mut w = MailslotWriter::open_with("lost", &opts).unwrap();
        w.report_lost(0);
        assert_eq!(reader.info().unwrap().dropped, 0);
        w.report_lost(5);
        // A full mailslot's drops go to the same counter.
        for _ in 0..3 {
            let _ = w.write(b"m");
        }
        assert_eq!(reader.info().unwrap().dropped, 6);
    }
}
