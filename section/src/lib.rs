//! # culvert-section — shared memory objects
//!
//! (Being built: see issue 2.) Owns [`Region`], the span of memory rings are laid out in.

mod region;

pub use region::{Region, REGION_ALIGN};
