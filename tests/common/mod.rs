//! Helpers of this crate's integration tests, by layer; each test binary uses what it
//! needs. The role harness, supervision, waits, roots and byte patterns they build on
//! are `culvert_testkit`'s.

#![allow(dead_code)]

pub mod mailslot;
pub mod pipe;
pub mod port;
