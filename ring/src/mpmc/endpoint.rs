//! What every MPMC endpoint type shares: [`endpoint_methods!`], which writes the
//! methods that only forward to the endpoint's core (close, stats, clone, …) once for
//! all four endpoint types. Everything is statically dispatched.

/// Writes the methods an MPMC endpoint type (a struct with a `core: MpmcCore` field) only
/// forwards to its core.
///
/// * `endpoint_methods!(Type, "who", KIND)`: for a type holding nothing but its core:
///   `Debug`, `try_clone` (a new attachment of `KIND`), and the forwarders below.
/// * `endpoint_methods!(@forward Type)`: the [`Endpoint`](crate::Endpoint) impl,
///   `reclaim_dead` and `stats`.
/// * `endpoint_methods!(@writer Type)`: the [`WriteEndpoint`](crate::WriteEndpoint) impl.
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
    (@writer $ty:ident) => {
        impl $crate::WriteEndpoint for $ty {
            fn writable_notifier(&self) -> &culvert_sync::Notifier {
                self.core.not_full()
            }
        }
    };
    (@forward $ty:ident) => {
        impl $crate::Endpoint for $ty {
            fn set_wait_strategy(&mut self, strategy: culvert_sync::WaitStrategy) {
                self.core.set_wait_strategy(strategy);
            }

            fn close(&mut self) {
                self.core.close();
            }

            fn is_closed(&self) -> bool {
                self.core.is_closed()
            }

            fn region(&self) -> &culvert_section::Region {
                self.core.region()
            }
        }

        impl $ty {
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
        }
    };
}

pub(crate) use endpoint_methods;
