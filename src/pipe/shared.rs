//! Shared mode ([`PipeOptions::shared`](super::PipeOptions::shared)): the holder
//! table that lets several processes hold the same end of a pipe, and the rules for
//! when an end counts as gone.
//!
//! ## Holders
//!
//! A shared instance's section has one more object, `holders`: a [`HolderTable`] with
//! [`MAX_HOLDERS`] words per end. A word is
//!
//! * `0` — free;
//! * a packed [`ProcessIdentity`] — one attached [`PipeEnd`](super::PipeEnd) of that
//!   process (a process holding the end twice, e.g. after
//!   [`try_clone`](super::PipeEnd::try_clone), has two words);
//! * a *reservation* — [`RESERVED`] set, a 7-bit nonce in bits 24..31 and a packed
//!   identity in the rest: made by the process that hands the end to a child
//!   ([`PendingEnd::spawn_child`](super::PendingEnd::spawn_child),
//!   [`PipeEnd::spawn_child`](super::PipeEnd::spawn_child), …) *before* the child exists,
//!   naming the parent; after the spawn it is converted to name the child. The child
//!   takes the word over when it attaches (its index travels in `<var>_HOLDER`). So
//!   between spawn and attach the child already counts as a holder — as a forked
//!   process holds its copy of a pipe descriptor from the fork on — and a child that
//!   dies before attaching is discounted through its identity.
//!
//! Real pids are below 2^22 (the kernel's `PID_MAX_LIMIT`), so bits 22..32 of a packed
//! identity are zero for every honest word; the flag and nonce live there. The words
//! are untrusted hints: a hostile value can only make a holder look alive or dead.
//!
//! ## Gone
//!
//! End `e` is *gone* when its status is `END_GONE`, or when it was attached (or had
//! reservations) and no word of its table names a live process. The last holder to
//! detach normally sees its table empty and marks the end gone; a holder that was
//! killed is found by the other end's waits, which check at least every
//! [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL). Whoever
//! finds an end gone closes both rings: readers of the other end drain what was
//! committed, then read end of stream; writers get `Closed` (`BrokenPipe`).

use std::process::Command;

use culvert_section::{Section, View};
use culvert_sync::atomic::{AtomicU64, Ordering};
use culvert_sync::ProcessIdentity;

use super::layout::{
    HolderTable, Side, StateView, END_ATTACHED, END_GONE, END_UNATTACHED, HOLDERS_NAME, MAX_HOLDERS,
};
use crate::{Error, Result};

/// Reservation flag of a holder word (bit 31 of the pid half).
pub(crate) const RESERVED: u64 = 1 << 31;
/// The nonce bits of a reservation (bits 24..31).
const NONCE_MASK: u64 = 0x7f << 24;
/// Bits of a holder word that are not the packed identity.
const FLAG_BITS: u64 = RESERVED | NONCE_MASK;
/// Suffix of the environment variable carrying the reserved holder index.
pub(crate) const HOLDER_ENV_SUFFIX: &str = "_HOLDER";
/// Suffix of the environment variable carrying the side a child attaches (its
/// [`Side::index`], 0 or 1).
pub(crate) const SIDE_ENV_SUFFIX: &str = "_SIDE";

/// The identity part of a holder word.
pub(crate) fn identity_of(word: u64) -> u64 {
    word & !FLAG_BITS
}

/// Whether a holder word names a live process.
fn word_alive(word: u64) -> bool {
    culvert_sync::holder_of(identity_of(word)) == culvert_sync::Holder::Alive
}

/// What a scan of an end's holder words found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holders {
    /// At least one word names a live process.
    Live,
    /// Words were set, none names a live process.
    AllDead,
    /// No word is set.
    Empty,
}

/// Checked access to a [`HolderTable`].
#[derive(Clone)]
pub(crate) struct HolderView {
    view: View<HolderTable>,
}

