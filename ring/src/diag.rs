//! Read-only decoding of ring control blocks, for diagnostics (`culvert inspect`, `ls`
//! and `gc`).
//!
//! This module decodes a *copy* of an object's first bytes (the caller reads them with
//! `pread`, never through a mapping: a truncated or hostile file cannot fault it) at
//! the offsets this crate lays its control blocks out at. Every value is untrusted and
//! shown as found, with what is inconsistent about it. The unit tests build real rings
//! on the heap and check this decoder against them, and the table limits are tied to
//! the ring modules' constants at compile time, so a layout change fails loudly.
//!
//! Contract: [`decode`] takes any byte slice and never panics. Offsets and counts read
//! from the bytes are combined with checked arithmetic only; a table that a count or
//! offset places outside the bytes (or a count beyond what the ring crate ever writes)
//! makes the ring [`RingDiag::Corrupted`] — reported for that one object, so a listing
//! of many sections goes on. The fuzz target `ring_diag` drives it
//! ([`crate::fuzzing::diag::ringdiag`]).
//!
//! The decoder mirrors the ring crate's layouts (it reads copied bytes, never a
//! mapping); broadcast overruns are not shown, since only each reader knows its own.

use culvert_sync::{Liveness, ProcessIdentity};

/// Bytes of an object to copy for decoding (the largest control block plus tables).
pub const DIAG_BYTES: usize = 16 * 1024;

/// Most participant-table entries of an MPMC ring.
pub const MPMC_MAX_ENDPOINTS: u64 = 1023;
/// Writer-table entries of a broadcast ring.
pub const BROADCAST_MAX_WRITERS: u64 = 128;
const _: () = assert!(MPMC_MAX_ENDPOINTS == crate::mpmc::control::MAX_ENDPOINTS as u64);
#[cfg(not(loom))]
const _: () = assert!(BROADCAST_MAX_WRITERS == crate::broadcast::control::MAX_WRITERS as u64);
/// Offset of the broadcast writer table.
const BROADCAST_WRITERS_OFFSET: usize = 512;

/// What a ring's control block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingDiag {
    /// An SPSC byte or message ring.
    Spsc {
        /// Message framing (else bytes).
        messages: bool,
        /// Data bytes.
        capacity: u64,
        /// Largest message (message rings).
        max_message: u64,
        /// Bytes ever committed.
        tail: u64,
        /// Bytes ever released.
        head: u64,
        /// Writer closed its side.
        writer_closed: bool,
        /// Reader closed its side.
        reader_closed: bool,
        /// Packed identity of the writer (0 = none).
        writer_owner: u64,
        /// Packed identity of the reader (0 = none).
        reader_owner: u64,
        /// Waiters announced on the readable notifier (sleeping readers).
        readers_waiting: u32,
        /// Waiters announced on the writable notifier (sleeping writers).
        writers_waiting: u32,
    },
    /// An MPMC message or byte ring.
    Mpmc {
        /// Message ring (else byte records).
        messages: bool,
        /// Slots.
        slots: u64,
        /// Largest message.
        max_message: u64,
        /// Next position producers claim.
        enqueue_pos: u64,
        /// Next position consumers claim.
        dequeue_pos: u64,
        /// Closed flag.
        closed: bool,
        /// Consumers sleeping.
        consumers_waiting: u32,
        /// Producers sleeping.
        producers_waiting: u32,
        /// Messages lost to consumers that died holding them.
        lost_to_dead_consumers: u64,
        /// Slots abandoned by producers that died mid-write.
        abandoned_by_dead_producers: u64,
        /// Slots given back at close.
        aborted_by_close: u64,
        /// Packed identities in the participant table (non-zero entries).
        participants: Vec<u64>,
    },
    /// A broadcast ring.
    Broadcast {
        /// Slots.
        capacity: u64,
        /// Largest message.
        max_message: u64,
        /// Positions ever claimed (messages sent).
        tail: u64,
        /// Readers sleeping.
        readers_waiting: u32,
        /// Readers attached (honest peers' count).
        readers: u64,
        /// Packed identities in the writer table (non-zero entries).
        writers: Vec<u64>,
    },
    /// A ring control block that contradicts itself (a table outside the object, a
    /// count out of range): what is wrong.
    Corrupted(String),
    /// Starts with the ring magic but of a kind this tool does not know.
    UnknownRing(u8),
    /// Not a ring (another structure of a higher layer).
    NotARing,
}

/// The native-endian `u64` at `off`; `None` if it does not lie (entirely) in `b`.
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let end = off.checked_add(8)?;
    b.get(off..end)
        .map(|s| u64::from_ne_bytes(s.try_into().unwrap_or([0; 8])))
}

