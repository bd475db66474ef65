//! A bridge SIGKILLed mid-stream: both ends get errors within a bound, never hang,
//! and a restarted bridge serves again. The killed bridge is a real process: this
//! test binary re-run as a child playing the role `bridge` (`culvert_testkit`), under
//! the test's [`Supervisor`].

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{domain, free_port, say, Said};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::Error;
use culvert_testkit::{
    cross_test, eventually, namespace, play_role, role_arg, ChildCommand, ChildId, CrossTest,
    Supervisor, TempRoot,
};
use culvert_zenoh::{Bridge, BridgeConfig};

/// The bound this test holds the bridge to: both sides see the failure within it.
const FAULT_BOUND: Duration = Duration::from_millis(500);
/// The outer deadline of a test's children.
const LIMIT: Duration = Duration::from_secs(120);

/// The role `bridge`: a bridge configured by the role arguments, in the namespace root
/// of the child, until stdin closes.
fn child_bridge() {
    let mut cfg = BridgeConfig::new(role_arg("DOMAIN"), role_arg("HOST"))
        .listen(role_arg("LISTEN"))
        .connect(role_arg("CONNECT"))
        .root(namespace());
    for name in role_arg("EXPORTS").split(',').filter(|n| !n.is_empty()) {
        cfg = cfg.export(name);
    }
    let bridge = Bridge::start(cfg).unwrap();
    say("READY");
    // Until the parent goes (or kills us).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    bridge.stop();
}

/// Host A's bridge in a child, connecting to `connect`.
fn spawn_bridge(
    sup: &Supervisor,
    test: CrossTest,
    domain: &str,
    root: &TempRoot,
    listen: u16,
    connect: u16,
) -> ChildId {
    ChildBridge {
        domain,
        host: "hosta",
        export: None,
        root,
        listen,
        connect,
    }
    .spawn(sup, test)
}

/// Host A's bridge in this process and host B's in a child exporting one name, each
/// with its own namespace root, connected and seeing each other.
struct TwoHosts {
    root_a: TempRoot,
    root_b: TempRoot,
    bridge_a: Bridge,
    child: ChildId,
}

fn two_hosts(sup: &Supervisor, test: CrossTest, tag: &str, export: &str) -> TwoHosts {
    let dom = domain(tag);
    let (root_a, root_b) = (
        TempRoot::new(&format!("{tag}-a")),
        TempRoot::new(&format!("{tag}-b")),
    );
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_a = Bridge::start(
        BridgeConfig::new(&dom, "hosta")
            .listen(format!("tcp/127.0.0.1:{port_a}"))
            .root(root_a.path()),
    )
    .unwrap();
    let child = ChildBridge {
        domain: &dom,
        host: "hostb",
        export: Some(export),
        root: &root_b,
        listen: port_b,
        connect: port_a,
    }
    .spawn(sup, test);
    assert!(bridge_a.wait_for_host("hostb", Duration::from_secs(10)));
    TwoHosts {
        root_a,
        root_b,
        bridge_a,
        child,
    }
}

/// The bridge of one host in a child playing `bridge`: what it gets as role arguments.
struct ChildBridge<'a> {
    domain: &'a str,
    host: &'a str,
    export: Option<&'a str>,
    root: &'a TempRoot,
    listen: u16,
    connect: u16,
}

impl ChildBridge<'_> {
    /// Spawns the child under `sup`; returns once it says it is ready. Its stdin is a
    /// pipe: the bridge stops when that closes.
    fn spawn(&self, sup: &Supervisor, test: CrossTest) -> ChildId {
        let child = sup.spawn(
            test.command("bridge")
                .namespace(self.root)
                .role_arg("DOMAIN", self.domain)
                .role_arg("HOST", self.host)
                .role_arg("LISTEN", format!("tcp/127.0.0.1:{}", self.listen))
                .role_arg("CONNECT", format!("tcp/127.0.0.1:{}", self.connect))
                .role_arg("EXPORTS", self.export.unwrap_or_default())
                .stdin(Stdio::piped()),
        );
        Said::new(sup, child).expect("READY");
        child
    }
}

