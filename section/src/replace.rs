//! [`Section::create_replacing_stale`]: create a named section, replacing one that its
//! owner left behind — without ever removing a section someone else just created.
//!
//! ## Contract
//!
//! 1. Try the exclusive [`Section::create`]. If the name is free, that is the answer.
//! 2. The name is taken: open what holds it, without waiting (`open_timeout` zero),
//!    requiring the kind `opts.expect_kind`, else `opts.kind`. Then:
//!    * a valid, ready section is offered to the caller's `is_stale`; `false` →
//!      `AlreadyExists`, `true` → replace it;
//!    * a section whose creator died while initializing (`Stale`) or that is
//!      `Poisoned` is a culvert section that can never become usable: it is replaced
//!      without asking `is_stale` (there is no valid section to show it);
//!    * a section still initializing by a live creator (`Timeout` at zero wait) or of
//!      another kind (`WrongKind`) → `AlreadyExists`;
//!    * anything else that is not a valid culvert section — bad bytes (`Corrupted`), a
//!      foreign owner or a symlink (`PermissionDenied`), an I/O error — is returned as
//!      that error and **the file is left alone**: sections are published complete
//!      (temporary file, then a hard link), so an invalid file at a section name is
//!      never "a create that did not finish" and is not ours to delete;
//!    * vanished meanwhile (`NotFound`) → try the create again.
//! 3. Replacing removes the name only if it still refers to the very file that was
//!    judged (device and inode of the opened descriptor, which stays open meanwhile so
//!    the inode number cannot be reused by a fresh file), then creates again. At most
//!    [`REPLACE_ATTEMPTS`] rounds; then `AlreadyExists`.
//!
//! ## Why two concurrent replacers cannot remove each other's fresh section
//!
//! Replacers serialize on an exclusive `flock` of the namespace directory (taken only
//! once a replacement is needed, held until the call returns, released by the kernel
//! if the process dies; waited for with a poll bounded by `opts.open_timeout`). Under
//! the lock, the path is `lstat`ed and compared with the judged file: if another
//! replacer already put a fresh section there, the inode differs and nothing is
//! removed; the fresh section is judged anew (and, being live, kept). While the judged
//! file is at the name, nobody can create there (create is an exclusive link), so only
//! a process that unlinks *without* the lock (`Section::unlink`, `culvert gc`) can
//! change the name between that check and the removal. To shrink even that window the
//! removal is not `unlink(name)` but `rename(name → private temporary name)` with
//! `RENAME_NOREPLACE`, then a check that the moved file is the judged one: if so the
//! temporary name is unlinked; if not (an unlocked unlink plus a fresh create
//! happened in between), the file is renamed back with `RENAME_NOREPLACE`. Only if a
//! third process created the name again in the instant between those two renames is
//! the moved section lost (its temporary name is then removed so nothing leaks); that
//! needs two unlocked parties racing inside a few syscalls.
//!
//! `is_stale` may be called more than once (once per section judged) and is called
//! without the lock held for sections found on the first try.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, FlockOperation, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use crate::error::{map_errno, ErrCtx, Error, Result};
use crate::options::{file_path, validate_name, SectionOptions};
use crate::section::{temp_name, Section};

/// Most create → judge → replace rounds of one [`Section::create_replacing_stale`].
pub const REPLACE_ATTEMPTS: u32 = 8;

/// Device and inode: which file a name or descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of_fd(fd: impl AsFd) -> Result<FileId> {
        let st = rfs::fstat(fd).map_err(std::io::Error::from)?;
        Ok(FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// The file `path` names (not following a symlink); `None` if there is none.
    fn of_path(path: &Path) -> Result<Option<FileId>> {
        match rfs::lstat(path) {
            Ok(st) => Ok(Some(FileId {
                dev: st.st_dev,
                ino: st.st_ino,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::Io(e.into())),
        }
    }
}

/// What holds a taken name.
enum Found {
    /// A file to replace, and a descriptor of it that keeps its inode (and so its
    /// inode number, which some filesystems reuse at once) alive until the removal
    /// is done.
    Replace(FileId, OwnedFd),
    /// Not replaceable: the create fails with `AlreadyExists`.
    Keep,
    /// The name went away: create again.
    Gone,
}

/// An exclusive `flock` on the namespace directory, released on drop.
struct DirLock {
    _dir: OwnedFd,
}

impl DirLock {
    /// Takes the lock, polling until `patience` has passed.
    fn acquire(root: &Path, name: &str, patience: Duration) -> Result<DirLock> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rfs::open(root, flags, Mode::empty()).map_err(|e| {
            Error::Io(std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!(
                    "section '{name}': cannot open the namespace directory {} to lock it: {e}",
                    root.display()
                ),
            ))
        })?;
        let end = Instant::now() + patience;
        loop {
            match rfs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock { _dir: dir }),
                Err(Errno::WOULDBLOCK | Errno::INTR) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "section '{name}': another process held the lock of {} for more than {patience:?} while replacing a stale section",
                            root.display()
                        ),
                    )))
                }
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
    }
}

