//! An anonymous byte pipe shared with a child process, carrying bytes both ways.
//!
//! The parent makes the pipe with `pipe::anonymous_pending`, hands the pending end to
//! a child with `PipeCommandExt::inherit_pipe_end`, and the child (this same program,
//! re-executed as `anonymous_pipe_child child`) attaches it with
//! `PipeEnd::from_inherited()`. The parent sends lines; the child answers each with a
//! line of its own; the parent reads to end of stream once the child exits. Run it
//! with:
//!
//! ```sh
//! cargo run -p culvert --example anonymous_pipe_child
//! ```
//!
//! An anonymous pipe is a sealed memfd with no name, so it needs no namespace
//! directory (`CULVERT_ROOT` plays no part here).

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Command;
use std::time::Duration;

use culvert::pipe::{self, PipeCommandExt, PipeEnd, PipeMode, PipeOptions};

const LINES: [&str; 3] = ["one", "two", "three"];
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().nth(1).as_deref() == Some("child") {
        child()
    } else {
        parent()
    }
}

fn parent() -> Result<(), Box<dyn Error>> {
    let (mut mine, theirs) = pipe::anonymous_pending(PipeMode::Byte, &PipeOptions::default())?;
    mine.set_read_timeout(Some(TIMEOUT));
    mine.set_write_timeout(Some(TIMEOUT));

    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("child");
    cmd.inherit_pipe_end(&theirs)?;
    let mut child = cmd.spawn()?;
    drop(cmd); // closes our copy of the descriptor
    mine.expect_peer(child.id())?; // notice if the child dies before attaching
    drop(theirs);

    for line in LINES {
        mine.write_all(format!("{line}\n").as_bytes())?;
    }
    mine.write_all(b"bye\n")?;

    // The child answers every line, then exits: read its bytes until end of stream.
    let mut answers = String::new();
    mine.read_to_string(&mut answers)?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("child failed: {status}").into());
    }
    let got: Vec<&str> = answers.lines().collect();
    let want: Vec<String> = LINES.iter().map(|l| format!("child got {l:?}")).collect();
    if got != want {
        return Err(format!("unexpected answers {got:?}").into());
    }
    for line in got {
        println!("parent: {line}");
    }
    println!("anonymous_pipe_child: ok");
    Ok(())
}

fn child() -> Result<(), Box<dyn Error>> {
    let mut end = PipeEnd::from_inherited()?;
    end.set_read_timeout(Some(TIMEOUT));
    end.set_write_timeout(Some(TIMEOUT));
    let mut reader = BufReader::new(end);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err("parent closed the pipe before saying bye".into());
        }
        let text = line.trim_end();
        if text == "bye" {
            return Ok(()); // dropping the end gives the parent end of stream
        }
        let answer = format!("child got {text:?}\n");
        reader.get_mut().write_all(answer.as_bytes())?;
    }
}
