//! Cross-process benchmarks of the channel layers, with an OS pipe baseline in the same
//! run, so regressions show per commit:
//!
//! * `pingpong_8B_spin` / `pingpong_8B_block`: 8-byte round trip over a named byte pipe
//!   (ends `BusyPoll` / default `Adaptive`) vs an OS pipe pair;
//! * `stream_64B_msgs`: one-way 64-byte messages (message pipe) vs 64-byte OS pipe writes;
//! * `stream_4KiB`, `stream_64KiB`: one-way byte streams, the reader touching every byte;
//! * `call_64B`, `call_1MiB`: port calls (64 B inline; 1 MiB through a view, 64 B reply)
//!   vs the same request/reply bytes over an OS pipe pair.
//!
//! The peer is this bench binary re-executed with the environment variable
//! `CULVERT_BENCH_PEER` naming its role; OS pipes are its stdin and stdout. Each
//! benchmark starts one peer and times batches of `iters` operations with
//! `iter_custom`; stream batches end with a one-byte acknowledgement from the reader,
//! so every byte is counted only once it arrived.
//!
//! Run: `cargo bench --bench pipes` (the whole suite: `culvert bench` in the CLI).

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{MessageKind, PortClient, PortOptions, PortServer};
use culvert::{Deadline, WaitStrategy};

/// Names the peer's role in the re-executed bench binary.
const PEER_ENV: &str = "CULVERT_BENCH_PEER";
const PIPE: &str = "bench-pipe";
const PORT: &str = "bench-port";
const CALL_REPLY: usize = 64;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CULVERT_ROOT").expect("CULVERT_ROOT"))
}

