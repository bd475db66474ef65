//! Fuzz bodies for the spsc rings (being written).
