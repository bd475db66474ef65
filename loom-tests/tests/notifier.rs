#![cfg(loom)]
//! loom models of the `Notifier` eventcount and `wait_for`.
//!
//! Under `--cfg loom`, `culvert_sync::atomic` hands out loom's atomics and
//! `culvert_sync::futex` is a loom mutex + condvar in which check-and-sleep is atomic
//! with respect to wake, exactly like `FUTEX_WAIT`. The emulated wait ignores its
//! deadline, so a lost wake-up is a thread parked for ever: loom reports it as a
//! deadlock. `broken_check_before_prepare_wait_loses_a_wake_up` shows the models can
//! fail that way.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p culvert-loom-tests
//! --release --target-dir target/loom`.

use culvert_sync::atomic::{AtomicU32, Ordering};
use culvert_sync::{wait_for, Deadline, Notifier, Timeout, WaitStrategy};
use loom::sync::Arc;
use loom::thread;

/// Publishes `value` and notifies, as every producer must (Release, then notify).
fn publish(notifier: &Notifier, flag: &AtomicU32, value: u32) {
    flag.store(value, Ordering::Release);
    notifier.notify();
}

/// The bare waiter protocol: prepare_wait → re-check → wait or cancel_wait.
fn wait_until_at_least(notifier: &Notifier, flag: &AtomicU32, want: u32) -> u32 {
    loop {
        let v = flag.load(Ordering::Acquire);
        if v >= want {
            return v;
        }
        let key = notifier.prepare_wait();
        let v = flag.load(Ordering::Acquire);
        if v >= want {
            notifier.cancel_wait(key);
            return v;
        }
        notifier
            .wait(key, Deadline::never())
            .expect("a never-deadline does not time out");
    }
}

/// `wait_for` with `strategy` until the flag reaches `want`.
fn wait_for_at_least(
    notifier: &Notifier,
    flag: &AtomicU32,
    want: u32,
    strategy: WaitStrategy,
) -> u32 {
    let r: Result<u32, Timeout> = wait_for(notifier, strategy, Deadline::never(), |_| {
        let v = flag.load(Ordering::Acquire);
        Ok((v >= want).then_some(v))
    });
    r.expect("a never-deadline does not time out")
}

/// Runs `consumer` against a producer thread that publishes 1.
fn one_flag(consumer: fn(&Notifier, &AtomicU32) -> u32) {
    loom::model(move || {
        let notifier = Arc::new(Notifier::new());
        let flag = Arc::new(AtomicU32::new(0));
        let producer = {
            let (n, f) = (notifier.clone(), flag.clone());
            thread::spawn(move || publish(&n, &f, 1))
        };
        assert_eq!(consumer(&notifier, &flag), 1);
        producer.join().unwrap();
        assert_eq!(notifier.waiter_count(), 0);
    });
}

#[test]
fn prepare_recheck_wait_sees_the_flag() {
    one_flag(|n, f| wait_until_at_least(n, f, 1));
}

#[test]
fn wait_for_blocking_sees_the_flag() {
    one_flag(|n, f| wait_for_at_least(n, f, 1, WaitStrategy::Blocking));
}

#[test]
fn wait_for_adaptive_sees_the_flag() {
    // Under loom Adaptive has no spin phase: it is the same futex path, but
    // through the strategy's own branch.
    one_flag(|n, f| wait_for_at_least(n, f, 1, WaitStrategy::Adaptive));
}

#[test]
fn two_rounds_consumer_waits_for_each_value() {
    loom::model(|| {
        let notifier = Arc::new(Notifier::new());
        let flag = Arc::new(AtomicU32::new(0));
        let producer = {
            let (n, f) = (notifier.clone(), flag.clone());
            thread::spawn(move || {
                publish(&n, &f, 1);
                publish(&n, &f, 2);
            })
        };
        // The first wait may already see 2; the second must see 2.
        let first = wait_until_at_least(&notifier, &flag, 1);
        assert!(first == 1 || first == 2);
        assert_eq!(
            wait_for_at_least(&notifier, &flag, 2, WaitStrategy::Blocking),
            2
        );
        producer.join().unwrap();
        assert_eq!(notifier.waiter_count(), 0);
    });
}

#[test]
fn one_notify_wakes_two_waiters() {
    loom::model(|| {
        let notifier = Arc::new(Notifier::new());
        let flag = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (n, f) = (notifier.clone(), flag.clone());
                thread::spawn(move || wait_until_at_least(&n, &f, 1))
            })
            .collect();
        publish(&notifier, &flag, 1);
        for w in waiters {
            assert_eq!(w.join().unwrap(), 1);
        }
        assert_eq!(notifier.waiter_count(), 0);
    });
}

#[test]
fn ping_pong_with_acknowledgement() {
    // Each side sleeps on its own notifier; both directions must get through.
    loom::model(|| {
        let ping_n = Arc::new(Notifier::new());
        let ping = Arc::new(AtomicU32::new(0));
        let pong_n = Arc::new(Notifier::new());
        let pong = Arc::new(AtomicU32::new(0));
        let consumer = {
            let (pn, p, qn, q) = (ping_n.clone(), ping.clone(), pong_n.clone(), pong.clone());
            thread::spawn(move || {
                assert_eq!(wait_until_at_least(&pn, &p, 1), 1);
                publish(&qn, &q, 1);
            })
        };
        publish(&ping_n, &ping, 1);
        assert_eq!(
            wait_for_at_least(&pong_n, &pong, 1, WaitStrategy::Blocking),
            1
        );
        consumer.join().unwrap();
        assert_eq!(ping_n.waiter_count(), 0);
        assert_eq!(pong_n.waiter_count(), 0);
    });
}

/// The protocol with the re-check moved *before* `prepare_wait`: the producer can
/// publish and notify (finding no waiter, so not bumping the epoch) between the check
/// and the announcement, and the consumer then sleeps for ever. loom must find that
/// interleaving and report the deadlock: proof that the models above can fail.
fn broken_model() {
    one_flag(|n, f| loop {
        let v = f.load(Ordering::Acquire);
        if v >= 1 {
            return v;
        }
        let key = n.prepare_wait();
        // (missing: the re-check after announcing)
        n.wait(key, Deadline::never()).unwrap();
    });
}

/// loom's deadlock panic unwinds through loom objects whose destructors panic again,
/// which aborts the process, so `#[should_panic]` cannot catch it. The broken model
/// therefore runs in a re-executed copy of this binary, and the test checks that the
/// copy died reporting a deadlock.
#[test]
fn broken_check_before_prepare_wait_loses_a_wake_up() {
    use culvert_testkit::{cross_test, role};
    use std::time::Duration;

    if role().is_some() {
        broken_model();
        return; // not reached: loom reports the deadlock
    }
    let test = cross_test!(broken_check_before_prepare_wait_loses_a_wake_up);
    let sup = test.supervise(Duration::from_secs(120));
    let child = sup.spawn(test.command("broken-model").env("RUST_BACKTRACE", "0"));
    let status = sup.wait(child);
    let stderr = sup.stderr(child);
    assert!(
        !status.success() && stderr.contains("deadlock; threads"),
        "loom did not report the lost wake-up of the broken protocol ({status}):\n{stderr}"
    );
}