/// The native-endian `u32` at `off`; `None` if it does not lie (entirely) in `b`.
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    b.get(off..end)
        .map(|s| u32::from_ne_bytes(s.try_into().unwrap_or([0; 4])))
}

/// The non-zero words of the table of `count` `u64`s at `offset`, or why it does not
/// lie inside `b`.
fn table(b: &[u8], offset: u64, count: u64, what: &str) -> Result<Vec<u64>, String> {
    let outside = || {
        format!(
            "{what} table ({count} entries at offset {offset}) lies outside the {} bytes read",
            b.len()
        )
    };
    let start = usize::try_from(offset).map_err(|_| outside())?;
    let n = usize::try_from(count).map_err(|_| outside())?;
    let end = n
        .checked_mul(8)
        .and_then(|len| start.checked_add(len))
        .filter(|&end| end <= b.len())
        .ok_or_else(outside)?;
    Ok(b[start..end]
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .filter(|&w| w != 0)
        .collect())
}

/// Decodes the ring (if any) whose control block starts at `b[0]`. `None` if `b` is
/// too short for the control block its magic announces.
pub fn decode(b: &[u8]) -> Option<RingDiag> {
    let magic = u64_at(b, 0)?.to_le_bytes();
    if &magic[..7] != b"CLVRING" {
        return Some(RingDiag::NotARing);
    }
    match magic[7] {
        kind @ (1 | 2) => Some(RingDiag::Spsc {
            messages: kind == 2,
            capacity: u64_at(b, 8)?,
            max_message: u64_at(b, 16)?,
            tail: u64_at(b, 128)?,
            head: u64_at(b, 256)?,
            writer_closed: u32_at(b, 384)? != 0,
            reader_closed: u32_at(b, 388)? != 0,
            writer_owner: u64_at(b, 392)?,
            reader_owner: u64_at(b, 400)?,
            readers_waiting: u32_at(b, 512 + 4)?,
            writers_waiting: u32_at(b, 640 + 4)?,
        }),
        kind @ (3 | 4) => {
            let slot_shift = u32_at(b, 12)?;
            let max_endpoints = u64::from(u32_at(b, 24)?);
            let participants_offset = u64_at(b, 40)?;
            // The fixed part must be there before the tables are judged.
            u64_at(b, 664)?;
            if !(1..=MPMC_MAX_ENDPOINTS).contains(&max_endpoints) {
                return Some(RingDiag::Corrupted(format!(
                    "participant table of {max_endpoints} entries (must be 1..={MPMC_MAX_ENDPOINTS})"
                )));
            }
            let participants = match table(b, participants_offset, max_endpoints, "participant") {
                Ok(p) => p,
                Err(why) => return Some(RingDiag::Corrupted(why)),
            };
            Some(RingDiag::Mpmc {
                messages: kind == 3,
                slots: 1u64.checked_shl(slot_shift).unwrap_or(0),
                max_message: u64_at(b, 16)?,
                enqueue_pos: u64_at(b, 128)?,
                dequeue_pos: u64_at(b, 256)?,
                consumers_waiting: u32_at(b, 384 + 4)?,
                producers_waiting: u32_at(b, 512 + 4)?,
                closed: u32_at(b, 640)? != 0,
                lost_to_dead_consumers: u64_at(b, 648)?,
                abandoned_by_dead_producers: u64_at(b, 656)?,
                aborted_by_close: u64_at(b, 664)?,
                participants,
            })
        }
        5 => {
            let max_writers = u64_at(b, 40)?;
            // The fixed part must be there before the table is judged.
            u64_at(b, 384)?;
            if !(1..=BROADCAST_MAX_WRITERS).contains(&max_writers) {
                return Some(RingDiag::Corrupted(format!(
                    "writer table of {max_writers} entries (must be 1..={BROADCAST_MAX_WRITERS})"
                )));
            }
            let writers = match table(b, BROADCAST_WRITERS_OFFSET as u64, max_writers, "writer") {
                Ok(w) => w,
                Err(why) => return Some(RingDiag::Corrupted(why)),
            };
            Some(RingDiag::Broadcast {
                capacity: u64_at(b, 16)?,
                max_message: u64_at(b, 24)?,
                tail: u64_at(b, 128)?,
                readers_waiting: u32_at(b, 256 + 4)?,
                readers: u64_at(b, 384)?,
                writers,
            })
        }
        other => Some(RingDiag::UnknownRing(other)),
    }
}

