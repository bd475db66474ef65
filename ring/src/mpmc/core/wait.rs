//! The blocking loop of the MPMC endpoints: [`wait`], around
//! [`culvert_sync::wait_for`], on the ring's `not_full` or `not_empty` notifier.

use culvert_sync::{wait_for, Deadline};

use super::MpmcCore;
use crate::{Error, Result};

/// The notifier a blocked call sleeps on.
#[derive(Clone, Copy)]
pub(crate) enum WaitOn {
    /// `not_full`: producers and writers wait for a free slot.
    NotFull,
    /// `not_empty`: consumers and readers wait for a committed message.
    NotEmpty,
}

/// Runs `poll(endpoint)` until it stops returning `WouldBlock`, sleeping on the `on`
/// notifier with the endpoint's wait strategy until `deadline` (`Timeout`). The claims
/// inside `poll` check slot holders' liveness themselves (rate-limited by the core's
/// clock); `wait_for` polls at least once per liveness interval. `core` finds the
/// endpoint's [`MpmcCore`].
#[inline]
pub(crate) fn wait<E, T>(
    endpoint: &mut E,
    core: impl Fn(&E) -> &MpmcCore,
    on: WaitOn,
    deadline: Deadline,
    mut poll: impl FnMut(&mut E) -> Result<T>,
) -> Result<T> {
    let strategy = core(endpoint).wait_strategy();
    // SAFETY: the reference is used only inside this call, while `endpoint` (and so its
    // MpmcCore and region) lives.
    let ctl = unsafe { core(endpoint).ctl_unbound() };
    let notifier = match on {
        WaitOn::NotFull => &ctl.not_full.0,
        WaitOn::NotEmpty => &ctl.not_empty.0,
    };
    wait_for(notifier, strategy, deadline, |_| match poll(endpoint) {
        Ok(v) => Ok(Some(v)),
        Err(Error::WouldBlock) => Ok(None),
        Err(e) => Err(e),
    })
}
