//! Pipe helpers of the cross-process tests: a child spawned with one end of a fresh
//! anonymous pipe, under a supervisor of its own.

use std::time::Duration;

use culvert::pipe::{self, PipeCommandExt, PipeEnd, PipeMode, PipeOptions};
use culvert_testkit::{ChildId, CrossTest, Supervisor};

/// Starts `test`'s supervisor with an outer deadline of `limit`, then spawns `test` as
/// a child playing `role`, handing it the second end of a fresh pipe (the child attaches
/// it with `PipeEnd::from_inherited`). Returns the first end, the peer already known.
pub fn spawn_with_pipe(
    test: CrossTest,
    limit: Duration,
    role: &str,
    mode: PipeMode,
    opts: &PipeOptions,
) -> (Supervisor, PipeEnd, ChildId) {
    let sup = test.supervise(limit);
    let (mine, theirs) = pipe::anonymous_pending(mode, opts).unwrap();
    let mut cmd = test.command(role);
    cmd.inherit_pipe_end(&theirs).unwrap();
    let child = sup.spawn(&mut cmd);
    drop(cmd);
    mine.expect_peer(sup.pid(child)).unwrap();
    drop(theirs);
    (sup, mine, child)
}
