//! [`Loan`]: room in a view heap lent to this process for a message written in place.
//!
//! A client borrows room in its own heap for a request ([`PortClient::loan`], sent with
//! [`PortClient::call_loaned`]); a server borrows room in its heap for a reply
//! ([`Incoming::loan_reply`], sent with [`Incoming::reply_loaned`]). Either way the
//! bytes are this process's to fill until the loan is sent, and the receiver then reads
//! them where they lie: no copy on either side. A loan dropped unsent gives its room
//! back.
//!
//! [`PortClient::loan`]: super::PortClient::loan
//! [`PortClient::call_loaned`]: super::PortClient::call_loaned
//! [`Incoming::loan_reply`]: super::Incoming::loan_reply
//! [`Incoming::reply_loaned`]: super::Incoming::reply_loaned

use std::any::Any;
use std::sync::Arc;

use culvert_sync::Deadline;

use super::heap::{Block, Heap};
use crate::{Error, Result};

/// Room in a view heap lent for a message written in place (see the module doc).
/// Dropping it unsent gives the room back.
pub struct Loan {
    /// Who lent the room (a client's or a server's state); only it sends the loan.
    lender: Arc<dyn Any + Send + Sync>,
    /// The heap the block lies in; keeps it mapped.
    heap: Heap,
    /// This process's identity, the block's holder.
    me: u64,
    /// Invariant: `Some` until [`take`](Self::take); held by `me`, inside `heap`.
    block: Option<Block>,
}

impl Loan {
    /// Borrows `len` bytes of `heap` for `me`, lent by `lender`: `MessageTooLarge`
    /// above `max_message` (or the heap's size), else waits until `deadline` for room
    /// as long as `check` (the peer's liveness) passes.
    pub(crate) fn borrow(
        lender: Arc<dyn Any + Send + Sync>,
        heap: &Heap,
        me: u64,
        len: usize,
        max_message: usize,
        deadline: Deadline,
        check: impl FnMut() -> Result<()>,
    ) -> Result<Self> {
        if len > max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: max_message,
            });
        }
        let block = heap.alloc(len as u64, me, deadline, check)?;
        Ok(Self {
            lender,
            heap: heap.clone(),
            me,
            block: Some(block),
        })
    }

    /// Whether `who` lent this room.
    pub(crate) fn lent_by<T>(&self, who: &Arc<T>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.lender), Arc::as_ptr(who))
    }

    /// The block, to be sent: from here on the caller hands it over or frees it.
    pub(crate) fn take(&mut self) -> Option<Block> {
        self.block.take()
    }

    /// The lent bytes, to fill with the message. Their initial contents are
    /// unspecified.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let Some(b) = &self.block else {
            return &mut [];
        };
        // SAFETY: the block lies inside the heap's data area (Block invariant) with
        // `len <= pages * PAGE`; this process holds it, which no honest peer touches,
        // and `self.heap` keeps the mapping alive while the slice borrows `self`.
        unsafe { std::slice::from_raw_parts_mut(self.heap.data_ptr(b), b.len as usize) }
    }

    /// Bytes lent.
    pub fn len(&self) -> usize {
        self.block.map_or(0, |b| b.len as usize)
    }

    /// Whether no bytes were lent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Loan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan").field("len", &self.len()).finish()
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        if let Some(b) = self.block.take() {
            self.heap.table().free(&b, self.me);
        }
    }
}
