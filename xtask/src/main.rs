//! # xtask — culvert's test runner
//!
//! `cargo xtask test` runs the whole suite, in order, stopping at the first failure:
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`, then again with
//!    `--all-features` (the `tracing` feature)
//! 3. `cargo doc --workspace --no-deps` with warnings denied (broken intra-doc links
//!    included)
//! 4. `cargo test --workspace --release --all-features` (unit, cross-process, kill and
//!    fuzz-corpus replay tests; release so the multi-million-message tests stay quick)
//! 5. the C binding tests, once `bindings/c/tests` exists
//! 6. the loom models: `RUSTFLAGS="--cfg loom" cargo test -p culvert-loom-tests
//!    --release`, then the channel-protocol models beside their code
//!    (`cargo test -p culvert --lib loom_models`), in their own target directory
//!    (`target/loom`), `LOOM_MAX_PREEMPTIONS=2` unless set
//! 7. `cargo check` of the cargo-fuzz targets (their bodies already ran in step 4)
//! 8. timed fuzz runs (`cargo xtask fuzz-runs`), when `cargo fuzz` is installed:
//!    `cargo fuzz build` into `target/fuzz`, then each target for
//!    [`FUZZ_SECONDS`] seconds on a copy of its corpus in `target/fuzz-runs/<target>/`
//!    (new corpus entries, crash artifacts and the log stay there), one summary line
//!    per target; without `cargo fuzz` the step says the runs were skipped and passes
//! 9. in a git checkout: no ignored file outside `target/` (every step builds under
//!    `target/`: `target/loom`, `target/fuzz`, `target/fuzz-runs`, `target/c-bindings`)
//!
//! `cargo xtask test --skip-loom` / `--skip-fuzz-build` skip steps while iterating
//! (`--skip-fuzz-build` skips steps 7 and 8). The last line is
//! `xtask: N passed, N failed` over the steps.
//!
//! Disk: the steps build into five target directories (about 6 GB from scratch). The
//! suite's cargo runs are not incremental and its release builds carry line tables
//! only, and when less than [`LOW_DISK_GB`] is free after a step, the directories it
//! built that no later step reads are removed, so a small disk needs room for one step
//! at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Below this many GB free after a step, the step's [`Step::scratch`] is removed.
const LOW_DISK_GB: u64 = 10;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

struct Step {
    name: &'static str,
    command: Command,
    /// Paths under `target/` that this step builds and no later step reads.
    scratch: &'static [&'static str],
}

impl Step {
    fn new(name: &'static str, command: Command) -> Self {
        Step {
            name,
            command,
            scratch: &[],
        }
    }
}

/// A cargo command in the workspace root, for the suite: not incremental (the
/// incremental caches would double the disk the suite needs), release builds with line
/// tables only (enough for backtraces), unless the caller's environment says otherwise.
fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args).current_dir(workspace_root());
    suite_env(&mut c);
    c
}

/// The environment of the suite's cargo runs (see [`cargo`]).
fn suite_env(c: &mut Command) {
    for (key, value) in [
        ("CARGO_INCREMENTAL", "0"),
        ("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only"),
    ] {
        if std::env::var_os(key).is_none() {
            c.env(key, value);
        }
    }
}

/// Gigabytes free on the file system holding `path` (`df`), if it can tell.
fn free_gb(path: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["-Pk"])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib / (1024 * 1024))
}

/// Removes `step`'s scratch directories when the disk runs low.
fn free_scratch(step: &Step) {
    let target = workspace_root().join("target");
    let Some(free) = free_gb(&target) else { return };
    if step.scratch.is_empty() || free >= LOW_DISK_GB {
        return;
    }
    for dir in step.scratch {
        let path = target.join(dir);
        if path.exists() {
            eprintln!("xtask: {free} GB free: removing {}", path.display());
            if let Err(e) = std::fs::remove_dir_all(&path) {
                eprintln!("xtask: removing {}: {e}", path.display());
            }
        }
    }
}

