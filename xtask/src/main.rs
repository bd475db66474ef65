//! # xtask — culvert's test runner
//!
//! `cargo xtask test` runs the whole suite, in order, stopping at the first failure:
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`, then again with
//!    `--all-features` (the `tracing` feature)
//! 3. `cargo test --workspace --release --all-features` (unit, cross-process, kill and
//!    fuzz-corpus replay tests; release so the multi-million-message tests stay quick)
//! 4. `cargo doc --workspace --no-deps` with warnings denied (broken intra-doc links
//!    included)
//! 5. the loom models: `RUSTFLAGS="--cfg loom" cargo test -p culvert-loom-tests
//!    --release` in their own target directory (`target/loom`), `LOOM_MAX_PREEMPTIONS=2`
//!    unless set
//! 6. `cargo check` of the cargo-fuzz targets (their bodies already ran in step 3)
//! 7. the C binding tests, once `bindings/c/tests` exists
//! 8. in a git checkout: no ignored file outside `target/` (every step builds under
//!    `target/`: `target/loom`, `target/fuzz`, `target/c-bindings`)
//!
//! `cargo xtask test --skip-loom` / `--skip-fuzz-build` skip steps while iterating.
//! The last line is `xtask: N passed, N failed` over the steps.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

struct Step {
    name: &'static str,
    command: Command,
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args).current_dir(workspace_root());
    c
}

fn steps(skip_loom: bool, skip_fuzz_build: bool) -> Vec<Step> {
    let root = workspace_root();
    let mut steps = vec![
        Step {
            name: "fmt",
            command: cargo(&["fmt", "--all", "--", "--check"]),
        },
        Step {
            name: "clippy",
            command: cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            name: "clippy-all-features",
            command: cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            name: "tests",
            command: cargo(&[
                "test",
                "--workspace",
                "--release",
                "--all-features",
                "--no-fail-fast",
            ]),
        },
    ];
    let mut docs = cargo(&["doc", "--workspace", "--no-deps"]);
    let flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    docs.env("RUSTDOCFLAGS", format!("{flags} -D warnings").trim());
    steps.push(Step {
        name: "docs",
        command: docs,
    });
    if !skip_loom {
        let mut loom = cargo(&[
            "test",
            "-p",
            "culvert-loom-tests",
            "--release",
            "--target-dir",
            "target/loom",
        ]);
        let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        loom.env("RUSTFLAGS", format!("{flags} --cfg loom").trim());
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            loom.env("LOOM_MAX_PREEMPTIONS", "2");
        }
        steps.push(Step {
            name: "loom",
            command: loom,
        });
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
        steps.push(Step {
            name: "fuzz-targets-build",
            command: fuzz,
        });
    }
    if root.join("bindings/c/tests/run.sh").exists() {
        let mut c = Command::new("bash");
        c.arg(root.join("bindings/c/tests/run.sh"))
            .current_dir(&root);
        steps.push(Step {
            name: "c-bindings",
            command: c,
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
        steps.push(Step {
            name: "tree-clean",
            command: clean,
        });
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => run_test(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [--skip-loom] [--skip-fuzz-build]");
            ExitCode::from(2)
        }
    }
}
