//! The body of the `port_handshake_hostile` fuzz target: a port server and its clients
//! through the connect handshake, driven by an honest script while the same input
//! plays a hostile peer scribbling on the port's shared memory.
//!
//! Byte 0 sets `max_connections` (2..=4); up to 64 operations follow, 4 bytes each (op
//! and arguments), a scribble 8 more. The server and every client live in this process,
//! in a namespace directory of their own (one per input, under `$TMPDIR`, else
//! `/dev/shm`, removed after it). Honest
//! calls: a client connects on a helper thread (a payload of input-chosen length) while
//! this thread `listen`s and accepts (with an answer payload, or one too large),
//! rejects (with a reason) or drops the request; a client connects with no server
//! listening (`Deadline::now()` or 1 ms), or to a port that does not exist; clients
//! drop; the server `maintain`s, `try_listen`s and `listen`s for 200 µs. Before the
//! first scribble the server `maintain`s before each helper-thread connect, so which
//! slot a client takes does not race the teardown of a departed one. Scribbles store
//! arbitrary, nudged, zero, this process's or a dead process's values into a connection
//! slot's words (`state`, `epoch`, `client`, `name_len`, name words, notifier), write a
//! slot's name to name a decoy section and post it as a request, forge a whole request
//! (a connection section the peer made, its `ConnHeader` words from the input, with or
//! without its rings), store into any word of the port header, or store into a word of
//! the next real client's `ConnHeader` (`magic`, `payload_max`, `connect_len`,
//! `answer_len`) once its request is posted and before the server reviews it.
//!
//! The oracle:
//! * Until the first scribble a model of the slots (holder, state, epoch) predicts
//!   every result: a connect takes the lowest free slot; the server's request carries
//!   the client's payload and pid; an accepted client gets the accept payload, a
//!   rejected one `Rejected` with the reason (empty for a dropped request), one whose
//!   accept failed (`MessageTooLarge` to the server) `Closed`; `Busy` at once when every
//!   slot holds a live client; `Timeout` when nobody answers; `NotFound` for no port;
//!   `try_listen` is `WouldBlock` and `listen` `Timeout` with no request. After every
//!   call the slot words match the model: a free slot has `client` 0 and its epoch
//!   moved once per free; a dropped client's slot is `CLOSING` until the server
//!   maintains, then free.
//! * After it, every call returns within 1 s (`CALL_LIMIT`) a value or a typed error, never
//!   panics; a request's payload fits `CONNECT_PAYLOAD_MAX`.
//! * Always: the decoy sections (one outside the port's connection-name prefix, one of
//!   another port's prefix, one inside the prefix but of another kind) survive: the
//!   server never unlinks a section it has not verified as the slot client's
//!   connection section of this port. Two more decoys outside the prefix are never
//!   marked ready (their creator, this process, lives): a server that opened one would
//!   wait for it for seconds, past 1 s (`CALL_LIMIT`).

use std::time::{Duration, Instant};

use culvert_section::{Region, Section, SectionKind, SectionOptions};
use culvert_sync::atomic::{AtomicU64, Ordering, StaticCounter};
use culvert_sync::{Deadline, ProcessIdentity};

use crate::fuzz_script::{timed, Input, Root};
use crate::port::layout::{
    at, put, ConnHeader, ConnSlot, CONN_MAGIC, SLOT_ACCEPTED, SLOT_CLOSING, SLOT_FREE,
    SLOT_REQUESTED,
};
use crate::port::server::{conn_prefix, OBJ_CONN};
use crate::port::{PortClient, PortOptions, PortServer, CONNECT_PAYLOAD_MAX};
use crate::Error;

const MAX_OPS: usize = 64;
/// How long a client and the listening server wait, before and after the first
/// scribble.
const CLEAN_WAIT: Duration = Duration::from_millis(500);
const HOSTILE_WAIT: Duration = Duration::from_millis(20);
/// Helper-thread connects an input may make after the first scribble.
const MAX_HOSTILE_CONNECTS: u32 = 6;
const SLOT: usize = std::mem::size_of::<ConnSlot>();

static NAMES: StaticCounter = StaticCounter::new();

fn pattern(tag: u64, len: usize) -> Vec<u8> {
    let byte = |i| (tag << 24 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
    (0..len).map(|i| byte(i) as u8).collect()
}

/// A slot as the model sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Model {
    #[default]
    Free,
    Accepted,
    Closing,
}

