//! Ports across hosts: calls, asynchronous calls, cancel and datagrams.
//!
//! `PortClient::connect("//hostb/svc", payload, …)` on host A: the redirector asks
//! host B's bridge to connect to its port `svc` as an ordinary client with the
//! caller's `payload`; the far server's accept payload (or its rejection, or `Busy`)
//! comes back in the open reply. Bridge A then creates a local *proxy port* that takes
//! one connection, answers the caller's connect with that accept payload, and relays:
//!
//! * each request the proxy receives becomes a [`Kind::Call`] frame (`seq` = the
//!   local call id, flags [`CALL`]); bridge B issues it with `call_async`, awaits the
//!   `PendingCall` on its tokio runtime, and sends the reply back as a [`Kind::CallReply`] frame, which bridge A answers the
//!   waiting request with. Views become inline bytes on the wire;
//! * a datagram becomes a `Call` frame with flags [`DATAGRAM`], sent with
//!   `send_datagram` on B, in order with the calls;
//! * a call the caller cancels (its `Incoming` on the proxy reports `is_cancelled`)
//!   sends flags [`CANCEL`]; bridge B cancels its pending call;
//! * a call that fails on B (the far server dropped it, could not reply, closed)
//!   comes back as a failed `CallReply`; the proxy then drops the request unanswered,
//!   so the caller's call fails (`Closed`).
//!
//! Keys: `culvert/<domain>/c/<opener>/<id>/o` (calls) and `…/s` (replies).
//!
//! **Ends.** When the far server closes, or the caller goes, the side that saw it sends
//! [`Kind::Abort`] and the proxy port is closed: the caller's pending and later calls
//! fail with `Closed`. When the far server's process dies (a call on B fails with
//! `PeerDied`), B sends [`Kind::PeerDied`] after the replies before it; the far
//! bridge's liveliness token vanishing counts the same. The proxy is then marked dead
//! ([`PortServer::mark_dead`]) and kept open until the caller disconnects: the caller
//! reads the replies already answered, then its pending and later calls fail with
//! `PeerDied` (within culvert's liveness interval), as if the far server were a local
//! one that died. B notices the death on the next call it relays, so a death with no
//! call in flight is reported to the caller's next call.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use culvert::port::{Incoming, MessageKind, PendingCall, PortClient, PortOptions, PortServer};
use culvert::remote::{Reply, Request, Status};
use culvert::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use culvert::{Deadline, Error};
use tokio::sync::oneshot;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

use crate::bridge::{Abortable, Inner, Registration};
use crate::open::Then;
use crate::wire::{Frame, Kind};

/// `Call` flags: a request.
pub const CALL: u8 = 0;
/// `Call` flags: a datagram.
pub const DATAGRAM: u8 = 1;
/// `Call` flags: cancel the call `seq`.
pub const CANCEL: u8 = 2;
/// How often relay loops look for aborts and cancels.
const POLL: Duration = Duration::from_millis(20);
/// How long a proxy port waits for the local caller to connect.
const PROXY_ACCEPT: Duration = Duration::from_secs(10);

