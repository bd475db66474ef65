//! Mailslots across hosts: `//host/name` and the domain-wide `//*/name`.
//!
//! **Sending host.** A local `MailslotWriter::open("//hostb/slot")` gets a local
//! *proxy* mailslot, one per target (`hostb` or every host) and name, shared by all
//! local writers of that target. A pump thread reads the proxy and publishes each
//! message as a [`Kind::Slot`] frame whose `seq` counts the messages of this
//! *stream* (proxy) from 0, on
//! `culvert/<domain>/m/h/<host>/<name>/<sender>/<stream>` (one host) or
//! `culvert/<domain>/m/all/<name>/<sender>/<stream>` (every host, this one too).
//! Messages are published with Zenoh's `Drop` congestion control: a mailslot write
//! never blocks, not even on the network. Every [`HEARTBEAT`] (when something
//! changed) a [`Kind::Lost`] frame, sent reliably, carries the next sequence number
//! and the proxy's own drop count (local writers that found the proxy full).
//!
//! **Receiving host.** The bridge writes each message into its local mailslot of that
//! name (exported names only; a `//*/` message from this same host needs no export).
//! A gap in a stream's sequence numbers — a message Zenoh dropped — and any increase
//! of the sender's proxy drop count are added to the mailslot's drop count with
//! [`MailslotWriter::report_lost`], the counter a full mailslot's drops go to: so
//! for every reader, *messages read + `info().dropped` = messages written*, across
//! hosts. A message that arrives after its gap was counted is discarded, never
//! counted twice.
//!
//! **Broadcast groups** (`BroadcastSender::open("//*/group")`, `broadcast_with`) take
//! the same path under `culvert/<domain>/g/…`: the proxy is a local group the bridge
//! joins as a reader, and the receiving bridge sends each message into its local
//! group of that name, whose slow readers get the exact `Overrun { missed }` of the
//! local ring. Group messages travel with `Block` congestion control (reliable, in
//! order), so for each reader *delivered + missed = sent* holds as long as the sending
//! bridge keeps up with its proxy group ([`GROUP_PROXY_CAPACITY`] messages of slack);
//! a proxy overrun cannot be added to the far readers' counts (a broadcast ring has
//! no counter to add to), so it is a known limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use culvert::mailslot::{BroadcastSender, Mailslot, MailslotOptions, MailslotWriter};
use culvert::remote::{ObjectKind, Reply, Request, Status, ALL_HOSTS};
use culvert::sync::atomic::Ordering;
use culvert::Error;
use zenoh::qos::CongestionControl;
use zenoh::sample::Sample;
use zenoh::Wait;

use crate::bridge::Inner;
use crate::open::Then;
use crate::wire::{Frame, Kind};
use crate::BridgeError;

/// How often a pump reports its stream's position and its proxy's drops.
pub const HEARTBEAT: Duration = Duration::from_millis(50);
/// Messages a proxy mailslot holds.
const PROXY_CAPACITY: usize = 1024;
/// Messages a proxy broadcast group holds.
pub const GROUP_PROXY_CAPACITY: usize = 4096;

/// A mailslot or a broadcast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flavor {
    Slot,
    Group,
}

impl Flavor {
    fn of(kind: ObjectKind) -> Flavor {
        if kind == ObjectKind::Group {
            Flavor::Group
        } else {
            Flavor::Slot
        }
    }

    fn key(self) -> &'static str {
        match self {
            Flavor::Slot => "m",
            Flavor::Group => "g",
        }
    }
}

/// Where received messages go.
enum Sink {
    Slot(MailslotWriter),
    Group(BroadcastSender),
}

impl Sink {
    fn open(flavor: Flavor, name: &str, opts: &MailslotOptions) -> Result<Sink, Error> {
        Ok(match flavor {
            Flavor::Slot => Sink::Slot(MailslotWriter::open_with(name, opts)?),
            Flavor::Group => Sink::Group(BroadcastSender::open_with(name, opts)?),
        })
    }

    fn write(&mut self, msg: &[u8]) -> Result<(), Error> {
        match self {
            Sink::Slot(w) => w.write(msg),
            Sink::Group(g) => g.send(msg),
        }
    }

    fn report_lost(&self, n: u64) {
        if let Sink::Slot(w) = self {
            w.report_lost(n);
        }
    }
}
/// Largest message of a `//*/` proxy (the far mailslots' sizes are not known).
const ALL_MAX_MESSAGE: usize = culvert::mailslot::DEFAULT_MAX_MESSAGE_SIZE;

