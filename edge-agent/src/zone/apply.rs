//! Deriving the next zone version from IXFR differences.
//!
//! Every removed record must exist and every sequence must start at the
//! serial reached so far: a difference that does not apply, or whose result
//! fails the zone checks, is refused and the old version stays as it was.
//!
//! The next version is built incrementally: it shares every chunk of the old
//! version's arrays (see [`super::model`]) except the few it writes, so a
//! one-record change in a 1M-name zone costs well under a millisecond, not a
//! rebuild. Changed RRsets get new record data, a node whose RRsets change
//! gets its RRset list rewritten at the end of the RRset arena, new names
//! get new nodes (with their missing ancestors as empty non-terminals), and
//! a name left with no RRsets and no children leaves the index (and so does
//! an empty non-terminal above it that is left with no children). The zone
//! checks run on the nodes the differences touched.
//!
//! Two cases rebuild the whole version through [`ZoneBuilder`] instead:
//! - a zone cut or a DNAME appears or disappears (an NS RRset below the apex
//!   or a DNAME RRset is created or deleted). That changes the guard of
//!   every name below it, and delegations change rarely;
//! - the data replaced or deleted by incremental updates (kept until then,
//!   since older versions may still use it) passes a quarter of the arrays:
//!   the rebuild compacts, and its cost is spread over the many changes
//!   that led to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use super::build::{self, ZoneBuilder};
use super::master::MasterRecord;
use super::model::{
    self, ArenaWriter, BYTE_CHUNK, ChunkedVecWriter, FLAG_APEX, FLAG_REMOVED, FLAG_WILDCARD_CHILD,
    NO_NODE, Node, NodeId, RRSET_CHUNK, RRset, Zone,
};
use super::name::{self, Name};
use super::rr::{self, class, rtype};
use crate::xfr::{Diff, Record};

/// Where rebuilt and incremental versions name the source of a problem.
const SOURCE: &str = "IXFR";

/// The zone version after applying `diffs` in order to `zone`. `zone` is
/// not changed, and stays usable while and after the next one is built.
pub fn apply_diffs(zone: &Zone, diffs: &[Diff]) -> Result<Zone, Vec<String>> {
    apply_with(zone, diffs, Compaction::WhenWasteful)
}

/// Whether an incremental version may be compacted by a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compaction {
    /// When unreachable data passes a quarter of the arrays.
    WhenWasteful,
    /// Never (tests of the incremental path).
    #[cfg(test)]
    Never,
}

fn apply_with(zone: &Zone, diffs: &[Diff], compaction: Compaction) -> Result<Zone, Vec<String>> {
    let changes = Changes::collect(zone, diffs)?;
    let next = if changes.moves_cuts(zone) {
        rebuild(zone, &changes)?
    } else {
        match Editor::new(zone).apply(&changes) {
            Ok(next)
                if compaction == Compaction::WhenWasteful
                    && next.garbage_bytes() > next.stored_bytes() / 4 =>
            {
                rebuild(&next, &Changes::default())?
            }
            Ok(next) => next,
            Err(Refusal::Problems(problems)) => return Err(problems),
            // Out of node ids or arena chunks: a rebuild packs them again.
            Err(Refusal::Full) => rebuild(zone, &changes)?,
        }
    };
    if next.serial() != changes.serial {
        return Err(vec![format!(
            "IXFR ends at serial {} but its SOA says {}",
            changes.serial,
            next.serial()
        )]);
    }
    Ok(next)
}

/// The net effect of a list of differences: the records of every RRset
/// they touch, after all of them.
#[derive(Default)]
struct Changes<'a> {
    /// Touched RRsets by lowercase owner, then type.
    sets: BTreeMap<Vec<u8>, BTreeMap<u16, SetChange<'a>>>,
    /// The serial the differences end at.
    serial: u32,
}

/// One touched RRset.
#[derive(Default)]
struct SetChange<'a> {
    /// Records it had in the old version.
    old_count: usize,
    /// Its records in order, with their TTLs: the old ones, then the added
    /// ones; `None` where one was removed.
    records: Vec<Option<(u32, &'a [u8])>>,
    /// Where each present record is in `records`.
    positions: HashMap<&'a [u8], usize>,
    /// Records present.
    count: usize,
}

