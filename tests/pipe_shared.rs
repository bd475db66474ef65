//! Shared pipes (`PipeOptions::shared(true)`), across real processes: the test binary
//! runs itself again as children playing roles (`culvert_testkit`); every child
//! attaches the pipe end it inherited as one more holder of it
//! (`PendingEnd::spawn_child` + `PipeEnd::from_inherited`). Every test has an outer
//! deadline that kills its children and fails, and its own temp dir.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use culvert::pipe::{self, PendingEnd, PipeEnd, PipeMode, PipeOptions};
use culvert::Error;
use culvert_testkit::{
    cross_test, fnv1a_words, role, role_arg, role_arg_parsed, xorshift, ChildCommand, ChildId,
    CrossTest, Supervisor, TempRoot, FNV_START,
};

// ---- harness ------------------------------------------------------------------------

/// The command of a holder: `test` as a child with `role`, `id` and `dir`.
fn holder_command(test: CrossTest, role: &str, id: u32, dir: &Path) -> Command {
    let mut cmd = test.command(role);
    cmd.role_arg("ID", id.to_string()).role_arg("DIR", dir);
    cmd
}

/// Spawns `test` as a child with `role` and `id`, sharing `end` with it.
fn spawn_holder(
    sup: &Supervisor,
    end: &PendingEnd,
    test: CrossTest,
    role: &str,
    id: u32,
    dir: &Path,
) -> ChildId {
    let mut cmd = holder_command(test, role, id, dir);
    sup.spawn_with(&mut cmd, |cmd| end.spawn_child(cmd))
}

/// Spawns `n` holders of `end` with `role`, ids `0..n`.
fn spawn_holders(
    sup: &Supervisor,
    end: &PendingEnd,
    test: CrossTest,
    role: &str,
    n: u32,
    dir: &Path,
) -> Vec<ChildId> {
    (0..n)
        .map(|id| spawn_holder(sup, end, test, role, id, dir))
        .collect()
}

fn child_id() -> u32 {
    role_arg_parsed("ID")
}

fn child_dir() -> PathBuf {
    PathBuf::from(role_arg("DIR"))
}

/// A message of writer `id`, number `seq`: `id`, `seq`, then a payload whose length
/// (8..=2000) and bytes depend on both.
fn make_message(id: u32, seq: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let len = 8 + ((seq as usize * 7919 + id as usize * 104_729) % 1993);
    let mut x = (u64::from(id) << 32 | u64::from(seq)) ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..len {
        out.push(xorshift(&mut x) as u8);
    }
}

/// Writes messages `seqs` of writer `id` to `end`, one write each.
fn write_messages(end: &mut PipeEnd, id: u32, seqs: std::ops::Range<u32>) {
    let mut msg = Vec::new();
    for seq in seqs {
        make_message(id, seq, &mut msg);
        end.write_all(&msg).unwrap();
    }
}

fn check_message(msg: &[u8], scratch: &mut Vec<u8>) -> (u32, u32) {
    assert!(msg.len() >= 8, "short message of {} bytes", msg.len());
    let id = u32::from_le_bytes(msg[..4].try_into().unwrap());
    let seq = u32::from_le_bytes(msg[4..8].try_into().unwrap());
    make_message(id, seq, scratch);
    assert!(
        msg == &scratch[..],
        "message {id}/{seq} damaged or mixed ({} bytes, expected {})",
        msg.len(),
        scratch.len()
    );
    (id, seq)
}

/// Reads one whole message (more == false), or `None` at end of stream.
fn read_whole(end: &mut PipeEnd, buf: &mut [u8]) -> Option<usize> {
    match end.read_message(buf) {
        Ok(m) => {
            assert!(!m.more, "message longer than max_message");
            Some(m.len)
        }
        Err(Error::Closed | Error::PeerDied) => None,
        Err(e) => panic!("read_message: {e}"),
    }
}

// ---- (1) several writer processes, one message end ---------------------------------------

