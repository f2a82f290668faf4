//! The compact, immutable in-memory form of one zone version.
//!
//! All owner names live in one byte arena, all record data in another; nodes
//! and RRsets are small fixed-size structs that point into them, and a hash
//! table maps a lowercase owner name to its node. A 1M-name zone therefore
//! costs a few thousand large allocations instead of millions of small ones,
//! loads quickly and answers a lookup with one hash probe in the common case.
//!
//! Every array is split into chunks behind reference-counted pointers, and
//! the name index into shards, so that the next version of a zone (an IXFR,
//! see [`super::apply`]) copies only the chunk pointers and the few chunks it
//! changes: both versions share everything else, and the published one is
//! never written to. A lookup pays one extra pointer hop per array for this.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;

use super::name::{self, Name};
use super::rr::rtype;

/// Index of a node in the zone's node table.
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
/// Node flag: the name was deleted by an incremental update; the slot stays
/// (node ids are positions) but the name is no longer in the index.
pub const FLAG_REMOVED: u8 = 32;

// Chunk sizes weigh what a new version copies (each chunk it writes, and
// one pointer per chunk) against what a lookup pays (one more pointer read,
// from a pointer array that should stay in the first-level cache). For a
// 1M-name zone: ~250 node chunks of 96 KiB, a few hundred RRset and arena
// chunks, 64 index shards of ~160 KiB; a one-record change copies a few of
// them (well under a millisecond) and lookups stay within a few percent.

/// Nodes per chunk of the node table (a power of two: ids are split by shifting).
pub(crate) const NODE_CHUNK: usize = 1 << NODE_CHUNK_BITS;
const NODE_CHUNK_BITS: u32 = 12;
/// Usual number of RRsets per chunk of the RRset arena.
pub(crate) const RRSET_CHUNK: usize = 4096;
/// Usual size of a chunk of the name and record-data arenas.
pub(crate) const BYTE_CHUNK: usize = 1 << OFFSET_BITS;
/// Bits of an arena address that hold the offset inside its chunk; the
/// bits above hold the chunk number.
const OFFSET_BITS: u32 = 16;
const OFFSET_MASK: u32 = (1 << OFFSET_BITS) - 1;
/// Most chunks one arena can address.
const MAX_CHUNKS: usize = 1 << (32 - OFFSET_BITS);
/// Number of shards of the name index: adding a name copies one shard.
pub(crate) const INDEX_SHARDS: usize = 64;

/// The hash of the name index: 32 bits of a keyed hash of the lowercase wire
/// name, spread over 64 bits. A name's index hash is thus known from 32 bits
/// (see [`NameHasher::from_short`]), so that a table being built can grow
/// from hashes kept beside it, without reading every name again.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameHasher(DefaultHashBuilder);

impl NameHasher {
    /// The index hash of a lowercase wire name.
    #[inline]
    pub(crate) fn hash(&self, lower_name: &[u8]) -> u64 {
        NameHasher::from_short(self.short(lower_name))
    }

    /// The 32 bits the index hash of a name is made from.
    #[inline]
    pub(crate) fn short(&self, lower_name: &[u8]) -> u32 {
        let full = self.0.hash_one(lower_name);
        (full ^ (full >> 32)) as u32
    }

