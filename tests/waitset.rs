//! `WaitSet` over endpoints of every kind, across real processes: it reports exactly
//! the ready ones (data, a message, a broadcast, a connect request, a closed peer, a
//! peer killed with SIGKILL), honours its deadline, and lets one thread serve a port's
//! connects and calls from several client processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use culvert::mailslot::{self, Mailslot, MailslotOptions, MailslotWriter};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{PortClient, PortOptions, PortServer, ServerEvent};
use culvert::sync::LIVENESS_RECHECK_INTERVAL;
use culvert::{Error, WaitSet, Waitable};
use culvert_testkit::{
    cross_test, role, role_arg, role_arg_parsed, wait_until, ChildCommand, TempRoot,
};

/// Connected pipes (parent holds the server ends, the child the client ends).
const PIPES: usize = 60;
/// Mailslots the parent reads.
const SLOTS: usize = 20;
/// Pipe servers nobody connects to at first.
const SERVERS: usize = 10;
/// Broadcast groups the parent joined.
const GROUPS: usize = 9;
/// Everything in the set: the above and one port server.
const ENDPOINTS: usize = PIPES + SLOTS + SERVERS + GROUPS + 1;

/// Index layout of the set.
const SLOT0: usize = PIPES;
const SERVER0: usize = SLOT0 + SLOTS;
const GROUP0: usize = SERVER0 + SERVERS;
const PORT: usize = GROUP0 + GROUPS;

/// What the child does once told to, and so what must become ready.
const WRITTEN_PIPES: [usize; 3] = [3, 17, 42];
const CLOSED_PIPE: usize = 50;
const WRITTEN_SLOT: usize = 5;
const CONNECTED_SERVER: usize = 7;
const BROADCAST_GROUP: usize = 2;

fn root_of_child() -> PathBuf {
    PathBuf::from(role_arg("ROOT"))
}

fn pipe_opts(root: &Path) -> PipeOptions {
    PipeOptions::default()
        .mode(PipeMode::Message)
        .root(root)
        .max_instances(1)
}

fn slot_opts(root: &Path) -> MailslotOptions {
    MailslotOptions::new().root(root)
}

fn port_opts(root: &Path) -> PortOptions {
    PortOptions::default().root(root)
}

/// Waits until `path` exists.
fn await_file(path: &Path) {
    wait_until(&format!("{path:?}"), Duration::from_secs(30), || {
        path.exists()
    });
}

