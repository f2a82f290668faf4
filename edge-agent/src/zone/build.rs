//! Turns a stream of records into a checked, immutable [`Zone`].
//!
//! The builder interns owner names as records arrive, then sorts the records
//! once, groups them into RRsets, adds empty non-terminals, computes the flags
//! the answer path needs and runs the zone checks (one SOA at the apex, NS at
//! the apex, CNAME exclusivity, one DNAME, only glue below a cut). Every
//! problem names the file and line of the record at fault.

use std::path::{Path, PathBuf};

use hashbrown::HashTable;
use tracing::warn;

use super::master::MasterRecord;
use super::model::{
    self, Arena, ArenaWriter, BYTE_CHUNK, ChunkedVec, FLAG_APEX, FLAG_CNAME, FLAG_CUT,
    FLAG_WILDCARD_CHILD, NO_NODE, Node, NodeId, RRSET_CHUNK, RRset, Zone,
};
use super::name::{self, Name};
use super::rr::{self, rtype};

/// Most problems reported for one zone; further ones are counted only.
const MAX_PROBLEMS: usize = 50;

/// The problem reported when an arena cannot address more data.
const TOO_LARGE: &str = "zone data larger than 4 GiB";

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
    names: ArenaWriter<u8>,
    nodes: Vec<Node>,
    /// The name index, one table per shard (see [`model::shard_of`]).
    index: Vec<HashTable<NodeId>>,
    hasher: model::NameHasher,
    /// The 32 bits of each node's index hash, by node id: a growing table
    /// rehashes from these instead of reading and hashing every name again.
    hashes: Vec<u32>,
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
            names: ArenaWriter::new(BYTE_CHUNK),
            nodes: Vec::new(),
            index: model::new_index(),
            hasher: model::NameHasher::default(),
            hashes: Vec::new(),
            pending: Vec::new(),
            rdata: Vec::new(),
            files: Vec::new(),
            problems: Vec::new(),
            extra_problems: 0,
        };
        let apex_wire = builder.apex.as_wire().to_vec();
        // The first name of an empty arena always fits.
        let _ = builder.intern(&apex_wire);
        builder
    }

    /// Reserves room for about `records` records and `names` owner names.
    pub fn reserve(&mut self, records: usize, names: usize) {
        self.pending.reserve(records);
        self.nodes.reserve(names);
        self.hashes.reserve(names);
        // Names spread evenly over the shards; leave room for the spread.
        let per_shard = names / model::INDEX_SHARDS;
        let per_shard = per_shard + per_shard / 16 + 8;
        let hashes = &self.hashes;
        for shard in &mut self.index {
            shard.reserve(per_shard, |&id| {
                model::NameHasher::from_short(hashes[id as usize])
            });
        }
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
                name::display_wire(owner),
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
            Some(last) if self.node_name(last.node) == owner => Some(last.node),
            _ if owner.iter().any(u8::is_ascii_uppercase) => {
                self.intern(&owner.to_ascii_lowercase())
            }
            _ => self.intern(owner),
        }
        .ok_or_else(|| TOO_LARGE.to_string())?;
        let file = self.file_index(file);
        let rdata_offset = u32::try_from(self.rdata.len()).map_err(|_| TOO_LARGE.to_string())?;
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
        let Some((rrsets, rdata, record_count)) = self.group_rrsets() else {
            return Err(vec![TOO_LARGE.to_string()]);
        };
        let names = std::mem::replace(&mut self.names, ArenaWriter::new(0)).finish();
        let mut nodes = std::mem::take(&mut self.nodes);
        set_flags(&mut nodes, &names, &rrsets);
        compute_guards(&mut nodes);
        let mut zone = Zone {
            apex: self.apex.clone(),
            names,
            nodes: ChunkedVec::from_vec(&nodes),
            rrsets,
            rdata,
            index: model::freeze_index(std::mem::take(&mut self.index)),
            hasher: self.hasher.clone(),
            soa: model::SoaFields::default(),
            record_count,
            garbage: 0,
        };
        drop(nodes);
        self.check(&mut zone);
        if self.extra_problems > 0 {
            self.problems
                .push(format!("... and {} more problems", self.extra_problems));
        }
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
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

    /// Returns the node of a lowercase name, creating it if needed; `None`
    /// when the name arena is full.
    fn intern(&mut self, lower: &[u8]) -> Option<NodeId> {
        let short = self.hasher.short(lower);
        let hash = model::NameHasher::from_short(short);
        let shard = model::shard_of(hash);
        let (hashes, names, nodes) = (&self.hashes, &self.names, &self.nodes);
        let found = self.index[shard].find(hash, |&id| {
            hashes[id as usize] == short && name_of(names, &nodes[id as usize]) == lower
        });
        if let Some(&id) = found {
            return Some(id);
        }
        let id = self.nodes.len() as NodeId;
        let name_offset = self.names.append(lower)?;
        self.nodes.push(Node {
            name_offset,
            name_len: lower.len() as u8,
            flags: 0,
            rrset_count: 0,
            rrset_start: 0,
            parent: NO_NODE,
            guard: NO_NODE,
            children: 0,
        });
        self.hashes.push(short);
        let hashes = &self.hashes;
        self.index[shard].insert_unique(hash, id, |&other| {
            model::NameHasher::from_short(hashes[other as usize])
        });
        Some(id)
    }

    /// Links every node to its parent, creating empty non-terminals.
    fn add_ancestors(&mut self) {
        let mut id = 1;
        let mut parent_name = Vec::with_capacity(name::MAX_NAME_LEN);
        let mut last_parent = NO_NODE;
        while (id as usize) < self.nodes.len() {
            let wire = self.node_name(id);
            if let Some(step) = name::parent_offset(wire) {
                // Siblings usually follow each other: reuse the last parent.
                let parent =
                    if last_parent != NO_NODE && self.node_name(last_parent) == &wire[step..] {
                        last_parent
                    } else {
                        parent_name.clear();
                        parent_name.extend_from_slice(&wire[step..]);
                        match self.intern(&parent_name) {
                            Some(parent) => parent,
                            None => {
                                self.problem(TOO_LARGE.to_string());
                                return;
                            }
                        }
                    };
                self.nodes[id as usize].parent = parent;
                last_parent = parent;
            }
            id += 1;
        }
    }

    /// The lowercase wire name of a node being built.
    fn node_name(&self, id: NodeId) -> &[u8] {
        name_of(&self.names, &self.nodes[id as usize])
    }

    /// Groups the sorted records into RRsets, removing duplicates, and lays
    /// the data out in RRset order, each node's RRsets together; `None` when
    /// the data does not fit the arenas' addresses.
    fn group_rrsets(&mut self) -> Option<(Arena<RRset>, Arena<u8>, usize)> {
        let mut rrsets = ArenaWriter::new(RRSET_CHUNK);
        let mut rdata = ArenaWriter::new(BYTE_CHUNK);
        let mut record_count = 0;
        let mut node_sets: Vec<RRset> = Vec::new();
        // Records kept in the RRset being written: (offset in it, length).
        let mut kept: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let node = self.pending[i].node;
            node_sets.clear();
            while i < self.pending.len() && self.pending[i].node == node {
                let first = self.pending[i];
                let mut end = i + 1;
                while end < self.pending.len()
                    && self.pending[end].node == node
                    && self.pending[end].rtype == first.rtype
                {
                    end += 1;
                }
                let records = &self.pending[i..end];
                let most: usize = records.iter().map(|r| 2 + usize::from(r.rdata_len)).sum();
                // Written straight into the arena, duplicates skipped.
                let rdata_offset = rdata.start_run(most)?;
                let mut written = 0;
                kept.clear();
                for record in records {
                    let data = &self.rdata[record.rdata_offset as usize
                        ..record.rdata_offset as usize + usize::from(record.rdata_len)];
                    if !kept.is_empty() {
                        let set = rdata.run(rdata_offset);
                        if kept.iter().any(|&(s, l)| &set[s..s + l] == data) {
                            continue;
                        }
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
                    rdata.extend_run(&record.rdata_len.to_be_bytes());
                    rdata.extend_run(data);
                    kept.push((written + 2, data.len()));
                    written += 2 + data.len();
                }
                rdata.end_run();
                record_count += kept.len();
                node_sets.push(RRset {
                    rtype: first.rtype,
                    count: kept.len().min(usize::from(u16::MAX)) as u16,
                    ttl: first.ttl,
                    rdata_offset,
                });
                i = end;
            }
            let node = &mut self.nodes[node as usize];
            node.rrset_start = rrsets.append(&node_sets)?;
            node.rrset_count = node_sets.len().min(usize::from(u16::MAX)) as u16;
        }
        Some((rrsets.finish(), rdata.finish(), record_count))
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

    /// Runs the zone checks and takes the SOA values from the apex.
    fn check(&mut self, zone: &mut Zone) {
        let file = self
            .files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let mut report = |node: NodeId, code: Option<u16>, message: String| {
            let at = match code {
                Some(code) => self.record_location(node, code),
                None => file.clone(),
            };
            self.problem(format!("{at}: {message}"));
        };
        if let Some(soa) = check_apex(zone, &mut report) {
            zone.soa = soa;
        }
        for id in zone.node_ids() {
            check_node(zone, id, &mut report);
        }
    }
}

