//! Bad input and lifecycle: invalid names, no reader, a dead reader (reclaimed by
//! `create` and by `gc`), sections of another kind, zero and absurd sizes, message
//! limits, close, and broadcast-group join/leave.

use std::time::Duration;

use culvert::mailslot::{self, BroadcastSender, Mailslot, MailslotOptions, MailslotWriter};
use culvert::section::{Section, SectionOptions};
use culvert::Error;
use culvert_testkit::{cross_test, role, ChildCommand, TempRoot};

fn opts(root: &std::path::Path) -> MailslotOptions {
    MailslotOptions::new()
        .max_message_size(32)
        .capacity(4)
        .read_timeout(Duration::ZERO)
        .root(root)
}

#[test]
fn invalid_names_and_sizes_are_typed_errors() {
    let dir = TempRoot::new("mailslot-errors");
    let o = opts(dir.path());
    let long = "x".repeat(201);
    for bad in ["", "a/b", "a b", "..", long.as_str()] {
        assert!(matches!(
            Mailslot::create(bad, &o),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            MailslotWriter::open_with(bad, &o),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            mailslot::join(bad, &o),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            mailslot::broadcast_with(bad, b"x", &o),
            Err(Error::InvalidName { .. })
        ));
    }
    let root = dir.path();
    for bad in [
        MailslotOptions::new().max_message_size(0).capacity(4),
        MailslotOptions::new().max_message_size(32).capacity(0),
        MailslotOptions::new()
            .max_message_size(usize::MAX)
            .capacity(4),
        MailslotOptions::new()
            .max_message_size(32)
            .capacity(usize::MAX),
        MailslotOptions::new()
            .max_message_size(mailslot::MAX_MESSAGE_SIZE_LIMIT)
            .capacity(mailslot::MAX_CAPACITY),
    ] {
        let bad = bad.root(root);
        assert!(
            matches!(
                Mailslot::create("s", &bad),
                Err(Error::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
        assert!(
            matches!(
                mailslot::join("g", &bad),
                Err(Error::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
    // Nothing was left behind.
    assert!(Section::list(&SectionOptions::default().root(root))
        .unwrap()
        .is_empty());
}

#[test]
fn no_reader_is_not_found_and_other_kinds_are_refused() {
    let dir = TempRoot::new("mailslot-errors");
    let o = opts(dir.path());
    assert!(matches!(
        MailslotWriter::open_with("nobody", &o),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        BroadcastSender::open_with("nobody", &o),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        mailslot::broadcast_with("nobody", b"x", &o),
        Err(Error::NotFound { .. })
    ));

    let raw = Section::create("raw", 4096, &SectionOptions::default().root(dir.path())).unwrap();
    raw.mark_ready().unwrap();
    let wrong = |r: Result<(), Error>| {
        assert!(
            matches!(
                r,
                Err(Error::Section(culvert::section::Error::WrongKind { .. }))
            ),
            "{r:?}"
        )
    };
    wrong(MailslotWriter::open_with("raw", &o).map(drop));
    wrong(mailslot::join("raw", &o).map(drop));
    wrong(BroadcastSender::open_with("raw", &o).map(drop));
    assert!(matches!(
        Mailslot::create("raw", &o),
        Err(Error::AlreadyExists { .. })
    ));
    // A mailslot is not a group, nor the reverse.
    let _slot = Mailslot::create("slot", &o).unwrap();
    wrong(mailslot::join("slot", &o).map(drop));
    let _group = mailslot::join("group", &o).unwrap();
    wrong(MailslotWriter::open_with("group", &o).map(drop));
    assert!(matches!(
        Mailslot::create("group", &o),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn live_name_exists_close_removes_and_limits_hold() {
    let dir = TempRoot::new("mailslot-errors");
    let o = opts(dir.path());
    let mut r = Mailslot::create("m", &o).unwrap();
    assert!(matches!(
        Mailslot::create("m", &o),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!((r.max_message_size(), r.capacity()), (32, 4));
    let mut w = MailslotWriter::open_with("m", &o).unwrap();
    assert!(matches!(
        w.write(&[0; 33]),
        Err(Error::MessageTooLarge { len: 33, max: 32 })
    ));
    w.write(&[7; 32]).unwrap();
    w.write(b"").unwrap();
    w.write(b"abc").unwrap();
    let info = r.info().unwrap();
    assert_eq!(
        (info.next_message_size, info.message_count, info.dropped),
        (Some(32), 3, 0)
    );
    let mut small = [0u8; 8];
    assert!(matches!(
        r.read(&mut small),
        Err(Error::BufferTooSmall { needed: 32, got: 8 })
    ));
    let mut buf = [0u8; 32];
    assert_eq!(r.read(&mut buf).unwrap(), 32, "the message stayed queued");
    // A zero-length message peeked by info is still delivered, once.
    assert_eq!(r.info().unwrap().next_message_size, Some(0));
    assert_eq!(r.info().unwrap().message_count, 2);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert_eq!(r.info().unwrap().next_message_size, Some(3));
    assert_eq!(r.read(&mut buf).unwrap(), 3);
    assert!(matches!(r.read(&mut buf), Err(Error::Timeout)));
    for _ in 0..4 {
        w.write(b"x").unwrap();
    }
    assert!(matches!(w.write(b"y"), Err(Error::Full)));
    assert!(matches!(w.write(b"y"), Err(Error::Full)));
    assert_eq!(r.info().unwrap().dropped, 2);
    // Closing: writers are told, the name is free again.
    r.close();
    assert!(matches!(w.write(b"z"), Err(Error::Closed)));
    assert!(matches!(
        MailslotWriter::open_with("m", &o),
        Err(Error::NotFound { .. })
    ));
    let _again = Mailslot::create("m", &o).unwrap();
}

#[test]
fn dead_reader_is_not_found_then_reclaimed() {
    if role().as_deref() == Some("orphan") {
        // Create, then die without closing anything.
        let o = MailslotOptions::new().max_message_size(32).capacity(4);
        std::mem::forget(Mailslot::create("orphan", &o).unwrap());
        std::mem::forget(Mailslot::create("orphan2", &o).unwrap());
        std::mem::forget(mailslot::join("lonely", &o).unwrap());
        std::process::exit(0);
    }
    let dir = TempRoot::new("mailslot-errors");
    let root = dir.path();
    let o = opts(root);
    let test = cross_test!(dead_reader_is_not_found_then_reclaimed);
    let sup = test.supervise(Duration::from_secs(30));
    sup.spawn(test.command("orphan").namespace(root));
    sup.wait_all_ok();
    let sopts = SectionOptions::default().root(root);
    assert_eq!(
        Section::list(&sopts).unwrap(),
        ["lonely", "orphan", "orphan2"]
    );
    assert!(matches!(
        MailslotWriter::open_with("orphan", &o),
        Err(Error::NotFound { .. })
    ));
    // create reclaims a dead reader's name.
    let mut r = Mailslot::create("orphan", &o).unwrap();
    let mut w = MailslotWriter::open_with("orphan", &o).unwrap();
    w.write(b"fresh").unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(r.read(&mut buf).unwrap(), 5);
    // gc removes the other dead mailslot and the group without a live reader.
    let mut removed = mailslot::gc(&o).unwrap();
    removed.sort();
    assert_eq!(removed, ["lonely", "orphan2"]);
    assert_eq!(Section::list(&sopts).unwrap(), ["orphan"]);
}

#[test]
fn group_readers_join_and_leave() {
    let dir = TempRoot::new("mailslot-errors");
    let o = opts(dir.path());
    let sopts = SectionOptions::default().root(dir.path());
    let mut a = mailslot::join("g", &o).unwrap();
    // A later joiner's sizes are ignored: the group keeps the first one's.
    let mut b = mailslot::join(
        "g",
        &MailslotOptions::new()
            .max_message_size(8)
            .capacity(2)
            .read_timeout(Duration::ZERO)
            .root(dir.path()),
    )
    .unwrap();
    assert_eq!((b.max_message_size(), b.capacity()), (32, 4));
    let mut s = BroadcastSender::open_with("g", &o).unwrap();
    assert_eq!(s.readers(), 2);
    assert!(matches!(
        s.send(&[0; 33]),
        Err(Error::MessageTooLarge { .. })
    ));
    s.send(b"one").unwrap();
    let mut late = mailslot::join("g", &o).unwrap();
    s.send(b"two").unwrap();
    let mut buf = [0u8; 32];
    for r in [&mut a, &mut b] {
        assert_eq!(r.info().unwrap().message_count, 2);
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
    }
    assert_eq!(late.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"two", "a late joiner sees only later messages");
    // b falls behind by 6 messages on a 4-message ring: told it missed 2.
    for i in 0..6u8 {
        s.send(&[i]).unwrap();
    }
    let info = b.info().unwrap();
    assert_eq!((info.next_message_size, info.dropped), (Some(1), 2));
    assert!(matches!(
        b.read(&mut buf),
        Err(Error::Overrun { missed: 2 })
    ));
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    assert_eq!(buf[0], 2);
    drop(a);
    drop(late);
    assert_eq!(Section::list(&sopts).unwrap(), ["g"], "one reader remains");
    drop(b);
    assert!(
        Section::list(&sopts).unwrap().is_empty(),
        "the last reader removed the group"
    );
    assert!(matches!(s.send(b"gone"), Err(Error::Closed)));
    assert!(matches!(
        mailslot::broadcast_with("g", b"x", &o),
        Err(Error::NotFound { .. })
    ));
    // Joining again makes a fresh group.
    let mut c = mailslot::join("g", &o).unwrap();
    mailslot::broadcast_with("g", b"new", &o).unwrap();
    assert_eq!(c.read(&mut buf).unwrap(), 3);
}
