//! Helpers shared by the integration tests: per-test namespace roots and re-executing
//! the test binary as a child process in a given role (the ipc-channel pattern).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use culvert_section::SectionOptions;

/// Environment variable naming the child's role; set only in children.
pub const ROLE_ENV: &str = "CULVERT_SECTION_TEST_ROLE";
/// Environment variable carrying the namespace root to the child.
pub const ROOT_ENV: &str = "CULVERT_SECTION_TEST_ROOT";

/// The role of this process, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A fresh namespace directory for one test.
pub fn temp_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("culvert-section-test.")
        .tempdir()
        .expect("temp dir")
}

/// Options rooted at `root`.
pub fn opts(root: &Path) -> SectionOptions {
    SectionOptions::default().root(root)
}

/// Options for a child, from the environment its parent set.
pub fn child_opts() -> SectionOptions {
    let root = PathBuf::from(std::env::var_os(ROOT_ENV).expect("child without root"));
    SectionOptions::default().root(root)
}

/// A command re-running this test binary, only test `test`, in role `role`.
pub fn child(test: &str, role: &str, root: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(ROOT_ENV, root);
    c
}

/// What a child prints when its role succeeded; a child that ran no test (a wrong
/// name) would exit 0 without it.
pub fn ok_marker(role: &str) -> String {
    format!("CHILD-ROLE-OK:{role}")
}

/// Prints the success marker (called at the end of a child role).
pub fn child_done(role: &str) {
    println!("{}", ok_marker(role));
}

/// Asserts that a child exited successfully and printed its marker.
pub fn assert_child_ok(out: &Output, role: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&ok_marker(role)),
        "child role {role} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// Writes `bytes` at the start of a region.
pub fn write(region: &culvert_section::Region, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= region.len());
    // SAFETY: bounds checked above; the region is alive.
    unsafe {
        region
            .as_ptr()
            .add(offset)
            .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
    };
}

/// Reads `len` bytes at `offset` of a region.
pub fn read(region: &culvert_section::Region, offset: usize, len: usize) -> Vec<u8> {
    assert!(offset + len <= region.len());
    let mut out = vec![0u8; len];
    // SAFETY: bounds checked above; the region is alive.
    unsafe {
        region
            .as_ptr()
            .add(offset)
            .copy_to_nonoverlapping(out.as_mut_ptr(), len)
    };
    out
}

/// A recognisable pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
