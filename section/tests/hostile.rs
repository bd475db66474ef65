//! Hostile section files: every one gives a typed error, never a panic or SIGBUS.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use culvert_section::layout::{SectionHeader, DATA_OFFSET, HEADER_SIZE, PAGE};
use culvert_section::{Error, Section, SectionOptions};
use rand::RngCore;

/// Bytes of a valid, ready section with two objects (its creator has exited: `nobody`
/// never lives, but the section is ready so that does not matter).
fn valid_image(root: &Path) -> Vec<u8> {
    let o = opts(root);
    let mut s = Section::create("template", 2 * PAGE, &o).unwrap();
    s.add_object("a", 1, 100, 8).unwrap();
    s.add_object("b", 2, 200, 64).unwrap();
    s.mark_ready().unwrap();
    drop(s);
    let bytes = std::fs::read(o.path_of("template").unwrap()).unwrap();
    Section::unlink("template", &o).unwrap();
    bytes
}

fn with_header(image: &[u8], f: impl FnOnce(&mut SectionHeader)) -> Vec<u8> {
    let mut h = SectionHeader::read(image).unwrap();
    f(&mut h);
    let mut out = image.to_vec();
    out[..HEADER_SIZE].copy_from_slice(h.bytes());
    out
}

fn open_bytes(o: &SectionOptions, name: &str, bytes: &[u8]) -> Result<Section, Error> {
    std::fs::write(o.path_of(name).unwrap(), bytes).unwrap();
    // inspect must be as safe as open.
    let inspected = Section::inspect(name, o);
    let opened = Section::open(name, o);
    if let Err(e) = &opened {
        if !matches!(
            e,
            Error::Stale { .. } | Error::Timeout { .. } | Error::Poisoned { .. }
        ) {
            assert!(
                inspected.is_err(),
                "{name}: open failed ({e}) but inspect accepted it"
            );
        }
    }
    opened
}

#[track_caller]
fn assert_corrupted(r: Result<Section, Error>, case: &str) {
    match r {
        Err(Error::Corrupted { what, .. }) => println!("{case}: Corrupted: {what}"),
        Err(e) => panic!("{case}: expected Corrupted, got {e}"),
        Ok(_) => panic!("{case}: expected Corrupted, opened"),
    }
}

#[test]
fn hostile_files_give_typed_errors() {
    let root = temp_root();
    let o = opts(root.path()).open_timeout(Duration::from_millis(200));
    let valid = valid_image(root.path());
    assert_eq!(valid.len() as u64, DATA_OFFSET + 2 * PAGE);
    let ok = open_bytes(&o, "valid", &valid).unwrap();
    assert_eq!(ok.objects().len(), 2);

    let mut random = vec![0u8; 3 * PAGE as usize];
    rand::rng().fill_bytes(&mut random);
    assert_corrupted(open_bytes(&o, "random", &random), "random bytes");
    assert_corrupted(open_bytes(&o, "empty", &[]), "empty file");
    assert_corrupted(
        open_bytes(&o, "truncated", &valid[..HEADER_SIZE / 2]),
        "truncated header",
    );
    assert_corrupted(
        open_bytes(&o, "short", &valid[..DATA_OFFSET as usize]),
        "file shorter than the header claims",
    );

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "wrong_magic",
            with_header(&valid, |h| h.magic = *b"NOTMAGIC"),
        ),
        ("wrong_version", with_header(&valid, |h| h.version = 99)),
        ("unknown_kind", with_header(&valid, |h| h.kind = 1234)),
        ("unknown_state", with_header(&valid, |h| h.state = 77)),
        (
            "size_beyond_file",
            with_header(&valid, |h| h.total_size += 16 * PAGE),
        ),
        (
            "huge_size",
            with_header(&valid, |h| h.total_size = !(PAGE - 1)),
        ),
        ("unaligned_size", with_header(&valid, |h| h.total_size -= 1)),
        (
            "tiny_size",
            with_header(&valid, |h| h.total_size = PAGE / 2),
        ),
        (
            "object_past_end",
            with_header(&valid, |h| h.objects[1].offset = h.total_size - 64),
        ),
        (
            "object_overflow",
            with_header(&valid, |h| h.objects[0].offset = u64::MAX - 7),
        ),
        (
            "object_huge_len",
            with_header(&valid, |h| h.objects[0].len = u64::MAX),
        ),
        (
            "object_in_header",
            with_header(&valid, |h| h.objects[0].offset = 64),
        ),
        (
            "object_count",
            with_header(&valid, |h| h.object_count = 1000),
        ),
        (
            "object_bad_align",
            with_header(&valid, |h| h.objects[1].align = 48),
        ),
        (
            "object_bad_name",
            with_header(&valid, |h| h.objects[0].name[0] = b'/'),
        ),
        (
            "objects_overlap",
            with_header(&valid, |h| h.objects[1].offset = h.objects[0].offset),
        ),
    ];
    for (name, bytes) in &cases {
        assert_corrupted(open_bytes(&o, name, bytes), name);
    }

    // Not a regular file.
    std::fs::create_dir(o.path_of("dir").unwrap()).unwrap();
    assert!(Section::open("dir", &o).is_err());
    assert!(Section::inspect("dir", &o).is_err());
    let fifo = o.path_of("fifo").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_corrupted(Section::open("fifo", &o), "fifo");

    // A symlink to a valid section is not followed.
    std::os::unix::fs::symlink(o.path_of("valid").unwrap(), o.path_of("link").unwrap()).unwrap();
    let err = Section::open("link", &o).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");

    // Initializing with a creator that never lived: stale at once, not a wait.
    let start = std::time::Instant::now();
    let nobody = with_header(&valid, |h| {
        h.state = 0;
        h.creator_pid = 0;
    });
    let err = open_bytes(
        &o.clone().open_timeout(Duration::from_secs(5)),
        "nobody",
        &nobody,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Stale { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));

    // Poisoned.
    let poisoned = with_header(&valid, |h| h.state = 2);
    let err = open_bytes(&o, "poisoned", &poisoned).unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");

    // A file owned by another user is not trusted (needs root to chown).
    if rustix::process::geteuid().is_root() {
        let p = o.path_of("foreign").unwrap();
        std::fs::write(&p, &valid).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let err = Section::open("foreign", &o).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        Section::open("foreign", &o.clone().allow_any_owner(true)).unwrap();
    }
}

#[test]
fn scribbling_after_open_does_not_move_objects() {
    let root = temp_root();
    let o = opts(root.path());
    let mut s = Section::create("scribble", 4096, &o).unwrap();
    s.add_object("a", 1, 100, 8).unwrap();
    s.mark_ready().unwrap();
    let opened = Section::open("scribble", &o).unwrap();
    // A peer overwrites the whole header with garbage.
    let whole = opened.region();
    write(&whole, 0, &[0xff; HEADER_SIZE]);
    // The table copy taken at open still answers, in bounds.
    let a = opened.object("a").unwrap();
    assert_eq!(a.len(), 100);
    assert!(opened.state().is_err(), "unknown state is reported");
    assert_eq!(opened.header().state, culvert_section::InitState::Poisoned);
    // New openers get a typed error.
    assert!(Section::open("scribble", &o).is_err());
    assert!(Section::inspect("scribble", &o).is_err());
}