/// How the server answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Accept,
    Reject,
    Drop,
    AcceptTooLarge,
}

struct Run {
    name: String,
    opts: PortOptions,
    n: usize,
    server: PortServer,
    /// The peer's own mapping of the port section: header and slots.
    port: Region,
    slots: Region,
    _peer: Section,
    clients: Vec<(PortClient, usize)>,
    model: Vec<(Model, u32)>,
    /// Sections the server must never remove.
    decoys: Vec<(String, SectionOptions)>,
    /// The decoys never marked ready (held, so they stay so).
    _unready: Vec<Section>,
    /// `[me, dead, dead]`.
    ids: [u64; 3],
    /// A `ConnHeader` word (index) and value for the next helper-thread connect.
    conn_scribble: Option<(usize, u64)>,
    tags: u64,
    forged: u64,
    scribbled: bool,
    hostile_connects: u32,
}

impl Run {
    fn slot(&self, i: usize) -> &ConnSlot {
        at::<ConnSlot>(&self.slots, i * SLOT).expect("slot inside the table")
    }

    fn wait(&self) -> Duration {
        [CLEAN_WAIT, HOSTILE_WAIT][usize::from(self.scribbled)]
    }

    /// Before any scribble: the slot words match the model.
    fn check(&self) {
        for (i, &(m, epoch)) in self.model.iter().enumerate() {
            let s = self.slot(i);
            let (state, client) = match m {
                Model::Free => (SLOT_FREE, 0),
                Model::Accepted => (SLOT_ACCEPTED, self.ids[0]),
                Model::Closing => (SLOT_CLOSING, self.ids[0]),
            };
            let got = (
                s.state.load(Ordering::Acquire),
                s.client.load(Ordering::Acquire),
                s.epoch.load(Ordering::Acquire),
            );
            assert_eq!(got, (state, client, epoch), "slot {i} ({m:?})");
        }
    }

    /// The decoys are all still there.
    fn check_decoys(&self) {
        for (name, so) in &self.decoys {
            assert!(Section::inspect(name, so).is_ok(), "decoy {name} removed");
        }
    }

