//! Fuzz bodies for the broadcast rings (being written).
