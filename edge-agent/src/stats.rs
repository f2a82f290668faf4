//! Per-zone query counters, kept in memory for export.
//!
//! Counters are relaxed atomics: the query path never waits for them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one zone (or of the queries that matched no zone).
#[derive(Debug)]
pub struct ZoneStats {
    /// Queries received for this zone.
    pub queries: AtomicU64,
    /// Responses by RCODE (0..=15, extended RCODEs fold into their low bits' slot 15).
    pub rcodes: [AtomicU64; 16],
    /// Queries by QTYPE for types 0..=255; index 256 counts every other type.
    pub qtypes: Box<[AtomicU64; 257]>,
}

impl Default for ZoneStats {
    fn default() -> Self {
        ZoneStats {
            queries: AtomicU64::new(0),
            rcodes: std::array::from_fn(|_| AtomicU64::new(0)),
            qtypes: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl ZoneStats {
    /// Records a query refused before its question could be used.
    pub fn record_error(&self, rcode: u16) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.rcodes[usize::from(rcode.min(15))].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one answered query.
    pub fn record(&self, qtype: u16, rcode: u16) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.rcodes[usize::from(rcode.min(15))].fetch_add(1, Ordering::Relaxed);
        let slot = if qtype < 256 { usize::from(qtype) } else { 256 };
        self.qtypes[slot].fetch_add(1, Ordering::Relaxed);
    }
}
