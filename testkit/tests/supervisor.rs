//! The role harness and the supervisor against real child processes: roles run, output
//! is captured and reported, failures and wrong test names are caught, kills are not
//! failures, and waits end by the outer deadline.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use culvert_testkit::{cross_test, role, role_arg, ChildCommand, CrossTest, Supervisor, TempRoot};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("no panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_role_runs_and_gets_its_arguments() {
    let test = cross_test!(a_role_runs_and_gets_its_arguments);
    if let Some(r) = role() {
        assert_eq!(r, "echo");
        let dir = role_arg("DIR");
        std::fs::write(format!("{dir}/out"), role_arg("WORD")).unwrap();
        println!("said it");
        return;
    }
    assert_eq!(test.name(), "a_role_runs_and_gets_its_arguments");
    let dir = TempRoot::new("kit-args");
    let sup = test.supervise(Duration::from_secs(60));
    let c = sup.spawn(
        test.command("echo")
            .role_arg("DIR", dir.path())
            .role_arg("WORD", "hi"),
    );
    sup.wait_for_output(c, "said it");
    sup.wait_ok(c);
    assert_eq!(std::fs::read_to_string(dir.join("out")).unwrap(), "hi");
    assert!(sup.stdout(c).contains("said it"));
}

#[test]
fn a_failing_child_fails_the_test_with_its_output() {
    let test = cross_test!(a_failing_child_fails_the_test_with_its_output);
    if role().is_some() {
        eprintln!("about to fail");
        panic!("on purpose");
    }
    let sup = test.supervise(Duration::from_secs(60));
    let c = sup.spawn(&mut test.command("failer"));
    let msg = panic_message(|| sup.wait_ok(c));
    assert!(msg.contains("child failer#0 failed"), "{msg}");
    assert!(msg.contains("about to fail"), "{msg}");
    assert!(msg.contains("on purpose"), "{msg}");
}

#[test]
fn a_wrong_test_name_is_caught() {
    let test = CrossTest::from_path("supervisor::no_such_test");
    let sup = Supervisor::new("wrong name", Duration::from_secs(60));
    let c = sup.spawn(&mut test.command("anything"));
    let msg = panic_message(|| sup.wait_ok(c));
    assert!(msg.contains("ran no test"), "{msg}");
}

#[test]
fn a_killed_child_is_not_a_failure_and_stays_unreaped_until_waited_for() {
    let test = cross_test!(a_killed_child_is_not_a_failure_and_stays_unreaped_until_waited_for);
    if role().is_some() {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let sup = test.supervise(Duration::from_secs(60));
    let sleeper = sup.spawn(&mut test.command("sleeper"));
    let quick = sup.spawn(&mut test.command("quick-sleeper"));
    sup.kill(sleeper);
    sup.kill(quick);
    let status = sup.wait(sleeper);
    assert!(!status.success());
    sup.check("after the kills");
    sup.wait_all_ok();
}

#[test]
fn waits_end_at_the_outer_deadline() {
    let test = cross_test!(waits_end_at_the_outer_deadline);
    if role().is_some() {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let sup = test.supervise(Duration::from_millis(300));
    let c = sup.spawn(&mut test.command("stuck"));
    let start = Instant::now();
    let msg = panic_message(|| sup.wait_ok(c));
    assert!(msg.contains("outer deadline passed"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let msg = panic_message(|| sup.poll_until("nothing", || false));
    assert!(msg.contains("outer deadline passed while nothing"), "{msg}");
}

mod nested {
    use std::time::Duration;

    use culvert_testkit::{cross_test, role, CrossTest};

    #[test]
    fn a_test_in_a_module_is_named_with_it() {
        let test = cross_test!(a_test_in_a_module_is_named_with_it);
        if role().is_some() {
            return;
        }
        assert_eq!(test.name(), "nested::a_test_in_a_module_is_named_with_it");
        let sup = test.supervise(Duration::from_secs(60));
        let c = sup.spawn(&mut test.command("nested"));
        sup.wait_ok(c);
        assert_eq!(
            CrossTest::from_path("krate::m::t").harness_args()[0],
            "m::t"
        );
    }
}
