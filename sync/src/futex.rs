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

/// Most words one [`wait_any`] call can watch (the kernel's `FUTEX_WAITV_MAX`).
pub const WAIT_ANY_MAX: usize = 128;

/// The address of a futex word, for [`wait_any`]: plain data (no borrow), so a list
/// of them can outlive the words. The kernel checks every address it is given; one
/// whose memory is gone only ends the wait (`EFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WordAddr(usize);

impl WordAddr {
    /// The address of `word`.
    pub fn of(word: &AtomicU32) -> Self {
        Self(word as *const AtomicU32 as usize)
    }
}

/// Why [`wait_any`] could not wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitAnyError {
    /// The deadline passed.
    Timeout,
    /// The kernel has no `futex_waitv` (Linux < 5.16), or a seccomp filter denies it;
    /// the caller falls back to [`wait`] on one word at a time.
    Unsupported,
}

/// Sleeps while every `word == expected` of `words`, until one of them is woken, or
/// until `deadline` passes (`futex_waitv`, Linux ≥ 5.16).
///
/// Returns `Ok(())` when woken, when some word did not hold its expected value, or
/// spuriously; callers re-check their conditions. The words may live in memory shared
/// with other processes: the call never sets `FUTEX2_PRIVATE`, so a plain shared
/// [`wake`] from any process reaches it. At most [`WAIT_ANY_MAX`] words (more are
/// refused as `Unsupported`).
///
/// # Errors
/// `Timeout` when the deadline passed; `Unsupported` when the kernel refuses the call
/// (`ENOSYS`, `EPERM` under some seccomp profiles, or too many words).
#[cfg(not(loom))]
pub fn wait_any(words: &[(WordAddr, u32)], deadline: Deadline) -> Result<(), WaitAnyError> {
    use rustix::io::Errno;
    use rustix::thread::futex;
    use rustix::time::{clock_gettime, ClockId};

    if words.is_empty() || words.len() > WAIT_ANY_MAX {
        return Err(WaitAnyError::Unsupported);
    }
    let mut waits = [futex::Wait::new(); WAIT_ANY_MAX];
    for (w, (word, expected)) in waits.iter_mut().zip(words) {
        w.val = u64::from(*expected);
        // The kernel validates the address; no reference to the word is made here.
        w.uaddr = futex::WaitPtr::new(word.0 as *mut std::ffi::c_void);
        // A 32-bit word, and never FUTEX2_PRIVATE: wakes come from other processes.
        w.flags = futex::WaitFlags::SIZE_U32;
    }
    let waits = &waits[..words.len()];
    loop {
        // futex_waitv takes an absolute time on the clock it is given.
        let timeout = match deadline.remaining() {
            None => None,
            Some(left) if left.is_zero() => return Err(WaitAnyError::Timeout),
            Some(left) => {
                let now = clock_gettime(ClockId::Monotonic);
                let nanos = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
                let secs = (now.tv_sec as u64)
                    .saturating_add(left.as_secs())
                    .saturating_add(nanos / 1_000_000_000);
                Some(futex::Timespec {
                    tv_sec: secs.min(i64::MAX as u64) as i64,
                    tv_nsec: (nanos % 1_000_000_000) as _,
                })
            }
        };
        match futex::waitv(
            waits,
            futex::WaitvFlags::empty(),
            timeout.as_ref(),
            ClockId::Monotonic,
        ) {
            Ok(_) | Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::TIMEDOUT) => return Err(WaitAnyError::Timeout),
            Err(Errno::INTR) => continue,
            Err(Errno::NOSYS | Errno::PERM | Errno::ACCESS) => {
                return Err(WaitAnyError::Unsupported)
            }
            // Anything else (EINVAL, EFAULT: not for valid aligned words): a spurious
            // wake-up, so callers re-check rather than hang.
            Err(_) => return Ok(()),
        }
    }
}

/// Loom emulation of [`wait_any`]: parks until any wake while every word still holds
/// its expected value (the deadline is ignored, as in [`wait`]).
///
/// # Errors
/// Never under loom.
#[cfg(loom)]
pub fn wait_any(words: &[(WordAddr, u32)], _deadline: Deadline) -> Result<(), WaitAnyError> {
    use crate::atomic::Ordering;
    let parking = &*emulated::PARKING;
    let guard = parking.lock.lock().unwrap();
    if words.iter().any(|(word, expected)| {
        // SAFETY: under loom the only caller is `WaitSet`, whose words belong to
        // endpoints it borrows for the whole wait.
        let word = unsafe { &*(word.0 as *const AtomicU32) };
        word.load(Ordering::SeqCst) != *expected
    }) {
        return Ok(());
    }
    drop(parking.cond.wait(guard).unwrap());
    Ok(())
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
    fn wait_any_returns_at_once_when_a_word_differs() {
        let (a, b) = (AtomicU32::new(1), AtomicU32::new(2));
        let r = wait_any(
            &[(WordAddr::of(&a), 1), (WordAddr::of(&b), 3)],
            Deadline::after(Duration::from_secs(10)),
        );
        assert!(
            matches!(r, Ok(()) | Err(WaitAnyError::Unsupported)),
            "{r:?}"
        );
    }

    #[test]
    fn wait_any_times_out_near_its_deadline() {
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
        let start = Instant::now();
        match wait_any(
            &[(WordAddr::of(&a), 0), (WordAddr::of(&b), 0)],
            Deadline::after(Duration::from_millis(30)),
        ) {
            Err(WaitAnyError::Unsupported) => return,
            r => assert_eq!(r, Err(WaitAnyError::Timeout)),
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(
            wait_any(&[(WordAddr::of(&a), 0)], Deadline::now()),
            Err(WaitAnyError::Timeout)
        );
    }

    #[test]
    fn wait_any_refuses_no_words_and_too_many() {
        assert_eq!(
            wait_any(&[], Deadline::never()),
            Err(WaitAnyError::Unsupported)
        );
        let words: Vec<AtomicU32> = (0..=WAIT_ANY_MAX).map(|_| AtomicU32::new(0)).collect();
        let pairs: Vec<(WordAddr, u32)> = words.iter().map(|w| (WordAddr::of(w), 0)).collect();
        assert_eq!(
            wait_any(&pairs, Deadline::never()),
            Err(WaitAnyError::Unsupported)
        );
    }

    #[test]
    fn a_wake_of_any_word_ends_wait_any() {
        let words: Arc<Vec<AtomicU32>> = Arc::new((0..64).map(|_| AtomicU32::new(0)).collect());
        let w = words.clone();
        let sleeper = std::thread::spawn(move || {
            let pairs: Vec<(WordAddr, u32)> = w.iter().map(|x| (WordAddr::of(x), 0)).collect();
            while w[41].load(Ordering::Acquire) == 0 {
                match wait_any(&pairs, Deadline::after(Duration::from_secs(10))) {
                    Ok(()) => {}
                    Err(WaitAnyError::Unsupported) => return false,
                    Err(WaitAnyError::Timeout) => panic!("the wake was lost"),
                }
            }
            true
        });
        std::thread::sleep(Duration::from_millis(20));
        words[41].store(1, Ordering::Release);
        wake_all(&words[41]);
        let _ran = sleeper.join().unwrap();
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
