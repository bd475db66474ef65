//! Maps and sets keyed by call id, hashed with one multiplication instead of SipHash.
//!
//! Call ids come from a per-client counter, and every call files its id once on each
//! side (client: the table of waited-for replies; server: the set of calls in flight),
//! so the hash is on the path of every call. A multiplicative hash keeps consecutive
//! ids in distinct buckets and spreads them over the high bits hashbrown's tags use.
//!
//! Ids the server files are chosen by the client: a hostile client can make its own
//! ids collide, which slows only the set of its own connection, in proportion to the
//! calls it keeps in flight.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by call id.
pub(crate) type CallIdMap<V> = HashMap<u64, V, BuildHasherDefault<CallIdHasher>>;
/// A set of call ids.
pub(crate) type CallIdSet = HashSet<u64, BuildHasherDefault<CallIdHasher>>;

/// Fibonacci hashing of one `u64` (2^64 / φ, odd).
#[derive(Default)]
pub(crate) struct CallIdHasher {
    /// The hash of the last `u64` written.
    hash: u64,
}

impl Hasher for CallIdHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys use this hasher; any other input still hashes.
        for &b in bytes {
            self.write_u64(self.hash.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.hash = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_hash_apart_in_low_and_high_bits() {
        let b = BuildHasherDefault::<CallIdHasher>::default();
        let hashes: Vec<u64> = (1..=64u64).map(|id| b.hash_one(id)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(low.len(), 64);
        assert!(tags.len() > 32, "{} distinct tags", tags.len());
    }

    #[test]
    fn maps_and_sets_work_as_usual() {
        let mut m = CallIdMap::default();
        let mut s = CallIdSet::default();
        for id in 0..1000u64 {
            m.insert(id * 4096, id);
            s.insert(id * 4096);
        }
        assert_eq!(m.get(&(7 * 4096)), Some(&7));
        assert!(s.remove(&(999 * 4096)));
        assert!(!s.contains(&(999 * 4096)));
        assert_eq!(s.len(), 999);
    }
}
