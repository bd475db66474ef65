//! `culvert bench`: culvert against OS pipes, Unix sockets and the shared-memory floor,
//! every case in real separate processes, in one run.
//!
//! ## How a run works
//! For each (case, transport) the parent makes what the peer connects to (a section, a
//! socket), re-executes this binary as the hidden `__bench-peer` command, connects, and
//! drives the work; the peer answers (ping-pong, calls) or reads (streams). OS pipes are
//! the peer's stdin and stdout; for every other transport the peer's stdout carries
//! only its report. A watchdog kills a peer that outlives its run. The fan case
//! (`pingpong_8B_waitset64`, [`fan`]) needs many connections to one peer thread, so it
//! runs on culvert and uds only; its other rows print `-`. So do the async cases
//! ([`asynchronous`]: culvert's futures against tokio's `UnixStream`, both sides on a
//! tokio runtime).
//!
//! Latency cases time every round trip in the parent and report nearest-rank
//! percentiles. Streams are timed by the reader, from its first byte to end of stream,
//! so connection set-up is not counted. "MB" is 10^6 bytes.
//!
//! The ratio column is how many times better than `os-pipe` a row is (latency: the
//! os-pipe time over this row's; throughput: this row's over os-pipe's). Absolute times
//! on shared machines move from run to run; same-run ratios are the figures to quote.
//! Sections live in a private namespace directory removed at the end.

mod asynchronous;
mod culvert;
mod fan;
mod floor;
mod goals;
pub mod load;
mod machine;
mod remote;
mod report;
mod rings;
mod samples;
pub mod spec;
pub mod work;

use report::{add_ratios, render, to_json, Progress};

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use culvert_section::SectionOptions;

use self::floor::Floor;
use self::machine::{cpu_ticks, machine_line, other_load, pin_to};
use self::samples::Samples;
use self::spec::{Case, Metric, Shape, Transport, RATIO_METRIC};
use self::work::StreamReport;

/// A two-way byte (or message) link: what every non-floor transport gives.
pub trait Duplex: Read + Write + Send {
    /// Writes each of `msgs` as one write. A transport with a batch call (culvert's
    /// message pipe: `PipeEnd::write_messages`) writes them with it.
    fn write_batch(&mut self, msgs: &[&[u8]]) -> io::Result<()> {
        msgs.iter().try_for_each(|m| self.write_all(m))
    }

    /// Reads what one read gives into `buf` and hands it to `f`; returns 0 at end of
    /// stream, else how many messages `f` got. A transport with a batch call (culvert's
    /// message pipe: `PipeEnd::read_messages`) hands over up to `max` messages with it.
    fn read_batch(
        &mut self,
        buf: &mut [u8],
        max: usize,
        f: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        let _ = max;
        let n = self.read(buf)?;
        if n > 0 {
            f(&buf[..n]);
        }
        Ok(usize::from(n > 0))
    }
}
impl Duplex for UnixStream {}
impl<W: Write + Send, R: Read + Send> Duplex for OsPipes<W, R> {}

/// `culvert bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// A short run (under 30 s): fewer samples, noisier figures.
    #[arg(long)]
    pub quick: bool,
    /// Pin the parent to CPU 0 and the peer to CPU 1 (where the machine allows).
    #[arg(long)]
    pub pin: bool,
    /// Also write every figure of the table to PATH as JSON:
    /// `[{"case", "transport", "metric", "value"}, ...]`.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Only these cases (repeat or comma-separate).
    #[arg(long = "case", value_enum, value_delimiter = ',')]
    pub cases: Vec<Case>,
    /// Only these transports (repeat or comma-separate).
    #[arg(long = "transport", value_enum, value_delimiter = ',')]
    pub transports: Vec<Transport>,
    /// Scale every run's duration (1.0 = the default run; `--quick` is 0.12).
    #[arg(long, hide = true)]
    pub scale: Option<f64>,
    /// A few milliseconds per run: checks that everything works, nothing more (tests).
    #[arg(long, hide = true)]
    pub smoke: bool,
    /// Also print the project's performance goals, judged on this run's figures.
    #[arg(long)]
    pub goals: bool,
    /// Run N CPU-burning processes for the whole run, so every transport is measured
    /// on a busy machine.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub load: usize,
    /// Instead: culvert across two bridges on loopback (pipe ping-pong, port calls)
    /// against raw Zenoh pub/sub and TCP, in one run (see `remote`).
    #[arg(long)]
    pub remote: bool,
}

