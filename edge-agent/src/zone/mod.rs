//! Zone data: names, records, master-file loading and the lookup model.

pub mod apply;
pub mod build;
pub mod master;
pub mod model;
pub mod name;
pub mod rdata_text;
pub mod rr;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hashbrown::HashMap;
use std::sync::Arc;

use crate::stats::ZoneStats;
use crate::xfr::tsig::TsigKey;
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
    /// For a secondary zone: its expiry flag and NOTIFY hook.
    pub secondary: Option<Arc<SecondaryControl>>,
}

impl ZoneEntry {
    /// The entry of a primary zone (loaded from a file).
    pub fn primary(zone: Arc<Zone>, stats: Arc<ZoneStats>) -> ZoneEntry {
        ZoneEntry {
            zone,
            stats,
            secondary: None,
        }
    }

    /// Whether the zone must be answered with SERVFAIL (a secondary that was
    /// never transferred or is past its expire deadline).
    pub fn is_expired(&self) -> bool {
        self.secondary.as_ref().is_some_and(|s| s.is_expired())
    }
}

/// What the query path knows of a secondary zone: whether it may be served,
/// who may NOTIFY it (and with which TSIG key), and how to wake its refresh
/// task. Shared between the published zone sets and the zone's transfer task.
#[derive(Debug, Default)]
pub struct SecondaryControl {
    expired: AtomicBool,
    notifiers: Vec<IpAddr>,
    /// The masters that have a TSIG key, by address: a NOTIFY from one of
    /// these addresses must be signed with (one of) its key(s).
    master_keys: Vec<(IpAddr, Arc<TsigKey>)>,
    wake: tokio::sync::Notify,
    /// Serial of the last accepted NOTIFY, plus 1 << 32; 0 when none.
    notified_serial: AtomicU64,
    /// NOTIFYs accepted.
    pub notifies_accepted: AtomicU64,
    /// NOTIFYs refused: unlisted source, or TSIG missing, unknown or wrong.
    pub notifies_refused: AtomicU64,
}

/// The TSIG a NOTIFY from one source may or must carry.
#[derive(Debug, Clone, Default)]
pub struct NotifyKeys {
    /// The keys it may be signed with; a signature by any other key is
    /// answered BADKEY.
    pub keys: Vec<Arc<TsigKey>>,
    /// Whether an unsigned NOTIFY is refused: the source is a master that
    /// has a key.
    pub required: bool,
}

impl SecondaryControl {
    /// Control for a zone that may be NOTIFYed by `notifiers` (its masters
    /// and `notify_from`); starts expired until a version is installed.
    pub fn new(notifiers: Vec<IpAddr>) -> SecondaryControl {
        SecondaryControl {
            expired: AtomicBool::new(true),
            notifiers,
            ..SecondaryControl::default()
        }
    }

    /// This control, where a NOTIFY from a master that has a TSIG key must be
    /// signed with that key: `keys` pairs each such master's address with its
    /// key. Sources without a key (other masters, `notify_from`) may still
    /// sign with any of these keys, and then get a signed answer.
    pub fn with_master_keys(mut self, keys: Vec<(IpAddr, Arc<TsigKey>)>) -> SecondaryControl {
        self.master_keys = keys;
        self
    }

    /// The keys a NOTIFY from `peer` may be signed with, and whether it must
    /// be signed. Only meaningful when [`SecondaryControl::may_notify`] holds.
    pub fn notify_keys(&self, peer: IpAddr) -> NotifyKeys {
        let own: Vec<Arc<TsigKey>> = self
            .master_keys
            .iter()
            .filter(|(address, _)| *address == peer)
            .map(|(_, key)| key.clone())
            .collect();
        if !own.is_empty() {
            return NotifyKeys {
                keys: own,
                required: true,
            };
        }
        let mut keys: Vec<Arc<TsigKey>> = Vec::new();
        for (_, key) in &self.master_keys {
            if !keys.iter().any(|known| known.name == key.name) {
                keys.push(key.clone());
            }
        }
        NotifyKeys {
            keys,
            required: false,
        }
    }

    /// Whether the zone is answered with SERVFAIL.
    pub fn is_expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    /// Marks the zone servable or not.
    pub fn set_expired(&self, expired: bool) {
        self.expired.store(expired, Ordering::Relaxed);
    }

    /// Whether `peer` may send NOTIFY for this zone.
    pub fn may_notify(&self, peer: IpAddr) -> bool {
        self.notifiers.contains(&peer)
    }

    /// Records an accepted NOTIFY (with the SOA serial it carried, if any)
    /// and wakes the refresh task. Never blocks; repeated NOTIFYs coalesce.
    pub fn notify(&self, serial: Option<u32>) {
        self.notifies_accepted.fetch_add(1, Ordering::Relaxed);
        let value = serial.map_or(0, |s| (1u64 << 32) | u64::from(s));
        self.notified_serial.store(value, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Waits for the next NOTIFY; returns the serial it carried, if any.
    pub async fn notified(&self) -> Option<u32> {
        self.wake.notified().await;
        let value = self.notified_serial.swap(0, Ordering::Relaxed);
        (value >> 32 == 1).then_some(value as u32)
    }
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
    /// TSIG keys that signed queries may use; their answers are signed too.
    pub tsig_keys: Arc<Vec<Arc<TsigKey>>>,
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
            tsig_keys: Arc::default(),
        }
    }

    /// Sets the TSIG keys signed queries may use.
    pub fn with_tsig_keys(mut self, keys: Arc<Vec<Arc<TsigKey>>>) -> ZoneSet {
        self.tsig_keys = keys;
        self
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
    /// A copy of this set with `zone` as the new version of the entry with
    /// the same apex (counters and secondary control kept); `None` if no
    /// entry has that apex. Costs one pointer copy per zone, not per record.
    pub fn replacing(&self, zone: Arc<Zone>) -> Option<ZoneSet> {
        let position = *self.by_apex.get(zone.apex().as_wire())?;
        let mut entries = self.entries.clone();
        entries[position].zone = zone;
        Some(
            ZoneSet::new(entries, self.unmatched.clone())
                .with_udp_payload(self.udp_payload)
                .with_tsig_keys(self.tsig_keys.clone()),
        )
    }

    /// All entries.
    pub fn entries(&self) -> &[ZoneEntry] {
        &self.entries
    }
}