fn zerr(e: zenoh::Error) -> Error {
    Error::Io(std::io::Error::other(format!("zenoh: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn port_options(inner: &Inner) -> PortOptions {
    match &inner.cfg.root {
        Some(r) => PortOptions::default().root(r),
        None => PortOptions::default(),
    }
}

fn publisher(inner: &Inner, key: String) -> Result<Publisher<'static>, Error> {
    inner
        .session
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .express(true)
        .wait()
        .map_err(zerr)
}

fn put(p: &Publisher<'static>, kind: Kind, flags: u8, seq: u64, body: &[u8]) {
    let mut f = Frame::new(kind, seq, body);
    f.flags = flags;
    let _ = p.put(f.encode()).wait();
}

// ---- the caller's host: the proxy port -------------------------------------------

/// Where a proxy is: relaying, marked dead until the caller goes, or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyState {
    Running,
    Mourning,
    Closed,
}

struct Proxy {
    peer: String,
    state: Mutex<ProxyState>,
    server: PortServer,
    pending: Mutex<HashMap<u64, Incoming>>,
    calls: Publisher<'static>,
}

impl Proxy {
    fn state(&self) -> ProxyState {
        *lock(&self.state)
    }

    /// Marks the proxy dead for its caller (see the module doc); a proxy that cannot
    /// be marked is closed instead.
    fn mourn(&self) {
        let mut st = lock(&self.state);
        if *st == ProxyState::Closed {
            return;
        }
        if !self.server.mark_dead() {
            drop(st);
            return self.abort();
        }
        *st = ProxyState::Mourning;
        // Dropped requests send nothing now: the caller's waits see the death.
        lock(&self.pending).clear();
    }
}

impl Abortable for Proxy {
    fn peer(&self) -> &str {
        &self.peer
    }

    fn abort(&self) {
        let mut st = lock(&self.state);
        if *st != ProxyState::Closed {
            *st = ProxyState::Closed;
            self.server.close();
            lock(&self.pending).clear();
        }
    }

    fn stop(&self) {
        if self.state() != ProxyState::Closed {
            put(&self.calls, Kind::Abort, 0, 0, &[]);
        }
        self.abort();
    }

    fn peer_died(&self) {
        self.mourn();
    }
}

/// A proxy's slot, filled once the far side accepted; an end that came first waits.
#[derive(Default)]
struct Slot {
    proxy: Option<Arc<Proxy>>,
    /// An `Abort` (`false`) or `PeerDied` (`true`) before the proxy existed.
    early: Option<bool>,
}

/// The redirector's side of `PortClient::connect("//host/name")`.
pub(crate) fn redirect(inner: &Arc<Inner>, req: &Request) -> Result<String, Error> {
    if req.host == inner.cfg.host {
        return Ok(req.name.clone());
    }
    if req.host == culvert::remote::ALL_HOSTS {
        return Err(Error::InvalidArgument {
            what: "//*/ names are for mailslots and groups only".into(),
        });
    }
    let id = inner.next_id();
    let base = format!("{}/c/{}/{id}", inner.prefix, inner.cfg.host);
    // Declared before the open, so no reply frame can be missed.
    let slot: Arc<Mutex<Slot>> = Arc::default();
    let s2 = slot.clone();
    let sub = inner
        .session
        .declare_subscriber(format!("{base}/s"))
        .callback(move |sample| {
            let bytes = sample.payload().to_bytes();
            let frame = Frame::decode(&bytes);
            let died = matches!(&frame, Ok(f) if f.kind == Kind::PeerDied);
            let proxy = {
                let mut sl = lock(&s2);
                match sl.proxy.clone() {
                    Some(p) => p,
                    None => {
                        // Replies cannot come before the proxy; an end is kept.
                        if !matches!(&frame, Ok(f) if f.kind == Kind::CallReply) {
                            sl.early.get_or_insert(died);
                        }
                        return;
                    }
                }
            };
            match frame {
                Ok(f) if f.kind == Kind::CallReply => {
                    if let Some(inc) = lock(&proxy.pending).remove(&f.seq) {
                        if f.flags == 0 {
                            let _ = inc.reply(f.body);
                        }
                        // A failed call: dropping the request fails the caller's call.
                    }
                }
                Ok(f) if f.kind == Kind::PeerDied => proxy.mourn(),
                // Abort, or a malformed frame: the connection cannot go on.
                _ => proxy.abort(),
            }
        })
        .wait()
        .map_err(zerr)?;
    let calls = publisher(inner, format!("{base}/o"))?;
    let reply = crate::open::ask(inner, req, id)?;
    if reply.status != Status::Ok {
        let full = format!("//{}/{}", req.host, req.name);
        return Err(reply.into_result(&full).err().unwrap_or(Error::PeerDied));
    }
    let accept_payload = reply.text;
    let max_message = (reply.detail as usize).clamp(1, 1 << 30);
    let proxy_name = format!("culvert.remote.{}.p{id}", std::process::id());
    let mut opts = port_options(inner)
        .max_connections(1)
        .max_message(max_message);
    opts.inline_max = opts.inline_max.min(max_message);
    opts.view_heap_size = opts.view_heap_size.max(2 * max_message);
    let server = match PortServer::create(&proxy_name, &opts) {
        Ok(s) => s,
        Err(e) => {
            put(&calls, Kind::Abort, 0, 0, &[]);
            return Err(e);
        }
    };
    let proxy = Arc::new(Proxy {
        peer: req.host.clone(),
        state: Mutex::new(ProxyState::Running),
        server,
        pending: Mutex::new(HashMap::new()),
        calls,
    });
    let early = {
        let mut sl = lock(&slot);
        sl.proxy = Some(proxy.clone());
        sl.early.take()
    };
    match early {
        Some(true) => proxy.mourn(),
        Some(false) => proxy.abort(),
        None => {}
    }
    let reg = Registration::new(inner, proxy.clone());
    std::thread::spawn(move || {
        serve_proxy(&proxy, &accept_payload);
        proxy.abort();
        drop((sub, reg));
    });
    Ok(proxy_name)
}

/// The proxy's loop: accept the caller, then relay its requests until either side
/// goes (marked dead, it only waits for the caller to go).
fn serve_proxy(proxy: &Proxy, accept_payload: &[u8]) {
    let calls = &proxy.calls;
    let accepted = proxy
        .server
        .listen(PROXY_ACCEPT)
        .and_then(|c| c.accept(accept_payload));
    if accepted.is_err() {
        put(calls, Kind::Abort, 0, 0, &[]);
        return;
    }
    // Marked dead before the caller came: mark its connection too.
    if proxy.state() == ProxyState::Mourning && !proxy.server.mark_dead() {
        return;
    }
    loop {
        let state = proxy.state();
        if state == ProxyState::Closed {
            return;
        }
        match proxy.server.receive(POLL) {
            Ok(mut inc) if state == ProxyState::Running => {
                let body = std::mem::take(&mut inc.payload).into_vec();
                match inc.kind {
                    MessageKind::Request => {
                        // Pending before it is sent: the reply may come back at once.
                        let id = inc.id;
                        lock(&proxy.pending).insert(id, inc);
                        put(calls, Kind::Call, CALL, id, &body);
                    }
                    MessageKind::Datagram => put(calls, Kind::Call, DATAGRAM, inc.id, &body),
                }
            }
            // Marked dead: nothing is relayed (a dead connection's records are
            // dropped before they become requests).
            Ok(_) => {}
            Err(Error::Timeout | Error::WouldBlock) => {
                proxy.server.maintain();
                if proxy.server.connection_count() == 0 {
                    // The caller disconnected (or died).
                    if state == ProxyState::Running {
                        put(calls, Kind::Abort, 0, 0, &[]);
                    }
                    return;
                }
                let cancelled: Vec<u64> = lock(&proxy.pending)
                    .iter()
                    .filter(|(_, inc)| inc.is_cancelled())
                    .map(|(id, _)| *id)
                    .collect();
                for id in cancelled {
                    lock(&proxy.pending).remove(&id);
                    put(calls, Kind::Call, CANCEL, id, &[]);
                }
            }
            Err(_) => {
                put(calls, Kind::Abort, 0, 0, &[]);
                return;
            }
        }
    }
}

// ---- the server's host: a client of the real port --------------------------------

struct Client {
    peer: String,
    aborted: AtomicBool,
    client: PortClient,
    /// Pending calls: dropping the sender cancels the call.
    cancels: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    replies: Publisher<'static>,
    /// Frames queued for the worker and not yet handled.
    queued: AtomicU64,
}

impl Abortable for Client {
    fn peer(&self) -> &str {
        &self.peer
    }

    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        // Every waiting task drops (so cancels) its call.
        lock(&self.cancels).clear();
    }

    fn stop(&self) {
        if !self.aborted.load(Ordering::Acquire) {
            put(&self.replies, Kind::Abort, 0, 0, &[]);
        }
        self.abort();
    }

    /// The caller's bridge is gone: the real server sees this client disconnect (a
    /// port server is not told how a client went).
    fn peer_died(&self) {
        self.abort();
    }
}

