//! Mailslots (being written).
