//! How a [`PipeEnd`] comes to be: attaching one side of an instance section, either
//! exclusively (SPSC rings, the end's status claimed `UNATTACHED → ATTACHED` once) or,
//! in shared mode, as one more holder (MPMC rings, a word of the holder table).
//!
//! Attaching never waits. It validates the instance's configuration once (it is never
//! re-read), attaches a ring writer on the side's outgoing ring and a reader on the
//! other, and on any failure gives back what it claimed (an exclusive end is marked
//! gone, a holder word is released).

use culvert_ring::{mpmc, spsc};
use culvert_section::Section;
use culvert_sync::atomic::Ordering;
use culvert_sync::{ProcessIdentity, RecheckClock, WaitStrategy};

use super::super::layout::{
    InstanceConfig, Side, StateView, END_ATTACHED, END_GONE, END_UNATTACHED, FRAG_HEADER,
    STATE_NAME,
};
use super::super::named::ServerLink;
use super::super::options::{PipeMode, ReadMode};
use super::super::shared::{self, HolderView};
use super::fragments::{Framed, MsgCursor};
use super::rings::Duplex;
use super::shared_io::{Holder, SharedState};
use super::wait::PeerCheck;
use super::{Base, Io, PipeEnd};
use crate::{Error, Result};
use culvert_ring::Endpoint as _;

impl PipeEnd {
    /// Attaches end `side` of the instance in `section`.
    pub(crate) fn attach(
        section: Section,
        side: Side,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
    ) -> Result<PipeEnd> {
        Self::attach_holder(section, side, strategy, link, None)
    }

    /// Attaches end `side`; in shared mode as one more holder, taking over the
    /// reserved holder word `preferred` if it is still a reservation.
    pub(crate) fn attach_holder(
        section: Section,
        side: Side,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
        preferred: Option<usize>,
    ) -> Result<PipeEnd> {
        let state = StateView::new(section.object(STATE_NAME)?)?;
        let config = state.config()?;
        if config.shared {
            return Self::attach_shared(section, state, side, strategy, link, preferred);
        }
        let me = state.end(side);
        let my_id = ProcessIdentity::me().packed();
        match me.status.compare_exchange(
            END_UNATTACHED,
            END_ATTACHED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(END_ATTACHED) => {
                return Err(Error::Busy {
                    reason: crate::BusyReason::EndAttached,
                })
            }
            Err(_) => return Err(Error::Closed),
        }
        me.identity.store(my_id, Ordering::Release);
        me.holders.store(1, Ordering::Release);
        let fail = |e: Error| {
            state.end(side).status.store(END_GONE, Ordering::Release);
            e
        };
        let tx_region = section.object(side.tx_ring()).map_err(|e| fail(e.into()))?;
        let rx_region = section.object(side.rx_ring()).map_err(|e| fail(e.into()))?;
        let io = match config.mode {
            PipeMode::Byte => {
                let mut w = spsc::ByteWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = spsc::ByteReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                Io::Bytes(Duplex::new(w, r))
            }
            PipeMode::Message => {
                let mut w = spsc::MessageWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = spsc::MessageReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                let record = w.max_message();
                if record < FRAG_HEADER || (record == FRAG_HEADER && config.max_message > 0) {
                    return Err(fail(Error::Corrupted {
                        what: "pipe ring too small for a fragment".into(),
                    }));
                }
                Io::Messages(Framed {
                    rings: Duplex::new(w, r),
                    cursor: MsgCursor::default(),
                    scratch: Vec::with_capacity(record),
                    frag_payload: record - FRAG_HEADER,
                    max_message: config.max_message,
                })
            }
        };
        let mut base = Base::new(section, state, side, &config, strategy, PeerCheck::Process);
        base.link = link;
        Ok(PipeEnd { base, io })
    }

    /// Shared mode: claims a holder word, marks the end attached, attaches an MPMC
    /// producer/writer on the ring this end writes and a consumer/reader on the other.
    /// A named pipe's `link` is kept, and from then on frees the server's slot only
    /// once both ends are gone.
    fn attach_shared(
        section: Section,
        state: StateView,
        side: Side,
        strategy: WaitStrategy,
        link: Option<ServerLink>,
        preferred: Option<usize>,
    ) -> Result<PipeEnd> {
        let config = state.config()?;
        let holders = HolderView::open(&section)?;
        let my_id = ProcessIdentity::me().packed();
        let index = shared::attach_holder(&state, &holders, side, my_id, preferred)?;
        state.end(side).identity.store(my_id, Ordering::Release);
        let fail = |e: Error| {
            holders.release(side, index, my_id);
            state.end(side).holders.fetch_sub(1, Ordering::AcqRel);
            e
        };
        let tx_region = section.object(side.tx_ring()).map_err(|e| fail(e.into()))?;
        let rx_region = section.object(side.rx_ring()).map_err(|e| fail(e.into()))?;
        let holder = |rest_len| SharedState::new(holders.clone(), index, my_id, rest_len);
        let io = match config.mode {
            PipeMode::Byte => {
                let mut w = mpmc::ByteWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = mpmc::ByteReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                Io::SharedBytes(Holder {
                    rings: Duplex::new(w, r),
                    state: holder(0),
                })
            }
            PipeMode::Message => {
                let mut w = mpmc::MessageWriter::attach(&tx_region).map_err(|e| fail(e.into()))?;
                let mut r = mpmc::MessageReader::attach(&rx_region).map_err(|e| fail(e.into()))?;
                w.set_wait_strategy(strategy);
                r.set_wait_strategy(strategy);
                // Each ring slot must hold a whole message of `max_message` bytes.
                if w.max_message() < config.max_message || r.max_message() < config.max_message {
                    return Err(fail(Error::Corrupted {
                        what: "shared pipe ring slots smaller than max_message".into(),
                    }));
                }
                Io::SharedMessages(Holder {
                    rings: Duplex::new(w, r),
                    state: holder(config.max_message),
                })
            }
        };
        let link = link.map(|mut l| {
            l.set_shared_views(state.clone(), holders.clone());
            l
        });
        let peer_check = PeerCheck::Holders(holders);
        let mut base = Base::new(section, state, side, &config, strategy, peer_check);
        base.link = link;
        Ok(PipeEnd { base, io })
    }
}

impl Base {
    /// The base of an end just attached, every setting at its default: read mode as
    /// the pipe's mode, blocking, no timeouts, no link, not split. The callers set what
    /// differs.
    pub(super) fn new(
        section: Section,
        state: StateView,
        side: Side,
        config: &InstanceConfig,
        strategy: WaitStrategy,
        peer_check: PeerCheck,
    ) -> Base {
        Base {
            section,
            state,
            side,
            mode: config.mode,
            read_mode: match config.mode {
                PipeMode::Byte => ReadMode::Byte,
                PipeMode::Message => ReadMode::Message,
            },
            max_message: config.max_message,
            partial: Vec::new(),
            nonblocking: false,
            read_timeout: None,
            write_timeout: None,
            strategy,
            disconnected: false,
            write_shut: false,
            poisoned: false,
            clock: RecheckClock::new(),
            peer_check,
            peer_lost: None,
            link: None,
            split_guard: None,
            reserved: std::sync::Mutex::new(Vec::new()),
        }
    }
}
