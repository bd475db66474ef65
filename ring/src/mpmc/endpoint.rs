//! What every MPMC endpoint type shares: [`endpoint_methods!`], which writes the
//! methods that only forward to the endpoint's core (close, stats, clone, …) once for
//! all four endpoint types. Everything is statically dispatched.

/// Writes the methods an MPMC endpoint type (a struct with a `core: MpmcCore` field) only
/// forwards to its core.
///
/// * `endpoint_methods!(Type, "who", KIND)`: for a type holding nothing but its core:
///   `Debug`, `try_clone` (a new attachment of `KIND`), and the forwarders below.
/// * `endpoint_methods!(@forward Type)`: `set_wait_strategy`, `close`, `is_closed`,
///   `reclaim_dead`, `stats` and `region`.
macro_rules! endpoint_methods {
    ($ty:ident, $who:literal, $kind:expr) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(concat!("mpmc::", stringify!($ty)))
                    .finish_non_exhaustive()
            }
        }

        impl $ty {
            #[doc = concat!("Another ", $who, " on the same ring (a new attachment).")]
            ///
            /// # Errors
            /// `Busy` when the participant table is full of live endpoints; `Corrupted`.
            pub fn try_clone(&self) -> $crate::Result<Self> {
                Ok(Self {
                    core: self.core.reattach($kind)?,
                })
            }
        }

        endpoint_methods!(@forward $ty);
    };
    (@forward $ty:ident) => {
        impl $ty {
            /// How blocking calls wait (default `Adaptive`).
            pub fn set_wait_strategy(&mut self, strategy: culvert_sync::WaitStrategy) {
                self.core.set_wait_strategy(strategy);
            }

            /// Closes the ring for every endpoint (consumers still drain what was
            /// committed).
            pub fn close(&self) {
                self.core.close();
            }

            /// Whether the ring was closed.
            pub fn is_closed(&self) -> bool {
                self.core.is_closed()
            }

            /// Frees now every slot held by a dead process (waiters do this lazily);
            /// returns how many were freed. Counted in [`Stats`]($crate::mpmc::Stats) like the
            /// lazy path.
            ///
            /// # Errors
            /// `Corrupted` if a slot word is out of range.
            pub fn reclaim_dead(&self) -> $crate::Result<usize> {
                self.core.reclaim_dead()
            }

            /// The ring's shared counters.
            pub fn stats(&self) -> $crate::mpmc::Stats {
                self.core.stats()
            }

            /// The region the ring lives in.
            pub fn region(&self) -> &culvert_section::Region {
                self.core.region()
            }
        }
    };
}

pub(crate) use endpoint_methods;
