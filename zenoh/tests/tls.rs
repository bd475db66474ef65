//! Two bridges over Zenoh's TLS link with mutual authentication (feature `tls`). The
//! certificates are made for the test with the `openssl` command.

#![cfg(feature = "tls")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{domain, free_port};
use culvert::pipe::{PipeEnd, PipeMode, PipeOptions, PipeServer};
use culvert_testkit::TempRoot;
use culvert_zenoh::{Bridge, BridgeConfig, TlsFiles};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (needed to make test certificates)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and one certificate (for `localhost` and 127.0.0.1) signed by it.
fn certificates(dir: &Path) -> TlsFiles {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=culvert-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut req = vec!["req", "-subj", "/CN=localhost"];
    req.extend(ec);
    req.extend(["-keyout", "node.key", "-out", "node.csr"]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "node.pem",
        ],
    );
    TlsFiles {
        root_ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node.key"),
    }
}

#[test]
fn a_pipe_over_tls() {
    let certs = TempRoot::new("tls-certs");
    let tls = certificates(&certs);
    let dom = domain("tls");
    let (ra, rb) = (TempRoot::new("tls-a"), TempRoot::new("tls-b"));
    let (pa, pb) = (free_port(), free_port());
    let mut a = BridgeConfig::new(&dom, "hosta")
        .listen(format!("tls/127.0.0.1:{pa}"))
        .root(ra.path());
    a.tls = Some(tls.clone());
    let mut b = BridgeConfig::new(&dom, "hostb")
        .listen(format!("tls/127.0.0.1:{pb}"))
        .connect(format!("tls/localhost:{pa}"))
        .root(rb.path())
        .export("secure");
    b.tls = Some(tls);
    let ba = Bridge::start(a).unwrap();
    let _bb = Bridge::start(b).unwrap();
    assert!(ba.wait_for_host("hostb", Duration::from_secs(10)));
    let server = PipeServer::bind(
        "secure",
        &PipeOptions::default()
            .root(rb.path())
            .mode(PipeMode::Message),
    )
    .unwrap();
    let t = std::thread::spawn(move || {
        let mut end = server.accept_until(Duration::from_secs(10)).unwrap();
        end.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = [0u8; 64];
        let r = end.read_message(&mut buf).unwrap();
        end.write_message(&buf[..r.len]).unwrap();
    });
    let mut c = PipeEnd::connect_with(
        "//hostb/secure",
        Duration::from_secs(10),
        &PipeOptions::default().root(ra.path()),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 64];
    let r = c.transact(b"over tls", &mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"over tls");
    t.join().unwrap();
}
