//! Cross-process futex wait and wake on a 32-bit word.
//!
//! Both calls use the *shared* futex operations (no `FUTEX_PRIVATE_FLAG`): the kernel
//! keys the waiter by the physical page, so a wake from any process that maps the same
//! `MAP_SHARED` page reaches it. `FUTEX_WAIT` returning `EAGAIN` (the word no longer
//! held `expected`) is success, `EINTR` is retried, and spurious returns are allowed:
//! callers always re-check their condition in a loop.
//!
//! Under `--cfg loom` the futex is emulated with one global loom mutex and condvar: a
//! waiter checks the word and parks under the lock, a waker takes the lock and wakes
//! every parked thread. That is exactly the futex contract (check-and-sleep is atomic
//! with respect to wake), so a lost wake-up in the code above shows as a loom deadlock.

use crate::atomic::AtomicU32;
use crate::{Deadline, Timeout};

/// Sleeps while `*word == expected`, until woken, or until `deadline` passes.
///
/// Returns `Ok(())` when woken, when the word did not hold `expected`, or spuriously;
/// `Err(Timeout)` once the deadline has passed. The word may live in memory shared
/// with other processes.
#[cfg(not(loom))]
pub fn wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Result<(), Timeout> {
    use rustix::io::Errno;
    use rustix::thread::futex;

    loop {
        let timeout = match deadline.remaining() {
            None => None,
            Some(left) if left.is_zero() => return Err(Timeout),
            Some(left) => Some(futex::Timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: left.subsec_nanos() as _,
            }),
        };
        match futex::wait(word, futex::Flags::empty(), expected, timeout.as_ref()) {
            Ok(()) | Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::TIMEDOUT) => return Err(Timeout),
            Err(Errno::INTR) => continue,
            // EINVAL/EFAULT cannot happen for a valid, aligned `&AtomicU32`; treat any
            // other failure as a spurious wake-up so callers re-check rather than hang.
            Err(_) => return Ok(()),
        }
    }
}

/// Wakes up to `count` threads (in any process) sleeping in [`wait`] on `word`.
/// Returns how many were woken.
#[cfg(not(loom))]
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    use rustix::thread::futex;
    let count = count.min(i32::MAX as u32);
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Wakes every thread sleeping on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, u32::MAX)
}

#[cfg(loom)]
mod emulated {
    use loom::sync::{Condvar, Mutex};

    pub(super) struct Parking {
        pub(super) lock: Mutex<()>,
        pub(super) cond: Condvar,
    }

    loom::lazy_static! {
        pub(super) static ref PARKING: Parking = Parking { lock: Mutex::new(()), cond: Condvar::new() };
    }
}

/// Loom emulation of [`wait`]: the deadline is ignored (models wait for ever, so a lost
/// wake-up is a deadlock loom reports).
#[cfg(loom)]
///
/// # Errors
/// `Timeout` when the deadline passed.
pub fn wait(word: &AtomicU32, expected: u32, _deadline: Deadline) -> Result<(), Timeout> {
    use crate::atomic::Ordering;
    let parking = &*emulated::PARKING;
    let guard = parking.lock.lock().unwrap();
    if word.load(Ordering::SeqCst) != expected {
        return Ok(());
    }
    drop(parking.cond.wait(guard).unwrap());
    Ok(())
}

/// Loom emulation of [`wake`]: wakes every parked thread (spurious wake-ups are allowed).
#[cfg(loom)]
pub fn wake(_word: &AtomicU32, _count: u32) -> usize {
    let parking = &*emulated::PARKING;
    let _guard = parking.lock.lock().unwrap();
    parking.cond.notify_all();
    0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn wait_returns_at_once_when_word_differs() {
        let word = AtomicU32::new(5);
        assert_eq!(wait(&word, 4, Deadline::never()), Ok(()));
    }

    #[test]
    fn wait_times_out_near_its_deadline() {
        let word = AtomicU32::new(0);
        let start = Instant::now();
        let r = wait(&word, 0, Deadline::after(Duration::from_millis(30)));
        assert_eq!(r, Err(Timeout));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn passed_deadline_does_not_sleep() {
        let word = AtomicU32::new(0);
        assert_eq!(wait(&word, 0, Deadline::now()), Err(Timeout));
    }

    #[test]
    fn wake_reaches_a_thread_sleeping_on_the_word() {
        let word = Arc::new(AtomicU32::new(0));
        let w = word.clone();
        let sleeper = std::thread::spawn(move || {
            while w.load(Ordering::Acquire) == 0 {
                wait(&w, 0, Deadline::after(Duration::from_secs(10))).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::Release);
        wake_all(&word);
        sleeper.join().unwrap();
    }
}
