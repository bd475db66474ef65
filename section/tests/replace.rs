//! `Section::create_replacing_stale`: every branch (free name, live, stale by the
//! caller's judgement, stale by a dead creator, poisoned, still initializing, another
//! kind, not a section), the inode re-check, and concurrent replacers.

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use culvert_section::layout::{SectionHeader, HEADER_SIZE};
use culvert_section::{Error, InitState, Section, SectionKind, SectionOptions};
use culvert_testkit::{cross_test, role};

/// Device and inode of the file at the section name.
fn file_id(o: &SectionOptions, name: &str) -> (u64, u64) {
    let m = std::fs::symlink_metadata(o.path_of(name).unwrap()).unwrap();
    (m.dev(), m.ino())
}

/// Device and inode of a section's own file.
fn section_id(s: &Section) -> (u64, u64) {
    let f = std::fs::File::from(s.as_fd().try_clone_to_owned().unwrap());
    let m = f.metadata().unwrap();
    (m.dev(), m.ino())
}

/// A ready section `name` holding an object `marker`.
fn ready(o: &SectionOptions, name: &str, marker: &str) -> Section {
    let mut s = Section::create(name, 4096, o).unwrap();
    s.add_object(marker, 0, 64, 8).unwrap();
    s.mark_ready().unwrap();
    s
}

/// Plants at `name` the bytes of a section whose header `patch` changed.
fn plant(o: &SectionOptions, name: &str, patch: impl FnOnce(&mut SectionHeader)) {
    drop(ready(o, "template", "old"));
    let path = o.path_of("template").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    Section::unlink("template", o).unwrap();
    let mut h = SectionHeader::read(&bytes).unwrap();
    patch(&mut h);
    bytes[..HEADER_SIZE].copy_from_slice(h.bytes());
    std::fs::write(o.path_of(name).unwrap(), bytes).unwrap();
}

fn never_called(_: &Section) -> bool {
    panic!("is_stale must not be called here")
}

fn has(s: &Section, object: &str) -> bool {
    s.object(object).is_ok()
}

#[test]
fn free_name_is_created_without_judging() {
    let root = temp_root();
    let o = opts(root.path());
    let s = Section::create_replacing_stale("free", 4096, &o, never_called).unwrap();
    assert!(s.is_creator());
    assert_eq!(section_id(&s), file_id(&o, "free"));
}

#[test]
fn live_section_is_kept() {
    let root = temp_root();
    let o = opts(root.path());
    let live = ready(&o, "live", "old");
    let mut asked = 0;
    let err = Section::create_replacing_stale("live", 4096, &o, |s| {
        asked += 1;
        assert!(has(s, "old"));
        false
    })
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(asked, 1);
    assert_eq!(file_id(&o, "live"), section_id(&live));
}

#[test]
fn section_judged_stale_is_replaced() {
    let root = temp_root();
    let o = opts(root.path());
    let old = ready(&o, "judged", "old");
    let new = Section::create_replacing_stale("judged", 4096, &o, |s| has(s, "old")).unwrap();
    assert!(new.is_creator());
    assert_eq!(file_id(&o, "judged"), section_id(&new));
    assert_ne!(section_id(&old), section_id(&new));
    // The old mapping stays usable for whoever holds it; no temporary file is left.
    assert!(has(&old, "old"));
    let files: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, vec!["culvert.judged".to_string()]);
}

#[test]
fn dead_creators_unfinished_section_is_replaced_without_judging() {
    let root = temp_root();
    let o = opts(root.path());
    plant(&o, "unfinished", |h| {
        h.state = InitState::Initializing.as_u32();
        h.creator_pid = 0;
    });
    assert!(matches!(
        Section::open("unfinished", &o),
        Err(Error::Stale { .. })
    ));
    let new = Section::create_replacing_stale("unfinished", 4096, &o, never_called).unwrap();
    assert_eq!(file_id(&o, "unfinished"), section_id(&new));
}

#[test]
fn poisoned_section_is_replaced_without_judging() {
    let root = temp_root();
    let o = opts(root.path());
    let old = ready(&o, "poisoned", "old");
    old.poison();
    let new = Section::create_replacing_stale("poisoned", 4096, &o, never_called).unwrap();
    assert_eq!(file_id(&o, "poisoned"), section_id(&new));
}

#[test]
fn section_initializing_by_a_live_creator_is_kept_at_once() {
    let root = temp_root();
    let o = opts(root.path()).open_timeout(Duration::from_secs(5));
    let creating = Section::create("busy", 4096, &o).unwrap();
    let started = Instant::now();
    let err = Section::create_replacing_stale("busy", 4096, &o, never_called).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
    assert_eq!(file_id(&o, "busy"), section_id(&creating));
}

#[test]
fn section_of_another_kind_is_kept() {
    let root = temp_root();
    let o = opts(root.path());
    let other = ready(&o.clone().kind(SectionKind::Pipe), "other", "old");
    let err = Section::create_replacing_stale("other", 4096, &o.kind(SectionKind::Port), |_| {
        panic!("another kind is never judged")
    })
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(file_id(&opts(root.path()), "other"), section_id(&other));
}