const MSGS_PER_WRITER: u32 = 10_000;

#[test]
fn three_writer_processes_share_one_message_end() {
    let test = cross_test!(three_writer_processes_share_one_message_end);
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(4096);
    if let Some(r) = role() {
        assert_eq!(r, "writer");
        let mut end = PipeEnd::from_inherited().unwrap();
        write_messages(&mut end, child_id(), 0..MSGS_PER_WRITER);
        return;
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(120));
    let dir = TempRoot::new("shared");
    let (mut reader, theirs) = pipe::anonymous_pending(PipeMode::Message, &opts).unwrap();
    spawn_holders(&sup, &theirs, test, "writer", 3, dir.path());
    drop(theirs);
    let mut next = [0u32; 3];
    let mut buf = vec![0u8; 4096];
    let mut scratch = Vec::new();
    let mut total = 0;
    while let Some(n) = read_whole(&mut reader, &mut buf) {
        let (id, seq) = check_message(&buf[..n], &mut scratch);
        assert!(id < 3, "unknown writer {id}");
        assert_eq!(seq, next[id as usize], "writer {id}'s order broken");
        next[id as usize] += 1;
        total += 1;
    }
    assert_eq!(total, 3 * MSGS_PER_WRITER);
    assert_eq!(next, [MSGS_PER_WRITER; 3]);
    sup.wait_all_ok();
    drop(dir);
    eprintln!("{}: {:?}", test.name(), started.elapsed());
}

// ---- (2) byte mode: the atomic-write rule --------------------------------------------------

const RECORD: usize = 4096;
const RECORDS_PER_WRITER: u32 = 2_000;

