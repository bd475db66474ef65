//! Opening a remote object: the redirector's side (`redirect`, on the caller's
//! host) and the serving side (`serve_open`, on the object's host).
//!
//! The opener declares the connection's keys, then sends one Zenoh query to
//! `culvert/<domain>/h/<host>/open` whose payload is a [`Kind::Open`] frame: the
//! opener's host name and the redirector [`Request`]. The serving bridge checks the
//! allow-list, opens the real object as an ordinary local client, declares its own
//! keys and answers with a [`Kind::OpenReply`] frame holding a redirector [`Reply`].
//! Only then does the opener make the local proxy and return its name to the caller.
//! Both declarations precede the messages that announce them on the same Zenoh
//! link, so no data frame is published before its subscriber is known.

use std::sync::Arc;
use std::time::Duration;

use culvert::pipe::{PipeEnd, PipeMode, PipeServer};
use culvert::remote::{ObjectKind, Reply, Request, Status, ALL_HOSTS};
use culvert::Error;
use zenoh::query::{ConsolidationMode, Query, QueryTarget};
use zenoh::Wait;

use crate::bridge::Inner;
use crate::pipe::{self, Role};
use crate::wire::{Frame, Kind};

/// How long the far side may wait for a free pipe instance when the caller gave no
/// deadline (`connect_default_wait`): the far server's default, at most this.
const DEFAULT_FAR_WAIT: Duration = Duration::from_secs(30);
/// Added to the far wait for the network round trip of the open.
const OPEN_MARGIN: Duration = Duration::from_secs(3);
/// How long a proxy waits for the local caller to connect.
const PROXY_ACCEPT: Duration = Duration::from_secs(10);

fn io_err(what: String) -> Error {
    Error::Io(std::io::Error::other(what))
}

/// The redirector's answer to a local caller's `request`.
pub(crate) fn redirect(inner: &Arc<Inner>, req: &Request) -> Reply {
    let result = match req.kind {
        ObjectKind::Pipe => redirect_pipe(inner, req),
        ObjectKind::Mailslot | ObjectKind::Group => crate::mailslot::redirect(inner, req),
        ObjectKind::Port => crate::port::redirect(inner, req),
    };
    match result {
        Ok(proxy) => Reply::ok(&proxy),
        Err(e) => Reply::from_error(&e),
    }
}

/// Sends the open query for `req` as connection `id`; the far [`Reply`].
pub(crate) fn ask(inner: &Arc<Inner>, req: &Request, id: u64) -> Result<Reply, Error> {
    let me = inner.cfg.host.as_bytes();
    let mut body = Vec::with_capacity(2 + me.len() + 64);
    body.extend_from_slice(&(me.len() as u16).to_le_bytes());
    body.extend_from_slice(me);
    body.extend_from_slice(&req.encode());
    let wait = req
        .timeout
        .unwrap_or(DEFAULT_FAR_WAIT)
        .min(DEFAULT_FAR_WAIT);
    let replies = inner
        .session
        .get(inner.open_key(&req.host))
        .payload(Frame::new(Kind::Open, id, &body).encode())
        .target(QueryTarget::BestMatching)
        .consolidation(ConsolidationMode::None)
        .timeout(wait + OPEN_MARGIN)
        .wait()
        .map_err(|e| io_err(format!("zenoh query: {e}")))?;
    let Ok(reply) = replies.recv() else {
        // No bridge of that host answered.
        return Err(Error::NotFound {
            name: format!("//{}/{} (host not reachable)", req.host, req.name),
        });
    };
    let sample = reply
        .into_result()
        .map_err(|e| io_err(format!("far bridge: {e:?}")))?;
    let bytes = sample.payload().to_bytes();
    let frame = Frame::decode(&bytes).map_err(|e| Error::Corrupted {
        what: format!("open reply: {e}"),
    })?;
    if frame.kind != Kind::OpenReply {
        return Err(Error::Corrupted {
            what: "open reply of the wrong kind".into(),
        });
    }
    Reply::decode(frame.body)
}

