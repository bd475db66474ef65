//! A tokio echo server on a named message pipe, serving several client processes at
//! once: one task per connection, nothing blocking a runtime thread.
//!
//! The server accepts with `PipeServer::accept_async` and echoes each message with
//! `AsyncPipeEnd::read_message` / `write_message`; every client (this program again,
//! as `tokio_echo client`) connects with `PipeEnd::connect_async` and makes its
//! requests with `AsyncPipeEnd::transact`. Message boundaries hold end to end.
//!
//! ```sh
//! cargo run -p culvert --features tokio --example tokio_echo
//! ```
//!
//! The pipe lives in `$CULVERT_ROOT` if set, else in a fresh temporary directory.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};

const PIPE: &str = "echo";
const CLIENTS: usize = 4;
const REQUESTS: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn Error + Send + Sync>;

fn namespace_root() -> std::io::Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os("CULVERT_ROOT") {
        return Ok((PathBuf::from(dir), false));
    }
    let dir = std::env::temp_dir().join(format!("culvert-tokio-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok((dir, true))
}

fn options(root: &Path) -> PipeOptions {
    PipeOptions::new()
        .mode(PipeMode::Message)
        .max_instances(CLIENTS)
        .root(root)
}

fn main() -> Result<(), BoxError> {
    let (root, created) = namespace_root()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = match std::env::args().nth(1).as_deref() {
        Some("client") => runtime.block_on(client(&root)),
        _ => runtime.block_on(server(&root)),
    };
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}

async fn server(root: &Path) -> Result<(), BoxError> {
    let server = PipeServer::bind(PIPE, &options(root))?;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(
            tokio::process::Command::new(std::env::current_exe()?)
                .arg("client")
                .env("CULVERT_ROOT", root)
                .spawn()?,
        );
    }
    let mut sessions = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let end = tokio::time::timeout(TIMEOUT, server.accept_async()).await??;
        println!("server: client pid {:?} connected", end.peer_pid());
        sessions.spawn(async move {
            let mut end = end.into_async();
            let mut buf = vec![0u8; 4096];
            let mut echoed = 0;
            // Until the client disconnects (end of stream reads as an error here).
            while let Ok(m) = end.read_message(&mut buf).await {
                end.write_message(&buf[..m.len]).await?;
                echoed += 1;
            }
            Ok::<usize, culvert::Error>(echoed)
        });
    }
    let mut total = 0;
    while let Some(r) = sessions.join_next().await {
        total += r??;
    }
    for mut c in clients {
        let status = c.wait().await?;
        if !status.success() {
            return Err(format!("a client failed: {status}").into());
        }
    }
    assert_eq!(total, CLIENTS * REQUESTS);
    println!("server: echoed {total} messages for {CLIENTS} clients");
    println!("tokio_echo: ok");
    Ok(())
}

async fn client(root: &Path) -> Result<(), BoxError> {
    let end = PipeEnd::connect_async(PIPE, TIMEOUT, &options(root)).await?;
    let mut end = end.into_async();
    let mut reply = vec![0u8; 4096];
    for i in 0..REQUESTS {
        let request = format!("request {i} from {}", std::process::id());
        let m = end.transact(request.as_bytes(), &mut reply).await?;
        if &reply[..m.len] != request.as_bytes() {
            return Err(format!("wrong echo for {request:?}").into());
        }
    }
    Ok(())
}
