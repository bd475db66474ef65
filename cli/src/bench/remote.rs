//! `culvert bench --remote`: culvert across two bridges on loopback, against raw
//! Zenoh and TCP in the same run.
//!
//! Two simulated hosts (two namespace directories, two [`Bridge`]s on
//! `tcp/127.0.0.1`) in this process; the far object is served by a thread of this
//! process in host b's namespace, the caller is a thread in host a's. Rows, each a
//! 64-byte round trip timed one by one:
//!
//! * `pipe_pingpong_64B` — a message pipe opened as `//hostb/…` (caller → proxy →
//!   bridge a → Zenoh → bridge b → server and back);
//! * `call_64B` — a port call to `//hostb/…`;
//! * `zenoh_pubsub_64B` — two bare Zenoh sessions on loopback TCP, ping-pong over
//!   pub/sub (the floor the bridge adds to);
//! * `tcp_64B` — a loopback TCP socket with `TCP_NODELAY`.
//!
//! The goal line compares the bridge's pipe round trip with raw Zenoh's (goal: at most
//! 1.5×). All four run in one process on the same machine; their ratios are the
//! figures to quote.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{PortClient, PortOptions, PortServer};
use culvert_zenoh::zenoh::{self, Wait};
use culvert_zenoh::{Bridge, BridgeConfig};

use super::BenchArgs;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const T: Duration = Duration::from_secs(10);
const MSG: [u8; 64] = [0x5a; 64];
/// Interleaved trials per row.
const TRIALS: usize = 5;

/// Round-trip statistics in microseconds.
struct Stats {
    name: &'static str,
    n: usize,
    median: f64,
    p99: f64,
    mean: f64,
}

fn stats(name: &'static str, mut us: Vec<f64>) -> Stats {
    us.sort_by(f64::total_cmp);
    let n = us.len().max(1);
    let at = |q: f64| us[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stats {
        name,
        n: us.len(),
        median: at(0.5),
        p99: at(0.99),
        mean: us.iter().sum::<f64>() / n as f64,
    }
}

/// Times `rounds` calls of `f` after `warm` untimed ones.
fn time(
    warm: usize,
    rounds: usize,
    mut f: impl FnMut() -> Result<(), BoxError>,
) -> Result<Vec<f64>, BoxError> {
    for _ in 0..warm {
        f()?;
    }
    let mut us = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        f()?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(us)
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn zenoh_peer(listen: Option<u16>, connect: Option<u16>) -> Result<zenoh::Session, BoxError> {
    let mut c = zenoh::Config::default();
    let list = |p: Option<u16>| p.map_or("[]".to_string(), |p| format!("[\"tcp/127.0.0.1:{p}\"]"));
    for (k, v) in [
        ("mode", "\"peer\"".to_string()),
        ("scouting/multicast/enabled", "false".into()),
        ("scouting/gossip/enabled", "false".into()),
        ("listen/endpoints", list(listen)),
        ("connect/endpoints", list(connect)),
    ] {
        c.insert_json5(k, &v)
            .map_err(|e| format!("zenoh config {k}: {e}"))?;
    }
    zenoh::open(c)
        .wait()
        .map_err(|e| format!("zenoh: {e}").into())
}

/// A round trip to time.
type Trip = Box<dyn FnMut() -> Result<(), BoxError>>;

/// Two bare Zenoh peers on loopback TCP with an echo: a pub/sub round trip.
fn raw_zenoh() -> Result<(Trip, Vec<Box<dyn std::any::Any>>), BoxError> {
    let port = free_port()?;
    let a = zenoh_peer(Some(port), None)?;
    let b = zenoh_peer(None, Some(port))?;
    let zerr = |e: zenoh::Error| -> BoxError { format!("zenoh: {e}").into() };
    let pong = b
        .declare_publisher("bench/pong")
        .express(true)
        .wait()
        .map_err(zerr)?;
    let echo = b
        .declare_subscriber("bench/ping")
        .callback(move |s| {
            let _ = pong.put(s.payload().clone()).wait();
        })
        .wait()
        .map_err(zerr)?;
    let (tx, rx) = mpsc::channel();
    let back = a
        .declare_subscriber("bench/pong")
        .callback(move |s| {
            let _ = tx.send(s.payload().len());
        })
        .wait()
        .map_err(zerr)?;
    let ping = a
        .declare_publisher("bench/ping")
        .express(true)
        .wait()
        .map_err(zerr)?;
    // Wait until the route exists.
    let until = Instant::now() + T;
    loop {
        ping.put(&MSG[..]).wait().map_err(zerr)?;
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        if Instant::now() > until {
            return Err("raw zenoh ping-pong never connected".into());
        }
    }
    thread::sleep(Duration::from_millis(200));
    while rx.try_recv().is_ok() {}
    let trip: Trip = Box::new(move || {
        ping.put(&MSG[..]).wait().map_err(zerr)?;
        if rx.recv_timeout(T)? != 64 {
            return Err("short pong".into());
        }
        Ok(())
    });
    Ok((
        trip,
        vec![Box::new(echo), Box::new(back), Box::new(a), Box::new(b)],
    ))
}

/// A loopback TCP socket with an echo thread.
fn tcp() -> Result<Trip, BoxError> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 64];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b)?;
        }
        Ok(())
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut b = [0u8; 64];
    Ok(Box::new(move || {
        c.write_all(&MSG)?;
        c.read_exact(&mut b)?;
        Ok(())
    }))
}

