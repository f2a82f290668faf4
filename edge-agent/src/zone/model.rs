//! The compact, immutable in-memory form of one zone version.
//!
//! All owner names live in one byte arena, all record data in another; nodes
//! and RRsets are small fixed-size structs that point into them, and a hash
//! table maps a lowercase owner name to its node. A 1M-name zone therefore
//! costs a few large allocations instead of millions of small ones, loads
//! quickly and answers a lookup with one hash probe in the common case.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;

use super::name::{self, Name};
use super::rr::rtype;

/// Index of a node in [`Zone::nodes`].
pub type NodeId = u32;

/// Marks "no node" in [`Node::parent`] and [`Node::guard`].
pub const NO_NODE: NodeId = u32::MAX;

/// Node flag: the apex of the zone.
pub const FLAG_APEX: u8 = 1;
/// Node flag: a zone cut (NS at a name below the apex).
pub const FLAG_CUT: u8 = 2;
/// Node flag: holds a DNAME.
pub const FLAG_DNAME: u8 = 4;
/// Node flag: holds a CNAME.
pub const FLAG_CNAME: u8 = 8;
/// Node flag: has a wildcard child (`*.<this name>`).
pub const FLAG_WILDCARD_CHILD: u8 = 16;

/// One owner name of the zone, possibly an empty non-terminal.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// Offset of the lowercase wire name in the name arena.
    pub(crate) name_offset: u32,
    /// Length of that wire name.
    pub(crate) name_len: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Number of RRsets at this name (0 for an empty non-terminal).
    pub rrset_count: u16,
    /// Index of the first RRset in [`Zone::rrsets`].
    pub(crate) rrset_start: u32,
    /// Parent node, `NO_NODE` for the apex.
    pub parent: NodeId,
    /// The node whose presence makes this name non-authoritative: the topmost
    /// zone cut at or above it, or the topmost DNAME owner strictly above it;
    /// `NO_NODE` when the name is authoritative data.
    pub guard: NodeId,
}

/// One RRset: records of the same owner and type, data back to back.
#[derive(Debug, Clone, Copy)]
pub struct RRset {
    /// Record type.
    pub rtype: u16,
    /// Number of records.
    pub count: u16,
    /// TTL shared by all records.
    pub ttl: u32,
    /// Offset of the first record in the rdata arena; each record is stored as
    /// a 2-byte big-endian length followed by its wire data.
    pub(crate) rdata_offset: u32,
}

/// A zone version: immutable once built.
#[derive(Debug)]
pub struct Zone {
    pub(crate) apex: Name,
    pub(crate) names: Vec<u8>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) rrsets: Vec<RRset>,
    pub(crate) rdata: Vec<u8>,
    pub(crate) index: HashTable<NodeId>,
    pub(crate) hasher: DefaultHashBuilder,
    pub(crate) soa: SoaFields,
    pub(crate) record_count: usize,
}

/// The apex SOA values the answer path needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoaFields {
    /// Serial number.
    pub serial: u32,
    /// TTL of the SOA record itself.
    pub ttl: u32,
    /// The MINIMUM field (negative caching TTL, RFC 2308).
    pub minimum: u32,
    /// Refresh timer.
    pub refresh: u32,
    /// Retry timer.
    pub retry: u32,
    /// Expire timer.
    pub expire: u32,
}

impl Zone {
    /// A zone with no data at all, standing in for a secondary zone that was
    /// never transferred (its entry answers SERVFAIL and never reads it).
    pub fn placeholder(apex: &Name) -> Zone {
        let apex = apex.to_lowercase();
        let hasher = DefaultHashBuilder::default();
        let names = apex.as_wire().to_vec();
        let mut index = HashTable::new();
        index.insert_unique(hasher.hash_one(&names[..]), 0, |_| 0);
        Zone {
            nodes: vec![Node {
                name_offset: 0,
                name_len: names.len() as u8,
                flags: FLAG_APEX,
                rrset_count: 0,
                rrset_start: 0,
                parent: NO_NODE,
                guard: NO_NODE,
            }],
            apex,
            names,
            rrsets: Vec::new(),
            rdata: Vec::new(),
            index,
            hasher,
            soa: SoaFields::default(),
            record_count: 0,
        }
    }

    /// The apex name (lowercase).
    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The SOA serial of this version.
    pub fn serial(&self) -> u32 {
        self.soa.serial
    }

    /// The apex SOA values.
    pub fn soa(&self) -> &SoaFields {
        &self.soa
    }

    /// TTL of negative answers: min(SOA TTL, MINIMUM) (RFC 2308 §5).
    pub fn negative_ttl(&self) -> u32 {
        self.soa.ttl.min(self.soa.minimum)
    }

