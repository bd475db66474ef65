//! Helpers shared by the binary's end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_culvert");

/// `culvert --root DIR args...` with `CULVERT_ROOT=DIR` too.
pub fn culvert(root: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("CULVERT_ROOT", root).arg("--root").arg(root);
    c
}

pub fn run(root: &Path, args: &[&str]) -> Output {
    culvert(root).args(args).output().expect("run culvert")
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
