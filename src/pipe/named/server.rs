//! [`PipeServer`]: the server of a named pipe — binding the name (making the server
//! section), its queries (name, mode, instances in use), its readiness for a wait set
//! or the reactor, and dropping it (the name goes; connections live on).
//!
//! Accepting itself is in `accept`: one step that never waits ([`try_accept`]) and
//! the waiting forms over it ([`accept`], [`accept_until`], [`accept_async`]), which
//! sleep on the header's `events` notifier between steps. `bind`, the queries and drop
//! never wait.
//!
//! [`try_accept`]: PipeServer::try_accept
//! [`accept`]: PipeServer::accept
//! [`accept_until`]: PipeServer::accept_until
//! [`accept_async`]: PipeServer::accept_async

use std::sync::{Arc, Mutex};

use culvert_ring::mpmc;
use culvert_section::{Section, SectionKind, SectionOptions};
use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, ProcessIdentity};

use super::super::end::PipeEnd;
use super::super::layout::{StateView, SHARED_MESSAGE_MAX};
use super::super::options::{validate_pipe_name, PipeMode, PipeOptions, MAX_INSTANCES};
use super::super::shared::HolderView;
use super::layout::{
    Cell, ServerHeader, ServerTables, Slot, CELLS, OBJ_CELLS, OBJ_HEADER, OBJ_REQUESTS, OBJ_SLOTS,
    REQUEST_LEN, SERVER_FLAG_SHARED, SERVER_MAGIC,
};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

mod accept;
#[cfg(all(test, not(loom)))]
mod tests;

/// Shared mode: what `accept` keeps of an instance it made, to free its slot once both
/// ends are gone.
struct TrackedInstance {
    ticket: u64,
    state: StateView,
    holders: HolderView,
    name: String,
}

/// The server of a named pipe: owns the name, accepts connections.
///
/// Each accepted connection is an instance with its own section and rings; at most
/// [`PipeOptions::max_instances`] exist at once. A client that finds every instance
/// taken waits (up to its timeout) and then gets `Error::Busy`. Dropping the server
/// removes the name; connections already made live on.
///
/// # Example
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
///
/// # fn main() -> culvert::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("culvert-doc-server-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let opts = PipeOptions::default()
///     .mode(PipeMode::Message)
///     .max_instances(2)
///     .root(&dir); // tests and examples use their own namespace directory
/// let server = PipeServer::bind("example-pipe", &opts)?;
/// let client = std::thread::spawn({
///     let opts = opts.clone();
///     move || -> culvert::Result<Vec<u8>> {
///         let mut end = PipeEnd::connect_with("example-pipe", Duration::from_secs(5), &opts)?;
///         let mut reply = [0u8; 64];
///         let got = end.transact(b"hello", &mut reply)?;
///         Ok(reply[..got.len].to_vec())
///     }
/// });
/// let mut conn = server.accept()?;
/// let mut buf = [0u8; 64];
/// let n = conn.read(&mut buf)?;
/// conn.write_all(&buf[..n].to_ascii_uppercase())?;
/// assert_eq!(client.join().unwrap()?, b"HELLO");
/// # drop(server);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub struct PipeServer {
    tables: Arc<ServerTables>,
    consumer: Mutex<mpmc::MessageReader>,
    opts: PipeOptions,
    /// Shared mode: per slot, the instance made for it (see [`TrackedInstance`]).
    tracked: Mutex<Vec<Option<TrackedInstance>>>,
    /// Instances answered whose client has not attached yet.
    pending: Mutex<Vec<accept::PendingAccept>>,
}

impl std::fmt::Debug for PipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeServer")
            .field("name", &self.tables.name)
            .field("max_instances", &self.tables.max_instances)
            .finish_non_exhaustive()
    }
}

