//! Pipes (being written).
