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
    at: When,
}

/// The point in time of a [`Deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum When {
    /// Never passes.
    Never,
    /// Has passed, whenever it is asked: a non-blocking call's deadline, made without
    /// reading the clock (a call that completes at once then reads none).
    Passed,
    /// Passes at this instant.
    At(Instant),
}

impl Deadline {
    /// A deadline that never passes.
    pub const fn never() -> Self {
        Self { at: When::Never }
    }

    /// A deadline that has already passed: the call polls once and does not wait.
    /// Reads no clock.
    pub const fn now() -> Self {
        Self { at: When::Passed }
    }

    /// The deadline `timeout` from now. A timeout too large to represent never passes;
    /// a zero timeout is [`Deadline::now`].
    pub fn after(timeout: Duration) -> Self {
        if timeout.is_zero() {
            return Self::now();
        }
        match Instant::now().checked_add(timeout) {
            Some(at) => Self::at(at),
            None => Self::never(),
        }
    }

    /// The deadline at `instant`.
    pub const fn at(instant: Instant) -> Self {
        Self {
            at: When::At(instant),
        }
    }

    /// `None` waits for ever, `Some(d)` waits `d` (zero: do not wait).
    pub fn from_timeout(timeout: Option<Duration>) -> Self {
        match timeout {
            None => Self::never(),
            Some(d) => Self::after(d),
        }
    }

    /// The instant, or `None` for a deadline that never passes ([`Deadline::now`]'s
    /// is the instant it is asked).
    pub fn instant(&self) -> Option<Instant> {
        match self.at {
            When::Never => None,
            When::Passed => Some(Instant::now()),
            When::At(at) => Some(at),
        }
    }

    /// Whether this deadline never passes.
    pub const fn is_never(&self) -> bool {
        matches!(self.at, When::Never)
    }

    /// Whether the deadline has passed.
    pub fn has_passed(&self) -> bool {
        match self.at {
            When::Never => false,
            When::Passed => true,
            When::At(at) => Instant::now() >= at,
        }
    }

    /// Time left: `None` for never, `Some(ZERO)` once passed.
    pub fn remaining(&self) -> Option<Duration> {
        match self.at {
            When::Never => None,
            When::Passed => Some(Duration::ZERO),
            When::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (When::Never, _) | (_, When::Passed) => other,
            (_, When::Never) | (When::Passed, _) => self,
            (When::At(a), When::At(b)) => Deadline::at(a.min(b)),
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
    fn a_passed_deadline_stays_passed_and_wins_every_min() {
        let now = Deadline::now();
        assert!(now.has_passed());
        assert_eq!(now.remaining(), Some(Duration::ZERO));
        assert!(!now.is_never());
        assert!(now.instant().is_some());
        let late = Deadline::after(Duration::from_secs(100));
        assert_eq!(now.min(late), now);
        assert_eq!(late.min(now), now);
        assert_eq!(now.min(Deadline::never()), now);
        assert_eq!(Deadline::never().min(now), now);
        assert_eq!(Deadline::after(Duration::ZERO), now);
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
