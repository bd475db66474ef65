//! Hostile or malformed messages from the network: typed error replies, never a
//! panic, and the bridge goes on serving.

mod common;

use std::time::Duration;

use common::Hosts;
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::remote::{ObjectKind, Reply, Request, Status};
use culvert_zenoh::wire::{Frame, Kind};
use zenoh::Wait;

fn raw_peer(port: u16) -> zenoh::Session {
    let mut c = zenoh::Config::default();
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("scouting/multicast/enabled", "false".into()),
        ("scouting/gossip/enabled", "false".into()),
        ("connect/endpoints", format!("[\"tcp/127.0.0.1:{port}\"]")),
    ] {
        c.insert_json5(k, &v).unwrap();
    }
    zenoh::open(c).wait().unwrap()
}

/// Sends `payload` as an open query to host b; the reply's status.
fn open_with(s: &zenoh::Session, domain: &str, payload: Vec<u8>) -> Status {
    let replies = s
        .get(format!("culvert/{domain}/h/hostb/open"))
        .payload(payload)
        .timeout(Duration::from_secs(5))
        .wait()
        .unwrap();
    let reply = replies.recv().expect("the bridge answers");
    let sample = reply.into_result().expect("an ok reply sample");
    let bytes = sample.payload().to_bytes();
    let frame = Frame::decode(&bytes).expect("a well-formed frame");
    assert_eq!(frame.kind, Kind::OpenReply);
    Reply::decode(frame.body).unwrap().status
}

#[test]
fn malformed_open_requests_get_typed_errors() {
    let h = Hosts::start("hostile", 2, &["p"]);
    let srv = PipeServer::bind(
        "p",
        &PipeOptions::default()
            .root(h.root(1))
            .mode(PipeMode::Message),
    )
    .unwrap();
    let s = raw_peer(h.ports[1]);
    std::thread::sleep(Duration::from_millis(300));
    let d = &h.domain;
    assert_eq!(
        open_with(&s, d, b"garbage".to_vec()),
        Status::InvalidArgument
    );
    assert_eq!(
        open_with(&s, d, Frame::new(Kind::Data, 0, b"x").encode()),
        Status::InvalidArgument
    );
    // An open frame whose host length runs past the end.
    assert_eq!(
        open_with(&s, d, Frame::new(Kind::Open, 1, &[200, 0, b'a']).encode()),
        Status::InvalidArgument
    );
    // A well-formed frame around a truncated request.
    let req = Request {
        kind: ObjectKind::Pipe,
        host: "hostb".into(),
        name: "p".into(),
        timeout: None,
        payload: Vec::new(),
    }
    .encode();
    let mut body = vec![5, 0];
    body.extend_from_slice(b"rogue");
    body.extend_from_slice(&req[..req.len() - 3]);
    assert_ne!(
        open_with(&s, d, Frame::new(Kind::Open, 2, &body).encode()),
        Status::Ok
    );
    // A path-like name is refused before any lookup.
    let bad = Request {
        kind: ObjectKind::Pipe,
        host: "hostb".into(),
        name: "../p".into(),
        timeout: None,
        payload: Vec::new(),
    }
    .encode();
    let mut body = vec![5, 0];
    body.extend_from_slice(b"rogue");
    body.extend_from_slice(&bad);
    assert_eq!(
        open_with(&s, d, Frame::new(Kind::Open, 3, &body).encode()),
        Status::InvalidArgument
    );
    // Garbage on a connection's data key aborts at most that connection.
    s.put(format!("culvert/{d}/c/rogue/1/o"), b"junk".to_vec())
        .wait()
        .unwrap();
    // The bridge still serves.
    let _ = s.close().wait();
    let t = std::thread::spawn(move || srv.accept_until(Duration::from_secs(10)).map(drop));
    let e = PipeEnd::connect_with(
        "//hostb/p",
        Duration::from_secs(5),
        &PipeOptions::default().root(h.root(0)),
    );
    assert!(e.is_ok(), "{e:?}");
    t.join().unwrap().unwrap();
}