impl Section {
    /// Creates the named section like [`Section::create`]; if the name is taken by a
    /// section its owner left behind, removes that one and creates anew.
    ///
    /// `is_stale` judges a valid, ready section of the expected kind found at the name
    /// (e.g. "its server identity word names a dead process"); sections that can never
    /// become usable (`Stale`, `Poisoned`) are replaced without asking. A section is
    /// only removed while the name still refers to the file judged, so concurrent
    /// callers never remove each other's fresh section: exactly one of them creates,
    /// the others get `AlreadyExists`. Files that are not valid sections are never
    /// removed: their `Corrupted` / `PermissionDenied` error is returned. The full
    /// contract is in the [module documentation](crate::replace).
    ///
    /// Errors: those of [`Section::create`]; `AlreadyExists` when a live or
    /// non-stale section (or one of another kind) holds the name, or after
    /// [`REPLACE_ATTEMPTS`] rounds of losing races; `Corrupted`, `PermissionDenied` or
    /// `Io` when something that is not a valid section holds it.
    pub fn create_replacing_stale(
        name: &str,
        size: u64,
        opts: &SectionOptions,
        mut is_stale: impl FnMut(&Section) -> bool,
    ) -> Result<Section> {
        validate_name(name)?;
        let root = opts.namespace_root()?;
        let path = file_path(&root, name);
        let mut judge_opts = opts.clone();
        judge_opts.expect_kind = opts.expect_kind.or(Some(opts.kind));
        judge_opts.open_timeout = Duration::ZERO;
        judge_opts.populate = false;
        let already = || Error::AlreadyExists {
            name: name.to_string(),
            root: root.clone(),
        };

        let mut lock: Option<DirLock> = None;
        for _ in 0..REPLACE_ATTEMPTS {
            match Section::create(name, size, opts) {
                Ok(s) => return Ok(s),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let (judged, _keep_inode) = match judge(name, &path, &root, &judge_opts, &mut is_stale)?
            {
                Found::Keep => return Err(already()),
                Found::Gone => continue,
                Found::Replace(id, keep) => (id, keep),
            };
            if lock.is_none() {
                lock = Some(DirLock::acquire(&root, name, opts.open_timeout)?);
            }
            remove_if_same(name, &path, &root, judged)?;
        }
        // The last round may have freed the name.
        match Section::create(name, size, opts) {
            Err(Error::AlreadyExists { .. }) => Err(already()),
            other => other,
        }
    }
}

/// Opens what holds `path` (without waiting) and decides what to do with it.
fn judge(
    name: &str,
    path: &Path,
    root: &Path,
    opts: &SectionOptions,
    is_stale: &mut impl FnMut(&Section) -> bool,
) -> Result<Found> {
    let cx = ErrCtx {
        name,
        root,
        size: 0,
        op: "open",
    };
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rfs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Found::Gone),
        Err(e) => return Err(map_errno(e, &cx)),
    };
    let id = FileId::of_fd(&fd)?;
    let keep = fd.try_clone()?;
    match Section::attach(fd, name, Some(path.to_path_buf()), opts, true) {
        Ok(existing) => Ok(if is_stale(&existing) {
            Found::Replace(id, keep)
        } else {
            Found::Keep
        }),
        Err(Error::Stale { .. } | Error::Poisoned { .. }) => Ok(Found::Replace(id, keep)),
        Err(Error::Timeout { .. } | Error::WrongKind { .. }) => Ok(Found::Keep),
        Err(e) => Err(e),
    }
}

/// Removes the name `path` if it still refers to the file `judged` (see the module
/// documentation for the protocol). Called with the directory lock held.
fn remove_if_same(name: &str, path: &Path, root: &Path, judged: FileId) -> Result<()> {
    if FileId::of_path(path)? != Some(judged) {
        // Gone, or already replaced by someone else: nothing of ours to remove.
        return Ok(());
    }
    let cx = ErrCtx {
        name,
        root,
        size: 0,
        op: "replace",
    };
    let mut attempt = 0;
    let tmp = loop {
        let tmp = root.join(temp_name(attempt));
        match rfs::renameat_with(CWD, path, CWD, &tmp, RenameFlags::NOREPLACE) {
            Ok(()) => break tmp,
            Err(Errno::EXIST) if attempt < 16 => attempt += 1,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(map_errno(e, &cx)),
        }
    };
    if matches!(FileId::of_path(&tmp), Ok(Some(id)) if id == judged) {
        rfs::unlinkat(CWD, &tmp, AtFlags::empty()).map_err(|e| map_errno(e, &cx))?;
        return Ok(());
    }
    // Someone unlinked the judged file without the lock and created a fresh section in
    // the moment between the check and the rename: put theirs back.
    match rfs::renameat_with(CWD, &tmp, CWD, path, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(_) => {
            // A third party created the name meanwhile; the moved section can no longer
            // be reached by name. Do not leak its file.
            let _ = rfs::unlinkat(CWD, &tmp, AtFlags::empty());
            Ok(())
        }
    }
}
