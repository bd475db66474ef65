//! # culvert-section — shared memory objects
//!
//! The layer above `culvert-sync`. It owns:
//!
//! * [`Section`] — a named (`/dev/shm/culvert.<name>`, or under `CULVERT_ROOT` /
//!   [`SectionOptions::root`]) or anonymous (sealed memfd) shared-memory object, created
//!   exclusively with mode `0600` by default, mapped `MAP_SHARED` with `memmap2::MmapRaw`;
//! * the [`layout`] of its header: magic, version, [`SectionKind`], total size, creator
//!   [`ProcessIdentity`](culvert_sync::ProcessIdentity), the [`InitState`] word
//!   (`Initializing → Ready`, or `Poisoned`), and a table of up to 16 named sub-objects so
//!   one section can hold several rings;
//! * [`Region`] — a bounded span of memory (a sub-object, or heap memory in tests) that
//!   the ring layer lays its structures out in;
//! * [`view`] — the one way to turn bytes of a region into a reference:
//!   [`SharedStruct`] (a `#[repr(C)]` struct of atomics, valid for any bit pattern),
//!   [`View`] and [`SliceView`] (size and alignment checked once), [`Region::view`];
//! * [`Error`] — typed, actionable errors (`NotFound`, `Stale`, `NoSpace`…);
//! * [`replace`] — [`Section::create_replacing_stale`]: create a name, replacing a
//!   section its owner left behind without ever removing someone else's fresh one;
//! * [`heap`] — the view heap: a crash-safe page allocator that lets any layer pass a
//!   large message as a view instead of copying it;
//! * [`inherit`] — passing a section's descriptor to a child process;
//! * [`fuzzing`] — the body of the `section_open` fuzz target and its seeds.
//!
//! Every byte of a mapped section may be written by another process, so this crate never
//! trusts it: the header is copied out and validated (zerocopy), sizes are checked with
//! `fstat` before mapping (no `SIGBUS` from a short file), offsets are bounds-checked, and
//! waiting for `Ready` has a deadline and notices a dead creator. It must never know
//! about rings, pipes or ports, and never hand out `&[u8]` to shared bytes.

#![warn(missing_docs)]

mod error;
pub mod fuzzing;
pub mod heap;
pub mod inherit;
pub mod layout;
mod options;
mod region;
pub mod replace;
mod section;
pub mod view;

pub use error::{Error, Result};
pub use inherit::SECTION_FD_ENV;
pub use layout::{HeaderInfo, InitState, ObjectInfo, SectionKind};
pub use options::{
    list, validate_name, SectionOptions, DEFAULT_OPEN_TIMEOUT, DEFAULT_ROOT, MAX_NAME_LEN, ROOT_ENV,
};
pub use region::{Region, REGION_ALIGN};
pub use section::Section;
pub use view::{SharedStruct, SliceView, View};
