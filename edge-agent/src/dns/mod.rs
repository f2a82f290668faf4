//! The sans-IO DNS core (being written).
