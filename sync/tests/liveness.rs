//! `ProcessIdentity` against real processes: SIGKILLed children (zombie and reaped),
//! identities whose pid names another process, and `wait_for` noticing a dead peer.

#![cfg(not(loom))]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::child;
use culvert_sync::{
    wait_for, Deadline, Liveness, Notifier, ProcessIdentity, Timeout, WaitStrategy,
    LIVENESS_RECHECK_INTERVAL,
};
use culvert_testkit::{cross_test, role};

/// The child role of every test here: sleep until killed (the parent-death signal and
/// this bound keep it from outliving a failed test).
fn sleeper() {
    std::thread::sleep(Duration::from_secs(120));
}

/// The state letter of `/proc/<pid>/stat`, if the process (or zombie) exists.
fn proc_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits, without reaping, until the child `pid` has exited (is a zombie).
fn wait_until_zombie(pid: u32) {
    use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
    let pid = Pid::from_raw(pid as i32).expect("non-zero pid");
    waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    )
    .expect("waitid(WEXITED | WNOWAIT)");
}

#[test]
fn liveness_reports_sigkilled_child_dead() {
    let test = cross_test!(liveness_reports_sigkilled_child_dead);
    if role().is_some() {
        return sleeper();
    }
    let sup = test.supervise(Duration::from_secs(60));
    let kid = sup.spawn(&mut child(test, "sleeper", None));
    let pid = sup.pid(kid);
    let id = ProcessIdentity::of(pid).expect("the child runs");
    assert_eq!(id.pid, pid);
    assert!(id.start_time > 0);
    assert_eq!(id.liveness(), Liveness::Alive);
    assert_eq!(
        ProcessIdentity::packed_liveness(id.packed()),
        Liveness::Alive
    );

    sup.kill(kid);
    // SIGKILL takes effect asynchronously, but promptly: the identity turns Dead while
    // nobody has reaped the child.
    let killed = Instant::now();
    while id.liveness() == Liveness::Alive {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still Alive 10 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // Now certainly a zombie: exited, not reaped, /proc/<pid>/stat still there.
    wait_until_zombie(pid);
    assert_eq!(proc_state(pid), Some('Z'), "the unreaped child is a zombie");
    assert_eq!(id.liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::packed_liveness(id.packed()),
        Liveness::Dead
    );

    let status = sup.wait(kid);
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    assert_eq!(id.liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::packed_liveness(id.packed()),
        Liveness::Dead
    );
}

#[test]
fn liveness_not_fooled_by_pid_reuse() {
    let test = cross_test!(liveness_not_fooled_by_pid_reuse);
    if role().is_some() {
        return sleeper();
    }
    let sup = test.supervise(Duration::from_secs(60));
    let kid = sup.spawn(&mut child(test, "sleeper", None));
    let live = ProcessIdentity::of(sup.pid(kid)).expect("the child runs");
    assert_eq!(live.liveness(), Liveness::Alive);

    // An identity recorded for an earlier process that had this pid (it started before
    // the child did): the pid now names someone else, so that process is dead — though
    // `kill(pid, 0)` would say the pid is alive.
    let pid = rustix::process::Pid::from_raw(live.pid as i32).expect("non-zero pid");
    assert!(rustix::process::test_kill_process(pid).is_ok());
    let earlier = ProcessIdentity::from_parts(live.pid, live.start_time - 1);
    assert_eq!(earlier.liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::packed_liveness(earlier.packed()),
        Liveness::Dead
    );
    // Nor does a later start time match.
    let later = ProcessIdentity::from_parts(live.pid, live.start_time + 1);
    assert_eq!(later.liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::packed_liveness(later.packed()),
        Liveness::Dead
    );
    // The packed form compares the low 32 bits of the start time only.
    let wrapped = ProcessIdentity::from_parts(live.pid, live.start_time + (1 << 32));
    assert_eq!(wrapped.liveness(), Liveness::Dead);

    // A long-dead identity: the reaped child. Whether or not its pid was handed out
    // again since, the identity is dead.
    sup.kill(kid);
    sup.wait(kid);
    assert_eq!(live.liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::packed_liveness(live.packed()),
        Liveness::Dead
    );
    match ProcessIdentity::of(live.pid) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        // The pid was reused already: by a process that is not our child.
        Ok(reused) => assert_ne!(reused, live),
    }

    // No process at all.
    assert_eq!(ProcessIdentity::nobody().liveness(), Liveness::Dead);
    assert_eq!(
        ProcessIdentity::from_parts(u32::MAX, 1).liveness(),
        Liveness::Dead
    );
}

#[derive(Debug, PartialEq)]
enum PeerWait {
    Timeout,
    PeerDied,
}

impl From<Timeout> for PeerWait {
    fn from(_: Timeout) -> Self {
        PeerWait::Timeout
    }
}

#[test]
fn wait_for_notices_dead_peer_within_interval() {
    let test = cross_test!(wait_for_notices_dead_peer_within_interval);
    if role().is_some() {
        return sleeper();
    }
    let kill_after = Duration::from_millis(170);
    let bound = LIVENESS_RECHECK_INTERVAL * 4;
    for strategy in [
        WaitStrategy::Blocking,
        WaitStrategy::Adaptive,
        WaitStrategy::BusyPoll,
    ] {
        let sup = test.supervise(Duration::from_secs(60));
        let kid = sup.spawn(&mut child(test, "sleeper", None));
        let peer = ProcessIdentity::of(sup.pid(kid)).expect("the child runs");
        // Nobody ever notifies: only the liveness re-check can end this wait.
        let notifier = Notifier::new();
        let mut checks = 0u32;
        let (started, r, returned, killed_at) = std::thread::scope(|s| {
            let killer = s.spawn(|| {
                std::thread::sleep(kill_after);
                sup.kill(kid);
                Instant::now()
            });
            let started = Instant::now();
            let r: Result<(), PeerWait> = wait_for(
                &notifier,
                strategy,
                Deadline::after(Duration::from_secs(30)),
                |ctx| {
                    if ctx.liveness_due {
                        checks += 1;
                        if peer.liveness() == Liveness::Dead {
                            return Err(PeerWait::PeerDied);
                        }
                    }
                    Ok(None)
                },
            );
            let returned = Instant::now();
            let killed_at = killer.join().expect("killer thread");
            (started, r, returned, killed_at)
        });
        sup.wait(kid);

        assert_eq!(r, Err(PeerWait::PeerDied), "{strategy:?}");
        assert!(
            returned - started >= kill_after,
            "{strategy:?}: returned before the kill"
        );
        let lag = returned.saturating_duration_since(killed_at);
        eprintln!(
            "{strategy:?}: dead peer noticed {lag:?} after SIGKILL ({checks} liveness checks)"
        );
        assert!(
            lag <= bound,
            "{strategy:?}: noticed the dead peer {lag:?} after the kill (bound {bound:?})"
        );
        assert!(checks >= 2, "{strategy:?}: only {checks} liveness checks");
        assert_eq!(notifier.waiter_count(), 0, "{strategy:?}");
    }
}
