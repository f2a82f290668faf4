//! Per-zone query counters (being written).
