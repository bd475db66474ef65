//! End-to-end tests of the `culvert` binary: each runs the built binary with its own
//! temporary namespace directory (`--root` and `CULVERT_ROOT`), so they run in
//! parallel with each other and with any other culvert user on the machine.

use std::io::{Read, Write};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use culvert::pipe::{PipeOptions, PipeServer};

mod common;
use common::*;
use culvert_testkit::{pattern, TempRoot};

/// Waits up to 10 s for `f` to hold.
fn wait_until(what: &str, f: impl FnMut() -> bool) {
    culvert_testkit::wait_until(what, Duration::from_secs(10), f);
}

/// `ls` and `inspect` show a named pipe created by this test.
#[test]
fn ls_and_inspect_show_a_pipe() {
    let dir = TempRoot::new("cli");
    let server = PipeServer::bind("demo-pipe", &PipeOptions::default().root(dir.path())).unwrap();

    let out = run(dir.path(), &["ls"]);
    assert!(out.status.success());
    let ls = stdout_of(&out);
    let line = ls
        .lines()
        .find(|l| l.starts_with("demo-pipe "))
        .unwrap_or_else(|| panic!("demo-pipe not listed:\n{ls}"));
    assert!(line.contains("pipe server"), "{line}");
    assert!(
        line.contains(&format!("{} (live)", std::process::id())),
        "{line}"
    );
    assert!(line.ends_with("ready"), "{line}");

    let out = run(dir.path(), &["inspect", "demo-pipe"]);
    assert!(out.status.success());
    let text = stdout_of(&out);
    assert!(text.contains("kind      pipe server"), "{text}");
    assert!(text.contains("state     ready"), "{text}");
    assert!(text.contains("mpmc message ring"), "{text}");
    assert!(text.contains("capacity"), "{text}");

    // The same as JSON.
    let out = run(dir.path(), &["ls", "--json"]);
    assert!(out.status.success());
    let ls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "demo-pipe")
        .unwrap_or_else(|| panic!("demo-pipe not in {ls}"));
    assert_eq!(me["kind"], "pipe server");
    assert_eq!(me["state"], "ready");
    assert_eq!(me["creator"]["pid"], std::process::id());
    assert_eq!(me["creator"]["alive"], true);
    assert!(me["problem"].is_null());
    let out = run(dir.path(), &["inspect", "demo-pipe", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "ready");
    let rings: Vec<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["ring"]["type"].as_str())
        .collect();
    assert!(rings.contains(&"mpmc message ring"), "{v}");
    drop(server);

    let out = run(dir.path(), &["ls"]);
    assert!(stdout_of(&out).contains("no culvert sections"));

    // Long names keep the columns aligned: KIND starts at the same place on every line.
    let long = "a-pipe-name-well-over-thirty-two-characters-long";
    let a = PipeServer::bind("short", &PipeOptions::default().root(dir.path())).unwrap();
    let b = PipeServer::bind(long, &PipeOptions::default().root(dir.path())).unwrap();
    let ls = stdout_of(&run(dir.path(), &["ls"]));
    let kind_at: Vec<usize> = ls
        .lines()
        .map(|l| l.find("KIND").or_else(|| l.find("pipe server")).unwrap())
        .collect();
    assert_eq!(kind_at.len(), 3, "{ls}");
    assert!(kind_at.iter().all(|&k| k == kind_at[0]), "{ls}");
    assert!(kind_at[0] > long.len(), "{ls}");
    drop((a, b));
}

