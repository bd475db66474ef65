//! The client of a named pipe: [`PipeEnd::connect`] and its variants run the client
//! side of the handshake — claim a request cell, ask through the request ring, wait
//! for the answer (an instance, or the server's refusal with its cause), open the
//! instance and attach its client end ([`Side::B`]).
//!
//! Every `connect*` call waits, on the server's `answers` notifier (for a free cell,
//! then for the answer) and on the request ring (for room), up to its deadline;
//! `connect_async` runs the same handshake on a thread of its own. A host-qualified
//! name is redirected to a local proxy first (see [`crate::remote`]).

use std::sync::Arc;
use std::time::Duration;

use culvert_ring::mpmc;
use culvert_section::{Section, SectionKind};
use culvert_sync::atomic::Ordering;
use culvert_sync::{wait_for, Deadline, ProcessIdentity};

use super::super::end::PipeEnd;
use super::super::layout::Side;
use super::super::options::{validate_pipe_name, PipeOptions};
use super::cell::Answer;
use super::instance_name;
use super::layout::{
    ServerTables, CELLS, MAX_DEFAULT_TIMEOUT, REFUSED_NO_SPACE, REFUSED_OS_ERROR, REQUEST_LEN,
};
use super::link::ServerLink;
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

/// The error a client reports for a refusal read from its cell (untrusted values).
fn refusal_error(cause: u64, detail: u64, pipe: &str, root: std::path::PathBuf) -> Error {
    match cause {
        REFUSED_NO_SPACE => Error::Section(culvert_section::Error::NoSpace {
            name: format!("{pipe} (an instance of the pipe)"),
            size: detail,
            root,
        }),
        REFUSED_OS_ERROR if detail <= i32::MAX as u64 => {
            Error::Io(std::io::Error::from_raw_os_error(detail as i32))
        }
        _ => Error::Io(std::io::Error::other(format!(
            "the server of pipe '{pipe}' could not make the connection"
        ))),
    }
}

impl PipeEnd {
    /// Connects to the named pipe `name` in the default namespace (`$CULVERT_ROOT`, else
    /// `/dev/shm`), waiting until `deadline` for a free instance (`None`: for ever; see
    /// [`Deadline`] for what converts). To wait the server's default time instead, use
    /// [`connect_default_wait`](Self::connect_default_wait).
    ///
    /// # Errors
    /// `NotFound` if no live server has the name; `Busy` if no instance became free in
    /// time (Windows' `WaitNamedPipe` rule); `InvalidName`; `PermissionDenied` if the
    /// namespace refuses access; `Section`/`Io` if the instance could not be made.
    pub fn connect(name: &str, deadline: impl Into<Deadline>) -> Result<PipeEnd> {
        Self::connect_with(name, deadline, &PipeOptions::default())
    }

