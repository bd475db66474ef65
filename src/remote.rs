//! Host-qualified names (`//host/name`) and the redirector protocol.
//!
//! A name that starts with `//` names an object on another host of the domain:
//! `//host/name` the object `name` on `host`, `//*/name` (mailslots and broadcast
//! groups only) the mailslot or group `name` on every host. The core never talks to the network: it hands such a name
//! to the *redirector*, the per-host bridge process (crate `culvert-zenoh`), which
//! serves the message-mode named pipe [`REDIRECTOR_PIPE`] in the caller's namespace
//! root. One [`Request`] message goes there, one [`Reply`] comes back: either an
//! error (mapped onto [`Error`]) or the name of a *local proxy* object the bridge made
//! for this connection — a one-instance pipe server, a mailslot, a port — which the
//! caller then opens with the ordinary local call. So every user of the local calls
//! (blocking, async, C) reaches remote names, and a name without `//` takes exactly
//! the local path.
//!
//! This module is the only place that parses host-qualified names and the only
//! definition of the redirector's wire format (the bridge uses the same types).
//! Decoding never panics: malformed bytes give [`Error::Corrupted`].
//!
//! ## A far peer's death
//!
//! A proxy stands in for a process on another host. When that process dies, or the
//! bridge of its host does, the proxy must look dead to the local caller as a local
//! peer would: the caller reads what reached it, then `PeerDied`. Liveness is read
//! from identity words ([`culvert_sync::holder_of`]), so the bridge keeps the proxy
//! open and replaces its identity words with [`DEAD_STAND_IN`] — a pipe end through
//! [`StandIn`](crate::pipe::StandIn), a port through
//! [`PortServer::mark_dead`](crate::port::PortServer::mark_dead) — and closes the
//! proxy only once the caller is gone. A clean close on the far side closes the proxy
//! instead, and the caller sees `Closed`.

use std::path::Path;
use std::time::Duration;

use culvert_sync::Deadline;

use crate::pipe::{PipeEnd, PipeOptions};
use crate::{BusyReason, Error, Result};

/// The redirector's pipe: a message-mode named pipe the bridge serves in each
/// namespace root it bridges.
pub const REDIRECTOR_PIPE: &str = "culvert.bridge";

/// Host names: 1 to this many characters of `[A-Za-z0-9._-]`.
pub const MAX_HOST_NAME: usize = 64;

/// The host part that means "every host of the domain" (mailslots only).
pub const ALL_HOSTS: &str = "*";

/// The packed identity a proxy takes on when the far process it stands in for died:
/// pid `0x7fff_fff0`, above any `pid_max` (Linux pids stay below 2^22), so every
/// liveness check reads it as dead, and as an `i32` it names no process group.
pub const DEAD_STAND_IN: u64 = culvert_sync::ProcessIdentity::from_parts(0x7fff_fff0, 0).packed();

const MAGIC: &[u8; 4] = b"CVR1";
/// Largest request or reply the redirector exchanges (room for a port's connect
/// payload or rejection reason, and the names).
pub const MAX_FRAME: usize = crate::port::CONNECT_PAYLOAD_MAX + 1024;

/// A parsed host-qualified name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteName<'a> {
    /// The host, or [`ALL_HOSTS`].
    pub host: &'a str,
    /// The object's name on that host.
    pub name: &'a str,
}

/// Whether `s` is 1 to `max` characters of `[A-Za-z0-9._-]` and not `.` or `..`.
pub fn valid_component(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses `//host/name`. `Ok(None)`: the name is local (does not start with `//`).
///
/// # Errors
/// `InvalidName` when it starts with `//` but the host or the name is malformed.
///
/// ```
/// use culvert::remote::parse;
/// let r = parse("//hostb/echo").unwrap().unwrap();
/// assert_eq!((r.host, r.name), ("hostb", "echo"));
/// assert!(parse("echo").unwrap().is_none());
/// assert!(parse("//hostb").is_err());
/// ```
pub fn parse(full: &str) -> Result<Option<RemoteName<'_>>> {
    let Some(rest) = full.strip_prefix("//") else {
        return Ok(None);
    };
    let invalid = || Error::InvalidName {
        name: full.to_string(),
        max: culvert_section::MAX_NAME_LEN,
    };
    let (host, name) = rest.split_once('/').ok_or_else(invalid)?;
    if !(host == ALL_HOSTS || valid_component(host, MAX_HOST_NAME))
        || !valid_component(name, culvert_section::MAX_NAME_LEN)
    {
        return Err(invalid());
    }
    Ok(Some(RemoteName { host, name }))
}

/// Which kind of object a [`Request`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A named pipe (`PipeEnd::connect`).
    Pipe = 1,
    /// A mailslot (`MailslotWriter::open`).
    Mailslot = 2,
    /// A port (`PortClient::connect`).
    Port = 3,
    /// A broadcast group (`BroadcastSender::open`).
    Group = 4,
}

impl ObjectKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Pipe,
            2 => Self::Mailslot,
            3 => Self::Port,
            4 => Self::Group,
            _ => return None,
        })
    }
}

