//! Names, create/open/unlink, sub-objects, states, inspection and listing.

mod common;

use std::time::Duration;

use common::*;
use culvert_section::{list, Error, InitState, Section, SectionKind, SectionOptions};

#[test]
fn invalid_names_are_rejected() {
    let root = temp_root();
    let o = opts(root.path());
    let long = "x".repeat(201);
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "a b",
        "é",
        "nul\0",
        long.as_str(),
    ] {
        let is_invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidName { .. }));
        assert!(
            is_invalid(Section::create(bad, 4096, &o).map(drop)),
            "create {bad:?}"
        );
        assert!(is_invalid(Section::open(bad, &o).map(drop)), "open {bad:?}");
        assert!(
            is_invalid(Section::inspect(bad, &o).map(drop)),
            "inspect {bad:?}"
        );
        assert!(is_invalid(Section::unlink(bad, &o)), "unlink {bad:?}");
        assert!(
            is_invalid(Section::open_or_create(bad, 4096, &o).map(drop)),
            "ooc {bad:?}"
        );
    }
    let longest = "y".repeat(200);
    let s = Section::create(&longest, 1, &o).unwrap();
    assert_eq!(s.name(), longest);
    let s = Section::create("..dots.-_OK", 1, &o).unwrap();
    drop(s);
}

