//! Multi-producer multi-consumer rings (being written).