    /// The model of a server `maintain`: departed clients' slots are free again.
    fn maintained(&mut self) {
        for (m, epoch) in &mut self.model {
            if *m == Model::Closing {
                *m = Model::Free;
                *epoch = epoch.wrapping_add(1);
            }
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.model.iter().position(|&(m, _)| m == Model::Free)
    }

    /// A client connects on a helper thread while this thread listens and answers.
    fn connect(&mut self, how: u8, len: u8, answer_len: u8) {
        if self.scribbled {
            if self.hostile_connects >= MAX_HOSTILE_CONNECTS {
                return;
            }
            self.hostile_connects += 1;
        } else {
            timed("maintain", || self.server.maintain());
            self.maintained();
            if self.free_slot().is_none() {
                return self.connect_alone(0);
            }
        }
        let answer = [
            Answer::Accept,
            Answer::Reject,
            Answer::Drop,
            Answer::AcceptTooLarge,
        ][usize::from(how) % 4];
        self.tags += 1;
        let payload = pattern(self.tags, usize::from(len) * 3);
        let reply = match answer {
            Answer::AcceptTooLarge => vec![7; CONNECT_PAYLOAD_MAX + 1],
            _ => pattern(!self.tags, usize::from(answer_len)),
        };
        let wait = self.wait();
        let conn_scribble = self.conn_scribble.take();
        let (name, opts) = (&self.name, &self.opts);
        let (client, answered) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| {
                timed("connect", || {
                    PortClient::connect_with(name, &payload, Deadline::after(wait), opts)
                })
            });
            if let Some((field, value)) = conn_scribble {
                self.scribble_conn(field, value, wait);
            }
            let request = timed("listen", || self.server.listen(Deadline::after(wait)));
            let answered = match request {
                Ok(ref r) => {
                    assert!(r.payload.len() <= CONNECT_PAYLOAD_MAX);
                    let r = (r.payload.clone(), r.pid);
                    let req = request.expect("a request");
                    Some((
                        r,
                        timed("answer", || match answer {
                            Answer::Accept | Answer::AcceptTooLarge => {
                                req.accept(&reply).map(|_| ())
                            }
                            Answer::Reject => req.reject(&reply),
                            Answer::Drop => {
                                drop(req);
                                Ok(())
                            }
                        }),
                    ))
                }
                Err(e) => {
                    assert!(self.scribbled, "listen gave {e:?}");
                    assert!(
                        matches!(e, Error::Timeout | Error::Corrupted { .. }),
                        "listen gave {e:?}"
                    );
                    None
                }
            };
            let client = match helper.join() {
                Ok(c) => c,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (client, answered)
        });
        if self.scribbled {
            if let Err(e) = &client {
                assert!(
                    matches!(
                        e,
                        Error::Timeout
                            | Error::Busy { .. }
                            | Error::Rejected { .. }
                            | Error::Closed
                            | Error::NotFound { .. }
                            | Error::Corrupted { .. }
                            | Error::PeerDied
                    ),
                    "connect gave {e:?}"
                );
            }
            if let Ok((c, _)) = client {
                self.clients.push((c, usize::MAX));
            }
            return;
        }
        let i = self.free_slot().expect("a free slot");
        let (seen, answered) = answered.expect("the server saw the request");
        assert_eq!(seen, (payload, std::process::id()), "request");
        match answer {
            Answer::Accept => {
                answered.expect("accept");
                let (c, got) = client.expect("connect");
                assert!(got == reply, "accept payload");
                self.clients.push((c, i));
                self.model[i].0 = Model::Accepted;
            }
            Answer::Reject | Answer::Drop => {
                answered.expect("reject");
                let want = [reply, Vec::new()][usize::from(answer == Answer::Drop)].clone();
                match client {
                    Err(Error::Rejected { reason }) => assert!(reason == want, "reason"),
                    other => panic!("rejected connect gave {:?}", other.map(|_| ())),
                }
                self.model[i].1 = self.model[i].1.wrapping_add(1);
            }
            Answer::AcceptTooLarge => {
                assert!(
                    matches!(answered, Err(Error::MessageTooLarge { .. })),
                    "{answered:?}"
                );
                assert!(
                    matches!(client, Err(Error::Closed)),
                    "connect gave {:?}",
                    client.map(|_| ())
                );
                self.model[i].1 = self.model[i].1.wrapping_add(1);
            }
        }
    }

    /// A client connects with nobody listening: at once (`how` 0), for 1 ms (1), or to
    /// a port that does not exist (2, 3).
    fn connect_alone(&mut self, how: u8) {
        let (deadline, name) = match how % 4 {
            0 => (Deadline::now(), self.name.clone()),
            1 => (Deadline::after(Duration::from_millis(1)), self.name.clone()),
            _ => (Deadline::now(), format!("{}x", self.name)),
        };
        let got = timed("connect", || {
            PortClient::connect_with(&name, b"hello", deadline, &self.opts)
        });
        if self.scribbled {
            if let Err(e) = &got {
                assert!(
                    matches!(
                        e,
                        Error::Timeout
                            | Error::Busy { .. }
                            | Error::Closed
                            | Error::NotFound { .. }
                            | Error::Corrupted { .. }
                            | Error::PeerDied
                            | Error::Rejected { .. }
                    ),
                    "connect gave {e:?}"
                );
            }
            if let Ok((c, _)) = got {
                self.clients.push((c, usize::MAX));
            }
            return;
        }
        let got = got.map(|_| ());
        if how % 4 >= 2 {
            assert!(
                matches!(got, Err(Error::NotFound { .. })),
                "connect gave {got:?}"
            );
            return;
        }
        match self.free_slot() {
            Some(i) => {
                assert!(matches!(got, Err(Error::Timeout)), "connect gave {got:?}");
                self.model[i].1 = self.model[i].1.wrapping_add(1);
            }
            None => assert!(
                matches!(got, Err(Error::Busy { .. })),
                "connect gave {got:?}"
            ),
        }
    }

    fn drop_client(&mut self, sel: u8) {
        if self.clients.is_empty() {
            return;
        }
        let (c, i) = self.clients.remove(usize::from(sel) % self.clients.len());
        timed("drop client", || drop(c));
        if !self.scribbled {
            self.model[i].0 = Model::Closing;
        }
    }

    /// `try_listen` (`how` 0) or a 200 µs `listen`: no request is waiting (before any
    /// scribble); both tear down departed clients' slots.
    fn listen(&mut self, how: u8) {
        let got = timed("listen", || match how % 2 {
            0 => self.server.try_listen(),
            _ => self
                .server
                .listen(Deadline::after(Duration::from_micros(200))),
        });
        match got {
            Err(Error::WouldBlock) if how % 2 == 0 => {}
            Err(Error::Timeout) if how % 2 == 1 => {}
            Err(e) => assert!(
                self.scribbled && matches!(e, Error::Corrupted { .. }),
                "listen gave {e:?}"
            ),
            Ok(req) => {
                assert!(self.scribbled, "listen found a request");
                assert!(req.payload.len() <= CONNECT_PAYLOAD_MAX);
                let r = timed("reject", || req.reject(b"no"));
                assert!(
                    r.is_ok() || matches!(r, Err(Error::Corrupted { .. } | Error::Section(_))),
                    "reject gave {r:?}"
                );
            }
        }
        if !self.scribbled {
            self.maintained();
        }
    }

    /// The peer makes a connection section of its own under this port's prefix,
    /// `ConnHeader` words from `v`, rings and heap with `how` bit 6, and posts it as a
    /// request in a free slot as `client` (this process or a dead one).
    fn forge(&mut self, how: u8, v: u64) {
        self.forged += 1;
        let name = format!("{}f{}", conn_prefix(&self.name), self.forged);
        let mut so = self.opts.section_options();
        so.kind = SectionKind::PortConnection;
        let Ok(mut s) = Section::create(&name, 1 << 18, &so) else {
            return;
        };
        let conn_len = std::mem::size_of::<ConnHeader>() + 2 * CONNECT_PAYLOAD_MAX;
        let Ok(conn) = s.add_object("conn", OBJ_CONN, conn_len as u64, 128) else {
            return;
        };
        let magic = [CONN_MAGIC, v][usize::from(how & 1)];
        let payload_max = [CONNECT_PAYLOAD_MAX as u64, v >> 8][usize::from(how & 2 != 0)];
        let connect_len = [v % 300, v >> 16][usize::from(how & 4 != 0)];
        let hdr = ConnHeader {
            magic: AtomicU64::new(magic),
            payload_max: AtomicU64::new(payload_max),
            connect_len: AtomicU64::new(connect_len),
            answer_len: AtomicU64::new(v >> 32),
        };
        if put(&conn, 0, hdr).is_err() {
            return;
        }
        if how & 0x40 != 0 {
            let _ = s.add_object("requests", crate::port::server::OBJ_REQUESTS, 4096, 128);
            let _ = s.add_object("replies", crate::port::server::OBJ_REPLIES, 4096, 128);
        }
        if s.mark_ready().is_err() {
            return;
        }
        let client = [self.ids[0], self.ids[1]][usize::from(how & 8 != 0)];
        self.post(&name, client, usize::from(how >> 4));
        // Dropping the published section leaves it at its name, for the server to find.
        drop(s);
    }

    /// Claims the first slot from `start` whose `client` is 0 as `client`, names `name`
    /// in it and posts it.
    fn post(&self, name: &str, client: u64, start: usize) {
        for k in 0..self.n {
            let s = self.slot((start + k) % self.n);
            if s.try_claim(client) {
                s.post_request(name.as_bytes());
                return;
            }
        }
    }

    /// Once a real client's request is posted (waiting up to `wait`), the peer opens the
    /// connection section its slot names and stores `value` in `ConnHeader` word
    /// `field`.
    fn scribble_conn(&self, field: usize, value: u64, wait: Duration) {
        let until = Instant::now() + wait;
        let name = loop {
            let found = (0..self.n).find_map(|i| {
                let s = self.slot(i);
                (s.state.load(Ordering::Acquire) == SLOT_REQUESTED)
                    .then(|| s.name())
                    .flatten()
            });
            match found {
                Some(name) if !name.starts_with(&format!("{}f", conn_prefix(&self.name))) => {
                    break name
                }
                _ if Instant::now() >= until => return,
                _ => std::thread::sleep(Duration::from_micros(50)),
            }
        };
        let mut so = self.opts.section_options();
        so.expect_kind = Some(SectionKind::PortConnection);
        // The slot may name a decoy never marked ready: the peer does not wait for it.
        so.open_timeout = Duration::ZERO;
        let Ok(section) = Section::open(&name, &so) else {
            return;
        };
        if let Some(w) = section
            .object("conn")
            .ok()
            .as_ref()
            .and_then(|c| c.view::<AtomicU64>(field % 4 * 8))
        {
            w.store(value, Ordering::Release);
        }
    }

    /// The peer's scribbles: `kind` 0 a slot word, 1 a decoy named in a slot and
    /// posted, 2 a port header word, 3 a forged request, 4 the next client's
    /// `ConnHeader`.
    fn scribble(&mut self, kind: u8, how: u8, at_: u8, input: &mut Input<'_>) -> Option<()> {
        let v = input.u64()?;
        if !self.scribbled {
            self.check();
            self.scribbled = true;
        }
        let i = usize::from(at_) % self.n;
        let nudged = |cur: u64| match how % 4 {
            0 => v,
            1 => cur.wrapping_add(1 + v % 4),
            2 => cur.wrapping_sub(1 + v % 4),
            _ => 0,
        };
        match kind % 5 {
            0 => {
                let s = self.slot(i);
                match (how >> 2) % 8 {
                    0 => s.state.store(
                        nudged(u64::from(s.state.load(Ordering::Relaxed))) as u32 % 10,
                        Ordering::Release,
                    ),
                    1 => s.epoch.store(
                        nudged(u64::from(s.epoch.load(Ordering::Relaxed))) as u32,
                        Ordering::Release,
                    ),
                    2 => s
                        .client
                        .store(self.ids[(v % 3) as usize], Ordering::Release),
                    3 => s
                        .client
                        .store(nudged(s.client.load(Ordering::Relaxed)), Ordering::Release),
                    4 => s.name_len.store((v % 260) as u32, Ordering::Release),
                    5 => s.name[(v >> 32) as usize % s.name.len()]
                        .store(nudged(0), Ordering::Release),
                    6 => s.state.store(SLOT_REQUESTED, Ordering::Release),
                    _ => {
                        // Any word of the slot, the notifier included.
                        if let Some(w) = self
                            .slots
                            .view::<AtomicU64>(i * SLOT + (v as usize % 32) * 8)
                        {
                            w.store(nudged(w.load(Ordering::Relaxed)), Ordering::Release);
                        }
                    }
                }
            }
            1 => {
                let (name, _) = &self.decoys[usize::from(how) % self.decoys.len()];
                let s = self.slot(i);
                s.set_name(name.as_bytes());
                if how & 0x80 != 0 {
                    s.client
                        .store(self.ids[(v % 3) as usize], Ordering::Release);
                }
                s.state.store(
                    [SLOT_REQUESTED, SLOT_CLOSING, 7][(v >> 8) as usize % 3],
                    Ordering::Release,
                );
            }
            2 => {
                if let Some(w) = self.port.view::<AtomicU64>(usize::from(at_) % 32 * 8) {
                    w.store(nudged(w.load(Ordering::Relaxed)), Ordering::Release);
                }
            }
            3 => self.forge(how, v),
            _ => self.conn_scribble = Some((usize::from(how), v)),
        }
        Some(())
    }

    /// One operation, `[op, a, b, c]`: `op % 12` 0–2 connect and answer, 3 connect
    /// with nobody listening, 4 drops a client, 5 `maintain`, 6 listens, 7–11 scribble.
    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let [op, a, b, c] = input.bytes()?;
        match op % 12 {
            0..=2 => self.connect(a, b, c),
            3 => self.connect_alone(a),
            4 => self.drop_client(a),
            5 => {
                timed("maintain", || self.server.maintain());
                if !self.scribbled {
                    self.maintained();
                }
            }
            6 => self.listen(a),
            _ => return self.scribble(a, b, c, input),
        }
        Some(())
    }

    /// Drops every client; the server maintains: before any scribble every slot is then
    /// free. The decoys are still there after the server closed.
    fn finish(mut self) {
        for (c, i) in std::mem::take(&mut self.clients) {
            timed("drop client", || drop(c));
            if !self.scribbled {
                self.model[i].0 = Model::Closing;
            }
        }
        timed("maintain", || self.server.maintain());
        if !self.scribbled {
            self.maintained();
            self.check();
        }
        let Run { server, decoys, .. } = self;
        timed("close", || drop(server));
        for (name, so) in &decoys {
            assert!(Section::inspect(name, so).is_ok(), "decoy {name} removed");
        }
    }
}

