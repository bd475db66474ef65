//! Fuzz harness bodies, callable without libFuzzer (the seed corpus is replayed by an
//! ordinary test), plus the seed inputs.
//!
//! [`section_open`] writes its input as a section file in a private temporary namespace
//! and opens it. The only property checked is that nothing panics, faults or hangs:
//! open returns `Ok` or a typed error, and on `Ok` every object region lies inside the
//! mapping and can be read entirely.

use std::path::PathBuf;
use std::time::Duration;

use culvert_sync::ProcessIdentity;

use crate::layout::{
    encode_object_name, InitState, ObjectEntry, SectionHeader, SectionKind, DATA_OFFSET,
    HEADER_SIZE, PAGE,
};
use crate::options::SectionOptions;
use crate::section::Section;

/// A temporary namespace directory, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> Option<TempRoot> {
        let base = std::env::temp_dir();
        for attempt in 0..64u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!(
                "culvert-fuzz.{}.{}.{nanos}.{attempt}",
                std::process::id(),
                rustix::thread::gettid().as_raw_nonzero()
            ));
            if std::fs::create_dir(&dir).is_ok() {
                return Some(TempRoot(dir));
            }
        }
        None
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `data` as the section file `culvert.fuzz` in a temporary namespace, opens it
/// (1 ms open timeout), and checks the result. Panics only on a real bug.
pub fn section_open(data: &[u8]) {
    let Some(root) = TempRoot::new() else { return };
    let opts = SectionOptions::default()
        .root(&root.0)
        .open_timeout(Duration::from_millis(1))
        .populate(false);
    let Ok(path) = opts.path_of("fuzz") else {
        return;
    };
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = Section::inspect("fuzz", &opts);
    let Ok(section) = Section::open("fuzz", &opts) else {
        return;
    };
    let whole = section.region();
    let base = whole.as_ptr() as usize;
    assert!(
        section.len() as u64 <= data.len() as u64,
        "mapped beyond the file"
    );
    for info in section.objects() {
        let Ok(r) = section.object(&info.name) else {
            continue;
        };
        let start = r.as_ptr() as usize;
        assert!(
            start >= base + DATA_OFFSET as usize,
            "object below the data area"
        );
        assert!(
            start + r.len() <= base + whole.len(),
            "object beyond the mapping"
        );
        let mut sum = 0u8;
        for i in 0..r.len() {
            // SAFETY: `i < r.len()` and the region lies inside the live mapping
            // (asserted above), which is backed by the file (size checked at open).
            sum ^= unsafe { r.as_ptr().add(i).read_volatile() };
        }
        std::hint::black_box(sum);
    }
    let _ = section.header();
}

/// A valid, ready section image: `pages` data pages, objects `(name, offset, len)`.
fn image(pages: u64, objects: &[(&str, u64, u64)]) -> Vec<u8> {
    let total = DATA_OFFSET + pages * PAGE;
    let mut h = SectionHeader::new(SectionKind::Raw, total, ProcessIdentity::nobody());
    h.state = InitState::READY;
    for (i, (name, offset, len)) in objects.iter().enumerate() {
        h.objects[i] = ObjectEntry {
            name: encode_object_name(name).unwrap_or([b'x'; 32]),
            offset: *offset,
            len: *len,
            kind: 1,
            align: 8,
        };
    }
    h.object_count = objects.len() as u32;
    let mut bytes = vec![0u8; total as usize];
    bytes[..HEADER_SIZE].copy_from_slice(h.bytes());
    bytes
}

/// Seed inputs for the `section_open` target, by file name.
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let valid = image(
        1,
        &[("ring", DATA_OFFSET, 256), ("ctl", DATA_OFFSET + 256, 128)],
    );
    let mut truncated = valid.clone();
    truncated.truncate(HEADER_SIZE / 2);
    let mut wrong_magic = valid.clone();
    wrong_magic[..8].copy_from_slice(b"NOTCULVT");
    let mut wrong_version = valid.clone();
    wrong_version[8..12].copy_from_slice(&7u32.to_ne_bytes());
    let mut huge = valid.clone();
    huge[16..24].copy_from_slice(&(1u64 << 40).to_ne_bytes());
    let out_of_bounds = image(1, &[("ring", DATA_OFFSET + PAGE - 16, 64)]);
    let mut unknown_kind = valid.clone();
    unknown_kind[12..16].copy_from_slice(&99u32.to_ne_bytes());
    let mut initializing_nobody = valid.clone();
    initializing_nobody[48..52].copy_from_slice(&InitState::INITIALIZING.to_ne_bytes());
    // A fixed pseudo-random fill (xorshift), so the seed is reproducible.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![
        ("valid", valid),
        ("truncated", truncated),
        ("wrong_magic", wrong_magic),
        ("wrong_version", wrong_version),
        ("huge_total_size", huge),
        ("object_out_of_bounds", out_of_bounds),
        ("unknown_kind", unknown_kind),
        ("initializing_dead_creator", initializing_nobody),
        ("random", random),
        ("empty", Vec::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_run_and_the_valid_one_opens() {
        for (name, data) in seed_corpus() {
            section_open(&data);
            let _ = name;
        }
        let (_, valid) = &seed_corpus()[0];
        let root = TempRoot::new().unwrap();
        let opts = SectionOptions::default().root(&root.0);
        std::fs::write(opts.path_of("v").unwrap(), valid).unwrap();
        let s = Section::open("v", &opts).unwrap();
        assert_eq!(s.objects().len(), 2);
        assert_eq!(s.object("ctl").unwrap().len(), 128);
    }
}
