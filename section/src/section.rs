//! [`Section`]: create, open and map a named or anonymous section.
//!
//! ## Creating atomically
//!
//! A named section never appears half-written: `create` makes a private temporary file
//! (`.culvert-tmp.*`, `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`) in the namespace directory,
//! gives it its exact mode, sizes it (`ftruncate`, then `fallocate`, so a full `/dev/shm`
//! is an `Error::NoSpace` now rather than a `SIGBUS` later), writes the header in state
//! `Initializing`, and hard-links it to `culvert.<name>` — the link fails with `EEXIST`
//! if the name exists, which makes create exclusive. An opener therefore always finds a
//! full header; a header that is short or wrong is `Corrupted`, never "still being
//! written".
//!
//! ## Opening safely
//!
//! `open` uses `O_NOFOLLOW|O_NONBLOCK`, checks with `fstat` that the file is regular and
//! owned by us or root (unless [`SectionOptions::allow_any_owner`]), reads the header with
//! `pread` (not through a mapping, so a short file cannot raise `SIGBUS`), validates it,
//! and maps only the `total_size` it claims once the file is known to be that large.
//! It then waits for `Ready` on the state word (a futex, re-checked at least every
//! [`LIVENESS_RECHECK_INTERVAL`]): `Poisoned` fails at once, and an `Initializing` section
//! whose creator is dead fails at once with `Error::Stale`. Once ready, the header is
//! copied out of the mapping and validated again, object table included; the copy is
//! what [`Section::object`] uses, so later scribbling on the table has no effect.
//!
//! A creator that drops its `Section` before [`Section::mark_ready`] poisons it, so
//! openers fail at once instead of waiting for the timeout.
//!
//! Limitation: a named section's file can be truncated by any process that may write
//! it, after which touching the lost pages raises `SIGBUS`; keep named sections at mode
//! `0600` unless you trust the other users. Anonymous (memfd) sections are sealed against
//! shrinking and growing, so they cannot be truncated.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culvert_sync::atomic::{AtomicU32, Ordering};
use culvert_sync::{futex, Deadline, Liveness, ProcessIdentity, LIVENESS_RECHECK_INTERVAL};
use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{self as rfs, AtFlags, FallocateFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use zerocopy::IntoBytes;

use crate::error::{map_errno, ErrCtx, Error, Result};
use crate::layout::{
    encode_object_name, HeaderInfo, InitState, ObjectEntry, ObjectInfo, SectionHeader, SectionKind,
    COUNT_OFFSET, DATA_OFFSET, HEADER_SIZE, MAX_OBJECTS, MAX_OBJECT_ALIGN, OBJECTS_OFFSET, PAGE,
    STATE_OFFSET,
};
use crate::options::{file_path, validate_name, SectionOptions};
use crate::region::Region;

mod file;
mod names;

use file::{check_kind, map, pwrite_all, read_header, regular_file_size, size_file, wait_ready};

/// Largest section (header included) we create: far beyond any tmpfs, small enough that
/// offsets and lengths never overflow `isize`.
const MAX_TOTAL_SIZE: u64 = 1 << 46;

/// A mapped section: a validated header, a table of named sub-objects, and the data area
/// they live in, shared with every process that maps the same section.
///
/// The creator calls [`Section::create`] (or [`Section::anonymous`]), carves sub-objects
/// with [`Section::add_object`], and publishes them with [`Section::mark_ready`]. Other
/// processes call [`Section::open`], which waits until the section is ready, and find the
/// sub-objects with [`Section::object`]. The mapping lives as long as the `Section` or
/// any [`Region`] taken from it.
///
/// # Example
///
/// ```
/// use culvert_section::{Section, SectionOptions};
///
/// # fn main() -> Result<(), culvert_section::Error> {
/// # let dir = tempfile::tempdir()?;
/// // Tests and examples use their own namespace directory; the default is /dev/shm.
/// let opts = SectionOptions::default().root(dir.path());
///
/// // Creator: make the section, add an object, publish.
/// let mut section = Section::create("example", 64 * 1024, &opts)?;
/// let greeting = section.add_object("greeting", 1, 16, 8)?;
/// // SAFETY: the region is 16 bytes long and alive; nobody else writes it yet.
/// unsafe { greeting.as_ptr().copy_from_nonoverlapping(b"hello".as_ptr(), 5) };
/// section.mark_ready()?;
///
/// // Opener (normally another process): waits for ready, then finds the object.
/// let opened = Section::open("example", &opts)?;
/// let seen = opened.object("greeting")?;
/// let mut buf = [0u8; 5];
/// // SAFETY: the region is at least 5 bytes long and alive.
/// unsafe { seen.as_ptr().copy_to_nonoverlapping(buf.as_mut_ptr(), 5) };
/// assert_eq!(&buf, b"hello");
///
/// Section::unlink("example", &opts)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Section {
    /// Section name (for anonymous sections, a label for errors).
    name: String,
    /// The file, for named sections.
    path: Option<PathBuf>,
    /// The file or memfd.
    fd: OwnedFd,
    /// The mapping; `map.len() == info.total_size`, at least `DATA_OFFSET`.
    map: Arc<MmapRaw>,
    /// Validated header snapshot (the creator keeps its object list up to date).
    info: HeaderInfo,
    /// For the creator: the next free data offset. `None` for openers.
    cursor: Option<u64>,
}