    /// The index hash made from its 32 bits: multiplying by an odd constant
    /// is a bijection that carries every bit into the high half (the shard
    /// and hashbrown's control byte).
    #[inline]
    pub(crate) fn from_short(short: u32) -> u64 {
        u64::from(short).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// The shard of the name index that holds a name with this hash. Uses bits
/// that hashbrown uses neither for the bucket (low bits) nor for the control
/// byte (top seven), so every shard still spreads its names well.
#[inline]
pub(crate) fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (INDEX_SHARDS - 1)
}

/// One owner name of the zone, possibly an empty non-terminal.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    /// Arena address of the lowercase wire name in the name arena.
    pub(crate) name_offset: u32,
    /// Length of that wire name.
    pub(crate) name_len: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Number of RRsets at this name (0 for an empty non-terminal).
    pub rrset_count: u16,
    /// Arena address of the first RRset in the RRset arena; the node's
    /// RRsets are contiguous and sorted by type.
    pub(crate) rrset_start: u32,
    /// Parent node, `NO_NODE` for the apex.
    pub parent: NodeId,
    /// The node whose presence makes this name non-authoritative: the topmost
    /// zone cut at or above it, or the topmost DNAME owner strictly above it;
    /// `NO_NODE` when the name is authoritative data.
    pub guard: NodeId,
    /// Number of child nodes in the index (empty non-terminals included):
    /// an incremental update deletes a name only when nothing hangs below it.
    pub(crate) children: u32,
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
    /// Arena address of the first record in the record-data arena; each
    /// record is stored as a 2-byte big-endian length followed by its wire
    /// data, and all records of the set lie in one chunk.
    pub(crate) rdata_offset: u32,
}