/// A connection section `name` never marked ready, as a decoy.
fn unready(name: &str, opts: &PortOptions) -> (String, SectionOptions, Section) {
    let mut so = opts.section_options();
    so.kind = SectionKind::PortConnection;
    let s = Section::create(name, 1 << 16, &so).expect("unready decoy");
    so.expect_kind = None;
    (name.to_string(), so, s)
}

/// A decoy section `name` of `kind`, with a valid connection header.
fn decoy(name: &str, kind: SectionKind, opts: &PortOptions) -> (String, SectionOptions) {
    let mut so = opts.section_options();
    so.kind = kind;
    let mut s = Section::create(name, 1 << 18, &so).expect("decoy");
    let conn_len = std::mem::size_of::<ConnHeader>() + 2 * CONNECT_PAYLOAD_MAX;
    let conn = s
        .add_object("conn", OBJ_CONN, conn_len as u64, 128)
        .expect("decoy conn");
    let hdr = ConnHeader {
        magic: AtomicU64::new(CONN_MAGIC),
        payload_max: AtomicU64::new(CONNECT_PAYLOAD_MAX as u64),
        connect_len: AtomicU64::new(0),
        answer_len: AtomicU64::new(0),
    };
    put(&conn, 0, hdr).expect("decoy header");
    s.mark_ready().expect("decoy ready");
    so.expect_kind = None;
    (name.to_string(), so)
}

