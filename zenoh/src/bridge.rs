//! [`Bridge`]: one host's redirector and its Zenoh session.
//!
//! Started with a [`BridgeConfig`], a bridge
//!
//! * opens a Zenoh peer session on exactly the configured endpoints;
//! * declares its liveliness token `culvert/<domain>/b/<host>` and watches the other
//!   bridges' tokens: when one vanishes (its process died or lost the network),
//!   every connection with that host ends as if the far peer had died (its local
//!   peer sees `PeerDied`);
//! * serves the redirector pipe [`REDIRECTOR_PIPE`] in its namespace root, turning
//!   each local `//host/name` request into a local proxy object (see [`crate::open`]);
//! * answers open requests from other bridges on `culvert/<domain>/h/<host>/open`,
//!   for exported names only.
//!
//! [`Bridge::stop`] (or drop) closes the redirector, aborts every connection (its
//! local peer sees a close) and closes the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use culvert::pipe::{PipeOptions, PipeServer};
use culvert::remote::{Reply, Request, MAX_FRAME, REDIRECTOR_PIPE};
use culvert::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use culvert::Error;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::query::Queryable;
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

use crate::{BridgeConfig, BridgeError};

/// A connection with another host, which that host's fate ends.
pub(crate) trait Abortable: Send + Sync {
    /// The far host.
    fn peer(&self) -> &str;
    /// Tears down; the local peer sees a close (idempotent).
    fn abort(&self);
    /// This bridge stops: tells the far side (its local peer sees a close), then
    /// tears down as [`abort`](Self::abort) does.
    fn stop(&self);
    /// The far host's bridge died or went out of reach: ends the connection as a far
    /// peer's death (the local peer sees `PeerDied`). Idempotent.
    fn peer_died(&self);
}

/// What every part of a running bridge shares.
pub(crate) struct Inner {
    pub(crate) cfg: BridgeConfig,
    pub(crate) session: Session,
    /// `culvert/<domain>`.
    pub(crate) prefix: String,
    pub(crate) stopping: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<dyn Abortable>>>,
    pub(crate) slots: crate::mailslot::Slots,
    /// Awaits the far side's port calls (`PendingCall` futures).
    pub(crate) runtime: tokio::runtime::Runtime,
}

/// Removes a connection from the registry when dropped.
pub(crate) struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Registration {
    pub(crate) fn new(inner: &Arc<Inner>, conn: Arc<dyn Abortable>) -> Registration {
        let id = inner.next_id();
        inner.conns_lock().insert(id, conn);
        Registration {
            inner: inner.clone(),
            id,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.conns_lock().remove(&self.id);
    }
}

impl Inner {
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn conns_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<dyn Abortable>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connections with `host` (`None`: all).
    fn conns_with(&self, host: Option<&str>) -> Vec<Arc<dyn Abortable>> {
        self.conns_lock()
            .values()
            .filter(|c| host.is_none_or(|h| c.peer() == h))
            .cloned()
            .collect()
    }

    /// Stops every connection, telling each far side.
    fn stop_all(&self) {
        for c in self.conns_with(None) {
            c.stop();
        }
    }

    /// Ends every connection with `host`, whose bridge is gone, as a peer's death.
    pub(crate) fn peer_host_died(&self, host: &str) {
        for c in self.conns_with(Some(host)) {
            c.peer_died();
        }
    }

    /// Pipe options in this bridge's namespace.
    pub(crate) fn pipe_options(&self) -> PipeOptions {
        match &self.cfg.root {
            Some(r) => PipeOptions::default().root(r),
            None => PipeOptions::default(),
        }
    }

    /// Key of `host`'s open queryable.
    pub(crate) fn open_key(&self, host: &str) -> String {
        format!("{}/h/{host}/open", self.prefix)
    }
}

/// A running bridge. Dropping it stops it.
pub struct Bridge {
    inner: Arc<Inner>,
    redirector: Option<JoinHandle<()>>,
    _token: LivelinessToken,
    _watch: Subscriber<()>,
    _open: Queryable<()>,
    _extra: Vec<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("domain", &self.inner.cfg.domain)
            .field("host", &self.inner.cfg.host)
            .finish_non_exhaustive()
    }
}

fn zerr(what: &str) -> impl FnOnce(zenoh::Error) -> BridgeError + '_ {
    move |e| BridgeError::Zenoh(format!("{what}: {e}"))
}