/// Owner words as a comma-separated list of [`owner_text`]s, or "none".
fn owners_text(words: &[u64]) -> String {
    if words.is_empty() {
        return "none".into();
    }
    let texts: Vec<String> = words.iter().map(|&w| owner_text(w)).collect();
    texts.join(", ")
}

/// A packed owner word as "pid (live)" / "pid (dead)" / "-".
pub fn owner_text(word: u64) -> String {
    if word == 0 {
        return "-".into();
    }
    let id = ProcessIdentity::from_packed(word);
    let state = match ProcessIdentity::packed_liveness(word) {
        Liveness::Alive => "live",
        Liveness::Dead => "dead",
    };
    format!("{} ({state})", id.pid)
}

impl RingDiag {
    /// Packed identities of every endpoint recorded in the ring.
    pub fn owners(&self) -> Vec<u64> {
        match self {
            RingDiag::Spsc {
                writer_owner,
                reader_owner,
                ..
            } => [*writer_owner, *reader_owner]
                .into_iter()
                .filter(|&w| w != 0)
                .collect(),
            RingDiag::Mpmc { participants, .. } => participants.clone(),
            RingDiag::Broadcast { writers, .. } => writers.clone(),
            _ => Vec::new(),
        }
    }

    /// A short name of the ring type.
    pub fn type_name(&self) -> String {
        match self {
            RingDiag::Spsc { messages: true, .. } => "spsc message ring".into(),
            RingDiag::Spsc { .. } => "spsc byte ring".into(),
            RingDiag::Mpmc { messages: true, .. } => "mpmc message ring".into(),
            RingDiag::Mpmc { .. } => "mpmc byte ring".into(),
            RingDiag::Broadcast { .. } => "broadcast ring".into(),
            RingDiag::Corrupted(_) => "corrupted ring".into(),
            RingDiag::UnknownRing(k) => format!("ring of unknown kind {k}"),
            RingDiag::NotARing => "not a ring".into(),
        }
    }