/// A zone version: immutable once built.
#[derive(Debug)]
pub struct Zone {
    pub(crate) apex: Name,
    pub(crate) names: Arena<u8>,
    pub(crate) nodes: ChunkedVec<Node>,
    pub(crate) rrsets: Arena<RRset>,
    pub(crate) rdata: Arena<u8>,
    pub(crate) index: Box<[Arc<HashTable<NodeId>>]>,
    pub(crate) hasher: NameHasher,
    pub(crate) soa: SoaFields,
    pub(crate) record_count: usize,
    /// Bytes of arena space no longer reachable (left behind by incremental
    /// updates); a rebuild starts from zero.
    pub(crate) garbage: usize,
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
        let hasher = NameHasher::default();
        let wire = apex.as_wire();
        let mut names = ArenaWriter::new(BYTE_CHUNK);
        let name_offset = names.append(wire).unwrap_or(0);
        let mut index = new_index();
        let hash = hasher.hash(wire);
        index[shard_of(hash)].insert_unique(hash, 0, |_| hash);
        let nodes = vec![Node {
            name_offset,
            name_len: wire.len() as u8,
            flags: FLAG_APEX,
            rrset_count: 0,
            rrset_start: 0,
            parent: NO_NODE,
            guard: NO_NODE,
            children: 0,
        }];
        Zone {
            apex,
            names: names.finish(),
            nodes: ChunkedVec::from_vec(&nodes),
            rrsets: Arena::default(),
            rdata: Arena::default(),
            index: freeze_index(index),
            hasher,
            soa: SoaFields::default(),
            record_count: 0,
            garbage: 0,
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

    /// Number of node slots, empty non-terminals included. After incremental
    /// updates this also counts the slots of deleted names (`FLAG_REMOVED`,
    /// no RRsets), so it bounds [`Zone::node_ids`] rather than counting names.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The apex node (always present).
    pub fn apex_id(&self) -> NodeId {
        0
    }

    /// Finds the node of a lowercase wire name.
    #[inline]
    pub fn find(&self, lower_name: &[u8]) -> Option<NodeId> {
        let hash = self.hasher.hash(lower_name);
        self.index[shard_of(hash)]
            .find(hash, |&id| self.node_name(id) == lower_name)
            .copied()
    }

    /// The node with this id.
    #[inline]
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id)
    }

    /// The lowercase wire name of a node.
    #[inline]
    pub fn node_name(&self, id: NodeId) -> &[u8] {
        let node = self.nodes.get(id);
        self.names
            .slice(node.name_offset, usize::from(node.name_len))
    }

    /// The RRsets of a node, sorted by type.
    #[inline]
    pub fn rrsets(&self, id: NodeId) -> &[RRset] {
        let node = self.nodes.get(id);
        self.rrsets
            .slice(node.rrset_start, usize::from(node.rrset_count))
    }

    /// The RRset of a type at a node.
    #[inline]
    pub fn rrset(&self, id: NodeId, rtype: u16) -> Option<&RRset> {
        self.rrsets(id).iter().find(|set| set.rtype == rtype)
    }

    /// The records of an RRset, as wire rdata slices.
    #[inline]
    pub fn records<'a>(&'a self, set: &RRset) -> Records<'a> {
        Records {
            data: self.rdata.rest(set.rdata_offset),
            offset: 0,
            remaining: set.count,
        }
    }

    /// The record of `set` starting `offset` bytes into its data (0 for the
    /// first), with the offset of the one after it. For walks that resume
    /// where they stopped, like transfers out.
    pub fn record_at(&self, set: &RRset, offset: usize) -> Option<(&[u8], usize)> {
        let data = self.rdata.rest(set.rdata_offset);
        let len_bytes = data.get(offset..offset + 2)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let record = data.get(offset + 2..offset + 2 + len)?;
        Some((record, offset + 2 + len))
    }

    /// The stored form of an RRset's records, back to back: each a 2-byte
    /// big-endian length and the wire data (what the store writes as is).
    pub fn rrset_data(&self, set: &RRset) -> &[u8] {
        let data = self.rdata.rest(set.rdata_offset);
        let mut end = 0;
        for _ in 0..set.count {
            let Some(len_bytes) = data.get(end..end + 2) else {
                break;
            };
            end += 2 + usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        }
        data.get(..end).unwrap_or_default()
    }

    /// Whether the node is the apex.
    pub fn is_apex(&self, id: NodeId) -> bool {
        id == 0
    }

    /// Iterates over every node id (see [`Zone::node_count`]).
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

    /// Bytes held by this version's arrays (shared chunks included).
    pub fn stored_bytes(&self) -> usize {
        self.names.len()
            + self.nodes.len() * size_of::<Node>()
            + self.rrsets.len() * size_of::<RRset>()
            + self.rdata.len()
    }

    /// Bytes of [`Zone::stored_bytes`] no longer reachable: data replaced or
    /// deleted by incremental updates, reclaimed by the next rebuild.
    pub fn garbage_bytes(&self) -> usize {
        self.garbage
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

/// The flags that follow from a node's own RRsets: a zone cut (NS below the
/// apex), a DNAME, a CNAME.
pub(crate) fn data_flags(is_apex: bool, sets: &[RRset]) -> u8 {
    let mut flags = 0;
    for set in sets {
        match set.rtype {
            rtype::NS if !is_apex => flags |= FLAG_CUT,
            rtype::DNAME => flags |= FLAG_DNAME,
            rtype::CNAME => flags |= FLAG_CNAME,
            _ => {}
        }
    }
    flags
}

/// Whether a wire name is a wildcard (`*.<something>`).
pub(crate) fn is_wildcard(wire: &[u8]) -> bool {
    wire.len() >= 2 && wire[0] == 1 && wire[1] == b'*'
}

/// The guard of `child` (see [`Node::guard`]), given its parent's node,
/// whose guard is already known.
pub(crate) fn child_guard(
    parent: &Node,
    parent_id: NodeId,
    child: &Node,
    child_id: NodeId,
) -> NodeId {
    if parent.guard != NO_NODE {
        parent.guard
    } else if parent.flags & FLAG_DNAME != 0 {
        parent_id
    } else if child.flags & FLAG_CUT != 0 {
        child_id
    } else {
        NO_NODE
    }
}

/// Whether a type may sit at a zone cut besides NS (DS and DNSSEC data, and
/// address records that serve as glue for the cut's own name).
pub(crate) fn allowed_at_cut(code: u16) -> bool {
    matches!(
        code,
        rtype::NS | rtype::DS | rtype::RRSIG | rtype::NSEC | rtype::A | rtype::AAAA
    )
}

/// An append-only array split into shared chunks, addressed by a 32-bit
/// address: the chunk number in the high 16 bits, the offset inside the
/// chunk in the low 16. A run of entries stored together (one name, one
/// node's RRsets, one RRset's data) always lies inside one chunk, so it is
/// read as one slice. Chunks hold about [`BYTE_CHUNK`] or [`RRSET_CHUNK`]
/// entries; a run longer than that gets a chunk of its own.
#[derive(Clone)]
pub(crate) struct Arena<T> {
    chunks: Vec<Arc<[T]>>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena { chunks: Vec::new() }
    }
}

