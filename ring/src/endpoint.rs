//! [`Endpoint`] and [`WriteEndpoint`]: what every endpoint of an SPSC or MPMC ring
//! offers, whatever its framing — closing, whether the ring was closed, how its
//! blocking calls wait, the region it lives in, and (writers) the notifier a writer
//! waiting for room sleeps on. Code that holds endpoints of several kinds closes or
//! configures them through one call.
//!
//! None of these calls waits.

use culvert_section::Region;
use culvert_sync::{Notifier, WaitStrategy};

/// An endpoint of an SPSC or MPMC ring, byte or message framing.
pub trait Endpoint {
    /// How this endpoint's blocking calls wait (default `Adaptive`).
    fn set_wait_strategy(&mut self, strategy: WaitStrategy);

    /// Closes the ring for this endpoint's peers. SPSC: this side closes (a writer's
    /// reader drains what was committed, then gets `Closed`; a reader's writer gets
    /// `Closed`). MPMC: the ring closes for every endpoint (readers still drain what
    /// was committed). Idempotent; dropping an endpoint closes its side too (MPMC: its
    /// attachment only).
    fn close(&mut self);

    /// Whether no more will pass from the other side: SPSC, the peer closed its side;
    /// MPMC, the ring was closed (by anyone).
    fn is_closed(&self) -> bool;

    /// The region the ring lives in.
    fn region(&self) -> &Region;
}

/// A writing endpoint.
pub trait WriteEndpoint: Endpoint {
    /// The notifier a writer waiting for room sleeps on: notified when a reader frees
    /// room or the ring closes. For waiting on it from elsewhere (an async reactor); it
    /// lives in the ring's region, at a fixed address while the endpoint lives.
    fn writable_notifier(&self) -> &Notifier;
}
