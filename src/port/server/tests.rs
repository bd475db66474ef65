//! A hostile client's connect request naming sections that are not its own.

use std::time::Duration;

use culvert_section::{Section, SectionKind, SectionOptions};
use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, ProcessIdentity};

use super::super::layout::SLOT_REQUESTED;
use super::super::PortOptions;
use super::PortServer;
use crate::Error;

/// A live process that is not us: our parent (the test runner's caller).
fn someone_else() -> u64 {
    let ppid = std::os::unix::process::parent_id();
    ProcessIdentity::of(ppid).unwrap().packed()
}

/// Files a connect request in slot 0 as `client`, naming `name`.
fn hostile_request(server: &PortServer, client: u64, name: &str) {
    let slot = server.inner.slot(0);
    slot.client
        .compare_exchange(0, client, Ordering::AcqRel, Ordering::Acquire)
        .unwrap();
    slot.set_name(name.as_bytes());
    slot.state.store(SLOT_REQUESTED, Ordering::Release);
    server.inner.header().listen.connect.notify();
}

#[test]
fn the_server_never_unlinks_a_section_it_did_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let so = SectionOptions::default().root(dir.path());
    let popts = PortOptions::default().root(dir.path());
    let server = PortServer::create("foo", &popts).unwrap();
    // Another port whose name starts like a connection of "foo", and a connection
    // section of another client (here: created by us, named by someone else).
    let other_port = PortServer::create("foo.cache", &popts).unwrap();
    let victim = Section::create(
        "foo.cvictim",
        4096,
        &so.clone().kind(SectionKind::PortConnection),
    )
    .unwrap();
    victim.mark_ready().unwrap();
    for name in ["foo.cache", "foo.cvictim"] {
        hostile_request(&server, someone_else(), name);
        let r = server.listen(Deadline::after(Duration::from_millis(300)));
        assert!(matches!(r, Err(Error::Timeout)), "{name}: {r:?}");
        assert!(
            Section::inspect(name, &so).is_ok(),
            "{name} was unlinked by the server"
        );
        // The slot was freed for the next request.
        assert_eq!(server.inner.slot(0).client.load(Ordering::Acquire), 0);
    }
    drop((other_port, victim));
}

#[test]
fn a_port_marked_dead_fails_its_clients_calls_with_peer_died() {
    use std::sync::Arc;
    use std::time::Instant;

    use super::super::PortClient;

    const T: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let popts = PortOptions::default().root(dir.path());
    let server = Arc::new(PortServer::create("standin", &popts).unwrap());
    let s2 = server.clone();
    let accepted = std::thread::spawn(move || s2.listen(T).unwrap().accept(b"").unwrap());
    let (client, _) = PortClient::connect_with("standin", b"", T, &popts).unwrap();
    accepted.join().unwrap();
    let mut answered = client.call_async(b"a").unwrap();
    let mut pending = client.call_async(b"b").unwrap();
    server.receive(T).unwrap().reply(b"A").unwrap();
    let held = server.receive(T).unwrap();
    assert!(server.mark_dead());
    // Dropped after the mark, the request sends nothing (no "no reply" record).
    drop(held);
    assert_eq!(answered.wait(T).unwrap().as_slice(), b"A");
    let started = Instant::now();
    let e = pending.wait(T).unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let e = client.call(b"c", T).unwrap_err();
    assert!(matches!(e, Error::PeerDied), "{e:?}");
    // The connection goes once the client does.
    drop((answered, pending, client));
    let until = Instant::now() + T;
    while server.connection_count() != 0 {
        assert!(Instant::now() < until, "the connection stays");
        server.maintain();
        std::thread::sleep(Duration::from_millis(10));
    }
}
