//! UDP and TCP front ends (being written).