fn steps(skip_loom: bool, skip_fuzz_build: bool) -> Vec<Step> {
    let root = workspace_root();
    let clippy = |extra: &[&str]| {
        let mut c = cargo(&["clippy", "--workspace", "--all-targets"]);
        c.args(extra).args(["--", "-D", "warnings"]);
        c
    };
    let mut docs = cargo(&["doc", "--workspace", "--no-deps"]);
    let flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    docs.env("RUSTDOCFLAGS", format!("{flags} -D warnings").trim());
    let tests = cargo(&[
        "test",
        "--workspace",
        "--release",
        "--all-features",
        "--no-fail-fast",
    ]);
    let mut steps = vec![
        Step::new("fmt", cargo(&["fmt", "--all", "--", "--check"])),
        Step::new("clippy", clippy(&[])),
        Step::new("clippy-all-features", clippy(&["--all-features"])),
        Step {
            // The xtask binary itself (`target/debug/xtask`) stays.
            scratch: &[
                "debug/deps",
                "debug/build",
                "debug/incremental",
                "debug/.fingerprint",
                "doc",
            ],
            ..Step::new("docs", docs)
        },
        Step::new("tests", tests),
    ];
    if root.join("bindings/c/tests/run.sh").exists() {
        // With the suite's cargo environment: the script's release build of the C
        // library then reuses what the tests built.
        let mut c = Command::new("bash");
        c.arg(root.join("bindings/c/tests/run.sh"))
            .current_dir(&root);
        suite_env(&mut c);
        steps.push(Step {
            scratch: &["release", "dist", "c-bindings"],
            ..Step::new("c-bindings", c)
        });
    }
    if !skip_loom {
        // The crate of models of the lower crates' public types, then the models that
        // live beside the channel protocols they check (`loom_models` modules).
        let runs: [(&'static str, &[&str]); 2] = [
            ("loom", &["-p", "culvert-loom-tests"]),
            ("loom-channels", &["-p", "culvert", "--lib", "loom_models"]),
        ];
        for (name, args) in runs {
            let mut loom = cargo(&["test", "--release", "--target-dir", "target/loom"]);
            loom.args(args);
            let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
            loom.env("RUSTFLAGS", format!("{flags} --cfg loom").trim());
            if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
                loom.env("LOOM_MAX_PREEMPTIONS", "2");
            }
            steps.push(Step::new(name, loom));
        }
        steps.last_mut().expect("the loom steps").scratch = &["loom"];
    }
    if !skip_fuzz_build && root.join("fuzz/Cargo.toml").exists() {
        let mut fuzz = cargo(&[
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--target-dir",
            "target/fuzz",
        ]);
        fuzz.env("RUSTC_BOOTSTRAP", "1");
        steps.push(Step::new("fuzz-targets-build", fuzz));
        let mut runs = Command::new(std::env::current_exe().expect("the xtask binary"));
        runs.arg("fuzz-runs").current_dir(&root);
        steps.push(Step {
            scratch: &["fuzz"],
            ..Step::new("fuzz-runs", runs)
        });
    }
    if root.join(".git").exists() {
        // Everything the suite builds goes under target/: any other ignored file is
        // one a step left in the source tree.
        let mut clean = Command::new("bash");
        clean
            .args([
                "-c",
                "left=$(git status --porcelain --ignored | grep '^!!' | grep -v '^!! target/$'); \
                 if [ -n \"$left\" ]; then echo \"files left outside target/:\"; \
                 echo \"$left\"; exit 1; fi",
            ])
            .current_dir(&root);
        steps.push(Step::new("tree-clean", clean));
    }
    steps
}

