//! The workloads, written once over `Read + Write` so every byte-carrying transport
//! (OS pipes, Unix sockets, culvert pipes) runs exactly the same loop.
//!
//! * ping-pong: the parent writes `size` bytes and reads `size` back, timing each round
//!   trip with `Instant` (its cost, ~20-40 ns, is in every transport's figure alike);
//! * stream: the parent writes for a fixed time, then closes; the peer reads into a
//!   buffer, touches every byte, and times itself from its first byte to end of stream;
//! * call: the parent writes a request and reads the reply; the peer reads the whole
//!   request, touches every byte, and replies.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::samples::Samples;
use super::Duplex;

/// XOR-folds every byte of `buf` (so the reader really touches each byte).
#[inline]
pub fn touch(buf: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut chunks = buf.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc ^= u64::from_ne_bytes(w);
    }
    for &b in chunks.remainder() {
        acc ^= u64::from(b);
    }
    acc
}

/// Whether an I/O error means "the other side is gone / end of stream".
pub fn is_end(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Runs `round` (one timed operation) for `warmup`, then for `duration` recording each
/// duration in ns.
pub fn timed_loop(
    warmup: Duration,
    duration: Duration,
    round: impl FnMut() -> io::Result<()>,
) -> io::Result<Samples> {
    timed_loop_with_gaps(warmup, duration, Duration::ZERO, round)
}

/// [`timed_loop`], sleeping `gap` (untimed) after each round.
pub fn timed_loop_with_gaps(
    warmup: Duration,
    duration: Duration,
    gap: Duration,
    mut round: impl FnMut() -> io::Result<()>,
) -> io::Result<Samples> {
    let pause = || {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    };
    let start = Instant::now();
    let mut n = 0u32;
    while n < 16 || start.elapsed() < warmup {
        round()?;
        pause();
        n = n.saturating_add(1);
    }
    let mut samples = Samples::new();
    let end = Instant::now() + duration;
    loop {
        let t0 = Instant::now();
        round()?;
        let t1 = Instant::now();
        samples.record(t1.duration_since(t0).as_nanos() as u64);
        if t1 >= end {
            break;
        }
        pause();
    }
    Ok(samples)
}

/// Parent side of a ping-pong over a byte or message link.
pub fn pingpong_client<L: Read + Write>(
    link: &mut L,
    size: usize,
    gap: Duration,
    warmup: Duration,
    duration: Duration,
) -> io::Result<Samples> {
    let out = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    timed_loop_with_gaps(warmup, duration, gap, || {
        link.write_all(&out)?;
        link.read_exact(&mut back)
    })
}

/// Peer side of a ping-pong: echo `size`-byte blocks until end of stream.
pub fn echo_server<L: Read + Write>(link: &mut L, size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    loop {
        match link.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        match link.write_all(&buf) {
            Ok(()) => {}
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Parent side of a stream: `write`-byte writes for `duration`. Returns the bytes sent.
pub fn stream_writer<W: Duplex + ?Sized>(
    link: &mut W,
    write: usize,
    batch: usize,
    duration: Duration,
) -> io::Result<u64> {
    let buf: Vec<u8> = (0..write).map(|i| i as u8).collect();
    let msgs: Vec<&[u8]> = vec![&buf; batch.max(1)];
    let end = Instant::now() + duration;
    let mut sent = 0u64;
    loop {
        if batch > 1 {
            link.write_batch(&msgs)?;
            sent += (batch * write) as u64;
        } else {
            for _ in 0..16 {
                link.write_all(&buf)?;
            }
            sent += 16 * write as u64;
        }
        if Instant::now() >= end {
            break;
        }
    }
    link.flush()?;
    Ok(sent)
}

/// What a stream reader saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamReport {
    /// Bytes received.
    pub bytes: u64,
    /// Nanoseconds from the first byte to end of stream.
    pub nanos: u64,
    /// The XOR fold of everything (keeps the touching from being optimised away).
    pub fold: u64,
}

impl StreamReport {
    /// The line the peer prints.
    pub fn to_line(self) -> String {
        format!("stream {} {} {}", self.bytes, self.nanos, self.fold)
    }

    /// Parses [`Self::to_line`].
    pub fn parse(line: &str) -> Option<StreamReport> {
        let mut it = line.split_ascii_whitespace();
        if it.next()? != "stream" {
            return None;
        }
        Some(StreamReport {
            bytes: it.next()?.parse().ok()?,
            nanos: it.next()?.parse().ok()?,
            fold: it.next()?.parse().ok()?,
        })
    }
}

/// Peer side of a stream: reads with `read_size`-byte reads until end of stream
/// (`batch > 1`: [`Duplex::read_batch`] calls of up to `batch` messages).
pub fn stream_reader<R: Duplex + ?Sized>(
    link: &mut R,
    read_size: usize,
    batch: usize,
) -> io::Result<StreamReport> {
    let mut buf = vec![0u8; read_size];
    let mut report = StreamReport::default();
    let mut start: Option<Instant> = None;
    loop {
        let (mut bytes, mut fold) = (0u64, 0u64);
        let r = if batch > 1 {
            link.read_batch(&mut buf, batch, &mut |m| {
                bytes += m.len() as u64;
                fold ^= touch(m);
            })
        } else {
            link.read(&mut buf).inspect(|&n| {
                bytes = n as u64;
                fold = touch(&buf[..n]);
            })
        };
        match r {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_end(&e) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if start.is_none() {
            start = Some(Instant::now());
        }
        report.bytes += bytes;
        report.fold ^= fold;
    }
    report.nanos = start.map_or(0, |s| s.elapsed().as_nanos() as u64);
    Ok(report)
}

/// Parent side of request/reply calls.
pub fn call_client<L: Read + Write>(
    link: &mut L,
    request: usize,
    reply: usize,
    warmup: Duration,
    duration: Duration,
) -> io::Result<Samples> {
    let req: Vec<u8> = (0..request).map(|i| i as u8).collect();
    let mut rep = vec![0u8; reply];
    timed_loop(warmup, duration, || {
        link.write_all(&req)?;
        link.read_exact(&mut rep)
    })
}

/// Peer side of request/reply calls: serve until end of stream.
pub fn call_server<L: Read + Write>(link: &mut L, request: usize, reply: usize) -> io::Result<()> {
    let mut req = vec![0u8; request];
    let mut rep = vec![0u8; reply];
    loop {
        match link.read_exact(&mut req) {
            Ok(()) => {}
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        let fold = touch(&req);
        rep[..8].copy_from_slice(&fold.to_ne_bytes());
        match link.write_all(&rep) {
            Ok(()) => {}
            Err(e) if is_end(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_folds_everything() {
        assert_eq!(touch(&[1, 0, 0, 0, 0, 0, 0, 0, 1]), 1 ^ 1);
        let r = StreamReport {
            bytes: 3,
            nanos: 4,
            fold: 5,
        };
        let p = StreamReport::parse(&r.to_line()).unwrap();
        assert_eq!((p.bytes, p.nanos, p.fold), (3, 4, 5));
    }
}
