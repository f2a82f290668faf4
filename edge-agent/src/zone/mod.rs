//! Zone data: names, records, master-file loading and the lookup model.

pub mod master;
pub mod name;
pub mod rdata_text;
pub mod rr;

use std::path::Path;
use std::sync::Arc;

use crate::stats::ZoneStats;
pub use name::Name;

/// One loaded, immutable zone version (being written).
#[derive(Debug)]
pub struct Zone {
    apex: Name,
}

impl Zone {
    /// The zone's apex name, lowercase.
    pub fn apex(&self) -> &Name {
        &self.apex
    }
    /// The SOA serial of this version.
    pub fn serial(&self) -> u32 {
        0
    }
    /// Number of records in the zone.
    pub fn record_count(&self) -> usize {
        0
    }
}

/// Why a zone could not be loaded: every problem found, each naming file:line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct LoadError {
    /// One line per problem, `file:line: message`.
    pub problems: Vec<String>,
}

/// Loads a zone from an RFC 1035 master file.
pub fn load_zone(apex: &Name, path: &Path) -> Result<Zone, LoadError> {
    let _ = path;
    Ok(Zone { apex: apex.to_lowercase() })
}

/// A zone served by the agent together with its counters.
#[derive(Debug, Clone)]
pub struct ZoneEntry {
    /// The published version.
    pub zone: Arc<Zone>,
    /// Counters of this zone; they outlive versions (reloads keep them).
    pub stats: Arc<ZoneStats>,
}

/// The set of zones answered, published as a whole by an atomic pointer swap.
#[derive(Debug, Default)]
pub struct ZoneSet {
    entries: Vec<ZoneEntry>,
    /// Counters of queries that matched no zone.
    pub unmatched: Arc<ZoneStats>,
}

impl ZoneSet {
    /// A zone set; `unmatched` counts queries for names outside every zone.
    pub fn new(entries: Vec<ZoneEntry>, unmatched: Arc<ZoneStats>) -> ZoneSet {
        ZoneSet { entries, unmatched }
    }
    /// The entry of the zone with this apex, if served.
    pub fn get(&self, apex: &Name) -> Option<&ZoneEntry> {
        let apex = apex.to_lowercase();
        self.entries.iter().find(|e| e.zone.apex() == &apex)
    }
    /// All entries.
    pub fn entries(&self) -> &[ZoneEntry] {
        &self.entries
    }
}