impl Bridge {
    /// Starts a bridge: opens the Zenoh session, declares its keys and serves the
    /// redirector pipe.
    ///
    /// # Errors
    /// `Config` for a bad configuration; `Zenoh` if the session cannot open (e.g. a
    /// listen endpoint is taken); `Local` if the redirector pipe cannot be served
    /// (e.g. another live bridge serves this namespace).
    pub fn start(cfg: BridgeConfig) -> Result<Bridge, BridgeError> {
        let zcfg = cfg.zenoh_config()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("culvert-bridge")
            .build()
            .map_err(|e| BridgeError::Local(format!("tokio runtime: {e}")))?;
        let session = zenoh::open(zcfg).wait().map_err(zerr("open session"))?;
        let prefix = format!("culvert/{}", cfg.domain);
        let inner = Arc::new(Inner {
            cfg,
            session,
            prefix,
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            slots: Default::default(),
            runtime,
        });
        let started = Self::declare(&inner);
        if started.is_err() {
            let _ = inner.session.close().wait();
        }
        started
    }

    fn declare(inner: &Arc<Inner>) -> Result<Bridge, BridgeError> {
        let s = &inner.session;
        let host = inner.cfg.host.clone();
        let weak = Arc::downgrade(inner);
        let watch = s
            .liveliness()
            .declare_subscriber(format!("{}/b/*", inner.prefix))
            .callback(move |sample| {
                if sample.kind() != SampleKind::Delete {
                    return;
                }
                let key = sample.key_expr().as_str();
                if let (Some(peer), Some(inner)) = (key.rsplit('/').next(), weak.upgrade()) {
                    inner.peer_host_died(peer);
                }
            })
            .wait()
            .map_err(zerr("liveliness subscriber"))?;
        let weak = Arc::downgrade(inner);
        let open = s
            .declare_queryable(inner.open_key(&host))
            .callback(move |query| {
                if let Some(inner) = weak.upgrade() {
                    std::thread::spawn(move || crate::open::serve_open(&inner, query));
                }
            })
            .wait()
            .map_err(zerr("open queryable"))?;
        let extra = crate::mailslot::declare(inner)?;
        let server = PipeServer::bind(
            REDIRECTOR_PIPE,
            &inner
                .pipe_options()
                .mode(culvert::pipe::PipeMode::Message)
                .max_instances(255)
                .buffers(8 * 1024),
        )
        .map_err(|e| BridgeError::Local(format!("serving {REDIRECTOR_PIPE}: {e}")))?;
        // Last: seeing the token means every declaration above is known too.
        let token = s
            .liveliness()
            .declare_token(format!("{}/b/{host}", inner.prefix))
            .wait()
            .map_err(zerr("liveliness token"))?;
        let i2 = inner.clone();
        let redirector = std::thread::Builder::new()
            .name("culvert-redirector".into())
            .spawn(move || redirect_loop(&i2, &server))
            .map_err(|e| BridgeError::Local(format!("thread: {e}")))?;
        Ok(Bridge {
            inner: inner.clone(),
            redirector: Some(redirector),
            _token: token,
            _watch: watch,
            _open: open,
            _extra: extra,
        })
    }

    /// This bridge's host name.
    pub fn host(&self) -> &str {
        &self.inner.cfg.host
    }

    /// Whether the bridge of `host` is up and reachable (its liveliness token is
    /// seen), waiting up to `timeout`.
    pub fn wait_for_host(&self, host: &str, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        let key = format!("{}/b/{host}", self.inner.prefix);
        while std::time::Instant::now() < until {
            if let Ok(replies) = self
                .inner
                .session
                .liveliness()
                .get(&key)
                .timeout(Duration::from_millis(500))
                .wait()
            {
                if replies.recv().is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops: no new requests; every connection aborted, its far side told (so the
    /// far peers see a close, not a death); the session closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.inner.stopping.store(true, Ordering::Release);
        if let Some(t) = self.redirector.take() {
            let _ = t.join();
        }
        self.inner.stop_all();
        let _ = self.inner.session.close().wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts redirector connections until the bridge stops; one thread each.
fn redirect_loop(inner: &Arc<Inner>, server: &PipeServer) {
    while !inner.stopping.load(Ordering::Acquire) {
        match server.accept_until(Duration::from_millis(50)) {
            Ok(mut end) => {
                let inner = inner.clone();
                std::thread::spawn(move || {
                    end.set_read_timeout(Some(Duration::from_secs(5)));
                    end.set_write_timeout(Some(Duration::from_secs(5)));
                    let mut buf = vec![0u8; MAX_FRAME];
                    let reply = match end.read_message(&mut buf) {
                        Ok(r) if !r.more => match Request::decode(&buf[..r.len]) {
                            Ok(req) => crate::open::redirect(&inner, &req),
                            Err(e) => Reply::from_error(&e),
                        },
                        Ok(_) => Reply::from_error(&Error::InvalidArgument {
                            what: "redirector request too long".into(),
                        }),
                        Err(_) => return,
                    };
                    let _ = end.write_message(&reply.encode());
                });
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
