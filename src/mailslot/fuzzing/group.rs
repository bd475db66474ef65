//! The broadcast-group half of the `mailslot_hostile` script: readers joining,
//! reading, asking `info` and leaving; senders opening, sending and closing; and the
//! model of what each member must read or count missed (see the parent module).

use super::*;

impl Run {
    pub(super) fn join(&mut self) {
        let got = timed("join", || join(&self.group, &self.opts));
        assert!(self.scribbled || got.is_ok(), "join gave {got:?}");
        // `NotFound` is never a join's answer: it creates a group that is not there.
        let joining = |e: &Error| opening_error(e) && !matches!(e, Error::NotFound { .. });
        assert!(typed(&got, joining), "join gave {got:?}");
        if let Ok(reader) = got {
            assert!(
                self.scribbled
                    || (reader.capacity() == self.cap && reader.max_message_size() == self.max)
            );
            if self.members.len() >= MAX_MEMBERS {
                self.leave(0);
            }
            self.members.push(Member {
                reader,
                queue: VecDeque::new(),
                pending_missed: 0,
                held: false,
                sent: 0,
                delivered: 0,
                missed: 0,
            });
        }
    }

    pub(super) fn leave(&mut self, sel: u8) {
        if self.members.is_empty() {
            return;
        }
        let m = self.members.remove(usize::from(sel) % self.members.len());
        if !self.scribbled {
            Self::check_member_accounting(&m);
        }
        timed("leave", || drop(m));
        if self.members.is_empty() {
            self.group_gen += 1;
        }
    }

    pub(super) fn check_member_accounting(m: &Member) {
        assert_eq!(
            m.sent,
            m.delivered + m.missed + m.queue.len() as u64,
            "group accounting"
        );
    }

    pub(super) fn open_sender(&mut self, how: u8, len: u8) {
        if how % 4 == 3 {
            let len = usize::from(len) % (self.max + 2);
            let msg = pattern(self.tag(), len);
            let got = timed("broadcast", || {
                broadcast_with(&self.group, &msg, &self.opts)
            });
            self.sent(&msg, got, len, !self.members.is_empty(), true);
            return;
        }
        let got = timed("open sender", || {
            BroadcastSender::open_with(&self.group, &self.opts)
        });
        if !self.scribbled {
            assert_eq!(
                got.is_ok(),
                !self.members.is_empty(),
                "open sender gave {got:?}"
            );
        }
        assert!(typed(&got, opening_error), "open sender gave {got:?}");
        if let Ok(s) = got {
            assert!(
                self.scribbled
                    || (s.max_message_size() == self.max && s.readers() == self.members.len())
            );
            if self.senders.len() >= MAX_SENDERS {
                self.senders.remove(0);
            }
            self.senders.push((s, self.group_gen));
        }
    }

    pub(super) fn send(&mut self, sel: u8, len: u8) {
        if self.senders.is_empty() {
            return;
        }
        let i = usize::from(sel) % self.senders.len();
        let len = usize::from(len) % (self.max + 2);
        let msg = pattern(self.tag(), len);
        let (s, gen) = &mut self.senders[i];
        let live = *gen == self.group_gen && !self.members.is_empty();
        let got = timed("send", || s.send(&msg));
        self.sent(&msg, got, len, live, false);
    }

