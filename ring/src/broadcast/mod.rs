//! The broadcast ring (being written).
