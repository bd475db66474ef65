//! The project's performance goals, judged on one run's figures (`culvert bench
//! --goals`): each goal is a ratio of two figures of the same run — culvert against
//! another transport on the same case, or one culvert case against another — and a
//! bound. A goal whose figures the run did not produce (a case or transport left out)
//! is not shown.

use std::fmt::Write as _;

use super::report::{case_width, find};
use super::spec::{Case, Metric, Transport};
use super::Figure;

use Case::*;
use Metric::{MbPerS, MsgsPerS, RttP50, RttP99};
use Transport::{Culvert, OsPipe, ShmFloor, Uds};

/// Where a goal's ratio must fall.
#[derive(Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

/// One goal: `num / den` within `bound`.
struct Goal {
    case: Case,
    what: &'static str,
    num: (Case, Transport, Metric),
    den: (Case, Transport, Metric),
    bound: Bound,
}

/// A goal comparing culvert with `other` on `case`, by `metric`.
const fn against(
    case: Case,
    what: &'static str,
    metric: Metric,
    other: Transport,
    bound: Bound,
) -> Goal {
    Goal {
        case,
        what,
        num: (case, Culvert, metric),
        den: (case, other, metric),
        bound,
    }
}

/// A goal "culvert is `n` times better than `other`" on a latency `metric`.
const fn better(case: Case, what: &'static str, metric: Metric, other: Transport, n: f64) -> Goal {
    Goal {
        case,
        what,
        num: (case, other, metric),
        den: (case, Culvert, metric),
        bound: Bound::AtLeast(n),
    }
}

/// A goal comparing two culvert cases by `metric`.
const fn across(case: Case, what: &'static str, metric: Metric, base: Case, bound: Bound) -> Goal {
    Goal {
        case,
        what,
        num: (case, Culvert, metric),
        den: (base, Culvert, metric),
        bound,
    }
}

