//! # culvert — lock-free shared-memory channels for Linux
//!
//! The facade crate. It re-exports the layers below and will own the channel layers
//! built only from sections and rings (DESIGN §7):
//!
//! * `pipe` — two-way byte or message pipes, anonymous and named (Windows named-pipe
//!   semantics) — *not built yet (issue 4)*;
//! * `mailslot` — one-way, many writers, broadcast groups, never silent loss —
//!   *not built yet (issue 5)*;
//! * `port` — ALPC-like request/reply with inline copies and shared-memory views —
//!   *not built yet (issue 6)*.
//!
//! What exists today: [`sync`] (cross-process wait/wake), [`section`] (shared memory
//! objects) and [`ring`] (the rings the layers will be built on).
//!
//! This crate must never carry data or control through a socket, an OS pipe or a kernel
//! message queue: the kernel maps memory, sleeps and wakes, and tells who is alive.

pub use culvert_ring as ring;
pub use culvert_section as section;
pub use culvert_sync as sync;
