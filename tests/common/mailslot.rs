//! Mailslot helpers of the cross-process tests: results that children leave as small
//! files in the test's namespace root, reads and writes that panic on any error but the
//! expected one, and self-checking messages (`id`, `seq`, `len`, then a pattern).
//!
//! Children play roles (`culvert_testkit::play_role`) with the test's namespace root in
//! `CULVERT_ROOT`; the parent supervises them (`culvert_testkit::Supervisor`).

use std::path::Path;
use std::time::Duration;

use culvert::mailslot::{Mailslot, MailslotOptions, MailslotWriter};
use culvert::Error;
use culvert_testkit::{ChildCommand, CrossTest, Supervisor};

/// Options of a mailslot in namespace `root`: messages of up to `max` bytes, `capacity`
/// of them queued, reads waiting `read_timeout`.
pub fn slot_opts(
    root: &Path,
    max: usize,
    capacity: usize,
    read_timeout: Duration,
) -> MailslotOptions {
    MailslotOptions::new()
        .max_message_size(max)
        .capacity(capacity)
        .read_timeout(read_timeout)
        .root(root)
}

/// Spawns `n` children of `test` playing `role` in namespace `root`, with the role
/// argument `ID` set to `0..n`.
pub fn spawn_ids(sup: &Supervisor, test: CrossTest, role: &str, root: &Path, n: u32) {
    for id in 0..n {
        sup.spawn(
            test.command(role)
                .namespace(root)
                .role_arg("ID", id.to_string()),
        );
    }
}

/// Writes `text` to `root/name` atomically.
pub fn put(root: &Path, name: &str, text: &str) {
    let tmp = root.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write result");
    std::fs::rename(&tmp, root.join(name)).expect("rename result");
}

/// Reads `root/name`.
pub fn get(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("result {name}: {e}"))
}

/// Reads `root/name` as one number.
pub fn get_num(root: &Path, name: &str) -> u64 {
    get(root, name).trim().parse().unwrap()
}

/// Reads `root/name` as two numbers separated by a space.
pub fn get_pair(root: &Path, name: &str) -> (u64, u64) {
    let text = get(root, name);
    let (a, b) = text.trim().split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Reads one message from `slot` into `buf`: its length, or `None` on `Timeout`;
/// any other error panics.
pub fn read_or_timeout(slot: &mut Mailslot, buf: &mut [u8]) -> Option<usize> {
    match slot.read(buf) {
        Ok(n) => Some(n),
        Err(Error::Timeout) => None,
        Err(e) => panic!("read: {e}"),
    }
}

/// Writes `m` with `w` (writer `id`), calling `on_full` and retrying after each
/// `Full`; any other error panics.
pub fn write_retrying(w: &mut MailslotWriter, m: &[u8], id: u32, mut on_full: impl FnMut()) {
    loop {
        match w.write(m) {
            Ok(()) => return,
            Err(Error::Full) => on_full(),
            Err(e) => panic!("writer {id}: {e}"),
        }
    }
}

/// Waits until `root/name` exists (failing if a child fails first).
pub fn wait_file(root: &Path, name: &str, sup: &Supervisor) {
    sup.poll_until(&format!("waiting for {name}"), || root.join(name).exists());
}

/// Length of message `seq` of writer `id`, in `12..=max`.
pub fn msg_len(id: u32, seq: u32, max: usize) -> usize {
    12 + ((seq as usize).wrapping_mul(7) + id as usize * 13) % (max - 12 + 1)
}

fn pattern(id: u32, seq: u32, i: usize) -> u8 {
    (id as usize * 31 + seq as usize * 17 + i * 7) as u8
}

/// Builds message `seq` of writer `id` into `out`: `id`, `seq`, `len` then a pattern.
pub fn make(id: u32, seq: u32, max: usize, out: &mut Vec<u8>) {
    let len = msg_len(id, seq, max);
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for i in 12..len {
        out.push(pattern(id, seq, i));
    }
}

/// Checks a message built by [`make`] is whole; returns `(id, seq)`.
pub fn check(m: &[u8], max: usize) -> (u32, u32) {
    assert!(m.len() >= 12, "message of {} bytes is torn", m.len());
    let id = u32::from_le_bytes(m[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(m[4..8].try_into().unwrap());
    let len = u32::from_le_bytes(m[8..12].try_into().unwrap()) as usize;
    assert_eq!(len, m.len(), "message {id}/{seq}: length field says {len}");
    assert_eq!(
        len,
        msg_len(id, seq, max),
        "message {id}/{seq}: wrong length"
    );
    for (i, &b) in m.iter().enumerate().skip(12) {
        assert_eq!(
            b,
            pattern(id, seq, i),
            "message {id}/{seq} torn at byte {i}"
        );
    }
    (id, seq)
}