/// Arguments of the hidden peer role.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// The case.
    #[arg(value_enum)]
    pub case: Case,
    /// The transport.
    #[arg(value_enum)]
    pub transport: Transport,
    /// The run's private directory (UDS socket; CULVERT_ROOT is set too).
    #[arg(long)]
    pub dir: PathBuf,
    /// Pin to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// One figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Case.
    pub case: Case,
    /// Transport.
    pub transport: Transport,
    /// Metric name.
    pub metric: &'static str,
    /// Value.
    pub value: f64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<(), BoxError> {
    if args.remote {
        return remote::run(args);
    }
    // A JSON path that cannot be written fails now, not after the whole run.
    let mut json_out = match &args.json {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let scale = if args.smoke {
        0.004
    } else {
        args.scale
            .unwrap_or(if args.quick { 0.12 } else { 1.0 })
            .max(0.0001)
    };
    let cases: Vec<Case> = Case::ALL
        .into_iter()
        .filter(|c| args.cases.is_empty() || args.cases.contains(c))
        .collect();
    let transports: Vec<Transport> = if args.transports.is_empty() {
        Transport::ALL.to_vec()
    } else {
        let mut t = args.transports.clone();
        t.sort();
        t.dedup();
        t
    };

    // Before the run: the load average then says how busy the machine was without us.
    let machine = machine_line();
    let dir = PrivateDir::new()?;
    // The peers find culvert objects here; so do culvert calls in this process that do
    // not take options (no other thread runs yet).
    std::env::set_var(culvert_section::ROOT_ENV, dir.path());
    let opts = SectionOptions::default().root(dir.path());

    let load = load::Load::start(args.load)
        .map_err(|e| format!("cannot start the --load processes: {e}"))?;
    let mut pinned = false;
    if args.pin {
        match pin_to(0) {
            Ok(()) => pinned = true,
            Err(e) => eprintln!("culvert bench: cannot pin to CPU 0 ({e}); running unpinned"),
        }
    }

    // Each case runs as `trials` short trials, interleaved across transports, so a
    // change in the machine's load during the run hits every transport alike.
    let trials = if args.smoke || args.quick { 1 } else { 3 };
    let pairs = cases
        .iter()
        .map(|c| transports.iter().filter(|&&t| c.runs_on(t)).count())
        .sum::<usize>();
    let progress = Progress::new(pairs * trials);
    let ticks_before = cpu_ticks();
    let mut figures = Vec::new();
    let started = Instant::now();
    for &case in &cases {
        let duration = case.base_duration().mul_f64(scale / trials as f64);
        let mut raw: Vec<Vec<Raw>> = vec![Vec::new(); transports.len()];
        for _ in 0..trials {
            for (i, &transport) in transports.iter().enumerate() {
                if !case.runs_on(transport) {
                    continue;
                }
                progress.start(case, transport);
                match run_one(case, transport, duration, pinned, dir.path(), &opts) {
                    Ok(r) => {
                        progress.done(&r);
                        raw[i].push(r);
                    }
                    Err(e) => {
                        progress.clear();
                        return Err(format!("{case} over {transport}: {e}").into());
                    }
                }
            }
        }
        for (i, &transport) in transports.iter().enumerate() {
            for (metric, value) in summarize(case, std::mem::take(&mut raw[i])) {
                figures.push(Figure {
                    case,
                    transport,
                    metric: metric.name(),
                    value,
                });
            }
        }
    }
    progress.finish(started.elapsed());
    let machine = match other_load(ticks_before, cpu_ticks()) {
        Some(l) if load.count() > 0 => format!(
            "{machine}; under --load {}: other processes, the burners included, used \
             {:.0}% of the CPUs during the run",
            load.count(),
            l * 100.0
        ),
        Some(l) => format!(
            "{machine}; other processes used {:.0}% of the CPUs during the run{}",
            l * 100.0,
            if l > 0.05 {
                " (figures disturbed: rerun on an idle machine)"
            } else {
                ""
            }
        ),
        None => machine,
    };

    add_ratios(&mut figures, &cases);
    let mode = if args.smoke {
        "smoke run".to_string()
    } else if args.quick {
        "quick run".to_string()
    } else if (scale - 1.0).abs() > 1e-9 {
        format!("run at scale {scale}")
    } else {
        "full run".to_string()
    };
    drop(load);
    let report = render(&figures, &cases, &transports, &machine, &mode, pinned);
    print!("{report}");
    if args.goals {
        print!("{}", goals::render(&figures));
    }
    if let (Some(file), Some(path)) = (json_out.as_mut(), &args.json) {
        file.write_all(to_json(&figures).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A private namespace directory, removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Inside the namespace directory (`--root`, `$CULVERT_ROOT`, `/dev/shm`), or the
    /// temporary directory if that does not exist.
    fn new() -> io::Result<PrivateDir> {
        let root = SectionOptions::default()
            .namespace_root()
            .map_err(io::Error::other)?;
        let base = if root.is_dir() {
            root
        } else {
            std::env::temp_dir()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("culvert-bench.{}.{nanos:x}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(PrivateDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The parent's half of a transport before the peer runs.
enum Pending {
    OsPipe,
    Uds(UnixListener, PathBuf),
    Floor(Floor),
    Culvert(culvert::Pending),
    Ring(Box<rings::RingLink>),
}

/// The parent's connection.
enum Conn {
    Link(Box<dyn Duplex>),
    Floor(Floor),
    Port(::culvert::port::PortClient),
    /// The connections of a fan, in order.
    Fan(Vec<Box<dyn Duplex>>),
}

/// The OS pipe pair as one link.
struct OsPipes<W, R> {
    w: W,
    r: R,
}

impl<W: Write, R> Write for OsPipes<W, R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl<W, R: Read> Read for OsPipes<W, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read(buf)
    }
}

/// Kills the peer if the run outlives its budget.
struct Watchdog {
    state: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>, budget: Duration) -> Watchdog {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*s;
            let done = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (done, _) = cv
                .wait_timeout_while(done, budget, |d| !*d)
                .unwrap_or_else(|e| e.into_inner());
            if !*done {
                if let Ok(mut c) = child.lock() {
                    let _ = c.kill();
                }
            }
        });
        Watchdog {
            state,
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.state;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs one (case, transport) and returns its figures.
fn run_one(
    case: Case,
    transport: Transport,
    duration: Duration,
    pinned: bool,
    dir: &Path,
    opts: &SectionOptions,
) -> Result<Raw, BoxError> {
    if !case.runs_on(transport) {
        return Err(format!("{case} does not run over {transport}").into());
    }
    let warmup = (duration / 10).min(Duration::from_millis(300));
    let pending = match transport {
        Transport::OsPipe => Pending::OsPipe,
        Transport::Uds => {
            let path = dir.join("bench.sock");
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)?;
            l.set_nonblocking(true)?;
            Pending::Uds(l, path)
        }
        Transport::ShmFloor => Pending::Floor(Floor::create(opts)?),
        Transport::Culvert => Pending::Culvert(culvert::prepare(case, opts)?),
        Transport::Ring => Pending::Ring(Box::new(rings::RingLink::create(
            culvert::ring_setup(case),
            opts,
        )?)),
    };

    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("__bench-peer")
        .arg(case.name())
        .arg(transport.name())
        .arg("--dir")
        .arg(dir)
        .env(culvert_section::ROOT_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(if transport == Transport::OsPipe {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    if pinned {
        cmd.arg("--cpu").arg("1");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the peer process: {e}"))?;
    let stdin: Option<ChildStdin> = child.stdin.take();
    let mut stdout: ChildStdout = child.stdout.take().ok_or("peer has no stdout")?;
    let child = Arc::new(Mutex::new(child));
    let watchdog = Watchdog::start(child.clone(), duration * 3 + Duration::from_secs(30));

    let outcome = (|| -> Result<(Samples, Option<StreamReport>), BoxError> {
        if case.flavor().is_some() {
            let samples = asynchronous::client(case, pending, &child, opts, warmup, duration)?;
            return Ok((samples, None));
        }
        let conn = match pending {
            Pending::OsPipe => {
                let w = stdin.ok_or("peer has no stdin")?;
                if let Some(bytes) = case.stream_buffer() {
                    // Up to /proc/sys/fs/pipe-max-size (1 MiB by default) without
                    // privilege; where refused, the pipe keeps its default size.
                    let _ = rustix::pipe::fcntl_setpipe_size(&w, bytes);
                }
                // The link reads the peer's stdout; keep a clone for the report.
                let r = stdout.as_fd().try_clone_to_owned()?;
                Conn::Link(Box::new(OsPipes {
                    w,
                    r: std::fs::File::from(r),
                }))
            }
            Pending::Uds(listener, path) => {
                let conn = match case.shape() {
                    Shape::Fan { connections, .. } => {
                        Conn::Fan(fan::accept_sockets(&listener, &child, connections)?)
                    }
                    _ => Conn::Link(Box::new(accept(
                        &listener,
                        &child,
                        Duration::from_secs(10),
                    )?)),
                };
                let _ = std::fs::remove_file(path);
                conn
            }
            Pending::Floor(f) => Conn::Floor(f),
            Pending::Ring(l) => Conn::Link(l),
            Pending::Culvert(p) => {
                let alive = || matches!(child.lock().map(|mut c| c.try_wait()), Ok(Ok(None)));
                match p.establish(opts, alive)? {
                    culvert::Established::Link(l) => Conn::Link(l),
                    culvert::Established::Port(c) => Conn::Port(c),
                    culvert::Established::Fan(links) => Conn::Fan(links),
                }
            }
        };
        match (case.shape(), conn) {
            (Shape::PingPong { size, gap, .. }, Conn::Link(mut l)) => Ok((
                work::pingpong_client(&mut l, size, gap, warmup, duration)?,
                None,
            )),
            (Shape::PingPong { gap, .. }, Conn::Floor(f)) if !gap.is_zero() => {
                Ok((f.futex_pingpong_client(gap, warmup, duration)?, None))
            }
            (Shape::PingPong { .. }, Conn::Floor(f)) => {
                Ok((f.pingpong_client(warmup, duration)?, None))
            }
            (Shape::Call { request, reply }, Conn::Link(mut l)) => Ok((
                work::call_client(&mut l, request, reply, warmup, duration)?,
                None,
            )),
            (Shape::Call { request, reply }, Conn::Floor(f)) => {
                Ok((f.call_client(request, reply, warmup, duration)?, None))
            }
            (Shape::Call { request, reply }, Conn::Port(c)) => Ok((
                culvert::call_client(&c, request, reply, warmup, duration)?,
                None,
            )),
            (Shape::Fan { size, .. }, Conn::Fan(mut links)) => {
                let samples = fan::client(&mut links, size, warmup, duration)?;
                drop(links); // end of stream on every connection
                Ok((samples, None))
            }
            (_, Conn::Fan(_)) | (Shape::Fan { .. }, _) => {
                Err("a fan runs only on its own connections".into())
            }
            (Shape::AsyncPingPong { .. } | Shape::AsyncCall { .. }, _) => {
                Err("an async case runs on its own runtime".into())
            }
            (_, Conn::Port(_)) => Err("a port carries only calls".into()),
            (
                Shape::Stream {
                    write,
                    messages,
                    batch,
                },
                conn,
            ) => {
                match conn {
                    Conn::Link(mut l) => {
                        work::stream_writer(&mut *l, write, batch, duration)?;
                        drop(l); // end of stream
                    }
                    Conn::Floor(f) if messages => {
                        f.message_stream_writer(write, duration)?;
                    }
                    Conn::Floor(f) => {
                        f.stream_writer(write, duration)?;
                    }
                    Conn::Port(_) | Conn::Fan(_) => {
                        return Err("only a link or the floor carries a stream".into())
                    }
                }
                let mut line = String::new();
                stdout.read_to_string(&mut line)?;
                let report = StreamReport::parse(line.trim())
                    .ok_or_else(|| format!("the peer sent no report (got {line:?})"))?;
                Ok((Samples::new(), Some(report)))
            }
        }
    })();
    // Whatever happened, the peer must end: it sees end of stream (or STOP) and exits.
    let status = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
            match c.try_wait()? {
                Some(s) => break Some(s),
                None if Instant::now() > deadline || outcome.is_err() => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break None;
                }
                None => {}
            }
            drop(c);
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    drop(watchdog);
    let (mut samples, report) = outcome?;
    match status {
        Some(s) if s.success() => {}
        Some(s) => return Err(format!("the peer process failed ({s})").into()),
        None => return Err("the peer process did not exit".into()),
    }

    match case.shape() {
        Shape::Stream {
            write, messages, ..
        } => {
            let r = report.ok_or("no stream report")?;
            if r.bytes == 0 || r.nanos == 0 {
                return Err("the stream carried nothing".into());
            }
            let secs = r.nanos as f64 / 1e9;
            Ok(if messages {
                Raw::Rate(Metric::MsgsPerS, (r.bytes / write as u64) as f64 / secs)
            } else {
                Raw::Rate(Metric::MbPerS, r.bytes as f64 / 1e6 / secs)
            })
        }
        // Every other shape is timed round trips.
        _ if samples.is_empty() => Err("no samples".into()),
        _ => Ok(Raw::Samples(std::mem::take(&mut samples))),
    }
}

/// What one trial measured.
#[derive(Debug, Clone)]
enum Raw {
    /// Latency samples, ns.
    Samples(Samples),
    /// A rate.
    Rate(Metric, f64),
}

/// The figures of a case from its trials: latency percentiles over every sample of
/// every trial; the median rate of the trials.
fn summarize(case: Case, raws: Vec<Raw>) -> Vec<(Metric, f64)> {
    let mut samples = Samples::new();
    let mut rates = Vec::new();
    for r in raws {
        match r {
            Raw::Samples(s) => samples.merge(&s),
            Raw::Rate(_, v) => rates.push(v),
        }
    }
    let mut out = Vec::new();
    if !samples.is_empty() {
        for &m in case.metrics() {
            let q = match m {
                Metric::RttP50 => 0.5,
                Metric::RttP99 => 0.99,
                _ => 0.999,
            };
            out.push((m, samples.quantile(q)));
        }
    }
    if !rates.is_empty() {
        rates.sort_by(f64::total_cmp);
        out.push((case.metrics()[0], rates[rates.len() / 2]));
    }
    out
}

/// Accepts one connection, giving up if the peer exits or `limit` passes.
fn accept(
    listener: &UnixListener,
    child: &Mutex<Child>,
    limit: Duration,
) -> Result<UnixStream, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(st) = child.lock().map_err(|_| "poisoned")?.try_wait()? {
                    return Err(format!("the peer exited before connecting ({st})").into());
                }
                if Instant::now() > deadline {
                    return Err("the peer did not connect".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The peer role: connect, serve or read, report, exit.
pub fn run_peer(args: &PeerArgs) -> Result<(), BoxError> {
    if let Some(cpu) = args.cpu {
        // Best effort: the parent already said whether pinning works.
        let _ = pin_to(cpu);
    }
    let opts = SectionOptions::default().root(&args.dir);
    let case = args.case;
    if matches!(case.shape(), Shape::Fan { .. }) {
        return fan::serve(case, args.transport, &opts, &args.dir);
    }
    if case.flavor().is_some() {
        return asynchronous::serve(case, args.transport, &opts, &args.dir);
    }
    if args.transport == Transport::ShmFloor {
        let f = Floor::open(&opts)?;
        match case.shape() {
            Shape::PingPong { gap, .. } if !gap.is_zero() => f.futex_pingpong_server()?,
            Shape::PingPong { .. } => f.pingpong_server()?,
            Shape::Call { request, reply } => f.call_server(request, reply)?,
            Shape::Stream {
                write, messages, ..
            } => {
                let report = if messages {
                    f.message_stream_reader(write)?
                } else {
                    f.stream_reader(write.max(65536))?
                };
                println!("{}", report.to_line());
            }
            _ => return Err(format!("{case} does not run on the floor").into()),
        }
        return Ok(());
    }
    if args.transport == Transport::Culvert && matches!(case.shape(), Shape::Call { .. }) {
        culvert::serve_calls(case, &opts)?;
        return Ok(());
    }
    // For os-pipe the report goes over the same stdout pipe the data came back on.
    let mut link: Box<dyn Duplex> = match args.transport {
        Transport::OsPipe => {
            let r = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?);
            let w = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
            Box::new(OsPipes { w, r })
        }
        Transport::Uds => Box::new(UnixStream::connect(args.dir.join("bench.sock"))?),
        Transport::Culvert => culvert::connect(case, &opts)?,
        Transport::Ring => Box::new(rings::RingLink::open(culvert::ring_setup(case), &opts)?),
        Transport::ShmFloor => unreachable!(),
    };
    match case.shape() {
        Shape::PingPong { size, .. } => work::echo_server(&mut link, size)?,
        Shape::Call { request, reply } => work::call_server(&mut link, request, reply)?,
        Shape::Fan { .. } | Shape::AsyncPingPong { .. } | Shape::AsyncCall { .. } => {
            return Err(format!("{case} does not run on one link").into())
        }
        Shape::Stream {
            write,
            messages,
            batch,
        } => {
            // Byte transports read whatever is there (up to 64 KiB, as a reader of an
            // OS pipe would); culvert's message pipe reads one message per call.
            let read_size =
                if messages && matches!(args.transport, Transport::Culvert | Transport::Ring) {
                    write
                } else {
                    write.max(65536)
                };
            let report = work::stream_reader(&mut *link, read_size, batch)?;
            drop(link);
            let mut out = io::stdout().lock();
            writeln!(out, "{}", report.to_line())?;
            out.flush()?;
        }
    }
    Ok(())
}
