//! What the fuzz bodies of this crate share: the input read as a script ([`Input`]),
//! the bound every call of a hostile-peer run must meet ([`timed`], [`CALL_LIMIT`]),
//! and a fresh namespace directory per input ([`Root`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a call may take in a fuzz run: none waits over a few hundred µs, so a call
/// this long is a hang.
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(1);

/// The fuzz input, read from the front; `None` once it runs out.
pub(crate) struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    /// The next `N` bytes.
    pub fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        self.bytes::<1>().map(|[b]| b)
    }

    /// The next 2 bytes, little-endian.
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes().map(u16::from_le_bytes)
    }

    /// The next 4 bytes, little-endian.
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes().map(u32::from_le_bytes)
    }

    /// The next 8 bytes, little-endian.
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes().map(u64::from_le_bytes)
    }
}

/// Runs one call and panics if it took [`CALL_LIMIT`] or longer.
pub(crate) fn timed<T>(what: &str, call: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = call();
    let took = start.elapsed();
    assert!(took < CALL_LIMIT, "{what} took {took:?}");
    out
}

/// A fresh namespace directory for input `n` of this process (under `$TMPDIR`, else
/// `/dev/shm`); removed, with whatever a scribble kept alive in it, on drop.
pub(crate) struct Root(pub PathBuf);

impl Root {
    /// The directory of input `n` of fuzz body `body`.
    pub fn new(body: &str, n: u64) -> Root {
        let pid = std::process::id();
        // tmpfs unless `$TMPDIR` says otherwise: section pages never go to a disk.
        let base = match std::env::var_os("TMPDIR") {
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            _ => std::env::temp_dir(),
        };
        let dir = base.join(format!("culvert-fuzz-{body}-{pid}-{n}"));
        std::fs::create_dir_all(&dir).expect("fuzz namespace directory");
        Root(dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
