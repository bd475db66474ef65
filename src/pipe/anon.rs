//! Anonymous pipes: [`anonymous`], [`anonymous_pending`], [`PendingEnd`] and handing an
//! end to a child process ([`PipeCommandExt`], [`PipeEnd::from_inherited`]).

use std::process::{Child, Command};
use std::sync::Mutex;

use culvert_section::{Section, SectionKind};
use culvert_sync::atomic::{AtomicBool, Ordering};

use super::end::PipeEnd;
use super::layout::{
    create_instance, Placement, Side, StateView, END_GONE, END_UNATTACHED, STATE_NAME,
};
use super::options::{PipeMode, PipeOptions};
use super::shared::{self, HolderView, Reservation, HOLDER_ENV_SUFFIX, SIDE_ENV_SUFFIX};
use crate::Result;

/// The environment variable through which a child learns the descriptor of the pipe
/// section it inherited (see [`PipeCommandExt::inherit_pipe_end`]).
pub const PIPE_FD_ENV: &str = "CULVERT_PIPE_FD";

/// Creates an anonymous pipe (a sealed memfd section holding two rings) and returns
/// both ends, attached in this process.
///
/// To give one end to a child process, use [`anonymous_pending`] instead: an attached
/// end cannot move to another process.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use culvert::pipe::{self, PipeMode, PipeOptions};
///
/// # fn main() -> culvert::Result<()> {
/// let (mut a, b) = pipe::anonymous(PipeMode::Byte, &PipeOptions::default())?;
/// a.write_all(b"one\ntwo\n")?;
/// drop(a);
/// let lines: Vec<String> = BufReader::new(b).lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// `InvalidArgument` for options out of range (buffer sizes, `max_message`);
/// `Section` (`NoSpace`…) or `Io` if the shared memory could not be made.
pub fn anonymous(mode: PipeMode, opts: &PipeOptions) -> Result<(PipeEnd, PipeEnd)> {
    let (a, pending) = anonymous_pending(mode, opts)?;
    let b = pending.open()?;
    Ok((a, b))
}

/// Creates an anonymous pipe and returns the first end attached here and the second
/// end *pending*: not attached to any process yet, so it can be handed to a child with
/// [`PipeCommandExt::inherit_pipe_end`] (or opened here with [`PendingEnd::open`]).
///
/// ```no_run
/// use std::io::Write;
/// use std::process::Command;
/// use culvert::pipe::{self, PipeCommandExt, PipeMode, PipeOptions};
///
/// # fn main() -> culvert::Result<()> {
/// let (mut mine, theirs) = pipe::anonymous_pending(PipeMode::Byte, &PipeOptions::default())?;
/// let mut cmd = Command::new("my-child");
/// cmd.inherit_pipe_end(&theirs)?;
/// let child = cmd.spawn()?;
/// drop(cmd); // closes our copy of the descriptor
/// mine.expect_peer(child.id())?; // notice if the child dies before attaching
/// drop(theirs);
/// mine.write_all(b"hello child")?;
/// // In the child: let end = culvert::pipe::PipeEnd::from_inherited()?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`anonymous`].
pub fn anonymous_pending(mode: PipeMode, opts: &PipeOptions) -> Result<(PipeEnd, PendingEnd)> {
    let section = create_instance(Placement::Anonymous, mode, opts, u32::MAX, 0, 0)?;
    let dup = section.as_fd().try_clone_to_owned()?;
    let second =
        Section::from_fd_with(dup, "anonymous pipe", &opts.section_for(SectionKind::Pipe))?;
    let a = PipeEnd::attach(section, Side::A, opts.wait_strategy, None)?;
    Ok((
        a,
        PendingEnd {
            section: Some(second),
            opts: opts.clone(),
            passed: AtomicBool::new(false),
            reserved: Mutex::new(Vec::new()),
        },
    ))
}

