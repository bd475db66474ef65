//! Mailslots across simulated hosts: one host, every host (`//*/name`), and exact
//! loss accounting (messages read + `dropped` = messages written).

mod common;

use std::thread;
use std::time::Duration;

use common::Hosts;
use culvert::mailslot::{Mailslot, MailslotOptions, MailslotWriter};
use culvert::Error;
use culvert_testkit::eventually;
use culvert_zenoh::wire::{Frame, Kind};
use zenoh::Wait;

fn mopts(h: &Hosts, i: usize) -> MailslotOptions {
    MailslotOptions::default()
        .root(h.root(i))
        .read_timeout(Duration::from_secs(10))
}

#[test]
fn messages_reach_a_mailslot_on_another_host_in_order() {
    let h = Hosts::start("ms-one", 2, &["inbox"]);
    let mut reader = Mailslot::create(
        "inbox",
        &mopts(&h, 1).read_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let mut w = MailslotWriter::open_with("//hostb/inbox", &mopts(&h, 0)).unwrap();
    for i in 0..100u32 {
        w.write(&i.to_le_bytes()).unwrap();
    }
    // Mailslots do not guarantee delivery (a loaded link may drop), but never lose
    // silently: what arrives is in order, and read + dropped = written.
    let mut buf = [0u8; 64];
    let mut got: Vec<u32> = Vec::new();
    let accounted = eventually(Duration::from_secs(30), || {
        match reader.read(&mut buf) {
            Ok(n) => got.push(u32::from_le_bytes(buf[..n].try_into().unwrap())),
            Err(Error::Timeout) => {}
            Err(e) => panic!("{e:?}"),
        }
        got.len() as u64 + reader.info().unwrap().dropped == 100
    });
    assert!(
        accounted,
        "{} read, {} dropped of 100",
        got.len(),
        reader.info().unwrap().dropped
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert!(!got.is_empty(), "a loopback link delivers something");
}

#[test]
fn star_name_reaches_every_host() {
    let h = Hosts::start("ms-all", 3, &["news"]);
    let mut readers: Vec<Mailslot> = (0..3)
        .map(|i| {
            let opts = mopts(&h, i).read_timeout(Duration::from_millis(100));
            Mailslot::create("news", &opts).unwrap()
        })
        .collect();
    let mut w = MailslotWriter::open_with("//*/news", &mopts(&h, 0)).unwrap();
    // Delivery is not guaranteed (a loaded link may drop a copy, counted as dropped on
    // that host), so the writer repeats until every host has read one copy.
    let mut buf = [0u8; 64];
    let mut reached = [false; 3];
    let everywhere = eventually(Duration::from_secs(30), || {
        w.write(b"to everyone").unwrap();
        for (i, r) in readers.iter_mut().enumerate() {
            match r.read(&mut buf) {
                Ok(n) => {
                    assert_eq!(&buf[..n], b"to everyone", "host {i}");
                    reached[i] = true;
                }
                Err(Error::Timeout) => {}
                Err(e) => panic!("host {i}: {e}"),
            }
        }
        reached == [true; 3]
    });
    assert!(everywhere, "reached only {reached:?}");
}

#[test]
fn a_flood_into_a_slow_reader_loses_nothing_silently() {
    const SENT: u64 = 5000;
    let h = Hosts::start("ms-flood", 2, &["small"]);
    let mut reader = Mailslot::create(
        "small",
        &mopts(&h, 1)
            .capacity(8)
            .read_timeout(Duration::from_millis(0)),
    )
    .unwrap();
    let mut w = MailslotWriter::open_with("//hostb/small", &mopts(&h, 0)).unwrap();
    let mut writer_saw_full = 0u64;
    for i in 0..SENT {
        match w.write(&i.to_le_bytes()) {
            Ok(()) => {}
            Err(Error::Full) => writer_saw_full += 1,
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    let mut read = 0u64;
    let mut buf = [0u8; 64];
    // Read what is there, then see whether every message is accounted for.
    let accounted = eventually(Duration::from_secs(20), || {
        loop {
            match reader.read(&mut buf) {
                Ok(_) => {
                    read += 1;
                    // A slow reader.
                    if read % 16 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                Err(Error::Timeout | Error::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        read + reader.info().unwrap().dropped == SENT
    });
    let dropped = reader.info().unwrap().dropped;
    assert!(accounted, "read {read} + dropped {dropped} != {SENT}");
    eprintln!("read {read}, dropped {dropped} (writer saw {writer_saw_full} Full)");
    assert_eq!(read + dropped, SENT);
    assert!(dropped >= writer_saw_full);
    // Nothing more arrives later (no double counting).
    thread::sleep(Duration::from_millis(200));
    assert!(matches!(
        reader.read(&mut buf),
        Err(Error::Timeout | Error::WouldBlock)
    ));
    assert_eq!(reader.info().unwrap().dropped, dropped);
}

#[test]
fn sequence_gaps_and_hostile_samples_from_the_network() {
    let h = Hosts::start("ms-gap", 2, &["gap"]);
    let mut reader = Mailslot::create("gap", &mopts(&h, 1)).unwrap();
    // A raw Zenoh peer speaking to host b directly.
    let mut c = zenoh::Config::default();
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("scouting/multicast/enabled", "false".into()),
        ("scouting/gossip/enabled", "false".into()),
        (
            "connect/endpoints",
            format!("[\"tcp/127.0.0.1:{}\"]", h.ports[1]),
        ),
    ] {
        c.insert_json5(k, &v).unwrap();
    }
    let s = zenoh::open(c).wait().unwrap();
    let key = format!("culvert/{}/m/h/hostb/gap/rogue/1", h.domain);
    // Let the subscription reach this session.
    thread::sleep(Duration::from_millis(300));
    let put = |bytes: Vec<u8>| s.put(&key, bytes).wait().unwrap();
    put(Frame::new(Kind::Slot, 0, b"m0").encode());
    put(Frame::new(Kind::Slot, 1, b"m1").encode());
    // Hostile samples: garbage, a lying length, a wrong version, an unknown kind.
    put(b"not a frame".to_vec());
    let mut lying = Frame::new(Kind::Slot, 2, b"xx").encode();
    lying[16] = 200;
    put(lying);
    let mut version = Frame::new(Kind::Slot, 2, b"xx").encode();
    version[2] = 99;
    put(version);
    let mut kind = Frame::new(Kind::Slot, 2, b"xx").encode();
    kind[3] = 77;
    put(kind);
    put(Frame::new(Kind::Lost, 0, b"short").encode());
    // Messages 2, 3 and 4 never come.
    put(Frame::new(Kind::Slot, 5, b"m5").encode());
    // A late duplicate of a counted message is discarded.
    put(Frame::new(Kind::Slot, 3, b"late").encode());
    let mut buf = [0u8; 64];
    for want in [&b"m0"[..], b"m1", b"m5"] {
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], want);
    }
    thread::sleep(Duration::from_millis(200));
    let info = reader.info().unwrap();
    assert_eq!(info.message_count, 0);
    assert_eq!(info.dropped, 3);
    // The bridge still serves.
    let mut w = MailslotWriter::open_with("//hostb/gap", &mopts(&h, 0)).unwrap();
    w.write(b"still fine").unwrap();
    let n = reader.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still fine");
    let _ = s.close().wait();
}

#[test]
fn a_mailslot_not_exported_is_refused() {
    let h = Hosts::start("ms-deny", 2, &["public"]);
    let _r = Mailslot::create("private", &mopts(&h, 1)).unwrap();
    let e = MailslotWriter::open_with("//hostb/private", &mopts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    let e = MailslotWriter::open_with("//hostb/public", &mopts(&h, 0)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}