/// A problem found by a zone check: the node, the type of the records at
/// fault (`None` when the problem is a missing record) and the message.
pub(crate) type Report<'a> = dyn FnMut(NodeId, Option<u16>, String) + 'a;

/// Checks the apex: one well-formed SOA and an NS RRset. Returns the SOA
/// values when they can be read.
pub(crate) fn check_apex(zone: &Zone, report: &mut Report<'_>) -> Option<model::SoaFields> {
    let apex = zone.apex_id();
    let mut soa = None;
    match zone.rrset(apex, rtype::SOA) {
        None => report(
            apex,
            None,
            format!("no SOA record at the apex {}", zone.apex),
        ),
        Some(set) if set.count > 1 => report(
            apex,
            Some(rtype::SOA),
            "more than one SOA record at the apex".to_string(),
        ),
        Some(set) => {
            let data = zone.records(set).next().unwrap_or(&[]);
            soa = model::soa_fields(set.ttl, data);
            if soa.is_none() {
                report(apex, Some(rtype::SOA), "malformed SOA record".to_string());
            }
        }
    }
    if zone.rrset(apex, rtype::NS).is_none() {
        report(
            apex,
            None,
            format!("no NS records at the apex {}", zone.apex),
        );
    }
    soa
}

/// Checks the data of one node: CNAME exclusivity, one DNAME, no SOA below
/// the apex, only NS, DS and glue at a zone cut and only glue below one.
pub(crate) fn check_node(zone: &Zone, id: NodeId, report: &mut Report<'_>) {
    let node = *zone.node(id);
    let owner = || name::display_wire(zone.node_name(id));
    if node.flags & FLAG_CNAME != 0 {
        check_cname(zone, id, &owner(), report);
    }
    for set in zone.rrsets(id) {
        match set.rtype {
            rtype::DNAME if set.count > 1 => report(
                id,
                Some(rtype::DNAME),
                format!("more than one DNAME at {}", owner()),
            ),
            rtype::SOA if id != zone.apex_id() => report(
                id,
                Some(rtype::SOA),
                format!("SOA record at {}, not at the apex", owner()),
            ),
            _ => {}
        }
    }
    if node.guard != NO_NODE {
        check_cut(zone, id, &node, &owner(), report);
    }
}

