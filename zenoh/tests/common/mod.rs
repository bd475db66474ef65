//! Simulated hosts for the cross-host tests: one namespace root (a [`TempRoot`]) and
//! one in-process bridge per host, all on 127.0.0.1 with explicit endpoints and a
//! domain of the test's own, so tests run in parallel without seeing each other.
//!
//! Children playing a role (`culvert_testkit`'s harness) report their progress with
//! [`say`]; the parent reads those lines, in order, with [`Said`].

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use culvert_testkit::{wait_until, ChildId, Supervisor, TempRoot};
use culvert_zenoh::{Bridge, BridgeConfig};

/// How long the parent waits for a child's next [`say`] line.
pub const SAY_WAIT: Duration = Duration::from_secs(20);
/// What starts a [`say`] line.
const SAY_PREFIX: &str = "CZ-";

/// Writes on `end` until one fails with `Closed` (the far end went away, as a close, not
/// a death), within 5 s; any other error fails the test.
pub fn writes_end_with_closed(end: &mut culvert::pipe::PipeEnd) {
    wait_until(
        "a write to fail with Closed",
        Duration::from_secs(5),
        || match end.write_message(b"x") {
            Err(culvert::Error::Closed) => true,
            Ok(_) => false,
            Err(e) => panic!("write after the far end closed: {e:?}"),
        },
    );
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A domain name unique to this process and call.
pub fn domain(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

pub struct Hosts {
    pub roots: Vec<TempRoot>,
    pub ports: Vec<u16>,
    pub bridges: Vec<Option<Bridge>>,
    pub domain: String,
}

pub const NAMES: [&str; 3] = ["hosta", "hostb", "hostc"];

impl Hosts {
    /// `n` hosts; host `i` listens on its own port and connects to every earlier one;
    /// every host exports `exports`.
    pub fn start(tag: &str, n: usize, exports: &[&str]) -> Hosts {
        let domain = domain(tag);
        let roots: Vec<_> = (0..n)
            .map(|i| TempRoot::new(&format!("{tag}-{}", NAMES[i])))
            .collect();
        let mut ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut bridges = Vec::new();
        for i in 0..n {
            // A port found free may be taken again before the bridge listens on it
            // (tests run in parallel): then try another.
            let mut attempt = 0;
            let bridge = loop {
                match Bridge::start(Self::config(&domain, &roots, &ports, i, exports)) {
                    Ok(b) => break b,
                    Err(e) if attempt < 5 => {
                        eprintln!("bridge {i} on port {}: {e}; trying another", ports[i]);
                        attempt += 1;
                        ports[i] = free_port();
                    }
                    Err(e) => panic!("bridge {i}: {e}"),
                }
            };
            bridges.push(Some(bridge));
        }
        let h = Hosts {
            roots,
            ports,
            bridges,
            domain,
        };
        h.wait_all();
        h
    }

    pub fn config(
        domain: &str,
        roots: &[TempRoot],
        ports: &[u16],
        i: usize,
        exports: &[&str],
    ) -> BridgeConfig {
        let mut c = BridgeConfig::new(domain, NAMES[i])
            .listen(format!("tcp/127.0.0.1:{}", ports[i]))
            .root(roots[i].path());
        for p in &ports[..i] {
            c = c.connect(format!("tcp/127.0.0.1:{p}"));
        }
        for e in exports {
            c = c.export(*e);
        }
        c
    }

    pub fn wait_all(&self) {
        for b in self.bridges.iter().flatten() {
            for (j, _) in self.roots.iter().enumerate() {
                assert!(
                    b.wait_for_host(NAMES[j], Duration::from_secs(10)),
                    "{} does not see {}",
                    b.host(),
                    NAMES[j]
                );
            }
        }
    }

    pub fn root(&self, i: usize) -> PathBuf {
        self.roots[i].path().to_path_buf()
    }
}

/// In a child: prints `what` on a line of its own, for the parent's [`Said`].
pub fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{SAY_PREFIX}{what}");
    let _ = out.flush();
}

/// The lines one child printed with [`say`], read in order by the parent.
pub struct Said<'a> {
    sup: &'a Supervisor,
    child: ChildId,
    read: usize,
}

impl<'a> Said<'a> {
    /// The lines of `child`, a child of `sup`, none read yet.
    pub fn new(sup: &'a Supervisor, child: ChildId) -> Said<'a> {
        Said {
            sup,
            child,
            read: 0,
        }
    }

    /// Asserts the child's next line is `what`, waiting at most [`SAY_WAIT`] for it; a
    /// child that fails meanwhile fails the test at once.
    pub fn expect(&mut self, what: &str) {
        let mut next = None;
        wait_until(&format!("the child to say {what}"), SAY_WAIT, || {
            self.sup
                .check(&format!("waiting for the child to say {what}"));
            next = self.lines().into_iter().nth(self.read);
            next.is_some()
        });
        assert_eq!(next.as_deref(), Some(what), "the child says {what}");
        self.read += 1;
    }

    /// Every whole line the child said so far, without the prefix.
    fn lines(&self) -> Vec<String> {
        let out = self.sup.stdout(self.child);
        let whole = out.rfind('\n').map_or("", |end| &out[..end]);
        whole
            .lines()
            .filter_map(|l| l.strip_prefix(SAY_PREFIX))
            .map(str::to_owned)
            .collect()
    }
}
