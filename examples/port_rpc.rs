//! A port (ALPC-like request/reply) serving several clients.
//!
//! A `PortServer` runs one thread that accepts connections (`listen`) and two threads
//! that `receive` messages and reply. Three client threads `PortClient::connect_with`
//! and each make a synchronous `call`, an asynchronous `call_async` (then `wait`), a
//! `send_datagram` (no reply), and one call whose large reply the server writes in
//! place into a loan of its view heap (`Incoming::loan_reply`), so it comes back in a
//! shared-memory view instead of being copied through the ring.
//! Run it with:
//!
//! ```sh
//! cargo run -p culvert --example port_rpc
//! ```
//!
//! The port lives in a private namespace directory: `$CULVERT_ROOT` if set, else a
//! fresh temporary directory that is removed at the end.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culvert::port::{Incoming, MessageKind, PortClient, PortOptions, PortServer};
use culvert::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use culvert::Deadline;

const PORT: &str = "rpc";
const CLIENTS: usize = 3;
const BIG: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace root, and whether this process created it (and must remove it).
fn namespace_root() -> std::io::Result<(PathBuf, bool)> {
    if let Some(dir) = std::env::var_os("CULVERT_ROOT") {
        return Ok((PathBuf::from(dir), false));
    }
    let dir = std::env::temp_dir().join(format!("culvert-port-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok((dir, true))
}

fn main() -> Result<(), Box<dyn Error>> {
    let (root, created) = namespace_root()?;
    let result = run(&root);
    if created {
        std::fs::remove_dir_all(&root)?;
    }
    result
}

/// The server's answer to one message.
fn handle(incoming: Incoming, datagrams: &AtomicUsize) -> culvert::Result<()> {
    if incoming.kind == MessageKind::Datagram {
        println!(
            "server: datagram {:?}",
            String::from_utf8_lossy(incoming.payload.as_slice())
        );
        datagrams.fetch_add(1, Ordering::AcqRel);
        return Ok(());
    }
    let request = incoming.payload.to_vec();
    if let Some(size) = request.strip_prefix(b"big ") {
        // A large reply is written in place into a loan of the server's view heap,
        // which the client then reads where it lies: no copy on either side.
        let size: usize = std::str::from_utf8(size)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut loan = incoming.loan_reply(size, Deadline::after(TIMEOUT))?;
        for (i, b) in loan.as_mut_slice().iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        incoming.reply_loaned(loan)
    } else {
        let reply = String::from_utf8_lossy(&request).to_uppercase();
        incoming.reply(reply.as_bytes())
    }
}

fn run(root: &Path) -> Result<(), Box<dyn Error>> {
    let opts = PortOptions::default().root(root);
    let server = Arc::new(PortServer::create(PORT, &opts)?);
    let stop = Arc::new(AtomicBool::new(false));
    let datagrams = Arc::new(AtomicUsize::new(0));
    let tick = Duration::from_millis(50);

    let mut server_threads = Vec::new();
    {
        let (server, stop) = (server.clone(), stop.clone());
        server_threads.push(std::thread::spawn(move || -> culvert::Result<()> {
            while !stop.load(Ordering::Acquire) {
                match server.listen(Deadline::after(tick)) {
                    Ok(request) => {
                        let hello = String::from_utf8_lossy(&request.payload).into_owned();
                        println!("server: connect from pid {} saying {hello:?}", request.pid);
                        request.accept(b"welcome")?;
                    }
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }));
    }
    for _ in 0..2 {
        let (server, stop, datagrams) = (server.clone(), stop.clone(), datagrams.clone());
        server_threads.push(std::thread::spawn(move || -> culvert::Result<()> {
            while !stop.load(Ordering::Acquire) {
                match server.receive(Deadline::after(tick)) {
                    Ok(incoming) => handle(incoming, &datagrams)?,
                    Err(culvert::Error::Timeout) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }));
    }

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let opts = opts.clone();
            std::thread::spawn(move || client(c, &opts).map_err(|e| e.to_string()))
        })
        .collect();
    let mut failure = None;
    for t in clients {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("client thread panicked".to_string()),
        }
    }

    // Datagrams have no reply: wait until the server has seen them all.
    let deadline = Instant::now() + TIMEOUT;
    while datagrams.load(Ordering::Acquire) < CLIENTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    for t in server_threads {
        t.join().map_err(|_| "server thread panicked")??;
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    let seen = datagrams.load(Ordering::Acquire);
    if seen != CLIENTS {
        return Err(format!("server saw {seen} datagrams, expected {CLIENTS}").into());
    }
    println!("port_rpc: ok");
    Ok(())
}

fn client(c: usize, opts: &PortOptions) -> Result<(), Box<dyn Error>> {
    let deadline = || Deadline::after(TIMEOUT);
    let hello = format!("client {c}");
    let (client, welcome) = PortClient::connect_with(PORT, hello.as_bytes(), deadline(), opts)?;
    if welcome != b"welcome" {
        return Err("unexpected accept payload".into());
    }

    // A synchronous call.
    let reply = client.call(format!("hello from client {c}").as_bytes(), deadline())?;
    println!(
        "client {c}: call -> {:?}",
        String::from_utf8_lossy(reply.as_slice())
    );
    if reply.as_slice() != format!("HELLO FROM CLIENT {c}").as_bytes() {
        return Err("wrong reply to call".into());
    }

    // An asynchronous call: do other work, then wait for the reply.
    let mut pending = client.call_async(format!("async from client {c}").as_bytes())?;
    client.send_datagram(format!("ping from client {c}").as_bytes())?;
    let reply = pending.wait(deadline())?;
    println!(
        "client {c}: call_async -> {:?}",
        String::from_utf8_lossy(reply.as_slice())
    );
    if reply.as_slice() != format!("ASYNC FROM CLIENT {c}").as_bytes() {
        return Err("wrong reply to call_async".into());
    }

    // A reply larger than inline_max comes back in a shared-memory view.
    let reply = client.call(format!("big {BIG}").as_bytes(), deadline())?;
    let intact = reply.len() == BIG
        && reply
            .as_slice()
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8);
    println!(
        "client {c}: big call -> {} bytes (inline_max {}), view: {}",
        reply.len(),
        client.inline_max(),
        reply.is_view()
    );
    if !intact || !reply.is_view() {
        return Err("wrong large reply".into());
    }
    Ok(())
}
