//! Message records: what crosses the request and reply rings.
//!
//! Every record is a 32-byte little-endian header followed by either the inline payload
//! or a 24-byte view [`Descriptor`]:
//!
//! ```text
//! 0  kind u8   1  flags u8 (bit 0: view)   2..4 reserved (0)
//! 4  connection index u32   8  connection epoch u32   12..16 reserved (0)
//! 16 call id u64            24 payload length u64
//! 32 inline payload (exactly `length` bytes) | descriptor {offset, len, gen} (u64 each)
//! ```
//!
//! Decoding never trusts the bytes: unknown kinds or flags, non-zero reserved bytes,
//! lengths that disagree with the record, and bodies on bodiless kinds are all
//! `Corrupted`.

use super::heap::Descriptor;
use crate::{Error, Result};

/// Header bytes.
pub(crate) const HEADER_LEN: usize = 32;
/// Descriptor bytes.
pub(crate) const DESCRIPTOR_LEN: usize = 24;

/// Client → server: a call expecting a reply.
pub(crate) const KIND_REQUEST: u8 = 1;
/// Client → server: a datagram (no reply).
pub(crate) const KIND_DATAGRAM: u8 = 2;
/// Client → server: the client gave up on call `id`.
pub(crate) const KIND_CANCEL: u8 = 3;
/// Server → client: the reply to call `id`.
pub(crate) const KIND_REPLY: u8 = 0x11;
/// Server → client: call `id` was dropped without a reply.
pub(crate) const KIND_NO_REPLY: u8 = 0x12;
/// Server → client: the server could not send the reply to call `id`; the inline
/// body says why (UTF-8 text, at most [`FAILURE_TEXT_MAX`] bytes).
pub(crate) const KIND_REPLY_FAILED: u8 = 0x13;

/// Longest reason text of a [`KIND_REPLY_FAILED`] record.
pub(crate) const FAILURE_TEXT_MAX: usize = 256;

/// Flag: the body is a view descriptor.
pub(crate) const FLAG_VIEW: u8 = 1;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: u8,
    pub flags: u8,
    pub conn: u32,
    pub epoch: u32,
    pub id: u64,
    pub len: u64,
}

/// A record's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// No body (cancel, no-reply).
    None,
    /// Inline payload.
    Inline(&'a [u8]),
    /// Payload in a view.
    View(Descriptor),
}

impl Body<'_> {
    /// Bytes the body takes in a record after the header.
    pub(crate) fn len(&self) -> usize {
        match self {
            Body::None => 0,
            Body::Inline(b) => b.len(),
            Body::View(_) => 24,
        }
    }
}

fn corrupted(what: &str) -> Error {
    Error::Corrupted {
        what: format!("port record: {what}"),
    }
}

/// Replaces `out` with the record of `body` (see [`encode_into`]).
pub(crate) fn encode(out: &mut Vec<u8>, kind: u8, conn: u32, epoch: u32, id: u64, body: Body<'_>) {
    out.clear();
    out.resize(HEADER_LEN + body.len(), 0);
    encode_into(out, kind, conn, epoch, id, body);
}

/// Writes the record of `body` into `dst`, which is exactly `HEADER_LEN + body.len()`
/// bytes (a ring slot written in place, or a buffer).
pub(crate) fn encode_into(
    dst: &mut [u8],
    kind: u8,
    conn: u32,
    epoch: u32,
    id: u64,
    body: Body<'_>,
) {
    let (flags, len) = match body {
        Body::None => (0, 0),
        Body::Inline(b) => (0, b.len() as u64),
        Body::View(d) => (FLAG_VIEW, d.len),
    };
    let (h, rest) = dst.split_at_mut(HEADER_LEN);
    h[0] = kind;
    h[1] = flags;
    h[2..4].fill(0);
    h[4..8].copy_from_slice(&conn.to_le_bytes());
    h[8..12].copy_from_slice(&epoch.to_le_bytes());
    h[12..16].fill(0);
    h[16..24].copy_from_slice(&id.to_le_bytes());
    h[24..32].copy_from_slice(&len.to_le_bytes());
    match body {
        Body::None => {}
        Body::Inline(b) => rest.copy_from_slice(b),
        Body::View(d) => {
            rest[..8].copy_from_slice(&d.offset.to_le_bytes());
            rest[8..16].copy_from_slice(&d.len.to_le_bytes());
            rest[16..24].copy_from_slice(&d.gen.to_le_bytes());
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Decodes a record whose kind must be one of `allowed`.
pub(crate) fn decode<'a>(bytes: &'a [u8], allowed: &[u8]) -> Result<(Header, Body<'a>)> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupted("shorter than its header"));
    }
    let h = Header {
        kind: bytes[0],
        flags: bytes[1],
        conn: u32_at(bytes, 4),
        epoch: u32_at(bytes, 8),
        id: u64_at(bytes, 16),
        len: u64_at(bytes, 24),
    };
    if !allowed.contains(&h.kind) {
        return Err(corrupted("unknown kind"));
    }
    if bytes[2] != 0 || bytes[3] != 0 || u32_at(bytes, 12) != 0 {
        return Err(corrupted("reserved bytes set"));
    }
    if h.flags & !FLAG_VIEW != 0 {
        return Err(corrupted("unknown flags"));
    }
    let rest = &bytes[HEADER_LEN..];
    let bodiless = matches!(h.kind, KIND_CANCEL | KIND_NO_REPLY);
    if bodiless {
        if h.flags != 0 || h.len != 0 || !rest.is_empty() {
            return Err(corrupted("body on a bodiless record"));
        }
        return Ok((h, Body::None));
    }
    if h.flags & FLAG_VIEW != 0 {
        if rest.len() != DESCRIPTOR_LEN {
            return Err(corrupted("view record of the wrong length"));
        }
        let d = Descriptor {
            offset: u64_at(rest, 0),
            len: u64_at(rest, 8),
            gen: u64_at(rest, 16),
        };
        if d.len != h.len {
            return Err(corrupted("view length disagrees with the header"));
        }
        return Ok((h, Body::View(d)));
    }
    if rest.len() as u64 != h.len {
        return Err(corrupted("inline length disagrees with the record"));
    }
    Ok((h, Body::Inline(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut v = Vec::new();
        encode(&mut v, KIND_REQUEST, 3, 9, 77, Body::Inline(b"abc"));
        let (h, b) = decode(&v, &[KIND_REQUEST]).unwrap();
        assert_eq!((h.conn, h.epoch, h.id, h.len), (3, 9, 77, 3));
        assert_eq!(b, Body::Inline(b"abc"));
        let d = Descriptor {
            offset: 4096,
            len: 5,
            gen: 2,
        };
        encode(&mut v, KIND_REPLY, 0, 0, 1, Body::View(d));
        assert_eq!(decode(&v, &[KIND_REPLY]).unwrap().1, Body::View(d));
        assert!(decode(&v, &[KIND_REQUEST]).is_err());
        encode(&mut v, KIND_CANCEL, 1, 1, 5, Body::None);
        assert_eq!(decode(&v, &[KIND_CANCEL]).unwrap().1, Body::None);
        v.push(0);
        assert!(decode(&v, &[KIND_CANCEL]).is_err());
    }
}