/// Runs the remote rows and prints the table.
pub fn run(args: &BenchArgs) -> Result<(), BoxError> {
    let rounds = if args.smoke {
        50
    } else if args.quick {
        1000
    } else {
        5000
    };
    let warm = rounds / 10;
    let (ra, rb) = (tempfile_dir("a")?, tempfile_dir("b")?);
    let (pa, pb) = (free_port()?, free_port()?);
    let domain = format!("bench{}", std::process::id());
    let bb = Bridge::start(
        BridgeConfig::new(&domain, "hostb")
            .listen(format!("tcp/127.0.0.1:{pb}"))
            .root(&rb)
            .export("bench.pipe")
            .export("bench.port"),
    )?;
    let ba = Bridge::start(
        BridgeConfig::new(&domain, "hosta")
            .listen(format!("tcp/127.0.0.1:{pa}"))
            .connect(format!("tcp/127.0.0.1:{pb}"))
            .root(&ra),
    )?;
    if !ba.wait_for_host("hostb", T) {
        return Err("the bridges did not see each other".into());
    }

    // Pipe ping-pong across the bridges.
    let server = PipeServer::bind(
        "bench.pipe",
        &PipeOptions::default()
            .root(&rb)
            .mode(PipeMode::Message)
            .max_instances(1),
    )?;
    let echo = thread::spawn(move || -> culvert::Result<()> {
        let mut end = server.accept_until(T)?;
        end.set_read_timeout(Some(Duration::from_secs(5)));
        let mut b = [0u8; 256];
        while let Ok(r) = end.read_message(&mut b) {
            end.write_message(&b[..r.len])?;
        }
        Ok(())
    });
    let mut c = PipeEnd::connect_with("//hostb/bench.pipe", T, &PipeOptions::default().root(&ra))?;
    c.set_read_timeout(Some(T));
    let mut b = [0u8; 256];
    let pipe: Trip = Box::new(move || {
        let r = c.transact(&MSG, &mut b)?;
        if r.len != 64 {
            return Err("short reply".into());
        }
        Ok(())
    });

    // Port calls across the bridges.
    let port = PortServer::create("bench.port", &PortOptions::default().root(&rb))?;
    thread::spawn(move || -> culvert::Result<()> {
        port.listen(T)?.accept(b"")?;
        while let Ok(inc) = port.receive(Duration::from_secs(5)) {
            let body = inc.payload.to_vec();
            inc.reply(&body)?;
        }
        Ok(())
    });
    let (client, _) = PortClient::connect_with(
        "//hostb/bench.port",
        b"",
        T,
        &PortOptions::default().root(&ra),
    )?;
    let call: Trip = Box::new(move || {
        let r = client.call(&MSG, T)?;
        if r.as_slice().len() != 64 {
            return Err("short reply".into());
        }
        Ok(())
    });
    let (zen, _keep) = raw_zenoh()?;
    let mut trips = [pipe, call, zen, tcp()?];
    // Interleaved trials: a change in the machine's load hits every row alike.
    let mut samples: [Vec<f64>; 4] = Default::default();
    for _ in 0..TRIALS {
        for (trip, out) in trips.iter_mut().zip(samples.iter_mut()) {
            out.extend(time(warm, rounds / TRIALS, trip)?);
        }
    }
    drop(trips);
    drop(echo);
    drop((ba, bb));
    let [pipe, call, zen, tcp] = samples;
    let rows = [
        stats("pipe_pingpong_64B (bridge)", pipe),
        stats("call_64B (bridge)", call),
        stats("zenoh_pubsub_64B (raw)", zen),
        stats("tcp_64B (loopback)", tcp),
    ];
    let zen_median = rows[2].median;
    println!("culvert bench --remote: 64-byte round trips, µs (one process, loopback)");
    println!(
        "{:<28} {:>7} {:>9} {:>9} {:>9} {:>10}",
        "case", "n", "median", "p99", "mean", "vs zenoh"
    );
    for r in &rows {
        println!(
            "{:<28} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.2}x",
            r.name,
            r.n,
            r.median,
            r.p99,
            r.mean,
            r.median / zen_median
        );
    }
    let ratio = rows[0].median / zen_median;
    println!(
        "goal: bridge pipe round trip <= 1.5x raw zenoh: {:.2}x — {}",
        ratio,
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&ra);
    let _ = std::fs::remove_dir_all(&rb);
    Ok(())
}

fn tempfile_dir(tag: &str) -> Result<std::path::PathBuf, BoxError> {
    let base =
        std::env::temp_dir().join(format!("culvert-bench-remote-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}
