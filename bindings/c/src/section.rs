//! Sections from C: named (`create`/`open`/`unlink`) and anonymous (memfd) shared
//! memory, with a pointer to the data area.
//!
//! A C section is a culvert section of kind `Raw` whose whole data area belongs to
//! the caller: `culvert_section_create` creates it and marks it ready at once, so
//! `culvert_section_open` in another process returns as soon as the name exists. What
//! the bytes mean, and how the processes synchronise on them, is the caller's business
//! (the pipes, mailslots and ports of this library are built on sections, but C code
//! gets them through their own handles).

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{AsRawFd, BorrowedFd};

use culvert::section::layout::DATA_OFFSET;
use culvert::section::{Section, SectionOptions};

use crate::status::{
    guard, handle, into_handle, name_arg, need_out, put, put_opt, take_handle, CulvertStatus,
    Failure,
};

/// A mapped shared-memory section.
///
/// Threads: every function may be called on the same handle from any number
/// of threads at once, except `culvert_section_close`, which must be the last use.
/// The data area is plain shared memory: synchronise access to it yourself (e.g. with
/// C11 atomics), since other processes may write it at any time.
pub struct CulvertSection {
    section: Section,
}

/// The data area of a section: `len` bytes at `data`, page-aligned, zero when created.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CulvertSectionData {
    /// First byte. Valid while the section handle is open.
    pub data: *mut c_void,
    /// Length in bytes (the size asked for, rounded up to a page).
    pub len: usize,
}

fn data_of(section: &Section) -> Result<CulvertSectionData, Failure> {
    let offset = usize::try_from(DATA_OFFSET).map_err(|_| Failure::invalid("section too large"))?;
    let len = section.len().saturating_sub(offset);
    let region = section
        .region()
        .subregion(offset, len)
        .ok_or_else(|| Failure::invalid("the section has no data area"))?;
    // The region's owner (the mapping) is kept alive by `section`, which outlives any
    // use of the pointer by contract (valid while the handle is open).
    Ok(CulvertSectionData {
        data: region.as_ptr().cast(),
        len,
    })
}

fn publish(section: Section, out: *mut *mut CulvertSection) -> Result<(), Failure> {
    section.mark_ready()?;
    // SAFETY: `out` was checked non-null by the caller of `publish` and the C caller
    // guarantees it is valid for a write.
    unsafe { put(out, into_handle(CulvertSection { section })) };
    Ok(())
}

fn options(mode: u32) -> Result<SectionOptions, Failure> {
    let mut o = SectionOptions::default();
    if mode != 0 {
        if mode & !0o777 != 0 {
            return Err(Failure::invalid(format!(
                "mode {mode:#o} has bits beyond 0777"
            )));
        }
        o = o.mode(mode);
    }
    Ok(o)
}

/// Creates the named section `name` (`[A-Za-z0-9._-]{1,200}`) with at least `size`
/// data bytes, in the namespace directory `$CULVERT_ROOT` (default `/dev/shm`), and
/// stores its handle in `*out`. `mode` is the file mode (e.g. `0600`, `0666`); 0 means
/// the default `0600` (only this user). The data area starts zeroed.
///
/// Errors: `CULVERT_E_ALREADY_EXISTS`, `CULVERT_E_INVALID_NAME`,
/// `CULVERT_E_INVALID_ARGUMENT` (size 0 or too large), `CULVERT_E_NO_SPACE`,
/// `CULVERT_E_PERMISSION_DENIED`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_create(
    name: *const c_char,
    size: u64,
    mode: u32,
    out: *mut *mut CulvertSection,
) -> CulvertStatus {
    guard("culvert_section_create", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        let section = Section::create(name, size, &options(mode)?)?;
        publish(section, out)
    })
}

/// Opens the named section `name` and stores its handle in `*out`. Waits up to 5 s for
/// a section still being created by a culvert process.
///
/// Errors: `CULVERT_E_NOT_FOUND`, `CULVERT_E_PERMISSION_DENIED` (mode, foreign owner),
/// `CULVERT_E_CORRUPTED`, `CULVERT_E_STALE`, `CULVERT_E_POISONED`, `CULVERT_E_TIMEOUT`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_open(
    name: *const c_char,
    out: *mut *mut CulvertSection,
) -> CulvertStatus {
    guard("culvert_section_open", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        let section = Section::open(name, &SectionOptions::default())?;
        // SAFETY: checked non-null above; the caller guarantees it is writable.
        unsafe { put(out, into_handle(CulvertSection { section })) };
        Ok(())
    })
}