    /// Checks a send (`oneshot`: `broadcast_with`, which opens the group first) and
    /// delivers it to the model's members.
    pub(super) fn sent(
        &mut self,
        msg: &[u8],
        got: crate::Result<()>,
        len: usize,
        live: bool,
        oneshot: bool,
    ) {
        match &got {
            Err(Error::MessageTooLarge { len: l, max }) => {
                assert!(*l == len && *max == self.max && len > self.max, "{got:?}");
            }
            // `broadcast_with` opens a sender before it looks at the length.
            Err(_) if oneshot => {}
            _ => assert!(len <= self.max, "send of {len} gave {got:?}"),
        }
        let send_error = |e: &Error| {
            matches!(
                e,
                Error::MessageTooLarge { .. }
                    | Error::Closed
                    | Error::NotFound { .. }
                    | Error::Corrupted { .. }
            )
        };
        let allowed = match &got {
            Err(e) if oneshot => send_error(e) || opening_error(e),
            Err(e) => send_error(e),
            Ok(()) => true,
        };
        assert!(allowed, "send gave {got:?}");
        if self.scribbled {
            return;
        }
        let want = match () {
            _ if oneshot && !live => "not found",
            _ if len > self.max => "too large",
            _ if !live => "closed",
            _ => "ok",
        };
        let outcome = match &got {
            Ok(()) => "ok",
            Err(Error::MessageTooLarge { .. }) => "too large",
            Err(Error::Closed) => "closed",
            Err(Error::NotFound { .. }) => "not found",
            Err(e) => panic!("send gave {e:?}"),
        };
        assert_eq!(outcome, want, "send of {len} bytes");
        if outcome == "ok" {
            for m in &mut self.members {
                m.sent += 1;
                m.queue.push_back(msg.to_vec());
            }
        }
    }

    /// Messages a member has to be told it missed: those past a lap of the ring (behind
    /// a held empty message, which left the ring).
    pub(super) fn overrun(m: &mut Member, cap: usize) {
        let held = usize::from(m.held);
        while m.queue.len() - held > cap {
            m.queue.remove(held);
            m.pending_missed += 1;
            m.missed += 1;
        }
    }

    pub(super) fn group_read(&mut self, sel: u8, how: u8, len: u8) {
        if self.members.is_empty() {
            return;
        }
        let mode = self.read_mode(how);
        let (len, max, cap) = (usize::from(len) % (self.max + 2), self.max, self.cap);
        let i = usize::from(sel) % self.members.len();
        let m = &mut self.members[i];
        let (got, buf) = Self::read_from(&mut m.reader, mode, len, max);
        if let Err(Error::Overrun { missed }) = got {
            assert!(missed > 0, "{got:?}");
        }
        if !self.scribbled {
            // What `info` held back (a count of missed messages, an empty message) is
            // reported before the ring is looked at again.
            if !m.held && m.pending_missed == 0 {
                Self::overrun(m, cap);
            }
            let (told, read) =
                Self::expect_read(&mut m.queue, m.pending_missed, &got, &buf, mode, len);
            m.pending_missed -= told;
            m.delivered += u64::from(read);
            m.held &= !read;
        }
    }

    pub(super) fn group_info(&mut self, sel: u8) {
        if self.members.is_empty() {
            return;
        }
        let (max, cap) = (self.max, self.cap);
        let i = usize::from(sel) % self.members.len();
        let m = &mut self.members[i];
        let got = timed("group info", || m.reader.info());
        match &got {
            Ok(i) => {
                assert!(i.next_message_size.is_none_or(|n| n <= max), "{i:?}");
                assert!(i.message_count <= cap as u64 + 1, "{i:?}");
            }
            Err(e) => assert!(
                matches!(e, Error::Corrupted { .. } | Error::Closed),
                "group info gave {e:?}"
            ),
        }
        if !self.scribbled {
            let i = got.expect("group info");
            if m.held {
                // The held message answers; the ring is not looked at.
                let count = (m.queue.len() as u64 - 1).min(cap as u64) + 1;
                assert_eq!(
                    (i.next_message_size, i.message_count),
                    (Some(0), count),
                    "{i:?}"
                );
            } else {
                Self::overrun(m, cap);
                assert_eq!(i.next_message_size, m.queue.front().map(Vec::len), "{i:?}");
                assert_eq!(i.message_count, m.queue.len() as u64, "{i:?}");
                m.held = m.queue.front().is_some_and(Vec::is_empty);
            }
            assert_eq!(i.dropped, m.missed, "{i:?}");
        }
    }
}
