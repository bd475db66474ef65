//! The file side of a section: reading and writing its header bytes at offsets,
//! sizing the file (`ftruncate`, then `fallocate`, so a full filesystem is `NoSpace`
//! now rather than a `SIGBUS` later), mapping it, checking an opened file (regular,
//! its kind, its header), and waiting until its creator marks it ready.

use super::*;

/// Reads until `buf` is full or end of file; returns the bytes read.
pub(super) fn pread_full(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// Writes all of `buf` at `offset`.
pub(super) fn pwrite_all(
    fd: BorrowedFd<'_>,
    mut buf: &[u8],
    mut offset: u64,
) -> std::result::Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::pwrite(fd, buf, offset) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sizes a fresh file to `total` bytes and reserves its memory.
pub(super) fn size_file(fd: BorrowedFd<'_>, total: u64, cx: &ErrCtx<'_>) -> Result<()> {
    rfs::ftruncate(fd, total).map_err(|e| map_errno(e, cx))?;
    match rfs::fallocate(fd, FallocateFlags::empty(), 0, total) {
        Ok(()) => Ok(()),
        // Filesystems without fallocate: the file stays sparse.
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Ok(()),
        Err(e) => Err(map_errno(e, cx)),
    }
}

/// Maps `len` bytes of `fd`, shared, read-write.
pub(super) fn map(fd: BorrowedFd<'_>, len: u64, populate: bool, name: &str) -> Result<MmapRaw> {
    let len =
        usize::try_from(len).map_err(|_| Error::corrupted(name, "size does not fit in memory"))?;
    let mut o = MmapOptions::new();
    o.len(len);
    if populate {
        o.populate();
    }
    o.map_raw(&fd).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("section '{name}': mapping {len} bytes failed: {e}"),
        ))
    })
}

/// Checks `opts.expect_kind`.
pub(super) fn check_kind(name: &str, opts: &SectionOptions, found: SectionKind) -> Result<()> {
    match opts.expect_kind {
        Some(expected) if expected != found => Err(Error::WrongKind {
            name: name.to_string(),
            expected,
            found,
        }),
        _ => Ok(()),
    }
}

/// `fstat`: the size of a regular file, else `Corrupted`.
pub(super) fn regular_file_size(fd: BorrowedFd<'_>, name: &str) -> Result<u64> {
    let st = rfs::fstat(fd).map_err(std::io::Error::from)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::corrupted(name, "not a regular file"));
    }
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// Reads (copies) the header with `pread`; `Corrupted` if the file is too short.
pub(super) fn read_header(fd: BorrowedFd<'_>, name: &str, file_size: u64) -> Result<SectionHeader> {
    let mut bytes = [0u8; HEADER_SIZE];
    let n = pread_full(fd, &mut bytes, 0)?;
    if n < HEADER_SIZE {
        return Err(Error::corrupted(
            name,
            format!("file has {file_size} bytes, less than a {HEADER_SIZE}-byte section header"),
        ));
    }
    SectionHeader::read(&bytes).ok_or_else(|| Error::corrupted(name, "header unreadable"))
}

/// Waits until the section in `map` is ready.
pub(super) fn wait_ready(
    map: &MmapRaw,
    name: &str,
    creator: ProcessIdentity,
    timeout: Duration,
) -> Result<()> {
    let word = state_word(map);
    let started = Instant::now();
    let deadline = Deadline::after(timeout);
    let mut next_liveness_check = started;
    loop {
        match word.load(Ordering::Acquire) {
            InitState::READY => return Ok(()),
            InitState::POISONED => {
                return Err(Error::Poisoned {
                    name: name.to_string(),
                })
            }
            InitState::INITIALIZING => {}
            other => {
                return Err(Error::corrupted(
                    name,
                    format!("unknown init state {other}"),
                ))
            }
        }
        let now = Instant::now();
        if now >= next_liveness_check {
            if creator.liveness() == Liveness::Dead {
                // Re-check: it may have become ready just before its creator exited.
                if word.load(Ordering::Acquire) == InitState::INITIALIZING {
                    return Err(Error::Stale {
                        name: name.to_string(),
                        creator,
                    });
                }
                continue;
            }
            next_liveness_check = now + LIVENESS_RECHECK_INTERVAL;
        }
        if deadline.has_passed() {
            return Err(Error::Timeout {
                name: name.to_string(),
                waited: started.elapsed(),
                creator,
            });
        }
        // Sleep until woken by mark_ready/poison, the next liveness check, or the deadline.
        let nap = Deadline::at(next_liveness_check).min(deadline);
        let _ = futex::wait(word, InitState::INITIALIZING, nap);
    }
}