/// The mailslot state of one bridge.
#[derive(Default)]
pub(crate) struct Slots {
    /// Sending side: proxy name by (flavor, target, name).
    proxies: Mutex<HashMap<(Flavor, String, String), String>>,
    /// Receiving side.
    rx: Mutex<Receiving>,
}

#[derive(Default)]
struct Receiving {
    /// Writers into local mailslots and groups, by flavor and name.
    writers: HashMap<(Flavor, String), Sink>,
    /// Per stream (`sender/stream/name`): next expected sequence number and the
    /// sender's proxy drops already counted.
    streams: HashMap<String, (u64, u64)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mailslot_options(inner: &Inner) -> MailslotOptions {
    match &inner.cfg.root {
        Some(r) => MailslotOptions::default().root(r),
        None => MailslotOptions::default(),
    }
}

/// Declares the receiving subscribers; they live as long as the bridge.
pub(crate) fn declare(inner: &Arc<Inner>) -> Result<Vec<Box<dyn Send + Sync>>, BridgeError> {
    let mut out: Vec<Box<dyn Send + Sync>> = Vec::new();
    for key in [
        format!("{}/m/h/{}/*/*/*", inner.prefix, inner.cfg.host),
        format!("{}/m/all/*/*/*", inner.prefix),
        format!("{}/g/h/{}/*/*/*", inner.prefix, inner.cfg.host),
        format!("{}/g/all/*/*/*", inner.prefix),
    ] {
        let weak = Arc::downgrade(inner);
        let sub = inner
            .session
            .declare_subscriber(key)
            .callback(move |sample| receive(&weak, &sample))
            .wait()
            .map_err(|e| BridgeError::Zenoh(format!("mailslot subscriber: {e}")))?;
        out.push(Box::new(sub));
    }
    Ok(out)
}

/// One sample from the network into a local mailslot.
fn receive(weak: &Weak<Inner>, sample: &Sample) {
    let Some(inner) = weak.upgrade() else { return };
    let key = sample.key_expr().as_str();
    let Some(rest) = key
        .strip_prefix(inner.prefix.as_str())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (flavor, all, name, sender, stream) = match parts[..] {
        [f, "h", _, name, sender, stream] => (f, false, name, sender, stream),
        [f, "all", name, sender, stream] => (f, true, name, sender, stream),
        _ => return,
    };
    let flavor = match flavor {
        "m" => Flavor::Slot,
        "g" => Flavor::Group,
        _ => return,
    };
    if !(inner.cfg.is_exported(name) || all && sender == inner.cfg.host) {
        return;
    }
    let bytes = sample.payload().to_bytes();
    // A malformed frame is ignored: it carries no sequence number to account for.
    let Ok(frame) = Frame::decode(&bytes) else {
        return;
    };
    let mut rx = lock(&inner.slots.rx);
    let rx = &mut *rx;
    let sink_key = (flavor, name.to_string());
    if !rx.writers.contains_key(&sink_key) {
        match Sink::open(flavor, name, &mailslot_options(&inner)) {
            Ok(w) => {
                rx.writers.insert(sink_key.clone(), w);
            }
            // No such mailslot or group here: nobody to deliver to or to count for.
            Err(_) => return,
        }
    }
    let Some(w) = rx.writers.get_mut(&sink_key) else {
        return;
    };
    let id = format!("{}/{sender}/{stream}/{name}", flavor.key());
    let state = rx.streams.entry(id).or_insert((frame.seq, 0));
    match frame.kind {
        Kind::Slot => {
            if frame.seq < state.0 {
                return; // Already counted as lost.
            }
            w.report_lost(frame.seq - state.0);
            state.0 = frame.seq + 1;
            match w.write(frame.body) {
                Ok(()) | Err(Error::Full) => {}
                Err(Error::MessageTooLarge { .. }) => w.report_lost(1),
                Err(_) => {
                    rx.writers.remove(&sink_key);
                }
            }
        }
        Kind::Lost if frame.body.len() == 8 => {
            if frame.seq > state.0 {
                w.report_lost(frame.seq - state.0);
                state.0 = frame.seq;
            }
            let mut d = [0u8; 8];
            d.copy_from_slice(frame.body);
            let drops = u64::from_le_bytes(d);
            if drops > state.1 {
                w.report_lost(drops - state.1);
                state.1 = drops;
            }
        }
        _ => {}
    }
}

/// The redirector's side of `MailslotWriter::open("//host/name")`: the proxy's name.
pub(crate) fn redirect(inner: &Arc<Inner>, req: &Request) -> Result<String, Error> {
    if req.host == inner.cfg.host {
        return Ok(req.name.clone());
    }
    let flavor = Flavor::of(req.kind);
    let fk = flavor.key();
    let target = (flavor, req.host.clone(), req.name.clone());
    if let Some(p) = lock(&inner.slots.proxies).get(&target) {
        return Ok(p.clone());
    }
    let (key_base, max) = if req.host == ALL_HOSTS {
        (
            format!("{}/{fk}/all/{}", inner.prefix, req.name),
            ALL_MAX_MESSAGE,
        )
    } else {
        // Ask the far host: is it exported, does it exist, how large may messages be.
        let id = inner.next_id();
        let reply = crate::open::ask(inner, req, id)?;
        if reply.status != Status::Ok {
            let full = format!("//{}/{}", req.host, req.name);
            return Err(reply.into_result(&full).err().unwrap_or(Error::PeerDied));
        }
        let max = (reply.detail as usize).clamp(1, culvert::mailslot::MAX_MESSAGE_SIZE_LIMIT);
        (
            format!("{}/{fk}/h/{}/{}", inner.prefix, req.host, req.name),
            max,
        )
    };
    let mut proxies = lock(&inner.slots.proxies);
    if let Some(p) = proxies.get(&target) {
        return Ok(p.clone());
    }
    let stream = inner.next_id();
    let proxy = format!("culvert.remote.{}.m{stream}", std::process::id());
    let popts = mailslot_options(inner)
        .max_message_size(max)
        .read_timeout(HEARTBEAT);
    let slot = match flavor {
        Flavor::Slot => Mailslot::create(&proxy, &popts.capacity(PROXY_CAPACITY))?,
        Flavor::Group => culvert::mailslot::join(&proxy, &popts.capacity(GROUP_PROXY_CAPACITY))?,
    };
    let key = format!("{key_base}/{}/{stream}", inner.cfg.host);
    let congestion = match flavor {
        Flavor::Slot => CongestionControl::Drop,
        Flavor::Group => CongestionControl::Block,
    };
    let data = inner
        .session
        .declare_publisher(key.clone())
        .congestion_control(congestion)
        .express(true)
        .wait()
        .map_err(|e| Error::Io(std::io::Error::other(format!("zenoh: {e}"))))?;
    let control = inner
        .session
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(|e| Error::Io(std::io::Error::other(format!("zenoh: {e}"))))?;
    let weak = Arc::downgrade(inner);
    std::thread::spawn(move || pump(&weak, slot, &data, &control));
    proxies.insert(target, proxy.clone());
    Ok(proxy)
}

/// Proxy → network, until the bridge stops.
fn pump(
    weak: &Weak<Inner>,
    mut slot: Mailslot,
    data: &zenoh::pubsub::Publisher<'static>,
    control: &zenoh::pubsub::Publisher<'static>,
) {
    let mut buf = vec![0u8; slot.max_message_size()];
    let (mut seq, mut drops) = (0u64, 0u64);
    let mut reported = (u64::MAX, u64::MAX);
    let mut next_beat = Instant::now();
    loop {
        match weak.upgrade() {
            Some(inner) if !inner.stopping.load(Ordering::Acquire) => {}
            _ => return,
        }
        match slot.read(&mut buf) {
            Ok(n) => {
                // A dropped put is a gap the far side counts.
                let _ = data
                    .put(Frame::new(Kind::Slot, seq, &buf[..n]).encode())
                    .wait();
                seq += 1;
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            // The pump fell a whole proxy ring behind: see the module doc.
            Err(Error::Overrun { .. }) => {}
            Err(_) => return,
        }
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + HEARTBEAT;
            if let Ok(info) = slot.info() {
                drops = info.dropped;
            }
            if (seq, drops) != reported {
                reported = (seq, drops);
                let _ = control
                    .put(Frame::new(Kind::Lost, seq, &drops.to_le_bytes()).encode())
                    .wait();
            }
        }
    }
}

/// The serving side of a `//host/name` mailslot open: checks that the mailslot
/// exists and tells its largest message.
pub(crate) fn serve_open(inner: &Arc<Inner>, req: &Request) -> Result<(Reply, Then), Error> {
    let opts = mailslot_options(inner);
    let max = match Sink::open(Flavor::of(req.kind), &req.name, &opts)? {
        Sink::Slot(w) => w.max_message_size(),
        Sink::Group(g) => g.max_message_size(),
    };
    let reply = Reply {
        status: Status::Ok,
        detail: max as u64,
        text: b"ok".to_vec(),
    };
    Ok((reply, Box::new(|| {})))
}