fn make_record(id: u32, seq: u32, rec: &mut [u8; RECORD]) {
    rec[..4].copy_from_slice(&id.to_le_bytes());
    rec[4..8].copy_from_slice(&seq.to_le_bytes());
    let fill = (id as u8).wrapping_mul(31) ^ (seq as u8);
    for (i, b) in rec[8..RECORD - 8].iter_mut().enumerate() {
        *b = fill.wrapping_add(i as u8);
    }
    let sum = fnv1a_words(FNV_START, &rec[..RECORD - 8]);
    rec[RECORD - 8..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn four_byte_writers_never_interleave_4096_byte_writes() {
    let test = cross_test!(four_byte_writers_never_interleave_4096_byte_writes);
    let opts = PipeOptions::default().mode(PipeMode::Byte).shared(true);
    if let Some(r) = role() {
        assert_eq!(r, "writer");
        let id = child_id();
        let mut end = PipeEnd::from_inherited().unwrap();
        let mut rec = [0u8; RECORD];
        for seq in 0..RECORDS_PER_WRITER {
            make_record(id, seq, &mut rec);
            end.write_all(&rec).unwrap();
        }
        return;
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(120));
    let dir = TempRoot::new("shared");
    let (mut reader, theirs) = pipe::anonymous_pending(PipeMode::Byte, &opts).unwrap();
    spawn_holders(&sup, &theirs, test, "writer", 4, dir.path());
    drop(theirs);
    let mut next = [0u32; 4];
    let mut rec = [0u8; RECORD];
    let mut expect = [0u8; RECORD];
    loop {
        // A record at a time; the first read of each tells end of stream apart.
        let n = reader.read(&mut rec).unwrap();
        if n == 0 {
            break;
        }
        reader.read_exact(&mut rec[n..]).unwrap();
        let id = u32::from_le_bytes(rec[..4].try_into().unwrap());
        let seq = u32::from_le_bytes(rec[4..8].try_into().unwrap());
        assert!(
            id < 4,
            "record header damaged (writer {id}): bytes interleaved"
        );
        make_record(id, seq, &mut expect);
        assert!(rec == expect, "record {id}/{seq} interleaved or damaged");
        assert_eq!(seq, next[id as usize], "writer {id}'s order broken");
        next[id as usize] += 1;
    }
    assert_eq!(next, [RECORDS_PER_WRITER; 4]);
    sup.wait_all_ok();
    drop(dir);
    eprintln!("{}: {:?}", test.name(), started.elapsed());
}

// ---- (3) two reader processes share the reading end ----------------------------------------

const SHARED_READ_MSGS: u32 = 20_000;

#[test]
fn two_reader_processes_get_every_message_exactly_once() {
    let test = cross_test!(two_reader_processes_get_every_message_exactly_once);
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(4096);
    if let Some(r) = role() {
        assert_eq!(r, "reader");
        let id = child_id();
        let mut end = PipeEnd::from_inherited().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut scratch = Vec::new();
        let mut got = Vec::new();
        let mut last = None;
        while let Some(n) = read_whole(&mut end, &mut buf) {
            let (w, seq) = check_message(&buf[..n], &mut scratch);
            assert_eq!(w, 7);
            // One consumer takes messages in the order they were sent.
            assert!(last < Some(seq), "reader {id}: {seq} after {last:?}");
            last = Some(seq);
            got.extend_from_slice(&seq.to_le_bytes());
        }
        std::fs::write(child_dir().join(format!("reader-{id}")), got).unwrap();
        return;
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(120));
    let dir = TempRoot::new("shared");
    let (mut writer, theirs) = pipe::anonymous_pending(PipeMode::Message, &opts).unwrap();
    spawn_holders(&sup, &theirs, test, "reader", 2, dir.path());
    drop(theirs);
    write_messages(&mut writer, 7, 0..SHARED_READ_MSGS);
    drop(writer);
    sup.wait_all_ok();
    let mut seen = vec![0u8; SHARED_READ_MSGS as usize];
    let mut per_reader = Vec::new();
    for id in 0..2 {
        let bytes = std::fs::read(dir.join(format!("reader-{id}"))).unwrap();
        per_reader.push(bytes.len() / 4);
        for c in bytes.chunks_exact(4) {
            let seq = u32::from_le_bytes(c.try_into().unwrap()) as usize;
            seen[seq] += 1;
        }
    }
    let bad: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] != 1).take(10).collect();
    assert!(
        bad.is_empty(),
        "messages not delivered exactly once: {bad:?}"
    );
    drop(dir);
    eprintln!(
        "{}: {:?} (split {per_reader:?})",
        test.name(),
        started.elapsed()
    );
}

// ---- (4) end of stream only after the last holder ------------------------------------------

const EOF_MSGS: u32 = 500;

