//! Replacing a name whose creator died: a pipe server, a port and a mailslot left by
//! a SIGKILLed process are replaced by the next creator, and when several creators
//! race for the name exactly one wins — no winner's fresh section is removed by
//! another — and the survivor is the one reachable by name.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use culvert::mailslot::{Mailslot, MailslotOptions, MailslotWriter};
use culvert::pipe::{PipeEnd, PipeOptions, PipeServer};
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert::{Deadline, Error};
use culvert_testkit::{cross_test, role, role_arg, ChildCommand, TempRoot};

const RACERS: usize = 4;
const ROUNDS: usize = 8;
const KINDS: [&str; 3] = ["pipe", "port", "mailslot"];

fn pipe_opts(root: &Path) -> PipeOptions {
    PipeOptions::default().root(root)
}

fn mailslot_opts(root: &Path) -> MailslotOptions {
    MailslotOptions::new()
        .max_message_size(64)
        .capacity(8)
        .read_timeout(Duration::ZERO)
        .root(root)
}

/// What a creator holds; kept alive until the round is judged.
enum Created {
    Pipe(PipeServer),
    Port(PortServer),
    Mailslot(Mailslot),
}

fn create(kind: &str, name: &str, root: &Path) -> culvert::Result<Created> {
    match kind {
        "pipe" => PipeServer::bind(name, &pipe_opts(root)).map(Created::Pipe),
        "port" => PortServer::create(name, &PortOptions::default().root(root)).map(Created::Port),
        _ => Mailslot::create(name, &mailslot_opts(root)).map(Created::Mailslot),
    }
}

/// Whether a client reaches `created` by name.
fn reachable(created: &mut Created, name: &str, root: &Path) -> bool {
    let deadline = || Deadline::after(Duration::from_secs(5));
    match created {
        Created::Pipe(server) => std::thread::scope(|s| {
            let c =
                s.spawn(|| PipeEnd::connect_with(name, Duration::from_secs(5), &pipe_opts(root)));
            let accepted = server.accept_until(deadline());
            accepted.is_ok() && c.join().unwrap().is_ok()
        }),
        Created::Port(server) => std::thread::scope(|s| {
            let so = PortOptions::default().root(root);
            let c = s.spawn(move || PortClient::connect_with(name, b"", deadline(), &so));
            // A connect request reaching the server proves the name leads to it.
            let accepted = server
                .listen(deadline())
                .is_ok_and(|req| req.accept(b"").is_ok());
            accepted && c.join().unwrap().is_ok()
        }),
        Created::Mailslot(slot) => {
            let Ok(mut w) = MailslotWriter::open_with(name, &mailslot_opts(root)) else {
                return false;
            };
            let mut buf = [0u8; 64];
            w.write(b"hi").is_ok() && slot.try_read(&mut buf).is_ok_and(|n| n == 2)
        }
    }
}

#[test]
fn racing_creators_replace_a_dead_creators_name_exactly_once() {
    if let Some(r) = role() {
        // Child: create, report, then wait to be killed.
        let (kind, name) = r.split_once(':').unwrap();
        let root = role_arg("ROOT");
        let _held = create(kind, name, Path::new(&root)).unwrap();
        println!("created");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let test = cross_test!(racing_creators_replace_a_dead_creators_name_exactly_once);
    let sup = test.supervise(Duration::from_secs(120));
    let root = TempRoot::new("stale");
    for kind in KINDS {
        for round in 0..ROUNDS {
            let name = format!("{kind}-{round}");
            let child = sup.spawn(
                test.command(&format!("{kind}:{name}"))
                    .role_arg("ROOT", &*root),
            );
            sup.wait_for_output(child, "created");
            sup.kill(child);
            sup.wait(child);
            let barrier = Arc::new(Barrier::new(RACERS));
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..RACERS)
                    .map(|_| {
                        let (b, name, root) = (barrier.clone(), name.clone(), root.path());
                        s.spawn(move || {
                            b.wait();
                            create(kind, &name, root)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut winners = Vec::new();
            for r in results {
                match r {
                    Ok(c) => winners.push(c),
                    Err(Error::AlreadyExists { .. }) => {}
                    Err(e) => panic!("{kind} round {round}: {e:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "{kind} round {round}: winners");
            assert!(
                reachable(&mut winners[0], &name, &root),
                "{kind} round {round}: the winner is not reachable by name"
            );
        }
    }
}
