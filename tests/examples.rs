//! Runs every example in `examples/` (Cargo builds them before integration tests) and
//! checks that it exits with status 0 and prints its closing line. Each run gets its
//! own namespace directory through `CULVERT_ROOT`, and is killed if it overruns.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use culvert_testkit::{ChildCommand, Supervisor, TempRoot};

/// Longest an example may run (they finish in well under a second).
const LIMIT: Duration = Duration::from_secs(30);

/// `target/<profile>/examples/<name>`: this test binary lives in `target/<profile>/deps`.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

/// Runs example `name`, asserts success and that its stdout has the line `expect`.
fn run_example(name: &str, expect: &str) {
    let bin = example_binary(name);
    assert!(bin.is_file(), "example binary not built: {}", bin.display());
    let root = TempRoot::new(name);
    let sup = Supervisor::new(format!("example {name}"), LIMIT);
    let child = sup.spawn(
        Command::new(&bin)
            .namespace(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    sup.wait_ok(child);
    let (stdout, stderr) = (sup.stdout(child), sup.stderr(child));
    assert!(
        stdout.lines().any(|l| l == expect),
        "example {name} did not print {expect:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn named_pipe() {
    run_example("named_pipe", "named_pipe: ok");
}

#[test]
fn anonymous_pipe_child() {
    run_example("anonymous_pipe_child", "anonymous_pipe_child: ok");
}

#[test]
fn mailslot_writers() {
    run_example("mailslot_writers", "mailslot_writers: ok");
}

#[test]
fn broadcast_group() {
    run_example("broadcast_group", "broadcast_group: ok");
}

#[test]
fn port_rpc() {
    run_example("port_rpc", "port_rpc: ok");
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_echo() {
    run_example("tokio_echo", "tokio_echo: ok");
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_port_calls() {
    run_example("tokio_port_calls", "tokio_port_calls: ok");
}
