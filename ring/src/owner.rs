//! Endpoint ownership words: which process holds an endpoint, in a way that survives
//! PID reuse, so a dead holder can be detected and its endpoint reclaimed.
//!
//! An owner word holds a [`ProcessIdentity::packed`] value, or 0 for "nobody". A new
//! endpoint claims the word with a compare-exchange from 0, or takes it over from a
//! holder found dead.

use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::{Liveness, ProcessIdentity};

use crate::{Error, Result};

/// The packed identity of the calling process.
pub(crate) fn my_identity() -> u64 {
    ProcessIdentity::me().packed()
}

/// Claims `word` for the calling process: from "nobody", or from a holder that died.
/// `Busy` when a live process holds it.
pub(crate) fn claim(word: &AtomicU64, what: &'static str) -> Result<u64> {
    let me = my_identity();
    let mut current = word.load(Ordering::Acquire);
    loop {
        if current != 0 && holder_liveness(current) == Liveness::Alive {
            return Err(Error::Busy { what });
        }
        match word.compare_exchange(current, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(me),
            Err(now) => current = now,
        }
    }
}

/// Liveness of the holder recorded in an owner word (0 counts as dead).
pub(crate) fn holder_liveness(word: u64) -> Liveness {
    if word == 0 {
        return Liveness::Dead;
    }
    #[cfg(loom)]
    {
        // Models run in one process: every recorded holder is this process.
        Liveness::Alive
    }
    #[cfg(not(loom))]
    {
        ProcessIdentity::packed_liveness(word)
    }
}
