//! Read timeouts: `Some(0)` returns at once, `Some(50 ms)` returns `Timeout` after about
//! 50 ms, `None` sleeps until the next write (from another process) wakes it — for a
//! mailslot and for a broadcast-group reader.

#[path = "mailslot_support.rs"]
mod support;

use std::time::{Duration, Instant};

use culvert::mailslot::{self, Mailslot, MailslotOptions, MailslotWriter};
use culvert::Error;
use support::*;

const TEST: &str = "read_timeouts_zero_short_and_infinite";

#[test]
fn read_timeouts_zero_short_and_infinite() {
    if play_role(&[("writer", writer)]) {
        return;
    }
    watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let opts = MailslotOptions::new()
        .max_message_size(64)
        .capacity(16)
        .read_timeout(Duration::ZERO)
        .root(root);
    let mut slot = Mailslot::create("timeouts", &opts).unwrap();
    let mut group = mailslot::join("ticks", &opts).unwrap();
    let mut buf = [0u8; 64];
    for r in [&mut slot, &mut group] {
        let t = Instant::now();
        assert!(matches!(r.read(&mut buf), Err(Error::Timeout)));
        assert!(t.elapsed() < Duration::from_millis(20), "Some(0) waited");
        assert!(matches!(r.try_read(&mut buf), Err(Error::WouldBlock)));

        r.set_read_timeout(Some(Duration::from_millis(50)));
        let t = Instant::now();
        assert!(matches!(r.read(&mut buf), Err(Error::Timeout)));
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
            "waited {waited:?}"
        );
        r.set_read_timeout(None);
        assert_eq!(r.read_timeout(), None);
    }

    let mut kids = Kids::new(Duration::from_secs(30));
    kids.spawn(TEST, "writer", root, &[]);
    for (r, what) in [(&mut slot, "mailslot"), (&mut group, "broadcast")] {
        let t = Instant::now();
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], what.as_bytes());
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "{what}: returned before the write ({:?})",
            t.elapsed()
        );
    }
    kids.wait_all();
}

/// Waits, writes to the mailslot, waits, broadcasts to the group.
fn writer() {
    watchdog(Duration::from_secs(30));
    let mut w = MailslotWriter::open("timeouts").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    w.write(b"mailslot").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    mailslot::broadcast("ticks", b"broadcast").unwrap();
}
