//! The on-memory layout of a section: [`SectionHeader`] at offset 0, then the data area.
//!
//! ```text
//! 0                 HEADER_SIZE (1024)        DATA_OFFSET (4096)            total_size
//! | SectionHeader   | zero                     | sub-objects, bump-allocated |
//! ```
//!
//! The header is `#[repr(C)]`, fixed-width and native-endian (sections never leave the
//! machine). Every process that maps a section may write these bytes, so the header is
//! never referenced in place: it is *copied out* and validated ([`SectionHeader::read`],
//! [`SectionHeader::validate`]), with one exception, the init-state word, which is
//! accessed atomically in place (see [`STATE_OFFSET`]).
//!
//! Invariants of a valid header (checked by [`SectionHeader::validate`]):
//! * `magic == MAGIC`, `version == LAYOUT_VERSION`, `header_size == HEADER_SIZE`,
//!   `data_offset == DATA_OFFSET`;
//! * `kind` is a known [`SectionKind`], `state` a known [`InitState`];
//! * `DATA_OFFSET <= total_size`, `total_size % PAGE == 0`, and `total_size` is no more
//!   than the bytes actually present (file size or mapping length — the caller's bound);
//! * `object_count <= MAX_OBJECTS`; each of the first `object_count` entries has a valid
//!   NUL-padded name (unique), `len > 0`, a power-of-two `align <= 4096`,
//!   `offset % align == 0`, and lies inside `DATA_OFFSET..total_size`; entries do not
//!   overlap. Entries past `object_count` are ignored.

use std::mem::offset_of;

use culvert_sync::ProcessIdentity;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, TryFromBytes};

/// First 8 bytes of every section.
pub const MAGIC: [u8; 8] = *b"CULVSECT";
/// Version of this layout; a section with another version is rejected as corrupted.
pub const LAYOUT_VERSION: u32 = 1;
/// Size of [`SectionHeader`].
pub const HEADER_SIZE: usize = 1024;
/// Where the data area starts: the first page after the header.
pub const DATA_OFFSET: u64 = 4096;
/// Sizes are rounded up to this.
pub const PAGE: u64 = 4096;
/// Entries in the sub-object table.
pub const MAX_OBJECTS: usize = 16;
/// Longest sub-object name (bytes); shorter names are NUL-padded.
pub const OBJECT_NAME_LEN: usize = 32;
/// Largest alignment a sub-object may ask for (the data area is page-aligned).
pub const MAX_OBJECT_ALIGN: u32 = 4096;
/// Byte offset of the init-state word (`u32`, accessed atomically in place).
pub const STATE_OFFSET: usize = offset_of!(SectionHeader, state);
/// Byte offset of the object count.
pub(crate) const COUNT_OFFSET: usize = offset_of!(SectionHeader, object_count);
/// Byte offset of the object table.
pub(crate) const OBJECTS_OFFSET: usize = offset_of!(SectionHeader, objects);

/// What a section holds; chosen by the creator, checked by openers that expect a kind.
/// Stored as a `u32`; unknown values make the section `Corrupted`.
#[repr(u32)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, TryFromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub enum SectionKind {
    /// Plain shared memory, no higher-level protocol.
    Raw = 1,
    /// An anonymous or connected pipe instance.
    Pipe = 2,
    /// A named pipe's server (instances and connect queue).
    PipeServer = 3,
    /// A mailslot.
    Mailslot = 4,
    /// A mailslot broadcast group.
    BroadcastGroup = 5,
    /// An ALPC-like connection port.
    Port = 6,
    /// One client connection of a port.
    PortConnection = 7,
}

impl SectionKind {
    /// The kind stored as `raw`, or `None` if unknown.
    pub fn from_u32(raw: u32) -> Option<Self> {
        SectionKind::try_read_from_bytes(raw.as_bytes()).ok()
    }

    /// The stored value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Initialisation state of a section (the header's `state` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitState {
    /// The creator is still adding sub-objects; openers wait.
    Initializing,
    /// Ready: the header and object table no longer change.
    Ready,
    /// Someone declared the section unusable; openers get `Error::Poisoned`.
    Poisoned,
}

impl InitState {
    /// Stored value of `Initializing`.
    pub const INITIALIZING: u32 = 0;
    /// Stored value of `Ready`.
    pub const READY: u32 = 1;
    /// Stored value of `Poisoned`.
    pub const POISONED: u32 = 2;