impl PipeServer {
    /// Creates the named pipe `name` (`[A-Za-z0-9._-]`, at most 170 characters) with
    /// the mode, `max_instances`, buffer sizes, `max_message` and default timeout of
    /// `opts`. `AlreadyExists` if a live server has the name (a dead server's section is
    /// replaced); `InvalidName`, `InvalidArgument` on bad arguments.
    pub fn bind(name: &str, opts: &PipeOptions) -> Result<PipeServer> {
        validate_pipe_name(name)?;
        opts.validate()?;
        if opts.max_instances == 0 || opts.max_instances > MAX_INSTANCES {
            return Err(Error::InvalidArgument {
                what: format!("max_instances must be 1 to {MAX_INSTANCES}"),
            });
        }
        if opts.shared && opts.mode == PipeMode::Message && opts.max_message > SHARED_MESSAGE_MAX {
            return Err(Error::InvalidArgument {
                what: format!(
                    "shared message pipes carry messages of at most {SHARED_MESSAGE_MAX} bytes \
                     (each ring slot holds a whole message); max_message is {}",
                    opts.max_message
                ),
            });
        }
        let ring_config = mpmc::Config::new(CELLS, REQUEST_LEN).with_max_endpoints(256);
        let ring_len = mpmc::MessageRing::required_size(&ring_config)?;
        let slots_len = opts.max_instances * std::mem::size_of::<Slot>();
        let cells_len = CELLS * std::mem::size_of::<Cell>();
        let total = std::mem::size_of::<ServerHeader>() + slots_len + cells_len + ring_len + 8192;
        let sopts = opts.section_for(SectionKind::PipeServer);
        let mut section = Section::create_replacing_stale(name, total as u64, &sopts, |old| {
            Self::server_gone_in(name, old, &sopts)
        })
        .map_err(|e| match e {
            culvert_section::Error::AlreadyExists { .. } => Error::AlreadyExists {
                name: name.to_string(),
            },
            e => e.into(),
        })?;
        let header = section.add_object(
            "server",
            OBJ_HEADER,
            std::mem::size_of::<ServerHeader>() as u64,
            128,
        )?;
        section.add_object("slots", OBJ_SLOTS, slots_len as u64, 64)?;
        section.add_object("cells", OBJ_CELLS, cells_len as u64, 64)?;
        let requests = section.add_object("requests", OBJ_REQUESTS, ring_len as u64, 4096)?;
        mpmc::MessageRing::init(&requests, &ring_config)?;
        {
            // Nobody else maps the section until it is marked ready.
            let h = header
                .view::<ServerHeader>(0)
                .ok_or_else(|| Error::Corrupted {
                    what: "pipe server header object misplaced".into(),
                })?;
            h.mode.store(opts.mode.as_u32(), Ordering::Relaxed);
            h.max_instances
                .store(opts.max_instances as u32, Ordering::Relaxed);
            h.cells.store(CELLS as u32, Ordering::Relaxed);
            h.flags.store(
                if opts.shared { SERVER_FLAG_SHARED } else { 0 },
                Ordering::Relaxed,
            );
            h.default_timeout_ms.store(
                opts.default_timeout.as_millis().min(u128::from(u64::MAX)) as u64,
                Ordering::Relaxed,
            );
            h.server
                .store(ProcessIdentity::me().packed(), Ordering::Relaxed);
            h.next_ticket.store(1, Ordering::Relaxed);
            h.magic.store(SERVER_MAGIC, Ordering::Release);
        }
        section.mark_ready()?;
        let mut consumer = mpmc::MessageReader::attach(&requests)?;
        consumer.set_wait_strategy(opts.wait_strategy);
        Ok(PipeServer {
            tables: Arc::new(ServerTables::new(name, section)?),
            consumer: Mutex::new(consumer),
            opts: opts.clone(),
            tracked: Mutex::new((0..opts.max_instances).map(|_| None).collect()),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Whether `section` (at `name`) belongs to a server that is gone: closed, its
    /// process dead, or its header unreadable.
    fn server_gone_in(name: &str, section: &Section, sopts: &SectionOptions) -> bool {
        let view = section
            .as_fd()
            .try_clone_to_owned()
            .map_err(Error::from)
            .and_then(|fd| Ok(Section::from_fd_with(fd, name, sopts)?))
            .and_then(|s| ServerTables::new(name, s));
        view.map_or(true, |tables| tables.server_gone())
    }

    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.tables.name
    }

    /// The mode of its instances.
    pub fn mode(&self) -> PipeMode {
        self.tables.mode
    }

    /// Instances in use (connections whose ends are not both gone).
    pub fn instances_in_use(&self) -> usize {
        if self.tables.shared_mode {
            self.reclaim_shared_instances();
        }
        (0..self.tables.max_instances)
            .filter(|&k| self.tables.slot(k).ticket() != 0)
            .count()
    }

    /// Waits for a client and returns the server end of the new connection.
    ///
    /// # Errors
    /// As [`accept_until`](Self::accept_until), without `Timeout`.
    pub fn accept(&self) -> Result<PipeEnd> {
        self.accept_until(Deadline::never())
    }

    /// [`accept`](Self::accept) as a future: waits for a client without blocking the
    /// thread.
    ///
    /// # Errors
    /// As [`accept_until`](Self::accept_until), without `Timeout`.
    pub async fn accept_async(&self) -> Result<PipeEnd> {
        let mut me = self;
        crate::asyncio::until_ready(
            &mut me,
            |s| s.try_accept(),
            |s, f| culvert_sync::Waitable::notifiers(*s, f),
        )
        .await
    }

    /// Accepts a client that is already waiting, never waiting itself; `WouldBlock`
    /// if none is (or no instance is free). A client whose request was answered is
    /// handed out by the first call after it attached its end.
    pub fn try_accept(&self) -> Result<PipeEnd> {
        match self.accept_step(true)? {
            Some(end) => Ok(end),
            None => Err(Error::WouldBlock),
        }
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|p| p.into_inner()));
        pending.into_iter().for_each(accept::PendingAccept::abandon);
        let h = self.tables.header();
        h.closed.store(1, Ordering::Release);
        h.answers.n.notify();
        if let Ok(c) = self.consumer.get_mut() {
            c.close();
        }
        let _ = Section::unlink(
            &self.tables.name,
            &self.opts.section_for(SectionKind::PipeServer),
        );
    }
}

impl PipeServer {
    /// Never waits: a client's connect request is waiting (or the request ring broke),
    /// or an answered client attached.
    fn connect_waiting(&self, ctx: culvert_sync::WaitContext) -> bool {
        self.attached_waiting()
            || culvert_sync::Waitable::poll_ready(
                &mut *self.consumer.lock().unwrap_or_else(|e| e.into_inner()),
                ctx,
            )
    }

    /// The request ring's notifier, and `events` (clients notify it once attached).
    fn request_notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        let consumer = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        culvert_sync::Waitable::notifiers(&*consumer, f);
        f(&self.tables.header().events.n);
    }
}

// SAFETY: the notifier lives in the server's mapped section, not in the server value.
unsafe impl culvert_sync::Waitable for PipeServer {
    /// True when a client's connect request is waiting (or the request ring broke):
    /// [`try_accept`](PipeServer::try_accept) then answers it, unless every instance is
    /// taken.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.connect_waiting(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.request_notifiers(f);
    }
}

// SAFETY: as for `PipeServer`.
unsafe impl culvert_sync::Waitable for &PipeServer {
    /// As for [`PipeServer`]; for a server shared between threads or tasks.
    fn poll_ready(&mut self, ctx: culvert_sync::WaitContext) -> bool {
        self.connect_waiting(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        self.request_notifiers(f);
    }
}
