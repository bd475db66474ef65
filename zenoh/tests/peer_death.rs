//! A far peer *process* that is SIGKILLed reads as `PeerDied` to the remote client,
//! as a local peer's death would; a far peer that closes cleanly (and then exits)
//! still reads as `Closed` / end of stream. The far servers are real processes: this
//! test binary re-run as a child playing a role (`culvert_testkit`), under the test's
//! supervisor; the bridges run in this process.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{say, Hosts, Said};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert::Error;
use culvert_testkit::{
    cross_test, namespace, play_role, ChildCommand, ChildId, CrossTest, Supervisor,
};

const T: Duration = Duration::from_secs(10);
/// The bound a remote client is held to: it sees the far process's death within it.
const DEATH_BOUND: Duration = Duration::from_millis(500);
/// The outer deadline of a test's children.
const LIMIT: Duration = Duration::from_secs(120);

/// A pipe server in the child's namespace root that serves one connection, then waits
/// to be killed (`hold`) or closes cleanly and exits.
fn pipe_server(hold: bool) {
    let opts = PipeOptions::default()
        .root(namespace())
        .mode(PipeMode::Message);
    let server = PipeServer::bind("doomed", &opts).unwrap();
    say("BOUND");
    let mut end = server.accept_until(T).unwrap();
    end.write_message(b"before the end").unwrap();
    say("SENT");
    if !hold {
        drop(end);
        std::process::exit(0);
    }
    // Held until killed.
    thread::sleep(Duration::from_secs(60));
}

/// A port server in the child's namespace root that serves one connection, then waits
/// to be killed (`hold`) or closes cleanly and exits.
fn port_server(hold: bool) {
    let server = PortServer::create("doomed", &PortOptions::default().root(namespace())).unwrap();
    say("BOUND");
    server.listen(T).unwrap().accept(b"hi").unwrap();
    let first = server.receive(T).unwrap();
    first.reply(b"pong").unwrap();
    let held = server.receive(T).unwrap();
    say("HELD");
    if !hold {
        drop(held);
        drop(server);
        std::process::exit(0);
    }
    // Held until killed.
    thread::sleep(Duration::from_secs(60));
}

/// The roles of the server children.
const ROLES: [(&str, fn()); 4] = [
    ("pipe_hold", || pipe_server(true)),
    ("pipe_close", || pipe_server(false)),
    ("port_hold", || port_server(true)),
    ("port_close", || port_server(false)),
];

/// A server child playing `role` in `root`; the lines it says come through the [`Said`].
fn spawn<'a>(
    sup: &'a Supervisor,
    test: CrossTest,
    role: &str,
    root: &std::path::Path,
) -> (ChildId, Said<'a>) {
    let child = sup.spawn(test.command(role).namespace(root));
    (child, Said::new(sup, child))
}

#[test]
fn a_remote_pipe_client_sees_the_far_server_process_die() {
    if play_role(&ROLES) {
        return;
    }
    let test = cross_test!(a_remote_pipe_client_sees_the_far_server_process_die);
    let sup = test.supervise(LIMIT);
    let h = Hosts::start("pd-pipe", 2, &["doomed"]);
    let (child, mut said) = spawn(&sup, test, "pipe_hold", &h.root(1));
    said.expect("BOUND");
    let mut c = PipeEnd::connect_with("//hostb/doomed", T, &PipeOptions::default().root(h.root(0)))
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5)));
    said.expect("SENT");
    let mut buf = [0u8; 64];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"before the end");
    let killed = Instant::now();
    sup.kill(child);
    let e = c.read_message(&mut buf).unwrap_err();
    let delay = killed.elapsed();
    eprintln!("far pipe server killed: the remote client read {e:?} after {delay:?}");
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(delay < DEATH_BOUND, "{delay:?}");
    let e = c.write_message(b"anyone?").unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    sup.wait(child);
}

#[test]
fn a_remote_port_call_in_flight_sees_the_far_server_process_die() {
    if play_role(&ROLES) {
        return;
    }
    let test = cross_test!(a_remote_port_call_in_flight_sees_the_far_server_process_die);
    let sup = test.supervise(LIMIT);
    let h = Hosts::start("pd-port", 2, &["doomed"]);
    let (child, mut said) = spawn(&sup, test, "port_hold", &h.root(1));
    said.expect("BOUND");
    let popts = PortOptions::default().root(h.root(0));
    let (client, hello) = PortClient::connect_with("//hostb/doomed", b"", T, &popts).unwrap();
    assert_eq!(hello, b"hi");
    assert_eq!(client.call(b"ping", T).unwrap().as_slice(), b"pong");
    let mut pending = client.call_async(b"never answered").unwrap();
    said.expect("HELD");
    let killed = Instant::now();
    sup.kill(child);
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    let delay = killed.elapsed();
    eprintln!("far port server killed: the call in flight failed with {e:?} after {delay:?}");
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(delay < DEATH_BOUND, "{delay:?}");
    let e = client.call(b"again", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    sup.wait(child);
}

#[test]
fn a_far_pipe_server_that_closes_then_exits_reads_as_end_of_stream() {
    if play_role(&ROLES) {
        return;
    }
    let test = cross_test!(a_far_pipe_server_that_closes_then_exits_reads_as_end_of_stream);
    let sup = test.supervise(LIMIT);
    let h = Hosts::start("pd-pipe-close", 2, &["doomed"]);
    let (child, mut said) = spawn(&sup, test, "pipe_close", &h.root(1));
    said.expect("BOUND");
    let mut c = PipeEnd::connect_with("//hostb/doomed", T, &PipeOptions::default().root(h.root(0)))
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 64];
    let r = c.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"before the end");
    sup.wait(child);
    let e = c.read_message(&mut buf).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    common::writes_end_with_closed(&mut c);
}

#[test]
fn a_far_port_server_that_closes_then_exits_fails_calls_with_closed() {
    if play_role(&ROLES) {
        return;
    }
    let test = cross_test!(a_far_port_server_that_closes_then_exits_fails_calls_with_closed);
    let sup = test.supervise(LIMIT);
    let h = Hosts::start("pd-port-close", 2, &["doomed"]);
    let (child, mut said) = spawn(&sup, test, "port_close", &h.root(1));
    said.expect("BOUND");
    let popts = PortOptions::default().root(h.root(0));
    let (client, _) = PortClient::connect_with("//hostb/doomed", b"", T, &popts).unwrap();
    assert_eq!(client.call(b"ping", T).unwrap().as_slice(), b"pong");
    let mut pending = client.call_async(b"dropped unanswered").unwrap();
    said.expect("HELD");
    sup.wait(child);
    let e = pending.wait(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    let e = client.call(b"again", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
}
