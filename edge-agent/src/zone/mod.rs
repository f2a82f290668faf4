//! Zone data: names, records, master-file loading and the lookup model.

pub mod build;
pub mod master;
pub mod model;
pub mod name;
pub mod rdata_text;
pub mod rr;

use std::path::Path;

use hashbrown::HashMap;
use std::sync::Arc;

use crate::stats::ZoneStats;
pub use build::ZoneBuilder;
pub use model::Zone;
pub use name::Name;

/// Why a zone could not be loaded: every problem found, each naming file:line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct LoadError {
    /// One line per problem, `file:line: message`.
    pub problems: Vec<String>,
}

/// Loads a zone from an RFC 1035 master file: parse, build, check. Records
/// outside the zone and every check failure are reported with `file:line`.
pub fn load_zone(apex: &Name, path: &Path) -> Result<Zone, LoadError> {
    let options = master::MasterOptions::new(apex);
    let mut builder = ZoneBuilder::new(apex);
    if let Ok(meta) = std::fs::metadata(path) {
        // About 32 bytes of text per record and 1.9 records per name in
        // typical zones: reserving avoids regrowing the big arrays.
        let records = (meta.len() / 32) as usize;
        builder.reserve(records, records / 2);
    }
    let mut problems = Vec::new();
    let parsed = master::parse_file(path, &options, &mut |record| {
        if let Err(message) = builder.add(record)
            && problems.len() < 50
        {
            problems.push(format!(
                "{}:{}: {message}",
                record.file.display(),
                record.line
            ));
        }
        Ok(())
    });
    if let Err(error) = parsed {
        problems.push(error.to_string());
    }
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }
    builder.finish().map_err(|problems| LoadError { problems })
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
#[derive(Debug)]
pub struct ZoneSet {
    entries: Vec<ZoneEntry>,
    by_apex: HashMap<Box<[u8]>, usize>,
    /// Counters of queries that matched no zone, and of malformed queries.
    pub unmatched: Arc<ZoneStats>,
    /// The EDNS UDP payload size we offer and answer up to (RFC 6891 §6.2.5).
    pub udp_payload: u16,
}

impl Default for ZoneSet {
    fn default() -> Self {
        ZoneSet::new(Vec::new(), Arc::default())
    }
}

/// The EDNS UDP payload size offered unless configured otherwise: the
/// DNS Flag Day 2020 value, which avoids IP fragmentation on common paths.
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;

impl ZoneSet {
    /// A zone set; `unmatched` counts queries for names outside every zone.
    pub fn new(entries: Vec<ZoneEntry>, unmatched: Arc<ZoneStats>) -> ZoneSet {
        let by_apex = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.zone.apex().as_wire().into(), i))
            .collect();
        ZoneSet {
            entries,
            by_apex,
            unmatched,
            udp_payload: DEFAULT_UDP_PAYLOAD,
        }
    }

    /// Sets the EDNS UDP payload size we offer.
    pub fn with_udp_payload(mut self, payload: u16) -> ZoneSet {
        self.udp_payload = payload.max(512);
        self
    }

    /// The zone that answers for a lowercase wire name: the longest match.
    /// A DS query at a zone apex belongs to the parent side (RFC 4035
    /// §3.1.4.1), so it goes to the parent zone when we serve it.
    pub fn find(&self, lower_name: &[u8], qtype: u16) -> Option<&ZoneEntry> {
        let mut offset = 0;
        let mut skip_exact = qtype == rr::rtype::DS;
        let mut first_match = None;
        loop {
            if let Some(&i) = self.by_apex.get(&lower_name[offset..]) {
                if !skip_exact {
                    return Some(&self.entries[i]);
                }
                first_match.get_or_insert(i);
            }
            skip_exact = false;
            match name::parent_offset(&lower_name[offset..]) {
                Some(step) if offset + step < lower_name.len() => offset += step,
                _ => return first_match.map(|i| &self.entries[i]),
            }
        }
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
