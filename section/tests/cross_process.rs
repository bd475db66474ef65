//! Sections shared between real processes: the test binary runs itself again as a
//! child playing a role (`culvert_testkit`'s role harness; see `common`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use culvert_section::{Error, InitState, Section, SECTION_FD_ENV};
use culvert_testkit::{cross_test, eventually, pattern, role};

#[test]
fn child_sees_parent_writes_and_parent_sees_childs() {
    let test = cross_test!(child_sees_parent_writes_and_parent_sees_childs);
    if let Some(role) = role() {
        assert_eq!(role, "opener");
        let s = Section::open("shared", &child_opts()).unwrap();
        let data = s.object("data").unwrap();
        assert_eq!(read(&data, 0, 2048), pattern(2048, 7));
        write(&data, 2048, &pattern(2048, 99));
        return;
    }
    let root = temp_root();
    let mut s = Section::create("shared", 64 * 1024, &opts(root.path())).unwrap();
    let data = s.add_object("data", 1, 4096, 64).unwrap();
    write(&data, 0, &pattern(2048, 7));
    s.mark_ready().unwrap();

    let sup = test.supervise(Duration::from_secs(60));
    let opener = sup.spawn(&mut child(test, "opener", root.path()));
    sup.wait_ok(opener);
    assert_eq!(read(&data, 2048, 2048), pattern(2048, 99));
}