/// The second end of an anonymous pipe, not yet attached to any process.
///
/// Hand it to a child with [`PipeCommandExt::inherit_pipe_end`], or attach it here
/// with [`open`](Self::open). Dropped without either, it counts as closed: the first
/// end reads end of stream and its writes fail.
///
/// **Shared pipes** ([`PipeOptions::shared`]): the end may be handed to any number of
/// children, each attaching as one more holder of it (as forked processes share a
/// pipe descriptor). Prefer [`spawn_child`](Self::spawn_child): it reserves a holder
/// entry for the child *before* spawning it (so the end does not look closed while a
/// child has not attached yet) and names the child in it afterwards (so a child that
/// dies before attaching is discounted). With [`pass_to_child`](Self::pass_to_child)
/// call [`expect_child`](Self::expect_child) after each spawn to the same effect; a
/// reservation never given a pid counts as a holder as long as this process lives.
/// The other end reads end of stream once every holder closed or died.
#[derive(Debug)]
pub struct PendingEnd {
    /// `None` once opened.
    section: Option<Section>,
    opts: PipeOptions,
    /// Passed to at least one `Command`.
    passed: AtomicBool,
    /// Shared mode: holder reservations made for children whose pid we do not know yet.
    reserved: Mutex<Vec<Reservation>>,
}

impl PendingEnd {
    /// Attaches the end in this process.
    ///
    /// # Errors
    /// `Closed` if this pending end was already opened; `Busy` if another process
    /// attached it first.
    pub fn open(mut self) -> Result<PipeEnd> {
        let section = self.section.take().ok_or(crate::Error::Closed)?;
        PipeEnd::attach(section, Side::B, self.opts.wait_strategy, None)
    }

    /// Arranges for `cmd`'s child to inherit the pipe section, its descriptor number in
    /// the environment variable [`PIPE_FD_ENV`]; the child attaches with
    /// [`PipeEnd::from_inherited`]. Only the first process to attach gets the end.
    ///
    /// # Errors
    /// As [`pass_to_child_env`](Self::pass_to_child_env).
    pub fn pass_to_child(&self, cmd: &mut Command) -> Result<()> {
        self.pass_to_child_env(cmd, PIPE_FD_ENV)
    }

    /// [`pass_to_child`](Self::pass_to_child) with another environment variable (to
    /// pass several pipes); the child calls [`PipeEnd::from_inherited_env`] with it.
    ///
    /// Shared pipes: reserves a holder entry for the child first (see the type's
    /// docs); call [`expect_child`](Self::expect_child) after spawning.
    ///
    /// # Errors
    /// `Closed` if this pending end was already opened; `Busy` when a shared end has
    /// no free holder entry; `Io` if the descriptor could not be prepared.
    pub fn pass_to_child_env(&self, cmd: &mut Command, var: &str) -> Result<()> {
        let section = self.section.as_ref().ok_or(crate::Error::Closed)?;
        if let Some(holders) = self.holders()? {
            let r = shared::reserve_for_child(section, &holders, Side::B, cmd, var)?;
            self.reserved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r);
        } else {
            section.pass_to_child(cmd, var)?;
            cmd.env(
                format!("{var}{SIDE_ENV_SUFFIX}"),
                Side::B.index().to_string(),
            );
            cmd.env_remove(format!("{var}{HOLDER_ENV_SUFFIX}"));
        }
        self.passed.store(true, Ordering::Release);
        Ok(())
    }

    /// After a [`pass_to_child`](Self::pass_to_child) and the spawn: records `pid` as
    /// the child that will attach, so that the first end notices if it dies before
    /// attaching. Shared pipes: the oldest reservation not yet given a pid now names
    /// the child.
    ///
    /// # Errors
    /// `Closed` if this pending end was already opened; `Io` with kind `NotFound` if
    /// no process `pid` runs.
    pub fn expect_child(&self, pid: u32) -> Result<()> {
        let section = self.section.as_ref().ok_or(crate::Error::Closed)?;
        let Some(holders) = self.holders()? else {
            let id = culvert_sync::ProcessIdentity::of(pid)?;
            let state = StateView::new(section.object(STATE_NAME)?)?;
            state
                .end(Side::B)
                .expected
                .store(id.packed(), Ordering::Release);
            return Ok(());
        };
        let r = {
            let mut list = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
            if list.is_empty() {
                return Ok(());
            }
            list.remove(0)
        };
        shared::convert_reservation(&holders, Side::B, r, pid)
    }

    /// Spawns `cmd` with this end passed to the child ([`pass_to_child`](Self::pass_to_child),
    /// spawn, [`expect_child`](Self::expect_child)). For shared pipes, call it once per
    /// child. Drop `cmd` afterwards to close this process's copy of the descriptor.
    ///
    /// # Errors
    /// As [`pass_to_child_env`](Self::pass_to_child_env); `Io` if the spawn failed.
    pub fn spawn_child(&self, cmd: &mut Command) -> Result<Child> {
        self.pass_to_child(cmd)?;
        match cmd.spawn() {
            Ok(child) => {
                self.expect_child(child.id())?;
                Ok(child)
            }
            Err(e) => {
                let last = self
                    .reserved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop();
                if let (Some(r), Ok(Some(holders))) = (last, self.holders()) {
                    holders.release(Side::B, r.index, r.word);
                }
                Err(e.into())
            }
        }
    }

    /// The holder table, for a shared pipe.
    fn holders(&self) -> Result<Option<HolderView>> {
        let section = self.section.as_ref().ok_or(crate::Error::Closed)?;
        let state = StateView::new(section.object(STATE_NAME)?)?;
        if state.config()?.shared {
            Ok(Some(HolderView::open(section)?))
        } else {
            Ok(None)
        }
    }
}

