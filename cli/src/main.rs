//! # culvert — the command-line tool
//!
//! Will own `culvert bench` (culvert vs OS pipe and Unix sockets, cross-process) and the
//! operator tools `ls`, `inspect`, `gc` — *not built yet (issue 7)*.

fn main() {
    eprintln!("culvert: no command is implemented yet (see issue 7)");
    std::process::exit(2);
}
