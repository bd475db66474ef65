//! Helpers shared by the cross-process tests of `culvert-sync`.
//!
//! * [`Shared`] — a memfd mapped `MAP_SHARED` with [`memmap2::MmapRaw`]; atomics and
//!   [`Notifier`]s are placed in it by aligned pointer casts, the way production code
//!   places them in a section.
//! * [`child`] — the command of a child of `culvert_testkit`'s role harness (run under
//!   the test's `culvert_testkit::Supervisor`) that inherits the memfd: a `pre_exec`
//!   hook clears its `FD_CLOEXEC` in the child only, and its number travels as the role
//!   argument [`SHM_FD`]. The child also gets `PR_SET_PDEATHSIG = SIGKILL`, so it
//!   cannot outlive the test thread that spawned it.

#![allow(dead_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use culvert_sync::atomic::{AtomicU32, AtomicU64};
use culvert_sync::Notifier;
use culvert_testkit::{role_arg_parsed, ChildCommand, CrossTest};
use memmap2::MmapRaw;

/// The role argument holding the number of the inherited memfd.
pub const SHM_FD: &str = "SHM_FD";

/// A memfd mapped `MAP_SHARED`, zero-filled at creation.
pub struct Shared {
    fd: OwnedFd,
    map: MmapRaw,
}

impl Shared {
    /// Creates a fresh memfd of `len` bytes and maps it.
    pub fn create(len: usize) -> Self {
        use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
        let fd = memfd_create("culvert-sync-test", MemfdFlags::CLOEXEC).expect("memfd_create");
        ftruncate(&fd, len as u64).expect("ftruncate memfd");
        Self::map(fd)
    }

    /// Maps the memfd the parent passed as [`SHM_FD`] (child side).
    pub fn from_env() -> Self {
        let raw: RawFd = role_arg_parsed(SHM_FD);
        // SAFETY: the parent cleared FD_CLOEXEC on exactly this descriptor in our
        // pre-exec hook and nothing else in this process owns or closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> Self {
        let map = MmapRaw::map_raw(&fd).expect("mmap memfd MAP_SHARED");
        Self { fd, map }
    }

    /// The descriptor number (valid in this process).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A pointer to a `T` at `offset`, after checking bounds and alignment.
    fn ptr_at<T>(&self, offset: usize) -> *mut T {
        assert!(
            offset
                .checked_add(std::mem::size_of::<T>())
                .is_some_and(|end| end <= self.map.len()),
            "offset {offset} out of bounds of a {}-byte mapping",
            self.map.len()
        );
        // SAFETY: `offset + size_of::<T>() <= len` was checked just above, so the
        // result stays inside the mapping.
        let ptr = unsafe { self.map.as_mut_ptr().add(offset) };
        assert_eq!(
            ptr as usize % std::mem::align_of::<T>(),
            0,
            "offset {offset} misaligned"
        );
        ptr.cast()
    }

    /// The `AtomicU32` at `offset`.
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: in bounds and aligned (checked by `ptr_at`); the mapping lives as long
        // as `&self`; an atomic may be written concurrently by other processes, and every
        // bit pattern (including the initial zeroes) is a valid `AtomicU32`.
        unsafe { &*self.ptr_at::<AtomicU32>(offset) }
    }

    /// The `AtomicU64` at `offset`.
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as in `u32_at`: in bounds, aligned, lives as long as `&self`, shared
        // mutation goes through atomics only, and every bit pattern is valid.
        unsafe { &*self.ptr_at::<AtomicU64>(offset) }
    }

    /// The [`Notifier`] at `offset` (8 bytes, `#[repr(C)]`, all-zero is valid).
    pub fn notifier_at(&self, offset: usize) -> &Notifier {
        // SAFETY: in bounds and aligned (checked by `ptr_at`); `Notifier` is `#[repr(C)]`
        // of two `AtomicU32`s, so every bit pattern is a valid (if possibly hostile)
        // state, and it is only ever mutated through those atomics.
        unsafe { &*self.ptr_at::<Notifier>(offset) }
    }
}

/// The command running `test` again as a child playing `role`, killed when the thread
/// that spawns it ends. When `shared` is given, the child inherits its memfd and can map
/// it with [`Shared::from_env`].
pub fn child(test: CrossTest, role: &str, shared: Option<&Shared>) -> Command {
    let mut cmd = test.command(role);
    let inherit = shared.map(Shared::raw_fd);
    if let Some(fd) = inherit {
        cmd.role_arg(SHM_FD, fd.to_string());
    }
    // Runs in the child between fork and exec: only async-signal-safe system calls
    // (prctl, fcntl), no allocation.
    let hook = move || -> std::io::Result<()> {
        use rustix::process::{set_parent_process_death_signal, Signal};
        set_parent_process_death_signal(Some(Signal::KILL))?;
        if let Some(fd) = inherit {
            // SAFETY: `fd` is the parent's open memfd, duplicated into this child by
            // fork; it stays open for the duration of this call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            // Clears FD_CLOEXEC in this child's descriptor table only.
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        }
        Ok(())
    };
    // SAFETY: `hook` is async-signal-safe (see above), as `pre_exec` requires.
    unsafe {
        cmd.pre_exec(hook);
    }
    cmd
}
