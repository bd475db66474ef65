//! Broadcast groups spanning simulated hosts: every reader on every host gets each
//! message or is told it missed it, exactly (delivered + missed = sent).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::Hosts;
use culvert::mailslot::{join, BroadcastSender, Mailslot, MailslotOptions};
use culvert::Error;

const SENT: u64 = 3000;

/// Reads until message `SENT - 1`; returns (delivered, missed).
fn drain(mut r: Mailslot, slow: bool) -> (u64, u64) {
    let (mut delivered, mut missed, mut last) = (0u64, 0u64, None::<u64>);
    let mut buf = [0u8; 64];
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        match r.read(&mut buf) {
            Ok(8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[..8]);
                let seq = u64::from_le_bytes(b);
                assert!(
                    last.is_none_or(|l| seq > l),
                    "out of order: {seq} after {last:?}"
                );
                last = Some(seq);
                delivered += 1;
                if slow && delivered % 8 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
                if seq == SENT - 1 {
                    return (delivered, missed);
                }
            }
            Ok(n) => panic!("message of {n} bytes"),
            Err(Error::Overrun { missed: m }) => missed += m,
            Err(Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the last message never came: delivered {delivered}, missed {missed}");
}

#[test]
fn a_group_spanning_three_hosts_with_a_slow_reader() {
    let h = Hosts::start("groups", 3, &["grp"]);
    let opts = |i: usize, cap: usize| {
        MailslotOptions::default()
            .root(h.root(i))
            .capacity(cap)
            .read_timeout(Duration::from_millis(100))
    };
    // Two fast readers (hosts a and b) and a slow one with a small ring (host c).
    let readers = vec![
        (join("grp", &opts(0, 4096)).unwrap(), false),
        (join("grp", &opts(1, 4096)).unwrap(), false),
        (join("grp", &opts(2, 8)).unwrap(), true),
    ];
    let mut sender = BroadcastSender::open_with("//*/grp", &opts(0, 8)).unwrap();
    let handles: Vec<_> = readers
        .into_iter()
        .map(|(r, slow)| thread::spawn(move || drain(r, slow)))
        .collect();
    for i in 0..SENT {
        sender.send(&i.to_le_bytes()).unwrap();
        if i % 256 == 255 {
            // Keep the sending bridge's proxy group from being overrun.
            thread::sleep(Duration::from_millis(1));
        }
    }
    for (i, t) in handles.into_iter().enumerate() {
        let (delivered, missed) = t.join().unwrap();
        eprintln!("host {i}: delivered {delivered}, missed {missed}");
        assert_eq!(delivered + missed, SENT, "host {i}");
        if i < 2 {
            assert_eq!(missed, 0, "fast reader on host {i}");
        }
    }
}

#[test]
fn a_group_on_one_other_host() {
    let h = Hosts::start("group1", 2, &["solo"]);
    let mut r = join(
        "solo",
        &MailslotOptions::default()
            .root(h.root(1))
            .read_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let o = MailslotOptions::default().root(h.root(0));
    culvert::mailslot::broadcast_with("//hostb/solo", b"hi", &o).unwrap();
    let mut buf = [0u8; 16];
    let n = r.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    let e = BroadcastSender::open_with("//hostb/nobody", &o).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
}
