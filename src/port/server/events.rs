//! One thread serving a whole port: the server's readiness for a
//! [`WaitSet`](culvert_sync::WaitSet), and [`PortServer::next_event`], which waits for
//! whichever comes first, a connect request or a message.
//!
//! Readiness never waits and takes nothing: it looks at the connect slots (a request
//! waiting, or a slot to tear down) and at the head of each connection's request ring
//! (a committed record, or a ring that ended), and runs the server's rate-limited
//! housekeeping, so clients that died are torn down while the thread sleeps in a set.

use culvert_sync::atomic::Ordering;
use culvert_sync::{Deadline, Notifier, WaitContext, WaitSet, Waitable};

use super::{ConnectRequest, Incoming, PortServer, ServerState};
use crate::{Error, Result};

/// What [`PortServer::next_event`] found.
#[derive(Debug)]
pub enum ServerEvent {
    /// A client asks to connect: accept or reject it.
    Connect(ConnectRequest),
    /// A request or datagram from a connected client.
    Message(Incoming),
}

impl ServerState {
    fn poll_ready(&self, ctx: WaitContext) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        self.maintain(false, false);
        self.requested_or_closing() || self.request_ready(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        f(&self.header().listen.connect);
        f(&self.header().requests.sent);
    }
}

// SAFETY: both notifiers live in the port header, in the port's mapped section, not in
// the server value.
unsafe impl Waitable for PortServer {
    /// True when [`try_listen`](PortServer::try_listen) or
    /// [`try_receive`](PortServer::try_receive) would not report `WouldBlock`: a
    /// connect request, a message, a connection to tear down, or the server closed.
    fn poll_ready(&mut self, ctx: WaitContext) -> bool {
        self.inner.poll_ready(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        self.inner.notifiers(f);
    }
}

// SAFETY: as for `PortServer`.
unsafe impl Waitable for &PortServer {
    /// As for [`PortServer`]; for a server shared between threads.
    fn poll_ready(&mut self, ctx: WaitContext) -> bool {
        self.inner.poll_ready(ctx)
    }

    fn notifiers(&self, f: &mut dyn FnMut(&Notifier)) {
        self.inner.notifiers(f);
    }
}

impl PortServer {
    /// Waits until `deadline` for a connect request or a message from any client,
    /// whichever comes first, so one thread can serve the whole port. Connect requests
    /// are looked at first. To wait on other endpoints too, put the server in a
    /// [`WaitSet`] and call [`try_listen`](Self::try_listen) and
    /// [`try_receive`](Self::try_receive) when it is ready.
    ///
    /// ```
    /// use std::time::Duration;
    /// use culvert::port::{PortClient, PortOptions, PortServer, ServerEvent};
    ///
    /// # fn main() -> culvert::Result<()> {
    /// let root = tempfile::tempdir().unwrap();
    /// let opts = PortOptions::default().root(root.path());
    /// let server = PortServer::create("events-doc", &opts)?;
    /// let client = std::thread::spawn(move || -> culvert::Result<Vec<u8>> {
    ///     let (c, _welcome) = PortClient::connect_with("events-doc", b"hi", Duration::from_secs(10), &opts)?;
    ///     Ok(c.call(b"ping", Duration::from_secs(10))?.to_vec())
    /// });
    /// let mut served = 0;
    /// while served < 1 {
    ///     match server.next_event(Duration::from_secs(10))? {
    ///         ServerEvent::Connect(req) => drop(req.accept(b"welcome")?),
    ///         ServerEvent::Message(msg) => {
    ///             msg.reply(b"pong")?;
    ///             served += 1;
    ///         }
    ///     }
    /// }
    /// assert_eq!(client.join().unwrap()?, b"pong");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `Timeout`; `Closed` once the server closed; otherwise as
    /// [`listen`](Self::listen) and [`receive`](Self::receive).
    pub fn next_event(&self, deadline: impl Into<Deadline>) -> Result<ServerEvent> {
        let deadline = deadline.into();
        let mut set = WaitSet::new();
        let mut me = self;
        loop {
            match self.try_next_event() {
                Err(Error::WouldBlock) => {}
                other => return other,
            }
            set.wait(&mut [&mut me], deadline)?;
        }
    }

    /// [`listen`](Self::listen) as a future.
    ///
    /// # Errors
    /// As [`listen`](Self::listen), without `Timeout`.
    pub async fn listen_async(&self) -> Result<ConnectRequest> {
        let mut me = self;
        crate::asyncio::until_ready(&mut me, |s| s.try_listen(), |s, f| s.notifiers(f)).await
    }

    /// [`receive`](Self::receive) as a future.
    ///
    /// # Errors
    /// As [`receive`](Self::receive), without `Timeout`.
    pub async fn receive_async(&self) -> Result<Incoming> {
        let mut me = self;
        crate::asyncio::until_ready(&mut me, |s| s.try_receive(), |s, f| s.notifiers(f)).await
    }

    /// [`next_event`](Self::next_event) as a future: a connect request or a message,
    /// whichever comes first.
    ///
    /// # Errors
    /// As [`next_event`](Self::next_event), without `Timeout`.
    pub async fn next_event_async(&self) -> Result<ServerEvent> {
        let mut me = self;
        crate::asyncio::until_ready(&mut me, |s| s.try_next_event(), |s, f| s.notifiers(f)).await
    }

    /// A connect request or a message already waiting, else `WouldBlock`.
    fn try_next_event(&self) -> Result<ServerEvent> {
        match self.try_listen() {
            Err(Error::WouldBlock) => self.try_receive().map(ServerEvent::Message),
            other => other.map(ServerEvent::Connect),
        }
    }
}
