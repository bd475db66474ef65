//! [`ProcessIdentity`]: who a process is, in a way PID reuse cannot fool.
//!
//! A pid alone lies after the process dies and the number is handed out again, so an
//! identity is the pid plus the process start time (field 22 of `/proc/<pid>/stat`, in
//! clock ticks since boot). A process is alive when `/proc/<pid>/stat` exists, names
//! the same start time, and is not a zombie. Identities are `#[repr(C)]` plain data, so
//! they can be stored in shared memory; one read back from there is untrusted, and the
//! worst a forged one does is being reported alive or dead wrongly.

use std::io;
use std::time::Duration;

/// How long a sleeper waiting on a peer goes, at most, without checking that the peer
/// still lives. A dead peer is noticed within this interval.
pub const LIVENESS_RECHECK_INTERVAL: Duration = Duration::from_millis(50);

/// A process identity that survives PID reuse: pid + start time.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessIdentity {
    /// The process id. 0 means "nobody" (never alive).
    pub pid: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Start time in clock ticks after boot, from `/proc/<pid>/stat` field 22.
    pub start_time: u64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ProcessIdentity>() == 16);

/// Whether a process still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The same process (same pid and start time) exists and is not a zombie.
    Alive,
    /// It exited, was killed (possibly not yet reaped), or its pid now names another process.
    Dead,
}

/// What `/proc/<pid>/stat` says of a process.
struct StatFields {
    state: u8,
    start_time: u64,
}

/// Longest `/proc/<pid>/stat` read: the line is about 52 numbers and a `comm` of at
/// most 64 bytes, well under this.
const STAT_MAX: usize = 4096;

