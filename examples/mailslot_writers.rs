//! A mailslot with one reader and several writer processes.
//!
//! The reader creates the mailslot with `MailslotReader::create`; three writer processes
//! (this same program, re-executed as `mailslot_writers writer <n>`) each attach with
//! `MailslotWriter::open_with` and send a few messages. Writes never block: a full
//! mailslot answers `Error::Full` (and counts the drop), and these writers then retry.
//! The reader checks that every message arrived, in each writer's order. Run it with:
//!
//! ```sh
//! cargo run -p culvert --example mailslot_writers
//! ```
//!
//! The mailslot lives in a private namespace directory: `$CULVERT_ROOT` if set, else a
//! fresh temporary directory that is removed at the end.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use culvert::mailslot::{MailslotOptions, MailslotReader, MailslotWriter};

const SLOT: &str = "events";
const WRITERS: usize = 3;
const MESSAGES: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace root, and whether this process created it (and must remove it).
fn namespace_root() -> std::io::Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os("CULVERT_ROOT") {
        return Ok((PathBuf::from(dir), false));
    }
    let dir = std::env::temp_dir().join(format!("culvert-mailslot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok((dir, true))
}

fn options(root: &Path) -> MailslotOptions {
    // Messages up to 256 bytes, 8 queued at most, reads wait up to 5 s.
    MailslotOptions::new()
        .max_message_size(256)
        .capacity(8)
        .read_timeout(TIMEOUT)
        .root(root)
}

fn main() -> Result<(), Box<dyn Error>> {
    let (root, created) = namespace_root()?;
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("writer") => {
            let n: usize = args.next().ok_or("writer needs a number")?.parse()?;
            writer(&root, n)
        }
        _ => reader(&root),
    };
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}

fn reader(root: &Path) -> Result<(), Box<dyn Error>> {
    let mut slot = MailslotReader::create(SLOT, &options(root))?;
    let children = (0..WRITERS)
        .map(|n| {
            Command::new(std::env::current_exe()?)
                .arg("writer")
                .arg(n.to_string())
                .env("CULVERT_ROOT", root)
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;

    let mut next = [0usize; WRITERS]; // next message number expected from each writer
    let mut buf = [0u8; 256];
    for _ in 0..WRITERS * MESSAGES {
        let len = slot.read(&mut buf)?; // waits up to the read timeout
        let text = std::str::from_utf8(&buf[..len])?;
        println!("reader: {text}");
        let (w, m) = parse(text).ok_or_else(|| format!("unexpected message {text:?}"))?;
        if w >= WRITERS || m != next[w] {
            return Err(format!("out of order: {text:?}").into());
        }
        next[w] += 1;
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("writer failed: {status}").into());
        }
    }
    let info = slot.info()?;
    println!(
        "reader: {} messages from {WRITERS} writers, {} drops retried",
        WRITERS * MESSAGES,
        info.dropped
    );
    println!("mailslot_writers: ok");
    Ok(())
}

/// Parses "writer W message M".
fn parse(text: &str) -> Option<(usize, usize)> {
    let rest = text.strip_prefix("writer ")?;
    let (w, m) = rest.split_once(" message ")?;
    Some((w.parse().ok()?, m.parse().ok()?))
}

fn writer(root: &Path, n: usize) -> Result<(), Box<dyn Error>> {
    let mut writer = MailslotWriter::open_with(SLOT, &options(root))?;
    for m in 0..MESSAGES {
        let msg = format!("writer {n} message {m}");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match writer.write(msg.as_bytes()) {
                Ok(()) => break,
                // Dropped (and counted): the reader is behind; try again shortly.
                Err(culvert::Error::Full) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
