//! Turns a stream of records into a checked, immutable [`Zone`].
//!
//! The builder interns owner names as records arrive, then sorts the records
//! once, groups them into RRsets, adds empty non-terminals, computes the flags
//! the answer path needs and runs the zone checks (one SOA at the apex, NS at
//! the apex, CNAME exclusivity, one DNAME, only glue below a cut). Every
//! problem names the file and line of the record at fault.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use hashbrown::{DefaultHashBuilder, HashTable};
use tracing::warn;

use super::master::MasterRecord;
use super::model::{
    self, FLAG_APEX, FLAG_CNAME, FLAG_CUT, FLAG_DNAME, FLAG_WILDCARD_CHILD, NO_NODE, Node, NodeId,
    RRset, Zone,
};
use super::name::{self, Name};
use super::rr::{self, rtype};

/// Most problems reported for one zone; further ones are counted only.
const MAX_PROBLEMS: usize = 50;

/// A record waiting for the final sort into RRsets.
#[derive(Debug, Clone, Copy)]
struct Pending {
    node: NodeId,
    rtype: u16,
    rdata_len: u16,
    ttl: u32,
    rdata_offset: u32,
    file: u16,
    line: u32,
}

/// Collects records of one zone and builds it.
#[derive(Debug)]
pub struct ZoneBuilder {
    apex: Name,
    names: Vec<u8>,
    nodes: Vec<Node>,
    index: HashTable<NodeId>,
    hasher: DefaultHashBuilder,
    pending: Vec<Pending>,
    rdata: Vec<u8>,
    files: Vec<PathBuf>,
    problems: Vec<String>,
    extra_problems: usize,
}

impl ZoneBuilder {
    /// A builder for the zone at `apex`.
    pub fn new(apex: &Name) -> ZoneBuilder {
        let mut builder = ZoneBuilder {
            apex: apex.to_lowercase(),
            names: Vec::new(),
            nodes: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            pending: Vec::new(),
            rdata: Vec::new(),
            files: Vec::new(),
            problems: Vec::new(),
            extra_problems: 0,
        };
        let apex_wire = builder.apex.as_wire().to_vec();
        builder.intern(&apex_wire);
        builder
    }

    /// Reserves room for about `records` records and `names` owner names.
    pub fn reserve(&mut self, records: usize, names: usize) {
        self.pending.reserve(records);
        self.nodes.reserve(names);
        let hasher = &self.hasher;
        let (all_names, nodes) = (&self.names, &self.nodes);
        self.index.reserve(names, |&id| {
            let node = &nodes[id as usize];
            let start = node.name_offset as usize;
            hasher.hash_one(&all_names[start..start + usize::from(node.name_len)])
        });
        self.names.reserve(names * 16);
        self.rdata.reserve(records * 8);
    }

    /// Adds one record. Records outside the zone, of a class other than IN,
    /// or of a meta type are reported as problems (returned as `Err` so a
    /// caller can attach its own location) and not stored.
    pub fn add(&mut self, record: &MasterRecord<'_>) -> Result<(), String> {
        let MasterRecord {
            owner,
            class,
            rtype: code,
            ttl,
            rdata,
            file,
            line,
        } = *record;
        if !name::is_subdomain(owner, self.apex.as_wire()) {
            return Err(format!(
                "out-of-zone record {} (zone is {})",
                display_wire(owner),
                self.apex
            ));
        }
        if class != rr::class::IN {
            return Err(format!("class {class} record in an IN zone"));
        }
        if rr::is_meta_type(code) {
            return Err(format!(
                "{} is not allowed in zone data",
                rr::rtype_name(code)
            ));
        }
        let rdata_len =
            u16::try_from(rdata.len()).map_err(|_| "record data longer than 65535".to_string())?;
        // Records of one owner usually come together: skip the hash probe.
        let node = match self.pending.last() {
            Some(last) if self.node_name(last.node) == owner => last.node,
            _ if owner.iter().any(u8::is_ascii_uppercase) => {
                self.intern(&owner.to_ascii_lowercase())
            }
            _ => self.intern(owner),
        };
        let file = self.file_index(file);
        let rdata_offset = u32::try_from(self.rdata.len())
            .map_err(|_| "zone data larger than 4 GiB".to_string())?;
        self.rdata.extend_from_slice(rdata);
        self.pending.push(Pending {
            node,
            rtype: code,
            rdata_len,
            ttl,
            rdata_offset,
            file,
            line,
        });
        Ok(())
    }

