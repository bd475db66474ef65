//! `culvert mailslot read NAME` / `culvert mailslot write NAME`: lines of stdin as
//! mailslot messages, and messages printed as lines.
//!
//! A mailslot never blocks its writers: a full one drops the message and counts it.
//! `mailslot write` therefore retries a message the mailslot had no room for (napping
//! up to 1 ms between tries) until the reader takes some, so `seq 1000 | culvert
//! mailslot write x` delivers every line to a reader that keeps up; with `--drop` it
//! behaves like the API — drops, and says at the end how many were dropped. With
//! `--group`, both commands use a broadcast group instead: every joined reader gets
//! every message, and a reader that falls behind is told how many it missed.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::Duration;

use culvert::mailslot::{self, BroadcastSender, MailslotOptions, MailslotReader, MailslotWriter};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `culvert mailslot ...`
#[derive(Debug, clap::Subcommand)]
pub enum MailslotCommand {
    /// Create the mailslot NAME (or join the broadcast group NAME) and print each
    /// message it receives as a line.
    Read {
        /// The mailslot's (or group's) name.
        name: String,
        /// Join the broadcast group NAME instead of creating a mailslot.
        #[arg(long)]
        group: bool,
        /// Exit after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Exit when no message arrives for this many seconds (default: wait for ever).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Largest message in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = mailslot::DEFAULT_MAX_MESSAGE_SIZE)]
        max_size: usize,
        /// Messages the mailslot holds.
        #[arg(long, value_name = "N", default_value_t = mailslot::DEFAULT_CAPACITY)]
        capacity: usize,
    },
    /// Send each line of stdin (without its newline) as one message to the mailslot
    /// NAME (or the broadcast group NAME).
    Write {
        /// The mailslot's (or group's) name.
        name: String,
        /// Broadcast to the group NAME instead.
        #[arg(long)]
        group: bool,
        /// Drop a message the mailslot has no room for (count it) instead of retrying.
        #[arg(long)]
        drop: bool,
        /// Give up when the mailslot stays full this many seconds (its reader is not
        /// reading).
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        full_timeout: f64,
    },
}

fn secs(s: f64) -> Result<Duration, BoxError> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("invalid timeout {s}").into())
}

/// Runs a mailslot command.
pub fn run(cmd: &MailslotCommand, root: Option<&Path>) -> Result<(), BoxError> {
    match cmd {
        MailslotCommand::Read {
            name,
            group,
            count,
            timeout,
            max_size,
            capacity,
        } => {
            let timeout = timeout.map(secs).transpose()?;
            let mut opts = MailslotOptions::new()
                .max_message_size(*max_size)
                .capacity(*capacity)
                .read_timeout(timeout);
            if let Some(r) = root {
                opts = opts.root(r);
            }
            let slot = if *group {
                mailslot::join(name, &opts)
            } else {
                MailslotReader::create(name, &opts)
            }
            .map_err(|e| format!("mailslot '{name}': {e}"))?;
            read_loop(slot, *max_size, *count)
        }
        MailslotCommand::Write {
            name,
            group,
            drop,
            full_timeout,
        } => {
            let full_timeout = secs(*full_timeout)?;
            let mut opts = MailslotOptions::default();
            if let Some(r) = root {
                opts = opts.root(r);
            }
            let mut sink = if *group {
                Sink::Group(
                    BroadcastSender::open_with(name, &opts)
                        .map_err(|e| format!("group '{name}': {e}"))?,
                )
            } else {
                Sink::Slot(
                    MailslotWriter::open_with(name, &opts)
                        .map_err(|e| format!("mailslot '{name}': {e}"))?,
                )
            };
            write_loop(&mut sink, name, *drop, full_timeout)
        }
    }
}

fn read_loop(mut slot: MailslotReader, max: usize, count: Option<u64>) -> Result<(), BoxError> {
    let mut buf = vec![0u8; max];
    let mut out = io::stdout().lock();
    let mut got = 0u64;
    // Read in steps of at most 100 ms, so SIGINT/SIGTERM stops the reader (and removes
    // the mailslot); `idle` is the user's timeout between messages.
    let idle = slot.read_timeout();
    let step = Duration::from_millis(100);
    let mut last = std::time::Instant::now();
    while count != Some(got) && !crate::stop::requested() {
        let left = idle.map(|t| t.saturating_sub(last.elapsed()));
        if left == Some(Duration::ZERO) && idle != Some(Duration::ZERO) {
            break;
        }
        slot.set_read_timeout(Some(left.map_or(step, |l| l.min(step))));
        match slot.read(&mut buf) {
            Ok(n) => {
                out.write_all(&buf[..n])?;
                out.write_all(b"\n")?;
                out.flush()?;
                got += 1;
                last = std::time::Instant::now();
            }
            Err(culvert::Error::Overrun { missed }) => {
                eprintln!("culvert: fell behind: missed {missed} message(s)");
            }
            // A zero timeout: one look, then done.
            Err(culvert::Error::Timeout) if idle == Some(Duration::ZERO) => break,
            Err(culvert::Error::Timeout) => {}
            Err(e) => return Err(format!("reading the mailslot: {e}").into()),
        }
    }
    Ok(())
}

enum Sink {
    Slot(MailslotWriter),
    Group(BroadcastSender),
}

fn write_loop(
    sink: &mut Sink,
    name: &str,
    drop: bool,
    full_timeout: Duration,
) -> Result<(), BoxError> {
    let stdin = io::stdin().lock();
    let (mut sent, mut dropped) = (0u64, 0u64);
    for line in stdin.split(b'\n') {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let mut nap = Duration::from_micros(20);
        let give_up = std::time::Instant::now() + full_timeout;
        loop {
            let r = match sink {
                Sink::Slot(w) => w.write(&line),
                Sink::Group(g) => g.send(&line),
            };
            match r {
                Ok(()) => {
                    sent += 1;
                    break;
                }
                Err(culvert::Error::Full) if drop => {
                    dropped += 1;
                    break;
                }
                Err(culvert::Error::Full) if std::time::Instant::now() >= give_up => {
                    return Err(format!(
                        "mailslot '{name}' stayed full for {full_timeout:?} (its reader is \
                         not reading); {sent} message(s) sent"
                    )
                    .into());
                }
                Err(culvert::Error::Full) => {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("mailslot '{name}': {e}").into()),
            }
        }
    }
    if dropped > 0 {
        return Err(format!(
            "{dropped} of {} message(s) dropped: the mailslot was full",
            sent + dropped
        )
        .into());
    }
    Ok(())
}
