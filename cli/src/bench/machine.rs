//! The machine the bench runs on: its description line, CPU pinning, and how much of
//! its CPU time other processes used during a run.

use std::io;

/// Pins the calling thread (the whole process, single-threaded here) to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}

/// The machine line: CPUs and model.
pub fn machine_line() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!("{nproc} CPUs (nproc), {model}, Linux {kernel}, load average {load}")
}

/// CPU time (clock ticks) used by the whole machine, and by this process with its
/// waited-for children, so the run can tell how much *other* load it shared the
/// machine with.
#[derive(Debug, Clone, Copy)]
pub struct CpuTicks {
    busy: u64,
    total: u64,
    own: u64,
}

pub fn cpu_ticks() -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    let total = busy + f.get(3)? + f.get(4)?;
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = &me[me.rfind(')')? + 1..];
    // Fields 14..=17 (utime stime cutime cstime) are the 12th..15th after the comm.
    let own: u64 = after_comm
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    Some(CpuTicks { busy, total, own })
}

/// Share of the machine's CPU time used by other processes between `a` and `b`.
pub fn other_load(a: Option<CpuTicks>, b: Option<CpuTicks>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let total = b.total.checked_sub(a.total)?;
    let busy = b.busy.checked_sub(a.busy)?;
    let own = b.own.checked_sub(a.own)?;
    (total > 0).then(|| busy.saturating_sub(own) as f64 / total as f64)
}