#[test]
fn files_that_are_not_sections_are_left_alone() {
    let root = temp_root();
    let o = opts(root.path());
    // Garbage bytes.
    let garbage = o.path_of("garbage").unwrap();
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = Section::create_replacing_stale("garbage", 4096, &o, never_called).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a; 8192]);
    // An empty file.
    let empty = o.path_of("empty").unwrap();
    std::fs::write(&empty, b"").unwrap();
    let err = Section::create_replacing_stale("empty", 4096, &o, never_called).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(empty.exists());
    // A symlink to a stale section: neither the link nor its target is touched.
    plant(&o, "target", |h| h.state = InitState::Poisoned.as_u32());
    let link = o.path_of("link").unwrap();
    std::os::unix::fs::symlink(o.path_of("target").unwrap(), &link).unwrap();
    let err = Section::create_replacing_stale("link", 4096, &o, never_called).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(o.path_of("target").unwrap().exists());
    // A directory.
    let dir = o.path_of("dir").unwrap();
    std::fs::create_dir(&dir).unwrap();
    assert!(Section::create_replacing_stale("dir", 4096, &o, never_called).is_err());
    assert!(dir.is_dir());
}

#[test]
fn arguments_are_checked_first() {
    let root = temp_root();
    let o = opts(root.path());
    let r = Section::create_replacing_stale("a/b", 4096, &o, never_called);
    assert!(matches!(r, Err(Error::InvalidName { .. })));
    let r = Section::create_replacing_stale("x", 0, &o, never_called);
    assert!(matches!(r, Err(Error::InvalidSize { .. })));
    let r = Section::create_replacing_stale("x", 4096, &o.clone().root(""), never_called);
    assert!(matches!(r, Err(Error::InvalidRoot { .. })));
}

/// The name is replaced by someone else after we judged the old section stale: the
/// fresh section must survive, and is judged on its own.
#[test]
fn a_section_replaced_after_judging_is_not_removed() {
    let root = temp_root();
    let o = opts(root.path());
    drop(ready(&o, "moved", "old"));
    let mut fresh = None;
    let mut calls = 0;
    let err = Section::create_replacing_stale("moved", 4096, &o, |s| {
        calls += 1;
        if calls == 1 {
            // Another party replaces the name between our judgement and removal.
            Section::unlink("moved", &o).unwrap();
            fresh = Some(ready(&o, "moved", "fresh"));
            true
        } else {
            assert!(has(s, "fresh"));
            false
        }
    })
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(calls, 2);
    assert_eq!(file_id(&o, "moved"), section_id(fresh.as_ref().unwrap()));
}

/// Several replacers at once on a name holding a stale section: exactly one creates,
/// the others get `AlreadyExists`, and the winner's section is the one at the name.
#[test]
fn concurrent_replacers_never_remove_each_others_section() {
    const THREADS: usize = 8;
    for round in 0..20 {
        let root = temp_root();
        let o = opts(root.path());
        let name = format!("race{round}");
        if round % 2 == 0 {
            drop(ready(&o, &name, "old"));
        } else {
            plant(&o, &name, |h| {
                h.state = InitState::Initializing.as_u32();
                h.creator_pid = 0;
            });
        }
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (o, name, barrier) = (o.clone(), name.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = Section::create_replacing_stale(&name, 4096, &o, |s| !has(s, "fresh"));
                    r.map(|mut s| {
                        s.add_object("fresh", 0, 64, 8).unwrap();
                        s.mark_ready().unwrap();
                        s
                    })
                })
            })
            .collect();
        let mut winners = Vec::new();
        for h in handles {
            match h.join().unwrap() {
                Ok(s) => winners.push(s),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners");
        assert_eq!(file_id(&o, &name), section_id(&winners[0]), "round {round}");
        assert!(has(&Section::open(&name, &o).unwrap(), "fresh"));
        let files = std::fs::read_dir(root.path()).unwrap().count();
        assert_eq!(files, 1, "round {round}: stray files");
    }
}

/// The same race between processes (the lock is per open file description, so
/// threads and processes are alike; this checks the process case).
#[test]
fn concurrent_replacing_processes_leave_one_survivor() {
    const CHILDREN: usize = 4;
    if let Some(role) = role() {
        if role == "replacer" {
            let o = child_opts();
            let go = child_root().join("go");
            while !go.exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
            match Section::create_replacing_stale("proc", 4096, &o, |s| !has(s, "fresh")) {
                Ok(mut s) => {
                    s.add_object("fresh", 0, 64, 8).unwrap();
                    s.mark_ready().unwrap();
                    let (dev, ino) = section_id(&s);
                    println!("WON {dev}:{ino}");
                    // Keep the creator alive until the parent has looked.
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(Error::AlreadyExists { .. }) => println!("LOST"),
                Err(e) => panic!("{e}"),
            }
        }
        return;
    }
    let root = temp_root();
    let o = opts(root.path());
    drop(ready(&o, "proc", "old"));
    let test = cross_test!(concurrent_replacing_processes_leave_one_survivor);
    let sup = test.supervise(Duration::from_secs(60));
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| sup.spawn(&mut child(test, "replacer", root.path())))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(root.path().join("go"), b"").unwrap();
    let mut won = Vec::new();
    for c in children {
        sup.wait_ok(c);
        let stdout = sup.stdout(c);
        // The harness prints "test NAME ... " on the same line first.
        if let Some(id) = stdout.lines().find_map(|l| l.split("WON ").nth(1)) {
            won.push(id.trim().to_string());
        } else {
            assert!(stdout.contains("LOST"), "{stdout}");
        }
    }
    assert_eq!(won.len(), 1, "winners: {won:?}");
    let (dev, ino) = file_id(&o, "proc");
    assert_eq!(won[0], format!("{dev}:{ino}"));
}
