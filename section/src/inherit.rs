//! Handing a section (typically an anonymous one) to a child process.
//!
//! Section descriptors are opened with `FD_CLOEXEC`, so an ordinary spawn does not leak
//! them. To pass one to a child:
//!
//! * the parent calls [`Section::pass_to_child`] on the child's `Command`. It duplicates
//!   the descriptor (the duplicate is owned by the `Command`'s `pre_exec` hook, so it
//!   lives exactly as long as the `Command`), clears `FD_CLOEXEC` on the duplicate *only
//!   in the child* (in `pre_exec`, between fork and exec: one `fcntl`, async-signal-safe),
//!   and puts its number in an environment variable of the child, e.g.
//!   [`SECTION_FD_ENV`] (`CULVERT_SECTION_FD`);
//! * the child calls [`Section::from_inherited_env`] with the same variable name, which
//!   adopts the descriptor (at most once per process), sets `FD_CLOEXEC` on it again so
//!   it goes no further, and validates and maps it like [`Section::open`].
//!
//! Other processes spawned from the parent at the same time never see the descriptor,
//! since it only loses `FD_CLOEXEC` inside the one child.
//!
//! ```no_run
//! use std::process::Command;
//! use culvert_section::{Section, SECTION_FD_ENV};
//!
//! # fn main() -> Result<(), culvert_section::Error> {
//! let mut section = Section::anonymous(4096)?;
//! section.add_object("data", 0, 64, 8)?;
//! section.mark_ready()?;
//! let mut child = Command::new("my-child");
//! section.pass_to_child(&mut child, SECTION_FD_ENV)?;
//! child.spawn()?;
//! // In the child: let section = Section::from_inherited_env(SECTION_FD_ENV)?;
//! # Ok(())
//! # }
//! ```

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use rustix::io::{fcntl_dupfd_cloexec, fcntl_getfd, fcntl_setfd, FdFlags};

use crate::error::{Error, Result};
use crate::options::SectionOptions;
use crate::section::Section;

/// The conventional environment variable for an inherited section descriptor.
pub const SECTION_FD_ENV: &str = "CULVERT_SECTION_FD";

/// Descriptors already adopted by [`Section::from_inherited_env`] in this process: each
/// may be adopted once, so two `OwnedFd`s never own the same number.
static ADOPTED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn invalid_input(msg: String) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

impl Section {
    /// Arranges for `child` to inherit this section's descriptor, its number in the
    /// environment variable `var` (see the [module docs](crate::inherit)). Call before
    /// `spawn`; the `Command` keeps a duplicate of the descriptor until it is dropped.
    ///
    /// # Errors
    /// `Io` if the descriptor cannot be duplicated.
    pub fn pass_to_child(&self, child: &mut Command, var: &str) -> Result<()> {
        let dup: OwnedFd = fcntl_dupfd_cloexec(self.as_fd(), 3).map_err(std::io::Error::from)?;
        child.env(var, dup.as_raw_fd().to_string());
        let hook = move || -> std::io::Result<()> {
            // Only in the child, between fork and exec: let this one descriptor through.
            fcntl_setfd(&dup, FdFlags::empty()).map_err(std::io::Error::from)
        };
        // SAFETY: the hook runs in the forked child before exec. It makes a single
        // `fcntl(F_SETFD)` system call, which is async-signal-safe, allocates nothing,
        // takes no lock, and touches no state shared with other threads.
        unsafe { child.pre_exec(hook) };
        Ok(())
    }

    /// In a child: adopts the section descriptor whose number the parent put in the
    /// environment variable `var` (see [`Section::pass_to_child`]), and validates and
    /// maps it with default options. Fails if the variable is missing or not a number,
    /// names a closed descriptor or one of stdin/stdout/stderr, or was adopted before.
    pub fn from_inherited_env(var: &str) -> Result<Section> {
        Self::from_inherited_env_with(var, &SectionOptions::default())
    }

    /// [`Section::from_inherited_env`] with the timeout, kind and populate settings of
    /// `opts`.
    pub fn from_inherited_env_with(var: &str, opts: &SectionOptions) -> Result<Section> {
        let value = std::env::var(var)
            .map_err(|_| invalid_input(format!("environment variable {var} is not set")))?;
        let fd: RawFd = value
            .trim()
            .parse()
            .map_err(|_| invalid_input(format!("{var}={value:?} is not a descriptor number")))?;
        if fd < 3 {
            return Err(invalid_input(format!(
                "{var}={fd} names a standard stream, not a section"
            )));
        }
        let mut adopted = ADOPTED.lock().unwrap_or_else(|p| p.into_inner());
        if adopted.contains(&fd) {
            return Err(invalid_input(format!(
                "descriptor {fd} from {var} was already adopted"
            )));
        }
        // SAFETY: the number is >= 3 and was never adopted before in this process; the
        // check below makes sure it is open. Borrowing it for one call is sound.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fcntl_getfd(borrowed)
            .map_err(|e| invalid_input(format!("{var}={fd} is not an open descriptor: {e}")))?;
        fcntl_setfd(borrowed, FdFlags::CLOEXEC).map_err(std::io::Error::from)?;
        adopted.push(fd);
        drop(adopted);
        // SAFETY: the descriptor is open (checked above), and it was handed to this
        // process by the parent for exactly this purpose; `ADOPTED` makes sure no other
        // `OwnedFd` is created for it by this function.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Section::from_fd_with(owned, &format!("inherited fd {fd} from {var}"), opts)
    }
}