/// The child: connects every pipe, then on `go` writes, closes, connects and
/// broadcasts as listed above, and waits to be killed.
fn child_acts() {
    let root = root_of_child();
    let long = Duration::from_secs(30);
    let mut ends: Vec<Option<PipeEnd>> = (0..PIPES)
        .map(|i| Some(PipeEnd::connect_with(&format!("p{i}"), long, &pipe_opts(&root)).unwrap()))
        .collect();
    std::fs::write(root.join("connected"), b"").unwrap();
    await_file(&root.join("go"));
    for i in WRITTEN_PIPES {
        ends[i].as_mut().unwrap().write_message(b"ready").unwrap();
    }
    drop(ends[CLOSED_PIPE].take());
    let mut w = MailslotWriter::open_with(&format!("m{WRITTEN_SLOT}"), &slot_opts(&root)).unwrap();
    w.write(b"slot").unwrap();
    mailslot::broadcast_with(&format!("g{BROADCAST_GROUP}"), b"all", &slot_opts(&root)).unwrap();
    // Both connects wait for an answer the parent never gives: run them aside.
    let r = root.clone();
    std::thread::spawn(move || {
        let _end = PipeEnd::connect_with(&format!("s{CONNECTED_SERVER}"), long, &pipe_opts(&r));
        std::thread::sleep(long);
    });
    let r = root.clone();
    std::thread::spawn(move || {
        let _ = PortClient::connect_with("port", b"hello", long, &port_opts(&r));
    });
    std::fs::write(root.join("acted"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

/// The parent's endpoints of every kind, and the set they are waited on with.
struct Endpoints {
    set: WaitSet,
    pipes: Vec<PipeEnd>,
    slots: Vec<Mailslot>,
    servers: Vec<PipeServer>,
    groups: Vec<Mailslot>,
    port: PortServer,
}

impl Endpoints {
    /// One `wait` over every endpoint; the ready indices (pipes, then slots, servers,
    /// groups, and the port last).
    fn ready(&mut self, deadline: Duration) -> Result<BTreeSet<usize>, culvert::sync::Timeout> {
        let mut all: Vec<&mut dyn Waitable> = Vec::with_capacity(ENDPOINTS);
        all.extend(self.pipes.iter_mut().map(|e| e as &mut dyn Waitable));
        all.extend(self.slots.iter_mut().map(|e| e as &mut dyn Waitable));
        all.extend(self.servers.iter_mut().map(|e| e as &mut dyn Waitable));
        all.extend(self.groups.iter_mut().map(|e| e as &mut dyn Waitable));
        all.push(&mut self.port);
        self.set
            .wait(&mut all, deadline)
            .map(|r| r.iter().copied().collect())
    }
}

#[test]
fn a_set_of_every_kind_reports_exactly_the_ready_endpoints() {
    let test = cross_test!(a_set_of_every_kind_reports_exactly_the_ready_endpoints);
    if role().is_some() {
        child_acts();
        return;
    }
    let sup = test.supervise(Duration::from_secs(120));
    let root = TempRoot::new("waitset");
    let r = root.path();
    let pipe_servers: Vec<PipeServer> = (0..PIPES)
        .map(|i| PipeServer::bind(&format!("p{i}"), &pipe_opts(r)).unwrap())
        .collect();
    let slots: Vec<Mailslot> = (0..SLOTS)
        .map(|i| Mailslot::create(&format!("m{i}"), &slot_opts(r)).unwrap())
        .collect();
    let servers: Vec<PipeServer> = (0..SERVERS)
        .map(|i| PipeServer::bind(&format!("s{i}"), &pipe_opts(r)).unwrap())
        .collect();
    let groups: Vec<Mailslot> = (0..GROUPS)
        .map(|i| mailslot::join(&format!("g{i}"), &slot_opts(r)).unwrap())
        .collect();
    let port = PortServer::create("port", &port_opts(r)).unwrap();

    let child = sup.spawn(test.command("child").role_arg("ROOT", r));
    let pipes: Vec<PipeEnd> = pipe_servers
        .iter()
        .map(|s| s.accept_until(Duration::from_secs(30)).unwrap())
        .collect();
    await_file(&r.join("connected"));
    let mut e = Endpoints {
        set: WaitSet::new(),
        pipes,
        slots,
        servers,
        groups,
        port,
    };

    // Nothing is ready: the deadline is honoured.
    let start = Instant::now();
    let r0 = e.ready(Duration::from_millis(50));
    let took = start.elapsed();
    assert_eq!(r0, Err(culvert::sync::Timeout));
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The child acts; exactly what it touched becomes ready.
    std::fs::write(r.join("go"), b"").unwrap();
    let mut expected: BTreeSet<usize> = WRITTEN_PIPES.into_iter().collect();
    expected.extend([
        CLOSED_PIPE,
        SLOT0 + WRITTEN_SLOT,
        SERVER0 + CONNECTED_SERVER,
        GROUP0 + BROADCAST_GROUP,
        PORT,
    ]);
    let mut seen = BTreeSet::new();
    while seen != expected {
        let got = e
            .ready(Duration::from_secs(20))
            .expect("the child's actions make endpoints ready");
        assert!(
            got.is_subset(&expected),
            "ready: {got:?}, expected only {expected:?}"
        );
        seen.extend(got);
    }
    await_file(&r.join("acted"));
    // Level-triggered: still exactly those, until they are served.
    assert_eq!(e.ready(Duration::ZERO).unwrap(), expected);

    // Serving them with the try_ calls leaves nothing ready.
    let mut buf = [0u8; 64];
    for i in WRITTEN_PIPES {
        let m = e.pipes[i].try_read_message(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"ready");
    }
    assert!(matches!(
        e.pipes[CLOSED_PIPE].try_read_message(&mut buf),
        Err(Error::Closed)
    ));
    assert_eq!(e.slots[WRITTEN_SLOT].try_read(&mut buf).unwrap(), 4);
    assert_eq!(e.groups[BROADCAST_GROUP].try_read(&mut buf).unwrap(), 3);
    // The first try_accept answers the request; the instance is handed out once the
    // client attached (at once if it already did, else by the blocking form).
    let _held = match e.servers[CONNECTED_SERVER].try_accept() {
        Err(Error::WouldBlock) => e.servers[CONNECTED_SERVER]
            .accept_until(Duration::from_secs(10))
            .unwrap(),
        got => got.unwrap(),
    };
    let request = e.port.try_listen().unwrap();
    request.reject(b"no").unwrap();
    e.pipes.remove(CLOSED_PIPE);
    let got = e.ready(Duration::ZERO);
    assert_eq!(
        got,
        Err(culvert::sync::Timeout),
        "nothing is ready once served"
    );

    // SIGKILL: every pipe of the child becomes ready (peer died) within a bound.
    sup.kill(child);
    let killed = Instant::now();
    sup.wait(child);
    let Endpoints {
        mut set, mut pipes, ..
    } = e;
    let mut dead = BTreeSet::new();
    while dead.len() < PIPES - 1 {
        let mut all: Vec<&mut dyn Waitable> =
            pipes.iter_mut().map(|e| e as &mut dyn Waitable).collect();
        let got = set
            .wait(&mut all, Duration::from_secs(10))
            .expect("a killed peer makes its pipes ready");
        dead.extend(got.iter().copied());
    }
    let noticed = killed.elapsed();
    eprintln!(
        "a SIGKILLed peer was noticed on {} pipes after {noticed:?}",
        PIPES - 1
    );
    assert!(
        noticed < LIVENESS_RECHECK_INTERVAL * 2 + Duration::from_millis(250),
        "took {noticed:?}"
    );
    for p in &mut pipes {
        match p.try_read_message(&mut buf) {
            Ok(m) => assert_eq!(m.len, 0, "end of stream after the peer died"),
            Err(e) => assert!(matches!(e, Error::PeerDied | Error::Closed), "{e}"),
        }
    }
}

/// Clients each make this many calls.
const CALLS: u32 = 200;
const CLIENTS: usize = 3;

fn client_calls() {
    let root = root_of_child();
    let id: u32 = role_arg_parsed("ID");
    let (c, welcome) = PortClient::connect_with(
        "serve",
        &id.to_le_bytes(),
        Duration::from_secs(30),
        &port_opts(&root),
    )
    .unwrap();
    assert_eq!(welcome.as_slice(), b"welcome");
    for n in 0..CALLS {
        let mut req = id.to_le_bytes().to_vec();
        req.extend_from_slice(&n.to_le_bytes());
        let reply = c.call(&req, Duration::from_secs(30)).unwrap();
        let mut want = req.clone();
        want.reverse();
        assert_eq!(reply.as_slice(), &want[..]);
    }
}

#[test]
fn one_thread_serves_connects_and_calls_of_several_processes() {
    let test = cross_test!(one_thread_serves_connects_and_calls_of_several_processes);
    if role().is_some() {
        client_calls();
        return;
    }
    let sup = test.supervise(Duration::from_secs(120));
    let root = TempRoot::new("waitset-port");
    let server = PortServer::create("serve", &port_opts(&root)).unwrap();
    for i in 0..CLIENTS {
        sup.spawn(
            test.command("client")
                .role_arg("ROOT", &*root)
                .role_arg("ID", i.to_string()),
        );
    }
    let (mut connects, mut calls) = (0, 0u32);
    while calls < CALLS * CLIENTS as u32 {
        match server.next_event(Duration::from_secs(30)).unwrap() {
            ServerEvent::Connect(req) => {
                req.accept(b"welcome").unwrap();
                connects += 1;
            }
            ServerEvent::Message(m) => {
                let mut back = m.payload.to_vec();
                back.reverse();
                m.reply(&back).unwrap();
                calls += 1;
            }
        }
    }
    assert_eq!(connects, CLIENTS);
    sup.wait_all_ok();
    // With every client gone, nothing more arrives.
    match server.next_event(Duration::from_millis(20)) {
        Err(Error::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}
