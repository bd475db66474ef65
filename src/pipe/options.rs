//! [`PipeOptions`], [`PipeMode`], [`ReadMode`] and the small value types the pipe calls
//! return ([`MessageRead`], [`Peek`]).

use std::path::PathBuf;
use std::time::Duration;

use culvert_section::{SectionKind, SectionOptions};
use culvert_sync::WaitStrategy;

use crate::{Error, Result};

/// How a pipe carries data; fixed when the pipe (or the named pipe's server) is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PipeMode {
    /// A byte stream: writes may be merged and split by reads (like an OS pipe).
    #[default]
    Byte,
    /// Messages: each write is one message, read back whole (or in pieces with
    /// [`MessageRead::more`]), boundaries kept.
    Message,
}

impl PipeMode {
    pub(crate) fn as_u32(self) -> u32 {
        match self {
            PipeMode::Byte => 1,
            PipeMode::Message => 2,
        }
    }

    pub(crate) fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(PipeMode::Byte),
            2 => Some(PipeMode::Message),
            _ => None,
        }
    }
}

/// How `Read::read` reads a pipe (`PipeEnd::set_read_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// Read bytes; on a message pipe, reads run across message boundaries.
    Byte,
    /// Read at most one message per call (message pipes only).
    Message,
}

/// What [`PipeEnd::read_message`](super::PipeEnd::read_message) read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageRead {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The message was longer than the buffer: the rest comes with the next call
    /// (Windows' `ERROR_MORE_DATA`; nothing was lost).
    pub more: bool,
}

/// What [`PipeEnd::peek`](super::PipeEnd::peek) saw, without consuming anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Peek {
    /// Bytes that can be read now without waiting. On a byte pipe, every committed
    /// byte; on a message pipe, a lower bound: the committed bytes of the current
    /// fragment of the message being read (whole messages up to a quarter of the ring
    /// are one fragment).
    pub bytes_available: usize,
    /// Message pipes: bytes left in the message being read, or the length of the next
    /// message; `None` when no message is pending (and always on byte pipes).
    pub next_message_len: Option<usize>,
}

/// Default [`PipeOptions::max_message`]: 1 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;
/// Default buffer size of each direction: 64 KiB.
pub const DEFAULT_BUFFER: usize = 64 * 1024;
/// Smallest buffer size of a direction (smaller requests are rounded up to it).
pub const MIN_BUFFER: usize = 4096;
/// Largest buffer size of a direction.
pub const MAX_BUFFER: usize = 1 << 30;
/// Largest [`PipeOptions::max_message`].
pub const MAX_MESSAGE_LIMIT: usize = 1 << 30;
/// Largest [`PipeOptions::max_instances`] (Windows' `PIPE_UNLIMITED_INSTANCES`).
pub const MAX_INSTANCES: usize = 255;
/// Longest pipe name: section names are at most 200 characters, and instance
/// sections append a suffix to the pipe's name.
pub const MAX_PIPE_NAME: usize = 170;

/// How a pipe (anonymous, or a named pipe's server) is created, and how an end behaves.
///
/// Build with `PipeOptions::default()` and the builder methods. Buffer sizes are
/// rounded up to a power of two of at least 4 KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeOptions {
    /// Byte or message pipe. Named pipes only: [`anonymous`](super::anonymous) takes the
    /// mode as an argument. Default [`PipeMode::Byte`].
    pub mode: PipeMode,
    /// Named pipes: how many instances (connected clients) may exist at once,
    /// `1..=255`. Default 16.
    pub max_instances: usize,
    /// Bytes of ring in the direction *towards* the creating end (client → server for
    /// named pipes, second end → first end for anonymous ones). Default 64 KiB.
    pub in_buffer: usize,
    /// Bytes of ring in the direction *away from* the creating end. Default 64 KiB.
    pub out_buffer: usize,
    /// Named pipes: how long [`PipeEnd::connect`](super::PipeEnd::connect) waits for a
    /// free instance when called with `None`. Default 5 s.
    pub default_timeout: Duration,
    /// Largest message (message pipes); larger writes fail with `MessageTooLarge`
    /// before anything is written. Messages larger than the ring are fragmented and
    /// reassembled. Default 1 MiB, at most 1 GiB.
    pub max_message: usize,
    /// Each direction is a multi-producer multi-consumer ring, so one end may be held
    /// by several processes at once (as Unix processes share a pipe after `fork`):
    /// hand it to several children ([`PendingEnd::spawn_child`](super::PendingEnd::spawn_child),
    /// [`PipeEnd::spawn_child`](super::PipeEnd::spawn_child)) or clone it
    /// ([`PipeEnd::try_clone`](super::PipeEnd::try_clone)). The other end reads end of
    /// stream (and its writes fail) once the last holder closed or died.
    ///
    /// Message pipes: every message is one ring slot, whole — never fragmented, so
    /// writers never interleave and any reader gets a whole message; `max_message` is
    /// at most 1 MiB, and each direction costs `slots × max_message` bytes, with
    /// `slots = max(4, buffer / max_message)` rounded up to a power of two (the 1 MiB
    /// default costs 4 MiB per direction: set `max_message` to what you send). Byte
    /// pipes: writes of up to 4096 bytes (`PIPE_BUF`) are never interleaved with
    /// another writer's bytes. Named pipes too: every instance of a shared
    /// [`PipeServer`](super::PipeServer) is shared, either end of a connection may be
    /// shared or cloned, and its instance slot is freed once both ends are gone (every
    /// holder of each closed or died). Default `false`.
    pub shared: bool,
    /// How blocking calls of the ends created with these options wait.
    pub wait_strategy: WaitStrategy,
    /// Namespace directory and file mode of named sections (see
    /// [`SectionOptions::root`]).
    pub section: SectionOptions,
}