fn redirect_pipe(inner: &Arc<Inner>, req: &Request) -> Result<String, Error> {
    if req.host == inner.cfg.host {
        // This host: the object itself.
        return Ok(req.name.clone());
    }
    if req.host == ALL_HOSTS {
        return Err(Error::InvalidArgument {
            what: "//*/ names are for mailslots only".into(),
        });
    }
    let id = inner.next_id();
    let base = format!("{}/c/{}/{id}", inner.prefix, inner.cfg.host);
    let wires = pipe::declare(inner, &base, Role::Opener, &req.host)?;
    let reply = match ask(inner, req, id) {
        Ok(r) => r,
        Err(e) => {
            wires.abandon();
            return Err(e);
        }
    };
    if reply.status != Status::Ok {
        wires.abandon();
        return Err(reply
            .into_result(&format!("//{}/{}", req.host, req.name))
            .err()
            .unwrap_or(Error::PeerDied));
    }
    let mode = match reply.detail & 0xff {
        1 => PipeMode::Byte,
        2 => PipeMode::Message,
        _ => {
            wires.abandon();
            return Err(Error::Corrupted {
                what: "open reply: unknown pipe mode".into(),
            });
        }
    };
    let max_message = ((reply.detail >> 8) as usize).clamp(1, 1 << 30);
    let proxy = format!("culvert.remote.{}.{id}", std::process::id());
    let server = match PipeServer::bind(
        &proxy,
        &inner
            .pipe_options()
            .mode(mode)
            .max_instances(1)
            .max_message(max_message),
    ) {
        Ok(s) => s,
        Err(e) => {
            wires.abandon();
            return Err(e);
        }
    };
    std::thread::spawn(move || match server.accept_until(PROXY_ACCEPT) {
        Ok(end) => {
            drop(server);
            wires.relay(end);
        }
        Err(_) => wires.abandon(),
    });
    Ok(proxy)
}

/// Answers one open query from another bridge (runs on a thread of its own).
pub(crate) fn serve_open(inner: &Arc<Inner>, query: Query) {
    let (id, opener, req) = match parse_open(&query) {
        Ok(x) => x,
        Err(e) => return answer(&query, &Reply::from_error(&e)),
    };
    if !inner.cfg.is_exported(&req.name) {
        let e = Error::PermissionDenied {
            what: format!("'{}' is not exported by host {}", req.name, inner.cfg.host),
        };
        return answer(&query, &Reply::from_error(&e));
    }
    let reply = match req.kind {
        ObjectKind::Pipe => serve_pipe(inner, id, &opener, &req),
        ObjectKind::Mailslot | ObjectKind::Group => crate::mailslot::serve_open(inner, &req),
        ObjectKind::Port => crate::port::serve_open(inner, id, &opener, &req),
    };
    match reply {
        Ok((reply, then)) => {
            answer(&query, &reply);
            then();
        }
        Err(e) => answer(&query, &Reply::from_error(&e)),
    }
}

/// What runs after the answer was sent.
pub(crate) type Then = Box<dyn FnOnce() + Send>;

fn serve_pipe(
    inner: &Arc<Inner>,
    id: u64,
    opener: &str,
    req: &Request,
) -> Result<(Reply, Then), Error> {
    let opts = inner.pipe_options();
    let end = match req.timeout {
        Some(t) => PipeEnd::connect_with(&req.name, t.min(DEFAULT_FAR_WAIT), &opts)?,
        None => PipeEnd::connect_default_wait(&req.name, &opts)?,
    };
    let base = format!("{}/c/{opener}/{id}", inner.prefix);
    let wires = pipe::declare(inner, &base, Role::Server, opener)?;
    let mode = match end.mode() {
        PipeMode::Byte => 1u64,
        PipeMode::Message => 2u64,
    };
    let reply = Reply {
        status: Status::Ok,
        detail: mode | ((end.max_message() as u64) << 8),
        text: b"ok".to_vec(),
    };
    Ok((reply, Box::new(move || wires.relay(end))))
}

fn parse_open(query: &Query) -> Result<(u64, String, Request), Error> {
    let bad = |what: String| Error::InvalidArgument { what };
    let bytes = query
        .payload()
        .map(|p| p.to_bytes().into_owned())
        .ok_or_else(|| bad("open without payload".into()))?;
    let frame = Frame::decode(&bytes).map_err(|e| bad(format!("open frame: {e}")))?;
    if frame.kind != Kind::Open || frame.body.len() < 2 {
        return Err(bad("not an open frame".into()));
    }
    let n = u16::from_le_bytes([frame.body[0], frame.body[1]]) as usize;
    let host = frame
        .body
        .get(2..2 + n)
        .and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| culvert::remote::valid_component(h, culvert::remote::MAX_HOST_NAME))
        .ok_or_else(|| bad("open frame: bad host".into()))?
        .to_string();
    let req = Request::decode(&frame.body[2 + n..])?;
    if !culvert::remote::valid_component(&req.name, 200) {
        return Err(bad(format!("bad name {:?}", req.name)));
    }
    Ok((frame.seq, host, req))
}

fn answer(query: &Query, reply: &Reply) {
    let body = reply.encode();
    let _ = query
        .reply(
            query.key_expr().clone(),
            Frame::new(Kind::OpenReply, 0, &body).encode(),
        )
        .wait();
}
