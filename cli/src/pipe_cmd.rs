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
//! The end is split: a thread copies stdin to the write half with blocking writes,
//! while the main thread sleeps in a `WaitSet` on the read half and on that thread's
//! "done" event, and reads with calls that never wait. Nothing polls: an idle session
//! sleeps until data comes, the peer goes, or stdin ends.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer, PipeWriter};
use culvert::{Event, WaitSet, Waitable};

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

/// How the stdin thread ended: `Ok` once stdin ended and all of it (and, on a message
/// pipe, the end marker) was written; the error otherwise.
type StdinOutcome = Result<(), BoxError>;

/// Spawns the thread that copies stdin to `writer` with blocking writes: chunks of at
/// most [`CHUNK`] bytes, each one message on a message pipe, then the empty end
/// marker. It sets `done` when it stops (after sending its outcome on the channel),
/// and drops the writer then, which half-closes the direction it wrote.
fn stdin_writer(
    mut writer: PipeWriter,
    messages: bool,
    done: Event,
) -> mpsc::Receiver<StdinOutcome> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let outcome = (|| -> StdinOutcome {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("reading stdin: {e}").into()),
                };
                if n == 0 && !messages {
                    return Ok(());
                }
                let written = if messages {
                    writer.write_message(&buf[..n]).map(drop)
                } else {
                    writer.write_all(&buf[..n]).map_err(culvert::Error::from)
                };
                match written {
                    Ok(()) if n == 0 => return Ok(()),
                    Ok(()) => {}
                    // The peer went: the session ends on the reading side.
                    Err(e) if peer_gone(&e) => return Ok(()),
                    Err(e) => return Err(format!("writing to the pipe: {e}").into()),
                }
            }
        })();
        let _ = tx.send(outcome);
        drop(writer);
        done.set();
    });
    rx
}

/// Whether an error means the peer is gone.
fn peer_gone(e: &culvert::Error) -> bool {
    matches!(e, culvert::Error::Closed | culvert::Error::PeerDied)
}

/// Copies stdin to `end` and `end` to stdout until the session ends.
///
/// The end is split: a thread writes stdin with blocking writes, and this thread sleeps
/// in a [`WaitSet`] on the read half and on the writer thread's `done` event (waking
/// every 100 ms to honour SIGINT/SIGTERM), reading with calls that never wait.
fn session(end: PipeEnd) -> Result<(), BoxError> {
    let messages = end.mode() == PipeMode::Message;
    let (mut reader, writer) = end
        .split()
        .map_err(|e| format!("splitting the pipe end: {e}"))?;
    let mut stdin_done = Event::new();
    let outcome = stdin_writer(writer, messages, stdin_done.clone());
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut set = WaitSet::new();
    let mut sent_end = false;
    let mut got_end = false;
    'session: loop {
        if crate::stop::requested() {
            break;
        }
        let _ = set.wait(
            &mut [&mut reader as &mut dyn Waitable, &mut stdin_done],
            Duration::from_millis(100),
        );
        if stdin_done.take() {
            outcome.recv().unwrap_or(Ok(()))?;
            sent_end = true;
            if !messages {
                // A byte pipe has no end marker: everything is written, disconnect.
                break;
            }
        }
        while !got_end {
            match reader.try_read_message(&mut buf) {
                Ok(r) if r.len == 0 && !r.more && messages => got_end = true,
                Ok(r) => stdout
                    .write_all(&buf[..r.len])
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("writing stdout: {e}"))?,
                Err(culvert::Error::WouldBlock) => break,
                Err(e) if peer_gone(&e) => break 'session,
                Err(e) => return Err(format!("reading the pipe: {e}").into()),
            }
        }
        if sent_end && got_end {
            break;
        }
    }
    stdout.flush().map_err(|e| format!("writing stdout: {e}"))?;
    Ok(())
}
