//! `culvert ls`, `inspect` and `gc`: what is in the section namespace, and cleaning up
//! after crashed processes.
//!
//! Everything here is read-only except `gc`'s unlink: headers are read with
//! [`Section::inspect`] (a `pread`, no mapping, no waiting) and ring control blocks are
//! copied out with `pread` and decoded by [`culvert_ring::diag`], so a corrupted or
//! truncated section is shown as such and can never fault or hang the tool.
//!
//! A section is **stale** when every process known to own it is dead: the creator, and
//! every endpoint recorded in the rings it holds. (A section still initializing whose
//! creator died is stale whatever the rings say.) Only stale sections are removed by
//! `gc`; corrupted ones are reported and left for a human. A section is corrupted when
//! its header is unreadable or when one of its rings' control blocks contradicts
//! itself (e.g. a table offset outside the object): its owners cannot be known, so it
//! is never judged stale. Either way only that section is affected; `ls` and `gc` go
//! on with the rest of the namespace.

use std::fmt::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use culvert_section::{HeaderInfo, InitState, ObjectInfo, Section, SectionKind, SectionOptions};
use culvert_sync::{Liveness, ProcessIdentity};

use culvert_ring::diag::{self as ringdiag, RingDiag};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one section looks like.
pub struct Entry {
    /// Its header, or why it could not be read.
    pub header: Result<HeaderInfo, String>,
    /// Each object with its decoded ring (`None`: unreadable / too short).
    pub objects: Vec<(ObjectInfo, Option<RingDiag>)>,
}

/// The state shown by `ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Ready (or poisoned) with a live owner; or initializing with a live creator.
    Live(InitState),
    /// Every owner is dead.
    Stale(InitState),
    /// The header is unreadable, or a ring's control block contradicts itself.
    Corrupted(String),
}

/// `raw`, `pipe`, ...
pub fn kind_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Raw => "raw",
        SectionKind::Pipe => "pipe",
        SectionKind::PipeServer => "pipe server",
        SectionKind::Mailslot => "mailslot",
        SectionKind::BroadcastGroup => "broadcast group",
        SectionKind::Port => "port",
        SectionKind::PortConnection => "port connection",
    }
}

fn state_name(s: InitState) -> &'static str {
    match s {
        InitState::Initializing => "initializing",
        InitState::Ready => "ready",
        InitState::Poisoned => "poisoned",
    }
}

/// Reads what can be read of section `name`.
pub fn examine(name: &str, opts: &SectionOptions) -> Entry {
    let header = Section::inspect(name, opts).map_err(|e| e.to_string());
    let mut objects = Vec::new();
    if let Ok(h) = &header {
        let file = opts.path_of(name).ok().and_then(|p| open_read_only(&p));
        for o in &h.objects {
            let ring = file.as_ref().and_then(|f| {
                let n = usize::try_from(o.len)
                    .unwrap_or(usize::MAX)
                    .min(ringdiag::DIAG_BYTES);
                let mut buf = vec![0u8; n];
                f.read_exact_at(&mut buf, o.offset).ok()?;
                ringdiag::decode(&buf)
            });
            objects.push((o.clone(), ring));
        }
    }
    Entry { header, objects }
}

/// Opens a section file read-only without following symlinks or blocking.
fn open_read_only(path: &Path) -> Option<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    rustix::fs::open(path, flags, Mode::empty())
        .ok()
        .map(std::fs::File::from)
}