/// One request to the redirector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to open.
    pub kind: ObjectKind,
    /// The host, or [`ALL_HOSTS`].
    pub host: String,
    /// The name on that host.
    pub name: String,
    /// How long the far side may wait (for a free pipe instance); `None`: the far
    /// object's default.
    pub timeout: Option<Duration>,
    /// Kind-specific bytes (a port's connect payload); at most
    /// [`CONNECT_PAYLOAD_MAX`](crate::port::CONNECT_PAYLOAD_MAX).
    pub payload: Vec<u8>,
}

/// What went wrong, as the redirector reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The reply's text is the local proxy's name.
    Ok = 0,
    /// No such object on that host (or no such host).
    NotFound = 1,
    /// All instances or connections taken; the detail is their number.
    Busy = 2,
    /// The far bridge or object died.
    PeerDied = 3,
    /// The far side did not answer in time.
    Timeout = 4,
    /// The name is not exported by that host.
    PermissionDenied = 5,
    /// The name or request was malformed.
    InvalidArgument = 6,
    /// The port server rejected the connection; the text holds its reason bytes.
    Rejected = 7,
    /// Anything else; the text says what.
    Other = 8,
}

impl Status {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::NotFound,
            2 => Self::Busy,
            3 => Self::PeerDied,
            4 => Self::Timeout,
            5 => Self::PermissionDenied,
            6 => Self::InvalidArgument,
            7 => Self::Rejected,
            8 => Self::Other,
            _ => return None,
        })
    }
}

/// The redirector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Success or the error's kind.
    pub status: Status,
    /// A number that goes with the status (`Busy`: the instance count).
    pub detail: u64,
    /// `Ok`: the local proxy's name; otherwise a message (or a rejection's reason).
    pub text: Vec<u8>,
}

fn bad(what: &str) -> Error {
    Error::Corrupted {
        what: format!("redirector message: {what}"),
    }
}

/// A little reader of length-checked fields.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn string16(&mut self) -> Result<String> {
        String::from_utf8(self.bytes16()?.to_vec()).map_err(|_| bad("not UTF-8"))
    }
}

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

impl Request {
    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(self.kind as u8);
        let ms = self
            .timeout
            .map_or(u64::MAX, |t| t.as_millis().min(u64::MAX as u128 - 1) as u64);
        out.extend_from_slice(&ms.to_le_bytes());
        put16(&mut out, self.host.as_bytes());
        put16(&mut out, self.name.as_bytes());
        put16(&mut out, &self.payload);
        out
    }

    /// Parses a request.
    ///
    /// # Errors
    /// `Corrupted` when the bytes are not a well-formed request.
    pub fn decode(bytes: &[u8]) -> Result<Request> {
        let mut c = Cursor(bytes);
        if c.take(4)? != MAGIC {
            return Err(bad("bad magic or version"));
        }
        let kind = ObjectKind::from_u8(c.u8()?).ok_or_else(|| bad("unknown kind"))?;
        let ms = c.u64()?;
        let host = c.string16()?;
        let name = c.string16()?;
        let payload = c.bytes16()?.to_vec();
        if payload.len() > crate::port::CONNECT_PAYLOAD_MAX {
            return Err(bad("payload too long"));
        }
        Ok(Request {
            kind,
            host,
            name,
            timeout: (ms != u64::MAX).then(|| Duration::from_millis(ms)),
            payload,
        })
    }
}

impl Reply {
    /// A success carrying the proxy's name.
    pub fn ok(proxy: &str) -> Reply {
        Reply {
            status: Status::Ok,
            detail: 0,
            text: proxy.as_bytes().to_vec(),
        }
    }

    /// The reply that reports `e` (the inverse of [`Reply::into_result`]).
    pub fn from_error(e: &Error) -> Reply {
        let (status, detail, text) = match e {
            Error::NotFound { name } => (Status::NotFound, 0, name.clone().into_bytes()),
            Error::Busy {
                reason: BusyReason::NoFreeInstance { max_instances: n },
            }
            | Error::Busy {
                reason: BusyReason::NoFreeConnection { max_connections: n },
            } => (Status::Busy, *n as u64, Vec::new()),
            Error::Busy { reason } => (Status::Other, 0, reason.to_string().into_bytes()),
            Error::PeerDied | Error::Closed => (Status::PeerDied, 0, Vec::new()),
            Error::Timeout => (Status::Timeout, 0, Vec::new()),
            Error::PermissionDenied { what } => {
                (Status::PermissionDenied, 0, what.clone().into_bytes())
            }
            Error::InvalidName { name, .. } => (Status::InvalidArgument, 0, name.clone().into()),
            Error::InvalidArgument { what } => (Status::InvalidArgument, 0, what.clone().into()),
            Error::Rejected { reason } => (Status::Rejected, 0, reason.clone()),
            other => (Status::Other, 0, other.to_string().into_bytes()),
        };
        let mut text = text;
        text.truncate(MAX_FRAME - 64);
        Reply {
            status,
            detail,
            text,
        }
    }

