//! A section whose ring control block is hostile (an MPMC participant-table offset near
//! `u64::MAX`) next to good ones: `ls`, `inspect` and `gc` (the debug binary, where an
//! unchecked overflow panics) report that one section as corrupted and go on with the
//! rest.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Output;

use culvert::pipe::{PipeOptions, PipeServer};
use culvert_ring::mpmc;
use culvert_section::layout::{SectionHeader, HEADER_SIZE};
use culvert_section::{InitState, Section, SectionOptions};
use culvert_testkit::TempRoot;

const BIN: &str = env!("CARGO_BIN_EXE_culvert");

fn run(root: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .env("CULVERT_ROOT", root)
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run culvert")
}

/// Stdout of a run that must have exited 0 without a panic.
#[track_caller]
fn ok_stdout(o: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !stderr.contains("panicked"),
        "{what}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    stdout
}

/// A ready section holding an MPMC ring, its `participants_offset` (byte 40 of the
/// control block) patched in the file if asked. Its creator is this process (alive).
fn mpmc_section(opts: &SectionOptions, name: &str, participants_offset: Option<u64>) -> Section {
    let config = mpmc::Config::new(8, 64).with_max_endpoints(4);
    let len = mpmc::MessageRing::required_size(&config).unwrap();
    let mut s = Section::create(name, 64 * 1024, opts).unwrap();
    let ring = s.add_object("requests", 7, len as u64, 4096).unwrap();
    mpmc::MessageRing::init(&ring, &config).unwrap();
    s.mark_ready().unwrap();
    if let Some(value) = participants_offset {
        let offset = s.objects()[0].offset;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(opts.path_of(name).unwrap())
            .unwrap();
        file.write_all_at(&value.to_ne_bytes(), offset + 40)
            .unwrap();
    }
    s
}

/// A section whose creator never lived and which never became ready (stale).
fn stale_section(opts: &SectionOptions, name: &str) {
    drop(Section::create(name, 4096, opts).unwrap());
    let path = opts.path_of(name).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut h = SectionHeader::read(&bytes).unwrap();
    h.state = InitState::Initializing.as_u32();
    h.creator_pid = 0;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&h.bytes()[..HEADER_SIZE], 0).unwrap();
}

#[test]
fn a_hostile_ring_offset_is_reported_as_corrupted_and_the_rest_goes_on() {
    let dir = TempRoot::new("cli");
    let opts = SectionOptions::default().root(dir.path());
    let _bad = mpmc_section(&opts, "bad", Some(u64::MAX - 3));
    let _also_bad = mpmc_section(&opts, "bad2", Some(u64::MAX / 2));
    let _good_ring = mpmc_section(&opts, "good-ring", None);
    let _pipe = PipeServer::bind("good-pipe", &PipeOptions::default().root(dir.path())).unwrap();
    stale_section(&opts, "stale");

    let ls = ok_stdout(&run(dir.path(), &["ls"]), "ls");
    let line = |name: &str| {
        ls.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{ls}"))
            .to_string()
    };
    for bad in ["bad", "bad2"] {
        let l = line(bad);
        assert!(l.contains("corrupted") && l.contains("participant"), "{l}");
    }
    for good in ["good-ring", "good-pipe"] {
        let l = line(good);
        assert!(l.ends_with("ready"), "{l}");
    }
    assert!(line("stale").contains("stale"), "{ls}");

    // inspect prints the report and exits 1: it found a problem.
    let o = run(dir.path(), &["inspect", "bad"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "inspect bad: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("'bad' is corrupted"), "{stderr}");
    assert!(text.contains("state     corrupted"), "{text}");
    let o = run(dir.path(), &["inspect", "bad", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "corrupted");
    assert!(
        v["problem"].as_str().unwrap().contains("participant table"),
        "{v}"
    );
    assert!(text.contains("CORRUPTED: participant table"), "{text}");
    let text = ok_stdout(&run(dir.path(), &["inspect", "good-ring"]), "inspect good");
    assert!(text.contains("state     ready"), "{text}");
    assert!(text.contains("mpmc message ring"), "{text}");

    let gc = ok_stdout(&run(dir.path(), &["gc", "--dry-run"]), "gc --dry-run");
    assert!(gc.contains("would remove stale"), "{gc}");
    let gc = ok_stdout(&run(dir.path(), &["gc"]), "gc");
    assert!(gc.contains("kept bad ("), "{gc}");
    assert!(gc.contains("kept bad2 ("), "{gc}");
    assert!(gc.contains("removed stale"), "{gc}");
    for kept in ["bad", "bad2", "good-ring", "good-pipe"] {
        assert!(
            dir.path().join(format!("culvert.{kept}")).exists(),
            "{kept} removed:\n{gc}"
        );
    }
    assert!(!dir.path().join("culvert.stale").exists());
}