fn run_test(args: &[String]) -> ExitCode {
    let skip_loom = args.iter().any(|a| a == "--skip-loom");
    let skip_fuzz_build = args.iter().any(|a| a == "--skip-fuzz-build");
    let all = steps(skip_loom, skip_fuzz_build);
    let total = all.len();
    let (mut passed, mut failed) = (0, 0);
    let suite_start = Instant::now();
    for mut step in all {
        eprintln!("xtask: == {} ==", step.name);
        let start = Instant::now();
        let ok = match step.command.status() {
            Ok(status) => status.success(),
            Err(e) => {
                eprintln!("xtask: could not start step {}: {e}", step.name);
                false
            }
        };
        let secs = start.elapsed().as_secs_f64();
        if ok {
            passed += 1;
            eprintln!("xtask: {} passed in {secs:.1} s", step.name);
            free_scratch(&step);
        } else {
            failed += 1;
            eprintln!("xtask: {} FAILED after {secs:.1} s", step.name);
            break;
        }
    }
    let skipped = total - passed - failed;
    eprintln!(
        "xtask: whole suite took {:.1} s",
        suite_start.elapsed().as_secs_f64()
    );
    println!("xtask: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Seconds each fuzz target runs in `fuzz-runs`.
const FUZZ_SECONDS: u32 = 20;

/// The `[[bin]]` names of `fuzz/Cargo.toml`, in file order.
fn fuzz_targets(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap_or_default();
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim) {
            if let (true, Some(value)) = (in_bin, value.strip_prefix('=')) {
                targets.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    targets
}

/// Copies the regular, non-hidden files of `from` (if it exists) into `to`.
fn copy_corpus(from: &Path, to: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type()?.is_file() && !hidden {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The value after `key` in a libFuzzer status line (`cov: 830` → `830`).
fn fuzz_stat<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(1)
        .unwrap_or("?")
}

/// Builds the fuzz targets and runs each for `FUZZ_SECONDS` on a copy of its corpus
/// under `target/fuzz-runs/`. Passes (saying so) when `cargo fuzz` is not installed.
fn fuzz_runs() -> ExitCode {
    let root = workspace_root();
    let has_cargo_fuzz = cargo(&["fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_cargo_fuzz {
        println!("xtask: cargo-fuzz is not installed: timed fuzz runs skipped");
        return ExitCode::SUCCESS;
    }
    let targets = fuzz_targets(&root);
    let mut build = cargo(&[
        "fuzz",
        "build",
        "--fuzz-dir",
        "fuzz",
        "--target-dir",
        "target/fuzz",
    ]);
    build.env("RUSTC_BOOTSTRAP", "1");
    if !build.status().is_ok_and(|s| s.success()) {
        eprintln!("xtask: cargo fuzz build failed");
        return ExitCode::FAILURE;
    }
    let host = std::env::consts::ARCH.to_string() + "-unknown-linux-gnu";
    let bin_dir = root.join("target/fuzz").join(host).join("release");
    let mut failed = Vec::new();
    for target in &targets {
        let dir = root.join("target/fuzz-runs").join(target);
        let (corpus, artifacts) = (dir.join("corpus"), dir.join("artifacts"));
        let _ = std::fs::remove_dir_all(&dir);
        let prepared = std::fs::create_dir_all(&corpus)
            .and_then(|()| std::fs::create_dir_all(&artifacts))
            .and_then(|()| copy_corpus(&root.join("fuzz/corpus").join(target), &corpus));
        let seeds = match prepared {
            Ok(n) => n,
            Err(e) => {
                eprintln!("xtask: fuzz {target}: preparing {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        };
        let log_path = dir.join("log.txt");
        let log = std::fs::File::create(&log_path).expect("fuzz log file");
        let start = Instant::now();
        let status = Command::new(bin_dir.join(target))
            .arg(format!("-max_total_time={FUZZ_SECONDS}"))
            .args(["-timeout=2", "-rss_limit_mb=2048", "-print_final_stats=1"])
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .current_dir(&dir)
            .stdout(log.try_clone().expect("fuzz log file"))
            .stderr(log)
            .status();
        let secs = start.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let last = text
            .lines()
            .rfind(|l| l.starts_with('#') && l.contains("cov:"))
            .unwrap_or("");
        let runs = text
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?", str::trim);
        let entries = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        let ok = status.as_ref().is_ok_and(|s| s.success());
        println!(
            "xtask: fuzz {target}: {} in {secs:.0} s: {runs} runs, cov {}, ft {}, corpus {seeds} -> {entries}",
            if ok { "ok" } else { "FAILED" },
            fuzz_stat(last, "cov:"),
            fuzz_stat(last, "ft:"),
        );
        if !ok {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                eprintln!("  {line}");
            }
            eprintln!(
                "xtask: fuzz {target}: log {}, artifacts in {}",
                log_path.display(),
                artifacts.display()
            );
            failed.push(target.as_str());
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask: fuzz targets failed: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => run_test(&args[1..]),
        Some("fuzz-runs") => fuzz_runs(),
        _ => {
            eprintln!(
                "usage: cargo xtask test [--skip-loom] [--skip-fuzz-build] | cargo xtask fuzz-runs"
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_disk_is_read_from_df() {
        let free = free_gb(&workspace_root()).expect("df reports the workspace's file system");
        assert!(free < 1 << 30, "{free} GB free is not a reading");
    }

    /// A step's scratch directories are ones no later step builds in (removing them
    /// would make that step rebuild from scratch).
    #[test]
    fn scratch_is_only_what_no_later_step_reads() {
        let all = steps(false, false);
        for (i, step) in all.iter().enumerate() {
            for dir in step.scratch {
                let top = dir.split('/').next().unwrap_or(dir);
                for later in &all[i + 1..] {
                    let args: Vec<String> = later
                        .command
                        .get_args()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect();
                    let has = |flag: &str| args.iter().any(|a| a == flag);
                    let builds_there = match top {
                        "debug" | "doc" => {
                            args.first().is_some_and(|a| a == "clippy" || a == "doc")
                        }
                        "release" | "dist" | "c-bindings" => {
                            has("--release") && !has("--target-dir")
                        }
                        other => args.iter().any(|a| a.ends_with(&format!("target/{other}"))),
                    };
                    assert!(
                        !builds_there,
                        "{} removes {dir}, which {} builds in",
                        step.name, later.name
                    );
                }
            }
        }
    }
}
