//! A broadcast group: every reader that joined gets every message.
//!
//! Two readers `mailslot::join` the group (here, two threads of this process), then a
//! writer process (this same program, re-executed as `broadcast_group writer`) opens a
//! `BroadcastSender` and broadcasts a few messages, which both readers receive. A
//! reader that fell too far behind would get `Error::Overrun { missed }` first: loss
//! is never silent. Run it with:
//!
//! ```sh
//! cargo run -p culvert --example broadcast_group
//! ```
//!
//! The group lives in a private namespace directory: `$CULVERT_ROOT` if set, else a
//! fresh temporary directory that is removed at the end.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use culvert::mailslot::{self, BroadcastSender, MailslotOptions};

const GROUP: &str = "news";
const MESSAGES: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace root, and whether this process created it (and must remove it).
fn namespace_root() -> std::io::Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os("CULVERT_ROOT") {
        return Ok((PathBuf::from(dir), false));
    }
    let dir = std::env::temp_dir().join(format!("culvert-broadcast-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok((dir, true))
}

fn options(root: &Path) -> MailslotOptions {
    // Messages up to 256 bytes, a ring of 16, reads wait up to 5 s.
    MailslotOptions::new()
        .max_message_size(256)
        .capacity(16)
        .read_timeout(TIMEOUT)
        .root(root)
}

fn main() -> Result<(), Box<dyn Error>> {
    let (root, created) = namespace_root()?;
    let result = if std::env::args().nth(1).as_deref() == Some("writer") {
        writer(&root)
    } else {
        readers(&root)
    };
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}

fn readers(root: &Path) -> Result<(), Box<dyn Error>> {
    // Join before the writer starts: a reader sees messages broadcast after it joined.
    let members = [
        mailslot::join(GROUP, &options(root))?,
        mailslot::join(GROUP, &options(root))?,
    ];
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(r, mut reader)| {
            std::thread::spawn(move || -> culvert::Result<usize> {
                let mut buf = [0u8; 256];
                let mut received = 0;
                while received < MESSAGES {
                    match reader.read(&mut buf) {
                        Ok(n) => {
                            let text = String::from_utf8_lossy(&buf[..n]);
                            println!("reader {r}: {text}");
                            received += 1;
                        }
                        Err(culvert::Error::Overrun { missed }) => {
                            println!("reader {r}: missed {missed} messages");
                            received += missed as usize;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(received)
            })
        })
        .collect();

    let status = Command::new(std::env::current_exe()?)
        .arg("writer")
        .env("CULVERT_ROOT", root)
        .status()?;
    if !status.success() {
        return Err(format!("writer failed: {status}").into());
    }
    for t in threads {
        let received = t.join().map_err(|_| "reader thread panicked")??;
        if received != MESSAGES {
            return Err(format!("a reader got {received} messages").into());
        }
    }
    println!("broadcast_group: ok");
    Ok(())
}

fn writer(root: &Path) -> Result<(), Box<dyn Error>> {
    let mut sender = BroadcastSender::open_with(GROUP, &options(root))?;
    println!("writer: {} readers in group {GROUP:?}", sender.readers());
    for i in 0..MESSAGES {
        sender.send(format!("bulletin {i}").as_bytes())?;
    }
    Ok(())
}
