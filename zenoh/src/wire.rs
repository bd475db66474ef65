//! The bridge-to-bridge frame: a small, versioned, length-checked header and a body.
//!
//! Every sample a bridge publishes or sends in a query is one [`Frame`]:
//!
//! ```text
//! 0      2    3     4      5..8      8..16   16..20   20..
//! "CZ"   ver  kind  flags  reserved  seq     len      body (exactly len bytes)
//! ```
//!
//! All integers little-endian. [`Frame::decode`] checks the magic, the version, the
//! kind, that `len` is at most [`MAX_BODY`] and that exactly `len` bytes follow;
//! anything else is a [`WireError`] — bytes from the network never panic the bridge.
//!
//! How a connection ends is said by the last frame of a direction: [`Kind::Close`]
//! (pipes: the far end closed, its local peer reads end of stream), [`Kind::PeerDied`]
//! (the far peer's process died: the local peer reads what came before, then
//! `PeerDied`) or [`Kind::Abort`] (the connection failed: torn down, seen as a close).
//! A bridge that predates [`Kind::PeerDied`] rejects it as an unknown kind and aborts
//! the connection, so its local peer sees a close.

/// Frame format version.
pub const VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 20;
/// Largest body a frame may carry (a message up to 64 MiB).
pub const MAX_BODY: usize = 64 << 20;
const MAGIC: [u8; 2] = *b"CZ";

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Stream data: a message (message pipes) or a chunk of bytes (byte pipes).
    Data = 1,
    /// The sender will send no more data in this direction (half close).
    Close = 2,
    /// The connection ends on the sender's side for a reason other than a death (a
    /// malformed frame, a local error, a proxy never connected to, the sender's
    /// bridge stopping): tear it down; the receiver's local peer sees a close
    /// (`Closed`).
    Abort = 3,
    /// Flow control: `seq` is the cumulative count of bytes the receiver consumed.
    Credit = 4,
    /// An open request (query payload); the body is a redirector request.
    Open = 5,
    /// The answer to an open; the body is a redirector reply.
    OpenReply = 6,
    /// One mailslot message; `seq` is the writer's sequence number.
    Slot = 7,
    /// Mailslot messages lost before reaching the network; `seq` is how many.
    Lost = 8,
    /// A port call or datagram (request side); `seq` is the call id.
    Call = 9,
    /// A port reply; `seq` is the call id.
    CallReply = 10,
    /// The sender's local peer process died: after the data frames before it, the
    /// receiver makes its own local peer see that death (`PeerDied`), not a close.
    /// The body is empty.
    PeerDied = 11,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Data,
            2 => Kind::Close,
            3 => Kind::Abort,
            4 => Kind::Credit,
            5 => Kind::Open,
            6 => Kind::OpenReply,
            7 => Kind::Slot,
            8 => Kind::Lost,
            9 => Kind::Call,
            10 => Kind::CallReply,
            11 => Kind::PeerDied,
            _ => return None,
        })
    }
}

/// A malformed frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than a header.
    #[error("frame of {0} bytes is shorter than its header")]
    Short(usize),
    /// Not a culvert frame.
    #[error("bad frame magic")]
    Magic,
    /// A version this bridge does not speak.
    #[error("unsupported frame version {0}")]
    Version(u8),
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// The length field disagrees with the bytes, or exceeds [`MAX_BODY`].
    #[error("frame length {claimed} does not match the {actual} bytes that follow")]
    Length {
        /// The header's claim.
        claimed: u64,
        /// Bytes actually after the header.
        actual: usize,
    },
    /// A frame of a kind not expected here.
    #[error("unexpected {0:?} frame")]
    Unexpected(Kind),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What it carries.
    pub kind: Kind,
    /// Kind-specific flags (Data: bit 0 = a message, not bytes).
    pub flags: u8,
    /// Sequence number, credit or call id, by kind.
    pub seq: u64,
    /// The body.
    pub body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A frame.
    pub fn new(kind: Kind, seq: u64, body: &'a [u8]) -> Self {
        Frame {
            kind,
            flags: 0,
            seq,
            body,
        }
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.push(self.flags);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        out.extend_from_slice(self.body);
        out
    }

    /// Parses a frame.
    ///
    /// # Errors
    /// A [`WireError`] saying what is malformed.
    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Short(bytes.len()));
        }
        if bytes[..2] != MAGIC {
            return Err(WireError::Magic);
        }
        if bytes[2] != VERSION {
            return Err(WireError::Version(bytes[2]));
        }
        let kind = Kind::from_u8(bytes[3]).ok_or(WireError::Kind(bytes[3]))?;
        let flags = bytes[4];
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[8..16]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[16..20]);
        let claimed = u32::from_le_bytes(len) as u64;
        let body = &bytes[HEADER_LEN..];
        if claimed != body.len() as u64 || body.len() > MAX_BODY {
            return Err(WireError::Length {
                claimed,
                actual: body.len(),
            });
        }
        Ok(Frame {
            kind,
            flags,
            seq: u64::from_le_bytes(seq),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = Frame::new(Kind::Slot, 42, b"hello");
        let bytes = f.encode();
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        let died = Frame::new(Kind::PeerDied, 0, &[]).encode();
        assert_eq!(Frame::decode(&died).unwrap().kind, Kind::PeerDied);
    }

    #[test]
    fn hostile_bytes_are_typed_errors() {
        let good = Frame::new(Kind::Data, 7, b"abc").encode();
        for cut in 0..good.len() {
            assert!(Frame::decode(&good[..cut]).is_err());
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Frame::decode(&b), Err(WireError::Magic));
        let mut b = good.clone();
        b[2] = 9;
        assert_eq!(Frame::decode(&b), Err(WireError::Version(9)));
        let mut b = good.clone();
        b[3] = 200;
        assert_eq!(Frame::decode(&b), Err(WireError::Kind(200)));
        let mut b = good.clone();
        b[3] = 12;
        assert_eq!(Frame::decode(&b), Err(WireError::Kind(12)));
        let mut b = good.clone();
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Frame::decode(&b), Err(WireError::Length { .. })));
        // Pseudo-random garbage never panics.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..2000usize {
            let v: Vec<u8> = (0..(n % 64))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Frame::decode(&v);
        }
    }
}
