//! # culvert-ring — the rings every channel is built from
//!
//! Owns the ring algorithms, laid out in a [`Region`] of a section (or of
//! the heap, for tests and loom models):
//!
//! | ring | producers | consumers | framing | when full |
//! |---|---|---|---|---|
//! | [`spsc::ByteRing`] | 1 | 1 | byte stream | wait / `WouldBlock` |
//! | [`spsc::MessageRing`] | 1 | 1 | length-prefixed messages | wait / `WouldBlock` |
//! | [`mpmc::MessageRing`] | N | M | messages, each whole to one consumer | wait / `WouldBlock` |
//! | [`mpmc::ByteRing`] | N | M | byte records never interleaved | wait / `WouldBlock` |
//! | [`broadcast::Ring`] | N | every reader | messages | overwrites the oldest; `Overrun` |
//!
//! Every ring is created with `init(region, &config)` by the section's creator and then
//! reached by endpoints that `attach` to the same region, in this or another process.
//! Positions are `u64`s that only grow; every index, length and position read from
//! shared memory is checked before use, and a violation gives
//! [`Error::Corrupted`] on that endpoint only. Blocking calls take a
//! [`WaitStrategy`] and a [`Deadline`]; sleepers re-check their peer's liveness at
//! least every [`culvert_sync::LIVENESS_RECHECK_INTERVAL`].
//!
//! This crate must never know about pipes, mailslots or ports, never allocate per
//! message, and never trust shared memory.
//!
//! [`Region`]: culvert_section::Region
//! [`WaitStrategy`]: culvert_sync::WaitStrategy
//! [`Deadline`]: culvert_sync::Deadline

#![warn(missing_docs)]

pub mod broadcast;
pub mod diag;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod layout;
pub mod mpmc;
pub mod spsc;

pub use culvert_section::Region;
pub use culvert_sync::{Deadline, WaitStrategy};
pub use endpoint::{Endpoint, WriteEndpoint};
pub use error::{Error, Result};
