//! Broadcast to three reader processes, one deliberately slow: the fast ones get every
//! message; the slow one is told exactly how many it missed (delivered + missed = sent).
//!
//! Writers never wait for readers, so "fast readers get everything" holds because the
//! ring (4096 messages) is far larger than what the paced writer (bursts of 64, then
//! 1 ms) can send while a fast reader is descheduled. The slow reader reads about 10
//! messages per millisecond and so is lapped several times.

mod common;

use std::time::Duration;

use common::mailslot::*;
use culvert::mailslot::{self, BroadcastSender, MailslotOptions};
use culvert::Error;
use culvert_testkit::{
    abort_after, cross_test, namespace, play_role, role_arg, role_arg_parsed, ChildCommand,
    TempRoot,
};

const GROUP: &str = "news";
const SENT: u32 = 16_384;
const CAPACITY: usize = 4096;
const MAX: usize = 64;

#[test]
fn broadcast_fast_readers_get_all_slow_reader_told_missed() {
    if play_role(&[("reader", reader), ("writer", writer)]) {
        return;
    }
    let dir = TempRoot::new("mailslot-broadcast");
    let root = dir.path();
    let test = cross_test!(broadcast_fast_readers_get_all_slow_reader_told_missed);
    let sup = test.supervise(Duration::from_secs(60));
    let speeds = ["fast", "fast", "slow"];
    for (i, speed) in speeds.iter().enumerate() {
        sup.spawn(
            test.command("reader")
                .namespace(root)
                .role_arg("IDX", i.to_string())
                .role_arg("SPEED", speed),
        );
    }
    for i in 0..speeds.len() {
        wait_file(root, &format!("ready{i}"), &sup);
    }
    let opts = MailslotOptions::default().root(root);
    assert_eq!(
        BroadcastSender::open_with(GROUP, &opts).unwrap().readers(),
        3
    );
    sup.spawn(test.command("writer").namespace(root));
    sup.wait_all_ok();
    for (i, speed) in speeds.iter().enumerate() {
        let (delivered, missed) = get_pair(root, &format!("reader{i}"));
        eprintln!("reader {i} ({speed}): delivered {delivered}, missed {missed}");
        assert_eq!(delivered + missed, u64::from(SENT), "reader {i}");
        if *speed == "fast" {
            assert_eq!(missed, 0, "fast reader {i} missed messages");
        } else {
            assert!(missed > 0, "the slow reader was never lapped");
        }
    }
    // Every reader left: the group is gone.
    assert!(matches!(
        mailslot::broadcast_with(GROUP, b"late", &opts),
        Err(Error::NotFound { .. })
    ));
}

fn reader() {
    abort_after(Duration::from_secs(70));
    let idx = role_arg_parsed::<u64>("IDX");
    let slow = role_arg("SPEED") == "slow";
    let opts = MailslotOptions::new()
        .max_message_size(MAX)
        .capacity(CAPACITY)
        .read_timeout(Duration::from_secs(30));
    let mut r = mailslot::join(GROUP, &opts).unwrap();
    assert!(r.is_broadcast());
    put(&namespace(), &format!("ready{idx}"), "");
    let (mut expect, mut delivered, mut missed) = (0u32, 0u64, 0u64);
    let mut buf = vec![0u8; MAX];
    loop {
        if slow && delivered % 10 == 0 {
            std::thread::sleep(Duration::from_millis(1));
            // Peeking may find the overrun first; it must still be reported by read.
            let info = r.info().unwrap();
            assert!(info.dropped >= missed);
        }
        match r.read(&mut buf) {
            Ok(n) => {
                let (id, seq) = check(&buf[..n], MAX);
                assert_eq!((id, seq), (0, expect), "reader {idx}: wrong message");
                delivered += 1;
                expect += 1;
                if seq == SENT - 1 {
                    break;
                }
            }
            Err(Error::Overrun { missed: m }) => {
                assert!(slow, "fast reader {idx} overrun by {m}");
                missed += m;
                expect += m as u32;
            }
            Err(e) => panic!("reader {idx}: {e}"),
        }
    }
    assert_eq!(r.info().unwrap().dropped, missed);
    put(
        &namespace(),
        &format!("reader{idx}"),
        &format!("{delivered} {missed}"),
    );
}

fn writer() {
    abort_after(Duration::from_secs(70));
    let mut s = BroadcastSender::open(GROUP).unwrap();
    let mut m = Vec::new();
    for seq in 0..SENT - 1 {
        make(0, seq, MAX, &mut m);
        s.send(&m).unwrap();
        if seq % 64 == 63 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // The last one through the one-shot call.
    make(0, SENT - 1, MAX, &mut m);
    mailslot::broadcast(GROUP, &m).unwrap();
}