impl<T> fmt::Debug for Arena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunks", &self.chunks.len())
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Arena<T> {
    /// The `len` entries at `address`; empty when they are not stored
    /// (never the case for addresses the zone itself holds).
    #[inline]
    pub(crate) fn slice(&self, address: u32, len: usize) -> &[T] {
        let offset = (address & OFFSET_MASK) as usize;
        self.chunks
            .get((address >> OFFSET_BITS) as usize)
            .and_then(|chunk| chunk.get(offset..offset + len))
            .unwrap_or_default()
    }

    /// The entries from `address` to the end of its chunk.
    #[inline]
    pub(crate) fn rest(&self, address: u32) -> &[T] {
        let offset = (address & OFFSET_MASK) as usize;
        self.chunks
            .get((address >> OFFSET_BITS) as usize)
            .and_then(|chunk| chunk.get(offset..))
            .unwrap_or_default()
    }

    /// Number of entries stored, reachable or not.
    pub(crate) fn len(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.len()).sum()
    }
}

/// An [`Arena`] being written: the chunks of a published arena (shared,
/// never written) and an open last chunk that new entries go to.
pub(crate) struct ArenaWriter<T> {
    chunks: Vec<Arc<[T]>>,
    tail: Vec<T>,
    chunk_len: usize,
}

impl<T> fmt::Debug for ArenaWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaWriter")
            .field("chunks", &self.chunks.len())
            .field("tail", &self.tail.len())
            .finish()
    }
}

impl<T: Copy> ArenaWriter<T> {
    /// An empty arena with chunks of about `chunk_len` entries (at most
    /// `1 << 16`, the reach of an address's offset).
    pub(crate) fn new(chunk_len: usize) -> ArenaWriter<T> {
        ArenaWriter {
            chunks: Vec::new(),
            tail: Vec::new(),
            chunk_len: chunk_len.min(1 << OFFSET_BITS),
        }
    }

    /// Continues `arena` without changing it: shares its chunks and copies
    /// only its last chunk when that one has room left.
    pub(crate) fn reopen(arena: &Arena<T>, chunk_len: usize) -> ArenaWriter<T> {
        let mut writer = ArenaWriter::new(chunk_len);
        writer.chunks = arena.chunks.clone();
        if let Some(last) = writer.chunks.last()
            && last.len() < writer.chunk_len
        {
            writer.tail.reserve(writer.chunk_len);
            writer.tail.extend_from_slice(last);
            writer.chunks.pop();
        }
        writer
    }

    /// Stores `items` together and returns their address; `None` when the
    /// arena cannot address more chunks (4 GiB of names or record data).
    #[inline]
    pub(crate) fn append(&mut self, items: &[T]) -> Option<u32> {
        let address = self.start_run(items.len())?;
        self.extend_run(items);
        self.end_run();
        Some(address)
    }

    /// Starts a run of entries that will lie together in one chunk (about
    /// `expected_len` of them, to pick the chunk) and returns its address;
    /// the entries follow with [`ArenaWriter::extend_run`], and
    /// [`ArenaWriter::end_run`] ends the run. `None` as for `append`.
    #[inline]
    pub(crate) fn start_run(&mut self, expected_len: usize) -> Option<u32> {
        if !self.tail.is_empty() && self.tail.len() + expected_len > self.chunk_len {
            self.seal();
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return None;
        }
        if self.tail.capacity() == 0 {
            self.tail.reserve(self.chunk_len.max(expected_len));
        }
        // The tail is shorter than `chunk_len` here, so the offset fits.
        Some(((self.chunks.len() as u32) << OFFSET_BITS) | self.tail.len() as u32)
    }

    /// Adds entries to the run started last.
    #[inline]
    pub(crate) fn extend_run(&mut self, items: &[T]) {
        self.tail.extend_from_slice(items);
    }

    /// The entries of the run started last at `address`, so far.
    #[inline]
    pub(crate) fn run(&self, address: u32) -> &[T] {
        self.tail
            .get((address & OFFSET_MASK) as usize..)
            .unwrap_or_default()
    }

