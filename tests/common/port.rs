//! Port helpers of the cross-process tests: a test's namespace root as port options,
//! marker files in it, ports served by threads of the test process with an echo
//! handler, and clients that connect as soon as the port exists.
//!
//! A child finds the test's namespace root in `CULVERT_ROOT` (set with
//! `ChildCommand::namespace`); the parent passes it explicitly in `PortOptions`.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use culvert::port::{Incoming, MessageKind, PortOptions, PortServer};
use culvert::sync::atomic::{AtomicBool, Ordering};
use culvert::Deadline;
use culvert_testkit::TempRoot;

/// A test's namespace root seen from the port layer.
pub trait PortRoot {
    /// Port options rooted here.
    fn opts(&self) -> PortOptions;
    /// A marker file in the root.
    fn marker(&self, name: &str) -> PathBuf;
}

impl PortRoot for TempRoot {
    fn opts(&self) -> PortOptions {
        PortOptions::default().root(self.path())
    }

    fn marker(&self, name: &str) -> PathBuf {
        self.join(format!("marker-{name}"))
    }
}

/// What the echo servers of these tests reply: every byte + 1.
pub fn transform(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b.wrapping_add(1)).collect()
}

/// A port served by threads of the test process.
pub struct Served {
    /// The port.
    pub port: Arc<PortServer>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The echo handler: replies `transform(request)` (the request view is released first).
pub fn echo(mut inc: Incoming) {
    if inc.kind == MessageKind::Request {
        let data = std::mem::take(&mut inc.payload);
        let out = transform(data.as_slice());
        drop(data);
        let _ = inc.reply(&out);
    }
}

/// Serves port `name`: one thread listens (accepting payload `b"ok"`, rejecting the
/// rest with reason `b"go away: " + payload`), `receivers` threads run `handler`.
pub fn serve(
    name: &str,
    opts: &PortOptions,
    namespace: &PortOptions,
    receivers: usize,
    handler: Arc<dyn Fn(Incoming) + Send + Sync>,
) -> Served {
    let opts = PortOptions {
        root: namespace.root.clone(),
        ..opts.clone()
    };
    let port = Arc::new(PortServer::create(name, &opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    {
        let (port, stop) = (port.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match port.listen(Deadline::after(Duration::from_millis(50))) {
                    Ok(req) => {
                        if req.payload == b"ok" {
                            let _ = req.accept(b"welcome");
                        } else {
                            let mut reason = b"go away: ".to_vec();
                            reason.extend_from_slice(&req.payload);
                            let _ = req.reject(&reason);
                        }
                    }
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => panic!("listen: {e}"),
                }
            }
        }));
    }
    for _ in 0..receivers {
        let (port, stop, handler) = (port.clone(), stop.clone(), handler.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match port.receive(Deadline::after(Duration::from_millis(50))) {
                    Ok(inc) => handler(inc),
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => panic!("receive: {e}"),
                }
            }
        }));
    }
    Served {
        port,
        stop,
        threads,
    }
}

impl Served {
    /// Stops the threads (propagating their panics).
    pub fn stop(mut self) -> Arc<PortServer> {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            t.join().expect("server thread panicked");
        }
        self.port.clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Connects (retrying while the port does not exist yet) with payload `b"ok"`.
pub fn connect(name: &str) -> culvert::port::PortClient {
    let start = Instant::now();
    loop {
        match culvert::port::PortClient::connect(
            name,
            b"ok",
            Deadline::after(Duration::from_secs(10)),
        ) {
            Ok((c, accept)) => {
                assert_eq!(accept, b"welcome");
                return c;
            }
            Err(culvert::Error::NotFound { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}
