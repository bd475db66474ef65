//! What the hostile-peer fuzz bodies ([`super::mpmc_hostile`], [`super::spsc_hostile`])
//! share: an input reader, a wall-clock bound on every call, self-checking messages,
//! and a raw view of a ring's shared words through which the input plays the peer.
//!
//! Messages are `id: u32 LE`, `len: u8`, then bytes derived from `(id, position)`: a
//! message read back can be recognised as one a writer really committed, byte for
//! byte, by recomputing it from its id and length ([`Committed::holds`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use culvert_section::Region;
use culvert_sync::atomic::{AtomicU32, AtomicU64};

use crate::Error;

/// Longest one ring call may take under fuzz: every call made is non-blocking (a
/// `try_*` or a `Deadline::now()` call), so anything close to this is a hang.
pub(super) const CALL_LIMIT: Duration = Duration::from_secs(1);

/// Bytes of a message that are not pattern: the id and the length byte.
pub(super) const MSG_HEADER: usize = 5;

/// Reads the fuzz input a byte at a time; `None` once it runs out.
pub(super) struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(super) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.byte()?;
        }
        Some(u32::from_le_bytes(v))
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | (u64::from(self.u32()?) << 32))
    }
}

/// Runs one ring call and panics if it took longer than [`CALL_LIMIT`].
pub(super) fn timed<T>(what: &str, call: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = call();
    let took = start.elapsed();
    assert!(took < CALL_LIMIT, "{what} took {took:?}");
    out
}

/// Byte `i` of the message with `id`.
fn pattern(id: u32, i: usize) -> u8 {
    let x = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64).wrapping_mul(0xff51);
    (x.wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> 56) as u8
}

/// Fills `out` with the message `id` of `out.len()` bytes (a shorter one than
/// [`MSG_HEADER`] is a prefix of the header and cannot be recognised).
pub(super) fn encode(id: u32, out: &mut [u8]) {
    let len = out.len();
    let head = id.to_le_bytes();
    for (i, b) in out.iter_mut().enumerate() {
        *b = match i {
            0..=3 => head[i],
            4 => len as u8,
            _ => pattern(id, i),
        };
    }
}

/// The ids of the messages writers committed (a send that returned `Ok`), with their
/// lengths.
#[derive(Default)]
pub(super) struct Committed {
    lens: HashMap<u32, usize>,
}

impl Committed {
    pub(super) fn insert(&mut self, id: u32, len: usize) {
        self.lens.insert(id, len);
    }

    /// Whether `msg` is, byte for byte, a message some writer committed.
    pub(super) fn holds(&self, msg: &[u8]) -> bool {
        if msg.len() < MSG_HEADER || msg.len() > u8::MAX as usize {
            return false;
        }
        let id = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        if self.lens.get(&id) != Some(&msg.len()) || msg[4] as usize != msg.len() {
            return false;
        }
        msg.iter()
            .enumerate()
            .skip(MSG_HEADER)
            .all(|(i, &b)| b == pattern(id, i))
    }
}

/// Whether `e` is an error a call may give once the peer is hostile: anything typed
/// except the ones that only attach or configuration give.
pub(super) fn runtime_error(e: &Error) -> bool {
    matches!(
        e,
        Error::WouldBlock
            | Error::Timeout
            | Error::Closed
            | Error::PeerDied
            | Error::Corrupted { .. }
            | Error::BufferTooSmall { .. }
            | Error::MessageTooLarge { .. }
    )
}

/// The shared words of a ring in a heap region, written the way a hostile peer in
/// another process would: plain atomic stores of arbitrary values at fixed offsets.
pub(super) struct Shared {
    region: Region,
}

impl Shared {
    pub(super) fn new(region: &Region) -> Self {
        Self {
            region: region.clone(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.region.len()
    }

    /// The 8-byte word at `off`.
    pub(super) fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= self.region.len(), "word {off}");
        // SAFETY: `off` is 8-aligned inside the region (asserted), whose base is
        // page-aligned and which `self` keeps alive; the ring's endpoints reach these
        // bytes only through atomics too.
        unsafe { &*self.region.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// The 4-byte word at `off`.
    pub(super) fn u32(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.region.len(), "word {off}");
        // SAFETY: as in `u64`, with 4-byte alignment.
        unsafe { &*self.region.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// Overwrites data bytes at `off` (cut at the region's end).
    pub(super) fn write_bytes(&self, off: usize, bytes: &[u8]) {
        let Some(room) = self.region.len().checked_sub(off) else {
            return;
        };
        let n = bytes.len().min(room);
        // SAFETY: `off..off + n` lies inside the region (checked above); the bodies are
        // single-threaded, so no endpoint call reads these bytes meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.region.as_ptr().add(off), n) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_messages_are_recognised_byte_for_byte() {
        let mut c = Committed::default();
        let mut m = [0u8; 20];
        encode(7, &mut m);
        assert!(!c.holds(&m), "not committed yet");
        c.insert(7, 20);
        assert!(c.holds(&m));
        assert!(!c.holds(&m[..19]), "a prefix is not the message");
        let mut flipped = m;
        flipped[12] ^= 1;
        assert!(!c.holds(&flipped));
        assert!(!c.holds(&[]));
    }
}
