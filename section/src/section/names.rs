//! Operations on a section's *name* in the namespace directory: removing it (by
//! name, or only while it still names this section's file), reading a named
//! section's header without mapping it, opening a named section's file, and listing
//! the names.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, CWD};

use super::{read_header, regular_file_size, Section};
use crate::error::{map_errno, ErrCtx, Error, Result};
use crate::layout::HeaderInfo;
use crate::options::{file_path, validate_name, SectionOptions};

impl Section {
    /// Removes the named section from the namespace. Processes that have it mapped keep
    /// their mapping; new opens fail with `NotFound`.
    pub fn unlink(name: &str, opts: &SectionOptions) -> Result<()> {
        validate_name(name)?;
        let root = opts.namespace_root()?;
        let cx = ErrCtx {
            name,
            root: &root,
            size: 0,
            op: "unlink",
        };
        rfs::unlinkat(CWD, file_path(&root, name), AtFlags::empty()).map_err(|e| map_errno(e, &cx))
    }

    /// Opens the file of section `name` in the namespace of `opts` with `access`
    /// (never following a symlink, never blocking), validating the name and root.
    pub(crate) fn open_file(
        name: &str,
        opts: &SectionOptions,
        access: OFlags,
    ) -> Result<(OwnedFd, PathBuf)> {
        validate_name(name)?;
        let root = opts.namespace_root()?;
        let path = file_path(&root, name);
        let cx = ErrCtx {
            name,
            root: &root,
            size: 0,
            op: "open",
        };
        let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rfs::open(&path, flags, Mode::empty()).map_err(|e| map_errno(e, &cx))?;
        Ok((fd, path))
    }

    /// Reads the header of the named section without mapping it or waiting: for tools
    /// (`culvert ls`, `inspect`, `gc`). Safe on any file: a bad one gives `Corrupted`.
    /// The object table of a section still initializing may be incomplete.
    pub fn inspect(name: &str, opts: &SectionOptions) -> Result<HeaderInfo> {
        let (fd, _) = Section::open_file(name, opts, OFlags::RDONLY)?;
        let file_size = regular_file_size(fd.as_fd(), name)?;
        let header = read_header(fd.as_fd(), name, file_size)?;
        header
            .validate(file_size)
            .map_err(|w| Error::corrupted(name, w))
    }

    /// Names of the sections in the namespace of `opts` (see [`crate::list`]).
    ///
    /// # Errors
    /// As [`crate::list`].
    pub fn list(opts: &SectionOptions) -> Result<Vec<String>> {
        crate::options::list(opts)
    }

    /// Whether this section's name still refers to its file (same device and inode):
    /// `false` for an anonymous section, or once the name was removed or now names
    /// another file.
    pub fn is_linked(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match (rfs::lstat(path), rfs::fstat(&self.fd)) {
            (Ok(by_name), Ok(ours)) => {
                by_name.st_dev == ours.st_dev && by_name.st_ino == ours.st_ino
            }
            _ => false,
        }
    }

    /// Removes this section's name if it still refers to this section's file; `false`
    /// if it did not (an anonymous section, a name already removed, or one that now
    /// names another file, which is left alone). Only a process removing names
    /// without this check can slip a new file in between the check and the removal;
    /// [`create_replacing_stale`](Self::create_replacing_stale) closes that window for
    /// replacements.
    pub fn unlink_if_linked(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        self.is_linked() && rfs::unlinkat(CWD, path, AtFlags::empty()).is_ok()
    }
}
