//! Runs every example in `examples/` (Cargo builds them before integration tests) and
//! checks that it exits with status 0 and prints its closing line. Each run gets its
//! own namespace directory through `CULVERT_ROOT`, and is killed if it overruns.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A fresh namespace directory for one example run, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(name: &str) -> TempRoot {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "culvert-example-test-{name}-{}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs example `name`, asserts success and that its stdout has the line `expect`.
fn run_example(name: &str, expect: &str) {
    let bin = example_binary(name);
    assert!(bin.is_file(), "example binary not built: {}", bin.display());
    let root = TempRoot::new(name);
    let mut child = Command::new(&bin)
        .env("CULVERT_ROOT", &root.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "example {name} did not finish in {LIMIT:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "example {name} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
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