impl<'a> Changes<'a> {
    /// Replays `diffs` over the RRsets they touch, checking the serial chain,
    /// that every removed record is there and that every added one may be.
    fn collect(zone: &'a Zone, diffs: &'a [Diff]) -> Result<Changes<'a>, Vec<String>> {
        let mut changes = Changes {
            sets: BTreeMap::new(),
            serial: zone.serial(),
        };
        let mut problems = Vec::new();
        for diff in diffs {
            if diff.from_serial != changes.serial {
                return Err(vec![format!(
                    "IXFR sequence from serial {} does not apply to serial {}",
                    diff.from_serial, changes.serial
                )]);
            }
            for record in diff.removed.iter().filter(|r| r.rtype != rtype::SOA) {
                let set = changes.set_mut(zone, record);
                if !set.remove(&record.rdata) {
                    problems.push(format!(
                        "IXFR removes a record the zone does not have: {} {}",
                        record.owner,
                        rr::rtype_name(record.rtype)
                    ));
                }
            }
            for record in diff.added.iter().filter(|r| r.rtype != rtype::SOA) {
                match check_added(zone, record) {
                    Ok(()) => changes.set_mut(zone, record).add(record.ttl, &record.rdata),
                    Err(problem) => problems.push(problem),
                }
            }
            changes.serial = diff.to_serial;
        }
        let Some(soa) = diffs
            .last()
            .and_then(|d| d.added.iter().find(|r| r.rtype == rtype::SOA))
        else {
            return Err(vec!["IXFR without a new SOA".to_string()]);
        };
        if soa.owner.to_lowercase() != *zone.apex() {
            problems.push(format!(
                "IXFR: SOA record at {}, not at the apex {}",
                soa.owner,
                zone.apex()
            ));
        }
        // The new SOA replaces the old one, whatever the removals said.
        let apex_soa = changes.set_mut(zone, soa);
        let old: Vec<&[u8]> = apex_soa.present().map(|(_, data)| data).collect();
        for data in old {
            apex_soa.remove(data);
        }
        apex_soa.add(soa.ttl, &soa.rdata);
        if problems.is_empty() {
            Ok(changes)
        } else {
            Err(problems)
        }
    }

    /// The touched RRset of `record`'s owner and type, loaded from `zone`
    /// the first time.
    fn set_mut(&mut self, zone: &'a Zone, record: &Record) -> &mut SetChange<'a> {
        let owner = record.owner.to_lowercase();
        self.sets
            .entry(owner.as_wire().to_vec())
            .or_default()
            .entry(record.rtype)
            .or_insert_with(|| SetChange::load(zone, owner.as_wire(), record.rtype))
    }

    /// Whether the changes create or delete a zone cut or a DNAME, which
    /// changes the guards of a whole subtree.
    fn moves_cuts(&self, zone: &Zone) -> bool {
        self.sets.iter().any(|(owner, sets)| {
            sets.iter().any(|(&code, set)| {
                let structural = code == rtype::DNAME
                    || (code == rtype::NS && owner.as_slice() != zone.apex().as_wire());
                structural && (set.old_count > 0) != (set.count > 0)
            })
        })
    }
}