fn check_cname(zone: &Zone, id: NodeId, owner: &str, report: &mut Report<'_>) {
    if zone.rrset(id, rtype::CNAME).is_some_and(|s| s.count > 1) {
        report(
            id,
            Some(rtype::CNAME),
            format!("more than one CNAME at {owner}"),
        );
    }
    let others: Vec<String> = zone
        .rrsets(id)
        .iter()
        .filter(|s| !matches!(s.rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC))
        .map(|s| rr::rtype_name(s.rtype).into_owned())
        .collect();
    if !others.is_empty() {
        report(
            id,
            Some(rtype::CNAME),
            format!(
                "CNAME at {owner} next to other data ({})",
                others.join(", ")
            ),
        );
    }
}

fn check_cut(zone: &Zone, id: NodeId, node: &Node, owner: &str, report: &mut Report<'_>) {
    if node.flags & FLAG_CUT != 0 && node.guard == id {
        for set in zone.rrsets(id) {
            if !model::allowed_at_cut(set.rtype) {
                report(
                    id,
                    Some(set.rtype),
                    format!(
                        "{} at delegation point {owner} (only NS, DS and glue belong there)",
                        rr::rtype_name(set.rtype)
                    ),
                );
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
            report(
                id,
                Some(set.rtype),
                format!(
                    "{} at {owner} below the zone cut {} (only glue belongs there)",
                    rr::rtype_name(set.rtype),
                    name::display_wire(zone.node_name(node.guard))
                ),
            );
        }
    }
}

/// Sets the flags that follow from each node's data (see
/// [`model::data_flags`]) and from its children (wildcard child), and counts
/// every node's children.
fn set_flags(nodes: &mut [Node], names: &Arena<u8>, rrsets: &Arena<RRset>) {
    if let Some(apex) = nodes.first_mut() {
        apex.flags |= FLAG_APEX;
    }
    for id in 0..nodes.len() {
        let node = nodes[id];
        let sets = rrsets.slice(node.rrset_start, usize::from(node.rrset_count));
        nodes[id].flags |= model::data_flags(id == 0, sets);
        if node.parent == NO_NODE {
            continue;
        }
        let wildcard =
            model::is_wildcard(names.slice(node.name_offset, usize::from(node.name_len)));
        let parent = &mut nodes[node.parent as usize];
        parent.children += 1;
        if wildcard {
            parent.flags |= FLAG_WILDCARD_CHILD;
        }
    }
}

/// Sets every node's `guard`: the topmost zone cut at or above it, or the
/// topmost DNAME owner strictly above it.
fn compute_guards(nodes: &mut [Node]) {
    const UNKNOWN: NodeId = NO_NODE - 1;
    for node in nodes.iter_mut() {
        node.guard = UNKNOWN;
    }
    let Some(apex) = nodes.first_mut() else {
        return;
    };
    apex.guard = NO_NODE;
    let mut chain = Vec::new();
    for id in 1..nodes.len() as NodeId {
        let mut current = id;
        while nodes[current as usize].guard == UNKNOWN {
            chain.push(current);
            current = nodes[current as usize].parent;
            if current == NO_NODE {
                break;
            }
        }
        while let Some(child) = chain.pop() {
            let parent = nodes[child as usize].parent;
            nodes[child as usize].guard = if parent == NO_NODE {
                NO_NODE
            } else {
                model::child_guard(
                    &nodes[parent as usize],
                    parent,
                    &nodes[child as usize],
                    child,
                )
            };
        }
    }
}

/// The lowercase wire name of a node being built.
fn name_of<'a>(names: &'a ArenaWriter<u8>, node: &Node) -> &'a [u8] {
    names.slice(node.name_offset, usize::from(node.name_len))
}

/// The zone at `apex` built from master-file text (origin `apex`), for
/// tests: panics on any problem.
#[cfg(test)]
pub(crate) fn zone_from_text(apex: &str, text: &str) -> Zone {
    let apex = Name::parse(apex).expect("test apex");
    let mut builder = ZoneBuilder::new(&apex);
    super::master::parse_bytes(
        text.as_bytes(),
        Path::new("test.zone"),
        None,
        &super::master::MasterOptions::new(&apex),
        &mut |record| builder.add(record),
    )
    .expect("test zone text");
    builder.finish().expect("test zone")
}