impl HolderView {
    /// The holder table of a shared instance section.
    pub(crate) fn open(section: &Section) -> Result<Self> {
        let view = View::new(section.object(HOLDERS_NAME)?).ok_or_else(|| Error::Corrupted {
            what: "pipe holder table too small or misaligned".into(),
        })?;
        Ok(Self { view })
    }

    fn table(&self) -> &HolderTable {
        self.view.get()
    }

    /// Word `i` of end `side`. `i` must be `< MAX_HOLDERS`.
    pub(crate) fn word(&self, side: Side, i: usize) -> &AtomicU64 {
        &self.table().ends[side.index()][i]
    }

    /// Scans end `side`'s words.
    pub(crate) fn scan(&self, side: Side) -> Holders {
        let mut any = false;
        for w in &self.table().ends[side.index()] {
            let word = w.load(Ordering::SeqCst);
            if word == 0 {
                continue;
            }
            any = true;
            if word_alive(word) {
                return Holders::Live;
            }
        }
        if any {
            Holders::AllDead
        } else {
            Holders::Empty
        }
    }

    /// Claims a word of end `side` for `value`: word `preferred` if it holds a
    /// reservation, else a free word or one naming a dead process. Returns its index.
    pub(crate) fn claim(&self, side: Side, value: u64, preferred: Option<usize>) -> Result<usize> {
        if let Some(i) = preferred.filter(|&i| i < MAX_HOLDERS) {
            let w = self.word(side, i);
            let cur = w.load(Ordering::SeqCst);
            if cur & RESERVED != 0
                && w.compare_exchange(cur, value, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return Ok(i);
            }
        }
        for i in 0..MAX_HOLDERS {
            let w = self.word(side, i);
            let cur = w.load(Ordering::SeqCst);
            if (cur == 0 || !word_alive(cur))
                && w.compare_exchange(cur, value, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return Ok(i);
            }
        }
        Err(Error::Busy {
            reason: crate::BusyReason::HoldersFull {
                max_holders: MAX_HOLDERS,
            },
        })
    }