#[test]
fn end_of_stream_only_after_the_last_writer_holder() {
    let test = cross_test!(end_of_stream_only_after_the_last_writer_holder);
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(4096);
    if let Some(r) = role() {
        let id = child_id();
        let mut end = PipeEnd::from_inherited().unwrap();
        write_messages(&mut end, id, 0..EOF_MSGS);
        match r.as_str() {
            // Waits to be SIGKILLed, holding the end.
            "victim" => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
            "survivor" => {
                let go = child_dir().join("go");
                while !go.exists() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                write_messages(&mut end, id, EOF_MSGS..2 * EOF_MSGS);
                drop(end); // closes normally
                return;
            }
            other => panic!("unknown role {other}"),
        }
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(60));
    let dir = TempRoot::new("shared");
    let (mut reader, theirs) = pipe::anonymous_pending(PipeMode::Message, &opts).unwrap();
    let victim = spawn_holder(&sup, &theirs, test, "victim", 0, dir.path());
    let survivor = spawn_holder(&sup, &theirs, test, "survivor", 1, dir.path());
    drop(theirs);
    let mut next = [0u32; 2];
    let mut buf = vec![0u8; 4096];
    let mut scratch = Vec::new();
    let mut take = |reader: &mut PipeEnd, next: &mut [u32; 2]| -> Option<()> {
        let n = read_whole(reader, &mut buf)?;
        let (id, seq) = check_message(&buf[..n], &mut scratch);
        assert_eq!(seq, next[id as usize]);
        next[id as usize] += 1;
        Some(())
    };
    // Both holders' first batches.
    while next != [EOF_MSGS, EOF_MSGS] {
        take(&mut reader, &mut next).expect("end of stream while both holders live");
    }
    sup.kill(victim);
    sup.wait(victim);
    // One holder dead, one alive: no end of stream (the wait spans several liveness
    // checks).
    reader.set_read_timeout(Some(Duration::from_millis(400)));
    let mut probe = [0u8; 4096];
    match reader.read_message(&mut probe) {
        Err(Error::Timeout) => {}
        other => panic!("expected a timeout while a holder lives, got {other:?}"),
    }
    reader.set_read_timeout(Some(Duration::from_secs(20)));
    std::fs::write(dir.join("go"), b"").unwrap();
    while take(&mut reader, &mut next).is_some() {}
    assert_eq!(
        next,
        [EOF_MSGS, 2 * EOF_MSGS],
        "end of stream before draining"
    );
    // End of stream stays.
    assert!(matches!(
        reader.read_message(&mut probe),
        Err(Error::Closed | Error::PeerDied)
    ));
    sup.wait_ok(survivor);
    // Writes towards the gone end fail.
    let e = reader.write_message(b"anyone?").unwrap_err();
    assert!(matches!(e, Error::Closed | Error::PeerDied), "{e:?}");
    drop(dir);
    eprintln!("{}: {:?}", test.name(), started.elapsed());
}

// ---- in-process checks ---------------------------------------------------------------------

#[test]
fn short_buffers_get_the_rest_with_more_and_peek_reports_it() {
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(1000);
    let (mut a, mut b) = pipe::anonymous(PipeMode::Message, &opts).unwrap();
    let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    a.write_all(&msg).unwrap();
    a.write_all(b"").unwrap();
    a.write_all(b"tail").unwrap();
    let p = b.peek().unwrap();
    assert_eq!(p.next_message_len, Some(1000));
    let mut got = Vec::new();
    let mut buf = [0u8; 300];
    loop {
        let m = b.read_message(&mut buf).unwrap();
        got.extend_from_slice(&buf[..m.len]);
        if !m.more {
            break;
        }
    }
    assert_eq!(got, msg);
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!((m.len, m.more), (0, false));
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"tail");
    assert!(matches!(
        a.write_message(&vec![0u8; 1001]),
        Err(Error::MessageTooLarge { .. })
    ));
    // A clone is one more holder: dropping the original does not end the stream.
    let mut a2 = a.try_clone().unwrap();
    drop(a);
    a2.write_all(b"from the clone").unwrap();
    let m = b.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"from the clone");
    drop(a2);
    let mut small = [0u8; 8];
    assert_eq!(b.read(&mut small).unwrap(), 0);
    assert!(matches!(b.write_message(b"x"), Err(Error::Closed)));
}

#[test]
fn shared_message_pipes_refuse_messages_above_one_mib() {
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(2 << 20);
    let r = pipe::anonymous(PipeMode::Message, &opts);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    // Not shared: no clone.
    let (a, _b) = pipe::anonymous(PipeMode::Message, &PipeOptions::default()).unwrap();
    assert!(matches!(a.try_clone(), Err(Error::InvalidArgument { .. })));
}

// ---- named shared pipes ----------------------------------------------------------------

/// Options of the named shared message pipes below, in namespace `root`.
fn named_opts(root: &Path) -> PipeOptions {
    PipeOptions::default()
        .mode(PipeMode::Message)
        .shared(true)
        .max_message(4096)
        .max_instances(1)
        .root(root)
}

/// Shares the attached `end` with a child playing `role` as writer `id`.
fn share_end(
    sup: &Supervisor,
    end: &PipeEnd,
    test: CrossTest,
    role: &str,
    id: u32,
    dir: &Path,
) -> ChildId {
    let mut cmd = holder_command(test, role, id, dir);
    sup.spawn_with(&mut cmd, |cmd| end.spawn_child(cmd))
}

