//! The connect handshake on the server side: connection slots a client filled in,
//! reviewed (its connection section verified), accepted or rejected, and freed —
//! removing a connection section only once it is verified as the slot client's.

use std::sync::Arc;
use std::time::Duration;

use culvert_section::{Section, SectionKind};
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline, ProcessIdentity, WaitStrategy};

use super::*;

impl ServerState {
    /// Unlinks the connection section named in `slot`, only once verified: a
    /// `PortConnection` section of this port whose creator is the slot's client, still
    /// at that name. A hostile client cannot so make the server remove anything it
    /// could not remove itself.
    pub(super) fn unlink_conn(&self, slot: &ConnSlot, client: u64) {
        if let Some(section) = self.open_conn(slot, client, Duration::ZERO) {
            section.unlink_if_linked();
        }
    }

    /// Opens the connection section named in `slot` (waiting up to `wait` for its
    /// client to finish it), if it is one: of this port's connection names, of kind
    /// `PortConnection`, created by `client` (the slot's client).
    pub(super) fn open_conn(
        &self,
        slot: &ConnSlot,
        client: u64,
        wait: Duration,
    ) -> Option<Section> {
        let name = slot
            .name()
            .filter(|n| n.starts_with(&conn_prefix(&self.name)))?;
        let mut so = self.sopts.clone();
        so.expect_kind = Some(SectionKind::PortConnection);
        so.open_timeout = wait;
        let section = Section::open(&name, &so).ok()?;
        (client != 0 && section.header().creator.packed() == client).then_some(section)
    }

    /// Frees slot `i` if it is in state `from` (whoever wins the CAS does it).
    pub(super) fn free_slot(&self, i: usize, from: u32) -> bool {
        let slot = self.slot(i);
        let client = slot.client.load(Ordering::Acquire);
        if !slot.begin_free(from, client, self.me) {
            return false;
        }
        self.unlink_conn(slot, client);
        slot.finish_free();
        true
    }

    /// Finishes the free of slot `i` that its holder `dead` began and died in.
    pub(super) fn take_over_free(&self, i: usize, dead: u64) {
        let slot = self.slot(i);
        if slot.take_over_free(dead, self.me) {
            self.unlink_conn(slot, dead);
            slot.finish_free();
        }
    }

    /// Tears down the connection in slot `i` and frees the slot, if the slot is in
    /// state `from`; whether it was.
    pub(super) fn teardown(&self, i: usize, from: u32) -> bool {
        let slot = self.slot(i);
        let client = slot.client.load(Ordering::Acquire);
        if !slot.begin_free(from, client, self.me) {
            return false;
        }
        let conn = self.conns_mut().take(i);
        if let Some(conn) = conn {
            conn.shut();
        }
        self.unlink_conn(slot, client);
        slot.finish_free();
        true
    }

    pub(super) fn requested_or_closing(&self) -> bool {
        (0..self.cfg.max_connections).any(|i| {
            matches!(
                self.slot(i).state.load(Ordering::Acquire),
                SLOT_REQUESTED | SLOT_CLOSING
            )
        })
    }

