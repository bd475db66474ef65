//! The Rust side of the cross-process C binding tests (`bindings/c/tests/run.sh`).
//!
//! Each role talks to a C program over culvert in the namespace `$CULVERT_ROOT`:
//!
//! ```text
//! rust_peer pipe-echo-server <name>        message-pipe echo server (for pipe_echo_client.c)
//! rust_peer pipe-echo-client <name>        client of the C echo server (pipe_echo_server.c)
//! rust_peer mailslot-reader  <name> <n>    reads n messages "msg <i>" (from mailslot_peer.c)
//! rust_peer mailslot-writer  <name> <n>    writes n messages to a C reader
//! rust_peer port-server      <name>        port server: replies with every byte inverted
//! rust_peer port-client      <name>        calls the C port server (port_server.c), 1 MiB views
//! rust_peer port-server-crash <name>       accepts, takes one request, then aborts (dies)
//! ```
//!
//! The protocols are the ones the C programs implement: the echo servers send each
//! message back unchanged; the port servers accept with "welcome", answer a request
//! with its bytes XOR 0xFF, count datagrams, and answer "quit" with "bye <datagrams>"
//! before exiting. Exit status 0 means every check passed.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use culvert::mailslot::{MailslotOptions, MailslotReader, MailslotWriter};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert::port::{MessageKind, PortClient, PortOptions, PortServer};
use culvert::{Deadline, Error, Result};

/// How long a client keeps retrying while its server is not up yet.
const STARTUP: Duration = Duration::from_secs(20);

fn fail(what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        what: what.to_string(),
    }
}