/// Runs the script in `data` against a fresh port: honest connects (accepted,
/// rejected, dropped, timed out, refused as busy), disconnects and server housekeeping,
/// interleaved with a hostile peer's scribbles on connection slots, the port header and
/// connection headers, and forged requests. Panics when a result differs from the
/// model before the first scribble, or, after it, when a call panics, takes a second or
/// gives an error of a kind it may not; and whenever a decoy section is removed.
pub fn handshake_hostile(data: &[u8]) {
    let mut input = Input(data);
    let Some([first]) = input.bytes() else {
        return;
    };
    let n = 2 + usize::from(first) % 3;
    let k = NAMES.next();
    let root = Root::new("port", k);
    let opts = PortOptions::new()
        .max_message(256)
        .inline_max(256)
        .view_heap_size(4096)
        .max_connections(n)
        .request_ring_capacity(2)
        .root(&root.0);
    let name = format!("p{k}");
    let server = timed("create", || PortServer::create(&name, &opts)).expect("port");
    let mut so = opts.section_options();
    so.expect_kind = Some(SectionKind::Port);
    let peer = Section::open(&name, &so).expect("peer mapping");
    let (port, slots) = (
        peer.object("port").expect("port"),
        peer.object("slots").expect("slots"),
    );
    let mut decoys = vec![
        decoy(&format!("{name}.d1"), SectionKind::PortConnection, &opts),
        decoy(&format!("q{k}.c1"), SectionKind::PortConnection, &opts),
        decoy(&format!("{}w", conn_prefix(&name)), SectionKind::Raw, &opts),
    ];
    let mut held = Vec::new();
    for d in [format!("{name}.e1"), format!("q{k}.c2")] {
        let (d, so, s) = unready(&d, &opts);
        decoys.push((d, so));
        held.push(s);
    }
    let id = ProcessIdentity::me();
    let dead = |d| ProcessIdentity::from_parts(id.pid, id.start_time.wrapping_add(d)).packed();
    let mut run = Run {
        name,
        opts,
        n,
        server,
        port,
        slots,
        _peer: peer,
        clients: Vec::new(),
        model: vec![(Model::Free, 0); n],
        decoys,
        _unready: held,
        ids: [crate::port::me(), dead(1), dead(2)],
        conn_scribble: None,
        tags: 0,
        forged: 0,
        scribbled: false,
        hostile_connects: 0,
    };
    for _ in 0..MAX_OPS {
        if run.step(&mut input).is_none() {
            break;
        }
        if !run.scribbled {
            run.check();
        }
        run.check_decoys();
    }
    run.finish();
    drop(root);
}