    /// One step of listening, never waiting: runs the housekeeping, then takes the
    /// next posted connect request for review. A request whose review fails (its
    /// client died or wrote garbage) is dropped and the scan goes on.
    pub(super) fn listen_step(self: &Arc<Self>) -> Result<Option<ConnectRequest>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.maintain(true, false);
        for i in 0..self.cfg.max_connections {
            if self.slot(i).begin_review() {
                match self.review(i) {
                    Ok(req) => return Ok(Some(req)),
                    Err(_) => {
                        if !self.free_slot(i, SLOT_REVIEWING) {
                            self.free_slot(i, SLOT_WITHDRAWN);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Waits until `deadline` for a connect request: [`listen_step`](Self::listen_step)
    /// whenever a client posts, withdraws or leaves (they notify `listen.connect`), and
    /// at least every liveness interval for the housekeeping.
    pub(super) fn listen(self: &Arc<Self>, deadline: Deadline) -> Result<ConnectRequest> {
        wait_for(
            &self.header().listen.connect,
            WaitStrategy::Blocking,
            deadline,
            |_| self.listen_step(),
        )
    }

    pub(super) fn review(self: &Arc<Self>, i: usize) -> Result<ConnectRequest> {
        let slot = self.slot(i);
        let client = slot.client.load(Ordering::Acquire);
        let epoch = slot.epoch.load(Ordering::Acquire);
        let corrupt = |what: &str| Error::Corrupted {
            what: what.to_string(),
        };
        let section = self
            .open_conn(slot, client, CONN_OPEN_TIMEOUT)
            .ok_or_else(|| {
                corrupt("connect request names no connection section of its client on this port")
            })?;
        let conn = section.object("conn")?;
        let hdr = at::<ConnHeader>(&conn, 0)?;
        if hdr.magic.load(Ordering::Acquire) != CONN_MAGIC
            || hdr.payload_max.load(Ordering::Relaxed) != CONNECT_PAYLOAD_MAX as u64
        {
            return Err(corrupt("connection header"));
        }
        let len = hdr.connect_len.load(Ordering::Acquire);
        if len > CONNECT_PAYLOAD_MAX as u64 {
            return Err(corrupt("connect payload length"));
        }
        let payload = copy_out(&conn, std::mem::size_of::<ConnHeader>(), len as usize)?;
        Ok(ConnectRequest {
            pid: ProcessIdentity::from_packed(client).pid,
            payload,
            pending: PendingConnect {
                server: self.clone(),
                index: i,
                epoch,
                client,
                section: Some(section),
            },
        })
    }
}

impl PendingConnect {
    fn write_answer(&self, section: &Section, payload: &[u8]) -> Result<()> {
        if payload.len() > CONNECT_PAYLOAD_MAX {
            return Err(Error::MessageTooLarge {
                len: payload.len(),
                max: CONNECT_PAYLOAD_MAX,
            });
        }
        let conn = section.object("conn")?;
        let hdr = at::<ConnHeader>(&conn, 0)?;
        copy_in(
            &conn,
            std::mem::size_of::<ConnHeader>() + CONNECT_PAYLOAD_MAX,
            payload,
        )?;
        hdr.answer_len
            .store(payload.len() as u64, Ordering::Release);
        Ok(())
    }

    fn accept(&mut self, payload: &[u8]) -> Result<ConnectionId> {
        let Some(section) = self.section.take() else {
            return Err(Error::Closed);
        };
        let s = self.server.clone();
        let i = self.index;
        let built = (|| -> Result<Arc<ServerConn>> {
            self.write_answer(&section, payload)?;
            let requests = spsc::MessageReader::attach(&section.object("requests")?)?;
            let writer = spsc::MessageWriter::attach(&section.object("replies")?)?;
            let heap = Heap::attach(&section.object("heap")?)?;
            Ok(Arc::new(ServerConn {
                id: ConnectionId {
                    index: i as u32,
                    epoch: self.epoch,
                },
                client: self.client,
                heap,
                requests: Mutex::new(Some(requests)),
                writer: Mutex::new(Some(writer)),
                calls: Mutex::new(Calls::default()),
                dead: AtomicBool::new(false),
                _section: section,
            }))
        })();
        let conn = match built {
            Ok(c) => c,
            Err(e) => {
                if !s.free_slot(i, SLOT_REVIEWING) {
                    s.free_slot(i, SLOT_WITHDRAWN);
                }
                return Err(e);
            }
        };
        if let Some(old) = s.conns_mut().insert(conn.clone()) {
            // A slot is reviewed only once its last connection was torn down.
            old.shut();
        }
        if !s.slot(i).answer(true) {
            // The client gave up meanwhile.
            s.conns_mut().take(i);
            conn.shut();
            s.free_slot(i, SLOT_WITHDRAWN);
            return Err(Error::Timeout);
        }
        Ok(conn.id)
    }

    fn reject(&mut self, reason: &[u8]) -> Result<()> {
        let Some(section) = self.section.take() else {
            return Ok(());
        };
        let s = self.server.clone();
        let written = self.write_answer(&section, reason);
        if written.is_err() || !s.slot(self.index).answer(false) {
            if !s.free_slot(self.index, SLOT_REVIEWING) {
                s.free_slot(self.index, SLOT_WITHDRAWN);
            }
            return written;
        }
        Ok(())
    }
}

impl Drop for PendingConnect {
    fn drop(&mut self) {
        let _ = self.reject(&[]);
    }
}

impl ConnectRequest {
    /// Accepts the connection, sending `payload` (at most [`CONNECT_PAYLOAD_MAX`]
    /// bytes) to the client. `Timeout` if the client gave up meanwhile.
    pub fn accept(mut self, payload: &[u8]) -> Result<ConnectionId> {
        let r = self.pending.accept(payload);
        crate::trace::event!(
            INFO,
            client_pid = self.pid,
            ok = r.is_ok(),
            "port connection accepted"
        );
        r
    }

    /// Rejects the connection; the client gets `Error::Rejected { reason }`.
    pub fn reject(mut self, reason: &[u8]) -> Result<()> {
        crate::trace::event!(INFO, client_pid = self.pid, "port connection rejected");
        self.pending.reject(reason)
    }
}
