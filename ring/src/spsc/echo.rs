//! The tail echo of a byte ring: a copy of the writer's last small write, kept on the
//! cache line of the tail.
//!
//! A reader that polls an empty ring holds the tail's line; when the writer publishes,
//! the reader takes that line back — and then, to read the bytes, the data line too:
//! two transfers between cores per small message, where a single shared line would
//! take one. So a write of at most [`ECHO_MAX`] bytes also leaves a copy of its bytes
//! next to the tail, and a reader whose unread bytes all lie in that copy reads them
//! from there: one line per message each way. The data area is written as always;
//! a reader that finds no usable echo reads it there, so the echo only ever saves work.
//!
//! ## Protocol (a sequence lock keyed by ring position)
//! Writer, for a write ending at position `t`: `end = NONE` (relaxed), release fence,
//! `len` and the echo words (relaxed), `end = t` (release), then the tail store.
//! Reader, holding a published tail `t`: `end` (acquire) must be `t`; it loads `len`
//! and the words (relaxed), acquire fence, loads `end` again: still `t` means no
//! rewrite overlapped its loads (a rewrite stores `NONE` first, and a later `end` is a
//! later, different position). Every access is atomic: the copy races with nothing.
//!
//! ## Untrusted memory
//! A hostile peer can write anything here, as it can in the data area: the reader
//! uses the echo only when `end` equals the tail it already validated and `len` is at
//! most [`ECHO_MAX`], and copies at most that many bytes into its own buffer. Wrong
//! bytes are the peer's business; no value leads outside the line. Writers that
//! predate the echo leave `end` at 0, which no unread position ever equals.

use culvert_sync::atomic::{fence, AtomicU64, Ordering};

/// Largest write that leaves an echo.
pub(crate) const ECHO_MAX: usize = ECHO_WORDS * 8;
/// Words of echo bytes.
const ECHO_WORDS: usize = 5;
/// `end` while the echo is being rewritten.
const NONE: u64 = u64::MAX;

/// The echo, on the tail's line (see the module doc).
#[repr(C)]
pub(crate) struct Echo {
    /// Position just past the echoed bytes; `NONE` while they are rewritten.
    /// Invariant (honest writer): when not `NONE`, `len` and `words` hold the bytes at
    /// positions `end - len .. end`.
    end: AtomicU64,
    /// Echoed bytes. Invariant (honest writer): `<= ECHO_MAX`.
    len: AtomicU64,
    /// The bytes, in order, little-endian within each word.
    words: [AtomicU64; ECHO_WORDS],
}

impl Echo {
    /// An echo of nothing.
    pub(crate) fn new() -> Self {
        Self {
            end: AtomicU64::new(0),
            len: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Writer: records `bytes` (at most [`ECHO_MAX`]) as the bytes just before
    /// position `end`. Call before the tail store that publishes them.
    #[inline]
    pub(crate) fn record(&self, end: u64, bytes: &[u8]) {
        debug_assert!(bytes.len() <= ECHO_MAX);
        self.end.store(NONE, Ordering::Relaxed);
        fence(Ordering::Release);
        self.len.store(bytes.len() as u64, Ordering::Relaxed);
        for (word, chunk) in self.words.iter().zip(bytes.chunks(8)) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.end.store(end, Ordering::Release);
    }

    /// Reader: copies the bytes at positions `head..tail` into `out` (as many as fit)
    /// if the echo holds all of them for the published `tail`; how many, or `None`
    /// (read the data area then).
    #[inline]
    pub(crate) fn read(&self, head: u64, tail: u64, out: &mut [u8]) -> Option<usize> {
        if tail - head > ECHO_MAX as u64 || self.end.load(Ordering::Acquire) != tail {
            return None;
        }
        let len = self.len.load(Ordering::Relaxed);
        if len > ECHO_MAX as u64 || tail - head > len {
            return None;
        }
        let mut bytes = [0u8; ECHO_MAX];
        let used = (len as usize).div_ceil(8);
        for (chunk, word) in bytes.chunks_mut(8).zip(&self.words[..used]) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if self.end.load(Ordering::Relaxed) != tail {
            return None;
        }
        let from = (len - (tail - head)) as usize;
        let n = (len as usize - from).min(out.len());
        out[..n].copy_from_slice(&bytes[from..from + n]);
        Some(n)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_reader_takes_the_unread_part_of_the_last_write() {
        let echo = Echo::new();
        let bytes: Vec<u8> = (1..=13).collect();
        echo.record(113, &bytes);
        let mut out = [0u8; 64];
        assert_eq!(echo.read(100, 113, &mut out), Some(13));
        assert_eq!(&out[..13], &bytes[..]);
        // A head inside the write: only what is left of it.
        assert_eq!(echo.read(110, 113, &mut out), Some(3));
        assert_eq!(&out[..3], &[11, 12, 13]);
        // A short buffer: as much as fits, from the head.
        let mut small = [0u8; 2];
        assert_eq!(echo.read(105, 113, &mut small), Some(2));
        assert_eq!(small, [6, 7]);
        // The largest write that leaves an echo.
        let full: Vec<u8> = (0..ECHO_MAX as u8).collect();
        echo.record(1000 + ECHO_MAX as u64, &full);
        assert_eq!(
            echo.read(1000, 1000 + ECHO_MAX as u64, &mut out),
            Some(ECHO_MAX)
        );
        assert_eq!(&out[..ECHO_MAX], &full[..]);
    }

    #[test]
    fn an_echo_that_does_not_cover_the_unread_bytes_is_not_used() {
        let echo = Echo::new();
        let mut out = [0u8; 64];
        // A fresh echo (and a writer that never records one) matches no unread span.
        assert_eq!(echo.read(0, 8, &mut out), None);
        echo.record(20, &[7; 8]);
        // Unread bytes begin before the echoed write.
        assert_eq!(echo.read(11, 20, &mut out), None);
        // The tail moved past the echo (a later write left none).
        assert_eq!(echo.read(12, 30, &mut out), None);
        // More unread bytes than any echo holds.
        assert_eq!(echo.read(0, 20 + ECHO_MAX as u64, &mut out), None);
    }

    #[test]
    fn forged_echo_words_never_lead_outside_the_echo() {
        let echo = Echo::new();
        echo.record(40, &[1; 8]);
        let mut out = [0u8; 64];
        for len in [0, 7, ECHO_MAX as u64, ECHO_MAX as u64 + 1, u64::MAX] {
            echo.len.store(len, Ordering::Relaxed);
            for head in [0, 1, 32, 39, 40] {
                if let Some(n) = echo.read(head, 40, &mut out) {
                    assert!(n as u64 <= 40 - head && n <= ECHO_MAX);
                    assert!(len <= ECHO_MAX as u64);
                }
            }
        }
        // An echo being rewritten is not read.
        echo.len.store(8, Ordering::Relaxed);
        echo.end.store(NONE, Ordering::Relaxed);
        assert_eq!(echo.read(32, 40, &mut out), None);
    }
}
