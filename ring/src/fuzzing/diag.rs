//! Fuzz harness body for the ring-diagnostics decoder, callable without libFuzzer (the
//! seed corpus in `fuzz/corpus/ring_diag/` is replayed by `tests/diag_fuzz_replay.rs`),
//! plus the seed inputs.
//!
//! The property checked: [`crate::diag::decode`] and everything a diagnostics tool
//! (`culvert inspect`, `ls`) does with its result return for any bytes — no panic (overflow included, in
//! debug builds), and what it reports about tables is consistent with the input.

use crate::diag::{self as ringdiag, RingDiag, BROADCAST_MAX_WRITERS, MPMC_MAX_ENDPOINTS};
use crate::{broadcast, mpmc, spsc, Deadline, Region};

/// Decodes `data` as a ring control block and renders it as `inspect` would. Panics
/// only on a real bug.
pub fn ringdiag(data: &[u8]) {
    let Some(diag) = ringdiag::decode(data) else {
        return;
    };
    let _ = diag.type_name();
    let _ = diag.describe();
    let owners = diag.owners();
    for &w in &owners {
        assert_ne!(w, 0, "an empty table entry reported as an owner");
        let _ = ringdiag::owner_text(w);
    }
    let max = match diag {
        RingDiag::Spsc { .. } => 2,
        RingDiag::Mpmc { .. } => MPMC_MAX_ENDPOINTS,
        RingDiag::Broadcast { .. } => BROADCAST_MAX_WRITERS,
        _ => 0,
    };
    assert!(owners.len() as u64 <= max, "more owners than table entries");
}

/// The bytes `decode` reads from an object's start (as `culvert` copies them).
fn snapshot(r: &Region) -> Vec<u8> {
    let n = r.len().min(ringdiag::DIAG_BYTES);
    let mut v = vec![0u8; n];
    // SAFETY: the heap region is at least `n` bytes long and alive, only this thread
    // uses it, and `v` is a distinct local buffer of `n` bytes.
    unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), v.as_mut_ptr(), n) };
    v
}

/// Overwrites the native-endian `u64` at `off` of `image`.
fn patch_u64(image: &mut [u8], off: usize, value: u64) {
    if let Some(s) = image.get_mut(off..off + 8) {
        s.copy_from_slice(&value.to_ne_bytes());
    }
}

/// Overwrites the native-endian `u32` at `off` of `image`.
fn patch_u32(image: &mut [u8], off: usize, value: u32) {
    if let Some(s) = image.get_mut(off..off + 4) {
        s.copy_from_slice(&value.to_ne_bytes());
    }
}

/// The image of a live MPMC message ring (two endpoints attached, two messages).
pub fn mpmc_image() -> Vec<u8> {
    let config = mpmc::Config::new(8, 64).with_max_endpoints(4);
    let Some(region) = mpmc::MessageRing::required_size(&config)
        .ok()
        .and_then(Region::heap)
    else {
        return Vec::new();
    };
    if mpmc::MessageRing::init(&region, &config).is_err() {
        return Vec::new();
    }
    let _consumer = mpmc::MessageReader::attach(&region);
    if let Ok(mut p) = mpmc::MessageWriter::attach(&region) {
        let _ = p.try_write(b"x");
        let _ = p.try_write(b"y");
        return snapshot(&region);
    }
    snapshot(&region)
}

/// Offset of `participants_offset` in an MPMC control block.
pub const MPMC_PARTICIPANTS_OFFSET_AT: usize = 40;
/// Offset of `max_endpoints` in an MPMC control block.
pub const MPMC_MAX_ENDPOINTS_AT: usize = 24;

/// Seed inputs: real rings of every type, and hostile variants of them (the
/// participant-table offset near `u64::MAX`, counts out of range, truncations).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    let config = spsc::Config::messages(4096, 256);
    if let Some(region) = spsc::MessageRing::required_size(&config)
        .ok()
        .and_then(Region::heap)
    {
        if spsc::MessageRing::init(&region, &config).is_ok() {
            if let Ok(mut w) = spsc::MessageWriter::attach(&region) {
                let _ = w.write(b"hello", Deadline::never());
            }
            out.push(("spsc_message", snapshot(&region)));
        }
    }
    let config = spsc::Config::bytes(1024);
    if let Some(region) = spsc::ByteRing::required_size(&config)
        .ok()
        .and_then(Region::heap)
    {
        if spsc::ByteRing::init(&region, &config).is_ok() {
            out.push(("spsc_bytes", snapshot(&region)));
        }
    }
    let config = broadcast::Config::new(8, 64);
    if let Some(region) = broadcast::Ring::required_size(&config)
        .ok()
        .and_then(Region::heap)
    {
        if broadcast::Ring::init(&region, &config).is_ok() {
            if let Ok(mut w) = broadcast::Writer::attach(&region) {
                let _ = w.write(b"z");
            }
            let image = snapshot(&region);
            let mut bad = image.clone();
            patch_u64(&mut bad, 40, u64::MAX);
            out.push(("broadcast", image));
            out.push(("broadcast_writers_huge", bad));
        }
    }

    let mpmc = mpmc_image();
    let mut overflow = mpmc.clone();
    patch_u64(&mut overflow, MPMC_PARTICIPANTS_OFFSET_AT, u64::MAX - 3);
    let mut past_end = mpmc.clone();
    patch_u64(
        &mut past_end,
        MPMC_PARTICIPANTS_OFFSET_AT,
        mpmc.len() as u64 - 8,
    );
    let mut many = mpmc.clone();
    patch_u32(&mut many, MPMC_MAX_ENDPOINTS_AT, u32::MAX);
    let table_cut = mpmc.get(..700).unwrap_or(&[]).to_vec();
    let short = mpmc.get(..600).unwrap_or(&[]).to_vec();
    out.push(("mpmc", mpmc));
    out.push(("mpmc_participants_offset_overflow", overflow));
    out.push(("mpmc_participants_past_end", past_end));
    out.push(("mpmc_max_endpoints_huge", many));
    out.push(("mpmc_table_cut_off", table_cut));
    out.push(("mpmc_short", short));

    let mut unknown = b"CLVRING".to_vec();
    unknown.push(9);
    unknown.extend_from_slice(&[0u8; 56]);
    out.push(("unknown_ring_kind", unknown));
    out.push(("not_a_ring", vec![0u8; 64]));
    out.push(("short", b"CLVR".to_vec()));
    out
}
