//! A bridge SIGKILLed mid-stream: both ends get errors within a bound, never hang,
//! and a restarted bridge serves again. The killed bridge is a real process: this
//! test binary re-run with a role in the environment (`child_bridge`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{domain, free_port};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::Error;
use culvert_zenoh::{Bridge, BridgeConfig};

const ROLE: &str = "CULVERT_ZENOH_TEST_ROLE";
/// The bound this test holds the bridge to: both sides see the failure within it.
const FAULT_BOUND: Duration = Duration::from_millis(500);

/// The child's body: a bridge configured from the environment, until stdin closes.
#[test]
fn child_bridge() {
    if std::env::var(ROLE).as_deref() != Ok("bridge") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap();
    let mut cfg = BridgeConfig::new(env("CZ_DOMAIN"), env("CZ_HOST"))
        .listen(env("CZ_LISTEN"))
        .connect(env("CZ_CONNECT"))
        .root(env("CZ_ROOT"));
    if let Ok(name) = std::env::var("CZ_EXPORT") {
        cfg = cfg.export(name);
    }
    let bridge = Bridge::start(cfg).unwrap();
    println!("\nCZ-READY");
    std::io::stdout().flush().unwrap();
    // Until the parent goes (or kills us).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    bridge.stop();
}

fn spawn_bridge(domain: &str, root: &std::path::Path, listen: u16, connect: u16) -> Child {
    spawn_host(domain, "hosta", None, root, listen, connect)
}

/// Host A's bridge in this process and host B's in a child exporting one name, each
/// with its own namespace root, connected and seeing each other.
struct TwoHosts {
    root_a: tempfile::TempDir,
    root_b: tempfile::TempDir,
    bridge_a: Bridge,
    child: Child,
}

fn two_hosts(tag: &str, export: &str) -> TwoHosts {
    let dom = domain(tag);
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_a = Bridge::start(
        BridgeConfig::new(&dom, "hosta")
            .listen(format!("tcp/127.0.0.1:{port_a}"))
            .root(root_a.path()),
    )
    .unwrap();
    let child = spawn_host(&dom, "hostb", Some(export), root_b.path(), port_b, port_a);
    assert!(bridge_a.wait_for_host("hostb", Duration::from_secs(10)));
    TwoHosts {
        root_a,
        root_b,
        bridge_a,
        child,
    }
}

fn spawn_host(
    domain: &str,
    host: &str,
    export: Option<&str>,
    root: &std::path::Path,
    listen: u16,
    connect: u16,
) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(e) = export {
        cmd.env("CZ_EXPORT", e);
    }
    let mut child = cmd
        .args(["--exact", "child_bridge", "--nocapture", "--test-threads=1"])
        .env(ROLE, "bridge")
        .env("CZ_DOMAIN", domain)
        .env("CZ_HOST", host)
        .env("CZ_LISTEN", format!("tcp/127.0.0.1:{listen}"))
        .env("CZ_CONNECT", format!("tcp/127.0.0.1:{connect}"))
        .env("CZ_ROOT", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains("CZ-READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the child bridge starts");
    child
}

#[test]
fn bridge_killed_mid_stream_then_restarted() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dom = domain("kill");
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_b = Bridge::start(
        BridgeConfig::new(&dom, "hostb")
            .listen(format!("tcp/127.0.0.1:{port_b}"))
            .root(root_b.path())
            .export("stream"),
    )
    .unwrap();
    let mut child = spawn_bridge(&dom, root_a.path(), port_a, port_b);
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
            let until = when + Duration::from_secs(2);
            let write_failed = loop {
                match end.write_message(b"x") {
                    Err(_) => break Some(Instant::now()),
                    Ok(_) if Instant::now() < until => thread::sleep(Duration::from_millis(1)),
                    Ok(_) => break None,
                }
            };
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
        child.kill().unwrap();
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
    let _ = child.wait();
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
    let mut child = spawn_bridge(&dom, root_a.path(), port_a, port_b);
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
    drop(child.stdin.take());
    let _ = child.wait();
}

/// The far bridge (the pipe server's host) is SIGKILLed while a remote client reads:
/// the client reads what reached it, then `PeerDied` (its far peer is gone as if its
/// process died), and its writes fail with `PeerDied`; the server, whose client was
/// the killed bridge, sees its peer die too.
#[test]
fn far_bridge_killed_while_a_remote_pipe_client_reads() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let TwoHosts {
        root_a,
        root_b,
        bridge_a: _bridge_a,
        mut child,
    } = two_hosts("kill-far-pipe", "feed");
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
    child.kill().unwrap();
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
    let _ = child.wait();
}

/// The far bridge (the port server's host) is SIGKILLed while a call is pending: the
/// caller's call and later calls fail with `PeerDied`, and the far server sees its
/// client go.
#[test]
fn far_bridge_killed_with_a_port_call_pending() {
    use culvert::port::{PortClient, PortOptions, PortServer};
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let TwoHosts {
        root_a,
        root_b,
        bridge_a: _bridge_a,
        mut child,
    } = two_hosts("kill-port", "svc");
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
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let _ = server.receive(Duration::from_millis(5));
            server.maintain();
            if server.connection_count() == 0 {
                return Some(Instant::now());
            }
        }
        drop(held);
        None
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
    child.kill().unwrap();
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
    let _ = child.wait();
}

/// The caller's own bridge is SIGKILLed with a port call pending: the caller's call
/// fails with `PeerDied` (its proxy's process died), and the far server sees the
/// connection go.
#[test]
fn near_bridge_killed_with_a_port_call_pending() {
    use culvert::port::{PortClient, PortOptions, PortServer};
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dom = domain("kill-near");
    let (root_a, root_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let bridge_b = Bridge::start(
        BridgeConfig::new(&dom, "hostb")
            .listen(format!("tcp/127.0.0.1:{port_b}"))
            .root(root_b.path())
            .export("svc"),
    )
    .unwrap();
    let mut child = spawn_bridge(&dom, root_a.path(), port_a, port_b);
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
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let _ = server.receive(Duration::from_millis(5));
            server.maintain();
            if server.connection_count() == 0 || held.is_cancelled() {
                return Some(Instant::now());
            }
        }
        None
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
    child.kill().unwrap();
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
    let _ = child.wait();
}