    /// Ends the run started last.
    #[inline]
    pub(crate) fn end_run(&mut self) {
        if self.tail.len() >= self.chunk_len {
            self.seal();
        }
    }

    /// The `len` entries at `address`, written or shared.
    #[inline]
    pub(crate) fn slice(&self, address: u32, len: usize) -> &[T] {
        let offset = (address & OFFSET_MASK) as usize;
        let chunk = (address >> OFFSET_BITS) as usize;
        let stored = match self.chunks.get(chunk) {
            Some(chunk) => &chunk[..],
            None if chunk == self.chunks.len() => &self.tail[..],
            None => &[],
        };
        stored.get(offset..offset + len).unwrap_or_default()
    }

    /// The entries from `address` to the end of its chunk.
    #[inline]
    pub(crate) fn rest(&self, address: u32) -> &[T] {
        let offset = (address & OFFSET_MASK) as usize;
        let chunk = (address >> OFFSET_BITS) as usize;
        let stored = match self.chunks.get(chunk) {
            Some(chunk) => &chunk[..],
            None if chunk == self.chunks.len() => &self.tail[..],
            None => &[],
        };
        stored.get(offset..).unwrap_or_default()
    }

    /// The finished arena.
    pub(crate) fn finish(mut self) -> Arena<T> {
        if !self.tail.is_empty() {
            self.seal();
        }
        Arena {
            chunks: self.chunks,
        }
    }

    /// Closes the open chunk (its buffer is reused for the next one).
    fn seal(&mut self) {
        self.chunks.push(Arc::from(&self.tail[..]));
        self.tail.clear();
    }
}

/// A vector split into shared chunks of [`NODE_CHUNK`] entries: entry `i`
/// is in chunk `i / NODE_CHUNK`. Holds the nodes, whose ids are positions.
#[derive(Clone)]
pub(crate) struct ChunkedVec<T> {
    chunks: Vec<Arc<[T]>>,
    len: usize,
}

impl<T> fmt::Debug for ChunkedVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkedVec")
            .field("chunks", &self.chunks.len())
            .field("len", &self.len)
            .finish()
    }
}

impl<T: Clone> ChunkedVec<T> {
    /// The entries of `items`, copied into chunks.
    pub(crate) fn from_vec(items: &[T]) -> ChunkedVec<T> {
        ChunkedVec {
            chunks: items.chunks(NODE_CHUNK).map(Arc::from).collect(),
            len: items.len(),
        }
    }

    /// Entry `index`; panics past the end, like a slice.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> &T {
        &self.chunks[(index >> NODE_CHUNK_BITS) as usize][index as usize & (NODE_CHUNK - 1)]
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A [`ChunkedVec`] being changed: writing an entry of a shared chunk first
/// copies that chunk (copy on write); new entries go to an open last chunk.
pub(crate) struct ChunkedVecWriter<T> {
    chunks: Vec<Arc<[T]>>,
    tail: Vec<T>,
}

impl<T: Clone> ChunkedVecWriter<T> {
    /// Continues `vec` without changing it.
    pub(crate) fn reopen(vec: &ChunkedVec<T>) -> ChunkedVecWriter<T> {
        let mut chunks = vec.chunks.clone();
        let mut tail = Vec::new();
        if let Some(last) = chunks.last()
            && last.len() < NODE_CHUNK
        {
            tail.reserve(NODE_CHUNK);
            tail.extend_from_slice(last);
            chunks.pop();
        }
        ChunkedVecWriter { chunks, tail }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.chunks.len() * NODE_CHUNK + self.tail.len()
    }

    /// Entry `index`; panics past the end.
    pub(crate) fn get(&self, index: u32) -> &T {
        let chunk = (index >> NODE_CHUNK_BITS) as usize;
        let offset = index as usize & (NODE_CHUNK - 1);
        match self.chunks.get(chunk) {
            Some(chunk) => &chunk[offset],
            None => &self.tail[offset],
        }
    }