impl Default for PipeOptions {
    fn default() -> Self {
        Self {
            mode: PipeMode::Byte,
            max_instances: 16,
            in_buffer: DEFAULT_BUFFER,
            out_buffer: DEFAULT_BUFFER,
            default_timeout: Duration::from_secs(5),
            max_message: DEFAULT_MAX_MESSAGE,
            shared: false,
            wait_strategy: WaitStrategy::default(),
            section: SectionOptions::default(),
        }
    }
}

impl PipeOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::mode`].
    pub fn mode(mut self, mode: PipeMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`Self::max_instances`].
    pub fn max_instances(mut self, n: usize) -> Self {
        self.max_instances = n;
        self
    }

    /// Sets [`Self::in_buffer`].
    pub fn in_buffer(mut self, bytes: usize) -> Self {
        self.in_buffer = bytes;
        self
    }

    /// Sets [`Self::out_buffer`].
    pub fn out_buffer(mut self, bytes: usize) -> Self {
        self.out_buffer = bytes;
        self
    }

    /// Sets both buffer sizes.
    pub fn buffers(self, bytes: usize) -> Self {
        self.in_buffer(bytes).out_buffer(bytes)
    }

    /// Sets [`Self::default_timeout`].
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Sets [`Self::max_message`].
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Sets [`Self::shared`].
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets [`Self::wait_strategy`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Sets the namespace directory ([`SectionOptions::root`]).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.section = self.section.root(root);
        self
    }

    /// Sets [`Self::section`].
    pub fn section_options(mut self, section: SectionOptions) -> Self {
        self.section = section;
        self
    }

    /// Section options for creating or opening a section of `kind`.
    pub(crate) fn section_for(&self, kind: SectionKind) -> SectionOptions {
        self.section.clone().kind(kind).expect_kind(kind)
    }

    /// The buffer size of a direction, checked and rounded.
    pub(crate) fn ring_capacity(bytes: usize) -> Result<usize> {
        if bytes > MAX_BUFFER {
            return Err(Error::InvalidArgument {
                what: format!("buffer of {bytes} bytes exceeds the {MAX_BUFFER}-byte maximum"),
            });
        }
        Ok(bytes.max(MIN_BUFFER).next_power_of_two())
    }

    /// Checks the options that do not depend on the pipe kind.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_message > MAX_MESSAGE_LIMIT {
            return Err(Error::InvalidArgument {
                what: format!(
                    "max_message of {} bytes exceeds the {MAX_MESSAGE_LIMIT}-byte maximum",
                    self.max_message
                ),
            });
        }
        Self::ring_capacity(self.in_buffer)?;
        Self::ring_capacity(self.out_buffer)?;
        Ok(())
    }
}

/// Checks a pipe name: a section name (`[A-Za-z0-9._-]`) of at most
/// [`MAX_PIPE_NAME`] characters.
pub(crate) fn validate_pipe_name(name: &str) -> Result<()> {
    let invalid = || Error::InvalidName {
        name: name.to_string(),
        max: MAX_PIPE_NAME,
    };
    if name.len() > MAX_PIPE_NAME {
        return Err(invalid());
    }
    culvert_section::validate_name(name).map_err(|_| invalid())
}
