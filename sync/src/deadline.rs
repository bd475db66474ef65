//! [`Deadline`]: the optional point in time at which a blocking call gives up.

use std::time::{Duration, Instant};

/// When a blocking call gives up. `Deadline::never()` waits for ever.
///
/// Every call of culvert that may wait takes `impl Into<Deadline>`, so any of these
/// works as its last argument:
///
/// | argument | waits |
/// |---|---|
/// | `Duration::from_millis(5)` | 5 ms from now |
/// | `Duration::ZERO`, `Deadline::now()` | not at all: polls once |
/// | `None`, `Deadline::never()` | for ever |
/// | `Some(d)` | `d` from now |
/// | an [`Instant`] | until that instant |
///
/// ```
/// use std::time::{Duration, Instant};
/// use culvert_sync::Deadline;
///
/// fn wait_until(deadline: impl Into<Deadline>) -> Deadline {
///     deadline.into()
/// }
/// assert!(wait_until(None).is_never());
/// assert!(wait_until(Duration::ZERO).has_passed());
/// assert!(!wait_until(Instant::now() + Duration::from_secs(60)).has_passed());
/// ```
///
/// A deadline is a point in time, not a duration, so a call that waits several times
/// (spurious wake-ups, liveness re-checks) never waits longer in total than asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadline {
    /// `None` means never.
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline that never passes.
    pub const fn never() -> Self {
        Self { at: None }
    }

    /// A deadline that has already passed: the call polls once and does not wait.
    pub fn now() -> Self {
        Self {
            at: Some(Instant::now()),
        }
    }

    /// The deadline `timeout` from now. A timeout too large to represent never passes.
    pub fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now().checked_add(timeout),
        }
    }

    /// The deadline at `instant`.
    pub const fn at(instant: Instant) -> Self {
        Self { at: Some(instant) }
    }

    /// `None` waits for ever, `Some(d)` waits `d` (zero: do not wait).
    pub fn from_timeout(timeout: Option<Duration>) -> Self {
        match timeout {
            None => Self::never(),
            Some(d) => Self::after(d),
        }
    }

    /// The instant, or `None` for a deadline that never passes.
    pub const fn instant(&self) -> Option<Instant> {
        self.at
    }

    /// Whether this deadline never passes.
    pub const fn is_never(&self) -> bool {
        self.at.is_none()
    }

    /// Whether the deadline has passed.
    pub fn has_passed(&self) -> bool {
        matches!(self.at, Some(at) if Instant::now() >= at)
    }

    /// Time left: `None` for never, `Some(ZERO)` once passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (None, _) => other,
            (_, None) => self,
            (Some(a), Some(b)) => Deadline::at(a.min(b)),
        }
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Self::never()
    }
}

impl From<Option<Duration>> for Deadline {
    fn from(timeout: Option<Duration>) -> Self {
        Self::from_timeout(timeout)
    }
}

impl From<Instant> for Deadline {
    fn from(instant: Instant) -> Self {
        Self::at(instant)
    }
}

impl From<Duration> for Deadline {
    fn from(timeout: Duration) -> Self {
        Self::after(timeout)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn never_does_not_pass_and_has_no_remaining_bound() {
        let d = Deadline::never();
        assert!(!d.has_passed());
        assert_eq!(d.remaining(), None);
        assert!(d.is_never());
    }

    #[test]
    fn zero_timeout_has_passed_at_once() {
        let d = Deadline::from_timeout(Some(Duration::ZERO));
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn huge_timeout_saturates_to_never() {
        assert!(Deadline::after(Duration::MAX).is_never());
    }

    #[test]
    fn min_picks_the_earlier() {
        let soon = Deadline::after(Duration::from_millis(1));
        let late = Deadline::after(Duration::from_secs(100));
        assert_eq!(soon.min(late), soon);
        assert_eq!(late.min(soon), soon);
        assert_eq!(Deadline::never().min(late), late);
        assert_eq!(late.min(Deadline::never()), late);
    }
}