/// The state word of a mapping.
fn state_word(map: &MmapRaw) -> &AtomicU32 {
    // A hostile peer's plain write can only make us read some other value, which we validate.
    // SAFETY: the mapping is page-aligned and longer than `STATE_OFFSET + 4` (checked before
    // mapping), `STATE_OFFSET` is 4-aligned, and the reference cannot outlive `map`.
    unsafe { &*map.as_mut_ptr().add(STATE_OFFSET).cast::<AtomicU32>() }
}

/// Rounds a requested data size up to the total mapped size.
fn total_for(size: u64) -> Result<u64> {
    if size == 0 {
        return Err(Error::InvalidSize {
            size,
            reason: "a section needs at least 1 data byte".into(),
        });
    }
    size.checked_add(PAGE - 1)
        .map(|s| s / PAGE * PAGE)
        .and_then(|s| s.checked_add(DATA_OFFSET))
        .filter(|&t| t <= MAX_TOTAL_SIZE)
        .ok_or_else(|| Error::InvalidSize {
            size,
            reason: format!("larger than the {MAX_TOTAL_SIZE}-byte maximum"),
        })
}

/// A name for a temporary file, unique enough with `O_EXCL` and a retry.
pub(crate) fn temp_name(attempt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    format!(
        ".culvert-tmp.{}.{tid}.{nanos:08x}.{attempt}",
        std::process::id()
    )
}

