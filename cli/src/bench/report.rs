//! The bench's output: progress lines on stderr while it runs, the table and its notes,
//! the ratio to `os-pipe` of every row, and the JSON document of every figure. The goals
//! (`--goals`) are judged in [`super::goals`].

use std::fmt::Write as _;

use super::*;

pub(super) fn fmt_value(m: Metric, v: f64) -> String {
    match m {
        Metric::MsgsPerS => format!("{:.2}M", v / 1e6),
        Metric::MbPerS => format!("{v:.0}"),
        _ => format!("{v:.0}"),
    }
}

pub(super) fn find(figures: &[Figure], case: Case, t: Transport, metric: &str) -> Option<f64> {
    figures
        .iter()
        .find(|f| f.case == case && f.transport == t && f.metric == metric)
        .map(|f| f.value)
}

/// Width of the case column: the longest case name.
pub(super) fn case_width() -> usize {
    Case::ALL.iter().map(|c| c.name().len()).max().unwrap_or(0)
}

/// The headline metric of a case (what the ratio is computed on).
pub(super) fn headline(case: Case) -> Metric {
    case.metrics()[0]
}

/// Adds the "times better than os-pipe" figure of every row.
pub(super) fn add_ratios(figures: &mut Vec<Figure>, cases: &[Case]) {
    let mut extra = Vec::new();
    for &case in cases {
        let m = headline(case);
        let Some(base) = find(figures, case, Transport::OsPipe, m.name()) else {
            continue;
        };
        for t in Transport::ALL.into_iter().chain([Transport::Ring]) {
            if let Some(v) = find(figures, case, t, m.name()) {
                let ratio = if m.higher_is_better() {
                    v / base
                } else {
                    base / v
                };
                if ratio.is_finite() {
                    extra.push(Figure {
                        case,
                        transport: t,
                        metric: RATIO_METRIC,
                        value: ratio,
                    });
                }
            }
        }
    }
    figures.extend(extra);
}

/// The table and the notes.
pub(super) fn render(
    figures: &[Figure],
    cases: &[Case],
    transports: &[Transport],
    machine: &str,
    mode: &str,
    pinned: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "culvert bench: {machine}; {mode}; {}",
        if pinned {
            "pinned to CPUs 0 and 1"
        } else {
            "unpinned"
        }
    );
    let w = case_width();
    let _ = writeln!(
        s,
        "{:<w$} {:<12} {:>9} {:>9} {:>9} {:>14} {:>11}",
        "case", "transport", "p50 ns", "p99 ns", "p99.9 ns", "throughput", "vs os-pipe"
    );
    for &case in cases {
        for &t in transports {
            let get = |m: Metric| find(figures, case, t, m.name());
            let lat = |m: Metric| get(m).map_or("-".to_string(), |v| format!("{v:.0}"));
            let tput = match case.metrics()[0] {
                Metric::MsgsPerS => {
                    get(Metric::MsgsPerS).map_or("-".into(), |v| format!("{:.2} Mmsg/s", v / 1e6))
                }
                Metric::MbPerS => {
                    get(Metric::MbPerS).map_or("-".into(), |v| format!("{v:.0} MB/s"))
                }
                _ => "-".into(),
            };
            let ratio = find(figures, case, t, RATIO_METRIC)
                .map_or("-".to_string(), |r| format!("{r:.2}x"));
            let name = t.name();
            let _ = writeln!(
                s,
                "{:<w$} {:<12} {:>9} {:>9} {:>9} {:>14} {:>11}",
                case.name(),
                name,
                lat(Metric::RttP50),
                lat(Metric::RttP99),
                lat(Metric::RttP999),
                tput,
                ratio
            );
        }
    }
    if transports.contains(&Transport::Culvert) {
        let _ = writeln!(s, "culvert API per case:");
        for &case in cases {
            let _ = writeln!(s, "  {:<w$} {}", case.name(), culvert::api_for(case));
        }
    }
    s
}

/// The JSON document: every figure of the table and nothing else.
pub(super) fn to_json(figures: &[Figure]) -> String {
    let mut s = String::from("[\n");
    for (i, f) in figures.iter().enumerate() {
        let v = if f.value.is_finite() { f.value } else { 0.0 };
        let _ = write!(
            s,
            "  {{\"case\": \"{}\", \"transport\": \"{}\", \"metric\": \"{}\", \"value\": {}}}",
            f.case.name(),
            f.transport.name(),
            f.metric,
            // Rounded to 0.01: plenty for ns and MB/s, and always a JSON number.
            (v * 100.0).round() / 100.0
        );
        s.push_str(if i + 1 < figures.len() { ",\n" } else { "\n" });
    }
    s.push_str("]\n");
    s
}

/// The progress display on stderr.
pub(super) struct Progress {
    total: usize,
    index: std::cell::Cell<usize>,
    tty: bool,
    label: std::cell::RefCell<String>,
}

impl Progress {
    pub(super) fn new(total: usize) -> Progress {
        Progress {
            total,
            index: std::cell::Cell::new(0),
            tty: io::stderr().is_terminal(),
            label: std::cell::RefCell::new(String::new()),
        }
    }

    pub(super) fn start(&self, case: Case, transport: Transport) {
        self.index.set(self.index.get() + 1);
        let label = format!(
            "[{:>2}/{}] {:<w$} {:<9}",
            self.index.get(),
            self.total,
            case.name(),
            transport.name(),
            w = case_width()
        );
        if self.tty {
            eprint!("\r\x1b[2K{label} running…");
            let _ = io::stderr().flush();
        }
        *self.label.borrow_mut() = label;
    }

    pub(super) fn done(&self, raw: &Raw) {
        let s = match raw {
            Raw::Samples(s) => format!(" p50={:.0} ns", s.quantile(0.5)),
            Raw::Rate(m, v) => format!(" {}={}", m.name(), fmt_value(*m, *v)),
        };
        if self.tty {
            eprint!("\r\x1b[2K{}{s}", self.label.borrow());
            let _ = io::stderr().flush();
        } else {
            eprintln!("{}{s}", self.label.borrow());
        }
    }

    pub(super) fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    pub(super) fn finish(&self, took: Duration) {
        self.clear();
        eprintln!(
            "culvert bench: {} runs in {:.1} s",
            self.total,
            took.as_secs_f64()
        );
    }
}