/// Retries `f` while it reports `NotFound` (the peer is not up yet).
fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        match f() {
            Err(Error::NotFound { .. }) if start.elapsed() < STARTUP => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// The test pattern: byte `i` of a `len`-byte message number `seed`.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// Reads one whole message, however long, using `chunk`-byte reads (exercises the
/// "more data" flag).
fn read_whole(end: &mut PipeEnd, chunk: usize) -> Result<(Vec<u8>, usize)> {
    let mut msg = Vec::new();
    let mut buf = vec![0u8; chunk];
    let mut pieces = 0;
    loop {
        let r = end.read_message(&mut buf)?;
        msg.extend_from_slice(&buf[..r.len]);
        pieces += 1;
        if !r.more {
            return Ok((msg, pieces));
        }
    }
}

fn pipe_echo_server(name: &str) -> Result<()> {
    let opts = PipeOptions::default()
        .mode(PipeMode::Message)
        .max_instances(4);
    let server = PipeServer::bind(name, &opts)?;
    let mut conn = server.accept_until(Deadline::after(Duration::from_secs(30)))?;
    let mut echoed = 0;
    loop {
        match read_whole(&mut conn, 4096) {
            Ok((msg, _)) => {
                conn.write_message(&msg)?;
                echoed += 1;
            }
            Err(Error::Closed | Error::PeerDied) => break,
            Err(e) => return Err(e),
        }
    }
    println!("rust pipe-echo-server: echoed {echoed} messages");
    Ok(())
}

fn pipe_echo_client(name: &str) -> Result<()> {
    let mut end = retry(|| PipeEnd::connect(name, Duration::from_secs(10)))?;
    // Four 128-byte writes are read back as four 128-byte messages.
    for i in 0..4 {
        end.write_message(&pattern(128, i))?;
    }
    for i in 0..4 {
        let (msg, _) = read_whole(&mut end, 1024)?;
        if msg != pattern(128, i) {
            return Err(fail(format!("128-byte message {i} came back wrong")));
        }
    }
    // Sizes around the fragment and ring sizes, read with a 1000-byte buffer so long
    // replies come in pieces with `more` set.
    for (k, &len) in [0usize, 1, 999, 1000, 1001, 16 * 1024, 200 * 1024, 1 << 20]
        .iter()
        .enumerate()
    {
        let sent = pattern(len, k + 10);
        end.write_message(&sent)?;
        let (got, pieces) = read_whole(&mut end, 1000)?;
        if got != sent {
            return Err(fail(format!(
                "{len}-byte message came back as {} bytes",
                got.len()
            )));
        }
        let expect_pieces = len.div_ceil(1000).max(1);
        if pieces != expect_pieces {
            return Err(fail(format!(
                "{len}-byte message read in {pieces} pieces, expected {expect_pieces}"
            )));
        }
    }
    // transact: one message out, its echo back.
    let mut reply = [0u8; 64];
    let r = end.transact(b"transact-me", &mut reply)?;
    if &reply[..r.len] != b"transact-me" || r.more {
        return Err(fail("transact reply wrong"));
    }
    println!("rust pipe-echo-client: all echoes correct");
    Ok(())
}

fn message(i: usize) -> Vec<u8> {
    let mut m = format!("msg {i} ").into_bytes();
    m.extend(pattern(i % 200, i));
    m
}

fn mailslot_reader(name: &str, count: usize) -> Result<()> {
    let opts = MailslotOptions::new()
        .max_message_size(512)
        .capacity(64)
        .read_timeout(Duration::from_secs(30));
    let mut slot = MailslotReader::create(name, &opts)?;
    let mut buf = [0u8; 512];
    for i in 0..count {
        let n = slot.read(&mut buf)?;
        if buf[..n] != message(i)[..] {
            return Err(fail(format!(
                "mailslot message {i} wrong: {:?}",
                String::from_utf8_lossy(&buf[..n.min(16)])
            )));
        }
    }
    let info = slot.info()?;
    println!(
        "rust mailslot-reader: {count} messages in order ({} dropped and retried by the writer)",
        info.dropped
    );
    Ok(())
}

fn mailslot_writer(name: &str, count: usize) -> Result<()> {
    let mut w = retry(|| MailslotWriter::open(name))?;
    let mut full = 0u64;
    for i in 0..count {
        let m = message(i);
        loop {
            match w.write(&m) {
                Ok(()) => break,
                // Never silent: the mailslot says it dropped the message; send again.
                Err(Error::Full) => {
                    full += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
    println!("rust mailslot-writer: {count} messages sent ({full} retries after Full)");
    Ok(())
}

fn invert(b: &[u8]) -> Vec<u8> {
    b.iter().map(|x| x ^ 0xFF).collect()
}

fn port_server(name: &str) -> Result<()> {
    let server = PortServer::create(name, &PortOptions::default())?;
    let req = server.listen(Deadline::after(Duration::from_secs(30)))?;
    if req.payload != b"hello from C" {
        return Err(fail("unexpected connect payload"));
    }
    req.accept(b"welcome")?;
    let mut datagrams = 0usize;
    let mut views = 0usize;
    loop {
        let incoming = server.receive(Deadline::after(Duration::from_secs(30)))?;
        match incoming.kind {
            MessageKind::Datagram => datagrams += 1,
            MessageKind::Request => {
                if incoming.payload.is_view() {
                    views += 1;
                }
                if incoming.payload.as_slice() == b"quit" {
                    incoming.reply(format!("bye {datagrams}").as_bytes())?;
                    break;
                }
                let answer = invert(incoming.payload.as_slice());
                match incoming.reply(&answer) {
                    // The client cancelled the call: nothing to send.
                    Ok(()) | Err(Error::Cancelled) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    println!("rust port-server: {datagrams} datagrams, {views} requests in views");
    // Let the client read the last reply before the port closes.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

fn port_server_crash(name: &str) -> Result<()> {
    let server = PortServer::create(name, &PortOptions::default())?;
    let req = server.listen(Deadline::after(Duration::from_secs(30)))?;
    req.accept(b"welcome")?;
    let _incoming = server.receive(Deadline::after(Duration::from_secs(30)))?;
    println!("rust port-server-crash: got the request, dying without a reply");
    let _ = std::io::stdout().flush();
    std::process::abort();
}

fn port_client(name: &str) -> Result<()> {
    let (client, welcome) = retry(|| {
        PortClient::connect(
            name,
            b"hello from Rust",
            Deadline::after(Duration::from_secs(10)),
        )
    })?;
    if welcome != b"welcome" {
        return Err(fail("unexpected accept payload"));
    }
    // Inline call.
    let r = client.call(b"abc", Deadline::after(Duration::from_secs(10)))?;
    if r.as_slice() != invert(b"abc") || r.is_view() {
        return Err(fail("small call wrong"));
    }
    // 1 MiB call: the request and the reply both travel in views.
    let big = pattern(1 << 20, 3);
    let started = Instant::now();
    let r = client.call(&big, Deadline::after(Duration::from_secs(20)))?;
    let took = started.elapsed();
    if !r.is_view() || r.len() != big.len() || r.as_slice() != invert(&big) {
        return Err(fail("1 MiB call wrong (or not a view)"));
    }
    drop(r);
    // Asynchronous calls, collected out of order.
    let mut a = client.call_async(b"first")?;
    let mut b = client.call_async(b"second")?;
    let rb = b.wait(Deadline::after(Duration::from_secs(10)))?;
    let ra = a.wait(Deadline::after(Duration::from_secs(10)))?;
    if ra.as_slice() != invert(b"first") || rb.as_slice() != invert(b"second") {
        return Err(fail("async replies wrong"));
    }
    for i in 0..3u8 {
        client.send_datagram(&[i])?;
    }
    let bye = client.call(b"quit", Deadline::after(Duration::from_secs(10)))?;
    if bye.as_slice() != b"bye 3" {
        return Err(fail(format!(
            "quit answered {:?}",
            String::from_utf8_lossy(bye.as_slice())
        )));
    }
    println!("rust port-client: all calls correct (1 MiB view call in {took:.2?})");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.get(1).map(String::as_str).unwrap_or("");
    let count = || {
        args.get(2)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1000)
    };
    let r = match args.first().map(String::as_str) {
        Some("pipe-echo-server") => pipe_echo_server(name),
        Some("pipe-echo-client") => pipe_echo_client(name),
        Some("mailslot-reader") => mailslot_reader(name, count()),
        Some("mailslot-writer") => mailslot_writer(name, count()),
        Some("port-server") => port_server(name),
        Some("port-client") => port_client(name),
        Some("port-server-crash") => port_server_crash(name),
        _ => {
            eprintln!(
                "usage: rust_peer pipe-echo-server|pipe-echo-client|mailslot-reader|\
                 mailslot-writer|port-server|port-client|port-server-crash <name> [count]"
            );
            return ExitCode::from(2);
        }
    };
    let _ = std::io::stdout().flush();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust_peer {}: {e}", args[0]);
            ExitCode::FAILURE
        }
    }
}