/// A relayed `Call` frame: flags, seq, body.
type Work = (u8, u64, Vec<u8>);

/// The serving side of a `//host/port` open: connects to the real port.
pub(crate) fn serve_open(
    inner: &Arc<Inner>,
    id: u64,
    opener: &str,
    req: &Request,
) -> Result<(Reply, Then), Error> {
    let deadline = Deadline::after(req.timeout.unwrap_or(Duration::from_secs(10)));
    let (client, accept) =
        PortClient::connect_with(&req.name, &req.payload, deadline, &port_options(inner))?;
    let base = format!("{}/c/{opener}/{id}", inner.prefix);
    let replies = publisher(inner, format!("{base}/s"))?;
    let max = client.max_message() as u64;
    let client = Arc::new(Client {
        peer: opener.to_string(),
        aborted: AtomicBool::new(false),
        client,
        cancels: Mutex::new(HashMap::new()),
        replies,
        queued: AtomicU64::new(0),
    });
    let (tx, rx) = mpsc::channel::<Work>();
    let c2 = client.clone();
    let weak = Arc::downgrade(inner);
    let sub: Subscriber<()> = inner
        .session
        .declare_subscriber(format!("{base}/o"))
        .callback(move |sample| {
            let bytes = sample.payload().to_bytes();
            match Frame::decode(&bytes) {
                Ok(f) if f.kind == Kind::Call => {
                    let fast = weak
                        .upgrade()
                        .is_some_and(|inner| try_now(&inner, &c2, f.flags, f.seq, f.body));
                    if !fast {
                        c2.queued.fetch_add(1, Ordering::AcqRel);
                        let _ = tx.send((f.flags, f.seq, f.body.to_vec()));
                    }
                }
                _ => c2.abort(),
            }
        })
        .wait()
        .map_err(zerr)?;
    let reg = Registration::new(inner, client.clone());
    let inner2 = inner.clone();
    let reply = Reply {
        status: Status::Ok,
        detail: max,
        text: accept,
    };
    Ok((
        reply,
        Box::new(move || {
            std::thread::spawn(move || {
                work(&inner2, &client, &rx);
                client.abort();
                drop((sub, reg));
            });
        }),
    ))
}