impl Entry {
    /// Every endpoint owner recorded in the section's rings.
    pub fn ring_owners(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .objects
            .iter()
            .filter_map(|(_, r)| r.as_ref())
            .flat_map(|r| r.owners())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Live endpoint owners and all recorded ones.
    pub fn endpoints(&self) -> (usize, usize) {
        let owners = self.ring_owners();
        let live = owners
            .iter()
            .filter(|&&w| ProcessIdentity::packed_liveness(w) == Liveness::Alive)
            .count();
        (live, owners.len())
    }

    /// The first object whose ring control block contradicts itself, and why.
    pub fn corrupted_object(&self) -> Option<String> {
        self.objects.iter().find_map(|(o, r)| match r {
            Some(RingDiag::Corrupted(why)) => Some(format!("object '{}': {why}", o.name)),
            _ => None,
        })
    }

    /// Its state.
    pub fn state(&self) -> State {
        let h = match &self.header {
            Ok(h) => h,
            Err(e) => return State::Corrupted(e.clone()),
        };
        if let Some(why) = self.corrupted_object() {
            return State::Corrupted(why);
        }
        let creator_alive = h.creator.is_alive();
        if h.state == InitState::Initializing {
            return if creator_alive {
                State::Live(h.state)
            } else {
                State::Stale(h.state)
            };
        }
        if creator_alive || self.endpoints().0 > 0 {
            State::Live(h.state)
        } else {
            State::Stale(h.state)
        }
    }
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn creator_text(h: &HeaderInfo) -> String {
    format!(
        "{} ({})",
        h.creator.pid,
        if h.creator.is_alive() { "live" } else { "dead" }
    )
}

/// The state as one word: `initializing`, `ready`, `poisoned`, `stale` or `corrupted`.
pub fn state_word(s: &State) -> &'static str {
    match s {
        State::Live(st) => state_name(*st),
        State::Stale(_) => "stale",
        State::Corrupted(_) => "corrupted",
    }
}

fn state_text(s: &State) -> String {
    match s {
        State::Live(st) => state_name(*st).to_string(),
        State::Stale(InitState::Ready) => "stale".to_string(),
        State::Stale(st) => format!("stale ({})", state_name(*st)),
        State::Corrupted(why) => format!("corrupted: {why}"),
    }
}

/// The namespace directory, which must exist (a typo in `--root` is an error, not an
/// empty namespace).
pub fn existing_root(opts: &SectionOptions) -> Result<PathBuf, BoxError> {
    let root = opts.namespace_root()?;
    if !root.is_dir() {
        return Err(format!("namespace directory {} does not exist", root.display()).into());
    }
    Ok(root)
}

/// `culvert ls`.
pub fn ls(opts: &SectionOptions) -> Result<String, BoxError> {
    let root = existing_root(opts)?;
    let names = Section::list(opts).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
    let mut s = String::new();
    if names.is_empty() {
        let _ = writeln!(s, "no culvert sections in {}", root.display());
        return Ok(s);
    }
    // The name column fits the longest name, so the columns stay aligned.
    let w = names.iter().map(|n| n.len()).max().unwrap_or(0).max(32);
    let _ = writeln!(
        s,
        "{:<w$} {:<16} {:>10} {:<16} {:>9}  STATE",
        "NAME", "KIND", "SIZE", "CREATOR", "ENDPOINTS"
    );
    for name in names {
        let e = examine(&name, opts);
        let state = e.state();
        match &e.header {
            Ok(h) => {
                let (live, all) = e.endpoints();
                let _ = writeln!(
                    s,
                    "{:<w$} {:<16} {:>10} {:<16} {:>9}  {}",
                    name,
                    kind_name(h.kind),
                    human_size(h.total_size),
                    creator_text(h),
                    format!("{live}/{all}"),
                    state_text(&state)
                );
            }
            Err(why) => {
                let _ = writeln!(
                    s,
                    "{:<w$} {:<16} {:>10} {:<16} {:>9}  corrupted: {why}",
                    name, "?", "?", "?", "?"
                );
            }
        }
    }
    Ok(s)
}

/// `culvert inspect NAME`: the report, and whether the section is corrupted.
pub fn inspect(name: &str, opts: &SectionOptions) -> Result<(String, bool), BoxError> {
    culvert_section::validate_name(name)?;
    let path = opts.path_of(name)?;
    if !path.exists() && std::fs::symlink_metadata(&path).is_err() {
        return Err(format!(
            "no section '{name}' in {}",
            opts.namespace_root()?.display()
        )
        .into());
    }
    let e = examine(name, opts);
    let mut s = String::new();
    let _ = writeln!(s, "section   {name}");
    let _ = writeln!(s, "file      {}", path.display());
    let h = match &e.header {
        Ok(h) => h,
        Err(why) => {
            let _ = writeln!(s, "state     corrupted: {why}");
            return Ok((s, true));
        }
    };
    let corrupted = matches!(e.state(), State::Corrupted(_));
    let _ = writeln!(s, "kind      {}", kind_name(h.kind));
    let _ = writeln!(s, "version   {}", h.version);
    let _ = writeln!(
        s,
        "size      {} ({} bytes; data from offset {})",
        human_size(h.total_size),
        h.total_size,
        h.data_offset
    );
    let _ = writeln!(
        s,
        "creator   pid {} (start time {}), {}",
        h.creator.pid,
        h.creator.start_time,
        if h.creator.is_alive() { "live" } else { "dead" }
    );
    let (live, all) = e.endpoints();
    let _ = writeln!(
        s,
        "state     {} (header: {}; endpoints: {live} live of {all} recorded)",
        state_text(&e.state()),
        state_name(h.state)
    );
    let _ = writeln!(s, "objects   {}", e.objects.len());
    for (o, ring) in &e.objects {
        let _ = writeln!(
            s,
            "  {:<32} offset {:>10}  length {:>10}  kind {:#x}  align {}",
            o.name, o.offset, o.len, o.kind, o.align
        );
        match ring {
            Some(r) => {
                let _ = writeln!(s, "    {}", r.type_name());
                for line in r.describe() {
                    let _ = writeln!(s, "    {line}");
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "    (unreadable: the file is shorter than the table says)"
                );
            }
        }
    }
    Ok((s, corrupted))
}

/// Temporary files of creates that never finished, whose process is gone.
fn dead_temp_files(root: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(".culvert-tmp.") else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if ProcessIdentity::of(pid).is_err() {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// `culvert gc [--dry-run]`.
pub fn gc(opts: &SectionOptions, dry_run: bool) -> Result<String, BoxError> {
    let root = existing_root(opts)?;
    let names = Section::list(opts).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut s = String::new();
    let mut removed = 0;
    let mut kept_corrupted = Vec::new();
    let mut by_mailslot_layer = Vec::new();
    for name in names {
        let e = examine(&name, opts);
        // Ready mailslots and broadcast groups have owners the generic rule cannot see
        // (a mailslot dies with its reader even while writers live; group readers are
        // recorded in the group's member table, not in the ring): their own layer
        // decides.
        if let Ok(h) = &e.header {
            if h.state == InitState::Ready
                && matches!(h.kind, SectionKind::Mailslot | SectionKind::BroadcastGroup)
            {
                by_mailslot_layer.push(name);
                continue;
            }
        }
        match e.state() {
            State::Stale(st) => {
                let Ok(h) = &e.header else { continue };
                // Re-check just before unlinking: the same creator, still stale.
                let again = examine(&name, opts);
                let same = matches!(&again.header, Ok(h2) if h2.creator == h.creator);
                if !same || !matches!(again.state(), State::Stale(_)) {
                    continue;
                }
                if !dry_run {
                    if let Err(err) = Section::unlink(&name, opts) {
                        let _ = writeln!(s, "cannot remove {name}: {err}");
                        continue;
                    }
                }
                removed += 1;
                let (_, all) = e.endpoints();
                let _ = writeln!(
                    s,
                    "{verb} {name}: {}, {}, creator {} dead, {all} recorded endpoint(s) all dead",
                    kind_name(h.kind),
                    state_name(st),
                    h.creator.pid
                );
            }
            State::Corrupted(why) => kept_corrupted.push(format!("{name} ({why})")),
            State::Live(_) => {}
        }
    }
    if !by_mailslot_layer.is_empty() {
        if dry_run {
            for name in &by_mailslot_layer {
                let _ = writeln!(
                    s,
                    "would check {name}: mailslot or group, removed by a real gc if its reader(s) are all dead"
                );
            }
        } else {
            let mopts = culvert::mailslot::MailslotOptions::default().root(root.clone());
            match culvert::mailslot::gc(&mopts) {
                Ok(gone) => {
                    for name in gone {
                        removed += 1;
                        let _ = writeln!(s, "{verb} {name}: mailslot or group with no live reader");
                    }
                }
                Err(err) => {
                    let _ = writeln!(s, "cannot check mailslots and groups: {err}");
                }
            }
        }
    }
    for tmp in dead_temp_files(&root) {
        if !dry_run {
            if let Err(err) = std::fs::remove_file(&tmp) {
                let _ = writeln!(s, "cannot remove {}: {err}", tmp.display());
                continue;
            }
        }
        removed += 1;
        let _ = writeln!(
            s,
            "{verb} {}: unfinished create of a dead process",
            tmp.display()
        );
    }
    for k in &kept_corrupted {
        let _ = writeln!(
            s,
            "kept {k}: corrupted, owners unknown; remove the file by hand if it is yours"
        );
    }
    let _ = writeln!(
        s,
        "{} {removed} stale item(s) in {}",
        if dry_run { "gc (dry run):" } else { "gc:" },
        root.display()
    );
    Ok(s)
}
