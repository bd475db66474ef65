//! The memory of one pipe instance: a section holding a [`PipeState`] block and two
//! rings, `a2b` (written by end [`Side::A`], the creating/server end) and `b2a`
//! (written by end [`Side::B`], the second/client end).
//!
//! The state block is `#[repr(C)]`; its configuration words are written once by the
//! creator before the section is marked ready and are copied out and validated by each
//! end at attach (never re-read). The per-end words are written by the end they
//! describe and read by the other one, which treats them as untrusted hints (liveness,
//! `peer_pid`), never as sizes or offsets.

use culvert_section::{Region, Section, SectionKind, SharedStruct, View};
use culvert_sync::atomic::{AtomicU32, AtomicU64, Ordering};

use culvert_ring::{mpmc, spsc};

use super::options::{PipeMode, PipeOptions, MAX_MESSAGE_LIMIT};
use crate::{Error, Result};

/// Magic word of a [`PipeState`]: "CLVPIPE" + version byte.
const PIPE_MAGIC: u64 = u64::from_le_bytes(*b"CLVPIPE\x01");
/// Object kind of the state block in the section's table.
pub(crate) const OBJ_STATE: u32 = 0x5049_0001;
/// Object kind of a direction's ring.
pub(crate) const OBJ_RING: u32 = 0x5049_0002;
/// Name of the state object.
pub(crate) const STATE_NAME: &str = "state";
/// Name of the ring end [`Side::A`] writes.
pub(crate) const A2B: &str = "a2b";
/// Name of the ring end [`Side::B`] writes.
pub(crate) const B2A: &str = "b2a";

/// One of the two ends of a pipe instance; its [`index`](Self::index) is the end's
/// entry in the arrays of shared memory ([`PipeState::ends`], [`HolderTable::ends`])
/// and the number that travels in `<var>_SIDE` to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// End 0: the first end of an anonymous pipe, the server end of a named pipe's
    /// connection. Writes ring [`A2B`].
    A,
    /// End 1: the second end of an anonymous pipe (the one a child takes), the client
    /// end of a named pipe's connection. Writes ring [`B2A`].
    B,
}

impl Side {
    /// The other end.
    pub(crate) fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// The end's index in the shared arrays: 0 for [`Side::A`], 1 for [`Side::B`].
    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// Name of the ring this end writes.
    pub(crate) fn tx_ring(self) -> &'static str {
        match self {
            Side::A => A2B,
            Side::B => B2A,
        }
    }

    /// Name of the ring this end reads.
    pub(crate) fn rx_ring(self) -> &'static str {
        self.peer().tx_ring()
    }
}

/// `flags` bit: the directions are MPMC rings.
pub(crate) const FLAG_SHARED: u32 = 1;

/// [`EndState::status`]: nobody attached this end yet.
pub(crate) const END_UNATTACHED: u32 = 0;
/// [`EndState::status`]: an end is attached.
pub(crate) const END_ATTACHED: u32 = 1;
/// [`EndState::status`]: the end was dropped, disconnected, or given up unused.
pub(crate) const END_GONE: u32 = 2;

/// Fewest slots of each MPMC ring in shared mode.
pub(crate) const SHARED_SLOTS_MIN: usize = 4;
/// Largest `max_message` of a shared message pipe: each MPMC slot holds one whole
/// message (no fragmentation), so a direction costs `slots × max_message` bytes.
pub(crate) const SHARED_MESSAGE_MAX: usize = 1 << 20;
/// The atomic write size of shared byte pipes (Linux's `PIPE_BUF`): a write of at
/// most this many bytes is never interleaved with another writer's bytes.
pub(crate) const SHARED_ATOMIC_WRITE: usize = 4096;
/// Participant-table entries of each shared ring: room for every holder of both ends
/// ([`MAX_HOLDERS`] each) and more.
pub(crate) const SHARED_RING_ENDPOINTS: usize = 256;
/// Fragment header: `flags: u32` (FIRST/LAST), `total_len: u32`.
pub(crate) const FRAG_HEADER: usize = 8;
/// Fragment flag: first fragment of a message.
pub(crate) const FRAG_FIRST: u32 = 1;
/// Fragment flag: last fragment of a message.
pub(crate) const FRAG_LAST: u32 = 2;

