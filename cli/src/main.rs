//! # culvert — the command-line tool
//!
//! * `culvert bench` — culvert against OS pipes, Unix sockets and the shared-memory
//!   floor, every case in separate processes, one table (and `--json`);
//! * `culvert ls`, `inspect NAME`, `gc` — what is in the section namespace, its rings
//!   in detail (read-only, safe on corrupted sections), and removing what crashed
//!   processes left behind;
//! * `culvert pipe serve|connect NAME` — stdin/stdout through a named pipe,
//!   `culvert mailslot read|write NAME` — lines as mailslot messages, and
//!   `culvert port serve|call NAME` — an echoing port and calls to it, so shell users
//!   can try culvert without writing code;
//! * `culvert bridge` — this host's bridge to other hosts (`//host/name`).
//!
//! Exit status: 0 success; 1 the operation failed or found a problem (`inspect` of a
//! corrupted section, a namespace directory that does not exist), with one line on
//! stderr; 2 bad usage. The namespace directory is `--root`, else `$CULVERT_ROOT`,
//! else `/dev/shm`.

mod bench;
mod bridge_cmd;
mod mailslot_cmd;
mod pipe_cmd;
mod port_cmd;
mod sections;
mod sections_json;
mod stop;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use culvert_section::SectionOptions;

/// culvert: lock-free shared-memory IPC — benchmark it, see what is in shared memory,
/// clean up after crashes.
#[derive(Debug, Parser)]
#[command(name = "culvert", version)]
struct Cli {
    /// Namespace directory of named sections (default: $CULVERT_ROOT, else /dev/shm).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare culvert with OS pipes, Unix sockets and the shared-memory floor, in
    /// separate processes, in one run.
    Bench(bench::BenchArgs),
    /// List the culvert sections: kind, size, creator, endpoints, state.
    Ls {
        /// Print JSON (an array of objects) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show a section's header and the state of every ring in it (read-only); exits 1
    /// if it is corrupted.
    Inspect {
        /// The section's name.
        name: String,
        /// Print JSON instead of the text.
        #[arg(long)]
        json: bool,
    },
    /// Remove sections whose every owner is dead, and say what was removed.
    Gc {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move stdin/stdout through a named pipe.
    #[command(subcommand)]
    Pipe(pipe_cmd::PipeCommand),
    /// Send lines of stdin as mailslot messages, or print received messages.
    #[command(subcommand)]
    Mailslot(mailslot_cmd::MailslotCommand),
    /// Serve a port that echoes each request, or call one.
    #[command(subcommand)]
    Port(port_cmd::PortCommand),
    /// Carry named pipes and mailslots to and from other hosts (one bridge per host).
    Bridge(bridge_cmd::BridgeArgs),
    /// The other process of `culvert bench` (internal).
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer(bench::PeerArgs),
    /// A CPU burner of `culvert bench --load` (internal).
    #[command(name = "__bench-burn", hide = true)]
    BenchBurn,
}

fn main() {
    let cli = Cli::parse();
    // Commands that own a section stop cleanly on SIGINT/SIGTERM (others just die).
    if matches!(
        cli.command,
        Command::Pipe(_)
            | Command::Bridge(_)
            | Command::Port(port_cmd::PortCommand::Serve { .. })
            | Command::Mailslot(mailslot_cmd::MailslotCommand::Read { .. })
    ) {
        if let Err(e) = stop::install() {
            eprintln!("culvert: cannot install signal handlers: {e}");
            std::process::exit(1);
        }
    }
    let mut opts = SectionOptions::default();
    if let Some(root) = &cli.root {
        opts = opts.root(root);
    }
    let result = match &cli.command {
        Command::Bench(args) => {
            if let Some(root) = &cli.root {
                std::env::set_var(culvert_section::ROOT_ENV, root);
            }
            bench::run(args)
        }
        Command::BenchPeer(args) => bench::run_peer(args),
        Command::BenchBurn => bench::load::burn(),
        Command::Ls { json: false } => sections::ls(&opts).map(|s| print_out(&s)),
        Command::Ls { json: true } => sections_json::ls(&opts).map(|s| print_out(&s)),
        Command::Inspect { name, json } => if *json {
            sections_json::inspect(name, &opts)
        } else {
            sections::inspect(name, &opts)
        }
        .and_then(|(s, corrupted)| {
            print_out(&s);
            if corrupted {
                Err(format!("section '{name}' is corrupted").into())
            } else {
                Ok(())
            }
        }),
        Command::Gc { dry_run } => sections::gc(&opts, *dry_run).map(|s| print_out(&s)),
        Command::Pipe(cmd) => pipe_cmd::run(cmd, cli.root.as_deref()),
        Command::Mailslot(cmd) => mailslot_cmd::run(cmd, cli.root.as_deref()),
        Command::Port(cmd) => port_cmd::run(cmd, cli.root.as_deref()),
        Command::Bridge(args) => bridge_cmd::run(args, cli.root.as_deref()),
    };
    if let Err(e) = result {
        let _ = std::io::stdout().flush();
        let msg = e.to_string();
        let line = msg.lines().next().unwrap_or("failed");
        eprintln!("culvert: {line}");
        std::process::exit(1);
    }
}

/// Prints `s` to stdout; a closed stdout (e.g. `| head`) is not an error.
fn print_out(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