    /// Frees word `i` of end `side` if it still holds `value`. Returns whether it did.
    pub(crate) fn release(&self, side: Side, i: usize, value: u64) -> bool {
        i < MAX_HOLDERS
            && self
                .word(side, i)
                .compare_exchange(value, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }
}

/// Whether end `side` of a shared instance is gone (see the module doc).
pub(crate) fn end_gone(state: &StateView, holders: &HolderView, side: Side) -> bool {
    let end = state.end(side);
    let status = end.status.load(Ordering::SeqCst);
    if status != END_UNATTACHED && status != END_ATTACHED {
        return true;
    }
    match holders.scan(side) {
        Holders::Live => false,
        Holders::AllDead => true,
        Holders::Empty if status == END_ATTACHED => true,
        Holders::Empty => {
            let expected = end.expected.load(Ordering::Acquire);
            culvert_sync::holder_of(expected) == culvert_sync::Holder::Dead
        }
    }
}

/// Attaches a holder of end `side` whose word is `my_id`: claims a word (`preferred`
/// if it holds a reservation), then marks the end attached. The word is claimed first
/// and the status checked after, so a last holder leaving at the same moment either
/// sees this word in its scan or makes this call see `END_GONE` (then the word is
/// given back and the result is `Closed`). Returns the word's index.
pub(crate) fn attach_holder(
    state: &StateView,
    holders: &HolderView,
    side: Side,
    my_id: u64,
    preferred: Option<usize>,
) -> Result<usize> {
    let index = holders.claim(side, my_id, preferred)?;
    let end = state.end(side);
    let status = match end.status.compare_exchange(
        END_UNATTACHED,
        END_ATTACHED,
        Ordering::SeqCst,
        Ordering::SeqCst,
    ) {
        Ok(_) => END_ATTACHED,
        Err(now) => now,
    };
    if status != END_ATTACHED {
        holders.release(side, index, my_id);
        return Err(Error::Closed);
    }
    end.holders.fetch_add(1, Ordering::AcqRel);
    Ok(index)
}

/// Detaches the holder of end `side` at word `index` (holding `word`): frees the word
/// and, when no live holder is left, marks the end gone. Returns whether this call
/// marked it (the caller then closes the end's rings).
pub(crate) fn detach_holder(
    state: &StateView,
    holders: &HolderView,
    side: Side,
    index: usize,
    word: u64,
) -> bool {
    if holders.release(side, index, word) {
        state.end(side).holders.fetch_sub(1, Ordering::AcqRel);
    }
    holders.scan(side) != Holders::Live && mark_gone(state, side)
}

/// Marks end `side` gone (from unattached or attached). Returns whether this call did.
pub(crate) fn mark_gone(state: &StateView, side: Side) -> bool {
    let status = &state.end(side).status;
    let mut cur = status.load(Ordering::SeqCst);
    while cur == END_UNATTACHED || cur == END_ATTACHED {
        match status.compare_exchange(cur, END_GONE, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
    false
}

/// A holder word reserved for a child that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    pub index: usize,
    pub word: u64,
}

/// A reservation word naming `identity`, with a nonce.
fn reservation_word(identity: u64, nonce: u64) -> u64 {
    identity_of(identity) | RESERVED | ((nonce << 24) & NONCE_MASK)
}

/// Reserves a holder word of end `side` (naming this process) and arranges for
/// `cmd`'s child to inherit `section` with the descriptor in `var`, the side in
/// `<var>_SIDE` and the reserved index in `<var>_HOLDER`.
pub(crate) fn reserve_for_child(
    section: &Section,
    holders: &HolderView,
    side: Side,
    cmd: &mut Command,
    var: &str,
) -> Result<Reservation> {
    let me = ProcessIdentity::me().packed();
    let nonce = u64::from(std::process::id())
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0));
    let word = reservation_word(me, nonce);
    let index = holders.claim(side, word, None)?;
    let r = Reservation { index, word };
    if let Err(e) = section.pass_to_child(cmd, var) {
        holders.release(side, index, word);
        return Err(e.into());
    }
    cmd.env(format!("{var}{HOLDER_ENV_SUFFIX}"), index.to_string());
    cmd.env(format!("{var}{SIDE_ENV_SUFFIX}"), side.index().to_string());
    Ok(r)
}

/// Converts reservation `r` of end `side` to name the child `pid` (so that the
/// child's death before it attaches is noticed). Harmless if the child already took
/// the word over.
pub(crate) fn convert_reservation(
    holders: &HolderView,
    side: Side,
    r: Reservation,
    pid: u32,
) -> Result<()> {
    let child = ProcessIdentity::of(pid).map(|id| id.packed()).unwrap_or(
        // The child already exited: an identity that is never alive.
        ProcessIdentity::from_parts(pid, u64::from(u32::MAX)).packed(),
    );
    let nonce = (r.word & NONCE_MASK) >> 24;
    let _ = holders.word(side, r.index).compare_exchange(
        r.word,
        reservation_word(child, nonce),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    Ok(())
}

/// The side and reserved holder index a child was given with `var`.
pub(crate) fn inherited_side_and_holder(var: &str) -> Result<(Side, Option<usize>)> {
    let side = match std::env::var(format!("{var}{SIDE_ENV_SUFFIX}")) {
        Err(_) => Side::B,
        Ok(s) => match s.trim() {
            "0" => Side::A,
            "1" => Side::B,
            other => {
                return Err(Error::InvalidArgument {
                    what: format!("{var}{SIDE_ENV_SUFFIX}={other:?} is not 0 or 1"),
                })
            }
        },
    };
    let holder = std::env::var(format!("{var}{HOLDER_ENV_SUFFIX}"))
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&i| i < MAX_HOLDERS);
    Ok((side, holder))
}

#[cfg(all(test, loom))]
mod loom_models;
