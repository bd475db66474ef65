//! Single-producer single-consumer rings (being written).
