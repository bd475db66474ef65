//! Temporary directories for tests: a namespace root (`CULVERT_ROOT`, or the `root` of
//! an options struct) that no other test shares, or a place for a child's results.
//! Each is fresh and removed, with whatever is left in it, when dropped.

use std::ops::Deref;
use std::path::Path;

/// A fresh directory, removed on drop; derefs to its path.
pub struct TempRoot {
    dir: tempfile::TempDir,
}

impl TempRoot {
    /// A new directory under the system's temporary directory, named after `tag`.
    pub fn new(tag: &str) -> TempRoot {
        TempRoot::new_in(&std::env::temp_dir(), tag)
    }

    /// A new directory under `/dev/shm` (a tmpfs, where sections usually live) when it
    /// exists, else as [`TempRoot::new`].
    pub fn in_shm(tag: &str) -> TempRoot {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            TempRoot::new_in(shm, tag)
        } else {
            TempRoot::new(tag)
        }
    }

    fn new_in(base: &Path, tag: &str) -> TempRoot {
        let dir = tempfile::Builder::new()
            .prefix(&format!("culvert-test-{tag}-"))
            .tempdir_in(base)
            .unwrap_or_else(|e| panic!("a temporary directory in {}: {e}", base.display()));
        TempRoot { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Deref for TempRoot {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for TempRoot {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}