const NAMED_MSGS_PER_WRITER: u32 = 2_000;

#[test]
fn named_shared_client_end_held_by_three_writer_processes() {
    let test = cross_test!(named_shared_client_end_held_by_three_writer_processes);
    if let Some(r) = role() {
        assert_eq!(r, "writer");
        let mut end = PipeEnd::from_inherited().unwrap();
        write_messages(&mut end, child_id(), 0..NAMED_MSGS_PER_WRITER);
        return;
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(120));
    let dir = TempRoot::new("shared");
    let opts = named_opts(dir.path());
    let name = format!("named-shared-writers-{}", std::process::id());
    let server = pipe::PipeServer::bind(&name, &opts).unwrap();
    std::thread::scope(|s| {
        let client = s.spawn(|| {
            let mut end = PipeEnd::connect_with(&name, Duration::from_secs(20), &opts).unwrap();
            for id in 0..2 {
                share_end(&sup, &end, test, "writer", id, dir.path());
            }
            write_messages(&mut end, 2, 0..NAMED_MSGS_PER_WRITER);
            drop(end);
        });
        let mut conn = server.accept_until(Duration::from_secs(20)).unwrap();
        let mut next = [0u32; 3];
        let mut buf = vec![0u8; 4096];
        let mut scratch = Vec::new();
        let mut total = 0;
        // End of stream only once every holder of the client end closed.
        while let Some(n) = read_whole(&mut conn, &mut buf) {
            let (id, seq) = check_message(&buf[..n], &mut scratch);
            assert!(id < 3, "unknown writer {id}");
            assert_eq!(seq, next[id as usize], "writer {id}'s order broken");
            next[id as usize] += 1;
            total += 1;
        }
        assert_eq!(total, 3 * NAMED_MSGS_PER_WRITER);
        assert_eq!(next, [NAMED_MSGS_PER_WRITER; 3]);
        client.join().unwrap();
        sup.wait_all_ok();
        drop(conn);
    });
    assert_eq!(server.instances_in_use(), 0);
    drop(server);
    drop(dir);
    eprintln!("{}: {:?}", test.name(), started.elapsed());
}

/// While the slot is taken: `accept` runs (so it could reclaim the slot), and a
/// connect with a short timeout gets `Busy`.
fn assert_slot_taken(server: &pipe::PipeServer, name: &str, opts: &PipeOptions, when: &str) {
    std::thread::scope(|s| {
        let acceptor = s.spawn(|| server.accept_until(Duration::from_millis(800)));
        std::thread::sleep(Duration::from_millis(50));
        match PipeEnd::connect_with(name, Duration::from_millis(400), opts) {
            Err(Error::Busy { .. }) => {}
            other => panic!("{when}: expected Busy, got {other:?}"),
        }
        match acceptor.join().unwrap() {
            Err(Error::Timeout) => {}
            other => panic!("{when}: accept should time out, got {other:?}"),
        }
    });
    assert_eq!(server.instances_in_use(), 1, "{when}");
}