#[test]
fn bridge_killed_mid_stream_then_restarted() {
    if play_role(&[("bridge", child_bridge)]) {
        return;
    }
    let test = cross_test!(bridge_killed_mid_stream_then_restarted);
    let sup = test.supervise(LIMIT);
    let dom = domain("kill");
    let (root_a, root_b) = (TempRoot::new("kill-a"), TempRoot::new("kill-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_b = Bridge::start(
        BridgeConfig::new(&dom, "hostb")
            .listen(format!("tcp/127.0.0.1:{port_b}"))
            .root(root_b.path())
            .export("stream"),
    )
    .unwrap();
    let child = spawn_bridge(&sup, test, &dom, &root_a, port_a, port_b);
    assert!(bridge_b.wait_for_host("hosta", Duration::from_secs(10)));

    let server = PipeServer::bind(
        "stream",
        &PipeOptions::default()
            .root(root_b.path())
            .mode(PipeMode::Byte)
            .max_instances(4),
    )
    .unwrap();
    let a_opts = PipeOptions::default().root(root_a.path());

    // Server on B: read until the stream ends, then check that writes fail too.
    let (started_tx, started_rx) = mpsc::channel();
    let srv = thread::scope(|s| {
        let far = s.spawn(|| {
            let mut end = server.accept_until(Duration::from_secs(10)).unwrap();
            end.set_read_timeout(Some(Duration::from_secs(20)));
            let mut buf = vec![0u8; 65536];
            let mut total = 0usize;
            let outcome = loop {
                match end.read(&mut buf) {
                    Ok(0) => break "end of stream",
                    Ok(n) => {
                        total += n;
                        if total > 1 << 20 {
                            let _ = started_tx.send(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break "hang",
                    Err(_) => break "error",
                }
            };
            let when = Instant::now();
            // Writes fail too once the bridge dropped its end (within its poll).
            let write_failed =
                eventually(Duration::from_secs(2), || end.write_message(b"x").is_err())
                    .then(Instant::now);
            (outcome, when, write_failed, total)
        });
        // Client on A: write until it fails.
        let near = s.spawn(|| {
            let mut c =
                PipeEnd::connect_with("//hostb/stream", Duration::from_secs(10), &a_opts).unwrap();
            c.set_write_timeout(Some(Duration::from_secs(20)));
            let chunk = vec![7u8; 16 * 1024];
            let limit = Instant::now() + Duration::from_secs(20);
            loop {
                match c.write_message(&chunk) {
                    Ok(_) if Instant::now() < limit => {}
                    Ok(_) => break (Instant::now(), None),
                    Err(e) => break (Instant::now(), Some(e)),
                }
            }
        });
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("data flows");
        let killed = Instant::now();
        sup.kill(child);
        let (far_outcome, far_when, far_write_failed, total) = far.join().unwrap();
        let (near_when, near_err) = near.join().unwrap();
        (
            killed,
            far_outcome,
            far_when,
            far_write_failed,
            total,
            near_when,
            near_err,
        )
    });
    sup.wait(child);
    let (killed, far_outcome, far_when, far_write_failed, total, near_when, near_err) = srv;
    let far_delay = far_when.saturating_duration_since(killed);
    let near_delay = near_when.saturating_duration_since(killed);
    eprintln!(
        "killed after {total} bytes: far side '{far_outcome}' after {far_delay:?}, \
         near side {near_err:?} after {near_delay:?}"
    );
    assert_eq!(far_outcome, "end of stream");
    let far_write_delay = far_write_failed
        .expect("the far side's writes fail after the kill")
        .saturating_duration_since(killed);
    eprintln!("far side's writes fail after {far_write_delay:?}");
    assert!(
        far_write_delay < FAULT_BOUND,
        "far writes failed after {far_write_delay:?}"
    );
    assert!(
        matches!(near_err, Some(Error::PeerDied | Error::Closed)),
        "{near_err:?}"
    );
    assert!(
        far_delay < FAULT_BOUND,
        "far side noticed after {far_delay:?}"
    );
    assert!(
        near_delay < FAULT_BOUND,
        "near side noticed after {near_delay:?}"
    );

    // A restarted bridge serves again.
    let child = spawn_bridge(&sup, test, &dom, &root_a, port_a, port_b);
    assert!(bridge_b.wait_for_host("hosta", Duration::from_secs(10)));
    let t = thread::spawn(move || {
        let mut end = server.accept_until(Duration::from_secs(10)).unwrap();
        end.set_read_timeout(Some(Duration::from_secs(10)));
        let mut b = [0u8; 5];
        end.read_exact(&mut b).unwrap();
        end.write_all(&b).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match PipeEnd::connect_with("//hostb/stream", Duration::from_secs(5), &a_opts) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after {e}");
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("restarted bridge does not serve: {e}"),
        }
    };
    c.set_read_timeout(Some(Duration::from_secs(10)));
    c.write_all(b"again").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"again");
    t.join().unwrap();
    drop(c);
    drop(sup.take_stdin(child));
    sup.wait(child);
}

/// The far bridge (the pipe server's host) is SIGKILLed while a remote client reads:
/// the client reads what reached it, then `PeerDied` (its far peer is gone as if its
/// process died), and its writes fail with `PeerDied`; the server, whose client was
/// the killed bridge, sees its peer die too.
#[test]
fn far_bridge_killed_while_a_remote_pipe_client_reads() {
    if play_role(&[("bridge", child_bridge)]) {
        return;
    }
    let test = cross_test!(far_bridge_killed_while_a_remote_pipe_client_reads);
    let sup = test.supervise(LIMIT);
    let TwoHosts {
        root_a,
        root_b,
        bridge_a: _bridge_a,
        child,
    } = two_hosts(&sup, test, "kill-far-pipe", "feed");
    let server = PipeServer::bind(
        "feed",
        &PipeOptions::default()
            .root(root_b.path())
            .mode(PipeMode::Message),
    )
    .unwrap();
    let far = thread::spawn(move || {
        let mut end = server.accept_until(Duration::from_secs(10)).unwrap();
        end.write_message(b"first").unwrap();
        end.set_read_timeout(Some(Duration::from_secs(5)));
        let mut b = [0u8; 8];
        end.read_message(&mut b).map(|_| ()).unwrap_err()
    });
    let mut c = PipeEnd::connect_with(
        "//hostb/feed",
        Duration::from_secs(10),
        &PipeOptions::default().root(root_a.path()),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 16];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"first");
    let killed = Instant::now();
    sup.kill(child);
    let e = c.read_message(&mut buf).unwrap_err();
    let near_delay = killed.elapsed();
    let w = c.write_message(b"x").unwrap_err();
    let far_err = far.join().unwrap();
    eprintln!(
        "far bridge killed: the remote client read {e:?} after {near_delay:?} (write: \
         {w:?}); the far server read {far_err:?}"
    );
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(matches!(w, Error::PeerDied), "{w:?}");
    assert!(matches!(far_err, Error::PeerDied), "{far_err:?}");
    assert!(near_delay < FAULT_BOUND, "{near_delay:?}");
    sup.wait(child);
}

/// The far bridge (the port server's host) is SIGKILLed while a call is pending: the
/// caller's call and later calls fail with `PeerDied`, and the far server sees its
/// client go.
#[test]
fn far_bridge_killed_with_a_port_call_pending() {
    use culvert::port::{PortClient, PortOptions, PortServer};
    if play_role(&[("bridge", child_bridge)]) {
        return;
    }
    let test = cross_test!(far_bridge_killed_with_a_port_call_pending);
    let sup = test.supervise(LIMIT);
    let TwoHosts {
        root_a,
        root_b,
        bridge_a: _bridge_a,
        child,
    } = two_hosts(&sup, test, "kill-port", "svc");
    let server = PortServer::create("svc", &PortOptions::default().root(root_b.path())).unwrap();
    let (got_tx, got_rx) = mpsc::channel();
    let far = thread::spawn(move || {
        server
            .listen(Duration::from_secs(10))
            .unwrap()
            .accept(b"")
            .unwrap();
        let held = server.receive(Duration::from_secs(10)).unwrap();
        got_tx.send(()).unwrap();
        // Wait for the connection to go (the bridge that was its client died).
        let gone = eventually(Duration::from_secs(10), || {
            let _ = server.receive(Duration::from_millis(5));
            server.maintain();
            server.connection_count() == 0
        })
        .then(Instant::now);
        drop(held);
        gone
    });
    let (client, _) = PortClient::connect_with(
        "//hostb/svc",
        b"",
        Duration::from_secs(10),
        &PortOptions::default().root(root_a.path()),
    )
    .unwrap();
    let mut pending = client.call_async(b"never answered").unwrap();
    got_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let killed = Instant::now();
    sup.kill(child);
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    let near_delay = killed.elapsed();
    let e2 = client.call(b"again", Duration::from_secs(5)).unwrap_err();
    let far_when = far
        .join()
        .unwrap()
        .expect("the far server sees its client go");
    let far_delay = far_when.saturating_duration_since(killed);
    eprintln!(
        "far bridge killed: pending call {e:?} after {near_delay:?}, next call {e2:?}; \
         far server lost the connection after {far_delay:?}"
    );
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(matches!(e2, Error::PeerDied), "{e2:?}");
    assert!(near_delay < FAULT_BOUND, "{near_delay:?}");
    assert!(far_delay < FAULT_BOUND, "{far_delay:?}");
    sup.wait(child);
}

/// The caller's own bridge is SIGKILLed with a port call pending: the caller's call
/// fails with `PeerDied` (its proxy's process died), and the far server sees the
/// connection go.
#[test]
fn near_bridge_killed_with_a_port_call_pending() {
    use culvert::port::{PortClient, PortOptions, PortServer};
    if play_role(&[("bridge", child_bridge)]) {
        return;
    }
    let test = cross_test!(near_bridge_killed_with_a_port_call_pending);
    let sup = test.supervise(LIMIT);
    let dom = domain("kill-near");
    let (root_a, root_b) = (TempRoot::new("kill-near-a"), TempRoot::new("kill-near-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_b = Bridge::start(
        BridgeConfig::new(&dom, "hostb")
            .listen(format!("tcp/127.0.0.1:{port_b}"))
            .root(root_b.path())
            .export("svc"),
    )
    .unwrap();
    let child = spawn_bridge(&sup, test, &dom, &root_a, port_a, port_b);
    assert!(bridge_b.wait_for_host("hosta", Duration::from_secs(10)));
    let server = PortServer::create("svc", &PortOptions::default().root(root_b.path())).unwrap();
    let (got_tx, got_rx) = mpsc::channel();
    let far = thread::spawn(move || {
        server
            .listen(Duration::from_secs(10))
            .unwrap()
            .accept(b"")
            .unwrap();
        let held = server.receive(Duration::from_secs(10)).unwrap();
        got_tx.send(()).unwrap();
        let gone = eventually(Duration::from_secs(10), || {
            let _ = server.receive(Duration::from_millis(5));
            server.maintain();
            server.connection_count() == 0 || held.is_cancelled()
        })
        .then(Instant::now);
        drop(held);
        gone
    });
    let (client, _) = PortClient::connect_with(
        "//hostb/svc",
        b"",
        Duration::from_secs(10),
        &PortOptions::default().root(root_a.path()),
    )
    .unwrap();
    let mut pending = client.call_async(b"never answered").unwrap();
    got_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let killed = Instant::now();
    sup.kill(child);
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    let near_delay = killed.elapsed();
    let far_when = far
        .join()
        .unwrap()
        .expect("the far server sees the call or connection go");
    let far_delay = far_when.saturating_duration_since(killed);
    eprintln!(
        "near bridge killed: pending call {e:?} after {near_delay:?}; \
         far server saw it after {far_delay:?}"
    );
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(near_delay < FAULT_BOUND, "{near_delay:?}");
    assert!(far_delay < FAULT_BOUND, "{far_delay:?}");
    sup.wait(child);
}
