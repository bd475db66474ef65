//! A named message-mode pipe: a server answers a few requests from a client process.
//!
//! Shows `PipeServer::bind` / `accept` on the server side and `PipeEnd::connect_with`
//! on the client side, with one whole message per `read` (message mode). The example
//! re-executes itself as `named_pipe client` to play the client, so one command runs
//! both sides:
//!
//! ```sh
//! cargo run -p culvert --example named_pipe
//! ```
//!
//! The pipe lives in a private namespace directory: `$CULVERT_ROOT` if set, else a
//! fresh temporary directory that is removed at the end.

use std::error::Error;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};

const PIPE: &str = "greeter";
const REQUESTS: [&str; 3] = ["hello", "how are you", "goodbye"];
const TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace root, and whether this process created it (and must remove it).
fn namespace_root() -> std::io::Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os("CULVERT_ROOT") {
        return Ok((PathBuf::from(dir), false));
    }
    let dir = std::env::temp_dir().join(format!("culvert-named-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok((dir, true))
}

fn main() -> Result<(), Box<dyn Error>> {
    let (root, created) = namespace_root()?;
    let result = if std::env::args().nth(1).as_deref() == Some("client") {
        client(&root)
    } else {
        server(&root)
    };
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}

fn server(root: &Path) -> Result<(), Box<dyn Error>> {
    let opts = PipeOptions::new()
        .mode(PipeMode::Message)
        .max_instances(1)
        .root(root);
    let server = PipeServer::bind(PIPE, &opts)?;

    // The client: this same program, in the same namespace.
    let mut child = Command::new(std::env::current_exe()?)
        .arg("client")
        .env("CULVERT_ROOT", root)
        .spawn()?;

    let mut end = server.accept_until(TIMEOUT)?;
    end.set_read_timeout(Some(TIMEOUT));
    println!("server: client pid {:?} connected", end.peer_pid());
    let mut buf = [0u8; 1024];
    let mut served = 0;
    loop {
        let n = end.read(&mut buf)?; // one whole message; 0 once the client is gone
        if n == 0 {
            break;
        }
        let request = std::str::from_utf8(&buf[..n])?;
        let reply = format!(
            "{} (served by pid {})",
            request.to_uppercase(),
            std::process::id()
        );
        end.write_all(reply.as_bytes())?;
        served += 1;
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("client failed: {status}").into());
    }
    if served != REQUESTS.len() {
        return Err(format!("served {served} requests, expected {}", REQUESTS.len()).into());
    }
    println!("server: served {served} requests");
    println!("named_pipe: ok");
    Ok(())
}

fn client(root: &Path) -> Result<(), Box<dyn Error>> {
    let opts = PipeOptions::new().root(root);
    let mut end = PipeEnd::connect_with(PIPE, TIMEOUT, &opts)?;
    end.set_read_timeout(Some(TIMEOUT));
    let mut buf = [0u8; 1024];
    for request in REQUESTS {
        end.write_all(request.as_bytes())?;
        let n = end.read(&mut buf)?;
        let reply = std::str::from_utf8(&buf[..n])?;
        if !reply.starts_with(&request.to_uppercase()) {
            return Err(format!("unexpected reply {reply:?} to {request:?}").into());
        }
        println!("client: {request:?} -> {reply:?}");
    }
    Ok(()) // dropping the end tells the server we are done
}
