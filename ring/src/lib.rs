//! # culvert-ring — the rings every channel is built from
//!
//! Owns the ring algorithms of DESIGN §6 over memory in a section: `spsc`, `mpmc` and
//! `broadcast` rings in byte and message framing. It must never know about pipes,
//! mailslots or ports, and never trust a value read from shared memory.