    /// Records a problem found outside `add` (e.g. by the parser).
    pub fn problem(&mut self, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(message);
        } else {
            self.extra_problems += 1;
        }
    }

    /// Builds the zone, or returns every problem found.
    pub fn finish(mut self) -> Result<Zone, Vec<String>> {
        self.add_ancestors();
        self.pending
            .sort_unstable_by_key(|p| (p.node, p.rtype, p.rdata_offset));
        let (rrsets, rdata, record_count) = self.group_rrsets();
        let mut zone = Zone {
            apex: self.apex.clone(),
            names: std::mem::take(&mut self.names),
            nodes: std::mem::take(&mut self.nodes),
            rrsets,
            rdata,
            index: std::mem::take(&mut self.index),
            hasher: self.hasher.clone(),
            soa: model::SoaFields::default(),
            record_count,
        };
        self.set_flags(&mut zone);
        compute_guards(&mut zone);
        self.check(&mut zone);
        if self.extra_problems > 0 {
            self.problems
                .push(format!("... and {} more problems", self.extra_problems));
        }
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        zone.names.shrink_to_fit();
        zone.nodes.shrink_to_fit();
        zone.rrsets.shrink_to_fit();
        zone.rdata.shrink_to_fit();
        Ok(zone)
    }

    fn file_index(&mut self, file: &Path) -> u16 {
        if let Some(pos) = self.files.iter().rposition(|f| f == file) {
            return pos as u16;
        }
        if self.files.len() >= usize::from(u16::MAX) {
            return u16::MAX;
        }
        self.files.push(file.to_path_buf());
        (self.files.len() - 1) as u16
    }

    fn location(&self, file: u16, line: u32) -> String {
        let file = self
            .files
            .get(usize::from(file))
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "?".to_string());
        format!("{file}:{line}")
    }

    /// Returns the node of a lowercase name, creating it if needed.
    fn intern(&mut self, lower: &[u8]) -> NodeId {
        let hash = self.hasher.hash_one(lower);
        let names = &self.names;
        let nodes = &self.nodes;
        let found = self.index.find(hash, |&id| {
            let node = &nodes[id as usize];
            let start = node.name_offset as usize;
            &names[start..start + usize::from(node.name_len)] == lower
        });
        if let Some(&id) = found {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            name_offset: self.names.len() as u32,
            name_len: lower.len() as u8,
            flags: 0,
            rrset_count: 0,
            rrset_start: 0,
            parent: NO_NODE,
            guard: NO_NODE,
        });
        self.names.extend_from_slice(lower);
        let hasher = &self.hasher;
        let names = &self.names;
        let nodes = &self.nodes;
        self.index.insert_unique(hash, id, |&other| {
            let node = &nodes[other as usize];
            let start = node.name_offset as usize;
            hasher.hash_one(&names[start..start + usize::from(node.name_len)])
        });
        id
    }

    /// Links every node to its parent, creating empty non-terminals.
    fn add_ancestors(&mut self) {
        let mut id = 1;
        let mut parent_name = Vec::with_capacity(name::MAX_NAME_LEN);
        let mut last_parent = NO_NODE;
        while (id as usize) < self.nodes.len() {
            let node = self.nodes[id as usize];
            let start = node.name_offset as usize;
            let wire = &self.names[start..start + usize::from(node.name_len)];
            if let Some(step) = name::parent_offset(wire) {
                // Siblings usually follow each other: reuse the last parent.
                let parent =
                    if last_parent != NO_NODE && self.node_name(last_parent) == &wire[step..] {
                        last_parent
                    } else {
                        parent_name.clear();
                        parent_name.extend_from_slice(&wire[step..]);
                        self.intern(&parent_name)
                    };
                self.nodes[id as usize].parent = parent;
                last_parent = parent;
            }
            id += 1;
        }
    }

    /// The lowercase wire name of a node being built.
    fn node_name(&self, id: NodeId) -> &[u8] {
        let node = &self.nodes[id as usize];
        let start = node.name_offset as usize;
        &self.names[start..start + usize::from(node.name_len)]
    }

    /// Groups the sorted records into RRsets, removing duplicates, and lays
    /// the data out in RRset order.
    fn group_rrsets(&mut self) -> (Vec<RRset>, Vec<u8>, usize) {
        let mut rrsets = Vec::with_capacity(self.pending.len());
        let mut rdata = Vec::with_capacity(self.rdata.len() + 2 * self.pending.len());
        let mut record_count = 0;
        let mut kept: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let first = self.pending[i];
            let mut end = i + 1;
            while end < self.pending.len()
                && self.pending[end].node == first.node
                && self.pending[end].rtype == first.rtype
            {
                end += 1;
            }
            let set_start = rdata.len();
            kept.clear();
            for record in &self.pending[i..end] {
                let data = &self.rdata[record.rdata_offset as usize
                    ..record.rdata_offset as usize + usize::from(record.rdata_len)];
                if kept.iter().any(|&(s, l)| &rdata[s..s + l] == data) {
                    continue;
                }
                if record.ttl != first.ttl {
                    warn!(
                        "{}: TTL {} differs from the RRset's TTL {}; using {}",
                        self.location(record.file, record.line),
                        record.ttl,
                        first.ttl,
                        first.ttl
                    );
                }
                rdata.extend_from_slice(&record.rdata_len.to_be_bytes());
                kept.push((rdata.len(), data.len()));
                rdata.extend_from_slice(data);
            }
            let node = &mut self.nodes[first.node as usize];
            if node.rrset_count == 0 {
                node.rrset_start = rrsets.len() as u32;
            }
            node.rrset_count += 1;
            record_count += kept.len();
            rrsets.push(RRset {
                rtype: first.rtype,
                count: kept.len().min(usize::from(u16::MAX)) as u16,
                ttl: first.ttl,
                rdata_offset: set_start as u32,
            });
            i = end;
        }
        (rrsets, rdata, record_count)
    }

    fn set_flags(&self, zone: &mut Zone) {
        zone.nodes[0].flags |= FLAG_APEX;
        for id in 0..zone.nodes.len() as NodeId {
            let mut flags = 0;
            for set in zone.rrsets(id) {
                match set.rtype {
                    rtype::NS if id != 0 => flags |= FLAG_CUT,
                    rtype::DNAME => flags |= FLAG_DNAME,
                    rtype::CNAME => flags |= FLAG_CNAME,
                    _ => {}
                }
            }
            zone.nodes[id as usize].flags |= flags;
            let wire = zone.node_name(id);
            if wire.len() >= 2 && wire[0] == 1 && wire[1] == b'*' {
                let parent = zone.nodes[id as usize].parent;
                if parent != NO_NODE {
                    zone.nodes[parent as usize].flags |= FLAG_WILDCARD_CHILD;
                }
            }
        }
    }

    /// The location of the first record of a type at a node.
    fn record_location(&self, node: NodeId, code: u16) -> String {
        let found = self
            .pending
            .binary_search_by_key(&(node, code, 0), |p| (p.node, p.rtype, 0))
            .ok()
            .or_else(|| {
                self.pending
                    .iter()
                    .position(|p| p.node == node && p.rtype == code)
            });
        match found {
            Some(pos) => {
                // binary_search may land on any record of the RRset: step back.
                let mut pos = pos;
                while pos > 0
                    && self.pending[pos - 1].node == node
                    && self.pending[pos - 1].rtype == code
                {
                    pos -= 1;
                }
                let p = self.pending[pos];
                self.location(p.file, p.line)
            }
            None => self
                .files
                .first()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
        }
    }

    fn check(&mut self, zone: &mut Zone) {
        self.check_apex(zone);
        for id in 0..zone.nodes.len() as NodeId {
            let node = *zone.node(id);
            let owner = || display_wire(zone.node_name(id));
            if node.flags & FLAG_CNAME != 0 {
                self.check_cname(zone, id, &owner());
            }
            if zone
                .rrset(id, rtype::DNAME)
                .is_some_and(|set| set.count > 1)
            {
                let at = self.record_location(id, rtype::DNAME);
                self.problem(format!("{at}: more than one DNAME at {}", owner()));
            }
            if id != 0 && zone.rrset(id, rtype::SOA).is_some() {
                let at = self.record_location(id, rtype::SOA);
                self.problem(format!("{at}: SOA record at {}, not at the apex", owner()));
            }
            if node.guard != NO_NODE {
                self.check_cut(zone, id, &node, &owner());
            }
        }
    }

    fn check_apex(&mut self, zone: &mut Zone) {
        let file = self
            .files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        match zone.rrset(0, rtype::SOA).copied() {
            None => self.problem(format!("{file}: no SOA record at the apex {}", zone.apex)),
            Some(set) if set.count > 1 => {
                let at = self.record_location(0, rtype::SOA);
                self.problem(format!("{at}: more than one SOA record at the apex"));
            }
            Some(set) => {
                let data = zone.records(&set).next().unwrap_or(&[]);
                match model::soa_fields(set.ttl, data) {
                    Some(fields) => zone.soa = fields,
                    None => {
                        let at = self.record_location(0, rtype::SOA);
                        self.problem(format!("{at}: malformed SOA record"));
                    }
                }
            }
        }
        if zone.rrset(0, rtype::NS).is_none() {
            self.problem(format!("{file}: no NS records at the apex {}", zone.apex));
        }
    }

    fn check_cname(&mut self, zone: &Zone, id: NodeId, owner: &str) {
        let at = self.record_location(id, rtype::CNAME);
        if zone.rrset(id, rtype::CNAME).is_some_and(|s| s.count > 1) {
            self.problem(format!("{at}: more than one CNAME at {owner}"));
        }
        let others: Vec<String> = zone
            .rrsets(id)
            .iter()
            .filter(|s| !matches!(s.rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
            .map(|s| rr::rtype_name(s.rtype).into_owned())
            .collect();
        if !others.is_empty() {
            self.problem(format!(
                "{at}: CNAME at {owner} next to other data ({})",
                others.join(", ")
            ));
        }
    }

    fn check_cut(&mut self, zone: &Zone, id: NodeId, node: &Node, owner: &str) {
        if node.flags & FLAG_CUT != 0 && node.guard == id {
            for set in zone.rrsets(id) {
                if !model::allowed_at_cut(set.rtype) {
                    let at = self.record_location(id, set.rtype);
                    self.problem(format!(
                        "{at}: {} at delegation point {owner} (only NS, DS and glue belong there)",
                        rr::rtype_name(set.rtype)
                    ));
                }
            }
        }
        if node.guard == NO_NODE || node.guard == id {
            return;
        }
        let guard = *zone.node(node.guard);
        if guard.flags & FLAG_CUT == 0 {
            // Below a DNAME: occluded, never served; not an error (RFC 6672 §2.4).
            return;
        }
        for set in zone.rrsets(id) {
            if !matches!(set.rtype, rtype::A | rtype::AAAA) {
                let at = self.record_location(id, set.rtype);
                self.problem(format!(
                    "{at}: {} at {owner} below the zone cut {} (only glue belongs there)",
                    rr::rtype_name(set.rtype),
                    display_wire(zone.node_name(node.guard))
                ));
            }
        }
    }
}

/// Sets every node's `guard`: the topmost zone cut at or above it, or the
/// topmost DNAME owner strictly above it.
fn compute_guards(zone: &mut Zone) {
    const UNKNOWN: NodeId = NO_NODE - 1;
    for node in zone.nodes.iter_mut() {
        node.guard = UNKNOWN;
    }
    zone.nodes[0].guard = NO_NODE;
    let mut chain = Vec::new();
    for id in 1..zone.nodes.len() as NodeId {
        let mut current = id;
        while zone.nodes[current as usize].guard == UNKNOWN {
            chain.push(current);
            current = zone.nodes[current as usize].parent;
            if current == NO_NODE {
                break;
            }
        }
        while let Some(child) = chain.pop() {
            let parent = zone.nodes[child as usize].parent;
            let guard = if parent == NO_NODE {
                NO_NODE
            } else {
                let parent_node = zone.nodes[parent as usize];
                if parent_node.guard != NO_NODE {
                    parent_node.guard
                } else if parent_node.flags & FLAG_DNAME != 0 {
                    parent
                } else if zone.nodes[child as usize].flags & FLAG_CUT != 0 {
                    child
                } else {
                    NO_NODE
                }
            };
            zone.nodes[child as usize].guard = guard;
        }
    }
}

fn display_wire(wire: &[u8]) -> String {
    let mut out = String::new();
    let _ = name::write_presentation(wire, &mut out);
    out
}