/// What one end publishes about itself.
#[repr(C)]
pub(crate) struct EndState {
    /// Packed [`ProcessIdentity`](culvert_sync::ProcessIdentity) of the process that
    /// attached this end (0: none yet). Written by that end; read by the peer for
    /// liveness and `peer_pid`.
    pub identity: AtomicU64,
    /// Packed identity of the process expected to attach this end (0: unknown). Lets
    /// the peer notice that a child or client died before attaching.
    pub expected: AtomicU64,
    /// `END_UNATTACHED → END_ATTACHED → END_GONE` (or `UNATTACHED → GONE`). Never goes
    /// back. Any other value is treated as gone.
    pub status: AtomicU32,
    /// Attachments of this end (1 when not shared). Shared mode: attaches minus normal
    /// detaches — a hint only (a killed holder is never subtracted); the holder table
    /// (`super::shared`) is what decides whether the end is gone.
    pub holders: AtomicU32,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 5],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<EndState>() == 64);

/// Holder words per end, in the holder table of a shared instance.
pub(crate) const MAX_HOLDERS: usize = 64;
/// Name of the holder table object.
pub(crate) const HOLDERS_NAME: &str = "holders";
/// Object kind of the holder table.
pub(crate) const OBJ_HOLDERS: u32 = 0x5049_0003;

// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for HolderTable {}

/// The holder table (object `holders`, shared instances only).
#[repr(C, align(128))]
pub(crate) struct HolderTable {
    /// `ends[e][i]`: holder word `i` of the end of index `e` ([`Side::index`]; see
    /// the `shared` module). Invariant (honest peers): the identity part names a
    /// process that attached or is expected to attach end `e`; written only by CAS.
    pub ends: [[AtomicU64; MAX_HOLDERS]; 2],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<HolderTable>() == 2 * MAX_HOLDERS * 8);

// SAFETY: `repr(C)`, atomics only.
unsafe impl SharedStruct for EndState {}
// SAFETY: `repr(C)`, atomics and `EndState`s only.
unsafe impl SharedStruct for PipeState {}

/// The state block of a pipe instance (object `state`).
#[repr(C, align(128))]
pub(crate) struct PipeState {
    /// [`PIPE_MAGIC`].
    pub magic: AtomicU64,
    /// [`PipeMode::as_u32`]. Invariant: 1 or 2.
    pub mode: AtomicU32,
    /// `FLAG_*` bits. Invariant: no unknown bits.
    pub flags: AtomicU32,
    /// Largest message. Invariant: `<= MAX_MESSAGE_LIMIT`.
    pub max_message: AtomicU64,
    /// Named pipes: the instance slot in the server's table (`u32::MAX`: anonymous).
    pub slot: AtomicU32,
    /// Reserved, zero.
    pub reserved0: AtomicU32,
    /// Named pipes: the connection ticket (0: anonymous).
    pub ticket: AtomicU64,
    /// Reserved, zero (pads the configuration words to one line).
    pub reserved1: [AtomicU64; 11],
    /// End [`Side::A`] (creator / server) and end [`Side::B`] (second end / client),
    /// at their [`Side::index`].
    pub ends: [EndState; 2],
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<PipeState>() == 256);

/// The validated configuration of an instance, copied out of its state block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstanceConfig {
    pub mode: PipeMode,
    pub shared: bool,
    pub max_message: usize,
    pub slot: u32,
    pub ticket: u64,
}

/// Checked access to a [`PipeState`] in a region.
#[derive(Clone)]
pub(crate) struct StateView {
    view: View<PipeState>,
}

impl StateView {
    /// The state block at the start of `region`, if it is large and aligned enough.
    pub(crate) fn new(region: Region) -> Result<Self> {
        let view = View::new(region).ok_or_else(|| Error::Corrupted {
            what: "pipe state object too small or misaligned".into(),
        })?;
        Ok(Self { view })
    }