/// Creates an anonymous section (a sealed memfd, no name) with at least `size` data
/// bytes and stores its handle in `*out`. Hand it to a child process with
/// `culvert_section_fd` (clear `FD_CLOEXEC` on a `dup` of it in the child, or `dup2`
/// it) and `culvert_section_from_fd` there.
///
/// # Safety
/// `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_anonymous(
    size: u64,
    out: *mut *mut CulvertSection,
) -> CulvertStatus {
    guard("culvert_section_anonymous", || {
        need_out(out, "out")?;
        publish(Section::anonymous(size)?, out)
    })
}

/// Adopts a section's file descriptor (e.g. an anonymous section inherited from a
/// parent) and stores a new handle in `*out`. The descriptor is duplicated: the caller
/// still owns (and should close) `fd`.
///
/// Errors: `CULVERT_E_INVALID_ARGUMENT` (negative `fd`), `CULVERT_E_IO` (not a
/// descriptor), `CULVERT_E_CORRUPTED` (not a culvert section).
///
/// # Safety
/// `fd` is an open file descriptor (or negative); `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_from_fd(
    fd: c_int,
    out: *mut *mut CulvertSection,
) -> CulvertStatus {
    guard("culvert_section_from_fd", || {
        need_out(out, "out")?;
        if fd < 0 {
            return Err(Failure::invalid(format!("fd {fd} is negative")));
        }
        // SAFETY: the caller guarantees `fd` is open for the duration of the call; we
        // only duplicate it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let owned = borrowed.try_clone_to_owned()?;
        let section = Section::from_fd(owned, "inherited")?;
        // SAFETY: checked non-null above; the caller guarantees it is writable.
        unsafe { put(out, into_handle(CulvertSection { section })) };
        Ok(())
    })
}

/// Stores the data area of `section` in `*out`: a pointer valid until the handle is
/// closed, and its length.
///
/// # Safety
/// `section` is NULL or an open section handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_data(
    section: *const CulvertSection,
    out: *mut CulvertSectionData,
) -> CulvertStatus {
    guard("culvert_section_data", || {
        need_out(out, "out")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(section, "section") }?;
        let data = data_of(&s.section)?;
        // SAFETY: checked non-null above; the caller guarantees it is writable.
        unsafe { put(out, data) };
        Ok(())
    })
}

/// Stores the section's file descriptor in `*fd` (still owned by the handle: do not
/// close it; it has `FD_CLOEXEC` set). For passing an anonymous section to a child.
///
/// # Safety
/// `section` is NULL or an open section handle; `fd` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_fd(
    section: *const CulvertSection,
    fd: *mut c_int,
) -> CulvertStatus {
    guard("culvert_section_fd", || {
        need_out(fd, "fd")?;
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(section, "section") }?;
        // SAFETY: checked non-null above; the caller guarantees it is writable.
        unsafe { put(fd, s.section.as_fd().as_raw_fd()) };
        Ok(())
    })
}

/// Whether this handle created the section (1) or opened it (0), in `*is_creator`.
///
/// # Safety
/// `section` is NULL or an open section handle; `is_creator` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_is_creator(
    section: *const CulvertSection,
    is_creator: *mut bool,
) -> CulvertStatus {
    guard("culvert_section_is_creator", || {
        // SAFETY: the caller passes NULL or an open handle.
        let s = unsafe { handle(section, "section") }?;
        // SAFETY: the caller passes NULL or a writable pointer.
        unsafe { put_opt(is_creator, s.section.is_creator()) };
        Ok(())
    })
}

/// Unmaps the section and frees the handle. NULL is a no-op. Other processes keep
/// their mappings; the name stays until `culvert_section_unlink`.
///
/// # Safety
/// `section` is NULL or an open section handle, not used again afterwards (nor by
/// another thread meanwhile); pointers from `culvert_section_data` become invalid.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_close(section: *mut CulvertSection) -> CulvertStatus {
    guard("culvert_section_close", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(section) });
        Ok(())
    })
}

/// Removes the named section from the namespace: processes that have it mapped keep
/// it, new opens fail with `CULVERT_E_NOT_FOUND`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn culvert_section_unlink(name: *const c_char) -> CulvertStatus {
    guard("culvert_section_unlink", || {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { name_arg(name, "name") }?;
        Section::unlink(name, &SectionOptions::default())?;
        Ok(())
    })
}
