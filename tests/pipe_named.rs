//! Named pipes, across real processes: clients are this test binary run again as a
//! child playing a role (`culvert_testkit`), with `CULVERT_ROOT` set (on the child
//! `Command` only) to the test's own namespace directory. Every cross-process test has
//! an outer deadline that kills its children.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::Error;
use culvert_testkit::{cross_test, role, ChildCommand, ChildId, CrossTest, Supervisor, TempRoot};

const PIPE: &str = "test-pipe";

/// Spawns `test` as a client with `role` in `root`'s namespace.
fn spawn_client(sup: &Supervisor, test: CrossTest, role: &str, root: &TempRoot) -> ChildId {
    sup.spawn(test.command(role).namespace(root))
}

/// Accepts the next client (waiting at most 20 s); its reads time out after 20 s.
fn accept(server: &PipeServer) -> PipeEnd {
    let mut end = server.accept_until(Duration::from_secs(20)).unwrap();
    end.set_read_timeout(Some(Duration::from_secs(20)));
    end
}

#[test]
fn max_instances_two_third_client_busy_until_one_leaves() {
    let test = cross_test!(max_instances_two_third_client_busy_until_one_leaves);
    if let Some(role) = role() {
        // Clients use the default namespace: CULVERT_ROOT from the parent.
        match role.as_str() {
            "hold" => {
                let mut end = PipeEnd::connect(PIPE, Duration::from_secs(10)).unwrap();
                end.write_all(b"hi").unwrap();
                let mut buf = [0u8; 16];
                // Wait for "bye" (or end of stream), then leave.
                let _ = end.read(&mut buf).unwrap();
            }
            "third" => {
                let t = Instant::now();
                match PipeEnd::connect(PIPE, Duration::from_millis(300)) {
                    Err(Error::Busy {
                        reason: culvert::BusyReason::NoFreeInstance { max_instances: 2 },
                    }) => {}
                    other => panic!("expected Busy, got {other:?}"),
                }
                assert!(t.elapsed() >= Duration::from_millis(300));
                println!("BUSY");
                std::io::stdout().flush().unwrap();
                let mut end = PipeEnd::connect(PIPE, Duration::from_secs(10)).unwrap();
                end.write_all(b"third").unwrap();
                let mut buf = [0u8; 16];
                let _ = end.read(&mut buf);
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let root = TempRoot::new("instances");
    let sup = test.supervise(Duration::from_secs(60));
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .max_instances(2)
        .root(root.path());
    let server = PipeServer::bind(PIPE, &opts).unwrap();
    let mut buf = [0u8; 16];

    let c1 = spawn_client(&sup, test, "hold", &root);
    let mut e1 = accept(&server);
    assert_eq!(e1.read(&mut buf).unwrap(), 2);
    assert_eq!(e1.peer_pid(), Some(sup.pid(c1)));

    let c2 = spawn_client(&sup, test, "hold", &root);
    let mut e2 = accept(&server);
    assert_eq!(e2.read(&mut buf).unwrap(), 2);
    assert_eq!(server.instances_in_use(), 2);

    let c3 = spawn_client(&sup, test, "third", &root);
    sup.wait_for_output(c3, "BUSY");
    // While both instances are taken, nothing can be accepted.
    assert!(matches!(server.try_accept(), Err(Error::WouldBlock)));

    // The first client leaves; the third gets its instance.
    e1.write_all(b"bye").unwrap();
    sup.wait_ok(c1);
    let mut e3 = accept(&server);
    let n = e3.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"third");
    assert_eq!(e3.peer_pid(), Some(sup.pid(c3)));
    drop(e1);
    e3.disconnect();
    e2.disconnect();
    sup.wait_ok(c2);
    sup.wait_ok(c3);
}

#[test]
fn killed_client_frees_its_instance() {
    let test = cross_test!(killed_client_frees_its_instance);
    if role().is_some() {
        let mut end = PipeEnd::connect(PIPE, Duration::from_secs(10)).unwrap();
        end.write_all(b"hi").unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let root = TempRoot::new("killed");
    let sup = test.supervise(Duration::from_secs(60));
    let opts = PipeOptions::default().max_instances(1).root(root.path());
    let server = PipeServer::bind(PIPE, &opts).unwrap();
    let c1 = spawn_client(&sup, test, "sleep", &root);
    let mut e1 = accept(&server);
    let mut buf = [0u8; 2];
    e1.read_exact(&mut buf).unwrap();
    sup.kill(c1);
    sup.wait(c1);
    let t = Instant::now();
    assert_eq!(
        e1.read(&mut buf).unwrap(),
        0,
        "end of stream after the kill"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // The slot of the dead client is reclaimed: a new client gets in.
    let c2 = spawn_client(&sup, test, "sleep", &root);
    let mut e2 = accept(&server);
    e2.read_exact(&mut buf).unwrap();
    sup.kill(c2);
    sup.wait(c2);
}

#[test]
fn missing_server_is_not_found() {
    let root = TempRoot::new("missing");
    let opts = PipeOptions::default().root(root.path());
    match PipeEnd::connect_with("nobody-here", Duration::from_millis(10), &opts) {
        Err(Error::NotFound { name }) => assert_eq!(name, "nobody-here"),
        other => panic!("{other:?}"),
    }
    // A server that went away is not found either.
    let server = PipeServer::bind("gone", &opts).unwrap();
    drop(server);
    assert!(matches!(
        PipeEnd::connect_with("gone", Duration::from_millis(10), &opts),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn bad_names_are_invalid() {
    let root = TempRoot::new("names");
    let opts = PipeOptions::default().root(root.path());
    let long = "x".repeat(culvert::pipe::MAX_PIPE_NAME + 1);
    for bad in ["", "a/b", "a b", "..", "é", long.as_str()] {
        assert!(
            matches!(PipeServer::bind(bad, &opts), Err(Error::InvalidName { .. })),
            "bind {bad:?}"
        );
        assert!(
            matches!(
                PipeEnd::connect_with(bad, Duration::ZERO, &opts),
                Err(Error::InvalidName { .. })
            ),
            "connect {bad:?}"
        );
    }
    // The error names the limit that applies to pipes.
    let e = PipeServer::bind(&long, &opts).unwrap_err();
    assert!(
        matches!(e, Error::InvalidName { max, .. } if max == culvert::pipe::MAX_PIPE_NAME),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains(&format!("1 to {} characters", culvert::pipe::MAX_PIPE_NAME)),
        "{e}"
    );
}

#[test]
fn second_bind_of_a_live_name_fails() {
    let root = TempRoot::new("twice");
    let opts = PipeOptions::default().root(root.path());
    let _server = PipeServer::bind("p", &opts).unwrap();
    assert!(matches!(
        PipeServer::bind("p", &opts),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn accept_times_out_and_try_accept_would_block() {
    let root = TempRoot::new("accept");
    let opts = PipeOptions::default().root(root.path());
    let server = PipeServer::bind("p", &opts).unwrap();
    assert!(matches!(server.try_accept(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        server.accept_until(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn in_process_byte_pipe_with_default_timeout() {
    let root = TempRoot::new("inproc");
    let opts = PipeOptions::default()
        .root(root.path())
        .buffers(8192)
        .default_timeout(Duration::from_secs(5));
    let server = PipeServer::bind("echo", &opts).unwrap();
    let client = std::thread::spawn({
        let opts = opts.clone();
        move || {
            let mut end = PipeEnd::connect_default_wait("echo", &opts).unwrap();
            // Chunks no larger than a ring, so the echo never fills both rings.
            for i in 0..25u8 {
                let data = vec![i; 4000];
                end.write_all(&data).unwrap();
                let mut back = vec![0u8; data.len()];
                end.read_exact(&mut back).unwrap();
                assert_eq!(back, data);
            }
        }
    });
    let mut conn = server.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < 100_000 {
        let n = conn.read(&mut buf).unwrap();
        conn.write_all(&buf[..n]).unwrap();
        total += n;
    }
    client.join().unwrap();
    // The instance section's name is gone: only the server's remains.
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["culvert.echo"]);
}

#[test]
fn accept_returns_with_the_client_attached() {
    let test = cross_test!(accept_returns_with_the_client_attached);
    if role().is_some() {
        let mut end = PipeEnd::connect(PIPE, Duration::from_secs(10)).unwrap();
        let mut buf = [0u8; 1];
        let _ = end.read(&mut buf);
        return;
    }
    let sup = test.supervise(Duration::from_secs(60));
    let root = TempRoot::new("attached");
    let server = PipeServer::bind(PIPE, &PipeOptions::default().root(root.path())).unwrap();
    for _ in 0..5 {
        let child = spawn_client(&sup, test, "client", &root);
        let mut end = accept(&server);
        // Known at once, as after Windows' ConnectNamedPipe.
        assert!(end.is_peer_attached());
        assert_eq!(end.peer_pid(), Some(sup.pid(child)));
        end.write_all(b"x").unwrap();
        sup.wait_ok(child);
    }
}

#[test]
fn client_gets_the_servers_accept_failure_promptly() {
    let test = cross_test!(client_gets_the_servers_accept_failure_promptly);
    if role().is_some() {
        // Server under a file-size limit (SIGXFSZ ignored by the shell that started
        // it): its instance sections cannot be allocated.
        let opts = PipeOptions::default().buffers(64 << 20);
        let server = PipeServer::bind(PIPE, &opts).unwrap();
        println!("bound");
        let e = server.accept_until(Duration::from_secs(20)).unwrap_err();
        println!("accept failed: {e}");
        assert!(
            matches!(e, Error::Section(culvert::section::Error::NoSpace { .. })),
            "{e:?}"
        );
        return;
    }
    let sup = test.supervise(Duration::from_secs(60));
    let root = TempRoot::new("nospace");
    let mut cmd = test.command_via(
        "sh",
        &["-c", "ulimit -f 4096 && trap '' XFSZ && exec \"$0\" \"$@\""],
        "server",
    );
    let child = sup.spawn(cmd.namespace(&root));
    sup.wait_for_output(child, "bound");
    let started = Instant::now();
    let e = PipeEnd::connect_with(
        PIPE,
        Duration::from_secs(20),
        &PipeOptions::default().root(root.path()),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Section(culvert::section::Error::NoSpace { .. })),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    sup.wait_for_output(child, "accept failed");
    sup.wait_ok(child);
}