    /// Number of records (after removing duplicates).
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Number of nodes, empty non-terminals included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The apex node (always present).
    pub fn apex_id(&self) -> NodeId {
        0
    }

    /// Finds the node of a lowercase wire name.
    pub fn find(&self, lower_name: &[u8]) -> Option<NodeId> {
        let hash = self.hasher.hash_one(lower_name);
        self.index
            .find(hash, |&id| self.node_name(id) == lower_name)
            .copied()
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The lowercase wire name of a node.
    pub fn node_name(&self, id: NodeId) -> &[u8] {
        let node = &self.nodes[id as usize];
        let start = node.name_offset as usize;
        &self.names[start..start + usize::from(node.name_len)]
    }

    /// The RRsets of a node.
    pub fn rrsets(&self, id: NodeId) -> &[RRset] {
        let node = &self.nodes[id as usize];
        let start = node.rrset_start as usize;
        &self.rrsets[start..start + usize::from(node.rrset_count)]
    }

    /// The RRset of a type at a node.
    pub fn rrset(&self, id: NodeId, rtype: u16) -> Option<&RRset> {
        self.rrsets(id).iter().find(|set| set.rtype == rtype)
    }

    /// The records of an RRset, as wire rdata slices.
    pub fn records<'a>(&'a self, set: &RRset) -> Records<'a> {
        Records {
            data: &self.rdata,
            offset: set.rdata_offset as usize,
            remaining: set.count,
        }
    }

    /// The record of `set` starting `offset` bytes into its data (0 for the
    /// first), with the offset of the one after it. For walks that resume
    /// where they stopped, like transfers out.
    pub fn record_at(&self, set: &RRset, offset: usize) -> Option<(&[u8], usize)> {
        let start = set.rdata_offset as usize + offset;
        let len_bytes = self.rdata.get(start..start + 2)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let data = self.rdata.get(start + 2..start + 2 + len)?;
        Some((data, offset + 2 + len))
    }

    /// Whether the node is the apex.
    pub fn is_apex(&self, id: NodeId) -> bool {
        id == 0
    }

    /// Iterates over every node id.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        0..self.nodes.len() as NodeId
    }

    /// Every record of the zone, as (owner, RRset, rdata), nodes in storage
    /// order and RRsets by type. For transfers out and for the store.
    pub fn iter_records(&self) -> impl Iterator<Item = (&[u8], &RRset, &[u8])> + '_ {
        self.node_ids().flat_map(move |id| {
            let owner = self.node_name(id);
            self.rrsets(id)
                .iter()
                .flat_map(move |set| self.records(set).map(move |data| (owner, set, data)))
        })
    }

    /// The closest existing node to a lowercase wire name: the name itself or
    /// its nearest existing ancestor, with the offset in `lower_name` where
    /// that ancestor starts. The name must lie at or below the apex.
    pub fn closest_encloser(&self, lower_name: &[u8]) -> (NodeId, usize) {
        let mut offset = 0;
        loop {
            if let Some(id) = self.find(&lower_name[offset..]) {
                return (id, offset);
            }
            match name::parent_offset(&lower_name[offset..]) {
                Some(step) if offset + step < lower_name.len() => offset += step,
                _ => return (self.apex_id(), lower_name.len() - self.apex.as_wire().len()),
            }
        }
    }
}

/// Iterator over the wire data of the records of one RRset.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    offset: usize,
    remaining: u16,
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let len_bytes = self.data.get(self.offset..self.offset + 2)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let start = self.offset + 2;
        let record = self.data.get(start..start + len)?;
        self.offset = start + len;
        self.remaining -= 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

/// Reads the SOA values out of SOA rdata.
pub(crate) fn soa_fields(ttl: u32, rdata: &[u8]) -> Option<SoaFields> {
    let mname = name::wire_name_len(rdata).ok()?;
    let rname = name::wire_name_len(rdata.get(mname..)?).ok()?;
    let fixed = rdata.get(mname + rname..)?;
    if fixed.len() != 20 {
        return None;
    }
    let field = |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    Some(SoaFields {
        serial: field(0),
        refresh: field(4),
        retry: field(8),
        expire: field(12),
        minimum: field(16),
        ttl,
    })
}

/// Whether a type may sit at a zone cut besides NS (DS and DNSSEC data, and
/// address records that serve as glue for the cut's own name).
pub(crate) fn allowed_at_cut(code: u16) -> bool {
    matches!(
        code,
        rtype::NS | rtype::DS | rtype::RRSIG | rtype::NSEC | rtype::A | rtype::AAAA
    )
}
