//! Helpers shared by the integration tests: section options for a test's namespace
//! root, children of `culvert_testkit`'s role harness that get that root as the role
//! argument [`ROOT`], and raw reads and writes of a region.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use culvert_section::SectionOptions;
use culvert_testkit::{role_arg, ChildCommand, CrossTest, TempRoot};

/// The role argument carrying the namespace root to a child.
pub const ROOT: &str = "ROOT";

/// A fresh namespace directory for one test.
pub fn temp_root() -> TempRoot {
    TempRoot::new("section")
}

/// Options rooted at `root`.
pub fn opts(root: &Path) -> SectionOptions {
    SectionOptions::default().root(root)
}

/// The namespace root of a child (the role argument [`ROOT`]).
pub fn child_root() -> PathBuf {
    PathBuf::from(role_arg(ROOT))
}

/// Options for a child, rooted where its parent said.
pub fn child_opts() -> SectionOptions {
    SectionOptions::default().root(child_root())
}

/// A command running `test` again as a child playing `role`, in namespace `root`.
pub fn child(test: CrossTest, role: &str, root: &Path) -> Command {
    let mut c = test.command(role);
    c.role_arg(ROOT, root);
    c
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
