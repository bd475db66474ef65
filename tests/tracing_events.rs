//! With the `tracing` feature, culvert reports what an operator wants to know as
//! `tracing` events with the target `culvert`: here an accepted pipe connection and a
//! mailslot drop are seen by a minimal subscriber.

#![cfg(feature = "tracing")]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use culvert::mailslot::{Mailslot, MailslotOptions, MailslotWriter};
use culvert::pipe::{PipeEnd, PipeOptions, PipeServer};
use culvert_testkit::TempRoot;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects the message of every `culvert` event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collect {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == "culvert"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut m = String::new();
        e.record(&mut Message(&mut m));
        self.0.lock().unwrap().push(m);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn connections_and_drops_are_traced() {
    let seen = Collect::default();
    let dir = TempRoot::new("tracing");
    tracing::subscriber::with_default(seen.clone(), || {
        let opts = PipeOptions::default().root(dir.path());
        let server = PipeServer::bind("traced", &opts).unwrap();
        std::thread::scope(|s| {
            let c =
                s.spawn(|| PipeEnd::connect_with("traced", Duration::from_secs(5), &opts).unwrap());
            let mut end = server.accept_until(Duration::from_secs(5)).unwrap();
            end.write_all(b"x").unwrap();
            drop(c.join().unwrap());
        });

        let mopts = MailslotOptions::new()
            .max_message_size(16)
            .capacity(1)
            .root(dir.path());
        let _slot = Mailslot::create("traced-box", &mopts).unwrap();
        let mut w = MailslotWriter::open_with("traced-box", &mopts).unwrap();
        // Nobody reads: within a few writes the mailslot is full.
        let full = (0..64).any(|_| matches!(w.write(b"msg"), Err(culvert::Error::Full)));
        assert!(full);
    });
    let seen = seen.0.lock().unwrap();
    for want in ["pipe connection accepted", "mailslot full: message dropped"] {
        assert!(seen.iter().any(|m| m == want), "no {want:?} in {seen:?}");
    }
}
