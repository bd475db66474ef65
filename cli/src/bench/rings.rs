//! The `culvert-ring` transport: culvert's ring-level API (`culvert::ring::spsc`), two
//! SPSC rings in one named section, one per direction, wrapped as `Read + Write`.
//!
//! Not in the default table (which measures the public pipes and ports); ask for it
//! with `--transport culvert-ring` to see what the layers above the rings cost.

use culvert_ring::Endpoint as _;
use std::io::{self, Read, Write};

use culvert::ring::{spsc, Deadline};
use culvert::section::{Section, SectionOptions};
use culvert::WaitStrategy;

/// Name of the section (in the bench's private namespace).
pub const SECTION: &str = "bench-rings";

/// How the rings are laid out.
#[derive(Debug, Clone, Copy)]
pub struct RingSetup {
    /// Message rings (boundaries kept) instead of byte rings.
    pub messages: bool,
    /// Capacity of each ring.
    pub capacity: usize,
    /// Largest message (message rings).
    pub max_message: usize,
    /// How blocking calls wait.
    pub strategy: WaitStrategy,
}

impl RingSetup {
    fn config(&self) -> spsc::Config {
        if self.messages {
            spsc::Config::messages(self.capacity, self.max_message)
        } else {
            spsc::Config::bytes(self.capacity)
        }
    }

    fn size(&self) -> io::Result<usize> {
        let c = self.config();
        let r = if self.messages {
            spsc::MessageRing::required_size(&c)
        } else {
            spsc::ByteRing::required_size(&c)
        };
        r.map_err(ring_err)
    }
}

fn ring_err(e: culvert::ring::Error) -> io::Error {
    culvert::Error::from(e).into()
}

fn section_err(e: culvert::section::Error) -> io::Error {
    culvert::Error::from(e).into()
}

enum Tx {
    Bytes(spsc::ByteWriter),
    Msgs(spsc::MessageWriter),
}

enum Rx {
    Bytes(spsc::ByteReader),
    Msgs(spsc::MessageReader),
}

/// One side of the ring pair.
pub struct RingLink {
    tx: Tx,
    rx: Rx,
    _section: Section,
}

impl RingLink {
    /// Parent: creates the section with rings `a2b` and `b2a`; writes `a2b`.
    pub fn create(setup: RingSetup, opts: &SectionOptions) -> io::Result<RingLink> {
        let _ = Section::unlink(SECTION, opts);
        let size = setup.size()?;
        let mut section =
            Section::create(SECTION, 2 * size as u64 + 8192, opts).map_err(section_err)?;
        for name in ["a2b", "b2a"] {
            let region = section
                .add_object(name, 1, size as u64, 128)
                .map_err(section_err)?;
            if setup.messages {
                spsc::MessageRing::init(&region, &setup.config()).map_err(ring_err)?;
            } else {
                spsc::ByteRing::init(&region, &setup.config()).map_err(ring_err)?;
            }
        }
        section.mark_ready().map_err(section_err)?;
        Self::attach(section, setup, "a2b", "b2a")
    }

    /// Peer: opens the section; writes `b2a`.
    pub fn open(setup: RingSetup, opts: &SectionOptions) -> io::Result<RingLink> {
        let section = Section::open(SECTION, opts).map_err(section_err)?;
        Self::attach(section, setup, "b2a", "a2b")
    }

    fn attach(section: Section, setup: RingSetup, tx: &str, rx: &str) -> io::Result<RingLink> {
        let (tr, rr) = (
            section.object(tx).map_err(section_err)?,
            section.object(rx).map_err(section_err)?,
        );
        let (tx, rx) = if setup.messages {
            let mut w = spsc::MessageWriter::attach(&tr).map_err(ring_err)?;
            let mut r = spsc::MessageReader::attach(&rr).map_err(ring_err)?;
            w.set_wait_strategy(setup.strategy);
            r.set_wait_strategy(setup.strategy);
            (Tx::Msgs(w), Rx::Msgs(r))
        } else {
            let mut w = spsc::ByteWriter::attach(&tr).map_err(ring_err)?;
            let mut r = spsc::ByteReader::attach(&rr).map_err(ring_err)?;
            w.set_wait_strategy(setup.strategy);
            r.set_wait_strategy(setup.strategy);
            (Tx::Bytes(w), Rx::Bytes(r))
        };
        Ok(RingLink {
            tx,
            rx,
            _section: section,
        })
    }
}

impl super::Duplex for RingLink {}

impl Write for RingLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tx {
            Tx::Bytes(w) => w.write(buf, Deadline::never()).map_err(ring_err),
            Tx::Msgs(w) => w
                .write(buf, Deadline::never())
                .map(|()| buf.len())
                .map_err(ring_err),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for RingLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &mut self.rx {
            Rx::Bytes(r) => r.read(buf, Deadline::never()),
            Rx::Msgs(r) => r.read(buf, Deadline::never()),
        };
        match r {
            Ok(n) => Ok(n),
            Err(culvert::ring::Error::Closed) => Ok(0),
            Err(e) => Err(ring_err(e)),
        }
    }
}