#[test]
fn creator_killed_before_ready_leaves_section_stale() {
    let test = cross_test!(creator_killed_before_ready_leaves_section_stale);
    if let Some(role) = role() {
        assert_eq!(role, "hanging-creator");
        let mut s = Section::create("stale", 4096, &child_opts()).unwrap();
        s.add_object("half", 0, 64, 8).unwrap();
        // Never marks ready; the parent kills us.
        std::thread::sleep(Duration::from_secs(60));
        drop(s);
        return;
    }
    let root = temp_root();
    let o = opts(root.path());
    let sup = test.supervise(Duration::from_secs(60));
    let c = sup.spawn(&mut child(test, "hanging-creator", root.path()));
    let created = eventually(Duration::from_secs(20), || {
        matches!(
            Section::inspect("stale", &o),
            Ok(h) if h.state == InitState::Initializing && h.objects.len() == 1
        )
    });
    assert!(created, "child never created the section");
    let info = Section::inspect("stale", &o).unwrap();
    assert_eq!(info.creator.pid, sup.pid(c));
    assert!(!info.is_stale());

    sup.kill(c);
    sup.wait(c);

    let start = Instant::now();
    let err = Section::open("stale", &o.clone().open_timeout(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(err, Error::Stale { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "Stale took {:?}",
        start.elapsed()
    );
    assert!(Section::inspect("stale", &o).unwrap().is_stale());
    Section::unlink("stale", &o).unwrap();
}

#[test]
fn other_user_is_denied_a_private_section() {
    let test = cross_test!(other_user_is_denied_a_private_section);
    const NOBODY: u32 = 65534;
    if let Some(role) = role() {
        assert_eq!(role, "other-user");
        assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
        let o = child_opts();
        let err = Section::open("private", &o).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        let s = Section::open("public", &o).unwrap();
        write(&s.object("data").unwrap(), 0, b"from nobody");
        return;
    }
    if !rustix::process::geteuid().is_root() {
        println!(
            "note: other_user_is_denied_a_private_section needs root (to switch users); skipped"
        );
        return;
    }
    // A namespace uid 65534 can traverse (tempdirs are 0700).
    let root = tempfile::Builder::new()
        .prefix("culvert-section-users.")
        .tempdir_in("/tmp")
        .unwrap();
    rustix::fs::chmod(root.path(), rustix::fs::Mode::from_raw_mode(0o777)).unwrap();
    let o = opts(root.path());

    let mut private = Section::create("private", 4096, &o).unwrap();
    private.add_object("data", 0, 64, 8).unwrap();
    private.mark_ready().unwrap();
    let mut public = Section::create("public", 4096, &o.clone().mode(0o666)).unwrap();
    let data = public.add_object("data", 0, 64, 8).unwrap();
    public.mark_ready().unwrap();
    let mode = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(o.path_of(name).unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("private"), 0o600);
    assert_eq!(mode("public"), 0o666, "mode must not be cut by the umask");

    let mut cmd = child(test, "other-user", root.path());
    {
        use std::os::unix::process::CommandExt;
        cmd.gid(NOBODY).uid(NOBODY);
    }
    let sup = test.supervise(Duration::from_secs(60));
    let other = match sup.try_spawn(&mut cmd) {
        Ok(other) => other,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            println!("note: uid {NOBODY} cannot execute the test binary ({e}); skipped");
            return;
        }
        Err(e) => panic!("spawn: {e}"),
    };
    sup.wait_ok(other);
    assert_eq!(read(&data, 0, 11), b"from nobody");
}

#[test]
fn anonymous_section_is_inherited_by_child() {
    let test = cross_test!(anonymous_section_is_inherited_by_child);
    if let Some(role) = role() {
        assert_eq!(role, "inheritor");
        let s = Section::from_inherited_env(SECTION_FD_ENV).unwrap();
        assert_eq!(s.state().unwrap(), InitState::Ready);
        let data = s.object("data").unwrap();
        assert_eq!(read(&data, 0, 1000), pattern(1000, 3));
        write(&data, 1000, &pattern(1000, 42));
        // Adopting the same descriptor twice is refused.
        assert!(Section::from_inherited_env(SECTION_FD_ENV).is_err());
        return;
    }
    let mut s = Section::anonymous(8192).unwrap();
    let data = s.add_object("data", 5, 4096, 128).unwrap();
    write(&data, 0, &pattern(1000, 3));
    s.mark_ready().unwrap();

    // The seals forbid shrinking (a peer could otherwise make us fault) and growing.
    let len = s.len() as u64;
    assert_eq!(
        rustix::fs::ftruncate(s.as_fd(), 4096),
        Err(rustix::io::Errno::PERM)
    );
    assert_eq!(
        rustix::fs::ftruncate(s.as_fd(), len * 2),
        Err(rustix::io::Errno::PERM)
    );

    let mut cmd = child(test, "inheritor", std::path::Path::new("/nonexistent"));
    s.pass_to_child(&mut cmd, SECTION_FD_ENV).unwrap();
    let sup = test.supervise(Duration::from_secs(60));
    let inheritor = sup.spawn(&mut cmd);
    sup.wait_ok(inheritor);
    assert_eq!(read(&data, 1000, 1000), pattern(1000, 42));
}

#[test]
fn inherited_env_rejects_bad_values() {
    if role().is_some() {
        return;
    }
    // Not set, not a number, a standard stream: typed errors, nothing adopted.
    assert!(Section::from_inherited_env("CULVERT_SECTION_TEST_UNSET_VAR").is_err());
}

#[test]
fn opener_waits_for_ready() {
    if role().is_some() {
        return;
    }
    let root = temp_root();
    let o = opts(root.path());
    let mut s = Section::create("later", 4096, &o).unwrap();
    let creator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let r = s.add_object("x", 0, 100, 4).unwrap();
        write(&r, 0, b"ready");
        s.mark_ready().unwrap();
        s
    });
    let start = Instant::now();
    let opened = Section::open("later", &o).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "did not wait: {waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "woke late: {waited:?}");
    assert_eq!(read(&opened.object("x").unwrap(), 0, 5), b"ready");
    let _s = creator.join().unwrap();
}

#[test]
fn open_times_out_while_initializing() {
    if role().is_some() {
        return;
    }
    let root = temp_root();
    let o = opts(root.path());
    let _creator = Section::create("slow", 4096, &o).unwrap();
    let start = Instant::now();
    let err =
        Section::open("slow", &o.clone().open_timeout(Duration::from_millis(300))).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn creator_dropping_before_ready_poisons() {
    if role().is_some() {
        return;
    }
    let root = temp_root();
    let o = opts(root.path());
    let s = Section::create("dropped", 4096, &o).unwrap();
    drop(s);
    let err = Section::open("dropped", &o).unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
}
