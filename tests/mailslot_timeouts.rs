//! Read timeouts: `Some(0)` returns at once, `Some(50 ms)` returns `Timeout` after about
//! 50 ms, `None` sleeps until the next write (from another process) wakes it — for a
//! mailslot and for a broadcast-group reader.

mod common;

use std::time::{Duration, Instant};

use common::mailslot::slot_opts;
use culvert::mailslot::{self, Mailslot, MailslotWriter};
use culvert::Error;
use culvert_testkit::{abort_after, cross_test, play_role, ChildCommand, TempRoot};

#[test]
fn read_timeouts_zero_short_and_infinite() {
    if play_role(&[("writer", writer)]) {
        return;
    }
    let dir = TempRoot::new("mailslot-timeouts");
    let root = dir.path();
    let opts = slot_opts(root, 64, 16, Duration::ZERO);
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

    let test = cross_test!(read_timeouts_zero_short_and_infinite);
    let sup = test.supervise(Duration::from_secs(30));
    sup.spawn(test.command("writer").namespace(root));
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
    sup.wait_all_ok();
}

/// Waits, writes to the mailslot, waits, broadcasts to the group.
fn writer() {
    abort_after(Duration::from_secs(30));
    let mut w = MailslotWriter::open("timeouts").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    w.write(b"mailslot").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    mailslot::broadcast("ticks", b"broadcast").unwrap();
}
