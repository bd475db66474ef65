//! `culvert port serve NAME` and `culvert port call NAME [MESSAGE]`: a port from the
//! shell. The server accepts every client and answers each request with the request
//! itself (an echo), printing one line per request; the client sends its MESSAGE (or
//! each line of stdin) as one call and prints each reply on its own line.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::Duration;

use culvert::port::{PortClient, PortOptions, PortServer};
use culvert::Deadline;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often the server's loop looks for a stop request.
const STEP: Duration = Duration::from_millis(100);

/// `culvert port ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PortCommand {
    /// Serve the port NAME: accept every client, answer each request with itself.
    Serve {
        /// The port's name.
        name: String,
        /// Stop after this many requests (default: run until SIGINT/SIGTERM).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Call the port NAME with MESSAGE (or once per line of stdin); print each reply.
    Call {
        /// The port's name.
        name: String,
        /// The request; without it, each line of stdin is one request.
        message: Option<String>,
        /// Give up on a connect or call after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        timeout: f64,
    },
}

/// Runs a port command.
pub fn run(cmd: &PortCommand, root: Option<&Path>) -> Result<(), BoxError> {
    let mut sopts = PortOptions::default();
    if let Some(root) = root {
        sopts = sopts.root(root);
    }
    match cmd {
        PortCommand::Serve { name, count } => serve(name, *count, &sopts),
        PortCommand::Call {
            name,
            message,
            timeout,
        } => {
            let timeout = Duration::try_from_secs_f64(*timeout)
                .map_err(|_| format!("invalid timeout {timeout}"))?;
            call(name, message.as_deref(), timeout, &sopts)
        }
    }
}

fn serve(name: &str, count: Option<u64>, sopts: &PortOptions) -> Result<(), BoxError> {
    let port = PortServer::create(name, sopts).map_err(|e| format!("port '{name}': {e}"))?;
    let mut out = io::stdout().lock();
    let mut served = 0u64;
    while count != Some(served) && !crate::stop::requested() {
        // Connects first (they wait for us), then requests.
        match port.listen(Deadline::now()) {
            Ok(req) => {
                let pid = req.pid;
                req.accept(b"")
                    .map_err(|e| format!("port '{name}': accepting pid {pid}: {e}"))?;
                writeln!(out, "connect from pid {pid}")?;
            }
            Err(culvert::Error::Timeout) => {}
            Err(e) => return Err(format!("port '{name}': {e}").into()),
        }
        match port.receive(Deadline::after(STEP)) {
            Ok(inc) => {
                let body = String::from_utf8_lossy(inc.payload.as_slice()).into_owned();
                let pid = inc.client_pid();
                let r = inc.reply(body.as_bytes());
                writeln!(out, "request from pid {pid}: {body}")?;
                out.flush()?;
                served += 1;
                if let Err(e) = r {
                    eprintln!("culvert: port '{name}': reply to pid {pid}: {e}");
                }
            }
            Err(culvert::Error::Timeout) => {}
            Err(e) => return Err(format!("port '{name}': {e}").into()),
        }
    }
    Ok(())
}

fn call(
    name: &str,
    message: Option<&str>,
    timeout: Duration,
    sopts: &PortOptions,
) -> Result<(), BoxError> {
    let (client, _) = PortClient::connect_with(name, b"", timeout, sopts).map_err(|e| match e {
        culvert::Error::NotFound { .. } => format!(
            "port '{name}': no live server of that name in {}",
            culvert_section::SectionOptions::default()
                .root(sopts.root.clone().unwrap_or_default())
                .namespace_root()
                .unwrap_or_default()
                .display()
        ),
        e => format!("port '{name}': {e}"),
    })?;
    let mut out = io::stdout().lock();
    let mut one = |req: &[u8]| -> Result<(), BoxError> {
        let reply = client
            .call(req, Deadline::after(timeout))
            .map_err(|e| format!("port '{name}': call: {e}"))?;
        out.write_all(reply.as_slice())?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    match message {
        Some(m) => one(m.as_bytes()),
        None => {
            for line in io::stdin().lock().lines() {
                one(line?.as_bytes())?;
            }
            Ok(())
        }
    }
}