    /// Entry `index` for writing; copies its chunk if another version
    /// shares it. Panics past the end.
    pub(crate) fn get_mut(&mut self, index: u32) -> &mut T {
        let chunk = (index >> NODE_CHUNK_BITS) as usize;
        let offset = index as usize & (NODE_CHUNK - 1);
        match self.chunks.get_mut(chunk) {
            Some(chunk) => &mut Arc::make_mut(chunk)[offset],
            None => &mut self.tail[offset],
        }
    }

    /// Appends an entry and returns its index.
    pub(crate) fn push(&mut self, item: T) -> u32 {
        let index = self.len() as u32;
        if self.tail.capacity() == 0 {
            self.tail.reserve(NODE_CHUNK);
        }
        self.tail.push(item);
        if self.tail.len() == NODE_CHUNK {
            self.chunks.push(Arc::from(&self.tail[..]));
            self.tail.clear();
        }
        index
    }

    /// The finished vector.
    pub(crate) fn finish(mut self) -> ChunkedVec<T> {
        let len = self.len();
        if !self.tail.is_empty() {
            self.chunks.push(Arc::from(&self.tail[..]));
        }
        ChunkedVec {
            chunks: self.chunks,
            len,
        }
    }
}

/// An empty name index, one table per shard, for writing.
pub(crate) fn new_index() -> Vec<HashTable<NodeId>> {
    (0..INDEX_SHARDS).map(|_| HashTable::new()).collect()
}

/// A written name index, ready to be shared between versions.
pub(crate) fn freeze_index(shards: Vec<HashTable<NodeId>>) -> Box<[Arc<HashTable<NodeId>>]> {
    shards.into_iter().map(Arc::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_runs_stay_in_one_chunk_and_reopening_shares_the_rest() {
        let mut writer = ArenaWriter::new(16);
        let first = writer.append(&[1u8; 10]).unwrap();
        // Does not fit after the first run: starts the next chunk.
        let second = writer.append(&[2u8; 10]).unwrap();
        // Longer than a chunk: a chunk of its own.
        let big = writer.append(&[3u8; 40]).unwrap();
        let last = writer.append(&[4u8; 3]).unwrap();
        let arena = writer.finish();
        assert_eq!(arena.slice(first, 10), &[1u8; 10]);
        assert_eq!(arena.slice(second, 10), &[2u8; 10]);
        assert_eq!(arena.slice(big, 40), &[3u8; 40]);
        assert_eq!(arena.rest(last), &[4u8; 3]);
        assert_eq!(arena.slice(big, 41), &[] as &[u8]);
        assert_eq!(arena.len(), 63);

        let mut next = ArenaWriter::reopen(&arena, 16);
        // The open chunk (holding `last`) has room: the run joins it.
        let added = next.append(&[5u8; 2]).unwrap();
        assert_eq!(added >> OFFSET_BITS, last >> OFFSET_BITS);
        let next = next.finish();
        assert_eq!(next.slice(last, 5), &[4, 4, 4, 5, 5]);
        assert_eq!(arena.rest(last), &[4u8; 3], "the old arena is unchanged");
        assert!(Arc::ptr_eq(&arena.chunks[0], &next.chunks[0]));
    }

    #[test]
    fn chunked_vec_writes_copy_only_the_chunk_they_touch() {
        let items: Vec<u32> = (0..(NODE_CHUNK as u32 * 2 + 5)).collect();
        let old = ChunkedVec::from_vec(&items);
        let mut writer = ChunkedVecWriter::reopen(&old);
        *writer.get_mut(3) = 1000;
        let pushed = writer.push(7);
        *writer.get_mut(pushed) += 1;
        let new = writer.finish();
        assert_eq!(*old.get(3), 3);
        assert_eq!(*new.get(3), 1000);
        assert_eq!(*new.get(pushed), 8);
        assert_eq!(new.len(), old.len() + 1);
        assert!(!Arc::ptr_eq(&old.chunks[0], &new.chunks[0]));
        assert!(Arc::ptr_eq(&old.chunks[1], &new.chunks[1]));
    }
}
