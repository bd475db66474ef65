//! End-to-end tests of `culvert bench`: every case and transport in the JSON output,
//! the early check of the JSON path, `--goals`, and the `--load` burners.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::*;
use culvert_testkit::TempRoot;

const CASES: [(&str, &[&str]); 14] = [
    (
        "pingpong_8B_spin",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "pingpong_8B_block",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "pingpong_8B_sleep",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "pingpong_8B_waitset64",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "pingpong_8B_async_ct",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "pingpong_8B_async_mt",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    ("stream_64B_msgs", &["msgs_per_s"]),
    ("stream_64B_batch", &["msgs_per_s"]),
    ("stream_4KiB", &["mb_per_s"]),
    ("stream_64KiB", &["mb_per_s"]),
    ("call_64B", &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"]),
    (
        "call_64B_async_ct",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    (
        "call_64B_async_mt",
        &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"],
    ),
    ("call_1MiB", &["rtt_ns_p50", "rtt_ns_p99", "rtt_ns_p999"]),
];
const TRANSPORTS: [&str; 4] = ["culvert", "os-pipe", "uds", "shm-floor"];

/// Whether `case` runs over `transport`: the 64-connection case needs many connections
/// to one peer, and the async cases compare culvert with tokio's `UnixStream` (both:
/// culvert, uds); the batch stream compares culvert's batch calls with the floor; every
/// other case runs everywhere.
fn runs_on(case: &str, transport: &str) -> bool {
    if case == "stream_64B_batch" {
        return matches!(transport, "culvert" | "shm-floor");
    }
    let culvert_and_uds_only = case == "pingpong_8B_waitset64" || case.contains("_async_");
    !culvert_and_uds_only || matches!(transport, "culvert" | "uds")
}

/// `bench --json` (with the hidden `--smoke`: a few ms per run, so the whole bench
/// takes a couple of seconds) gives every case × transport × metric, all positive, for
/// the transports a case runs on, and nothing for the others.
#[test]
fn bench_json_has_every_case_and_transport() {
    let dir = TempRoot::new("cli");
    let json = dir.path().join("out.json");
    let out = run(
        dir.path(),
        &[
            "bench",
            "--quick",
            "--smoke",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout_of(&out);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc.as_array().expect("a JSON array");
    for row in rows {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "unexpected fields in {row}");
    }
    for (case, metrics) in CASES {
        assert!(table.contains(case), "{case} not in the table:\n{table}");
        for transport in TRANSPORTS {
            if !runs_on(case, transport) {
                assert!(
                    !rows
                        .iter()
                        .any(|r| r["case"] == *case && r["transport"] == *transport),
                    "{case}/{transport} does not run, yet has figures"
                );
                continue;
            }
            for metric in metrics {
                let found = rows.iter().find(|r| {
                    r["case"] == *case && r["transport"] == *transport && r["metric"] == *metric
                });
                let value = found
                    .and_then(|r| r["value"].as_f64())
                    .unwrap_or_else(|| panic!("missing {case}/{transport}/{metric}"));
                assert!(value > 0.0, "{case}/{transport}/{metric} = {value}");
            }
        }
    }
    // Nothing left behind in the namespace.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn bench_checks_its_json_path_first_and_prints_goals_on_request() {
    let dir = TempRoot::new("cli");
    let bad = dir.path().join("no-such-dir").join("out.json");
    let started = Instant::now();
    let out = run(
        dir.path(),
        &["bench", "--smoke", "--json", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
    assert!(stdout_of(&out).is_empty(), "the bench ran before failing");
    assert!(started.elapsed() < Duration::from_secs(5));

    let args = ["bench", "--smoke", "--case", "stream_4KiB"];
    let out = run(dir.path(), &args);
    assert!(out.status.success());
    assert!(!stdout_of(&out).contains("goals"), "{}", stdout_of(&out));
    let out = run(dir.path(), &[&args[..], &["--goals"]].concat());
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("goals (same-run ratios)"));
}

/// Pids of the running processes whose parent is `parent` and whose command line
/// contains `needle`.
fn children_running(parent: u32, needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn bench_load_runs_burners_for_the_run_and_reaps_them() {
    let dir = TempRoot::new("cli");
    let child = culvert(dir.path())
        .args([
            "bench",
            "--quick",
            "--scale",
            "0.05",
            "--load",
            "2",
            "--case",
            "stream_4KiB",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bench = child.id();
    let mut burners = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(20);
    while burners.len() < 2 && Instant::now() < give_up {
        burners = children_running(bench, "__bench-burn");
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(burners.len(), 2, "two burners ran while the bench did");
    assert!(
        stdout_of(&out).contains("under --load 2"),
        "{}",
        stdout_of(&out)
    );
    for pid in burners {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "burner {pid} outlived the bench"
        );
    }
}