/// Issues the relayed calls and datagrams in order; a task on the bridge's runtime
/// awaits each pending call's reply.
fn work(inner: &Inner, client: &Arc<Client>, rx: &mpsc::Receiver<Work>) {
    while !client.aborted.load(Ordering::Acquire) {
        let (flags, seq, body) = match rx.recv_timeout(POLL) {
            Ok(w) => w,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let go_on = handle(inner, client, flags, seq, &body);
        client.queued.fetch_sub(1, Ordering::AcqRel);
        if !go_on {
            return;
        }
    }
}

/// Handles a frame from the network right in the Zenoh callback when nothing is
/// queued before it and it cannot wait (an inline call, a datagram that fits, a
/// cancel): one thread hop less. `false`: the worker must take it.
fn try_now(inner: &Inner, client: &Arc<Client>, flags: u8, seq: u64, body: &[u8]) -> bool {
    if client.queued.load(Ordering::Acquire) != 0 || client.aborted.load(Ordering::Acquire) {
        return false;
    }
    match flags {
        CALL if body.len() <= client.client.inline_max() => {
            handle(inner, client, flags, seq, body);
            true
        }
        DATAGRAM => client
            .client
            .send_datagram_until(body, Deadline::now())
            .is_ok(),
        CANCEL => {
            lock(&client.cancels).remove(&seq);
            true
        }
        _ => false,
    }
}

/// Issues one relayed call, datagram or cancel. `false`: the connection is over.
fn handle(inner: &Inner, client: &Arc<Client>, flags: u8, seq: u64, body: &[u8]) -> bool {
    match flags {
        CALL => match client.client.call_async(body) {
            Ok(pc) => {
                let (cancel, cancelled) = oneshot::channel();
                lock(&client.cancels).insert(seq, cancel);
                let c = client.clone();
                inner
                    .runtime
                    .spawn(async move { await_reply(&c, seq, pc, cancelled).await });
            }
            Err(e) => fail_call(client, seq, &e),
        },
        DATAGRAM => {
            if let Err(e) = client.client.send_datagram(body) {
                if matches!(e, Error::Closed | Error::PeerDied) {
                    end(client, &e);
                    return false;
                }
            }
        }
        CANCEL => {
            // Dropping the sender ends the task, which drops (cancels) the call.
            lock(&client.cancels).remove(&seq);
        }
        _ => {}
    }
    true
}

fn fail_call(client: &Client, seq: u64, e: &Error) {
    if matches!(e, Error::PeerDied) {
        // No failed reply: the proxy would answer the call with a close.
        return end(client, e);
    }
    let status = Reply::from_error(e).status as u8;
    put(&client.replies, Kind::CallReply, 1, seq, &[status]);
    if matches!(e, Error::Closed) {
        end(client, e);
    }
}

/// The far server is gone (`e`: `Closed` or `PeerDied`): the caller's proxy is closed,
/// or marked dead when the server's process died.
fn end(client: &Client, e: &Error) {
    let kind = match e {
        Error::PeerDied => Kind::PeerDied,
        _ => Kind::Abort,
    };
    if !client.aborted.swap(true, Ordering::AcqRel) {
        put(&client.replies, kind, 0, 0, &[]);
    }
}

async fn await_reply(client: &Client, seq: u64, pc: PendingCall, cancelled: oneshot::Receiver<()>) {
    tokio::select! {
        got = pc => {
            lock(&client.cancels).remove(&seq);
            match got {
                Ok(reply) => {
                    let payload = reply.into_payload();
                    put(&client.replies, Kind::CallReply, 0, seq, payload.as_slice());
                }
                Err(Error::Cancelled) => {}
                Err(e) => fail_call(client, seq, &e),
            }
        }
        // Cancelled by the caller, or the connection ended: the call is dropped.
        _ = cancelled => {}
    }
}