#[test]
fn named_shared_slot_freed_only_after_every_client_holder_is_gone() {
    let test = cross_test!(named_shared_slot_freed_only_after_every_client_holder_is_gone);
    if let Some(r) = role() {
        let mut end = PipeEnd::from_inherited().unwrap();
        write_messages(&mut end, child_id(), 0..1); // attached
        match r.as_str() {
            // Waits to be SIGKILLed, holding the end (or for the test to fail).
            "victim" => {
                while child_dir().exists() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            "survivor" => {
                let go = child_dir().join("go");
                while !go.exists() && child_dir().exists() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                drop(end); // closes normally
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let started = Instant::now();
    let sup = test.supervise(Duration::from_secs(60));
    let dir = TempRoot::new("shared");
    let opts = named_opts(dir.path());
    let name = format!("named-shared-slot-{}", std::process::id());
    let server = pipe::PipeServer::bind(&name, &opts).unwrap();
    let (mut conn, client) = std::thread::scope(|s| {
        let client =
            s.spawn(|| PipeEnd::connect_with(&name, Duration::from_secs(20), &opts).unwrap());
        let conn = server.accept_until(Duration::from_secs(20)).unwrap();
        (conn, client.join().unwrap())
    });
    let victim = share_end(&sup, &client, test, "victim", 0, dir.path());
    let survivor = share_end(&sup, &client, test, "survivor", 1, dir.path());
    // Both children attached (each sent one message).
    let mut buf = vec![0u8; 4096];
    let mut scratch = Vec::new();
    let mut seen = [false; 2];
    for _ in 0..2 {
        let n = read_whole(&mut conn, &mut buf).expect("end of stream before the hellos");
        let (id, seq) = check_message(&buf[..n], &mut scratch);
        assert_eq!(seq, 0);
        seen[id as usize] = true;
    }
    assert_eq!(seen, [true, true]);
    assert_slot_taken(&server, &name, &opts, "all holders live");
    // The client's own holder (the one with the server link) goes first.
    drop(client);
    assert_slot_taken(&server, &name, &opts, "client's holder dropped");
    // The server end goes too: one end is gone, the other is held by the children.
    drop(conn);
    assert_slot_taken(&server, &name, &opts, "server end dropped");
    sup.kill(victim);
    sup.wait(victim);
    assert_slot_taken(&server, &name, &opts, "one holder killed, one alive");
    // The last holder closes: now the slot is freed (found by `accept`).
    std::fs::write(dir.join("go"), b"").unwrap();
    sup.wait_ok(survivor);
    let freed = Instant::now();
    std::thread::scope(|s| {
        let acceptor = s.spawn(|| server.accept_until(Duration::from_secs(10)));
        let mut c = PipeEnd::connect_with(&name, Duration::from_secs(10), &opts)
            .expect("connect after every holder is gone");
        let mut conn = acceptor.join().unwrap().unwrap();
        c.write_all(b"new connection").unwrap();
        let n = read_whole(&mut conn, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"new connection");
        assert_eq!(server.instances_in_use(), 1);
        drop(c);
        drop(conn);
    });
    eprintln!(
        "{}: reconnected {:?} after the last holder closed",
        test.name(),
        freed.elapsed()
    );
    // Both ends of the new connection were dropped in this process: freed at once.
    assert_eq!(server.instances_in_use(), 0);
    drop(server);
    drop(dir);
    eprintln!("{}: {:?}", test.name(), started.elapsed());
}

#[test]
fn named_shared_server_end_can_be_cloned() {
    let dir = TempRoot::new("shared-named-clone");
    let opts = named_opts(dir.path());
    let name = format!("named-shared-clone-{}", std::process::id());
    let server = pipe::PipeServer::bind(&name, &opts).unwrap();
    let (conn, mut client) = std::thread::scope(|s| {
        let client =
            s.spawn(|| PipeEnd::connect_with(&name, Duration::from_secs(20), &opts).unwrap());
        let conn = server.accept_until(Duration::from_secs(20)).unwrap();
        (conn, client.join().unwrap())
    });
    let mut clone = conn.try_clone().unwrap();
    drop(conn);
    clone.write_all(b"from the clone").unwrap();
    let mut buf = [0u8; 64];
    let n = read_whole(&mut client, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the clone");
    assert_eq!(server.instances_in_use(), 1);
    drop(clone);
    assert_eq!(client.read(&mut buf).unwrap(), 0);
    assert_eq!(server.instances_in_use(), 1, "the client end still lives");
    drop(client);
    assert_eq!(server.instances_in_use(), 0);
    // Too large a message for a shared pipe: refused at bind.
    let big = named_opts(dir.path()).max_message(2 << 20);
    let r = pipe::PipeServer::bind(&format!("{name}-big"), &big);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
}