    /// Lines describing the ring, for `inspect`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            RingDiag::Spsc {
                messages,
                capacity,
                max_message,
                tail,
                head,
                writer_closed,
                reader_closed,
                writer_owner,
                reader_owner,
                readers_waiting,
                writers_waiting,
            } => {
                let fill = tail.wrapping_sub(*head);
                let bad = head > tail || fill > *capacity;
                out.push(format!(
                    "capacity {capacity} bytes{}",
                    if *messages {
                        format!(", max message {max_message} bytes")
                    } else {
                        String::new()
                    }
                ));
                out.push(format!(
                    "fill {fill} bytes ({:.1}%){}",
                    if *capacity > 0 {
                        100.0 * fill as f64 / *capacity as f64
                    } else {
                        0.0
                    },
                    if bad {
                        "  INCONSISTENT: tail - head must lie in 0..=capacity"
                    } else {
                        ""
                    }
                ));
                out.push(format!("positions: head {head}, tail {tail}"));
                out.push(format!(
                    "writer {} {}; reader {} {}",
                    owner_text(*writer_owner),
                    if *writer_closed { "closed" } else { "open" },
                    owner_text(*reader_owner),
                    if *reader_closed { "closed" } else { "open" },
                ));
                out.push(format!(
                    "sleeping waiters: {readers_waiting} reader(s), {writers_waiting} writer(s)"
                ));
            }
            RingDiag::Mpmc {
                slots,
                max_message,
                enqueue_pos,
                dequeue_pos,
                closed,
                consumers_waiting,
                producers_waiting,
                lost_to_dead_consumers,
                abandoned_by_dead_producers,
                aborted_by_close,
                participants,
                ..
            } => {
                let fill = enqueue_pos.wrapping_sub(*dequeue_pos) as i64;
                out.push(format!(
                    "capacity {slots} slots of up to {max_message} bytes"
                ));
                out.push(format!(
                    "fill ~{fill} message(s){}",
                    if fill < 0 || fill as u64 > *slots {
                        "  (positions move under us; slot words are authoritative)"
                    } else {
                        ""
                    }
                ));
                out.push(format!(
                    "positions: dequeue {dequeue_pos}, enqueue {enqueue_pos}"
                ));
                out.push(format!("closed: {}", if *closed { "yes" } else { "no" }));
                out.push(format!(
                    "sleeping waiters: {consumers_waiting} consumer(s), {producers_waiting} producer(s)"
                ));
                out.push(format!(
                    "counters: lost to dead consumers {lost_to_dead_consumers}, abandoned by dead producers {abandoned_by_dead_producers}, aborted by close {aborted_by_close}"
                ));
                out.push(format!("endpoints: {}", owners_text(participants)));
            }
            RingDiag::Broadcast {
                capacity,
                max_message,
                tail,
                readers_waiting,
                readers,
                writers,
            } => {
                out.push(format!(
                    "capacity {capacity} slots of up to {max_message} bytes"
                ));
                out.push(format!(
                    "sent {tail} message(s) (tail); holds the last {}",
                    tail.min(capacity)
                ));
                out.push(format!(
                    "readers attached: {readers}; sleeping: {readers_waiting}"
                ));
                out.push(format!("writers: {}", owners_text(writers)));
                out.push("overruns: counted per reader (not kept in shared memory)".to_string());
            }
            RingDiag::Corrupted(why) => out.push(format!("CORRUPTED: {why}")),
            RingDiag::UnknownRing(_) | RingDiag::NotARing => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{broadcast, mpmc, spsc, Deadline, Region};
    use culvert_sync::ProcessIdentity;

    fn snapshot(r: &Region) -> Vec<u8> {
        let n = r.len().min(DIAG_BYTES);
        let mut v = vec![0u8; n];
        // SAFETY: the heap region is at least `n` bytes and alive; only this thread
        // uses it; `v` is local.
        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), v.as_mut_ptr(), n) };
        v
    }

    #[test]
    fn decodes_spsc_rings() {
        let config = spsc::Config::messages(4096, 256);
        let region = Region::heap(spsc::MessageRing::required_size(&config).unwrap()).unwrap();
        spsc::MessageRing::init(&region, &config).unwrap();
        let mut w = spsc::MessageWriter::attach(&region).unwrap();
        let r = spsc::MessageReader::attach(&region).unwrap();
        w.write(b"hello", Deadline::never()).unwrap();
        drop(r);
        let me = ProcessIdentity::me().packed();
        match decode(&snapshot(&region)).unwrap() {
            RingDiag::Spsc {
                messages,
                capacity,
                max_message,
                tail,
                head,
                reader_closed,
                writer_closed,
                writer_owner,
                reader_owner,
                ..
            } => {
                assert!(messages);
                assert_eq!((capacity, max_message), (4096, 256));
                assert_eq!(head, 0);
                assert!((5..=4096).contains(&tail));
                assert!(reader_closed && !writer_closed);
                assert_eq!((writer_owner, reader_owner), (me, me));
            }
            other => panic!("{other:?}"),
        }

        let config = spsc::Config::bytes(1024);
        let region = Region::heap(spsc::ByteRing::required_size(&config).unwrap()).unwrap();
        spsc::ByteRing::init(&region, &config).unwrap();
        let mut w = spsc::ByteWriter::attach(&region).unwrap();
        w.write_all(&[1; 100], Deadline::never()).unwrap();
        match decode(&snapshot(&region)).unwrap() {
            RingDiag::Spsc {
                messages: false,
                capacity: 1024,
                tail: 100,
                head: 0,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_mpmc_and_broadcast_rings() {
        let config = mpmc::Config::new(8, 64).with_max_endpoints(4);
        let region = Region::heap(mpmc::MessageRing::required_size(&config).unwrap()).unwrap();
        mpmc::MessageRing::init(&region, &config).unwrap();
        let mut p = mpmc::MessageWriter::attach(&region).unwrap();
        let _c = mpmc::MessageReader::attach(&region).unwrap();
        p.try_write(b"x").unwrap();
        p.try_write(b"y").unwrap();
        match decode(&snapshot(&region)).unwrap() {
            RingDiag::Mpmc {
                messages: true,
                slots: 8,
                max_message: 64,
                enqueue_pos: 2,
                dequeue_pos: 0,
                closed: false,
                participants,
                ..
            } => assert_eq!(participants.len(), 2),
            other => panic!("{other:?}"),
        }

        let config = broadcast::Config::new(8, 64);
        let region = Region::heap(broadcast::Ring::required_size(&config).unwrap()).unwrap();
        broadcast::Ring::init(&region, &config).unwrap();
        let mut w = broadcast::Writer::attach(&region).unwrap();
        let _r = broadcast::Reader::attach(&region).unwrap();
        for _ in 0..3 {
            w.write(b"z").unwrap();
        }
        match decode(&snapshot(&region)).unwrap() {
            RingDiag::Broadcast {
                capacity: 8,
                max_message: 64,
                tail: 3,
                readers: 1,
                writers,
                ..
            } => assert_eq!(writers.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(&[0u8; 64]), Some(RingDiag::NotARing));
        assert_eq!(decode(&[0u8; 4]), None);
    }
}