    /// [`connect`](Self::connect) with the namespace, wait strategy and section options
    /// of `opts` (its other fields come from the server).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        name: &str,
        deadline: impl Into<Deadline>,
        opts: &PipeOptions,
    ) -> Result<PipeEnd> {
        Self::connect_until(name, Some(deadline.into()), opts)
    }

    /// [`connect_with`](Self::connect_with) as a future. The handshake runs on a thread
    /// of its own (connecting is rare; every later call of the end is asynchronous on
    /// the reactor).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_async(
        name: &str,
        deadline: impl Into<Deadline>,
        opts: &PipeOptions,
    ) -> Result<PipeEnd> {
        let (name, deadline, opts) = (name.to_string(), deadline.into(), opts.clone());
        crate::asyncio::on_thread(move || Self::connect_with(&name, deadline, &opts)).await
    }

    /// [`connect_with`](Self::connect_with), waiting for a free instance as long as the
    /// server's [`PipeOptions::default_timeout`] (Windows' `NMPWAIT_USE_DEFAULT_WAIT`).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_default_wait(name: &str, opts: &PipeOptions) -> Result<PipeEnd> {
        Self::connect_until(name, None, opts)
    }

    /// The connect handshake; `deadline` `None` takes the server's default timeout.
    fn connect_until(
        name: &str,
        deadline: Option<Deadline>,
        opts: &PipeOptions,
    ) -> Result<PipeEnd> {
        if let Some(remote) = crate::remote::parse(name)? {
            // A host-qualified name: the bridge makes a local one-instance proxy.
            let request = crate::remote::Request {
                kind: crate::remote::ObjectKind::Pipe,
                host: remote.host.to_string(),
                name: remote.name.to_string(),
                timeout: deadline.map(|d| d.remaining().unwrap_or(Duration::MAX)),
                payload: Vec::new(),
            };
            let root = opts.section.namespace_root().ok();
            let deadline = deadline.unwrap_or_else(|| Deadline::after(MAX_DEFAULT_TIMEOUT));
            let proxy = crate::remote::redirect(&request, name, root.as_deref(), deadline)?;
            return Self::connect_until(&proxy, Some(Duration::from_secs(5).into()), opts);
        }
        validate_pipe_name(name)?;
        let not_found = || Error::NotFound {
            name: name.to_string(),
        };
        let sopts = opts.section_for(SectionKind::PipeServer);
        let section = match Section::open(name, &sopts) {
            Ok(s) => s,
            Err(
                culvert_section::Error::NotFound { .. }
                | culvert_section::Error::Stale { .. }
                | culvert_section::Error::Poisoned { .. },
            ) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let requests = section.object("requests")?;
        let tables = Arc::new(ServerTables::new(name, section)?);
        if tables.server_gone() {
            return Err(not_found());
        }
        let h = tables.header();
        let deadline = deadline.unwrap_or_else(|| {
            Deadline::after(
                Duration::from_millis(h.default_timeout_ms.load(Ordering::Relaxed))
                    .min(MAX_DEFAULT_TIMEOUT),
            )
        });
        let strategy = opts.wait_strategy;
        let busy = || Error::Busy {
            reason: crate::BusyReason::NoFreeInstance {
                max_instances: tables.max_instances,
            },
        };
        let me = ProcessIdentity::me().packed();

        // 1. Claim a request cell.
        let claimed = wait_for(&h.answers.n, strategy, deadline, |ctx| {
            if ctx.liveness_due && tables.server_gone() {
                return Err(not_found());
            }
            Ok((0..CELLS).find_map(|i| tables.cell(i).try_claim().map(|gen| (i, gen))))
        });
        let (idx, gen) = match claimed {
            Ok(c) => c,
            Err(Error::Timeout) => return Err(busy()),
            Err(e) => return Err(e),
        };
        let cell = tables.cell(idx);
        if !cell.post(gen, me) {
            return Err(Error::Corrupted {
                what: format!("pipe server '{name}': request cell taken from its claimer"),
            });
        }
        // Gives the request up; the server's answer, if it came first, stands.
        let withdraw = || {
            let answer = cell.withdraw(gen);
            h.answers.n.notify();
            answer
        };
        let root = || opts.section.namespace_root().unwrap_or_default();

        // 2. Ask through the request ring.
        let mut msg = [0u8; REQUEST_LEN];
        msg[..4].copy_from_slice(&(idx as u32).to_le_bytes());
        msg[4..].copy_from_slice(&gen.to_le_bytes());
        let sent = mpmc::MessageWriter::attach(&requests).and_then(|mut p| {
            p.set_wait_strategy(strategy);
            p.write(&msg, deadline)
        });
        if let Err(e) = sent {
            // Nobody can have answered: the request never reached the server.
            let _ = withdraw();
            return Err(match e {
                culvert_ring::Error::Timeout | culvert_ring::Error::Busy { .. } => busy(),
                culvert_ring::Error::Closed => not_found(),
                e => e.into(),
            });
        }
        h.events.n.notify();

        // 3. Wait for the answer.
        let changed_hands = || Error::Corrupted {
            what: format!("pipe server '{name}': request cell changed hands"),
        };
        let answered = wait_for(&h.answers.n, strategy, deadline, |ctx| {
            match cell.answer(gen) {
                Answer::Pending => {}
                Answer::Assigned { ticket, slot } => return Ok(Some((ticket, slot))),
                Answer::Refused { cause, detail } => {
                    h.answers.n.notify();
                    return Err(refusal_error(cause, detail, name, root()));
                }
                Answer::Withdrawn | Answer::Lost => return Err(changed_hands()),
            }
            if ctx.liveness_due && tables.server_gone() {
                return Err(not_found());
            }
            Ok(None)
        });
        let (ticket, slot) = match answered {
            Ok(assigned) => assigned,
            Err(e @ (Error::Timeout | Error::NotFound { .. })) => match withdraw() {
                // Answered just in time: honour the answer.
                Answer::Assigned { ticket, slot } => (ticket, slot),
                Answer::Refused { cause, detail } => {
                    return Err(refusal_error(cause, detail, name, root()))
                }
                Answer::Withdrawn | Answer::Pending | Answer::Lost => {
                    return Err(if matches!(e, Error::Timeout) {
                        busy()
                    } else {
                        e
                    });
                }
            },
            Err(e) => return Err(e),
        };
        h.answers.n.notify();
        let slot = usize::try_from(slot).unwrap_or(usize::MAX);
        if ticket == 0 || slot >= tables.max_instances {
            return Err(Error::Corrupted {
                what: format!("pipe server '{name}': answer out of range"),
            });
        }

        // 4. Open the instance.
        let link = ServerLink::new(tables.clone(), slot, ticket, None);
        let iname = instance_name(name, ticket);
        let iopts = opts.section_for(SectionKind::Pipe);
        let section = match Section::open(&iname, &iopts) {
            Ok(s) => s,
            Err(e) => {
                link.release();
                return Err(e.into());
            }
        };
        let _ = Section::unlink(&iname, &iopts);
        let end = PipeEnd::attach(section, Side::B, strategy, Some(link));
        // The server's accept waits for this attach.
        h.events.n.notify();
        end
    }
}
