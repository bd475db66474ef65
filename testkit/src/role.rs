//! Cross-process tests: a test runs its own test binary again, as a child that plays a
//! named role.
//!
//! Contract:
//! * the child is `<this test binary> <test> --exact --nocapture --test-threads=1`, with
//!   the role in [`ROLE_ENV`]; it runs the same test function, where [`role`] returns
//!   the role, so the function plays it instead of the parent's part (the ipc-channel
//!   pattern: no `fork` without `exec`);
//! * a test names itself with [`cross_test!`](crate::cross_test!), from `module_path!()` and the function's
//!   identifier, never as a string: the compiler checks the identifier names a
//!   function, and a [`Supervisor`] fails a child that ran no test;
//! * arguments reach a child as environment variables, set with
//!   [`ChildCommand::role_arg`] and read with [`role_arg`]; a namespace root travels in
//!   `CULVERT_ROOT` ([`ChildCommand::namespace`], [`namespace`]);
//! * a child's stdin is null and its stdout and stderr are piped, for its supervisor to
//!   capture; a caller may set them otherwise before spawning.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use crate::Supervisor;

/// Environment variable holding the role of a child.
pub const ROLE_ENV: &str = "CULVERT_TEST_ROLE";
/// Environment variable naming the namespace root culvert uses when none is given.
pub const ROOT_ENV: &str = "CULVERT_ROOT";
/// Prefix of the environment variables carrying a child's arguments.
const ARG_PREFIX: &str = "CULVERT_TEST_ARG_";

/// The [`CrossTest`] of test function `$test` (an identifier in scope, usually the
/// function the macro is written in).
#[macro_export]
macro_rules! cross_test {
    ($test:ident) => {{
        $crate::role::is_fn(&$test);
        $crate::CrossTest::from_path(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!($test)
        ))
    }};
}

/// Compiles only for a function without arguments: what [`cross_test!`] names.
#[doc(hidden)]
pub fn is_fn<R>(_: &impl Fn() -> R) {}

/// One test, as the test harness names it: what a child re-runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossTest {
    name: &'static str,
}

impl CrossTest {
    /// The test at `path` (`crate::module::function`, from `module_path!()`); the test
    /// harness names it without the crate.
    pub fn from_path(path: &'static str) -> CrossTest {
        let name = path.split_once("::").map_or(path, |(_, rest)| rest);
        CrossTest { name }
    }

    /// The name the test harness knows the test by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The harness arguments that run only this test, its output not captured.
    pub fn harness_args(&self) -> [&'static str; 4] {
        [self.name, "--exact", "--nocapture", "--test-threads=1"]
    }

    /// A command running this test again as a child playing `role`.
    pub fn command(&self, role: &str) -> Command {
        let mut cmd = Command::new(current_exe());
        cmd.args(self.harness_args());
        child_stdio(&mut cmd, role);
        cmd
    }

    /// A command running `program` with `args`, then this test binary and the harness
    /// arguments as further arguments, playing `role`: for a wrapper (a shell setting
    /// limits, say) that `exec`s the test binary.
    pub fn command_via(&self, program: &str, args: &[&str], role: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).arg(current_exe()).args(self.harness_args());
        child_stdio(&mut cmd, role);
        cmd
    }

    /// A supervisor for this test's children, with an outer deadline `limit` from now.
    pub fn supervise(&self, limit: Duration) -> Supervisor {
        Supervisor::new(self.name, limit)
    }
}

fn current_exe() -> PathBuf {
    std::env::current_exe().expect("the path of this test binary")
}

fn child_stdio(cmd: &mut Command, role: &str) {
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

/// The role this process plays: `Some` in a child, `None` in the parent test.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Plays this process's role if it is a child: runs the function `roles` pairs with it
/// (panicking on a role not there) and returns `true`, for the test to return. Returns
/// `false` in the parent test.
pub fn play_role(roles: &[(&str, fn())]) -> bool {
    let Some(r) = role() else {
        return false;
    };
    match roles.iter().find(|(name, _)| *name == r) {
        Some((_, play)) => play(),
        None => panic!("unknown role {r}"),
    }
    true
}

/// Argument `key` of this child (set by the parent with [`ChildCommand::role_arg`]);
/// panics if it was not given.
pub fn role_arg(key: &str) -> String {
    std::env::var(format!("{ARG_PREFIX}{key}"))
        .unwrap_or_else(|_| panic!("role argument {key} missing"))
}

/// Argument `key` of this child, parsed; panics if it is missing or malformed.
pub fn role_arg_parsed<T: FromStr>(key: &str) -> T {
    role_arg(key)
        .parse()
        .unwrap_or_else(|_| panic!("role argument {key} malformed"))
}

/// The namespace root of this child (its `CULVERT_ROOT`); panics if it has none.
pub fn namespace() -> PathBuf {
    PathBuf::from(std::env::var_os(ROOT_ENV).expect("child without CULVERT_ROOT"))
}

/// What a parent sets on a child's command.
pub trait ChildCommand {
    /// Passes argument `key` = `value` to the child ([`role_arg`]).
    fn role_arg(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Command;
    /// Makes `root` the child's default namespace root (`CULVERT_ROOT`).
    fn namespace(&mut self, root: impl AsRef<Path>) -> &mut Command;
}

impl ChildCommand for Command {
    fn role_arg(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Command {
        self.env(format!("{ARG_PREFIX}{key}"), value)
    }

    fn namespace(&mut self, root: impl AsRef<Path>) -> &mut Command {
        self.env(ROOT_ENV, root.as_ref())
    }
}