#[test]
fn create_is_exclusive_open_finds_and_unlink_removes() {
    let root = temp_root();
    let o = opts(root.path());
    let err = Section::open("missing", &o).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(matches!(
        Section::inspect("missing", &o),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Section::unlink("missing", &o),
        Err(Error::NotFound { .. })
    ));

    let s = Section::create("one", 10_000, &o).unwrap();
    assert!(s.is_creator());
    assert_eq!(s.len(), 4096 + 12288);
    assert_eq!(s.data_len(), 12288);
    assert_eq!(s.path(), Some(o.path_of("one").unwrap().as_path()));
    let err = Section::create("one", 10_000, &o).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    s.mark_ready().unwrap();
    s.mark_ready().unwrap();

    let opened = Section::open("one", &o).unwrap();
    assert!(!opened.is_creator());
    assert_eq!(opened.len(), s.len());
    assert_eq!(list(&o).unwrap(), vec!["one".to_string()]);
    assert_eq!(Section::list(&o).unwrap(), vec!["one".to_string()]);

    Section::unlink("one", &o).unwrap();
    assert!(matches!(
        Section::open("one", &o),
        Err(Error::NotFound { .. })
    ));
    assert!(list(&o).unwrap().is_empty());
    // Existing mappings survive the unlink.
    write(&opened.region(), 5000, b"still mapped");
    assert_eq!(read(&s.region(), 5000, 12), b"still mapped");
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn sizes_are_checked() {
    let root = temp_root();
    let o = opts(root.path());
    assert!(matches!(
        Section::create("z", 0, &o),
        Err(Error::InvalidSize { .. })
    ));
    assert!(matches!(
        Section::create("z", u64::MAX, &o),
        Err(Error::InvalidSize { .. })
    ));
    assert!(matches!(
        Section::anonymous(0),
        Err(Error::InvalidSize { .. })
    ));
}

#[test]
fn no_space_error_mentions_dev_shm() {
    let e = Error::NoSpace {
        name: "x".into(),
        size: 1 << 30,
        root: "/dev/shm".into(),
    };
    let msg = e.to_string();
    assert!(
        msg.contains("/dev/shm") && msg.contains("64 MiB") && msg.contains("Docker"),
        "{msg}"
    );
}

#[test]
fn objects_are_allocated_checked_and_found() {
    let root = temp_root();
    let o = opts(root.path());
    let mut s = Section::create("objs", 2 * 4096, &o).unwrap();
    let a = s.add_object("a", 10, 100, 8).unwrap();
    let b = s.add_object("b", 11, 1000, 256).unwrap();
    assert!(b.is_aligned_to(256));
    assert!(a.as_ptr() as usize + 100 <= b.as_ptr() as usize);
    let invalid = |r: Result<culvert_section::Region, Error>| {
        matches!(r, Err(Error::InvalidOperation { .. }))
    };
    assert!(invalid(s.add_object("a", 0, 8, 8)), "duplicate");
    assert!(invalid(s.add_object("", 0, 8, 8)), "empty name");
    assert!(invalid(s.add_object(&"n".repeat(33), 0, 8, 8)), "long name");
    assert!(invalid(s.add_object("c", 0, 0, 8)), "zero length");
    assert!(
        invalid(s.add_object("c", 0, 8, 3)),
        "align not a power of two"
    );
    assert!(invalid(s.add_object("c", 0, 8, 8192)), "align too big");
    assert!(invalid(s.add_object("c", 0, 3 * 4096, 8)), "no room");
    assert!(invalid(s.add_object("c", 0, u64::MAX, 8)), "overflow");
    let full = s.add_object(&"c".repeat(32), 0, 6144 - 16, 1024).unwrap();
    assert_eq!(full.len(), 6128);
    assert!(full.is_aligned_to(1024));
    for i in 3..16 {
        s.add_object(&format!("t{i}"), 0, 1, 1)
            .unwrap_or_else(|e| panic!("{i}: {e}"));
    }
    assert!(invalid(s.add_object("t16", 0, 1, 1)), "table full");
    assert_eq!(s.objects().len(), 16);
    let err = s.object("nope").unwrap_err();
    assert!(matches!(err, Error::ObjectNotFound { .. }), "{err}");

    s.mark_ready().unwrap();
    assert!(invalid(s.add_object("late", 0, 1, 1)), "after ready");

    let mut opened = Section::open("objs", &o).unwrap();
    assert_eq!(opened.objects(), s.objects());
    assert!(invalid(opened.add_object("x", 0, 1, 1)), "opener adds");
    assert!(matches!(
        opened.mark_ready(),
        Err(Error::InvalidOperation { .. })
    ));
    let b2 = opened.object("b").unwrap();
    assert_eq!(b2.len(), 1000);
    write(&b, 0, b"shared");
    assert_eq!(read(&b2, 0, 6), b"shared");
    let info = opened.header();
    assert_eq!(info.state, InitState::Ready);
    assert_eq!(info.kind, SectionKind::Raw);
    assert_eq!(info.creator, culvert_sync::ProcessIdentity::current());
    assert_eq!(info.objects[1].kind, 11);
}

#[test]
fn poison_and_kinds() {
    let root = temp_root();
    let o = opts(root.path()).kind(SectionKind::Mailslot);
    let s = Section::create("slot", 4096, &o).unwrap();
    s.mark_ready().unwrap();
    let err = Section::open("slot", &o.clone().expect_kind(SectionKind::Pipe)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongKind {
                found: SectionKind::Mailslot,
                ..
            }
        ),
        "{err}"
    );
    let opened = Section::open("slot", &o.clone().expect_kind(SectionKind::Mailslot)).unwrap();
    assert_eq!(opened.kind(), SectionKind::Mailslot);
    assert_eq!(
        Section::inspect("slot", &o).unwrap().kind,
        SectionKind::Mailslot
    );

    opened.poison();
    assert_eq!(s.state().unwrap(), InitState::Poisoned);
    assert!(matches!(s.mark_ready(), Err(Error::Poisoned { .. })));
    assert!(matches!(
        Section::open("slot", &o),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(
        Section::inspect("slot", &o).unwrap().state,
        InitState::Poisoned
    );
}

#[test]
fn open_or_create_creates_once() {
    let root = temp_root();
    let o = opts(root.path()).kind(SectionKind::Port);
    let (mut a, created) = Section::open_or_create("ooc", 4096, &o).unwrap();
    assert!(created);
    a.add_object("q", 0, 64, 64).unwrap();
    a.mark_ready().unwrap();
    let (b, created) = Section::open_or_create("ooc", 4096, &o).unwrap();
    assert!(!created);
    assert_eq!(b.objects(), a.objects());
    // An existing section of another kind is not taken for ours.
    let err = Section::open_or_create("ooc", 4096, &o.clone().kind(SectionKind::Pipe)).unwrap_err();
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
}

#[test]
fn root_comes_from_options_then_env_then_dev_shm() {
    let o = SectionOptions::default().root("/some/where");
    assert_eq!(
        o.namespace_root().unwrap(),
        std::path::PathBuf::from("/some/where")
    );
    // (The env override is read at call time; this test does not set it to stay
    // independent of other tests running in parallel.)
    if std::env::var_os("CULVERT_ROOT").is_none() {
        assert_eq!(
            SectionOptions::default().namespace_root().unwrap(),
            std::path::PathBuf::from("/dev/shm")
        );
    }
}

#[test]
fn list_ignores_other_files() {
    let root = temp_root();
    let o = opts(root.path());
    for n in ["b", "a"] {
        Section::create(n, 1, &o).unwrap().mark_ready().unwrap();
    }
    std::fs::write(root.path().join("unrelated"), b"x").unwrap();
    std::fs::write(root.path().join("culvert.bad name"), b"x").unwrap();
    assert_eq!(list(&o).unwrap(), vec!["a".to_string(), "b".to_string()]);
    let missing = SectionOptions::default().root(root.path().join("missing"));
    assert!(list(&missing).unwrap().is_empty());
}

#[test]
fn anonymous_sections_work_in_process() {
    let mut s = Section::anonymous(100).unwrap();
    assert!(s.path().is_none());
    let r = s.add_object("r", 0, 100, 8).unwrap();
    s.mark_ready().unwrap();
    let dup = rustix::io::fcntl_dupfd_cloexec(s.as_fd(), 3).unwrap();
    let again = Section::from_fd(dup, "dup").unwrap();
    write(&r, 0, b"memfd");
    assert_eq!(read(&again.object("r").unwrap(), 0, 5), b"memfd");
    // A descriptor of something that is not a section.
    let f = tempfile::tempfile().unwrap();
    let err = Section::from_fd(f.into(), "tmp").unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    let _ = Duration::ZERO;
}