impl Section {
    /// Creates the named section `name` with at least `size` data bytes (rounded up to
    /// a page; the header page comes on top), in state `Initializing`.
    ///
    /// Add sub-objects with [`Section::add_object`], then call [`Section::mark_ready`].
    /// Fails with `AlreadyExists` if the name is taken, `NoSpace` if the namespace
    /// filesystem is too small, `InvalidName`/`InvalidSize` on bad arguments.
    pub fn create(name: &str, size: u64, opts: &SectionOptions) -> Result<Section> {
        validate_name(name)?;
        let total = total_for(size)?;
        let root = opts.namespace_root()?;
        let final_path = file_path(&root, name);
        let cx = ErrCtx {
            name,
            root: &root,
            size: total,
            op: "create",
        };

        let mut attempt = 0;
        let (tmp_path, fd) = loop {
            let tmp = root.join(temp_name(attempt));
            let flags =
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rfs::open(&tmp, flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => break (tmp, fd),
                Err(Errno::EXIST) if attempt < 16 => attempt += 1,
                Err(Errno::NOENT) => {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "cannot create section '{name}': namespace directory {} does not exist",
                            root.display()
                        ),
                    )))
                }
                Err(e) => return Err(map_errno(e, &cx)),
            }
        };

        let creator = ProcessIdentity::me();
        let header = SectionHeader::new(opts.kind, total, creator);
        let prepared = (|| -> Result<()> {
            rfs::fchmod(&fd, Mode::from_raw_mode(opts.mode & 0o777))
                .map_err(|e| map_errno(e, &cx))?;
            size_file(fd.as_fd(), total, &cx)?;
            pwrite_all(fd.as_fd(), header.as_bytes(), 0).map_err(|e| map_errno(e, &cx))?;
            rfs::linkat(CWD, &tmp_path, CWD, &final_path, AtFlags::empty())
                .map_err(|e| map_errno(e, &cx))
        })();
        // The temporary name goes in every case; on success the section keeps its own.
        let _ = rfs::unlinkat(CWD, &tmp_path, AtFlags::empty());
        prepared?;

        let map = match map(fd.as_fd(), total, opts.populate, name) {
            Ok(m) => m,
            Err(e) => {
                let _ = rfs::unlinkat(CWD, &final_path, AtFlags::empty());
                return Err(e);
            }
        };
        Ok(Section::new_created(
            name,
            Some(final_path),
            fd,
            map,
            opts.kind,
            total,
            creator,
        ))
    }

    /// An anonymous section (a sealed memfd) with at least `size` data bytes, of kind
    /// [`SectionKind::Raw`], in state `Initializing`. Hand it to a child process with
    /// [`Section::pass_to_child`].
    pub fn anonymous(size: u64) -> Result<Section> {
        Self::anonymous_with(size, &SectionOptions::default())
    }

    /// [`Section::anonymous`] with the kind and populate settings of `opts`.
    pub fn anonymous_with(size: u64, opts: &SectionOptions) -> Result<Section> {
        let name = "anonymous";
        let total = total_for(size)?;
        let root = PathBuf::from("memfd");
        let cx = ErrCtx {
            name,
            root: &root,
            size: total,
            op: "memfd",
        };
        let flags = rfs::MemfdFlags::CLOEXEC | rfs::MemfdFlags::ALLOW_SEALING;
        let fd = rfs::memfd_create("culvert.anonymous", flags).map_err(|e| map_errno(e, &cx))?;
        size_file(fd.as_fd(), total, &cx)?;
        let creator = ProcessIdentity::me();
        let header = SectionHeader::new(opts.kind, total, creator);
        pwrite_all(fd.as_fd(), header.as_bytes(), 0).map_err(|e| map_errno(e, &cx))?;
        rfs::fcntl_add_seals(
            &fd,
            rfs::SealFlags::SHRINK | rfs::SealFlags::GROW | rfs::SealFlags::SEAL,
        )
        .map_err(|e| map_errno(e, &cx))?;
        let map = map(fd.as_fd(), total, opts.populate, name)?;
        Ok(Section::new_created(
            name, None, fd, map, opts.kind, total, creator,
        ))
    }

    fn new_created(
        name: &str,
        path: Option<PathBuf>,
        fd: OwnedFd,
        map: MmapRaw,
        kind: SectionKind,
        total: u64,
        creator: ProcessIdentity,
    ) -> Section {
        Section {
            name: name.to_string(),
            path,
            fd,
            map: Arc::new(map),
            info: HeaderInfo {
                kind,
                version: crate::layout::LAYOUT_VERSION,
                total_size: total,
                data_offset: DATA_OFFSET,
                creator,
                state: InitState::Initializing,
                objects: Vec::new(),
            },
            cursor: Some(DATA_OFFSET),
        }
    }

    /// Opens the named section, waiting up to [`SectionOptions::open_timeout`] for its
    /// creator to mark it ready.
    ///
    /// Errors: `NotFound`; `PermissionDenied` (mode, foreign owner, symlink); `Corrupted`
    /// (not a valid section); `WrongKind` (see [`SectionOptions::expect_kind`]); `Stale`
    /// (the creator died before marking it ready — returned at once); `Poisoned`;
    /// `Timeout` (the creator lives but did not mark it ready in time).
    pub fn open(name: &str, opts: &SectionOptions) -> Result<Section> {
        let (fd, path) = Self::open_file(name, opts, OFlags::RDWR)?;
        Self::attach(fd, name, Some(path), opts, true)
    }

    /// Opens the section if it exists, else creates it; `true` if this call created it
    /// (the caller must then add objects and mark it ready). An existing section must
    /// be of kind `opts.kind` (unless `opts.expect_kind` says otherwise); its size is not
    /// compared with `size`.
    ///
    /// # Errors
    /// Those of [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(name: &str, size: u64, opts: &SectionOptions) -> Result<(Section, bool)> {
        let mut open_opts = opts.clone();
        open_opts.expect_kind = opts.expect_kind.or(Some(opts.kind));
        let mut last = None;
        for _ in 0..8 {
            match Self::create(name, size, opts) {
                Ok(s) => return Ok((s, true)),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match Self::open(name, &open_opts) {
                Ok(s) => return Ok((s, false)),
                // Unlinked between our create and open: try again.
                Err(e @ Error::NotFound { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound {
            name: name.to_string(),
            root: opts.namespace_root().unwrap_or_default(),
        }))
    }

    /// Adopts a section file descriptor (e.g. an anonymous section inherited from a
    /// parent), validating it like [`Section::open`] with default options. `name` only
    /// labels errors.
    pub fn from_fd(fd: OwnedFd, name: &str) -> Result<Section> {
        Self::from_fd_with(fd, name, &SectionOptions::default())
    }

    /// [`Section::from_fd`] with the timeout, kind and populate settings of `opts`.
    /// No owner check is made: whoever handed us the descriptor is trusted that far.
    pub fn from_fd_with(fd: OwnedFd, name: &str, opts: &SectionOptions) -> Result<Section> {
        Self::attach(fd, name, None, opts, false)
    }

    /// Validates, maps and waits for an opened section file.
    pub(crate) fn attach(
        fd: OwnedFd,
        name: &str,
        path: Option<PathBuf>,
        opts: &SectionOptions,
        check_owner: bool,
    ) -> Result<Section> {
        let st = rfs::fstat(&fd).map_err(std::io::Error::from)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::corrupted(name, "not a regular file"));
        }
        if check_owner && !opts.allow_any_owner {
            let euid = rustix::process::geteuid().as_raw();
            if st.st_uid != euid && st.st_uid != 0 {
                return Err(Error::PermissionDenied {
                    name: name.to_string(),
                    reason: format!(
                        "the file is owned by uid {}, neither us (uid {euid}) nor root; set SectionOptions::allow_any_owner to trust it",
                        st.st_uid
                    ),
                });
            }
        }
        let file_size = u64::try_from(st.st_size).unwrap_or(0);
        let header = read_header(fd.as_fd(), name, file_size)?;
        let (kind, _) = header
            .validate_fixed(file_size)
            .map_err(|w| Error::corrupted(name, w))?;
        check_kind(name, opts, kind)?;
        let total = header.total_size;
        let creator = header.creator();
        // Pre-fault only a fully allocated file: populating a huge sparse file (which a
        // hostile peer could plant) would allocate all of it.
        let allocated = u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512);
        let populate = opts.populate && allocated >= total;
        let map = map(fd.as_fd(), total, populate, name)?;
        wait_ready(&map, name, creator, opts.open_timeout)?;

        // Ready: copy the header out of the mapping and validate all of it.
        let mut bytes = [0u8; HEADER_SIZE];
        // SAFETY: the mapping is at least DATA_OFFSET >= HEADER_SIZE bytes long and
        // alive; `bytes` is a local buffer of HEADER_SIZE bytes; they do not overlap.
        // Peers may write the source concurrently: we only copy the bytes and validate.
        unsafe { ptr::copy_nonoverlapping(map.as_mut_ptr(), bytes.as_mut_ptr(), HEADER_SIZE) };
        let snapshot = SectionHeader::read(&bytes)
            .ok_or_else(|| Error::corrupted(name, "header unreadable"))?;
        let info = snapshot
            .validate(map.len() as u64)
            .map_err(|w| Error::corrupted(name, w))?;
        if info.total_size != total || info.kind != kind || info.creator != creator {
            return Err(Error::corrupted(
                name,
                "header changed while the section was opened",
            ));
        }
        Ok(Section {
            name: name.to_string(),
            path,
            fd,
            map: Arc::new(map),
            info,
            cursor: None,
        })
    }

    /// Carves a sub-object of `len` bytes aligned to `align` (a power of two, at most
    /// 4096) out of the data area, records it in the table under `name`
    /// (`[A-Za-z0-9._-]{1,32}`) with the caller-defined `kind`, and returns its region
    /// (zeroed). Creator only, before [`Section::mark_ready`]; fails with
    /// `InvalidOperation` on a bad argument, a duplicate name, a full table (16
    /// entries), or too little room left.
    pub fn add_object(&mut self, name: &str, kind: u32, len: u64, align: u32) -> Result<Region> {
        let invalid = |reason: String| Error::InvalidOperation {
            name: self.name.clone(),
            reason: format!("cannot add object '{name}': {reason}"),
        };
        let Some(cursor) = self.cursor else {
            return Err(invalid("only the creator adds objects".into()));
        };
        if state_word(&self.map).load(Ordering::Acquire) != InitState::INITIALIZING {
            return Err(invalid("the section is no longer initializing".into()));
        }
        let encoded = encode_object_name(name).ok_or_else(|| {
            invalid("object names are 1 to 32 characters of [A-Za-z0-9._-]".into())
        })?;
        if len == 0 {
            return Err(invalid("length 0".into()));
        }
        if !align.is_power_of_two() || align > MAX_OBJECT_ALIGN {
            return Err(invalid(format!(
                "alignment {align} is not a power of two up to {MAX_OBJECT_ALIGN}"
            )));
        }
        if self.info.objects.iter().any(|o| o.name == name) {
            return Err(invalid("an object of that name exists".into()));
        }
        let index = self.info.objects.len();
        if index >= MAX_OBJECTS {
            return Err(invalid(format!(
                "the object table is full ({MAX_OBJECTS} entries)"
            )));
        }
        let total = self.info.total_size;
        let a = u64::from(align);
        let offset = cursor.checked_add(a - 1).map(|c| c / a * a);
        let end = offset.and_then(|o| o.checked_add(len));
        let (offset, end) = match (offset, end) {
            (Some(o), Some(e)) if e <= total => (o, e),
            _ => {
                return Err(invalid(format!(
                    "no room: {len} bytes asked, {} free; create the section larger",
                    total.saturating_sub(cursor)
                )))
            }
        };
        let entry = ObjectEntry {
            name: encoded,
            offset,
            len,
            kind,
            align,
        };
        let base = self.map.as_mut_ptr();
        let entry_at = OBJECTS_OFFSET + index * std::mem::size_of::<ObjectEntry>();
        let count = u32::try_from(index + 1).unwrap_or(u32::MAX);
        // Openers read the table only after `mark_ready`'s Release store of Ready.
        // SAFETY: in the header (`index < MAX_OBJECTS`, aligned offsets) of a live mapping,
        // written only by the creator while Initializing.
        unsafe {
            ptr::copy_nonoverlapping(
                entry.as_bytes().as_ptr(),
                base.add(entry_at),
                std::mem::size_of::<ObjectEntry>(),
            );
            base.add(COUNT_OFFSET).cast::<u32>().write_volatile(count);
        }
        self.info.objects.push(ObjectInfo {
            name: name.to_string(),
            offset,
            len,
            kind,
            align,
        });
        self.cursor = Some(end);
        self.object(name)
    }

    /// Publishes the section: `Initializing → Ready`, waking waiting openers. Creator
    /// only. Calling it again is a no-op; on a poisoned section it fails with `Poisoned`.
    ///
    /// # Errors
    /// `InvalidOperation` when called by an opener; `Poisoned`.
    pub fn mark_ready(&self) -> Result<()> {
        if self.cursor.is_none() {
            return Err(Error::InvalidOperation {
                name: self.name.clone(),
                reason: "only the creator marks a section ready".into(),
            });
        }
        let word = state_word(&self.map);
        match word.compare_exchange(
            InitState::INITIALIZING,
            InitState::READY,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                futex::wake_all(word);
                Ok(())
            }
            Err(InitState::READY) => Ok(()),
            Err(InitState::POISONED) => Err(Error::Poisoned {
                name: self.name.clone(),
            }),
            Err(other) => Err(Error::corrupted(
                &self.name,
                format!("unknown init state {other}"),
            )),
        }
    }

    /// Marks the section `Poisoned` (unusable): openers fail with `Error::Poisoned`.
    /// Anyone mapping it may do this, e.g. on finding it corrupted.
    pub fn poison(&self) {
        let word = state_word(&self.map);
        word.store(InitState::POISONED, Ordering::Release);
        futex::wake_all(word);
    }

    /// The current state. An unknown stored value (a peer scribbled) is `Corrupted`.
    pub fn state(&self) -> Result<InitState> {
        let raw = state_word(&self.map).load(Ordering::Acquire);
        InitState::from_u32(raw)
            .ok_or_else(|| Error::corrupted(&self.name, format!("unknown init state {raw}")))
    }

    /// The region of sub-object `name`, bounds-checked against the mapping.
    ///
    /// # Errors
    /// `ObjectNotFound` for no object of that name; `Corrupted` if its entry lies
    /// outside the mapping.
    pub fn object(&self, name: &str) -> Result<Region> {
        let o = self
            .info
            .objects
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| Error::ObjectNotFound {
                name: self.name.clone(),
                object: name.to_string(),
            })?;
        let out_of_bounds = || {
            Error::corrupted(
                &self.name,
                format!(
                    "object '{name}' ({} bytes at {}) lies outside the mapping",
                    o.len, o.offset
                ),
            )
        };
        if o.offset < DATA_OFFSET {
            return Err(out_of_bounds());
        }
        let offset = usize::try_from(o.offset).map_err(|_| out_of_bounds())?;
        let len = usize::try_from(o.len).map_err(|_| out_of_bounds())?;
        let region = self
            .region()
            .subregion(offset, len)
            .ok_or_else(out_of_bounds)?;
        if !region.is_aligned_to(o.align as usize) {
            return Err(Error::corrupted(
                &self.name,
                format!("object '{name}' is misaligned"),
            ));
        }
        Ok(region)
    }

    /// The sub-objects (copied out).
    pub fn objects(&self) -> Vec<ObjectInfo> {
        self.info.objects.clone()
    }

    /// A snapshot of the header: kind, size, creator, objects, and the current state
    /// (an unknown stored state — a peer scribbled on it — is reported as `Poisoned`).
    pub fn header(&self) -> HeaderInfo {
        let mut info = self.info.clone();
        info.state = self.state().unwrap_or(InitState::Poisoned);
        info
    }

    /// The whole mapping, header included.
    pub fn region(&self) -> Region {
        let owner: Arc<dyn std::any::Any + Send + Sync> = self.map.clone();
        match NonNull::new(self.map.as_mut_ptr()) {
            // SAFETY: the mapping is `map.len()` bytes, readable and writable, and stays
            // mapped while `owner` (an Arc of it) lives.
            Some(ptr) => unsafe { Region::from_raw_parts(ptr, self.map.len(), owner) },
            // SAFETY: an empty region at a dangling pointer is never dereferenced.
            None => unsafe { Region::from_raw_parts(NonNull::dangling(), 0, owner) },
        }
    }

    /// The section's name (for anonymous sections, the label given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file of a named section.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Bytes mapped, header included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always `false`: a section holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Bytes in the data area.
    pub fn data_len(&self) -> u64 {
        self.info.total_size - DATA_OFFSET
    }

    /// What the section holds.
    pub fn kind(&self) -> SectionKind {
        self.info.kind
    }

    /// Whether this handle created the section.
    pub fn is_creator(&self) -> bool {
        self.cursor.is_some()
    }

    /// The section's file descriptor (for anonymous sections: the memfd to hand on).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for Section {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        // A creator that gives up before publishing poisons the section, so openers
        // fail at once instead of waiting for their timeout.
        if self.cursor.is_some() {
            let word = state_word(&self.map);
            if word
                .compare_exchange(
                    InitState::INITIALIZING,
                    InitState::POISONED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                futex::wake_all(word);
            }
        }
    }
}
