//! Named pipes across hosts: the relay between a local pipe end and the network.
//!
//! A remote connection has two sides, each a `PipeLink` in one bridge: the
//! *opener* (the bridge whose local client connected to a proxy pipe) and the
//! *server side* (the bridge that connected, as an ordinary client, to the real
//! `PipeServer`). Each side splits its local end: one thread reads it and publishes
//! [`Kind::Data`] frames (a whole message on message pipes — partial reads with
//! `more` are joined first, so boundaries survive; up to 64 KiB chunks on byte
//! pipes); another takes frames from the network and writes them to the local end.
//!
//! Keys, under `culvert/<domain>/c/<opener>/<id>/`: `o` data from the opener, `s`
//! data from the server side, `oc` and `sc` the credits for each.
//!
//! **Credit window.** A sender may have at most [`WINDOW`] bytes published and not
//! yet written into the far local pipe; the receiver grants credit (a cumulative
//! byte count) as its local writes succeed, every quarter window. A sender out of
//! credit stops reading its local pipe, so a slow reader's ring fills and its writer
//! waits — memory in flight is bounded by the window per direction.
//!
//! **Ends.** End of stream on the local end sends [`Kind::Close`]; the far side then
//! drops its writer (its local peer reads end of stream). A local peer that dies sends
//! [`Kind::PeerDied`]; the far side writes what arrived before it, then marks its
//! local end dead ([`StandIn::mark_dead`]) and keeps it open, so its local peer reads
//! that data and then `PeerDied`, and its writes fail with `PeerDied`, as if the far
//! process were its own peer (within culvert's liveness interval); the end is closed
//! once that peer is gone. The far bridge's liveliness token vanishing counts as the
//! far peer's death. [`Kind::Abort`] (a local failure, a malformed frame, a bridge
//! that stops) drops both halves of the local end: its peer's reads end and its
//! writes fail with `Closed`. Every relay thread waits at most the poll interval
//! ([`POLL`]) before it looks at how the connection is.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeReader, PipeWriter, StandIn};
use culvert::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use culvert::Error;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

use crate::bridge::{Abortable, Inner, Registration};
use crate::wire::{Frame, Kind};

/// Bytes a sender may have in flight per direction.
pub const WINDOW: u64 = 2 << 20;
/// How often blocked relay threads look for an abort.
pub const POLL: Duration = Duration::from_millis(20);
const CHUNK: usize = 64 * 1024;

/// Which side of a connection a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Opener,
    Server,
}

enum Inbound {
    Data(Vec<u8>),
    Close,
    /// The far peer died: after the data before it, the local end is marked dead.
    Died,
}

/// How far a link's relay went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Relay {
    /// Carrying data.
    #[default]
    Running,
    /// The local end was marked dead and is held open until its peer is gone.
    Mourning,
    /// Torn down: the local end is dropped.
    Aborted,
}

#[derive(Default)]
struct Flow {
    sent: u64,
    granted: u64,
    relay: Relay,
    /// The outbound thread ended (its half dropped) while the relay ran.
    outbound_done: bool,
}

/// Bytes written into the local end, and how many of them were granted back.
#[derive(Default)]
struct Consumed {
    total: u64,
    reported: u64,
}

/// One side of a remote pipe connection.
pub(crate) struct PipeLink {
    peer: String,
    flow: Mutex<Flow>,
    cv: Condvar,
    inbound: Mutex<Sender<Inbound>>,
    /// Frames queued for the inbound thread and not yet written.
    queued: AtomicU64,
    /// A death was queued: data frames after it are dropped.
    dying: AtomicBool,
    /// The local end's writing half, once the relay runs (`None` after close).
    writer: Mutex<Option<PipeWriter>>,
    /// The local end, to mark dead when the far peer dies (`None`: it cannot be, and
    /// a death ends the connection as a close).
    stand_in: Mutex<Option<StandIn>>,
    consumed: Mutex<Consumed>,
    data_pub: Publisher<'static>,
    credit_pub: Publisher<'static>,
}

impl Abortable for PipeLink {
    fn peer(&self) -> &str {
        &self.peer
    }

    fn abort(&self) {
        let mut f = lock(&self.flow);
        f.relay = Relay::Aborted;
        self.cv.notify_all();
    }