    /// The state stored as `raw`, or `None` if unknown.
    pub fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            Self::INITIALIZING => Some(Self::Initializing),
            Self::READY => Some(Self::Ready),
            Self::POISONED => Some(Self::Poisoned),
            _ => None,
        }
    }

    /// The stored value.
    pub fn as_u32(self) -> u32 {
        match self {
            Self::Initializing => Self::INITIALIZING,
            Self::Ready => Self::READY,
            Self::Poisoned => Self::POISONED,
        }
    }
}

/// One entry of the sub-object table, as stored.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ObjectEntry {
    /// Name, `[A-Za-z0-9._-]{1,32}`, NUL-padded (no terminator when 32 bytes long).
    pub name: [u8; OBJECT_NAME_LEN],
    /// Offset from the section base. Invariant: `DATA_OFFSET <= offset`,
    /// `offset % align == 0`, `offset + len <= total_size`.
    pub offset: u64,
    /// Length in bytes, `> 0`.
    pub len: u64,
    /// Caller-defined kind of object (e.g. which ring type).
    pub kind: u32,
    /// Alignment of `offset`: a power of two, at most [`MAX_OBJECT_ALIGN`].
    pub align: u32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<ObjectEntry>() == 56);

/// The section header, at offset 0 of every section. Field invariants: see the module
/// doc. Read it with [`SectionHeader::read`] (a copy), never by reference.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SectionHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// A [`SectionKind`] value.
    pub kind: u32,
    /// Bytes in the section, header included: a multiple of [`PAGE`], `>= DATA_OFFSET`.
    pub total_size: u64,
    /// [`DATA_OFFSET`].
    pub data_offset: u64,
    /// Creator's pid (see [`ProcessIdentity`]).
    pub creator_pid: u32,
    /// Zero.
    pub creator_reserved: u32,
    /// Creator's start time in clock ticks after boot.
    pub creator_start_time: u64,
    /// An [`InitState`] value. Accessed atomically in place; `Initializing → Ready`,
    /// or `→ Poisoned` from any state.
    pub state: u32,
    /// Used entries of `objects`, `<= MAX_OBJECTS`. Only the creator writes it, only
    /// while `Initializing`.
    pub object_count: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// Zero (reserved).
    pub flags: u32,
    /// The sub-object table.
    pub objects: [ObjectEntry; MAX_OBJECTS],
    /// Zero (reserved).
    pub reserved: [u8; 64],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SectionHeader>() == HEADER_SIZE);
const _: () = assert!(STATE_OFFSET % 4 == 0);
const _: () = assert!(COUNT_OFFSET % 4 == 0);
const _: () = assert!(HEADER_SIZE as u64 <= DATA_OFFSET);

/// A sub-object, copied out of the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectInfo {
    /// Its name.
    pub name: String,
    /// Offset from the section base.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Caller-defined kind.
    pub kind: u32,
    /// Alignment of the offset.
    pub align: u32,
}

/// A validated snapshot of a section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// What the section holds.
    pub kind: SectionKind,
    /// Layout version (always [`LAYOUT_VERSION`] once validated).
    pub version: u32,
    /// Bytes in the section, header included.
    pub total_size: u64,
    /// Where the data area starts.
    pub data_offset: u64,
    /// Who created it.
    pub creator: ProcessIdentity,
    /// Its state when the snapshot was taken.
    pub state: InitState,
    /// The sub-objects (those added so far, if still initializing).
    pub objects: Vec<ObjectInfo>,
}

impl HeaderInfo {
    /// Whether the section is *stale*: still initializing, with a dead creator. Such a
    /// section will never become ready; it can be unlinked.
    pub fn is_stale(&self) -> bool {
        self.state == InitState::Initializing && !self.creator.is_alive()
    }
}

/// Whether `b` may appear in a section or object name.
pub(crate) fn name_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Why a header is invalid (turned into `Error::Corrupted` by the caller).
pub(crate) type Invalid = String;

impl SectionHeader {
    /// A zeroed header.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }

    /// A fresh header in state `Initializing` with an empty object table.
    pub fn new(kind: SectionKind, total_size: u64, creator: ProcessIdentity) -> Self {
        let mut h = Self::zeroed();
        h.magic = MAGIC;
        h.version = LAYOUT_VERSION;
        h.kind = kind.as_u32();
        h.total_size = total_size;
        h.data_offset = DATA_OFFSET;
        h.creator_pid = creator.pid;
        h.creator_start_time = creator.start_time;
        h.state = InitState::INITIALIZING;
        h.header_size = HEADER_SIZE as u32;
        h
    }

