//! A reader that sleeps while writer processes flood its mailslot: what was sent is
//! exactly what is queued plus what was dropped, and what is read is intact.

mod common;

use std::time::Duration;

use common::mailslot::*;
use culvert::mailslot::{Mailslot, MailslotWriter};
use culvert::Error;
use culvert_testkit::{abort_after, cross_test, namespace, play_role, role_arg_parsed, TempRoot};

const WRITERS: u32 = 4;
const PER_WRITER: u32 = 5_000;
const MAX: usize = 128;

#[test]
fn sleeping_reader_counts_every_drop() {
    if play_role(&[("writer", writer)]) {
        return;
    }
    let dir = TempRoot::new("mailslot-sleepy");
    let root = dir.path();
    let opts = slot_opts(root, MAX, 256, Duration::ZERO);
    let mut slot = Mailslot::create("sleepy", &opts).unwrap();
    let test = cross_test!(sleeping_reader_counts_every_drop);
    let sup = test.supervise(Duration::from_secs(60));
    spawn_ids(&sup, test, "writer", root, WRITERS);
    // The reader sleeps until every writer is done.
    sup.wait_all_ok();
    let mut oks = vec![0u64; WRITERS as usize];
    let mut fulls = 0u64;
    for id in 0..WRITERS {
        let (ok, full) = get_pair(root, &format!("writer{id}"));
        oks[id as usize] = ok;
        fulls += full;
    }
    let sent = u64::from(WRITERS * PER_WRITER);
    let info = slot.info().unwrap();
    assert_eq!(info.message_count + info.dropped, sent, "{info:?}");
    assert_eq!(info.dropped, fulls);
    assert_eq!(info.message_count, oks.iter().sum::<u64>());
    assert_eq!(
        info.message_count,
        slot.capacity() as u64,
        "the ring filled up"
    );
    assert!(info.next_message_size.is_some());

    let mut got = vec![0u64; WRITERS as usize];
    let mut last = vec![None::<u32>; WRITERS as usize];
    let mut buf = vec![0u8; MAX];
    loop {
        let expect = slot.info().unwrap().next_message_size;
        let Some(n) = read_or_timeout(&mut slot, &mut buf) else {
            break;
        };
        assert_eq!(Some(n), expect, "info announced the next size");
        let (id, seq) = check(&buf[..n], MAX);
        let i = id as usize;
        assert!(last[i].is_none_or(|l| seq > l), "writer {id}: order");
        last[i] = Some(seq);
        got[i] += 1;
    }
    assert_eq!(got, oks, "every accepted message is read, once");
    let info = slot.info().unwrap();
    assert_eq!((info.message_count, info.next_message_size), (0, None));
}

/// Writes `PER_WRITER` messages without retrying; reports `"<ok> <full>"`.
fn writer() {
    abort_after(Duration::from_secs(70));
    let id = role_arg_parsed::<u64>("ID") as u32;
    let mut w = MailslotWriter::open("sleepy").unwrap();
    let (mut ok, mut full) = (0u64, 0u64);
    let mut m = Vec::new();
    for seq in 0..PER_WRITER {
        make(id, seq, MAX, &mut m);
        match w.write(&m) {
            Ok(()) => ok += 1,
            Err(Error::Full) => full += 1,
            Err(e) => panic!("writer {id}: {e}"),
        }
    }
    put(
        &namespace(),
        &format!("writer{id}"),
        &format!("{ok} {full}"),
    );
}
