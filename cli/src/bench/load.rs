//! `culvert bench --load N`: N processes that burn CPU for the whole run, so every
//! transport is measured on a machine as busy as a loaded server.
//!
//! Each burner is this binary in the hidden `__bench-burn` role. It spins on
//! arithmetic and yields nothing; it exits when killed (the [`Load`] guard kills and
//! reaps every burner on drop) or when its parent is gone, so an aborted run leaves
//! no burner behind.

use std::io;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running burners; killed and reaped on drop.
pub struct Load {
    /// One child per burner, all started by [`Load::start`].
    burners: Vec<Child>,
}

impl Load {
    /// Starts `n` burners (none for 0).
    pub fn start(n: usize) -> io::Result<Load> {
        let exe = std::env::current_exe()?;
        let mut load = Load {
            burners: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let child = Command::new(&exe)
                .arg("__bench-burn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()?;
            load.burners.push(child);
        }
        Ok(load)
    }

    /// How many burners run.
    pub fn count(&self) -> usize {
        self.burners.len()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for b in &mut self.burners {
            let _ = b.kill();
        }
        for b in &mut self.burners {
            let _ = b.wait();
        }
    }
}

/// The burner role: spins until killed or orphaned.
pub fn burn() -> ! {
    let parent = rustix::process::getppid();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    loop {
        let until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < until {
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
        }
        if rustix::process::getppid() != parent {
            std::process::exit(0);
        }
    }
}
