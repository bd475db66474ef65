//! What `culvert bench` measures: the [`Case`]s (names fixed: scripts read them), the
//! [`Transport`]s compared, and the metrics each case reports.

use std::fmt;
use std::time::Duration;

/// Buffer of the message-stream cases (see [`Case::stream_buffer`]).
pub const MESSAGE_STREAM_BUFFER: usize = 1 << 20;

/// One benchmark case. The names printed and written to JSON never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Case {
    /// Round trip of 8 bytes; culvert ends busy-poll.
    #[value(name = "pingpong_8B_spin")]
    Pingpong8BSpin,
    /// Round trip of 8 bytes; culvert ends use the default `Adaptive` wait.
    #[value(name = "pingpong_8B_block")]
    Pingpong8BBlock,
    /// Round trip of 8 bytes, one per millisecond: the peer really sleeps between
    /// them (culvert: the default `Adaptive` wait; shm-floor: a bare futex wait/wake).
    #[value(name = "pingpong_8B_sleep")]
    Pingpong8BSleep,
    /// Round trip of 8 bytes over 64 connections taken in turn, all 64 served by one
    /// peer thread (culvert: a `WaitSet` over 64 named byte pipes, default `Adaptive`
    /// wait; uds: `poll(2)` over 64 sockets). Runs on culvert and uds only.
    #[value(name = "pingpong_8B_waitset64")]
    Pingpong8BWaitset64,
    /// Round trip of 8 bytes, both sides async on a tokio current_thread runtime
    /// (culvert: an `AsyncPipeEnd` on a named byte pipe; uds: `tokio::net::UnixStream`).
    /// Runs on culvert and uds only.
    #[value(name = "pingpong_8B_async_ct")]
    Pingpong8BAsyncCt,
    /// [`Case::Pingpong8BAsyncCt`] on a tokio multi_thread runtime of 2 workers.
    #[value(name = "pingpong_8B_async_mt")]
    Pingpong8BAsyncMt,
    /// One-way 64-byte messages, through a 1 MiB buffer on every transport that takes
    /// a size (culvert, culvert-ring, shm-floor, os-pipe).
    #[value(name = "stream_64B_msgs")]
    Stream64BMsgs,
    /// One-way 64-byte messages in batches of 64 (culvert: `PipeEnd::write_messages`
    /// and `read_messages` on a message pipe), through a 1 MiB buffer. Runs on culvert
    /// and shm-floor only (the floor publishes each message).
    #[value(name = "stream_64B_batch")]
    Stream64BBatch,
    /// One-way byte stream, 4 KiB writes.
    #[value(name = "stream_4KiB")]
    Stream4KiB,
    /// One-way byte stream, 64 KiB writes.
    #[value(name = "stream_64KiB")]
    Stream64KiB,
    /// Request/reply of 64 bytes each way.
    #[value(name = "call_64B")]
    Call64B,
    /// Request/reply of 64 bytes each way, both sides async on a tokio current_thread
    /// runtime (culvert: a port, `PortClient::call_async` / `PortServer::receive_async`;
    /// uds: `tokio::net::UnixStream`). Runs on culvert and uds only.
    #[value(name = "call_64B_async_ct")]
    Call64BAsyncCt,
    /// [`Case::Call64BAsyncCt`] on a tokio multi_thread runtime of 2 workers.
    #[value(name = "call_64B_async_mt")]
    Call64BAsyncMt,
    /// Request of 1 MiB, reply of 64 bytes.
    #[value(name = "call_1MiB")]
    Call1MiB,
}

/// How a case is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Round trips of `size` bytes each way; the parent times each one.
    PingPong {
        /// Bytes each way.
        size: usize,
        /// Whether culvert ends busy-poll (else they use the default `Adaptive`).
        spin: bool,
        /// Idle time between round trips (not timed); zero: back to back.
        gap: Duration,
    },
    /// One way, parent → peer, `write` bytes per write; the peer reads and touches
    /// every byte and times the stream from its first byte to end of stream.
    Stream {
        /// Bytes per write.
        write: usize,
        /// Whether culvert keeps message boundaries (a message pipe).
        messages: bool,
        /// Messages per batch call (`Duplex::write_batch` / `read_batch`); 1: plain
        /// writes and reads.
        batch: usize,
    },
    /// Request/reply: `request` bytes to the peer, which touches every byte and answers
    /// with `reply` bytes; the parent times each call.
    Call {
        /// Request bytes.
        request: usize,
        /// Reply bytes.
        reply: usize,
    },
    /// Round trips of `size` bytes each way over `connections` connections, round
    /// robin (round trip k on connection k % `connections`); one peer thread serves
    /// them all, and the parent times each round trip.
    Fan {
        /// Bytes each way.
        size: usize,
        /// Connections open at once.
        connections: usize,
    },
    /// [`Shape::PingPong`] (back to back, default wait) with both sides async on a
    /// tokio runtime of `flavor`.
    AsyncPingPong {
        /// Bytes each way.
        size: usize,
        /// The runtime both sides run on.
        flavor: Flavor,
    },
    /// [`Shape::Call`] with both sides async on a tokio runtime of `flavor`.
    AsyncCall {
        /// Request bytes.
        request: usize,
        /// Reply bytes.
        reply: usize,
        /// The runtime both sides run on.
        flavor: Flavor,
    },
}