/// Reads `/proc/<pid>/stat` into stack buffers: a liveness check allocates nothing
/// (it runs on the hot paths of endpoints that poll).
fn read_stat(pid: u32) -> io::Result<StatFields> {
    use std::io::{Read, Write};
    use std::os::unix::ffi::OsStrExt;
    if pid == 0 {
        return Err(io::ErrorKind::NotFound.into());
    }
    let mut path = [0u8; 32];
    let mut w = &mut path[..];
    write!(w, "/proc/{pid}/stat")?;
    let path_len = 32 - w.len();
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&path[..path_len]));
    let mut file = std::fs::File::open(path)?;
    let mut text = [0u8; STAT_MAX];
    let mut len = 0;
    loop {
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(k) => len += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if len == STAT_MAX {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
    parse_stat(&text[..len]).ok_or_else(|| io::ErrorKind::InvalidData.into())
}

/// Parses `pid (comm) state ppid ... starttime ...`; `comm` may hold spaces, ')' and
/// bytes that are not UTF-8.
fn parse_stat(text: &[u8]) -> Option<StatFields> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut fields = text[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    // Field 3 is the state; field 22 the start time: 18 fields further on.
    let start_time = std::str::from_utf8(fields.nth(18)?).ok()?.parse().ok()?;
    Some(StatFields { state, start_time })
}

impl ProcessIdentity {
    /// The identity of the calling process.
    pub fn current() -> Self {
        let pid = std::process::id();
        match read_stat(pid) {
            Ok(stat) => Self::from_parts(pid, stat.start_time),
            // /proc is not mounted: fall back to the pid alone (start time 0 matches
            // what `of` reports in the same situation).
            Err(_) => Self::from_parts(pid, 0),
        }
    }

    /// The identity of the calling process, read once per process and cached; a forked
    /// child notices its new pid and reads its own. Prefer this to [`Self::current`]
    /// everywhere but in tests of the uncached path.
    pub fn me() -> Self {
        #[cfg(loom)]
        {
            Self::current()
        }
        #[cfg(not(loom))]
        {
            me_cache::get()
        }
    }

    /// The identity of the running process `pid`; `NotFound` if there is none.
    pub fn of(pid: u32) -> io::Result<Self> {
        let stat = read_stat(pid)?;
        Ok(Self::from_parts(pid, stat.start_time))
    }

    /// An identity from its parts (as stored in shared memory).
    pub const fn from_parts(pid: u32, start_time: u64) -> Self {
        Self {
            pid,
            reserved: 0,
            start_time,
        }
    }

    /// No process: never alive.
    pub const fn nobody() -> Self {
        Self::from_parts(0, 0)
    }

    /// Whether this names no process.
    pub const fn is_nobody(&self) -> bool {
        self.pid == 0
    }

    /// Checks whether this exact process still runs (one read of `/proc/<pid>/stat`).
    pub fn liveness(&self) -> Liveness {
        match read_stat(self.pid) {
            Ok(stat)
                if stat.start_time == self.start_time
                    && !matches!(stat.state, b'Z' | b'X' | b'x') =>
            {
                Liveness::Alive
            }
            Ok(_) => Liveness::Dead,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Liveness::Dead,
            // Unreadable for another reason (e.g. hidepid): do not declare a peer dead
            // on evidence we do not have.
            Err(_) => Liveness::Alive,
        }
    }

    /// `liveness() == Alive`.
    pub fn is_alive(&self) -> bool {
        self.liveness() == Liveness::Alive
    }

    /// Packs the identity in one `u64` word pair-free form: `pid` in the low 32 bits and
    /// the low 32 bits of the start time in the high ones, for slots that can hold only
    /// one atomic word. [`Self::from_packed`] undoes it; the truncated start time still
    /// tells a reused pid apart unless the new process started exactly 2^32 ticks later.
    pub const fn packed(&self) -> u64 {
        (self.pid as u64) | ((self.start_time & 0xffff_ffff) << 32)
    }

    /// Unpacks [`Self::packed`]; check it with [`Self::packed_liveness`].
    pub const fn from_packed(word: u64) -> Self {
        Self::from_parts(word as u32, word >> 32)
    }

    /// Liveness of a packed identity (compares the low 32 bits of the start time).
    pub fn packed_liveness(word: u64) -> Liveness {
        let id = Self::from_packed(word);
        match read_stat(id.pid) {
            Ok(stat)
                if stat.start_time & 0xffff_ffff == id.start_time
                    && !matches!(stat.state, b'Z' | b'X' | b'x') =>
            {
                Liveness::Alive
            }
            Ok(_) => Liveness::Dead,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Liveness::Dead,
            Err(_) => Liveness::Alive,
        }
    }
}

/// The cache behind [`ProcessIdentity::me`]: process-local statics (not shared memory),
/// lock-free so a fork while another thread reads it cannot leave the child stuck.
#[cfg(not(loom))]
#[allow(clippy::disallowed_types)]
mod me_cache {
    use super::ProcessIdentity;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// The pid the cached start time belongs to; 0 before the first read.
    static PID: AtomicU32 = AtomicU32::new(0);
    /// Start time of `PID`. Written before `PID` is published.
    static START: AtomicU64 = AtomicU64::new(0);

    pub(super) fn get() -> ProcessIdentity {
        let pid = std::process::id();
        if PID.load(Ordering::Acquire) == pid {
            return ProcessIdentity::from_parts(pid, START.load(Ordering::Relaxed));
        }
        let id = ProcessIdentity::current();
        // Racing threads of one process store the same values.
        PID.store(0, Ordering::Release);
        START.store(id.start_time, Ordering::Relaxed);
        PID.store(pid, Ordering::Release);
        id
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parse_handles_parentheses_and_spaces_in_comm() {
        let line = "123 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21";
        let s = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.start_time, 424242);
    }

    #[test]
    fn parse_takes_a_comm_that_is_not_utf8() {
        let line = b"7 (\xff\xfe) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99 20";
        assert_eq!(parse_stat(line).unwrap().start_time, 99);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse_stat(b"").is_none());
        assert!(parse_stat(b"1 (x) S 1 2").is_none());
        assert!(parse_stat(b"no paren").is_none());
    }

    #[test]
    fn current_process_is_alive() {
        let me = ProcessIdentity::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_time > 0);
        assert_eq!(me.liveness(), Liveness::Alive);
        assert_eq!(ProcessIdentity::of(me.pid).unwrap(), me);
        assert_eq!(ProcessIdentity::me(), me);
        assert_eq!(ProcessIdentity::me(), me);
        assert_eq!(
            ProcessIdentity::packed_liveness(me.packed()),
            Liveness::Alive
        );
    }

    #[test]
    fn a_different_start_time_is_a_different_process() {
        let me = ProcessIdentity::current();
        let impostor = ProcessIdentity::from_parts(me.pid, me.start_time + 1);
        assert_eq!(impostor.liveness(), Liveness::Dead);
        assert_eq!(ProcessIdentity::nobody().liveness(), Liveness::Dead);
    }
}