    /// The block.
    pub(crate) fn get(&self) -> &PipeState {
        self.view.get()
    }

    /// One end's words.
    pub(crate) fn end(&self, side: Side) -> &EndState {
        &self.get().ends[side.index()]
    }

    /// Copies out and validates the configuration words.
    pub(crate) fn config(&self) -> Result<InstanceConfig> {
        let s = self.get();
        let bad = |what: &str| Error::Corrupted {
            what: format!("pipe state: {what}"),
        };
        if s.magic.load(Ordering::Acquire) != PIPE_MAGIC {
            return Err(bad("wrong magic"));
        }
        let mode = PipeMode::from_u32(s.mode.load(Ordering::Relaxed))
            .ok_or_else(|| bad("unknown mode"))?;
        let flags = s.flags.load(Ordering::Relaxed);
        if flags & !FLAG_SHARED != 0 {
            return Err(bad("unknown flags"));
        }
        let max_message = s.max_message.load(Ordering::Relaxed);
        if max_message > MAX_MESSAGE_LIMIT as u64 {
            return Err(bad("max_message out of range"));
        }
        Ok(InstanceConfig {
            mode,
            shared: flags & FLAG_SHARED != 0,
            max_message: max_message as usize,
            slot: s.slot.load(Ordering::Relaxed),
            ticket: s.ticket.load(Ordering::Relaxed),
        })
    }

    /// Whether the peer of `side` is known to be gone: it disconnected, or the process
    /// recorded (or expected) for it died. `false` while unknown.
    pub(crate) fn peer_gone(&self, side: Side) -> bool {
        let peer = self.end(side.peer());
        let status = peer.status.load(Ordering::Acquire);
        if status != END_UNATTACHED && status != END_ATTACHED {
            return true;
        }
        let word = if status == END_ATTACHED {
            peer.identity.load(Ordering::Acquire)
        } else {
            peer.expected.load(Ordering::Acquire)
        };
        culvert_sync::holder_of(word) == culvert_sync::Holder::Dead
    }
}

/// Fragment record capacity (ring `max_message`) of an SPSC message ring of
/// `capacity` bytes for messages of up to `max_message`: a quarter of the ring, so
/// writer and reader work on different fragments of a long message at once.
pub(crate) fn spsc_fragment_record(capacity: usize, max_message: usize) -> usize {
    let whole = (FRAG_HEADER + max_message + 7) & !7;
    (capacity / 4).min(whole).max(FRAG_HEADER)
}

/// The ring layout of one direction.
#[derive(Debug, Clone, Copy)]
enum RingPlan {
    SpscBytes(spsc::Config),
    SpscMessages(spsc::Config),
    MpmcBytes(mpmc::Config),
    MpmcMessages(mpmc::Config),
}

impl RingPlan {
    fn new(mode: PipeMode, shared: bool, capacity: usize, max_message: usize) -> Self {
        if shared {
            // One message per slot (no fragmentation, so writers never interleave
            // pieces of messages); as many slots as make up `capacity`, at least
            // SHARED_SLOTS_MIN.
            let slot = match mode {
                PipeMode::Byte => SHARED_ATOMIC_WRITE,
                PipeMode::Message => max_message.max(1),
            };
            let slots = (capacity / slot).max(SHARED_SLOTS_MIN).next_power_of_two();
            let config = mpmc::Config::new(slots, slot).with_max_endpoints(SHARED_RING_ENDPOINTS);
            match mode {
                PipeMode::Byte => RingPlan::MpmcBytes(config),
                PipeMode::Message => RingPlan::MpmcMessages(config),
            }
        } else {
            match mode {
                PipeMode::Byte => RingPlan::SpscBytes(spsc::Config::bytes(capacity)),
                PipeMode::Message => RingPlan::SpscMessages(spsc::Config::messages(
                    capacity,
                    spsc_fragment_record(capacity, max_message),
                )),
            }
        }
    }

    fn size(&self) -> Result<usize> {
        Ok(match self {
            RingPlan::SpscBytes(c) => spsc::ByteRing::required_size(c)?,
            RingPlan::SpscMessages(c) => spsc::MessageRing::required_size(c)?,
            RingPlan::MpmcBytes(c) => mpmc::ByteRing::required_size(c)?,
            RingPlan::MpmcMessages(c) => mpmc::MessageRing::required_size(c)?,
        })
    }

