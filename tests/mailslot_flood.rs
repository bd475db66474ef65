//! 8 writer processes × 10,000 messages into one mailslot whose reader keeps up: every
//! message arrives whole, each writer's order is kept, and every `Full` a writer saw
//! is in the reader's `dropped` count.

mod common;

use std::time::Duration;

use common::mailslot::*;
use culvert::mailslot::{Mailslot, MailslotWriter};
use culvert::Error;
use culvert_testkit::{abort_after, cross_test, namespace, play_role, role_arg_parsed, TempRoot};

const WRITERS: u32 = 8;
const PER_WRITER: u32 = 10_000;
const MAX: usize = 64;

#[test]
fn eight_writers_all_messages_arrive_whole_in_order() {
    if play_role(&[("writer", writer)]) {
        return;
    }
    let dir = TempRoot::new("mailslot-flood");
    let root = dir.path();
    let opts = slot_opts(root, MAX, 1024, Duration::from_millis(100));
    let mut slot = Mailslot::create("flood", &opts).unwrap();
    let test = cross_test!(eight_writers_all_messages_arrive_whole_in_order);
    let sup = test.supervise(Duration::from_secs(60));
    spawn_ids(&sup, test, "writer", root, WRITERS);
    let mut next = vec![0u32; WRITERS as usize];
    let mut total = 0u64;
    let mut buf = vec![0u8; MAX];
    while total < u64::from(WRITERS * PER_WRITER) {
        match read_or_timeout(&mut slot, &mut buf) {
            Some(n) => {
                let (id, seq) = check(&buf[..n], MAX);
                assert!(id < WRITERS, "unknown writer {id}");
                assert_eq!(seq, next[id as usize], "writer {id}: order or loss");
                next[id as usize] += 1;
                total += 1;
            }
            None => sup.check("reading"),
        }
    }
    sup.wait_all_ok();
    assert!(next.iter().all(|&n| n == PER_WRITER));
    let fulls: u64 = (0..WRITERS)
        .map(|id| get_num(root, &format!("writer{id}")))
        .sum();
    let info = slot.info().unwrap();
    assert_eq!(info.dropped, fulls, "every Full is counted");
    assert_eq!(info.message_count, 0);
    assert_eq!(info.next_message_size, None);
    assert!(matches!(slot.try_read(&mut buf), Err(Error::WouldBlock)));
    eprintln!("flood: {total} messages, writers retried {fulls} Full writes");
}

/// Writes `PER_WRITER` messages, retrying each after `Full` (and counting those).
fn writer() {
    abort_after(Duration::from_secs(70));
    let id = role_arg_parsed::<u64>("ID") as u32;
    let mut w = MailslotWriter::open("flood").unwrap();
    let mut fulls = 0u64;
    let mut m = Vec::new();
    for seq in 0..PER_WRITER {
        make(id, seq, MAX, &mut m);
        write_retrying(&mut w, &m, id, || {
            fulls += 1;
            std::thread::sleep(Duration::from_micros(20));
        });
    }
    put(&namespace(), &format!("writer{id}"), &fulls.to_string());
}
