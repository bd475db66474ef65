//! [`PendingCall`]: a call in flight — waited on, polled, awaited as a future, or
//! cancelled (dropping it cancels). Its request may still be unsent when the request
//! ring had no room; waiting or awaiting sends it first.

use std::sync::Arc;

use super::{lock, ClientInner, Outgoing, Reply};
use crate::{Deadline, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    Pending,
    Done,
    Cancelled,
}

/// A call in flight, from [`PortClient::call_async`](super::PortClient::call_async). Dropping it cancels the call.
pub struct PendingCall {
    /// The reactor arming of a pending `.await` (disarmed before `client` goes).
    pub(super) wait: culvert_sync::AsyncWait,
    pub(super) client: Arc<ClientInner>,
    pub(super) id: u64,
    pub(super) state: CallState,
    /// The request, while the ring had no room for it.
    pub(super) unsent: Option<Outgoing>,
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish()
    }
}

impl PendingCall {
    /// The call id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits until `deadline` for the reply. `Timeout` leaves the call pending (wait
    /// again or cancel); `Cancelled` after [`cancel`](Self::cancel).
    pub fn wait(&mut self, deadline: impl Into<Deadline>) -> Result<Reply> {
        let deadline = deadline.into();
        self.check_pending()?;
        if let Some(out) = &self.unsent {
            match self.client.push(out, deadline) {
                Ok(()) => self.unsent = None,
                Err(Error::Timeout) => return Err(Error::Timeout),
                Err(e) => return Err(self.fail(e)),
            }
        }
        let r = self.client.wait(self.id, deadline, true);
        if !matches!(r, Err(Error::Timeout)) {
            self.state = CallState::Done;
        }
        r
    }

    /// `Cancelled` after [`cancel`](Self::cancel), `InvalidArgument` once the reply was
    /// taken.
    fn check_pending(&self) -> Result<()> {
        match self.state {
            CallState::Cancelled => Err(Error::Cancelled),
            CallState::Done => Err(Error::InvalidArgument {
                what: "the reply was already taken".into(),
            }),
            CallState::Pending => Ok(()),
        }
    }

    /// Ends a call whose request could not be sent.
    fn fail(&mut self, e: Error) -> Error {
        if let Some(out) = self.unsent.take() {
            self.client.drop_outgoing(out);
        }
        lock(&self.client.table).calls.remove(&self.id);
        self.state = CallState::Done;
        e
    }

    /// The reply if it arrived, without waiting.
    ///
    /// # Errors
    /// As [`wait`](Self::wait), without `Timeout`.
    pub fn try_wait(&mut self) -> Result<Option<Reply>> {
        self.check_pending()?;
        if let Some(out) = &self.unsent {
            match self.client.try_push(out) {
                Ok(()) => self.unsent = None,
                Err(Error::WouldBlock) => return Ok(None),
                Err(e) => return Err(self.fail(e)),
            }
        }
        match self.client.wait(self.id, Deadline::now(), false) {
            Err(Error::WouldBlock) => Ok(None),
            r => {
                self.state = CallState::Done;
                r.map(Some)
            }
        }
    }

    /// Cancels the call: later waits get `Cancelled`; a reply that arrives (or already
    /// arrived) is dropped and its view freed.
    pub fn cancel(&mut self) {
        if let Some(out) = self.unsent.take() {
            self.client.drop_outgoing(out);
        }
        if self.state == CallState::Pending {
            self.client.cancel(self.id);
        }
        self.state = CallState::Cancelled;
    }
}

impl ClientInner {
    /// What an asynchronous waiter sleeps on: the reply ring's notifier (a reply came)
    /// and `filed` (another caller filed ours).
    fn reply_notifiers(&self, f: &mut dyn FnMut(&culvert_sync::Notifier)) {
        f(&self.filed);
        // SAFETY: the notifier lives in the reply ring's region, which the reader in
        // `self.reader` keeps mapped while `self` lives (it is never replaced).
        f(unsafe { &*(self.reply_notifier as *const culvert_sync::Notifier) });
    }
}

/// Awaiting a pending call waits for its reply without blocking the thread; dropping
/// the future cancels the call (as dropping the `PendingCall` does).
///
/// ```
/// # async fn demo(client: &culvert::port::PortClient) -> culvert::Result<()> {
/// let (a, b) = (client.call_async(b"one")?, client.call_async(b"two")?);
/// let (ra, rb) = (a.await?, b.await?);
/// # let _ = (ra, rb);
/// # Ok(())
/// # }
/// ```
impl std::future::Future for PendingCall {
    type Output = Result<Reply>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Reply>> {
        let this = self.get_mut();
        let client = this.client.clone();
        let mut wait = std::mem::take(&mut this.wait);
        // SAFETY: the notifiers live in `client` (its `filed` notifier, and its
        // connection section for the reply ring), which this call holds; `wait` goes
        // back into `self`, which disarms it before dropping its own `client`.
        let r = unsafe {
            crate::asyncio::poll_op(
                this,
                &mut wait,
                cx,
                |call| call.try_wait()?.ok_or(Error::WouldBlock),
                |call, f| {
                    if call.unsent.is_some() {
                        f(client.room_notifier());
                    }
                    client.reply_notifiers(f);
                },
            )
        };
        this.wait = wait;
        r
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.wait.disarm();
        if let Some(out) = self.unsent.take() {
            self.client.drop_outgoing(out);
        }
        if self.state == CallState::Pending {
            self.client.cancel(self.id);
        }
    }
}
