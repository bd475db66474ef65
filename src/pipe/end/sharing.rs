//! Sharing an attached [`PipeEnd`] (shared mode, [`PipeOptions::shared`]): another
//! holder in this process ([`PipeEnd::try_clone`]) or in a child
//! ([`PipeEnd::share_with_child`], [`PipeEnd::expect_holder`],
//! [`PipeEnd::spawn_child`]). See the `shared` module for the holder table these
//! calls reserve and claim words in. None of them waits.
//!
//! [`PipeOptions::shared`]: super::super::PipeOptions::shared

use culvert_section::Section;

use super::super::named::ServerLink;
use super::super::shared;
use super::PipeEnd;
use crate::{Error, Result};

impl PipeEnd {
    /// Another holder of this end in this process (shared mode only): its own ring
    /// attachments and holder entry, the same settings. The end counts as gone when
    /// the last of its holders closed or died. `InvalidArgument` on a pipe that is not
    /// shared.
    pub fn try_clone(&self) -> Result<PipeEnd> {
        if self.io.holder().is_none() {
            return Err(Error::InvalidArgument {
                what: "try_clone needs a shared pipe (PipeOptions::shared)".into(),
            });
        }
        self.base.check_usable()?;
        let dup = self.base.section.as_fd().try_clone_to_owned()?;
        let section = Section::from_fd_with(
            dup,
            "shared pipe",
            &culvert_section::SectionOptions::default()
                .kind(culvert_section::SectionKind::Pipe)
                .expect_kind(culvert_section::SectionKind::Pipe),
        )?;
        let link = self.base.link.as_ref().map(ServerLink::for_another_holder);
        let mut end = Self::attach_holder(section, self.base.side, self.base.strategy, link, None)?;
        end.base.read_mode = self.base.read_mode;
        end.base.nonblocking = self.base.nonblocking;
        end.base.read_timeout = self.base.read_timeout;
        end.base.write_timeout = self.base.write_timeout;
        Ok(end)
    }

    /// Shares this end with a child process (shared mode only): reserves a holder
    /// entry for it and arranges for `cmd`'s child to inherit the pipe section, its
    /// descriptor in `var`, the side in `<var>_SIDE` and the entry in `<var>_HOLDER`.
    /// The child attaches with [`PipeEnd::from_inherited_env`]`(var)` as another
    /// holder of this end. Until then the reservation counts as a holder naming this
    /// process; call [`PipeEnd::expect_holder`] with the child's pid after spawning
    /// (or use [`spawn_child`](Self::spawn_child), which does all three steps) so a
    /// child that dies before attaching is discounted.
    ///
    /// # Errors
    /// `InvalidArgument` for an end that is not shared; `Busy` when the end has no
    /// free holder entry; `Io` if the descriptor could not be prepared.
    pub fn share_with_child(&self, cmd: &mut std::process::Command, var: &str) -> Result<()> {
        let Some(sh) = self.io.holder() else {
            return Err(Error::InvalidArgument {
                what: "sharing an attached end needs a shared pipe (PipeOptions::shared)".into(),
            });
        };
        let r =
            shared::reserve_for_child(&self.base.section, &sh.holders, self.base.side, cmd, var)?;
        self.reservations()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
        Ok(())
    }

    /// After [`share_with_child`](Self::share_with_child) and the spawn: the oldest
    /// reservation made by this end that names no child yet now names `pid`.
    ///
    /// Not shared: as [`expect_peer`](Self::expect_peer). With no reservation waiting
    /// for a pid, nothing happens.
    ///
    /// # Errors
    /// `Io` with kind `NotFound` if no process `pid` runs.
    pub fn expect_holder(&self, pid: u32) -> Result<()> {
        let Some(sh) = self.io.holder() else {
            return self.expect_peer(pid);
        };
        let r = {
            let mut list = self
                .reservations()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if list.is_empty() {
                return Ok(());
            }
            list.remove(0)
        };
        shared::convert_reservation(&sh.holders, self.base.side, r, pid)
    }

    /// Shares this end with the child `cmd` spawns (shared mode only):
    /// [`share_with_child`](Self::share_with_child) with
    /// [`PIPE_FD_ENV`](super::super::PIPE_FD_ENV), spawn,
    /// [`expect_holder`](Self::expect_holder). Drop `cmd` after this call to close this
    /// process's copy of the descriptor.
    ///
    /// # Errors
    /// As [`share_with_child`](Self::share_with_child); `Io` if the spawn failed.
    pub fn spawn_child(&self, cmd: &mut std::process::Command) -> Result<std::process::Child> {
        self.share_with_child(cmd, super::super::PIPE_FD_ENV)?;
        match cmd.spawn() {
            Ok(child) => {
                self.expect_holder(child.id())?;
                Ok(child)
            }
            Err(e) => {
                if let (Some(sh), Some(r)) = (
                    self.io.holder(),
                    self.reservations()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop(),
                ) {
                    sh.holders.release(self.base.side, r.index, r.word);
                }
                Err(e.into())
            }
        }
    }

    /// Reservations made by [`share_with_child`](Self::share_with_child) not yet given
    /// a child's pid.
    fn reservations(&self) -> &std::sync::Mutex<Vec<shared::Reservation>> {
        &self.base.reserved
    }
}
