//! Ports (being written).
