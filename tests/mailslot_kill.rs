//! Writers SIGKILLed while they write large messages: first one stopped inside the
//! copy on purpose (so at least one kill lands mid-write on any machine), then writers
//! killed wherever they happen to be. The reader only ever sees whole messages, skips
//! what the dead writers left half written (counted by a spy on the ring's counters),
//! and goes on to receive every message of a later writer.

mod common;

use std::time::{Duration, Instant};

use common::mailslot::*;
use culvert::mailslot::{Mailslot, MailslotWriter};
use culvert_testkit::{
    abort_after, cross_test, namespace, play_role, role_arg_parsed, ChildCommand, TempRoot,
};

const MAX: usize = 1024 * 1024;
/// Kill rounds at most; the test stops early once kills have landed mid-write.
const ROUNDS: u32 = 30;
const FINAL: u32 = 100;

/// A message cheap to build and check, so the writer spends its time in `write`:
/// `id`, `seq`, `len`, then one fill byte derived from both, then `seq` again. A torn
/// message mixes two fills or trailers.
fn make_fill(id: u32, seq: u32, out: &mut Vec<u8>) {
    let len = fill_len(id, seq);
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.resize(len - 4, fill(id, seq));
    out.extend_from_slice(&seq.to_le_bytes());
}

/// Length of message `seq` of writer `id`: `16..=MAX`, mostly large.
fn fill_len(id: u32, seq: u32) -> usize {
    MAX - ((seq as usize).wrapping_mul(7919) + id as usize * 13) % (MAX / 2)
}

fn fill(id: u32, seq: u32) -> u8 {
    (seq.wrapping_mul(31) ^ id) as u8 | 1
}

/// Checks a [`make_fill`] message is whole; returns `(id, seq)`.
fn check_fill(m: &[u8]) -> (u32, u32) {
    assert!(m.len() >= 16, "message of {} bytes is torn", m.len());
    let word = |at: usize| u32::from_le_bytes(m[at..at + 4].try_into().unwrap());
    let (id, seq, len) = (word(0), word(4), word(8) as usize);
    assert_eq!(len, m.len(), "message {id}/{seq}: length field");
    assert_eq!(len, fill_len(id, seq), "message {id}/{seq}: length");
    assert_eq!(word(len - 4), seq, "message {id}/{seq}: trailer");
    let f = fill(id, seq);
    assert!(
        m[12..len - 4].iter().all(|&b| b == f),
        "message {id}/{seq}: torn body"
    );
    (id, seq)
}

#[test]
fn writer_killed_mid_write_leaves_no_torn_message() {
    if play_role(&[("writer", writer), ("stalled", stalled_writer)]) {
        return;
    }
    let dir = TempRoot::new("mailslot-kill");
    let root = dir.path();
    let opts = slot_opts(root, MAX, 8, Duration::from_millis(20));
    let mut slot = Mailslot::create("victim", &opts).unwrap();
    let test = cross_test!(writer_killed_mid_write_leaves_no_torn_message);
    let sup = test.supervise(Duration::from_secs(60));
    let mut buf = vec![0u8; MAX];
    // A spy on the ring's shared counters (it never receives): how many slots were
    // abandoned by writers killed mid-write.
    let section = culvert::section::Section::open(
        "victim",
        &culvert::section::SectionOptions::default().root(root),
    )
    .unwrap();
    let spy = culvert::ring::mpmc::MessageReader::attach(&section.object("ring").unwrap()).unwrap();
    // A writer that dies holding a claimed slot half written.
    let k = sup.spawn(test.command("stalled").namespace(root));
    wait_file(root, "stalled", &sup);
    sup.kill(k);
    sup.wait(k);
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        if let Some(n) = read_or_timeout(&mut slot, &mut buf) {
            panic!("read {n} bytes that no writer committed");
        }
    }
    assert_eq!(
        spy.stats().abandoned_by_dead_producers,
        1,
        "the half-written slot of the killed writer was not skipped"
    );
    let mut rounds = 0;
    for round in 0..ROUNDS {
        rounds = round + 1;
        let k = sup.spawn(
            test.command("writer")
                .namespace(root)
                .role_arg("ID", round.to_string())
                .role_arg("COUNT", u32::MAX.to_string()),
        );
        let mut next = 0u32;
        // Read some of its messages, then kill it right after freeing a slot: it is
        // then most likely copying its next (large) message into that slot.
        let target = 20 + round % 7;
        loop {
            sup.check("reading");
            if let Some(n) = read_or_timeout(&mut slot, &mut buf) {
                if next + 1 == target {
                    sup.kill(k);
                    sup.wait(k);
                }
                let (id, seq) = check_fill(&buf[..n]);
                assert_eq!((id, seq), (round, next));
                next += 1;
                if next == target {
                    break;
                }
            }
        }
        // Drain: whole messages of the dead writer only, then nothing.
        let quiet = Instant::now() + Duration::from_millis(300);
        while Instant::now() < quiet {
            if let Some(n) = read_or_timeout(&mut slot, &mut buf) {
                let (id, seq) = check_fill(&buf[..n]);
                assert_eq!((id, seq), (round, next));
                next += 1;
            }
        }
        let abandoned = spy.stats().abandoned_by_dead_producers;
        eprintln!("round {round}: {next} whole messages; {abandoned} mid-write kills so far");
        if round >= 3 && abandoned >= 3 {
            break;
        }
    }
    let rounds = rounds;
    // The mailslot goes on: a new writer's messages all arrive.
    sup.spawn(
        test.command("writer")
            .namespace(root)
            .role_arg("ID", rounds.to_string())
            .role_arg("COUNT", FINAL.to_string()),
    );
    let mut next = 0u32;
    while next < FINAL {
        sup.check("reading");
        if let Some(n) = read_or_timeout(&mut slot, &mut buf) {
            let (id, seq) = check_fill(&buf[..n]);
            assert_eq!((id, seq), (rounds, next));
            next += 1;
        }
    }
    sup.wait_all_ok();
}

/// Claims a slot of the mailslot's ring, writes half a message into it, says so
/// (file `stalled`), and waits to be killed.
fn stalled_writer() {
    abort_after(Duration::from_secs(60));
    let section = culvert::section::Section::open(
        "victim",
        &culvert::section::SectionOptions::default().root(namespace()),
    )
    .unwrap();
    let ring = section.object("ring").unwrap();
    let mut p = culvert::ring::mpmc::MessageWriter::attach(&ring).unwrap();
    let root = namespace();
    p.write_with(MAX, culvert::Deadline::never(), |buf| {
        buf[..MAX / 2].fill(0xEE);
        put(&root, "stalled", "1");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
}

/// Writes `COUNT` large messages as fast as the mailslot takes them.
fn writer() {
    abort_after(Duration::from_secs(60));
    let id = role_arg_parsed::<u64>("ID") as u32;
    let count = role_arg_parsed::<u64>("COUNT") as u32;
    let mut w = MailslotWriter::open("victim").unwrap();
    let mut m = Vec::with_capacity(MAX);
    for seq in 0..count {
        make_fill(id, seq, &mut m);
        // Lengths of 512 KiB to 1 MiB: most of the time goes into copying.
        write_retrying(&mut w, &m, id, std::thread::yield_now);
    }
}
