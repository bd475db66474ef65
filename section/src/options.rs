//! [`SectionOptions`], name validation, and where named sections live.
//!
//! The namespace directory is, in order: [`SectionOptions::root`], the environment
//! variable `CULVERT_ROOT` (if set), `/dev/shm`. A section named `x` is the file
//! `culvert.x` there.
//!
//! An empty path — `root("")`, or `CULVERT_ROOT` set to the empty string — is an
//! [`Error::InvalidRoot`], never "the current directory" nor a silent fall-back to
//! `/dev/shm`: an empty value is almost always a variable that was meant to be set,
//! and guessing would put sections where the other side will not look (or put a
//! test's sections into the shared system namespace). A relative path is used as given
//! (relative to the current directory).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::layout::{name_byte_ok, SectionKind};

/// Environment variable that overrides the default namespace directory.
pub const ROOT_ENV: &str = "CULVERT_ROOT";
/// The default namespace directory.
pub const DEFAULT_ROOT: &str = "/dev/shm";
/// Prefix of section file names.
pub const FILE_PREFIX: &str = "culvert.";
/// Longest section name.
pub const MAX_NAME_LEN: usize = 200;
/// Default of [`SectionOptions::open_timeout`].
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// How sections are created and opened. Build with `SectionOptions::default()` and the
/// builder methods (or set the public fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionOptions {
    /// Namespace directory; `None`: `$CULVERT_ROOT`, else `/dev/shm`. Must not be
    /// empty (operations then fail with [`Error::InvalidRoot`]).
    pub root: Option<PathBuf>,
    /// File mode of created sections (exactly, the umask is not applied). Default
    /// `0o600`: only our user. Widen (e.g. `0o666`) to share with other users.
    pub mode: u32,
    /// How long `open` waits for the creator to mark the section ready. Default 5 s.
    pub open_timeout: Duration,
    /// Kind written by `create`. Default [`SectionKind::Raw`].
    pub kind: SectionKind,
    /// If set, `open` fails with `Error::WrongKind` on a section of another kind.
    pub expect_kind: Option<SectionKind>,
    /// Pre-fault the pages when mapping (`MAP_POPULATE`), keeping page faults out of
    /// the first messages. Default `true`.
    pub populate: bool,
    /// Open sections owned by any user. Default `false`: `open` accepts only files owned
    /// by our effective uid or by root, so another user cannot plant a section we trust.
    pub allow_any_owner: bool,
}

impl Default for SectionOptions {
    fn default() -> Self {
        Self {
            root: None,
            mode: 0o600,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            kind: SectionKind::Raw,
            expect_kind: None,
            populate: true,
            allow_any_owner: false,
        }
    }
}

impl SectionOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::root`]. An empty path makes every named operation fail with
    /// [`Error::InvalidRoot`].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Sets [`Self::mode`].
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`Self::open_timeout`].
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// Sets [`Self::kind`].
    pub fn kind(mut self, kind: SectionKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets [`Self::expect_kind`].
    pub fn expect_kind(mut self, kind: SectionKind) -> Self {
        self.expect_kind = Some(kind);
        self
    }

    /// Sets [`Self::populate`].
    pub fn populate(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }

    /// Sets [`Self::allow_any_owner`].
    pub fn allow_any_owner(mut self, allow: bool) -> Self {
        self.allow_any_owner = allow;
        self
    }

    /// The namespace directory these options resolve to: [`Self::root`], else
    /// `$CULVERT_ROOT`, else `/dev/shm`. `InvalidRoot` if the chosen one is empty.
    ///
    /// # Errors
    /// `InvalidRoot` for an empty root.
    pub fn namespace_root(&self) -> Result<PathBuf> {
        if let Some(root) = &self.root {
            return non_empty_root(root.clone(), "SectionOptions::root");
        }
        match std::env::var_os(ROOT_ENV) {
            Some(r) => non_empty_root(PathBuf::from(r), "the environment variable CULVERT_ROOT"),
            None => Ok(PathBuf::from(DEFAULT_ROOT)),
        }
    }

    /// The file a section called `name` lives in (the name and root are validated).
    ///
    /// # Errors
    /// `InvalidName`; `InvalidRoot`.
    pub fn path_of(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(file_path(&self.namespace_root()?, name))
    }
}

/// `root`, unless it is empty.
fn non_empty_root(root: PathBuf, origin: &str) -> Result<PathBuf> {
    if root.as_os_str().is_empty() {
        return Err(Error::InvalidRoot {
            root,
            reason: format!("{origin} is empty; give a directory (or leave it unset for /dev/shm)"),
        });
    }
    Ok(root)
}

/// `root/culvert.<name>`.
pub(crate) fn file_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{FILE_PREFIX}{name}"))
}

/// Checks a section name: `[A-Za-z0-9._-]{1,200}`, and not `.` or `..`.
///
/// # Errors
/// `InvalidName`.
pub fn validate_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.iter().all(|&c| name_byte_ok(c))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Names of the sections (files `culvert.<name>` with a valid name) in the namespace
/// directory of `opts`, sorted. A missing directory holds no sections.
///
/// # Errors
/// `InvalidRoot`; `Io` if the directory exists but cannot be read.
pub fn list(opts: &SectionOptions) -> Result<Vec<String>> {
    let root = opts.namespace_root()?;
    let dir = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(e)),
    };
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if let Some(name) = file.strip_prefix(FILE_PREFIX) {
            if validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "A-b_c.d", "..x", &"x".repeat(200)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "a\0", &"x".repeat(201)] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn explicit_root_wins() {
        let o = SectionOptions::default().root("/x");
        assert_eq!(o.path_of("n").unwrap(), PathBuf::from("/x/culvert.n"));
    }
}
