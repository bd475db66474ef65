//! The captured output of a child: a thread drains one pipe (stdout or stderr) into a
//! shared buffer until end of file, so the child never blocks on a full pipe and what
//! it printed can be searched while it runs and shown when it failed.

use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most of one stream shown in a report: its end.
const SHOWN: usize = 16 * 1024;

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    ended: bool,
}

/// One drained stream.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<State>>);

impl Capture {
    /// Drains `pipe` on a thread of its own.
    pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> Capture {
        let capture = Capture::default();
        let sink = capture.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().bytes.extend_from_slice(&buf[..n]),
                }
            }
            sink.lock().ended = true;
        });
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything read so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Whether `needle` was read so far.
    pub(crate) fn contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        needle.is_empty() || self.lock().bytes.windows(needle.len()).any(|w| w == needle)
    }

    /// Whether the stream ended (every writer closed it).
    pub(crate) fn ended(&self) -> bool {
        self.lock().ended
    }

    /// Waits until the stream ended or `limit` passed (a grandchild may hold it open).
    pub(crate) fn settle(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.ended() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The end of what was read, for a report.
    pub(crate) fn tail(&self) -> String {
        let state = self.lock();
        let from = state.bytes.len().saturating_sub(SHOWN);
        let cut = if from > 0 { "[...]\n" } else { "" };
        format!("{cut}{}", String::from_utf8_lossy(&state.bytes[from..]))
    }
}
