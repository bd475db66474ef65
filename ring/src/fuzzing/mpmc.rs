//! Fuzz bodies for the mpmc rings (being written).
