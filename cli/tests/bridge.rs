//! `culvert bridge` end to end: two bridge processes (two namespace directories play
//! two hosts, loopback endpoints only) carry a named message pipe from one "host" to
//! the other, with the exported name reachable and any other refused.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::Error;
use culvert_testkit::TempRoot;

mod common;
use common::culvert;

/// Kills the bridge processes however the test ends.
struct Bridges(Vec<Child>);

impl Drop for Bridges {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bridge(root: &Path, domain: &str, host: &str, args: &[String]) -> Child {
    let mut cmd = culvert(root);
    cmd.args(["bridge", "--domain", domain, "--host", host, "--root"])
        .arg(root)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("start culvert bridge")
}

#[test]
fn two_bridges_carry_an_exported_pipe_and_refuse_others() {
    let (a, b) = (TempRoot::new("cli"), TempRoot::new("cli"));
    let port = free_port();
    let domain = format!("test-bridge-{}", std::process::id());
    let listen = format!("tcp/127.0.0.1:{port}");
    let mut bridges = Bridges(Vec::new());
    bridges.0.push(bridge(
        b.path(),
        &domain,
        "hostb",
        &[
            "--listen".into(),
            listen.clone(),
            "--export".into(),
            "echo".into(),
        ],
    ));
    bridges.0.push(bridge(
        a.path(),
        &domain,
        "hosta",
        &["--connect".into(), listen],
    ));

    let sopts = PipeOptions::new().mode(PipeMode::Message).root(b.path());
    let server = PipeServer::bind("echo", &sopts).unwrap();
    let _private = PipeServer::bind("private", &sopts).unwrap();
    let echo = std::thread::spawn(move || {
        let mut end = server.accept_until(Duration::from_secs(60)).unwrap();
        let mut buf = [0u8; 256];
        for _ in 0..4 {
            let m = end.read_message(&mut buf).unwrap();
            end.write_message(&buf[..m.len]).unwrap();
        }
    });

    // The bridges start and find each other; until then the redirector is missing.
    let copts = PipeOptions::new().mode(PipeMode::Message).root(a.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut end = loop {
        match PipeEnd::connect_with("//hostb/echo", Duration::from_secs(5), &copts) {
            Ok(end) => break end,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no connection through the bridges: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let mut reply = [0u8; 256];
    for i in 0..4u8 {
        let msg = [i; 128];
        let got = end.transact(&msg, &mut reply).unwrap();
        assert_eq!(
            &reply[..got.len],
            &msg[..],
            "message {i} across the bridges"
        );
    }
    echo.join().unwrap();
    match PipeEnd::connect_with("//hostb/private", Duration::from_secs(5), &copts) {
        Err(Error::PermissionDenied { .. }) => {}
        other => panic!("a name not exported: {other:?}"),
    }
}
