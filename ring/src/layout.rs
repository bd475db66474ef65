//! Placing a `#[repr(C)]` control struct at the start of a [`Region`].
//!
//! Production code places control structs in a section's mapping; loom models and unit
//! tests place them in heap regions. Either way the struct is written whole by the
//! creator (`init`, which constructs every atomic properly, as loom requires) and later
//! only reached through a checked, aligned pointer cast (`attach`). Configuration words
//! in the struct are copied out once at attach, validated, and never read again, so a
//! peer that rewrites them later cannot change what this endpoint believes.

use std::ptr::NonNull;

use culvert_section::Region;

use crate::{Error, Result};

/// The control struct `T` at the start of `region`, if the region is large enough and
/// suitably aligned.
pub(crate) fn control_ptr<T>(region: &Region) -> Result<NonNull<T>> {
    if region.len() < std::mem::size_of::<T>() {
        return Err(Error::InvalidConfig {
            what: "region smaller than the ring's control block",
        });
    }
    if !region.is_aligned_to(std::mem::align_of::<T>()) {
        return Err(Error::InvalidConfig {
            what: "region not aligned for the ring's control block",
        });
    }
    // The region pointer is non-null by construction.
    NonNull::new(region.as_ptr().cast::<T>()).ok_or(Error::InvalidConfig {
        what: "null region",
    })
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub(crate) const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Magic word at the start of every ring control block: "CLVRING" + kind byte.
pub(crate) const fn ring_magic(kind: u8) -> u64 {
    u64::from_le_bytes([b'C', b'L', b'V', b'R', b'I', b'N', b'G', kind])
}
