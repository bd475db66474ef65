//! The namespace directory: an empty one (from `SectionOptions::root` or
//! `CULVERT_ROOT`) is a typed error for every named operation, never the current
//! directory or a silent fall-back. Each case runs in a child process started in an
//! empty directory with its own environment, so nothing here changes this process's
//! environment and a regression cannot litter the source tree.

mod common;

use std::time::Duration;

use common::*;
use culvert_section::{list, Error, Section, SectionOptions, ROOT_ENV};
use culvert_testkit::{cross_test, role, CrossTest};

/// Every named operation under `o` fails with `InvalidRoot`, and the current
/// directory stays empty.
fn assert_every_operation_rejects(o: &SectionOptions) {
    let invalid = |what: &str, r: Result<(), Error>| {
        assert!(matches!(r, Err(Error::InvalidRoot { .. })), "{what}: {r:?}");
    };
    invalid("namespace_root", o.namespace_root().map(drop));
    invalid("path_of", o.path_of("x").map(drop));
    invalid("create", Section::create("x", 4096, o).map(drop));
    invalid("open", Section::open("x", o).map(drop));
    invalid(
        "open_or_create",
        Section::open_or_create("x", 4096, o).map(drop),
    );
    invalid("inspect", Section::inspect("x", o).map(drop));
    invalid("unlink", Section::unlink("x", o));
    invalid("list", list(o).map(drop));
    let left: Vec<_> = std::fs::read_dir(".").unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "files made in the current directory: {left:?}"
    );
}

fn run_child(test: CrossTest, role: &str, env_root: Option<&str>) {
    let root = temp_root();
    let cwd = temp_root();
    let mut cmd = child(test, role, root.path());
    cmd.current_dir(cwd.path());
    match env_root {
        Some(v) => cmd.env(ROOT_ENV, v),
        None => cmd.env_remove(ROOT_ENV),
    };
    let sup = test.supervise(Duration::from_secs(60));
    let c = sup.spawn(&mut cmd);
    sup.wait_ok(c);
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

#[test]
fn empty_root_option_is_invalid() {
    if let Some(role) = role() {
        if role == "empty-option" {
            assert_every_operation_rejects(&SectionOptions::default().root(""));
        }
        return;
    }
    run_child(
        cross_test!(empty_root_option_is_invalid),
        "empty-option",
        None,
    );
}

#[test]
fn empty_root_env_is_invalid() {
    if let Some(role) = role() {
        if role == "empty-env" {
            assert_eq!(std::env::var_os(ROOT_ENV).as_deref(), Some("".as_ref()));
            assert_every_operation_rejects(&SectionOptions::default());
            // An explicit root still wins over the bad variable.
            let o = SectionOptions::default().root(child_root());
            Section::create("fine", 4096, &o)
                .unwrap()
                .mark_ready()
                .unwrap();
            Section::open("fine", &o).unwrap();
        }
        return;
    }
    run_child(
        cross_test!(empty_root_env_is_invalid),
        "empty-env",
        Some(""),
    );
}