    fn stop(&self) {
        if self.relay() != Relay::Aborted {
            self.send(Kind::Abort);
        }
        self.abort();
    }

    fn peer_died(&self) {
        if !self.dying.swap(true, Ordering::AcqRel) {
            self.queue(Inbound::Died);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PipeLink {
    fn relay(&self) -> Relay {
        lock(&self.flow).relay
    }

    /// Whether the relay stopped carrying data (torn down, or mourning).
    fn stopped(&self) -> bool {
        self.relay() != Relay::Running
    }

    fn outbound_done(&self) -> bool {
        lock(&self.flow).outbound_done
    }

    /// Waits until `len` more bytes fit the window (a message larger than the
    /// window goes alone). `false`: the relay stopped.
    fn take_credit(&self, len: u64) -> bool {
        let mut f = lock(&self.flow);
        loop {
            if f.relay != Relay::Running {
                return false;
            }
            let in_flight = f.sent.saturating_sub(f.granted);
            if in_flight == 0 || in_flight + len <= WINDOW {
                f.sent += len;
                return true;
            }
            f = self
                .cv
                .wait_timeout(f, POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn grant(&self, total: u64) {
        let mut f = lock(&self.flow);
        if total > f.granted && total <= f.sent {
            f.granted = total;
            self.cv.notify_all();
        }
    }

    /// Counts `n` bytes written locally; grants credit every quarter window.
    fn consumed(&self, n: u64) {
        let mut c = lock(&self.consumed);
        c.total += n;
        if c.total - c.reported >= WINDOW / 4 {
            c.reported = c.total;
            let _ = self
                .credit_pub
                .put(Frame::new(Kind::Credit, c.total, &[]).encode())
                .wait();
        }
    }

    /// Tells the far side how this side ended (`Abort` or `PeerDied`).
    fn send(&self, kind: Kind) {
        let _ = self.data_pub.put(Frame::new(kind, 0, &[]).encode()).wait();
    }

    /// The outbound thread ends: `true` if it must mourn (hold its half until the
    /// local peer is gone), else it is recorded as done.
    fn finish_outbound(&self) -> bool {
        let mut f = lock(&self.flow);
        if f.relay == Relay::Mourning {
            return true;
        }
        f.outbound_done = true;
        false
    }

    /// The far peer died: marks the local end dead and starts mourning. `Some(true)`:
    /// the outbound thread is gone, the caller mourns; `Some(false)`: the outbound
    /// thread mourns; `None`: the end could not be marked (or the link was torn down
    /// meanwhile) and the link is aborted.
    fn start_mourning(&self) -> Option<bool> {
        let mut f = lock(&self.flow);
        if f.relay != Relay::Running {
            return None;
        }
        if !lock(&self.stand_in)
            .as_ref()
            .is_some_and(StandIn::mark_dead)
        {
            f.relay = Relay::Aborted;
            self.cv.notify_all();
            return None;
        }
        f.relay = Relay::Mourning;
        self.cv.notify_all();
        Some(f.outbound_done)
    }

    /// A data frame from the network: written into the local end at once when
    /// nothing is queued and it fits without waiting (the common case, one thread
    /// hop less), else queued for the inbound thread.
    fn arrive(&self, body: &[u8]) {
        if self.stopped() || self.dying.load(Ordering::Acquire) {
            return;
        }
        let mut rest = body;
        if self.queued.load(Ordering::Acquire) == 0 {
            if let Ok(mut guard) = self.writer.try_lock() {
                if let Some(w) = guard.as_mut() {
                    let message = w.mode() == PipeMode::Message;
                    match w.try_write_message(body) {
                        Ok(n) if n >= body.len() => {
                            drop(guard);
                            self.consumed(body.len() as u64 + 1);
                            return;
                        }
                        Ok(n) if !message => {
                            self.consumed(n as u64);
                            rest = &body[n..];
                        }
                        _ => {}
                    }
                }
            }
        }
        self.queue(Inbound::Data(rest.to_vec()));
    }

    fn queue(&self, ev: Inbound) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _ = lock(&self.inbound).send(ev);
    }
}

/// The network half of a link, declared before the open is answered so that no
/// frame of the far side is missed.
pub(crate) struct Wires {
    link: Arc<PipeLink>,
    role: Role,
    rx: Receiver<Inbound>,
    _subs: (Subscriber<()>, Subscriber<()>),
    reg: Registration,
}

/// Declares the keys of connection `base` (`culvert/<domain>/c/<opener>/<id>`) for
/// `role`, talking to bridge `peer`.
pub(crate) fn declare(
    inner: &Arc<Inner>,
    base: &str,
    role: Role,
    peer: &str,
) -> Result<Wires, Error> {
    let (tx, rx_key, tx_credit, rx_credit) = match role {
        Role::Opener => ("o", "s", "oc", "sc"),
        Role::Server => ("s", "o", "sc", "oc"),
    };
    let s = &inner.session;
    let zerr = |e: zenoh::Error| Error::Io(std::io::Error::other(format!("zenoh: {e}")));
    let publisher = |key: String| {
        s.declare_publisher(key)
            .congestion_control(CongestionControl::Block)
            .express(true)
            .wait()
            .map_err(zerr)
    };
    let (sender, rx) = mpsc::channel();
    let link = Arc::new(PipeLink {
        peer: peer.to_string(),
        flow: Mutex::new(Flow::default()),
        cv: Condvar::new(),
        inbound: Mutex::new(sender),
        queued: AtomicU64::new(0),
        dying: AtomicBool::new(false),
        writer: Mutex::new(None),
        stand_in: Mutex::new(None),
        consumed: Mutex::new(Consumed::default()),
        data_pub: publisher(format!("{base}/{tx}"))?,
        credit_pub: publisher(format!("{base}/{rx_credit}"))?,
    });
    let weak = Arc::downgrade(&link);
    let data_sub = s
        .declare_subscriber(format!("{base}/{rx_key}"))
        .callback(move |sample| {
            let Some(link) = weak.upgrade() else { return };
            let bytes = sample.payload().to_bytes();
            match Frame::decode(&bytes) {
                Ok(f) if f.kind == Kind::Data => link.arrive(f.body),
                Ok(f) if f.kind == Kind::Close => link.queue(Inbound::Close),
                Ok(f) if f.kind == Kind::PeerDied => link.peer_died(),
                // Abort, or a malformed or unexpected frame: the stream cannot go on.
                // Both local threads stop at once, whatever the inbound one is doing.
                _ => link.abort(),
            }
        })
        .wait()
        .map_err(zerr)?;
    let weak = Arc::downgrade(&link);
    let credit_sub = s
        .declare_subscriber(format!("{base}/{tx_credit}"))
        .callback(move |sample| {
            let bytes = sample.payload().to_bytes();
            if let (Ok(f), Some(link)) = (Frame::decode(&bytes), weak.upgrade()) {
                if f.kind == Kind::Credit {
                    link.grant(f.seq);
                }
            }
        })
        .wait()
        .map_err(zerr)?;
    let reg = Registration::new(inner, link.clone());
    Ok(Wires {
        link,
        role,
        rx,
        _subs: (data_sub, credit_sub),
        reg,
    })
}

impl Wires {
    /// Gives up before the relay started: tells the far side.
    pub(crate) fn abandon(self) {
        self.link.send(Kind::Abort);
    }

    /// Relays between `end` and the network until both directions ended; returns at
    /// once (two threads do the work).
    pub(crate) fn relay(self, end: PipeEnd) {
        let mut end = end;
        end.set_read_timeout(Some(POLL));
        end.set_write_timeout(Some(POLL));
        // The proxy's end was accepted; the far side's end connected to the real pipe.
        let stand_in = match self.role {
            Role::Opener => StandIn::server_end(&end),
            Role::Server => StandIn::client_end(&end),
        };
        *lock(&self.link.stand_in) = stand_in.ok();
        let (reader, writer) = match end.split() {
            Ok(halves) => halves,
            Err(_) => return self.abandon(),
        };
        let Wires {
            link,
            rx,
            _subs,
            reg,
            ..
        } = self;
        *lock(&link.writer) = Some(writer);
        let keep = Arc::new((_subs, reg));
        let (l2, k2) = (link.clone(), keep.clone());
        std::thread::spawn(move || {
            outbound(&link, reader);
            drop(keep);
        });
        std::thread::spawn(move || {
            inbound(&l2, &rx);
            drop(k2);
        });
    }
}

/// Local end → network.
fn outbound(link: &PipeLink, mut reader: PipeReader) {
    let mut buf = vec![0u8; CHUNK];
    let mut msg: Vec<u8> = Vec::new();
    let message = reader.mode() == PipeMode::Message;
    let put = |kind: Kind, body: &[u8]| {
        let mut f = Frame::new(kind, 0, body);
        f.flags = message as u8;
        link.data_pub.put(f.encode()).wait().is_ok()
    };
    while !link.stopped() {
        match reader.read_message(&mut buf) {
            Ok(r) => {
                msg.extend_from_slice(&buf[..r.len]);
                if r.more || (!message && r.len == 0) {
                    continue;
                }
                if !link.take_credit(msg.len() as u64 + 1) || !put(Kind::Data, &msg) {
                    break;
                }
                msg.clear();
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::Closed) => {
                put(Kind::Close, &[]);
                break;
            }
            Err(e) => {
                // The local peer died, or the end failed: the far side is told which.
                link.send(match e {
                    Error::PeerDied => Kind::PeerDied,
                    _ => Kind::Abort,
                });
                link.abort();
                break;
            }
        }
    }
    if link.finish_outbound() {
        mourn(link);
    }
    drop(reader);
}

/// Holds the local end, marked dead, until its peer is gone (or the link is torn
/// down), then drops the writing half; the caller drops the reading half, if it has
/// it. Until then the peer reads `PeerDied`, never a close.
fn mourn(link: &PipeLink) {
    let stand_in = lock(&link.stand_in).clone();
    while link.relay() == Relay::Mourning && !stand_in.as_ref().is_none_or(StandIn::peer_left) {
        std::thread::sleep(POLL);
    }
    lock(&link.writer).take();
}

/// How writing one frame into the local end went.
enum Wrote {
    Done,
    /// The relay stopped, or the writing half is gone (the far side closed).
    Stopped,
    /// The local end failed: its peer is gone (`Closed`, `PeerDied`) or it broke.
    Failed(Error),
}

/// Network → local end: what `PipeLink::arrive` could not write at once, and how the
/// far side ended.
fn inbound(link: &PipeLink, rx: &Receiver<Inbound>) {
    // The far side closed: the writing half is dropped.
    let mut closed = false;
    loop {
        let ev = match rx.recv_timeout(POLL) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => {
                // Done when torn down, or when both directions ended.
                if link.stopped() || closed && link.outbound_done() {
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match ev {
            Inbound::Data(bytes) => {
                let wrote = {
                    let mut guard = lock(&link.writer);
                    match guard.as_mut() {
                        Some(w) => write_all(link, w, &bytes),
                        None => Wrote::Stopped,
                    }
                };
                link.queued.fetch_sub(1, Ordering::AcqRel);
                match wrote {
                    Wrote::Done => link.consumed(bytes.len() as u64 + 1),
                    Wrote::Stopped => {}
                    Wrote::Failed(e) => {
                        // The local peer is gone: stop the far side too (its writes
                        // then fail as a local pipe's do), saying whether it died.
                        if !link.stopped() {
                            link.send(match e {
                                Error::PeerDied => Kind::PeerDied,
                                _ => Kind::Abort,
                            });
                        }
                        link.abort();
                        break;
                    }
                }
            }
            // Dropping the writer half-closes: the local peer reads end of stream.
            Inbound::Close => {
                link.queued.fetch_sub(1, Ordering::AcqRel);
                lock(&link.writer).take();
                closed = true;
                if link.outbound_done() {
                    break;
                }
            }
            Inbound::Died => {
                link.queued.fetch_sub(1, Ordering::AcqRel);
                match link.start_mourning() {
                    // The writing half stays until the mourning ends.
                    Some(true) => return mourn(link),
                    Some(false) => return,
                    None => break,
                }
            }
        }
    }
    lock(&link.writer).take();
}

/// Writes one frame's bytes into the local end.
fn write_all(link: &PipeLink, w: &mut PipeWriter, mut bytes: &[u8]) -> Wrote {
    let byte_mode = w.mode() == PipeMode::Byte;
    loop {
        if link.stopped() {
            return Wrote::Stopped;
        }
        match w.write_message(bytes) {
            Ok(n) if byte_mode && n < bytes.len() => bytes = &bytes[n..],
            Ok(_) => return Wrote::Done,
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(e) => return Wrote::Failed(e),
        }
    }
}