/// XOR-folds every byte (the reader touches everything it receives).
fn touch(buf: &[u8]) -> u64 {
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

// ---- peer roles --------------------------------------------------------------------

fn echo(link: &mut impl ReadWrite, size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    loop {
        match link.read_exact(&mut buf) {
            Ok(()) => link.write_all(&buf)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Batches: an 8-byte header with the batch's byte count, the bytes, a 1-byte ack.
fn sink(link: &mut impl ReadWrite, read_size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; read_size];
    let mut header = [0u8; 8];
    loop {
        match link.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut left = u64::from_le_bytes(header);
        let mut fold = 0;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let n = link.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            fold ^= touch(&buf[..n]);
            left -= n as u64;
        }
        black_box(fold);
        link.write_all(&[1])?;
    }
}

/// Request/reply over a byte link: `request` bytes in, `CALL_REPLY` bytes out.
fn serve_calls(link: &mut impl ReadWrite, request: usize) -> io::Result<()> {
    let mut req = vec![0u8; request];
    let mut rep = vec![0u8; CALL_REPLY];
    loop {
        match link.read_exact(&mut req) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        rep[..8].copy_from_slice(&touch(&req).to_ne_bytes());
        link.write_all(&rep)?;
    }
}

fn serve_port() -> io::Result<()> {
    let server = PortServer::create(PORT, &PortOptions::default().root(root()))?;
    server
        .listen(Deadline::after(Duration::from_secs(10)))?
        .accept(b"ok")?;
    let mut rep = vec![0u8; CALL_REPLY];
    loop {
        let m = server.receive(Deadline::after(Duration::from_secs(30)))?;
        if m.kind == MessageKind::Datagram {
            return Ok(());
        }
        rep[..8].copy_from_slice(&touch(m.payload.as_slice()).to_ne_bytes());
        m.reply(&rep)?;
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// stdin + stdout as one unbuffered link.
struct Stdio2 {
    r: std::fs::File,
    w: std::fs::File,
}

impl Stdio2 {
    fn new() -> io::Result<Self> {
        use std::os::fd::AsFd;
        Ok(Stdio2 {
            r: std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?),
            w: std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?),
        })
    }
}

impl Read for Stdio2 {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read(buf)
    }
}

impl Write for Stdio2 {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the peer role `role`: `<transport>:<work>:<arg>[:spin]`.
fn peer(role: &str) -> io::Result<()> {
    let parts: Vec<&str> = role.split(':').collect();
    let (transport, work, arg) = (parts[0], parts[1], parts[2].parse::<usize>().unwrap());
    let spin = parts.get(3) == Some(&"spin");
    if transport == "port" {
        return serve_port();
    }
    let mut link: Box<dyn ReadWrite> = if transport == "os" {
        Box::new(Stdio2::new()?)
    } else {
        let opts = PipeOptions::default().root(root()).wait_strategy(if spin {
            WaitStrategy::BusyPoll
        } else {
            WaitStrategy::Adaptive
        });
        Box::new(PipeEnd::connect_with(PIPE, Duration::from_secs(10), &opts)?)
    };
    match work {
        "echo" => echo(&mut link, arg),
        "sink" => sink(&mut link, arg),
        "call" => serve_calls(&mut link, arg),
        other => panic!("unknown work {other}"),
    }
}

// ---- parent side -------------------------------------------------------------------

/// A running peer and the parent's link to it.
struct Peer {
    child: Child,
    link: Option<Box<dyn ReadWrite>>,
    _server: Option<PipeServer>,
}

impl Peer {
    fn link(&mut self) -> &mut dyn ReadWrite {
        self.link.as_deref_mut().expect("open link")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // End of stream makes the peer exit; then reap it.
        self.link = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(PEER_ENV, role).stderr(Stdio::inherit());
    cmd
}

/// Starts a peer over an OS pipe pair (its stdin and stdout).
fn os_peer(role: &str) -> Peer {
    let mut child = command(role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn peer");
    struct Pair(std::process::ChildStdin, std::process::ChildStdout);
    impl Read for Pair {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.1.read(b)
        }
    }
    impl Write for Pair {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let link = Pair(child.stdin.take().unwrap(), child.stdout.take().unwrap());
    Peer {
        child,
        link: Some(Box::new(link)),
        _server: None,
    }
}

/// Starts a peer connected to a named pipe of `mode`.
fn pipe_peer(role: &str, mode: PipeMode, spin: bool) -> Peer {
    let strategy = if spin {
        WaitStrategy::BusyPoll
    } else {
        WaitStrategy::Adaptive
    };
    let opts = PipeOptions::default()
        .root(root())
        .mode(mode)
        .max_instances(1)
        .wait_strategy(strategy);
    let server = PipeServer::bind(PIPE, &opts).expect("bind");
    let child = command(role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn peer");
    let mut end = server
        .accept_until(Duration::from_secs(10))
        .expect("accept");
    end.set_wait_strategy(strategy);
    Peer {
        child,
        link: Some(Box::new(end)),
        _server: Some(server),
    }
}

fn pingpong(l: &mut dyn ReadWrite, iters: u64) -> Duration {
    let out = [7u8; 8];
    let mut back = [0u8; 8];
    let start = Instant::now();
    for _ in 0..iters {
        l.write_all(&out).unwrap();
        l.read_exact(&mut back).unwrap();
    }
    start.elapsed()
}

fn stream(l: &mut dyn ReadWrite, write: usize, iters: u64) -> Duration {
    let buf = vec![5u8; write];
    let mut ack = [0u8; 1];
    let start = Instant::now();
    l.write_all(&(iters * write as u64).to_le_bytes()).unwrap();
    for _ in 0..iters {
        l.write_all(&buf).unwrap();
    }
    l.read_exact(&mut ack).unwrap();
    start.elapsed()
}

fn calls(l: &mut dyn ReadWrite, request: usize, iters: u64) -> Duration {
    let req = vec![3u8; request];
    let mut rep = vec![0u8; CALL_REPLY];
    let start = Instant::now();
    for _ in 0..iters {
        l.write_all(&req).unwrap();
        l.read_exact(&mut rep).unwrap();
    }
    start.elapsed()
}

fn bench_pingpong(c: &mut Criterion) {
    for (case, spin) in [("pingpong_8B_spin", true), ("pingpong_8B_block", false)] {
        let mut g = c.benchmark_group(case);
        let suffix = if spin { ":spin" } else { "" };
        let mut p = pipe_peer(&format!("pipe:echo:8{suffix}"), PipeMode::Byte, spin);
        g.bench_function("culvert", |b| {
            b.iter_custom(|iters| pingpong(p.link(), iters))
        });
        drop(p);
        let mut p = os_peer("os:echo:8");
        g.bench_function("os-pipe", |b| {
            b.iter_custom(|iters| pingpong(p.link(), iters))
        });
        drop(p);
        g.finish();
    }
}

fn bench_streams(c: &mut Criterion) {
    for (case, write, mode) in [
        ("stream_64B_msgs", 64usize, PipeMode::Message),
        ("stream_4KiB", 4096, PipeMode::Byte),
        ("stream_64KiB", 65536, PipeMode::Byte),
    ] {
        let mut g = c.benchmark_group(case);
        g.throughput(if mode == PipeMode::Message {
            Throughput::Elements(1)
        } else {
            Throughput::Bytes(write as u64)
        });
        let read = if mode == PipeMode::Message {
            write
        } else {
            65536
        };
        let mut p = pipe_peer(&format!("pipe:sink:{read}"), mode, false);
        g.bench_function(BenchmarkId::new("culvert", write), |b| {
            b.iter_custom(|iters| stream(p.link(), write, iters))
        });
        drop(p);
        let mut p = os_peer("os:sink:65536");
        g.bench_function(BenchmarkId::new("os-pipe", write), |b| {
            b.iter_custom(|iters| stream(p.link(), write, iters))
        });
        drop(p);
        g.finish();
    }
}

fn bench_calls(c: &mut Criterion) {
    for (case, request) in [("call_64B", 64usize), ("call_1MiB", 1 << 20)] {
        let mut g = c.benchmark_group(case);
        let mut child = command("port:serve:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn peer");
        let sopts = PortOptions::default().root(root());
        let give_up = Instant::now() + Duration::from_secs(10);
        let client = loop {
            match PortClient::connect_with(
                PORT,
                b"bench",
                Deadline::after(Duration::from_secs(5)),
                &sopts,
            ) {
                Ok((client, _)) => break client,
                Err(culvert::Error::NotFound { .. }) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("connect to the port: {e}"),
            }
        };
        let req = vec![3u8; request];
        g.bench_function("culvert", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(client.call(&req, Deadline::never()).unwrap().len());
                }
                start.elapsed()
            })
        });
        let _ = client.send_datagram(b"stop");
        drop(client);
        let _ = child.wait();
        let mut p = os_peer(&format!("os:call:{request}"));
        g.bench_function("os-pipe", |b| {
            b.iter_custom(|iters| calls(p.link(), request, iters))
        });
        drop(p);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_pingpong, bench_streams, bench_calls
}

fn main() {
    if let Ok(role) = std::env::var(PEER_ENV) {
        if let Err(e) = peer(&role) {
            eprintln!("bench peer {role}: {e}");
            std::process::exit(1);
        }
        return;
    }
    // Every run gets its own namespace directory, inherited by the peers.
    let dir = tempfile::Builder::new()
        .prefix("culvert-bench-pipes.")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        })
        .expect("temporary directory");
    std::env::set_var("CULVERT_ROOT", dir.path());
    benches();
    Criterion::default().configure_from_args().final_summary();
}
