//! [`SpscCore`]: what both SPSC endpoints of both framings share — the validated view of
//! the control block and data area, and wrap-aware copies in and out of the data area.

use std::ptr::NonNull;

use culvert_section::Region;
use culvert_sync::atomic::Ordering;

use super::control::{Config, SpscControl, MAX_CAPACITY, MIN_CAPACITY};
use crate::layout::{control_ptr, ring_magic};
use crate::{Error, Result};

/// Largest message-ring capacity: record lengths (and padding) are 32-bit.
const MAX_MESSAGE_RING_CAPACITY: u64 = 1 << 32;

/// Size of a message record header.
pub(crate) const RECORD_HEADER: usize = 8;

/// Bytes a ring with `config` needs: the control block plus the data area.
pub(crate) fn required_size(config: &Config, message: bool) -> Result<usize> {
    validate(config.capacity as u64, config.max_message as u64, message)?;
    Ok(std::mem::size_of::<SpscControl>() + config.capacity)
}

fn validate(capacity: u64, max_message: u64, message: bool) -> Result<()> {
    if !capacity.is_power_of_two()
        || capacity < MIN_CAPACITY as u64
        || capacity > MAX_CAPACITY as u64
    {
        return Err(Error::InvalidConfig {
            what: "capacity must be a power of two between 64 bytes and 1 TiB",
        });
    }
    if message && capacity > MAX_MESSAGE_RING_CAPACITY {
        return Err(Error::InvalidConfig {
            what: "message rings hold at most 4 GiB (record lengths are 32-bit)",
        });
    }
    if message && max_message > capacity - RECORD_HEADER as u64 {
        return Err(Error::InvalidConfig {
            what: "max_message must be at most capacity - 8",
        });
    }
    if !message && max_message != 0 {
        return Err(Error::InvalidConfig {
            what: "byte rings have no max_message",
        });
    }
    Ok(())
}

/// Writes a fresh control block for `config` at the start of `region`.
pub(crate) fn init(region: &Region, config: &Config, kind: u8, message: bool) -> Result<()> {
    let needed = required_size(config, message)?;
    if region.len() < needed {
        return Err(Error::InvalidConfig {
            what: "region smaller than required_size(config)",
        });
    }
    let ctl = control_ptr::<SpscControl>(region)?;
    // `write` constructs every atomic (required under loom) without reading old bytes.
    // SAFETY: in bounds and aligned (`control_ptr`); exclusive, as nobody attached yet.
    unsafe {
        ctl.as_ptr().write(SpscControl::new(
            kind,
            config.capacity as u64,
            config.max_message as u64,
        ))
    };
    Ok(())
}

/// The validated view of one SPSC ring, held by each endpoint.
pub(crate) struct SpscCore {
    /// Keeps the mapping alive. Invariant: holds the control block and `capacity` data
    /// bytes after it.
    region: Region,
    /// The control block at the start of `region`.
    ctl: NonNull<SpscControl>,
    /// First data byte.
    data: *mut u8,
    /// Data bytes, copied out at attach (never re-read). Power of two.
    pub capacity: u64,
    /// `capacity - 1`.
    pub mask: u64,
    /// Largest message payload (message rings), copied out at attach.
    pub max_message: u64,
}

// SAFETY: SpscCore only holds raw pointers into `region`, which it keeps alive; all shared
// accesses go through atomics or through byte ranges the SPSC protocol grants to the
// endpoint owning this SpscCore. One endpoint = one SpscCore, used from one thread at a time
// (endpoint methods take `&mut self`).
unsafe impl Send for SpscCore {}

impl SpscCore {
    /// Validates the control block in `region` and builds the view.
    pub(crate) fn attach(region: &Region, kind: u8, message: bool) -> Result<SpscCore> {
        let ctl = control_ptr::<SpscControl>(region)?;
        // SAFETY: aligned and in bounds (control_ptr). Only atomics are read; in a
        // section that was never initialised they read as zero, which fails the magic
        // check below.
        let c = unsafe { ctl.as_ref() };
        if c.config.magic.load(Ordering::Acquire) != ring_magic(kind) {
            return Err(Error::Corrupted {
                what: "ring magic does not match this ring kind",
            });
        }
        let capacity = c.config.capacity.load(Ordering::Relaxed);
        let max_message = c.config.max_message.load(Ordering::Relaxed);
        validate(capacity, max_message, message).map_err(|_| Error::Corrupted {
            what: "ring configuration words are invalid",
        })?;
        let control = std::mem::size_of::<SpscControl>();
        if (region.len() as u64) < control as u64 + capacity {
            return Err(Error::Corrupted {
                what: "ring capacity exceeds its region",
            });
        }
        // SAFETY: `control < region.len()` (checked just above), so the data pointer is
        // inside the region.
        let data = unsafe { region.as_ptr().add(control) };
        Ok(SpscCore {
            region: region.clone(),
            ctl,
            data,
            capacity,
            mask: capacity - 1,
            max_message,
        })
    }

    /// The control block.
    #[inline(always)]
    pub(crate) fn ctl(&self) -> &SpscControl {
        // SAFETY: validated at attach; the region (kept alive by `self.region`) holds
        // it; only atomics are accessed through the reference.
        unsafe { self.ctl.as_ref() }
    }

    /// The region this ring lives in.
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Pointer to the data byte at ring position `pos`.
    #[inline(always)]
    pub(crate) fn at(&self, pos: u64) -> *mut u8 {
        // SAFETY: `pos & mask < capacity`, and the data area holds `capacity` bytes.
        unsafe { self.data.add((pos & self.mask) as usize) }
    }

