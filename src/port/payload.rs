//! [`Payload`] and [`View`]: a received message, copied inline or read in place.

use super::heap::{Block, Heap};
use crate::{Error, Result};

/// A received message: its bytes copied out of the ring (inline) or lying in a shared
/// view block that this process holds until the payload is dropped.
#[derive(Debug, Default)]
pub struct Payload(Repr);

#[derive(Debug)]
enum Repr {
    /// Copied out of the ring into the payload itself: no allocation. Invariant:
    /// `len <= SMALL`.
    Small {
        len: u8,
        bytes: [u8; SMALL],
    },
    Inline(Vec<u8>),
    View(View),
}

/// Largest payload kept in the payload value itself (a typical request or reply of a
/// call; larger inline ones are copied into a `Vec`).
const SMALL: usize = 120;

impl Default for Repr {
    fn default() -> Self {
        Repr::Inline(Vec::new())
    }
}

impl Payload {
    /// A copy of `bytes`: kept in the payload value when small, else in a `Vec`.
    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        if bytes.len() > SMALL {
            return Payload(Repr::Inline(bytes.to_vec()));
        }
        let mut small = [0u8; SMALL];
        small[..bytes.len()].copy_from_slice(bytes);
        Payload(Repr::Small {
            len: bytes.len() as u8,
            bytes: small,
        })
    }

    pub(crate) fn view(view: View) -> Self {
        Payload(Repr::View(view))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the payload travelled in a view (it was above `inline_max`).
    pub fn is_view(&self) -> bool {
        matches!(self.0, Repr::View(_))
    }

    /// The view, if the payload travelled in one.
    pub fn as_view(&self) -> Option<&View> {
        match &self.0 {
            Repr::View(v) => Some(v),
            Repr::Small { .. } | Repr::Inline(_) => None,
        }
    }

    /// The bytes, if the payload was copied inline.
    pub fn as_inline(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::View(_) => None,
            _ => Some(self.as_slice()),
        }
    }

    /// The bytes, wherever they are (a view is read in place, no copy).
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Small { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Inline(v) => v,
            Repr::View(v) => v.as_slice(),
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    /// The bytes as a vector (an inline payload is moved, a view copied and freed).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Inline(v) => v,
            Repr::Small { .. } | Repr::View(_) => self.as_slice().to_vec(),
        }
    }
}

/// A block of a shared view heap that this process holds: the payload, read in place.
///
/// The block was validated when it arrived (held by this process, current generation,
/// inside the heap), and returns to its heap when the view is dropped. Honest peers do
/// not write a block they handed over, so reading it is reading a stable message.
#[derive(Debug)]
pub struct View {
    heap: Heap,
    block: Block,
    /// Our packed identity (the holder recorded in the heap).
    me: u64,
}

impl View {
    pub(crate) fn new(heap: Heap, block: Block, me: u64) -> Self {
        View { heap, block, me }
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.block.len as usize
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.block.len == 0
    }

    /// The block's generation.
    pub fn generation(&self) -> u64 {
        self.block.gen
    }

    /// Byte offset of the block in its heap.
    pub fn offset(&self) -> u64 {
        self.block.descriptor().offset
    }

    /// Copies bytes from `offset` into `buf`; returns how many (fewer at the end).
    /// `InvalidArgument` if `offset` is beyond the end.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        let len = self.len();
        if offset > len {
            return Err(Error::InvalidArgument {
                what: format!("view offset {offset} beyond its length {len}"),
            });
        }
        let n = buf.len().min(len - offset);
        buf[..n].copy_from_slice(&self.as_slice()[offset..offset + n]);
        Ok(n)
    }

    /// The payload in place.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: a validated block inside the data area (Block invariant) that this process
        // holds, so no honest peer writes it until Drop frees it; `self.heap` keeps it mapped.
        unsafe { std::slice::from_raw_parts(self.heap.data_ptr(&self.block), self.len()) }
    }

    /// A copy of the payload.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.heap.table().free(&self.block, self.me);
    }
}
