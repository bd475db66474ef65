//! `culvert pipe serve NAME` / `culvert pipe connect NAME`: stdin and stdout through a
//! named pipe, both ways at once, like `nc` over a socket.
//!
//! ## Ending a session
//! `pipe serve` creates a **message** pipe by default, and the two commands mark the end
//! of their stdin with a zero-length message: each side keeps reading until the other
//! one's stdin ended too, so `serve > out` with `connect < in` carries all of `in`, and
//! `echo query | connect` still prints the reply. The session ends when both stdins
//! ended, or when the peer disconnects or dies (after everything it sent was read).
//!
//! On a **byte** pipe (`serve --mode byte`, or connecting to some other program's byte
//! pipe) there is no room for such a marker: the side whose stdin ends delivers it and
//! disconnects, and the peer then reads end of stream.
//!
//! One `PipeEnd` carries both directions, so the session is one loop over a
//! non-blocking end, fed by a thread reading stdin; when neither direction can move it
//! backs off from spinning to naps of at most 1 ms. Stdin is sent in chunks small
//! enough to be one ring record, so neither side ever blocks mid-message.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of stdin per message (at most a quarter of the smallest default ring).
const CHUNK: usize = 8 * 1024;

/// Pipe mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Messages (each stdin chunk one message; end of stdin is an empty message).
    Message,
    /// A byte stream (end of stdin disconnects).
    Byte,
}

/// `culvert pipe ...`
#[derive(Debug, clap::Subcommand)]
pub enum PipeCommand {
    /// Create the named pipe NAME, wait for one client, then copy stdin to it and what
    /// it sends to stdout.
    Serve {
        /// The pipe's name.
        name: String,
        /// Message pipe (default) or byte pipe.
        #[arg(long, value_enum, default_value_t = ModeArg::Message)]
        mode: ModeArg,
        /// Ring size of each direction, in bytes (default 64 KiB).
        #[arg(long, value_name = "BYTES")]
        buffer: Option<usize>,
        /// Give up if no client connects within this many seconds (default: wait).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
    },
    /// Connect to the named pipe NAME, then copy stdin to it and what it sends to
    /// stdout.
    Connect {
        /// The pipe's name.
        name: String,
        /// Wait up to this many seconds for a free instance (default: the server's).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
    },
}

fn secs(s: f64) -> Result<Duration, BoxError> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("invalid timeout {s}").into())
}

/// Runs a pipe command.
pub fn run(cmd: &PipeCommand, root: Option<&Path>) -> Result<(), BoxError> {
    let mut opts = PipeOptions::default();
    if let Some(root) = root {
        opts = opts.root(root);
    }
    match cmd {
        PipeCommand::Serve {
            name,
            mode,
            buffer,
            timeout,
        } => {
            opts = opts.mode(match mode {
                ModeArg::Message => PipeMode::Message,
                ModeArg::Byte => PipeMode::Byte,
            });
            if let Some(b) = buffer {
                opts = opts.buffers(*b);
            }
            let server =
                PipeServer::bind(name, &opts).map_err(|e| format!("pipe '{name}': {e}"))?;
            let deadline = timeout
                .map(|t| secs(t).map(|d| std::time::Instant::now() + d))
                .transpose()?;
            // Accept in steps, so SIGINT/SIGTERM stops the wait (and removes the pipe).
            let end = loop {
                let step = Duration::from_millis(100);
                let step = deadline.map_or(step, |d| {
                    step.min(d.saturating_duration_since(std::time::Instant::now()))
                });
                match server.accept_until(step) {
                    Err(culvert::Error::Timeout)
                        if !crate::stop::requested()
                            && deadline.is_none_or(|d| std::time::Instant::now() < d) => {}
                    Err(culvert::Error::Timeout) if crate::stop::requested() => return Ok(()),
                    r => break r,
                }
            }
            .map_err(|e| format!("pipe '{name}': waiting for a client: {e}"))?;
            session(end)?;
            drop(server);
            Ok(())
        }
        PipeCommand::Connect { name, timeout } => {
            let timeout = timeout.map(secs).transpose()?;
            let end = match timeout {
                Some(t) => PipeEnd::connect_with(name, t, &opts),
                None => PipeEnd::connect_default_wait(name, &opts),
            };
            let end = end.map_err(|e| match e {
                culvert::Error::NotFound { .. } => {
                    let root = opts.section.namespace_root().unwrap_or_default();
                    format!(
                        "pipe '{name}': no live server of that name in {}",
                        root.display()
                    )
                }
                e => format!("pipe '{name}': {e}"),
            })?;
            session(end)
        }
    }
}