    fn init(&self, region: &Region) -> Result<()> {
        match self {
            RingPlan::SpscBytes(c) => spsc::ByteRing::init(region, c)?,
            RingPlan::SpscMessages(c) => spsc::MessageRing::init(region, c)?,
            RingPlan::MpmcBytes(c) => mpmc::ByteRing::init(region, c)?,
            RingPlan::MpmcMessages(c) => mpmc::MessageRing::init(region, c)?,
        }
        Ok(())
    }
}

/// Where an instance section is made.
pub(crate) enum Placement<'a> {
    /// A sealed memfd (anonymous pipe).
    Anonymous,
    /// A named section (an instance of a named pipe).
    Named(&'a str),
}

/// Creates an instance section in state `Ready`: the state block and the two rings.
/// `expected_b` is the packed identity expected to attach end [`Side::B`] (0: unknown).
pub(crate) fn create_instance(
    place: Placement<'_>,
    mode: PipeMode,
    opts: &PipeOptions,
    slot: u32,
    ticket: u64,
    expected_b: u64,
) -> Result<Section> {
    opts.validate()?;
    if opts.shared && mode == PipeMode::Message && opts.max_message > SHARED_MESSAGE_MAX {
        return Err(Error::InvalidArgument {
            what: format!(
                "shared message pipes carry messages of at most {SHARED_MESSAGE_MAX} bytes \
                 (each ring slot holds a whole message); max_message is {}",
                opts.max_message
            ),
        });
    }
    let a2b_cap = PipeOptions::ring_capacity(opts.out_buffer)?;
    let b2a_cap = PipeOptions::ring_capacity(opts.in_buffer)?;
    let a2b = RingPlan::new(mode, opts.shared, a2b_cap, opts.max_message);
    let b2a = RingPlan::new(mode, opts.shared, b2a_cap, opts.max_message);
    let (a2b_len, b2a_len) = (a2b.size()?, b2a.size()?);
    let holders_len = if opts.shared {
        std::mem::size_of::<HolderTable>()
    } else {
        0
    };
    let total = std::mem::size_of::<PipeState>() + holders_len + a2b_len + b2a_len + 4 * 4096;
    let sopts = opts.section_for(SectionKind::Pipe);
    let mut section = match place {
        Placement::Anonymous => Section::anonymous_with(total as u64, &sopts)?,
        Placement::Named(name) => Section::create(name, total as u64, &sopts)?,
    };
    let state = section.add_object(
        STATE_NAME,
        OBJ_STATE,
        std::mem::size_of::<PipeState>() as u64,
        128,
    )?;
    if opts.shared {
        // Zero-filled by the section: every holder word starts free.
        section.add_object(HOLDERS_NAME, OBJ_HOLDERS, holders_len as u64, 128)?;
    }
    let r_a2b = section.add_object(A2B, OBJ_RING, a2b_len as u64, 4096)?;
    let r_b2a = section.add_object(B2A, OBJ_RING, b2a_len as u64, 4096)?;
    a2b.init(&r_a2b)?;
    b2a.init(&r_b2a)?;
    let view = StateView::new(state)?;
    let s = view.get();
    // The section is still Initializing: nobody else reads these words yet; the
    // Release store of Ready in `mark_ready` publishes them.
    s.mode.store(mode.as_u32(), Ordering::Relaxed);
    s.flags
        .store(if opts.shared { FLAG_SHARED } else { 0 }, Ordering::Relaxed);
    s.max_message
        .store(opts.max_message as u64, Ordering::Relaxed);
    s.slot.store(slot, Ordering::Relaxed);
    s.ticket.store(ticket, Ordering::Relaxed);
    s.ends[Side::B.index()]
        .expected
        .store(expected_b, Ordering::Relaxed);
    s.magic.store(PIPE_MAGIC, Ordering::Release);
    section.mark_ready()?;
    Ok(section)
}