    /// Copies a header out of the first [`HEADER_SIZE`] bytes of `bytes`; `None` if
    /// there are fewer.
    pub fn read(bytes: &[u8]) -> Option<Self> {
        Self::read_from_prefix(bytes).ok().map(|(h, _)| h)
    }

    /// The header's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    /// The creator identity.
    pub fn creator(&self) -> ProcessIdentity {
        ProcessIdentity::from_parts(self.creator_pid, self.creator_start_time)
    }

    /// Validates the fixed fields; `available` is how many bytes really back the
    /// section (file size or mapping length). Does not look at the object table.
    pub(crate) fn validate_fixed(
        &self,
        available: u64,
    ) -> Result<(SectionKind, InitState), Invalid> {
        if self.magic != MAGIC {
            return Err(format!(
                "bad magic {:02x?} (not a culvert section)",
                self.magic
            ));
        }
        if self.version != LAYOUT_VERSION {
            return Err(format!(
                "layout version {} (this build reads version {LAYOUT_VERSION})",
                self.version
            ));
        }
        if self.header_size as usize != HEADER_SIZE {
            return Err(format!(
                "header size {} (expected {HEADER_SIZE})",
                self.header_size
            ));
        }
        if self.data_offset != DATA_OFFSET {
            return Err(format!(
                "data offset {} (expected {DATA_OFFSET})",
                self.data_offset
            ));
        }
        let kind = SectionKind::from_u32(self.kind)
            .ok_or_else(|| format!("unknown section kind {}", self.kind))?;
        let state = InitState::from_u32(self.state)
            .ok_or_else(|| format!("unknown init state {}", self.state))?;
        if self.total_size < DATA_OFFSET || self.total_size % PAGE != 0 {
            return Err(format!(
                "total size {} is not a multiple of {PAGE} of at least {DATA_OFFSET}",
                self.total_size
            ));
        }
        if self.total_size > available {
            return Err(format!(
                "header claims {} bytes but only {available} exist",
                self.total_size
            ));
        }
        if usize::try_from(self.total_size).is_err() || self.total_size > isize::MAX as u64 {
            return Err(format!(
                "total size {} does not fit in memory",
                self.total_size
            ));
        }
        Ok((kind, state))
    }

    /// Validates the object table against `total_size` (already validated).
    pub(crate) fn validate_objects(&self) -> Result<Vec<ObjectInfo>, Invalid> {
        let count = self.object_count as usize;
        if count > MAX_OBJECTS {
            return Err(format!("object count {count} exceeds {MAX_OBJECTS}"));
        }
        let mut out: Vec<ObjectInfo> = Vec::with_capacity(count);
        for (i, e) in self.objects[..count].iter().enumerate() {
            let name = decode_object_name(&e.name)
                .ok_or_else(|| format!("object #{i} has an invalid name"))?;
            if e.len == 0 {
                return Err(format!("object '{name}' has length 0"));
            }
            if !e.align.is_power_of_two() || e.align > MAX_OBJECT_ALIGN {
                return Err(format!("object '{name}' has invalid alignment {}", e.align));
            }
            if e.offset % u64::from(e.align) != 0 {
                return Err(format!(
                    "object '{name}' offset {} is not aligned to {}",
                    e.offset, e.align
                ));
            }
            let end = e.offset.checked_add(e.len);
            if e.offset < self.data_offset || !matches!(end, Some(end) if end <= self.total_size) {
                return Err(format!(
                    "object '{name}' ({} bytes at {}) lies outside the data area {}..{}",
                    e.len, e.offset, self.data_offset, self.total_size
                ));
            }
            if out.iter().any(|o| o.name == name) {
                return Err(format!("object name '{name}' appears twice"));
            }
            out.push(ObjectInfo {
                name,
                offset: e.offset,
                len: e.len,
                kind: e.kind,
                align: e.align,
            });
        }
        let mut spans: Vec<(u64, u64)> = out.iter().map(|o| (o.offset, o.offset + o.len)).collect();
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err("objects overlap".to_string());
        }
        Ok(out)
    }

    /// Full validation: fixed fields, then the object table; `available` is how many
    /// bytes really back the section. The error says what is wrong.
    pub fn validate(&self, available: u64) -> Result<HeaderInfo, String> {
        let (kind, state) = self.validate_fixed(available)?;
        let objects = self.validate_objects()?;
        Ok(HeaderInfo {
            kind,
            version: self.version,
            total_size: self.total_size,
            data_offset: self.data_offset,
            creator: self.creator(),
            state,
            objects,
        })
    }
}

