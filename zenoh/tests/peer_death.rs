//! A far peer *process* that is SIGKILLed reads as `PeerDied` to the remote client,
//! as a local peer's death would; a far peer that closes cleanly (and then exits)
//! still reads as `Closed` / end of stream. The far servers are real processes: this
//! test binary re-run with a role in the environment (`child`); the bridges run in
//! this process.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::Hosts;
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert::Error;

const ROLE: &str = "CULVERT_ZENOH_PEER_ROLE";
const T: Duration = Duration::from_secs(10);
/// The bound a remote client is held to: it sees the far process's death within it.
const DEATH_BOUND: Duration = Duration::from_millis(500);

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nCZ-{what}");
    let _ = out.flush();
}

/// The child's body, by role: a pipe or port server in `CZ_ROOT` that serves one
/// connection, then waits to be killed (`…_hold`) or closes cleanly and exits.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = std::env::var("CZ_ROOT").unwrap();
    match role.as_str() {
        "pipe_hold" | "pipe_close" => {
            let opts = PipeOptions::default().root(&root).mode(PipeMode::Message);
            let server = PipeServer::bind("doomed", &opts).unwrap();
            say("BOUND");
            let mut end = server.accept_until(T).unwrap();
            end.write_message(b"before the end").unwrap();
            say("SENT");
            if role == "pipe_close" {
                drop(end);
                std::process::exit(0);
            }
            // Held until killed.
            thread::sleep(Duration::from_secs(60));
        }
        "port_hold" | "port_close" => {
            let server = PortServer::create("doomed", &PortOptions::default().root(&root)).unwrap();
            say("BOUND");
            server.listen(T).unwrap().accept(b"hi").unwrap();
            let first = server.receive(T).unwrap();
            first.reply(b"pong").unwrap();
            let held = server.receive(T).unwrap();
            say("HELD");
            if role == "port_close" {
                drop(held);
                drop(server);
                std::process::exit(0);
            }
            // Held until killed.
            thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A server child in `root`; its `CZ-…` lines come through the receiver.
fn spawn(role: &str, root: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("CZ_ROOT", root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(what) = line.strip_prefix("CZ-") {
                let _ = tx.send(what.to_string());
            }
        }
    });
    (child, rx)
}

fn expect(rx: &mpsc::Receiver<String>, what: &str) {
    let got = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(got.as_deref(), Ok(what), "the child says {what}");
}

#[test]
fn a_remote_pipe_client_sees_the_far_server_process_die() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let h = Hosts::start("pd-pipe", 2, &["doomed"]);
    let (mut child, said) = spawn("pipe_hold", &h.root(1));
    expect(&said, "BOUND");
    let mut c = PipeEnd::connect_with("//hostb/doomed", T, &PipeOptions::default().root(h.root(0)))
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5)));
    expect(&said, "SENT");
    let mut buf = [0u8; 64];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"before the end");
    let killed = Instant::now();
    child.kill().unwrap();
    let e = c.read_message(&mut buf).unwrap_err();
    let delay = killed.elapsed();
    eprintln!("far pipe server killed: the remote client read {e:?} after {delay:?}");
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(delay < DEATH_BOUND, "{delay:?}");
    let e = c.write_message(b"anyone?").unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    let _ = child.wait();
}

#[test]
fn a_remote_port_call_in_flight_sees_the_far_server_process_die() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let h = Hosts::start("pd-port", 2, &["doomed"]);
    let (mut child, said) = spawn("port_hold", &h.root(1));
    expect(&said, "BOUND");
    let popts = PortOptions::default().root(h.root(0));
    let (client, hello) = PortClient::connect_with("//hostb/doomed", b"", T, &popts).unwrap();
    assert_eq!(hello, b"hi");
    assert_eq!(client.call(b"ping", T).unwrap().as_slice(), b"pong");
    let mut pending = client.call_async(b"never answered").unwrap();
    expect(&said, "HELD");
    let killed = Instant::now();
    child.kill().unwrap();
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    let delay = killed.elapsed();
    eprintln!("far port server killed: the call in flight failed with {e:?} after {delay:?}");
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(delay < DEATH_BOUND, "{delay:?}");
    let e = client.call(b"again", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    let _ = child.wait();
}

#[test]
fn a_far_pipe_server_that_closes_then_exits_reads_as_end_of_stream() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let h = Hosts::start("pd-pipe-close", 2, &["doomed"]);
    let (mut child, said) = spawn("pipe_close", &h.root(1));
    expect(&said, "BOUND");
    let mut c = PipeEnd::connect_with("//hostb/doomed", T, &PipeOptions::default().root(h.root(0)))
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 64];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"before the end");
    let _ = child.wait();
    let e = c.read_message(&mut buf).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match c.write_message(b"x") {
            Err(Error::Closed) => break,
            Ok(_) if Instant::now() < until => thread::sleep(Duration::from_millis(10)),
            other => panic!("write after the far server closed and exited: {other:?}"),
        }
    }
}

#[test]
fn a_far_port_server_that_closes_then_exits_fails_calls_with_closed() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let h = Hosts::start("pd-port-close", 2, &["doomed"]);
    let (mut child, said) = spawn("port_close", &h.root(1));
    expect(&said, "BOUND");
    let popts = PortOptions::default().root(h.root(0));
    let (client, _) = PortClient::connect_with("//hostb/doomed", b"", T, &popts).unwrap();
    assert_eq!(client.call(b"ping", T).unwrap().as_slice(), b"pong");
    let mut pending = client.call_async(b"dropped unanswered").unwrap();
    expect(&said, "HELD");
    let _ = child.wait();
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    let e = client.call(b"again", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
}