/// `gc` removes the section of a SIGKILLed creator and keeps a live one.
#[test]
fn gc_removes_dead_and_keeps_live() {
    let dir = TempRoot::new("cli");
    let _live = PipeServer::bind("live-pipe", &PipeOptions::default().root(dir.path())).unwrap();
    let mut doomed = culvert(dir.path())
        .args(["pipe", "serve", "dead-pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let file = dir.path().join("culvert.dead-pipe");
    wait_until("the server section", || file.exists());
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();

    let ls = stdout_of(&run(dir.path(), &["ls"]));
    let line = ls.lines().find(|l| l.starts_with("dead-pipe ")).unwrap();
    assert!(line.contains("(dead)") && line.ends_with("stale"), "{line}");

    let dry = stdout_of(&run(dir.path(), &["gc", "--dry-run"]));
    assert!(dry.contains("would remove dead-pipe"), "{dry}");
    assert!(file.exists());

    let out = run(dir.path(), &["gc"]);
    assert!(out.status.success());
    let gc = stdout_of(&out);
    assert!(gc.contains("removed dead-pipe"), "{gc}");
    assert!(!gc.contains("live-pipe"), "{gc}");
    assert!(!file.exists());
    assert!(dir.path().join("culvert.live-pipe").exists());
}

/// `gc` leaves mailslots and broadcast groups to their own layer: a group whose first
/// joiner was SIGKILLed stays while another reader is in it, and a mailslot whose reader
/// was SIGKILLed is removed even though the generic rule only knows its creator.
#[test]
fn gc_keeps_a_group_with_a_live_reader_and_removes_a_dead_readers_mailslot() {
    use culvert::mailslot::{self, MailslotOptions};
    let dir = TempRoot::new("cli");
    let spawn_reader = |args: &[&str], file: &str| {
        let mut child = culvert(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(file, || dir.path().join(file).exists());
        // Let the child finish joining before it is killed.
        std::thread::sleep(Duration::from_millis(200));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    };

    // The group's creator (first joiner) dies; we join after it and stay.
    let mut first = culvert(dir.path())
        .args(["mailslot", "read", "--group", "team"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the group", || dir.path().join("culvert.team").exists());
    std::thread::sleep(Duration::from_millis(200));
    let opts = MailslotOptions::default().root(dir.path());
    let member = mailslot::join("team", &opts).unwrap();
    first.kill().unwrap();
    first.wait().unwrap();

    spawn_reader(&["mailslot", "read", "lonely"], "culvert.lonely");

    let dry = stdout_of(&run(dir.path(), &["gc", "--dry-run"]));
    assert!(dry.contains("would check team"), "{dry}");
    let out = run(dir.path(), &["gc"]);
    assert!(out.status.success());
    let gc = stdout_of(&out);
    assert!(gc.contains("removed lonely"), "{gc}");
    assert!(!gc.contains("removed team"), "{gc}");
    assert!(dir.path().join("culvert.team").exists(), "live group kept");
    assert!(
        !dir.path().join("culvert.lonely").exists(),
        "dead reader's mailslot removed"
    );
    mailslot::broadcast_with("team", b"still here", &opts).unwrap();
    let mut buf = [0u8; 64];
    let mut member = member;
    member.set_read_timeout(Some(Duration::from_secs(5)));
    let n = member.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");
}

/// `pipe serve` + `pipe connect` carry 10 MB one way (and 1 MB the other) intact.
#[test]
fn pipe_serve_and_connect_carry_10_mb() {
    let dir = TempRoot::new("cli");
    let to_server = pattern(10_000_000, 0x9e37_79b9_7f4a_7c15);
    let to_client = pattern(1_000_000, 0x1234_5678_9abc_def1);

    let mut server = culvert(dir.path())
        .args(["pipe", "serve", "tenmb", "--timeout", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the server", || dir.path().join("culvert.tenmb").exists());
    let mut client = culvert(dir.path())
        .args(["pipe", "connect", "tenmb", "--timeout", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let feed = |mut w: std::process::ChildStdin, data: Vec<u8>| {
        std::thread::spawn(move || {
            w.write_all(&data).unwrap();
        })
    };
    let drain = |mut r: std::process::ChildStdout| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
    };
    let f1 = feed(client.stdin.take().unwrap(), to_server.clone());
    let f2 = feed(server.stdin.take().unwrap(), to_client.clone());
    let got_server = drain(server.stdout.take().unwrap());
    let got_client = drain(client.stdout.take().unwrap());
    f1.join().unwrap();
    f2.join().unwrap();
    let got_server = got_server.join().unwrap();
    let got_client = got_client.join().unwrap();
    let s = server.wait_with_output().unwrap();
    let c = client.wait_with_output().unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    assert_eq!(got_server.len(), to_server.len());
    assert!(got_server == to_server, "server received different bytes");
    assert_eq!(got_client.len(), to_client.len());
    assert!(got_client == to_client, "client received different bytes");
}

/// `mailslot write` lines arrive at `mailslot read` as messages, in order.
#[test]
fn mailslot_write_and_read_lines() {
    let dir = TempRoot::new("cli");
    let reader = culvert(dir.path())
        .args([
            "mailslot",
            "read",
            "box",
            "--count",
            "500",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the mailslot", || dir.path().join("culvert.box").exists());
    let lines: String = (0..500).map(|i| format!("message {i}\n")).collect();
    let mut writer = culvert(dir.path())
        .args(["mailslot", "write", "box"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let w = writer.wait_with_output().unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let r = reader.wait_with_output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8_lossy(&r.stdout), lines);
}

/// Errors are one line and a non-zero status; usage errors exit with 2; every
/// command has `--help`.
#[test]
fn errors_are_one_line_and_help_everywhere() {
    let dir = TempRoot::new("cli");
    let out = run(dir.path(), &["inspect", "no-such-section"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("culvert: "), "{err}");

    let out = run(
        dir.path(),
        &["pipe", "connect", "nobody-here", "--timeout", "0.1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    // It says where it looked.
    assert!(err.contains("no live server"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");

    // A namespace directory that does not exist is an error, not an empty list.
    let missing = dir.path().join("no-such-dir");
    for cmd in [&["ls"][..], &["gc"], &["gc", "--dry-run"]] {
        let out = run(&missing, cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not exist"), "{cmd:?}: {err}");
        assert!(err.contains("no-such-dir"), "{cmd:?}: {err}");
    }

    let out = run(dir.path(), &["inspect", "bad/name"]);
    assert_eq!(out.status.code(), Some(1));

    assert_eq!(run(dir.path(), &["no-such-command"]).status.code(), Some(2));

    for cmd in [
        &["--help"][..],
        &["bench", "--help"],
        &["ls", "--help"],
        &["inspect", "--help"],
        &["gc", "--help"],
        &["pipe", "--help"],
        &["pipe", "serve", "--help"],
        &["pipe", "connect", "--help"],
        &["port", "--help"],
        &["port", "serve", "--help"],
        &["port", "call", "--help"],
        &["mailslot", "--help"],
        &["mailslot", "read", "--help"],
        &["mailslot", "write", "--help"],
    ] {
        let out = run(dir.path(), cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(stdout_of(&out).contains("Usage"), "{cmd:?}");
    }
}

/// An empty namespace directory is refused, and nothing is created in the current
/// directory: `--root ""` is a usage error (exit 2), `CULVERT_ROOT=""` without `--root`
/// a one-line error (exit 1) from every namespace command.
#[test]
fn empty_root_is_an_error() {
    let cwd = TempRoot::new("cli");
    let commands: [&[&str]; 5] = [
        &["ls"],
        &["gc"],
        &["inspect", "x"],
        &["pipe", "serve", "x"],
        &["mailslot", "read", "x"],
    ];
    for args in commands {
        let culvert = || {
            let mut c = Command::new(BIN);
            c.current_dir(cwd.path())
                .env("CULVERT_ROOT", "")
                .stdin(Stdio::null());
            c
        };
        let out = culvert().arg("--root").arg("").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--root '' {args:?}: {err}");

        let out = culvert().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("invalid namespace directory"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

/// Waits up to `limit` for `child` to exit; kills it and fails if it does not.
fn exits_within(child: &mut std::process::Child, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} kept running after its peer was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pipe_session_ends_when_its_peer_is_killed() {
    for kill_server in [true, false] {
        let dir = TempRoot::new("cli");
        let root = dir.path();
        let mut server = culvert(root)
            .args(["pipe", "serve", "victim", "--timeout", "20"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the pipe server", || root.join("culvert.victim").exists());
        let mut client = culvert(root)
            .args(["pipe", "connect", "victim", "--timeout", "10"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // A line through the session shows both ends are in it.
        client
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"hello\n")
            .unwrap();
        let mut got = [0u8; 6];
        server
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut got)
            .unwrap();
        assert_eq!(&got, b"hello\n");
        // Both keep their stdin open: only the peer's death can end the session.
        let (victim, survivor, name) = if kill_server {
            (&mut server, &mut client, "pipe connect")
        } else {
            (&mut client, &mut server, "pipe serve")
        };
        victim.kill().unwrap();
        victim.wait().unwrap();
        exits_within(survivor, Duration::from_secs(10), name);
    }
}

#[test]
fn mailslot_write_gives_up_on_a_reader_that_does_not_read() {
    let dir = TempRoot::new("cli");
    let opts = culvert::mailslot::MailslotOptions::new()
        .max_message_size(64)
        .capacity(2)
        .root(dir.path());
    // A reader that never reads: the mailslot holds two messages.
    let _slot = culvert::mailslot::Mailslot::create("stuck", &opts).unwrap();
    let mut writer = culvert(dir.path())
        .args(["mailslot", "write", "stuck", "--full-timeout", "0.3"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(b"a\nb\nc\nd\n")
        .unwrap();
    let started = Instant::now();
    let w = writer.wait_with_output().unwrap();
    assert_eq!(w.status.code(), Some(1));
    let err = String::from_utf8_lossy(&w.stderr);
    assert!(err.contains("stayed full"), "{err}");
    assert!(err.contains("2 message(s) sent"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Sends SIGTERM to `child`.
fn terminate(child: &std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

#[test]
fn sigterm_stops_pipe_serve_and_mailslot_read_and_removes_their_sections() {
    let dir = TempRoot::new("cli");
    let root = dir.path();
    let commands: [(&[&str], &str); 3] = [
        (&["pipe", "serve", "srv"], "culvert.srv"),
        (&["mailslot", "read", "box"], "culvert.box"),
        (&["mailslot", "read", "grp", "--group"], "culvert.grp"),
    ];
    for (args, file) in commands {
        let mut child = culvert(root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(file, || root.join(file).exists());
        terminate(&child);
        exits_within(&mut child, Duration::from_secs(5), args[0]);
        assert!(!root.join(file).exists(), "{args:?} left {file} behind");
    }
}

#[test]
fn port_serve_echoes_calls_from_port_call() {
    let dir = TempRoot::new("cli");
    let root = dir.path();
    let mut server = culvert(root)
        .args(["port", "serve", "echo", "--count", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the port", || root.join("culvert.echo").exists());
    let one = run(root, &["port", "call", "echo", "hello port"]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_eq!(stdout_of(&one), "hello port\n");
    let mut lines = culvert(root)
        .args(["port", "call", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    lines
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let out = lines.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout_of(&out), "one\ntwo\n");
    exits_within(&mut server, Duration::from_secs(10), "port serve --count 3");
    let mut log = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(log.matches("request from pid").count(), 3, "{log}");
    assert!(
        log.contains("request from pid") && log.contains(": hello port"),
        "{log}"
    );

    let missing = run(root, &["port", "call", "nobody", "x", "--timeout", "0.2"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no live server") && err.contains(&root.display().to_string()),
        "{err}"
    );
}