/// Encodes an object name, or `None` if it is not `[A-Za-z0-9._-]{1,32}`.
pub(crate) fn encode_object_name(name: &str) -> Option<[u8; OBJECT_NAME_LEN]> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > OBJECT_NAME_LEN || !b.iter().all(|&c| name_byte_ok(c)) {
        return None;
    }
    let mut out = [0u8; OBJECT_NAME_LEN];
    out[..b.len()].copy_from_slice(b);
    Some(out)
}

/// Decodes a stored object name: valid bytes, then only NULs.
pub(crate) fn decode_object_name(raw: &[u8; OBJECT_NAME_LEN]) -> Option<String> {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(OBJECT_NAME_LEN);
    let (name, pad) = raw.split_at(len);
    if name.is_empty() || !name.iter().all(|&b| name_byte_ok(b)) || pad.iter().any(|&b| b != 0) {
        return None;
    }
    // All bytes are ASCII (checked above).
    Some(name.iter().map(|&b| b as char).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_header() -> SectionHeader {
        let mut h = SectionHeader::new(SectionKind::Pipe, 3 * PAGE, ProcessIdentity::nobody());
        h.state = InitState::READY;
        h.object_count = 2;
        h.objects[0] = ObjectEntry {
            name: encode_object_name("a").unwrap(),
            offset: DATA_OFFSET,
            len: 100,
            kind: 7,
            align: 64,
        };
        h.objects[1] = ObjectEntry {
            name: encode_object_name("b_very-long.name_of_32_bytes_xyz").unwrap(),
            offset: DATA_OFFSET + 128,
            len: PAGE,
            kind: 8,
            align: 128,
        };
        h
    }

    #[test]
    fn valid_header_round_trips() {
        let h = ready_header();
        let back = SectionHeader::read(h.bytes()).unwrap();
        assert_eq!(back, h);
        let info = back.validate(3 * PAGE).unwrap();
        assert_eq!(info.kind, SectionKind::Pipe);
        assert_eq!(info.state, InitState::Ready);
        assert_eq!(info.objects.len(), 2);
        assert_eq!(info.objects[1].name, "b_very-long.name_of_32_bytes_xyz");
    }

    #[test]
    fn invalid_headers_are_rejected() {
        type Mutation = Box<dyn Fn(&mut SectionHeader)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|h| h.magic[0] ^= 1),
            Box::new(|h| h.version = 2),
            Box::new(|h| h.kind = 0),
            Box::new(|h| h.kind = 99),
            Box::new(|h| h.state = 3),
            Box::new(|h| h.total_size = 4 * PAGE),
            Box::new(|h| h.total_size = PAGE),
            Box::new(|h| h.total_size = 2 * PAGE + 1),
            Box::new(|h| h.object_count = 17),
            Box::new(|h| h.objects[0].offset = 0),
            Box::new(|h| h.objects[0].offset = u64::MAX - 64),
            Box::new(|h| h.objects[0].len = 0),
            Box::new(|h| h.objects[0].align = 3),
            Box::new(|h| h.objects[0].align = 8192),
            Box::new(|h| h.objects[0].offset = DATA_OFFSET + 1),
            Box::new(|h| h.objects[1].offset = DATA_OFFSET + 64),
            Box::new(|h| h.objects[1].name = h.objects[0].name),
            Box::new(|h| h.objects[0].name = [0; OBJECT_NAME_LEN]),
            Box::new(|h| h.objects[0].name[5] = b'x'),
            Box::new(|h| h.objects[0].name[0] = b'/'),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut h = ready_header();
            f(&mut h);
            assert!(h.validate(3 * PAGE).is_err(), "case {i} accepted");
        }
    }

    #[test]
    fn short_input_has_no_header() {
        assert!(SectionHeader::read(&[0u8; HEADER_SIZE - 1]).is_none());
    }

    #[test]
    fn kinds_round_trip_and_unknown_is_none() {
        for raw in 1..=7 {
            assert_eq!(SectionKind::from_u32(raw).unwrap().as_u32(), raw);
        }
        assert_eq!(SectionKind::from_u32(0), None);
        assert_eq!(SectionKind::from_u32(8), None);
    }
}
