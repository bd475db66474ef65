//! Single-producer single-consumer rings: [`ByteRing`] and [`MessageRing`].
//!
//! One writer endpoint and one reader endpoint (possibly in different processes) share
//! a control block and a data area of `capacity` bytes (a power of two). The writer
//! owns `tail`, the reader owns `head`; both are `u64` positions that only grow, and
//! `tail - head` (the bytes in flight) is always in `0..=capacity`. Each side keeps a
//! *cached* copy of the other's position and re-reads the shared one only when the
//! cached value shows less than the call asks for (fewer free bytes than a write wants,
//! fewer committed bytes than a read or grant could take), so in steady state each
//! side writes its own cache line and reads the other's only once per batch, and no
//! call returns less than was there when it looked.
//!
//! ```
//! use culvert_ring::{spsc, Deadline, Region};
//!
//! let config = spsc::Config::messages(4096, 1024);
//! let region = Region::heap(spsc::MessageRing::required_size(&config).unwrap()).unwrap();
//! spsc::MessageRing::init(&region, &config).unwrap();
//! let mut writer = spsc::MessageWriter::attach(&region).unwrap();
//! let mut reader = spsc::MessageReader::attach(&region).unwrap();
//! writer.write(b"hello", Deadline::never()).unwrap();
//! let mut buf = [0u8; 64];
//! let n = reader.read(&mut buf, Deadline::never()).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```
//!
//! Closing: either side may `close()` (dropping an endpoint closes it). A reader drains
//! what was committed, then gets [`Error::Closed`](crate::Error::Closed); a writer whose
//! reader closed gets `Closed` at once. A peer that dies is found through its owner
//! identity within about [`LIVENESS_RECHECK_INTERVAL`](culvert_sync::LIVENESS_RECHECK_INTERVAL)
//! by any call that would block, blocking or not (each endpoint checks at most once
//! per interval), which then reports [`Error::PeerDied`](crate::Error::PeerDied)
//! instead of waiting or `WouldBlock` (a reader only after draining everything the
//! writer committed). A writer that dies between `reserve` and `commit`
//! leaves nothing visible: the reader never sees a half-written record.

mod byte;
mod control;
mod core;
mod echo;
mod endpoint;
mod message;

pub use byte::{ByteReadGrant, ByteReader, ByteRing, ByteWriteGrant, ByteWriter};
pub use control::Config;
pub use message::{MessageGrant, MessageReadGrant, MessageReader, MessageRing, MessageWriter};
