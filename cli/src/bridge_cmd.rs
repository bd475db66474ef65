//! `culvert bridge`: this host's bridge to the other hosts of a domain (crate
//! `culvert-zenoh`). It serves the redirector pipe in `--root` (so `//host/name`
//! works for local programs) and the `--export`ed names to other hosts, listening and
//! connecting only on the given endpoints, until SIGINT or SIGTERM.
//!
//! ```text
//! culvert --root /dev/shm bridge --domain lab --host hosta \
//!     --listen tcp/10.0.0.1:7447 --connect tcp/10.0.0.2:7447 --export echo
//! ```
//!
//! Prints `bridge HOST ready` on stdout once serving.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use culvert_zenoh::{Bridge, BridgeConfig, TlsFiles};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Flags of `culvert bridge`.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// The domain: bridges of different domains do not see each other.
    #[arg(long)]
    domain: String,
    /// This host's name (what other hosts write in `//HOST/name`).
    #[arg(long)]
    host: String,
    /// A Zenoh endpoint to listen on, e.g. tcp/127.0.0.1:7447 (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Another bridge's endpoint to connect to (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// A local name other hosts may open (repeatable); nothing else is reachable.
    #[arg(long, value_name = "NAME")]
    export: Vec<String>,
    /// TLS: PEM file of the certificate authority (with --tls-cert and --tls-key).
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    tls_root_ca: Option<PathBuf>,
    /// TLS: this bridge's PEM certificate.
    #[arg(long, value_name = "FILE", requires = "tls_root_ca")]
    tls_cert: Option<PathBuf>,
    /// TLS: the certificate's PEM private key.
    #[arg(long, value_name = "FILE", requires = "tls_root_ca")]
    tls_key: Option<PathBuf>,
}

/// Runs the bridge until SIGINT/SIGTERM.
pub fn run(args: &BridgeArgs, root: Option<&Path>) -> Result<(), BoxError> {
    let mut cfg = BridgeConfig::new(&args.domain, &args.host);
    cfg.listen = args.listen.clone();
    cfg.connect = args.connect.clone();
    cfg.exports = args.export.clone();
    cfg.root = root.map(Path::to_path_buf);
    if let (Some(ca), Some(cert), Some(key)) = (&args.tls_root_ca, &args.tls_cert, &args.tls_key) {
        cfg.tls = Some(TlsFiles {
            root_ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let bridge = Bridge::start(cfg)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bridge {} ready", bridge.host())?;
        out.flush()?;
    }
    while !crate::stop::requested() {
        std::thread::sleep(Duration::from_millis(100));
    }
    bridge.stop();
    Ok(())
}