    /// Hints the CPU to fetch the cache line of ring byte `pos`. Not a memory access:
    /// no ordering, no data race, whatever the writer does there.
    #[inline(always)]
    pub(crate) fn prefetch(&self, pos: u64) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        // SAFETY: `_mm_prefetch` needs SSE, which x86_64 always has; a prefetch of any
        // address is harmless, and `at` stays inside the data area.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                self.at(pos).cast::<i8>(),
            )
        };
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = pos;
    }

    /// Hints the CPU to fetch the cache lines of ring bytes `pos..pos + len` for
    /// writing (in exclusive state), so that the writer's later stores there, and the
    /// store→load fence of the notify after them, do not wait for the lines to come
    /// back from the reader's cache. Measured with `culvert bench` on a 2-CPU VM:
    /// `stream_64B_msgs` 8.1–8.4 → 16.9–18.0 M msg/s, `stream_4KiB` 6.0–7.9 →
    /// 10.0–10.9 GB/s. Not a memory access, as [`prefetch`](Self::prefetch)
    /// (`prefetchw`, a no-op on CPUs that lack it).
    #[inline(always)]
    pub(crate) fn prefetch_write(&self, pos: u64, len: usize) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        for off in (0..len as u64).step_by(64) {
            // SAFETY: `prefetchw` only hints the cache and never faults, whatever the
            // address; `at` stays inside the data area.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{p}]",
                    p = in(reg) self.at(pos + off),
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = (pos, len);
    }

    /// Records that the writer wrote ring bytes `pos..pos + len`. Under loom each byte
    /// has a cell (`SpscControl::data_guards`) and this is a write access to each, so
    /// a reader access not ordered after it (through the tail) is reported as a race;
    /// otherwise it does nothing.
    #[inline(always)]
    pub(crate) fn guard_write(&self, pos: u64, len: usize) {
        #[cfg(loom)]
        self.guards(pos, len, |g| g.with_mut(|_| ()));
        #[cfg(not(loom))]
        let _ = (pos, len);
    }

    /// Records that the reader read ring bytes `pos..pos + len` (see
    /// [`guard_write`](Self::guard_write)).
    #[inline(always)]
    pub(crate) fn guard_read(&self, pos: u64, len: usize) {
        #[cfg(loom)]
        self.guards(pos, len, |g| g.with(|_| ()));
        #[cfg(not(loom))]
        let _ = (pos, len);
    }

    /// Loom only: runs `access` on the guard of each data byte `pos..pos + len`.
    #[cfg(loom)]
    fn guards(&self, pos: u64, len: usize, access: impl Fn(&culvert_sync::atomic::UnsafeCell<()>)) {
        for p in pos..pos + len as u64 {
            access(
                &self.ctl().data_guards
                    [(p & self.mask) as usize % super::control::LOOM_DATA_GUARDS],
            );
        }
    }

    /// Copies `src` into the ring at `pos`, wrapping at the end.
    ///
    /// # Safety
    /// The caller is the writer and owns `pos..pos + src.len()` (it lies between the
    /// tail and head + capacity, so the reader does not read it), and
    /// `src.len() <= capacity`.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, pos: u64, src: &[u8]) {
        debug_assert!(src.len() as u64 <= self.capacity);
        self.guard_write(pos, src.len());
        let idx = (pos & self.mask) as usize;
        let first = src.len().min(self.capacity as usize - idx);
        // SAFETY: `idx + first <= capacity` and `src.len() - first <= idx` (as
        // `src.len() <= capacity`), so both copies stay in the data area, in bytes the
        // caller owns; `src` is local memory, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.add(idx), first);
            if first < src.len() {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().add(first),
                    self.data,
                    src.len() - first,
                );
            }
        }
    }

    /// Copies ring bytes at `pos` into `dst`, wrapping at the end.
    ///
    /// # Safety
    /// The caller is the reader, has checked that `pos..pos + dst.len()` holds
    /// committed data (between head and tail, so the writer does not write it), and
    /// `dst.len() <= capacity`.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        debug_assert!(dst.len() as u64 <= self.capacity);
        self.guard_read(pos, dst.len());
        let idx = (pos & self.mask) as usize;
        let first = dst.len().min(self.capacity as usize - idx);
        // SAFETY: both copies stay in the data area as in `copy_in`, in committed bytes
        // the reader owns until it releases them; `dst` is local.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.add(idx), dst.as_mut_ptr(), first);
            if first < dst.len() {
                std::ptr::copy_nonoverlapping(
                    self.data,
                    dst.as_mut_ptr().add(first),
                    dst.len() - first,
                );
            }
        }
    }

    /// Whether the process recorded in `owner_word` has died (0 = none attached yet:
    /// not dead).
    pub(crate) fn owner_died(&self, owner_word: u64) -> bool {
        culvert_sync::holder_of(owner_word) == culvert_sync::Holder::Dead
    }

    /// Checks a shared position read from the peer against our own.
    /// `lower <= upper` and `upper - lower <= capacity` must hold.
    #[inline(always)]
    pub(crate) fn check_span(&self, lower: u64, upper: u64, what: &'static str) -> Result<()> {
        if lower > upper || upper - lower > self.capacity {
            Err(Error::Corrupted { what })
        } else {
            Ok(())
        }
    }
}
