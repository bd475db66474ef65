//! Hostile clients: a connect request naming sections that are not its own, and a
//! request ring scribbled on.

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

/// A client that corrupts its request ring loses its connection, torn down by the
/// receive that finds the ring broken; the server goes on serving the other client.
#[test]
fn a_corrupted_request_ring_ends_only_its_connection() {
    use super::super::PortClient;
    let dir = tempfile::tempdir().unwrap();
    let popts = PortOptions::default().root(dir.path()).max_connections(4);
    let server = PortServer::create("rings", &popts).unwrap();
    let connect = |hello: &'static [u8]| {
        let o = popts.clone();
        let c = std::thread::spawn(move || {
            PortClient::connect_with("rings", hello, Duration::from_secs(10), &o)
        });
        let id = server
            .listen(Duration::from_secs(10))
            .unwrap()
            .accept(b"")
            .unwrap();
        (c.join().unwrap().unwrap().0, id)
    };
    let ((bad, bad_id), (good, _)) = (connect(b"bad"), connect(b"good"));
    // The hostile client's scribble: the first 256 bytes of its request ring (the
    // ring's configuration and writer lines, so its tail) all ones.
    let ring = {
        let conns = server.inner.conns();
        let conn = conns.get(bad_id.index as usize).unwrap();
        conn._section.object("requests").unwrap()
    };
    for off in (0..256).step_by(8) {
        // SAFETY: 8-aligned words inside the ring's region, which `ring` keeps
        // mapped; shared memory is only ever accessed through atomics.
        let word = unsafe {
            &*ring
                .as_ptr()
                .add(off)
                .cast::<culvert_sync::atomic::AtomicU64>()
        };
        word.store(u64::MAX, Ordering::Release);
    }
    let caller = std::thread::spawn(move || good.call(b"still here", Duration::from_secs(10)));
    let incoming = server.receive(Duration::from_secs(10)).unwrap();
    assert_eq!(incoming.payload.as_slice(), b"still here");
    incoming.reply(b"served").unwrap();
    assert_eq!(caller.join().unwrap().unwrap().as_slice(), b"served");
    assert_eq!(
        server.connection_count(),
        1,
        "the broken connection is torn down"
    );
    let r = bad.call(b"x", Duration::from_secs(2));
    assert!(
        matches!(r, Err(Error::Closed | Error::PeerDied)),
        "a call on the torn-down connection: {r:?}"
    );
}