impl Drop for PendingEnd {
    fn drop(&mut self) {
        let Some(section) = &self.section else { return };
        if self.passed.load(Ordering::Acquire) {
            return;
        }
        // Never handed on: nobody will attach, so the first end must not wait.
        if let Ok(Ok(state)) = section.object(STATE_NAME).map(StateView::new) {
            let _ = state.end(Side::B).status.compare_exchange(
                END_UNATTACHED,
                END_GONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

/// Passing a [`PendingEnd`] to a child process through `std::process::Command`.
pub trait PipeCommandExt {
    /// The child inherits the pipe section; it attaches the end with
    /// [`PipeEnd::from_inherited`]. Drop the `Command` after `spawn` to close the
    /// parent's copy of the descriptor.
    fn inherit_pipe_end(&mut self, end: &PendingEnd) -> Result<&mut Self>;
}

impl PipeCommandExt for Command {
    fn inherit_pipe_end(&mut self, end: &PendingEnd) -> Result<&mut Self> {
        end.pass_to_child(self)?;
        Ok(self)
    }
}

impl PipeEnd {
    /// In a child process: attaches the pipe end its parent passed with
    /// [`PipeCommandExt::inherit_pipe_end`] (descriptor number in [`PIPE_FD_ENV`]).
    ///
    /// # Errors
    /// As [`from_inherited_with`](Self::from_inherited_with).
    pub fn from_inherited() -> Result<PipeEnd> {
        Self::from_inherited_env(PIPE_FD_ENV)
    }

    /// [`from_inherited`](Self::from_inherited) with the environment variable given to
    /// [`PendingEnd::pass_to_child_env`].
    ///
    /// # Errors
    /// As [`from_inherited_with`](Self::from_inherited_with).
    pub fn from_inherited_env(var: &str) -> Result<PipeEnd> {
        Self::from_inherited_with(var, &PipeOptions::default())
    }

    /// [`from_inherited_env`](Self::from_inherited_env) with the wait strategy and
    /// section options of `opts`.
    ///
    /// The side comes from `<var>_SIDE` (default: the second end), and for shared
    /// pipes the holder entry reserved for this child from `<var>_HOLDER`.
    ///
    /// # Errors
    /// `Io` with kind `InvalidInput` when `var` is unset or names no open descriptor;
    /// `InvalidArgument` for a malformed `<var>_SIDE`/`<var>_HOLDER`; `Busy` if another
    /// process attached this end first; `Corrupted` if the section is not a valid pipe.
    pub fn from_inherited_with(var: &str, opts: &PipeOptions) -> Result<PipeEnd> {
        let (side, holder) = shared::inherited_side_and_holder(var)?;
        let section = Section::from_inherited_env_with(var, &opts.section_for(SectionKind::Pipe))?;
        PipeEnd::attach_holder(section, side, opts.wait_strategy, None, holder)
    }
}
