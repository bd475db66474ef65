//! In-process checks of the accept step against a client driven by hand.

use std::time::{Duration, Instant};

use culvert_ring::mpmc;
use culvert_section::{Section, SectionKind};
use culvert_sync::{Deadline, ProcessIdentity, WaitStrategy};

use super::*;
use crate::pipe::layout::Side;
use crate::pipe::named::cell::Answer;
use crate::pipe::named::instance_name;
use crate::pipe::named::link::ServerLink;

/// A client that posted its request (cell 0) and was answered, but has not attached:
/// `try_accept` returns `WouldBlock` at once instead of waiting for the attach, and
/// hands the instance out on the first call after the client attached.
#[test]
fn try_accept_never_waits_for_a_clients_attach() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PipeOptions::new()
        .mode(PipeMode::Message)
        .max_instances(1)
        .root(dir.path());
    let server = PipeServer::bind("attach-later", &opts).unwrap();
    let tables = server.tables.clone();
    let cell = tables.cell(0);
    let gen = cell.try_claim().unwrap();
    assert!(cell.post(gen, ProcessIdentity::me().packed()));
    let mut request = [0u8; REQUEST_LEN];
    request[4..].copy_from_slice(&gen.to_le_bytes());
    let requests = tables._section.object("requests").unwrap();
    let mut producer = mpmc::MessageWriter::attach(&requests).unwrap();
    producer.write(&request, Deadline::never()).unwrap();

    let start = Instant::now();
    assert!(matches!(server.try_accept(), Err(Error::WouldBlock)));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "try_accept waited {:?} for the client to attach",
        start.elapsed()
    );
    assert!(matches!(server.try_accept(), Err(Error::WouldBlock)));

    let Answer::Assigned { ticket, slot } = cell.answer(gen) else {
        panic!("the request was not answered");
    };
    let section = Section::open(
        &instance_name("attach-later", ticket),
        &opts.section_for(SectionKind::Pipe),
    )
    .unwrap();
    let link = ServerLink::new(tables.clone(), slot as usize, ticket, None);
    let mut client = PipeEnd::attach(section, Side::B, WaitStrategy::Blocking, Some(link)).unwrap();
    let mut end = server
        .try_accept()
        .expect("the attached client is handed out");
    assert_eq!(end.peer_pid(), Some(std::process::id()));
    client.write_message(b"hello").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(end.read_message(&mut buf).unwrap().len, 5);
}