    /// The reply's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.text.len());
        out.extend_from_slice(MAGIC);
        out.push(self.status as u8);
        out.extend_from_slice(&self.detail.to_le_bytes());
        put16(&mut out, &self.text);
        out
    }

    /// Parses a reply.
    ///
    /// # Errors
    /// `Corrupted` when the bytes are not a well-formed reply.
    pub fn decode(bytes: &[u8]) -> Result<Reply> {
        let mut c = Cursor(bytes);
        if c.take(4)? != MAGIC {
            return Err(bad("bad magic or version"));
        }
        let status = Status::from_u8(c.u8()?).ok_or_else(|| bad("unknown status"))?;
        let detail = c.u64()?;
        let text = c.bytes16()?.to_vec();
        Ok(Reply {
            status,
            detail,
            text,
        })
    }

    /// The proxy's name, or the error the reply reports; `full` is the name the
    /// caller asked for (for the messages).
    ///
    /// # Errors
    /// The error the reply reports.
    pub fn into_result(self, full: &str) -> Result<String> {
        let text = String::from_utf8_lossy(&self.text).into_owned();
        let name = full.to_string();
        Err(match self.status {
            Status::Ok => {
                return if valid_component(&text, culvert_section::MAX_NAME_LEN) {
                    Ok(text)
                } else {
                    Err(bad("proxy name is malformed"))
                }
            }
            Status::NotFound => Error::NotFound { name },
            Status::Busy => Error::Busy {
                reason: BusyReason::NoFreeInstance {
                    max_instances: self.detail.min(usize::MAX as u64) as usize,
                },
            },
            Status::PeerDied => Error::PeerDied,
            Status::Timeout => Error::Timeout,
            Status::PermissionDenied => Error::PermissionDenied {
                what: format!("{full}: {text}"),
            },
            Status::InvalidArgument => Error::InvalidArgument {
                what: format!("{full}: {text}"),
            },
            Status::Rejected => Error::Rejected { reason: self.text },
            Status::Other => Error::Io(std::io::Error::other(format!("{full}: {text}"))),
        })
    }
}

/// Asks the redirector of the namespace `root` (`None`: the default one) for a local
/// proxy of `request`, and returns the proxy's name. `deadline` bounds the whole
/// exchange (plus a margin for the network round trip).
pub(crate) fn redirect(
    request: &Request,
    full: &str,
    root: Option<&Path>,
    deadline: Deadline,
) -> Result<String> {
    let mut opts = PipeOptions::default();
    if let Some(root) = root {
        opts = opts.root(root);
    }
    let no_bridge = || {
        let dir = opts
            .section
            .namespace_root()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "the default namespace".into());
        Error::NotFound {
            name: format!("{full} (no culvert bridge is running in {dir})"),
        }
    };
    let mut pipe = match PipeEnd::connect_with(REDIRECTOR_PIPE, Duration::from_secs(5), &opts) {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => return Err(no_bridge()),
        Err(e) => return Err(e),
    };
    // The far side may wait up to the request's timeout; the bridge answers within
    // it plus its own network bound.
    let limit = deadline
        .remaining()
        .map_or(Duration::from_secs(3600), |d| d + Duration::from_secs(10));
    pipe.set_read_timeout(Some(limit));
    pipe.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = vec![0u8; MAX_FRAME];
    let got = match pipe.transact(&request.encode(), &mut buf) {
        Ok(r) => r,
        Err(Error::Closed | Error::PeerDied) => return Err(Error::PeerDied),
        Err(e) => return Err(e),
    };
    if got.more {
        return Err(bad("reply too long"));
    }
    Reply::decode(&buf[..got.len])?.into_result(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            parse("//*/slot").unwrap(),
            Some(RemoteName {
                host: "*",
                name: "slot"
            })
        );
        for bad in [
            "//", "///x", "//h/", "//h/a/b", "//h h/x", "//../x", "//h/..",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_round_trip_and_reject_garbage() {
        let r = Request {
            kind: ObjectKind::Port,
            host: "b".into(),
            name: "n".into(),
            timeout: Some(Duration::from_millis(250)),
            payload: vec![1, 2, 3],
        };
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        let enc = r.encode();
        for cut in 0..enc.len() {
            assert!(Request::decode(&enc[..cut]).is_err());
        }
        let rep = Reply::from_error(&Error::Busy {
            reason: BusyReason::NoFreeInstance { max_instances: 2 },
        });
        let back = Reply::decode(&rep.encode()).unwrap();
        assert!(matches!(
            back.into_result("//b/n"),
            Err(Error::Busy {
                reason: BusyReason::NoFreeInstance { max_instances: 2 }
            })
        ));
        assert!(Reply::decode(b"CVR1\x63").is_err());
    }

    #[test]
    fn a_dead_stand_in_reads_as_dead() {
        assert_eq!(
            culvert_sync::holder_of(DEAD_STAND_IN),
            culvert_sync::Holder::Dead
        );
    }
}
