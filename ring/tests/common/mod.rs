//! Helpers shared by the ring integration tests (cross-process, kill, hostile, alloc):
//!
//! * [`Shared`]: a file in a fresh temp dir mapped `MAP_SHARED` (memmap2 `MmapRaw`) in
//!   every process, split into a page of control words and the ring's [`Region`];
//! * [`role`], [`child`]: a child of `culvert_testkit`'s role harness that gets the
//!   shared file and a seed as arguments; [`wait_flag`] waits for its announcement
//!   under the test's `culvert_testkit::Supervisor`;
//! * the self-checking message format ([`encode`], [`verify`]), built on the kit's
//!   checksums and generators;
//! * [`alloc`]: the counting global allocator of the allocation tests.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::NonNull;
use std::sync::Arc;

use culvert_ring::Region;
use culvert_sync::atomic::AtomicU64;
use culvert_testkit::{
    checksum, mix, role_arg, role_arg_parsed, ChildCommand, CrossTest, Supervisor,
};
use memmap2::MmapOptions;

/// Control words precede the ring by one page (keeps the ring page-aligned).
pub const PAGE: usize = 4096;

// ---- shared mapping ---------------------------------------------------------------------

/// Maps `path` shared (creating it with `len` bytes when `create`) as a [`Region`].
pub fn map_file(path: &Path, len: usize, create: bool) -> Region {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    if create {
        file.set_len(len as u64).unwrap();
    }
    let actual = file.metadata().unwrap().len() as usize;
    assert!(actual >= len, "shared file is {actual} bytes, need {len}");
    let map = MmapOptions::new()
        .len(len)
        .populate()
        .map_raw(&file)
        .unwrap();
    let ptr = NonNull::new(map.as_mut_ptr()).expect("mmap returned null");
    let len = map.len();
    // SAFETY: `ptr..ptr+len` is a live read-write MAP_SHARED mapping owned by `map`;
    // moving `map` into the region's owner keeps it mapped while any clone lives.
    unsafe { Region::from_raw_parts(ptr, len, Arc::new(map)) }
}

/// The shared test file: a page of control words, then the ring.
pub struct Shared {
    /// The whole mapping.
    pub region: Region,
    /// The ring's part (page-aligned, `ring_size` bytes).
    pub ring: Region,
    /// Keeps the temp dir alive in the parent (None in children).
    _dir: Option<tempfile::TempDir>,
    /// The file's path, handed to children.
    pub path: PathBuf,
}

impl Shared {
    /// A fresh file in a fresh temp dir (the parent).
    pub fn create(ring_size: usize) -> Shared {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spsc-ring");
        let region = map_file(&path, PAGE + ring_size, true);
        let ring = region.subregion(PAGE, ring_size).unwrap();
        Shared {
            region,
            ring,
            _dir: Some(dir),
            path,
        }
    }

    /// The file the parent made (a child).
    pub fn open(path: &Path, ring_size: usize) -> Shared {
        let region = map_file(path, PAGE + ring_size, false);
        let ring = region.subregion(PAGE, ring_size).unwrap();
        Shared {
            region,
            ring,
            _dir: None,
            path: path.to_owned(),
        }
    }

    /// Control word `i` of the first page.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < PAGE / 8);
        // SAFETY: `i * 8 + 8 <= PAGE <= region.len()`; the mapping is page-aligned so the
        // word is 8-aligned; it lives as long as `self.region`; every process touches
        // these words through atomics only.
        unsafe { &*self.region.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }
}

/// An 8-aligned word at byte `offset` of `region`, as an atomic.
pub fn word_at(region: &Region, offset: usize) -> &AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= region.len());
    assert!(region.is_aligned_to(8));
    // SAFETY: in bounds and 8-aligned (asserted); the region keeps the memory alive for
    // the returned lifetime; shared words are only touched through atomics here.
    unsafe { &*region.as_ptr().add(offset).cast::<AtomicU64>() }
}

// ---- child processes --------------------------------------------------------------------

/// This process's role, shared file and seed, when it is a child.
pub fn role() -> Option<(String, PathBuf, u64)> {
    let role = culvert_testkit::role()?;
    Some((role, role_arg("FILE").into(), role_arg_parsed("SEED")))
}

/// The command running `test` again as a child playing `role` on the shared `file`,
/// with `seed`.
pub fn child(test: CrossTest, role: &str, file: &Path, seed: u64) -> Command {
    let mut cmd = test.command(role);
    cmd.role_arg("FILE", file)
        .role_arg("SEED", seed.to_string());
    cmd
}

/// Waits until `word` is non-zero (a child announced itself), failing if a child fails
/// or the outer deadline passes first.
pub fn wait_flag(sup: &Supervisor, word: &AtomicU64, what: &str) {
    sup.poll_until(what, || {
        word.load(culvert_sync::atomic::Ordering::Acquire) != 0
    });
}

// ---- self-checking messages -------------------------------------------------------------

/// Message `seq` of `out.len()` bytes: bytes `0..8` hold `seq` (LE), bytes `8..16` the
/// checksum of bytes `16..`, and bytes `16..` filler derived from `seq`; each field is cut
/// short when the message is. Returns the checksum of the whole message.
pub fn encode(seq: u64, out: &mut [u8]) -> u64 {
    let len = out.len();
    if len > 16 {
        fill_body(seq, &mut out[16..]);
    }
    let body_sum = checksum(out.get(16..).unwrap_or(&[]));
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..].copy_from_slice(&body_sum.to_le_bytes());
    let h = len.min(16);
    out[..h].copy_from_slice(&head[..h]);
    checksum(out)
}

fn fill_body(seq: u64, body: &mut [u8]) {
    let base = mix(seq ^ 0x5eed_5eed_5eed_5eed);
    let mut chunks = body.chunks_exact_mut(8);
    let mut k = 0u64;
    for c in &mut chunks {
        c.copy_from_slice(&mix(base.wrapping_add(k)).to_le_bytes());
        k += 1;
    }
    let rem = chunks.into_remainder();
    let n = rem.len();
    rem.copy_from_slice(&mix(base.wrapping_add(k)).to_le_bytes()[..n]);
}

/// Checks that `msg` is message `seq` of `expected_len` bytes, whole and untorn; returns
/// its checksum or what is wrong.
pub fn verify(seq: u64, expected_len: usize, msg: &[u8]) -> Result<u64, String> {
    if msg.len() != expected_len {
        return Err(format!(
            "message {seq}: length {} instead of {expected_len}",
            msg.len()
        ));
    }
    let mut want = [0u8; 1024];
    assert!(expected_len <= want.len());
    let want = &mut want[..expected_len];
    encode(seq, want);
    if msg != &want[..] {
        let h = msg.len().min(8);
        let mut got_seq = [0u8; 8];
        got_seq[..h].copy_from_slice(&msg[..h]);
        return Err(format!(
            "message {seq} ({expected_len} bytes) differs: it starts with seq {} \
             and its body checksum {}",
            u64::from_le_bytes(got_seq),
            if msg.len() > 16 && checksum(&msg[16..]).to_le_bytes()[..] != msg[8..16] {
                "does not match (torn)"
            } else {
                "matches"
            }
        ));
    }
    Ok(checksum(msg))
}

/// The sequence number a message (at least 8 bytes long) claims.
pub fn seq_of(msg: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(msg.get(..8)?.try_into().ok()?))
}

/// Combines a per-message checksum into a running total (order sensitive).
#[inline]
pub fn fold(total: u64, sum: u64) -> u64 {
    total.rotate_left(5).wrapping_mul(31) ^ sum
}