/// The tokio runtime of an async case, the same in the parent and the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `Builder::new_current_thread`: the task runs on the thread that drives it.
    CurrentThread,
    /// `Builder::new_multi_thread` with [`Flavor::WORKERS`] workers; the timed loop
    /// runs in a spawned task, on a worker thread.
    MultiThread,
}

impl Flavor {
    /// Worker threads of a [`Flavor::MultiThread`] runtime.
    pub const WORKERS: usize = 2;
}

impl Case {
    /// Every case, in table order.
    pub const ALL: [Case; 14] = [
        Case::Pingpong8BSpin,
        Case::Pingpong8BBlock,
        Case::Pingpong8BSleep,
        Case::Pingpong8BWaitset64,
        Case::Pingpong8BAsyncCt,
        Case::Pingpong8BAsyncMt,
        Case::Stream64BMsgs,
        Case::Stream64BBatch,
        Case::Stream4KiB,
        Case::Stream64KiB,
        Case::Call64B,
        Case::Call64BAsyncCt,
        Case::Call64BAsyncMt,
        Case::Call1MiB,
    ];

    /// The fixed name.
    pub fn name(self) -> &'static str {
        match self {
            Case::Pingpong8BSpin => "pingpong_8B_spin",
            Case::Pingpong8BBlock => "pingpong_8B_block",
            Case::Pingpong8BSleep => "pingpong_8B_sleep",
            Case::Pingpong8BWaitset64 => "pingpong_8B_waitset64",
            Case::Pingpong8BAsyncCt => "pingpong_8B_async_ct",
            Case::Pingpong8BAsyncMt => "pingpong_8B_async_mt",
            Case::Stream64BMsgs => "stream_64B_msgs",
            Case::Stream64BBatch => "stream_64B_batch",
            Case::Stream4KiB => "stream_4KiB",
            Case::Stream64KiB => "stream_64KiB",
            Case::Call64B => "call_64B",
            Case::Call64BAsyncCt => "call_64B_async_ct",
            Case::Call64BAsyncMt => "call_64B_async_mt",
            Case::Call1MiB => "call_1MiB",
        }
    }

    /// How it is driven.
    pub fn shape(self) -> Shape {
        match self {
            Case::Pingpong8BSpin => Shape::PingPong {
                size: 8,
                spin: true,
                gap: Duration::ZERO,
            },
            Case::Pingpong8BBlock => Shape::PingPong {
                size: 8,
                spin: false,
                gap: Duration::ZERO,
            },
            Case::Pingpong8BSleep => Shape::PingPong {
                size: 8,
                spin: false,
                gap: Duration::from_millis(1),
            },
            Case::Pingpong8BWaitset64 => Shape::Fan {
                size: 8,
                connections: 64,
            },
            Case::Pingpong8BAsyncCt => Shape::AsyncPingPong {
                size: 8,
                flavor: Flavor::CurrentThread,
            },
            Case::Pingpong8BAsyncMt => Shape::AsyncPingPong {
                size: 8,
                flavor: Flavor::MultiThread,
            },
            Case::Stream64BMsgs => Shape::Stream {
                write: 64,
                messages: true,
                batch: 1,
            },
            Case::Stream64BBatch => Shape::Stream {
                write: 64,
                messages: true,
                batch: 64,
            },
            Case::Stream4KiB => Shape::Stream {
                write: 4096,
                messages: false,
                batch: 1,
            },
            Case::Stream64KiB => Shape::Stream {
                write: 65536,
                messages: false,
                batch: 1,
            },
            Case::Call64B => Shape::Call {
                request: 64,
                reply: 64,
            },
            Case::Call64BAsyncCt => Shape::AsyncCall {
                request: 64,
                reply: 64,
                flavor: Flavor::CurrentThread,
            },
            Case::Call64BAsyncMt => Shape::AsyncCall {
                request: 64,
                reply: 64,
                flavor: Flavor::MultiThread,
            },
            Case::Call1MiB => Shape::Call {
                request: 1 << 20,
                reply: 64,
            },
        }
    }

    /// The buffer of a message-stream case on the transports that take a size: the
    /// floor's ring, so that every transport streams through the same amount of
    /// memory. (The ring's size matters more than anything else here: on a 2-CPU VM the
    /// floor itself streams 64-byte messages at about 24 M msg/s through 64 KiB and
    /// 80–110 M msg/s through 1 MiB.) `None`: the transport's default.
    pub fn stream_buffer(self) -> Option<usize> {
        match self.shape() {
            Shape::Stream { messages: true, .. } => Some(MESSAGE_STREAM_BUFFER),
            _ => None,
        }
    }

    /// The metrics this case reports, in column order.
    pub fn metrics(self) -> &'static [Metric] {
        match self.shape() {
            Shape::PingPong { .. } => &[Metric::RttP50, Metric::RttP99, Metric::RttP999],
            Shape::Stream { messages: true, .. } => &[Metric::MsgsPerS],
            Shape::Stream { .. } => &[Metric::MbPerS],
            Shape::Call { .. }
            | Shape::Fan { .. }
            | Shape::AsyncPingPong { .. }
            | Shape::AsyncCall { .. } => &[Metric::RttP50, Metric::RttP99, Metric::RttP999],
        }
    }

    /// How long the parent drives one run of this case, per unit of `scale`
    /// (1.0 = the default run).
    pub fn base_duration(self) -> Duration {
        match self.shape() {
            Shape::PingPong { .. } | Shape::Fan { .. } | Shape::AsyncPingPong { .. } => {
                Duration::from_millis(2500)
            }
            Shape::Stream { .. } => Duration::from_millis(2000),
            Shape::Call { .. } | Shape::AsyncCall { .. } => Duration::from_millis(2000),
        }
    }

    /// The tokio runtime of an async case; `None` for the blocking ones.
    pub fn flavor(self) -> Option<Flavor> {
        match self.shape() {
            Shape::AsyncPingPong { flavor, .. } | Shape::AsyncCall { flavor, .. } => Some(flavor),
            _ => None,
        }
    }

    /// Whether this case runs over `transport`. A fan of connections needs a transport
    /// that can open many connections to one peer and serve them from one thread:
    /// culvert (named pipes in a `WaitSet`) and uds (sockets in `poll(2)`); an OS pipe
    /// pair, the shm floor and the single ring link are one connection each. The async
    /// cases compare culvert's futures with tokio's own `UnixStream`: culvert and uds.
    /// The batch stream compares culvert's batch calls with the floor.
    pub fn runs_on(self, transport: Transport) -> bool {
        match self.shape() {
            Shape::Fan { .. } | Shape::AsyncPingPong { .. } | Shape::AsyncCall { .. } => {
                matches!(transport, Transport::Culvert | Transport::Uds)
            }
            Shape::Stream { batch: 2.., .. } => {
                matches!(transport, Transport::Culvert | Transport::ShmFloor)
            }
            _ => true,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What carries the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Transport {
    /// culvert's public API.
    #[value(name = "culvert")]
    Culvert,
    /// An OS pipe pair (the peer's stdin and stdout).
    #[value(name = "os-pipe")]
    OsPipe,
    /// A Unix stream socket.
    #[value(name = "uds")]
    Uds,
    /// The physical floor: two processes spinning on cache lines of a shared mapping,
    /// with no framing, no checks and no sleeping.
    #[value(name = "shm-floor")]
    ShmFloor,
    /// culvert's ring-level API directly (two SPSC rings in one section): not in the
    /// default table; ask for it to see what the pipe and port layers cost on top.
    #[value(name = "culvert-ring")]
    Ring,
}

impl Transport {
    /// Every transport of the default table, in table order.
    pub const ALL: [Transport; 4] = [
        Transport::Culvert,
        Transport::OsPipe,
        Transport::Uds,
        Transport::ShmFloor,
    ];

    /// The fixed name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Culvert => "culvert",
            Transport::OsPipe => "os-pipe",
            Transport::Uds => "uds",
            Transport::ShmFloor => "shm-floor",
            Transport::Ring => "culvert-ring",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A figure of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Median round trip, ns.
    RttP50,
    /// 99th percentile round trip, ns.
    RttP99,
    /// 99.9th percentile round trip, ns.
    RttP999,
    /// Messages per second.
    MsgsPerS,
    /// Megabytes (10^6 bytes) per second.
    MbPerS,
}

impl Metric {
    /// The fixed name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RttP50 => "rtt_ns_p50",
            Metric::RttP99 => "rtt_ns_p99",
            Metric::RttP999 => "rtt_ns_p999",
            Metric::MsgsPerS => "msgs_per_s",
            Metric::MbPerS => "mb_per_s",
        }
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::MsgsPerS | Metric::MbPerS)
    }
}

/// The metric name of the "how many times better than os-pipe" figure.
pub const RATIO_METRIC: &str = "x_vs_os_pipe";
