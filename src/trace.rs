//! `event!`: a `tracing` event when the `tracing` feature is on, nothing at all when it
//! is off (the arguments are not even evaluated). The arguments are `tracing`'s:
//! a level, then fields and a message, e.g.
//! `event!(WARN, pid, "peer died")`. Every event has the target `culvert`.

/// See the module doc.
#[cfg(feature = "tracing")]
macro_rules! event {
    ($level:ident, $($rest:tt)+) => {
        ::tracing::event!(target: "culvert", ::tracing::Level::$level, $($rest)+)
    };
}

/// See the module doc.
#[cfg(not(feature = "tracing"))]
macro_rules! event {
    ($level:ident, $($rest:tt)+) => {{}};
}

pub(crate) use event;