/// Spawns the thread that reads stdin into chunks; an empty chunk means end of stdin.
fn stdin_reader() -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut buf = vec![0u8; CHUNK];
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Whether an error means the peer is gone.
fn peer_gone(e: &culvert::Error) -> bool {
    matches!(e, culvert::Error::Closed | culvert::Error::PeerDied)
}

/// Copies stdin to `end` and `end` to stdout until the session ends.
fn session(mut end: PipeEnd) -> Result<(), BoxError> {
    let messages = end.mode() == PipeMode::Message;
    end.set_nonblocking(true);
    let input = stdin_reader();
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    // Outgoing chunk not yet written (and how much of it went, for byte pipes).
    let mut pending: Option<(Vec<u8>, usize)> = None;
    let mut stdin_done = false;
    let mut sent_end = false;
    let mut got_end = false;
    let mut idle = 0u32;
    loop {
        if crate::stop::requested() {
            break;
        }
        let mut progress = false;

        // stdin → pipe
        if pending.is_none() && !stdin_done {
            match input.try_recv() {
                Ok(Ok(chunk)) => {
                    if chunk.is_empty() {
                        stdin_done = true;
                        if messages {
                            pending = Some((Vec::new(), 0));
                        }
                    } else {
                        pending = Some((chunk, 0));
                    }
                    progress = true;
                }
                Ok(Err(e)) => return Err(format!("reading stdin: {e}").into()),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => stdin_done = true,
            }
        }
        if let Some((chunk, done)) = &mut pending {
            match end.write_message(&chunk[*done..]) {
                Ok(n) => {
                    *done += n;
                    if messages || *done >= chunk.len() {
                        if chunk.is_empty() {
                            sent_end = true;
                        }
                        pending = None;
                    }
                    progress = true;
                }
                Err(culvert::Error::WouldBlock) => {}
                Err(e) if peer_gone(&e) => break,
                Err(e) => return Err(format!("writing to the pipe: {e}").into()),
            }
        }
        if !messages && stdin_done && pending.is_none() {
            // A byte pipe has no end marker: everything is written, disconnect.
            break;
        }

        // pipe → stdout
        if !got_end {
            match end.read_message(&mut buf) {
                Ok(r) => {
                    if r.len == 0 && !r.more && messages {
                        got_end = true;
                    } else {
                        stdout
                            .write_all(&buf[..r.len])
                            .and_then(|()| stdout.flush())
                            .map_err(|e| format!("writing stdout: {e}"))?;
                    }
                    progress = true;
                }
                Err(culvert::Error::WouldBlock) => {}
                Err(e) if peer_gone(&e) => break,
                Err(e) => return Err(format!("reading the pipe: {e}").into()),
            }
        }
        if sent_end && got_end {
            break;
        }

        if progress {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            if idle < 64 {
                std::hint::spin_loop();
            } else if idle < 128 {
                std::thread::yield_now();
            } else {
                let nap = 20u64 << ((idle - 128) / 16).min(6);
                std::thread::sleep(Duration::from_micros(nap.min(1000)));
            }
        }
    }
    stdout.flush().map_err(|e| format!("writing stdout: {e}"))?;
    end.disconnect();
    Ok(())
}