impl<'a> SetChange<'a> {
    /// The RRset of `owner` and `code` in `zone`, unchanged so far.
    fn load(zone: &'a Zone, owner: &[u8], code: u16) -> SetChange<'a> {
        let mut set = SetChange::default();
        let Some(stored) = zone.find(owner).and_then(|id| zone.rrset(id, code)) else {
            return set;
        };
        for data in zone.records(stored) {
            set.add(stored.ttl, data);
        }
        set.old_count = set.count;
        set
    }

    /// Removes a record; `false` when the RRset does not hold it.
    fn remove(&mut self, data: &[u8]) -> bool {
        let Some(position) = self.positions.remove(data) else {
            return false;
        };
        self.records[position] = None;
        self.count -= 1;
        true
    }

    /// Adds a record; one the RRset already holds stays as it was.
    fn add(&mut self, ttl: u32, data: &'a [u8]) {
        if self.positions.contains_key(data) {
            return;
        }
        self.positions.insert(data, self.records.len());
        self.records.push(Some((ttl, data)));
        self.count += 1;
    }

    /// The present records in order, with their TTLs.
    fn present(&self) -> impl Iterator<Item = (u32, &'a [u8])> + '_ {
        self.records.iter().flatten().copied()
    }

    /// Whether the RRset differs from the old version's.
    fn changed(&self) -> bool {
        self.records.len() != self.old_count || self.count != self.old_count
    }
}

/// The checks [`ZoneBuilder::add`] makes on a record, for an added one.
fn check_added(zone: &Zone, record: &Record) -> Result<(), String> {
    if !name::is_subdomain(record.owner.to_lowercase().as_wire(), zone.apex().as_wire()) {
        return Err(format!(
            "out-of-zone record {} (zone is {})",
            record.owner,
            zone.apex()
        ));
    }
    if rr::is_meta_type(record.rtype) {
        return Err(format!(
            "{} is not allowed in zone data",
            rr::rtype_name(record.rtype)
        ));
    }
    if record.rdata.len() > usize::from(u16::MAX) {
        return Err("record data longer than 65535".to_string());
    }
    Ok(())
}

/// Builds the next version in full: every record of `zone` except the
/// touched RRsets, then the touched RRsets as the changes left them.
fn rebuild(zone: &Zone, changes: &Changes<'_>) -> Result<Zone, Vec<String>> {
    let source = Path::new(SOURCE);
    let mut builder = ZoneBuilder::new(zone.apex());
    builder.reserve(zone.record_count(), zone.node_count());
    let mut problems = Vec::new();
    let mut add = |owner: &[u8], code: u16, ttl: u32, rdata: &[u8]| {
        let record = MasterRecord {
            owner,
            class: class::IN,
            rtype: code,
            ttl,
            rdata,
            file: source,
            line: 0,
        };
        if let Err(e) = builder.add(&record) {
            problems.push(e);
        }
    };
    for id in zone.node_ids() {
        let owner = zone.node_name(id);
        let touched = changes.sets.get(owner);
        for set in zone.rrsets(id) {
            if touched.is_some_and(|sets| sets.contains_key(&set.rtype)) {
                continue;
            }
            for data in zone.records(set) {
                add(owner, set.rtype, set.ttl, data);
            }
        }
    }
    for (owner, sets) in &changes.sets {
        for (&code, set) in sets {
            for (ttl, data) in set.present() {
                add(owner, code, ttl, data);
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    builder.finish()
}

/// Why an incremental version was not made.
enum Refusal {
    /// The changes fail the zone checks.
    Problems(Vec<String>),
    /// No node ids or arena addresses left: a rebuild may still fit.
    Full,
}

/// The arenas or node ids are exhausted.
struct Full;

/// The next version being written: the old version's arrays reopened, so
/// that writes copy the chunks they touch and leave the old version alone.
struct Editor {
    apex: Name,
    names: ArenaWriter<u8>,
    nodes: ChunkedVecWriter<Node>,
    rrsets: ArenaWriter<RRset>,
    rdata: ArenaWriter<u8>,
    index: Vec<Arc<HashTable<NodeId>>>,
    hasher: model::NameHasher,
    record_count: usize,
    garbage: usize,
    /// Nodes whose data changed, for the checks.
    touched: Vec<NodeId>,
}

impl Editor {
    /// Starts the next version of `zone`: copies chunk pointers, not data.
    fn new(zone: &Zone) -> Editor {
        Editor {
            apex: zone.apex.clone(),
            names: ArenaWriter::reopen(&zone.names, BYTE_CHUNK),
            nodes: ChunkedVecWriter::reopen(&zone.nodes),
            rrsets: ArenaWriter::reopen(&zone.rrsets, RRSET_CHUNK),
            rdata: ArenaWriter::reopen(&zone.rdata, BYTE_CHUNK),
            index: zone.index.to_vec(),
            hasher: zone.hasher.clone(),
            record_count: zone.record_count,
            garbage: zone.garbage,
            touched: Vec::new(),
        }
    }

    /// Applies the changes and checks the result.
    fn apply(mut self, changes: &Changes<'_>) -> Result<Zone, Refusal> {
        for (owner, sets) in &changes.sets {
            self.change_node(owner, sets)
                .map_err(|Full| Refusal::Full)?;
        }
        let touched = std::mem::take(&mut self.touched);
        let mut zone = self.finish();
        let mut problems = Vec::new();
        let mut report = |_: NodeId, _: Option<u16>, message: String| {
            problems.push(format!("{SOURCE}: {message}"));
        };
        if let Some(soa) = build::check_apex(&zone, &mut report) {
            zone.soa = soa;
        }
        for id in touched {
            if zone.node(id).flags & FLAG_REMOVED == 0 {
                build::check_node(&zone, id, &mut report);
            }
        }
        if problems.is_empty() {
            Ok(zone)
        } else {
            Err(Refusal::Problems(problems))
        }
    }

    /// Gives `owner` its changed RRsets: creates the node if needed, or
    /// deletes it when it is left with nothing.
    fn change_node(
        &mut self,
        owner: &[u8],
        sets: &BTreeMap<u16, SetChange<'_>>,
    ) -> Result<(), Full> {
        let id = self.find(owner);
        let old_sets: Vec<RRset> = id.map_or_else(Vec::new, |id| self.rrsets_of(id).to_vec());
        let mut new_sets = Vec::with_capacity(old_sets.len() + sets.len());
        let mut data = Vec::new();
        let mut old = old_sets.iter().peekable();
        for (&code, change) in sets {
            while let Some(set) = old.next_if(|set| set.rtype < code) {
                new_sets.push(*set);
            }
            let previous = old.next_if(|set| set.rtype == code).copied();
            if !change.changed() {
                new_sets.extend(previous);
                continue;
            }
            if let Some(previous) = previous {
                self.garbage += self.set_size(&previous);
            }
            self.record_count = (self.record_count + change.count).saturating_sub(change.old_count);
            let mut present = change.present().peekable();
            let Some(&(ttl, _)) = present.peek() else {
                continue;
            };
            data.clear();
            for (_, record) in present {
                // Added records were checked to fit a 16-bit length.
                data.extend_from_slice(&(record.len() as u16).to_be_bytes());
                data.extend_from_slice(record);
            }
            new_sets.push(RRset {
                rtype: code,
                count: change.count.min(usize::from(u16::MAX)) as u16,
                ttl,
                rdata_offset: self.rdata.append(&data).ok_or(Full)?,
            });
        }
        new_sets.extend(old);
        let id = match id {
            Some(id) => id,
            None if new_sets.is_empty() => return Ok(()),
            None => self.create(owner)?,
        };
        self.garbage += old_sets.len() * size_of::<RRset>();
        let rrset_start = if new_sets.is_empty() {
            0
        } else {
            self.rrsets.append(&new_sets).ok_or(Full)?
        };
        let node = self.nodes.get_mut(id);
        node.rrset_start = rrset_start;
        node.rrset_count = new_sets.len().min(usize::from(u16::MAX)) as u16;
        node.flags = (node.flags & (FLAG_APEX | FLAG_WILDCARD_CHILD))
            | model::data_flags(id == 0, &new_sets);
        if new_sets.is_empty() {
            self.prune(id);
        } else {
            self.touched.push(id);
        }
        Ok(())
    }

    /// The node of a lowercase name.
    fn find(&self, lower: &[u8]) -> Option<NodeId> {
        let hash = self.hasher.hash(lower);
        self.index[model::shard_of(hash)]
            .find(hash, |&id| self.name(id) == lower)
            .copied()
    }

    /// The lowercase wire name of a node.
    fn name(&self, id: NodeId) -> &[u8] {
        let node = self.nodes.get(id);
        self.names
            .slice(node.name_offset, usize::from(node.name_len))
    }

    /// The RRsets of a node.
    fn rrsets_of(&self, id: NodeId) -> &[RRset] {
        let node = self.nodes.get(id);
        self.rrsets
            .slice(node.rrset_start, usize::from(node.rrset_count))
    }

    /// Bytes of record data an RRset holds.
    fn set_size(&self, set: &RRset) -> usize {
        let data = self.rdata.rest(set.rdata_offset);
        let mut end = 0;
        for _ in 0..set.count {
            let Some(len) = data.get(end..end + 2) else {
                break;
            };
            end += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        }
        end
    }

    /// Creates the node of `owner` (below the apex, not yet a node), and
    /// its missing ancestors as empty non-terminals.
    fn create(&mut self, owner: &[u8]) -> Result<NodeId, Full> {
        // Suffixes of `owner` that are not nodes yet, longest first. The
        // apex is always a node, so the walk stops at the latest there.
        let mut missing = vec![0];
        let mut parent = loop {
            let current = missing[missing.len() - 1];
            let Some(step) = name::parent_offset(&owner[current..]) else {
                break 0;
            };
            if let Some(parent) = self.find(&owner[current + step..]) {
                break parent;
            }
            missing.push(current + step);
        };
        for &offset in missing.iter().rev() {
            parent = self.add_node(&owner[offset..], parent)?;
        }
        Ok(parent)
    }

    /// Adds a node with no data below `parent`.
    fn add_node(&mut self, lower: &[u8], parent: NodeId) -> Result<NodeId, Full> {
        let id = NodeId::try_from(self.nodes.len())
            .ok()
            .filter(|&id| id < NO_NODE - 1)
            .ok_or(Full)?;
        let mut node = Node {
            name_offset: self.names.append(lower).ok_or(Full)?,
            name_len: lower.len() as u8,
            flags: 0,
            rrset_count: 0,
            rrset_start: 0,
            parent,
            guard: NO_NODE,
            children: 0,
        };
        // A new name is never a zone cut itself (new cuts rebuild).
        node.guard = model::child_guard(self.nodes.get(parent), parent, &node, id);
        self.nodes.push(node);
        let parent_node = self.nodes.get_mut(parent);
        parent_node.children += 1;
        if model::is_wildcard(lower) {
            parent_node.flags |= FLAG_WILDCARD_CHILD;
        }
        let hash = self.hasher.hash(lower);
        let Editor {
            names,
            nodes,
            index,
            hasher,
            ..
        } = self;
        Arc::make_mut(&mut index[model::shard_of(hash)]).insert_unique(hash, id, |&other| {
            let node = nodes.get(other);
            hasher.hash(names.slice(node.name_offset, usize::from(node.name_len)))
        });
        Ok(id)
    }

    /// Deletes `id` if it has neither data nor children, then its parent
    /// if that leaves it an empty non-terminal with no children, and so on
    /// up (never the apex).
    fn prune(&mut self, mut id: NodeId) {
        loop {
            let node = *self.nodes.get(id);
            let idle = node.rrset_count == 0 && node.children == 0;
            if id == 0 || !idle || node.flags & FLAG_REMOVED != 0 {
                return;
            }
            let lower = self.name(id);
            let wildcard = model::is_wildcard(lower);
            let hash = self.hasher.hash(lower);
            if let Ok(entry) = Arc::make_mut(&mut self.index[model::shard_of(hash)])
                .find_entry(hash, |&other| other == id)
            {
                entry.remove();
            }
            self.nodes.get_mut(id).flags = FLAG_REMOVED;
            self.garbage += size_of::<Node>() + usize::from(node.name_len);
            let parent = self.nodes.get_mut(node.parent);
            parent.children = parent.children.saturating_sub(1);
            if wildcard {
                parent.flags &= !FLAG_WILDCARD_CHILD;
            }
            id = node.parent;
        }
    }

    /// The finished version (SOA values still to be read from the apex).
    fn finish(self) -> Zone {
        Zone {
            apex: self.apex,
            names: self.names.finish(),
            nodes: self.nodes.finish(),
            rrsets: self.rrsets.finish(),
            rdata: self.rdata.finish(),
            index: self.index.into_boxed_slice(),
            hasher: self.hasher,
            soa: model::SoaFields::default(),
            record_count: self.record_count,
            garbage: self.garbage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(serial: u32, extra: &str) -> Zone {
        zone_with_www(serial, 80, extra)
    }

    fn zone_with_www(serial: u32, www: u8, extra: &str) -> Zone {
        let text = format!(
            "@ 3600 IN SOA ns1 admin {serial} 3600 600 86400 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\nwww 300 IN A 192.0.2.{www}\n{extra}"
        );
        crate::zone::build::zone_from_text("example.test.", &text)
    }

    fn soa(serial: u32) -> Record {
        let z = zone(serial, "");
        let set = z.rrset(z.apex_id(), rtype::SOA).unwrap();
        Record {
            owner: z.apex().clone(),
            rtype: rtype::SOA,
            ttl: set.ttl,
            rdata: z.records(set).next().unwrap().into(),
        }
    }

    fn record(owner: &str, code: u16, rdata: &[u8]) -> Record {
        Record {
            owner: Name::parse(owner).unwrap(),
            rtype: code,
            ttl: 300,
            rdata: rdata.into(),
        }
    }

    fn a(owner: &str, last: u8) -> Record {
        record(owner, rtype::A, &[192, 0, 2, last])
    }

    fn diff(from: u32, removed: Vec<Record>, added: Vec<Record>) -> Diff {
        let mut diff = Diff {
            from_serial: from,
            to_serial: from + 1,
            removed: vec![soa(from)],
            added: vec![soa(from + 1)],
        };
        diff.removed.extend(removed);
        diff.added.extend(added);
        diff
    }

    /// Every record as (owner, type, TTL, data), sorted.
    fn records(z: &Zone) -> Vec<(Vec<u8>, u16, u32, Vec<u8>)> {
        let mut all: Vec<_> = z
            .iter_records()
            .map(|(o, s, d)| (o.to_vec(), s.rtype, s.ttl, d.to_vec()))
            .collect();
        all.sort();
        all
    }

    fn wire(text: &str) -> Vec<u8> {
        Name::parse(text).unwrap().as_wire().to_vec()
    }

    /// The names an incremental version answers for, with what the answer
    /// path reads of each, against a version built in full.
    fn assert_same_structure(incremental: &Zone, full: &Zone) {
        let indexed: usize = incremental.index.iter().map(|shard| shard.len()).sum();
        assert_eq!(indexed, full.node_count(), "names in the index");
        let name_of = |z: &Zone, id: NodeId| (id != NO_NODE).then(|| z.node_name(id).to_vec());
        for id in full.node_ids() {
            let owner = full.node_name(id);
            let Some(other) = incremental.find(owner) else {
                panic!("{owner:?} missing from the incremental version");
            };
            let (expected, got) = (full.node(id), incremental.node(other));
            assert_eq!(got.flags, expected.flags, "flags of {owner:?}");
            assert_eq!(got.children, expected.children, "children of {owner:?}");
            assert_eq!(
                name_of(incremental, got.parent),
                name_of(full, expected.parent),
                "parent of {owner:?}"
            );
            assert_eq!(
                name_of(incremental, got.guard),
                name_of(full, expected.guard),
                "guard of {owner:?}"
            );
            let types = |z: &Zone, id| -> Vec<(u16, u32, u16)> {
                z.rrsets(id)
                    .iter()
                    .map(|s| (s.rtype, s.ttl, s.count))
                    .collect()
            };
            assert_eq!(types(incremental, other), types(full, id), "{owner:?}");
        }
        assert_eq!(incremental.record_count(), full.record_count());
        assert_eq!(incremental.serial(), full.serial());
        assert_eq!(incremental.negative_ttl(), full.negative_ttl());
    }

    #[test]
    fn diff_replaces_a_record_and_moves_the_serial() {
        let old = zone(1, "");
        let change = diff(
            1,
            vec![a("www.example.test.", 80)],
            vec![a("www.example.test.", 81)],
        );
        let new = apply_diffs(&old, &[change]).unwrap();
        assert_eq!(records(&new), records(&zone_with_www(2, 81, "")));
        assert_eq!(new.serial(), 2);
        assert_same_structure(&new, &zone_with_www(2, 81, ""));
    }

    #[test]
    fn applying_leaves_the_old_version_unchanged() {
        let old = zone(1, "sub.deep 300 IN A 192.0.2.9\n*.wild 300 IN TXT \"x\"\n");
        let before = records(&old);
        let change = diff(
            1,
            vec![
                a("www.example.test.", 80),
                record("sub.deep.example.test.", rtype::A, &[192, 0, 2, 9]),
                record("*.wild.example.test.", rtype::TXT, b"\x01x"),
            ],
            vec![a("new.name.example.test.", 5), a("ns1.example.test.", 2)],
        );
        let new = apply_diffs(&old, &[change]).unwrap();
        assert_eq!(records(&old), before);
        assert_same_structure(
            &old,
            &zone(1, "sub.deep 300 IN A 192.0.2.9\n*.wild 300 IN TXT \"x\"\n"),
        );
        for gone in [
            "www.example.test.",
            "sub.deep.example.test.",
            "deep.example.test.",
            "wild.example.test.",
        ] {
            assert!(old.find(&wire(gone)).is_some(), "{gone} in the old version");
            assert!(new.find(&wire(gone)).is_none(), "{gone} in the new version");
        }
        let wild = old.find(&wire("wild.example.test.")).unwrap();
        assert_ne!(old.node(wild).flags & FLAG_WILDCARD_CHILD, 0);
        assert!(old.find(&wire("name.example.test.")).is_none());
        assert!(new.find(&wire("name.example.test.")).is_some());
        assert_eq!(old.serial(), 1);
    }

    #[test]
    fn diff_for_another_serial_is_refused() {
        let old = zone(1, "");
        let change = Diff {
            from_serial: 5,
            to_serial: 6,
            removed: vec![soa(5)],
            added: vec![soa(6)],
        };
        assert!(apply_diffs(&old, &[change]).is_err());
    }

    #[test]
    fn removing_a_missing_record_is_refused() {
        let old = zone(1, "");
        let change = diff(1, vec![a("nope.example.test.", 1)], vec![]);
        let err = apply_diffs(&old, &[change]).unwrap_err();
        assert!(err[0].contains("does not have"), "{err:?}");
    }

    #[test]
    fn refused_diffs_leave_the_old_version_as_it_was() {
        let old = zone(1, "alias 300 IN CNAME www\n");
        let before = records(&old);
        let cname_clash = diff(1, vec![], vec![a("alias.example.test.", 3)]);
        let no_apex_ns = diff(
            1,
            vec![record(
                "example.test.",
                rtype::NS,
                &wire("ns1.example.test."),
            )],
            vec![],
        );
        let outside = diff(1, vec![], vec![a("www.example.other.", 3)]);
        let glue_only = diff(
            1,
            vec![],
            vec![
                record(
                    "child.example.test.",
                    rtype::NS,
                    &wire("ns.child.example.test."),
                ),
                record("x.child.example.test.", rtype::TXT, b"\x01x"),
            ],
        );
        for (change, expected) in [
            (cname_clash, "next to other data"),
            (no_apex_ns, "no NS records"),
            (outside, "out-of-zone"),
            (glue_only, "only glue"),
        ] {
            let err = apply_diffs(&old, &[change]).unwrap_err();
            assert!(err.iter().any(|e| e.contains(expected)), "{err:?}");
            assert_eq!(records(&old), before);
            assert_eq!(old.serial(), 1);
        }
    }

    #[test]
    fn chained_sequences_apply_in_order() {
        let old = zone(1, "");
        let first = diff(1, vec![], vec![a("new.example.test.", 7)]);
        let second = diff(
            2,
            vec![a("new.example.test.", 7)],
            vec![a("new.example.test.", 8)],
        );
        let new = apply_diffs(&old, &[first, second]).unwrap();
        assert_eq!(records(&new), records(&zone(3, "new 300 IN A 192.0.2.8\n")));
    }

    #[test]
    fn added_then_removed_record_is_gone() {
        // Adding a record the zone has changes nothing; removing it later
        // removes it.
        let old = zone(1, "");
        let first = diff(1, vec![], vec![a("www.example.test.", 80)]);
        let second = diff(2, vec![a("www.example.test.", 80)], vec![]);
        let new = apply_diffs(&old, &[first, second]).unwrap();
        assert!(new.find(&wire("www.example.test.")).is_none());
        assert_eq!(new.record_count(), old.record_count() - 1);
    }

    #[test]
    fn new_delegation_rebuilds_and_guards_its_subtree() {
        let old = zone(1, "a.sub 300 IN A 192.0.2.3\n");
        let change = diff(
            1,
            vec![],
            vec![record(
                "sub.example.test.",
                rtype::NS,
                &wire("a.sub.example.test."),
            )],
        );
        let new = apply_diffs(&old, &[change]).unwrap();
        let cut = new.find(&wire("sub.example.test.")).unwrap();
        let glue = new.find(&wire("a.sub.example.test.")).unwrap();
        assert_eq!(new.node(glue).guard, cut);
        assert_ne!(new.node(cut).flags & FLAG_CUT, 0);
        let expected = zone(2, "a.sub 300 IN A 192.0.2.3\nsub 300 IN NS a.sub\n");
        assert_same_structure(&new, &expected);
    }

    #[test]
    fn compaction_keeps_the_data_and_drops_the_waste() {
        let mut current = zone(1, "");
        for serial in 1..200u32 {
            let last = (serial % 250) as u8;
            let change = diff(
                serial,
                vec![a(
                    "www.example.test.",
                    if serial == 1 { 80 } else { last - 1 },
                )],
                vec![a("www.example.test.", last)],
            );
            current = apply_diffs(&current, &[change]).unwrap();
            assert!(current.garbage_bytes() <= current.stored_bytes() / 4);
        }
        assert_eq!(records(&current), records(&zone_with_www(200, 199, "")));
    }

    #[test]
    fn rrsets_larger_than_a_chunk_change_incrementally() {
        // 400 TXT records of 200 bytes: 80 KB, more than one arena chunk.
        let txt = |i: u16| {
            let mut data = vec![199u8];
            data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, 197));
            data.extend(i.to_be_bytes());
            record("big.example.test.", rtype::TXT, &data)
        };
        let old = apply_diffs(
            &zone(1, ""),
            &[diff(1, vec![], (0..400).map(txt).collect())],
        )
        .unwrap();
        let big = old.find(&wire("big.example.test.")).unwrap();
        assert_eq!(old.rrset(big, rtype::TXT).unwrap().count, 400);
        let new = apply_diffs(&old, &[diff(2, vec![txt(7)], vec![txt(400), txt(401)])]).unwrap();
        let set = new
            .rrset(new.find(&wire("big.example.test.")).unwrap(), rtype::TXT)
            .unwrap();
        assert_eq!(set.count, 401);
        let data: Vec<&[u8]> = new.records(set).collect();
        assert_eq!(data.len(), 401);
        assert!(data.iter().all(|d| d.len() == 200));
        assert!(!data.contains(&&*txt(7).rdata));
        assert_eq!(new.rrset_data(set).len(), 401 * 202);
        assert_eq!(
            old.records(old.rrset(big, rtype::TXT).unwrap()).count(),
            400
        );
    }

    use crate::zone::model::FLAG_CUT;
    use proptest::prelude::*;

    /// Names the random zones use: the first label says what may live there.
    /// `d` may be a delegation (NS, glue below), `c` holds a CNAME, `e` a
    /// DNAME; the others hold ordinary data. `*` makes wildcards.
    fn test_names() -> Vec<String> {
        let mut names = Vec::new();
        for top in ["a", "b", "*", "c", "d", "e"] {
            names.push(format!("{top}.example.test."));
            for sub in ["a", "b", "*"] {
                names.push(format!("{sub}.{top}.example.test."));
                for deeper in ["a", "*"] {
                    names.push(format!("{deeper}.{sub}.{top}.example.test."));
                }
            }
        }
        names
    }

    /// A random record: the owner picks from [`test_names`]; the type follows
    /// the owner's role unless `any_type`.
    fn random_record(owner: usize, kind: u8, value: u8, ttl: bool, any_type: bool) -> Record {
        let names = test_names();
        let owner = &names[owner % names.len()];
        let top = owner.split('.').rev().nth(3).unwrap_or("a");
        let below_top = owner.matches('.').count() > 3;
        let value = value % 3;
        let code = match (any_type, top, below_top) {
            (false, "d", true) => [rtype::A, rtype::AAAA][usize::from(kind % 2)],
            (false, "d", false) => [rtype::NS, rtype::A, rtype::AAAA][usize::from(kind % 3)],
            (false, "c", false) => rtype::CNAME,
            (false, "e", false) => [rtype::DNAME, rtype::A][usize::from(kind % 2)],
            _ => [
                rtype::A,
                rtype::AAAA,
                rtype::TXT,
                rtype::MX,
                rtype::NS,
                rtype::CNAME,
            ][usize::from(kind % if any_type { 6 } else { 4 })],
        };
        let rdata = match code {
            rtype::A => vec![10, 0, 0, value],
            rtype::AAAA => [vec![0x20, 1, 0xd, 0xb8], vec![0; 11], vec![value]].concat(),
            rtype::TXT => vec![1, b'a' + value],
            rtype::MX => [vec![0, 10], wire(&format!("mx{value}.example.test."))].concat(),
            rtype::NS => wire(&format!("ns{value}.{owner}")),
            rtype::CNAME => wire("a.example.test."),
            _ => wire("target.test."),
        };
        Record {
            owner: Name::parse(owner).unwrap(),
            rtype: code,
            ttl: if ttl { 600 } else { 300 },
            rdata: rdata.into(),
        }
    }

    /// The zone holding `records` (in this order) plus the SOA and apex NS.
    fn build(serial: u32, records: &[Record]) -> Result<Zone, Vec<String>> {
        let apex = Name::parse("example.test.").unwrap();
        let mut builder = ZoneBuilder::new(&apex);
        let mut all = vec![
            soa(serial),
            record("example.test.", rtype::NS, &wire("ns1.example.test.")),
        ];
        all.extend(records.iter().cloned());
        for r in &all {
            builder
                .add(&MasterRecord {
                    owner: r.owner.as_wire(),
                    class: class::IN,
                    rtype: r.rtype,
                    ttl: r.ttl,
                    rdata: &r.rdata,
                    file: Path::new("t"),
                    line: 0,
                })
                .unwrap();
        }
        builder.finish()
    }

    /// One change a random difference makes.
    #[derive(Debug, Clone)]
    struct Op {
        remove: bool,
        pick: usize,
        owner: usize,
        kind: u8,
        value: u8,
        ttl: bool,
        any_type: bool,
    }

    fn op() -> impl Strategy<Value = Op> {
        (
            any::<u8>(),
            any::<usize>(),
            0usize..1000,
            any::<u8>(),
            any::<u8>(),
            any::<bool>(),
            0u8..20,
        )
            .prop_map(|(remove, pick, owner, kind, value, ttl, any_type)| Op {
                remove: remove % 5 < 2,
                pick,
                owner,
                kind,
                value,
                ttl,
                any_type: any_type == 0,
            })
    }

    fn seed() -> impl Strategy<Value = Vec<(usize, u8, u8, bool)>> {
        proptest::collection::vec(
            (0usize..1000, any::<u8>(), any::<u8>(), any::<bool>()),
            0..40,
        )
    }

    /// Replays a difference on the model (records in zone order); `false`
    /// when it removes a record the model does not have.
    fn replay(model: &mut Vec<Record>, removed: &[Record], added: &[Record]) -> bool {
        let same =
            |a: &Record, b: &Record| a.owner == b.owner && a.rtype == b.rtype && a.rdata == b.rdata;
        for r in removed {
            match model.iter().position(|m| same(m, r)) {
                Some(i) => {
                    model.remove(i);
                }
                None => return false,
            }
        }
        for r in added {
            if !model.iter().any(|m| same(m, r)) {
                model.push(r.clone());
            }
        }
        true
    }

    /// Gives every record of the model its RRset's TTL in `zone`, as a
    /// built zone does (the first record's TTL wins).
    fn normalise_ttls(model: &mut [Record], zone: &Zone) {
        for r in model {
            let id = zone.find(r.owner.as_wire()).unwrap();
            r.ttl = zone.rrset(id, r.rtype).unwrap().ttl;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Chains of random differences applied incrementally give the zone
        /// a full build of the final records gives, or are refused exactly
        /// when that build (or the removal of a missing record) fails; and
        /// no version changes once made.
        #[test]
        fn incremental_versions_equal_full_builds(
            seed in seed(),
            batches in proptest::collection::vec(
                (proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..3), any::<bool>()),
                1..5,
            ),
        ) {
            let mut model: Vec<Record> = Vec::new();
            for (owner, kind, value, ttl) in seed {
                let r = random_record(owner, kind, value, ttl, false);
                replay(&mut model, &[], &[r]);
            }
            let mut current = match build(1, &model) {
                Ok(zone) => zone,
                // Two different NS at d with data below, say: not a start.
                Err(_) => return Ok(()),
            };
            normalise_ttls(&mut model, &current);
            let mut serial = 1;
            let mut versions = vec![(records(&current), current.serial())];
            let mut kept = Vec::new();
            for (batch, compact) in batches {
                let mut next_model = model.clone();
                let mut diffs = Vec::new();
                let mut missing = false;
                let mut to = serial;
                for ops in batch {
                    let mut removed = Vec::new();
                    let mut added = Vec::new();
                    for op in ops {
                        if op.remove && !next_model.is_empty() {
                            let r = next_model[op.pick % next_model.len()].clone();
                            if !removed.contains(&r) {
                                removed.push(r);
                            }
                        } else if op.remove {
                            removed.push(random_record(op.owner, op.kind, op.value, op.ttl, op.any_type));
                        } else {
                            added.push(random_record(op.owner, op.kind, op.value, op.ttl, op.any_type));
                        }
                    }
                    missing |= !replay(&mut next_model, &removed, &added);
                    diffs.push(diff(to, removed, added));
                    to += 1;
                }
                let compaction = if compact { Compaction::WhenWasteful } else { Compaction::Never };
                let result = apply_with(&current, &diffs, compaction);
                let expected = if missing { Err(vec![]) } else { build(to, &next_model) };
                match (result, expected) {
                    (Ok(next), Ok(full)) => {
                        prop_assert_eq!(records(&next), records(&full));
                        assert_same_structure(&next, &full);
                        model = next_model;
                        normalise_ttls(&mut model, &full);
                        serial = to;
                        versions.push((records(&next), next.serial()));
                        kept.push(std::mem::replace(&mut current, next));
                    }
                    (Err(_), Err(_)) => {}
                    (Ok(_), Err(problems)) => prop_assert!(false, "applied, but a full build says {problems:?}"),
                    (Err(problems), Ok(_)) => prop_assert!(false, "refused: {problems:?}"),
                }
            }
            kept.push(current);
            for (zone, (expected, serial)) in kept.iter().zip(&versions) {
                prop_assert_eq!(&records(zone), expected);
                prop_assert_eq!(zone.serial(), *serial);
            }
        }
    }
}
