//! Byte pipes on SPSC byte rings: the exclusive byte end's [`EndIo`], and
//! [`write_bytes`], the write loop every byte pipe (exclusive or shared) uses.
//!
//! A blocking write writes all of its bytes, or as many as it could before its
//! deadline (then it returns the count); a non-blocking one writes what fits now. A
//! read returns what is committed (waiting for the first byte); end of stream is the
//! peer's outcome (`Closed` or `PeerDied`) once everything committed was read.

use culvert_ring::{spsc, Endpoint as _};
use culvert_sync::Deadline;

use super::super::options::{MessageRead, Peek};
use super::rings::{Duplex, EndIo, Rings};
use super::{Base, Io};
use crate::{Error, Result};

/// The exclusive byte end.
pub(super) type ByteRings = Duplex<spsc::ByteWriter, spsc::ByteReader>;

/// Writes `buf` with `op` (one ring write: `op(bytes, None)` never waits,
/// `op(bytes, Some(d))` may wait until `d`): all of it in blocking mode unless the
/// deadline passes part-way (then the count); what fits in non-blocking mode. The
/// reader going away fails the write.
pub(super) fn write_bytes(
    base: &mut Base,
    buf: &[u8],
    deadline: Deadline,
    mut op: impl FnMut(&[u8], Option<Deadline>) -> culvert_ring::Result<usize>,
) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match base.ring_op(deadline, |wait| op(&buf[done..], wait)) {
            Ok(n) => done += n,
            Err(Error::Timeout | Error::WouldBlock) if done > 0 => return Ok(done),
            Err(e) => return Err(e),
        }
        if base.nonblocking {
            break;
        }
    }
    Ok(done)
}

impl ByteRings {
    /// The gathering write: `Some(n)` when `n > 0` bytes of `bufs` went into the ring
    /// in one publish; `None` when the ring has no room now (the caller then writes the
    /// usual way, which waits). The caller checked the end and the peer.
    pub(super) fn gather(&mut self, bufs: &[std::io::IoSlice<'_>]) -> Result<Option<usize>> {
        let Some(w) = &mut self.tx else {
            return Err(Error::Closed);
        };
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut grant = match w.reserve(total) {
            Ok(g) => g,
            Err(culvert_ring::Error::WouldBlock) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let room = grant.as_mut_slice();
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(room.len() - n);
            room[n..n + take].copy_from_slice(&b[..take]);
            n += take;
            if n == room.len() {
                break;
            }
        }
        grant.commit(n);
        Ok(Some(n))
    }
}

/// The calls every byte pipe (exclusive or shared) makes alike, for an [`EndIo`]
/// impl whose rings (`tx` with `try_write` / `write`, `rx` with `try_read` / `read`)
/// are at `self.$rings`: writes through [`write_bytes`], reads of what is committed.
macro_rules! byte_pipe_io {
    ($($rings:ident)?) => {
        fn write(&mut self, base: &mut Base, buf: &[u8], deadline: Deadline) -> Result<usize> {
            let Some(w) = &mut self$(.$rings)?.tx else {
                return Err(Error::Closed);
            };
            $crate::pipe::end::bytes::write_bytes(base, buf, deadline, |bytes, wait| match wait {
                None => w.try_write(bytes),
                Some(d) => w.write(bytes, d),
            })
        }

        fn read_message(
            &mut self,
            base: &mut Base,
            buf: &mut [u8],
            deadline: Deadline,
        ) -> Result<MessageRead> {
            let len = self.read_bytes(base, buf, deadline)?;
            Ok(MessageRead { len, more: false })
        }

        fn read_bytes(
            &mut self,
            base: &mut Base,
            buf: &mut [u8],
            deadline: Deadline,
        ) -> Result<usize> {
            let Some(r) = &mut self$(.$rings)?.rx else {
                return Err(Error::Closed);
            };
            base.ring_op(deadline, |wait| match wait {
                None => r.try_read(buf),
                Some(d) => r.read(buf, d),
            })
        }

        fn in_message(&self) -> bool {
            false
        }
    };
}
pub(super) use byte_pipe_io;

impl EndIo for ByteRings {
    byte_pipe_io!();

    fn peek(&mut self, _base: &mut Base) -> Result<Option<Peek>> {
        let Some(r) = &mut self.rx else {
            return Err(Error::Closed);
        };
        let n = r.bytes_available()?;
        if n == 0 && r.is_closed() && r.bytes_available()? == 0 {
            // The writer closed its side (it sets the flag after its last commit) and
            // everything was read: end of stream.
            return Err(Error::Closed);
        }
        Ok((n > 0).then_some(Peek {
            bytes_available: n,
            next_message_len: None,
        }))
    }

    fn leave(&mut self, base: &mut Base) {
        self.close();
        base.leave_exclusive();
    }

    fn take_write_half(&mut self) -> Option<Io> {
        Some(Io::Bytes(Duplex::take_write_half(self)))
    }

    fn rings(&self) -> &dyn Rings {
        self
    }

    fn rings_mut(&mut self) -> &mut dyn Rings {
        self
    }
}