/// Every goal, in the order printed.
const GOALS: [Goal; 24] = [
    // Against the physical floor, unloaded.
    against(
        Pingpong8BSpin,
        "p50 <= 1.3x shm-floor",
        RttP50,
        ShmFloor,
        Bound::AtMost(1.3),
    ),
    against(
        Pingpong8BSleep,
        "p50 <= 1.1x shm-floor (futex)",
        RttP50,
        ShmFloor,
        Bound::AtMost(1.1),
    ),
    against(
        Pingpong8BSleep,
        "p50 <= os-pipe",
        RttP50,
        OsPipe,
        Bound::AtMost(1.0),
    ),
    against(
        Stream64BMsgs,
        "msgs/s >= 1/3 shm-floor",
        MsgsPerS,
        ShmFloor,
        Bound::AtLeast(1.0 / 3.0),
    ),
    against(
        Stream64BBatch,
        "msgs/s >= 2/3 shm-floor",
        MsgsPerS,
        ShmFloor,
        Bound::AtLeast(2.0 / 3.0),
    ),
    against(
        Stream4KiB,
        "MB/s >= 0.9x shm-floor",
        MbPerS,
        ShmFloor,
        Bound::AtLeast(0.9),
    ),
    against(
        Stream64KiB,
        "MB/s >= 1.0x shm-floor",
        MbPerS,
        ShmFloor,
        Bound::AtLeast(1.0),
    ),
    against(
        Call1MiB,
        "p50 <= 1.1x shm-floor",
        RttP50,
        ShmFloor,
        Bound::AtMost(1.1),
    ),
    // A call costs about a round trip.
    across(
        Call64B,
        "p50 <= 1.5x pingpong_8B_spin p50",
        RttP50,
        Pingpong8BSpin,
        Bound::AtMost(1.5),
    ),
    across(
        Call64B,
        "p99 <= 2x pingpong_8B_spin p99",
        RttP99,
        Pingpong8BSpin,
        Bound::AtMost(2.0),
    ),
    // Blocking waits against the OS (meant to hold under `--load 2` too).
    against(
        Pingpong8BBlock,
        "p50 <= os-pipe",
        RttP50,
        OsPipe,
        Bound::AtMost(1.0),
    ),
    against(
        Pingpong8BBlock,
        "p99 <= os-pipe",
        RttP99,
        OsPipe,
        Bound::AtMost(1.0),
    ),
    against(
        Call64B,
        "p50 <= os-pipe",
        RttP50,
        OsPipe,
        Bound::AtMost(1.0),
    ),
    against(
        Call64B,
        "p99 <= os-pipe",
        RttP99,
        OsPipe,
        Bound::AtMost(1.0),
    ),
    // Many endpoints, one thread.
    across(
        Pingpong8BWaitset64,
        "p50 <= 2x pingpong_8B_block p50",
        RttP50,
        Pingpong8BBlock,
        Bound::AtMost(2.0),
    ),
    // Async against tokio's own UnixStream, and against the blocking round trip.
    against(
        Pingpong8BAsyncCt,
        "p50 <= 0.5x uds (tokio UnixStream)",
        RttP50,
        Uds,
        Bound::AtMost(0.5),
    ),
    against(
        Pingpong8BAsyncMt,
        "p50 <= 0.5x uds (tokio UnixStream)",
        RttP50,
        Uds,
        Bound::AtMost(0.5),
    ),
    against(
        Call64BAsyncCt,
        "p50 <= 0.5x uds (tokio UnixStream)",
        RttP50,
        Uds,
        Bound::AtMost(0.5),
    ),
    against(
        Call64BAsyncMt,
        "p50 <= 0.5x uds (tokio UnixStream)",
        RttP50,
        Uds,
        Bound::AtMost(0.5),
    ),
    across(
        Pingpong8BAsyncCt,
        "p50 <= 1.2x pingpong_8B_block p50",
        RttP50,
        Pingpong8BBlock,
        Bound::AtMost(1.2),
    ),
    // Against the OS, by a margin.
    better(
        Pingpong8BSpin,
        "p50 >= 50x better than os-pipe",
        RttP50,
        OsPipe,
        50.0,
    ),
    better(
        Call64B,
        "p50 >= 20x better than os-pipe",
        RttP50,
        OsPipe,
        20.0,
    ),
    better(
        Call1MiB,
        "p50 >= 5x better than os-pipe",
        RttP50,
        OsPipe,
        5.0,
    ),
    against(
        Stream64BMsgs,
        "msgs/s >= 20x os-pipe",
        MsgsPerS,
        OsPipe,
        Bound::AtLeast(20.0),
    ),
];

/// The goals judged on `figures`: one line each, with the ratio and `met` / `MISSED`.
pub(super) fn judge(figures: &[Figure]) -> Vec<String> {
    let w = case_width();
    let what_width = GOALS.iter().map(|g| g.what.len()).max().unwrap_or(0);
    GOALS
        .iter()
        .filter_map(|g| {
            let get = |(c, t, m): (Case, Transport, Metric)| find(figures, c, t, m.name());
            let ratio = get(g.num)? / get(g.den)?;
            let met = match g.bound {
                Bound::AtMost(b) => ratio <= b,
                Bound::AtLeast(b) => ratio >= b,
            };
            Some(format!(
                "{:<w$} {:<what_width$} {:>8.2}x  {}",
                g.case.name(),
                g.what,
                ratio,
                if met { "met" } else { "MISSED" }
            ))
        })
        .collect()
}

/// The goals, judged on `figures`, as printed by `--goals`.
pub(super) fn render(figures: &[Figure]) -> String {
    let mut s = String::new();
    let lines = judge(figures);
    if !lines.is_empty() {
        let _ = writeln!(s, "goals (same-run ratios):");
        for l in lines {
            let _ = writeln!(s, "  {l}");
        }
    }
    s
}
