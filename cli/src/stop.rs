//! SIGINT and SIGTERM as a request to stop. The long-running commands (`pipe serve`,
//! `pipe connect`, `mailslot read`) poll [`requested`] at least every 100 ms and then
//! return normally, so the sections they own are closed and removed by the usual
//! drops instead of being left behind as they are when a process is killed.

// signal-hook sets a std atomic from the handler; the loom shim's type will not do.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// The flag the signal handlers set.
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn requested() -> bool {
    FLAG.get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
}
