//! A zone's RRsets packed into chunks: many consecutive `key → value`
//! entries per database value.
//!
//! One database key per RRset made a full replacement cost one B-tree insert
//! per RRset (about 1.5 µs each: 1.5 s for a 1M-name zone). Packed into
//! chunks of about [`TARGET`] bytes, a full replacement is a few thousand
//! inserts of large values, essentially a copy; reading or changing one RRset
//! decodes and rewrites the one chunk holding it, so an IXFR still costs in
//! proportion to the change.
//!
//! # Layout
//! A chunk is stored under the key of its first entry, and holds its entries
//! in strictly increasing key order: `key length (u16) ‖ key ‖ value length
//! (u32) ‖ value`, repeated. Chunks never overlap: the chunk holding a key
//! is the last chunk whose key is not above it. No chunk is empty. Every
//! reader checks these rules and reports a damaged file as [`Malformed`].

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadableTable, Table};

use super::codec::Malformed;
use super::{StoreError, ZoneContext, corrupt};
use crate::zone::Name;

/// Most bytes in a chunk, unless one entry alone is larger. redb gives a
/// large value a page of a power-of-two size that also holds its key and a
/// header: staying under 16 KiB with room for those keeps one chunk in one
/// 16 KiB page instead of half of a 32 KiB one.
pub(super) const TARGET: usize = 16 * 1024 - 512;

/// The zone's chunk table, as the store opens it.
pub(super) type ChunkTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

/// Writes entries, given in strictly increasing key order, as chunks of at
/// most the target size (an entry larger than that gets a chunk of its own).
pub(super) struct Packer {
    target: usize,
    first: Vec<u8>,
    chunk: Vec<u8>,
}

impl Packer {
    pub(super) fn new() -> Packer {
        Packer::with_target(TARGET)
    }

    pub(super) fn with_target(target: usize) -> Packer {
        Packer {
            target,
            first: Vec::new(),
            chunk: Vec::with_capacity(target + 1024),
        }
    }

    /// Appends one entry whose value is `parts` concatenated, first writing
    /// out the chunk when the entry would take it past the target size. The
    /// caller keeps the keys increasing.
    pub(super) fn push(
        &mut self,
        table: &mut ChunkTable<'_>,
        apex: &Name,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<(), StoreError> {
        let too_large = |what| StoreError::TooLarge {
            zone: apex.clone(),
            what,
        };
        let key_len = u16::try_from(key.len()).map_err(|_| too_large("RRset key"))?;
        let value_len: usize = parts.iter().map(|part| part.len()).sum();
        let entry_len = 6 + key.len() + value_len;
        let value_len = u32::try_from(value_len).map_err(|_| too_large("RRset"))?;
        if !self.chunk.is_empty() && self.chunk.len() + entry_len > self.target {
            self.flush(table, apex)?;
        }
        if self.chunk.is_empty() {
            self.first.clear();
            self.first.extend_from_slice(key);
        }
        self.chunk.extend_from_slice(&key_len.to_be_bytes());
        self.chunk.extend_from_slice(key);
        self.chunk.extend_from_slice(&value_len.to_be_bytes());
        for part in parts {
            self.chunk.extend_from_slice(part);
        }
        Ok(())
    }

    /// Writes out the last, partly filled chunk.
    pub(super) fn finish(
        mut self,
        table: &mut ChunkTable<'_>,
        apex: &Name,
    ) -> Result<(), StoreError> {
        self.flush(table, apex)
    }

    fn flush(&mut self, table: &mut ChunkTable<'_>, apex: &Name) -> Result<(), StoreError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        table
            .insert(self.first.as_slice(), self.chunk.as_slice())
            .zone_context(apex)?;
        self.chunk.clear();
        Ok(())
    }
}

/// The entries of one chunk, in order. Yields an error, then stops, when
/// the chunk is damaged.
pub(super) struct Entries<'a> {
    rest: &'a [u8],
    failed: bool,
}

pub(super) fn entries(chunk: &[u8]) -> Entries<'_> {
    Entries {
        rest: chunk,
        failed: false,
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match split_entry(self.rest) {
            Some((key, value, rest)) => {
                self.rest = rest;
                Some(Ok((key, value)))
            }
            None => {
                self.failed = true;
                Some(Err(Malformed("chunk entry")))
            }
        }
    }
}

fn split_entry(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let (key, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (value, rest) = rest.split_at_checked(len)?;
    Some((key, value, rest))
}

/// Checks one chunk against the layout rules: not empty, entries in strictly
/// increasing order, the first entry's key is the chunk's key, every key
/// above `previous` (the last key of the chunk before). Returns the chunk's
/// last key.
fn check_chunk<'a>(
    chunk_key: &[u8],
    chunk: &'a [u8],
    previous: Option<&[u8]>,
) -> Result<&'a [u8], Malformed> {
    let mut last: Option<&[u8]> = None;
    for entry in entries(chunk) {
        let (key, _) = entry?;
        match last {
            None if key != chunk_key => {
                return Err(Malformed("chunk key differs from its first entry"));
            }
            Some(last) if key <= last => return Err(Malformed("chunk entries out of order")),
            _ => {}
        }
        last = Some(key);
    }
    let last = last.ok_or(Malformed("empty chunk"))?;
    if previous.is_some_and(|previous| chunk_key <= previous) {
        return Err(Malformed("chunks overlap"));
    }
    Ok(last)
}

/// Calls `each` with every entry of the table, in key order, checking the
/// layout as it goes.
pub(super) fn for_each(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    apex: &Name,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut previous: Option<Vec<u8>> = None;
    for chunk in table.iter().zone_context(apex)? {
        let (chunk_key, chunk) = chunk.zone_context(apex)?;
        let (chunk_key, chunk) = (chunk_key.value(), chunk.value());
        let last =
            check_chunk(chunk_key, chunk, previous.as_deref()).map_err(|m| corrupt(apex, m))?;
        for entry in entries(chunk) {
            let (key, value) = entry.map_err(|m| corrupt(apex, m))?;
            each(key, value)?;
        }
        previous = Some(last.to_vec());
    }
    Ok(())
}

/// A chunk read out of the table: its key and its contents.
type Chunk = (Vec<u8>, Vec<u8>);

/// The chunk that holds `key` if it is stored.
fn holding(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    apex: &Name,
    key: &[u8],
) -> Result<Option<Chunk>, StoreError> {
    let mut range = table.range::<&[u8]>(..=key).zone_context(apex)?;
    match range.next_back() {
        None => Ok(None),
        Some(chunk) => {
            let (chunk_key, chunk) = chunk.zone_context(apex)?;
            Ok(Some((chunk_key.value().to_vec(), chunk.value().to_vec())))
        }
    }
}

/// The value stored under `key`, if any.
pub(super) fn get(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    apex: &Name,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some((chunk_key, chunk)) = holding(table, apex, key)? else {
        return Ok(None);
    };
    check_chunk(&chunk_key, &chunk, None).map_err(|m| corrupt(apex, m))?;
    for entry in entries(&chunk) {
        let (found, value) = entry.map_err(|m| corrupt(apex, m))?;
        if found == key {
            return Ok(Some(value.to_vec()));
        }
        if found > key {
            break;
        }
    }
    Ok(None)
}

/// Whether any key in `low..=high` is stored.
pub(super) fn any_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    apex: &Name,
    low: &[u8],
    high: &[u8],
) -> Result<bool, StoreError> {
    let Some((chunk_key, chunk)) = holding(table, apex, high)? else {
        return Ok(false);
    };
    // Keys below this chunk's key are in earlier chunks, and end below it.
    if chunk_key.as_slice() >= low {
        return Ok(true);
    }
    for entry in entries(&chunk) {
        let (key, _) = entry.map_err(|m| corrupt(apex, m))?;
        if key >= low && key <= high {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Applies `changes` (key → new value, or `None` to remove it): each chunk
/// holding a changed key is decoded, changed and written back, split when
/// it outgrows the target size and removed when it is left empty.
pub(super) fn update(
    table: &mut ChunkTable<'_>,
    apex: &Name,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<(), StoreError> {
    update_with_target(table, apex, changes, TARGET)
}

fn update_with_target(
    table: &mut ChunkTable<'_>,
    apex: &Name,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    target: usize,
) -> Result<(), StoreError> {
    let mut pending = changes.into_iter().peekable();
    while let Some((next, _)) = pending.peek() {
        // The chunk holding `next`; a key below every chunk joins the first.
        let found = match holding(table, apex, next)? {
            Some(found) => Some(found),
            None => {
                let first = table.first().zone_context(apex)?;
                first.map(|(key, chunk)| (key.value().to_vec(), chunk.value().to_vec()))
            }
        };
        let mut contents: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut upper: Option<Vec<u8>> = None;
        if let Some((chunk_key, chunk)) = &found {
            check_chunk(chunk_key, chunk, None).map_err(|m| corrupt(apex, m))?;
            for entry in entries(chunk) {
                let (key, value) = entry.map_err(|m| corrupt(apex, m))?;
                contents.insert(key.to_vec(), value.to_vec());
            }
            let mut after = table
                .range::<&[u8]>((Bound::Excluded(chunk_key.as_slice()), Bound::Unbounded))
                .zone_context(apex)?;
            if let Some(next_chunk) = after.next() {
                let (key, _) = next_chunk.zone_context(apex)?;
                upper = Some(key.value().to_vec());
            }
        }
        // Every pending key below the next chunk's key belongs to this one.
        while let Some((key, _)) = pending.peek() {
            if upper.as_ref().is_some_and(|upper| key >= upper) {
                break;
            }
            let Some((key, value)) = pending.next() else {
                break;
            };
            match value {
                Some(value) => contents.insert(key, value),
                None => contents.remove(&key),
            };
        }
        if let Some((chunk_key, _)) = &found {
            table.remove(chunk_key.as_slice()).zone_context(apex)?;
        }
        let mut packer = Packer::with_target(target);
        for (key, value) in &contents {
            packer.push(table, apex, key, &[value])?;
        }
        packer.finish(table, apex)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

    const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks/test");

    fn apex() -> Name {
        Name::root()
    }

    fn database() -> Database {
        redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap()
    }

    fn contents(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        let mut found = BTreeMap::new();
        for_each(&table, &apex(), |key, value| {
            assert!(found.insert(key.to_vec(), value.to_vec()).is_none());
            Ok(())
        })
        .unwrap();
        found
    }

    fn write_raw(db: &Database, entries: &[(&[u8], &[u8])]) {
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for (key, value) in entries {
                table.insert(*key, *value).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn chunk(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in entries {
            out.extend_from_slice(&(key.len() as u16).to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    fn reading_fails(db: &Database) -> bool {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        matches!(
            for_each(&table, &apex(), |_, _| Ok(())),
            Err(StoreError::Corrupt { .. })
        )
    }

    #[test]
    fn packing_splits_at_the_target_and_reads_back_in_order() {
        let db = database();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            let mut packer = Packer::with_target(100);
            for i in 0u16..50 {
                packer
                    .push(&mut table, &apex(), &i.to_be_bytes(), &[b"ab", b"cd"])
                    .unwrap();
            }
            packer.finish(&mut table, &apex()).unwrap();
            // Each entry takes 12 bytes: 8 entries (96 bytes) per chunk.
            assert_eq!(table.len().unwrap(), 7);
        }
        txn.commit().unwrap();
        let found = contents(&db);
        assert_eq!(found.len(), 50);
        assert!(found.values().all(|value| value == b"abcd"));
    }

    #[test]
    fn damaged_chunks_are_reported() {
        let good = chunk(&[(b"a", b"1"), (b"b", b"2")]);
        let cases: Vec<Vec<(&[u8], Vec<u8>)>> = vec![
            // Truncated entry.
            vec![(b"a", good[..good.len() - 1].to_vec())],
            // Chunk key differs from its first entry.
            vec![(b"0", good.clone())],
            // Entries out of order.
            vec![(b"b", chunk(&[(b"b", b"2"), (b"a", b"1")]))],
            // Repeated key.
            vec![(b"a", chunk(&[(b"a", b"1"), (b"a", b"1")]))],
            // Empty chunk.
            vec![(b"a", Vec::new())],
            // Two chunks overlapping.
            vec![(b"a", good.clone()), (b"aa", chunk(&[(b"aa", b"3")]))],
        ];
        for case in cases {
            let db = database();
            let entries: Vec<(&[u8], &[u8])> =
                case.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            write_raw(&db, &entries);
            assert!(reading_fails(&db), "{case:?}");
        }
        let db = database();
        write_raw(&db, &[(b"a", good.as_slice())]);
        assert!(!reading_fails(&db));
    }

    #[test]
    fn a_damaged_chunk_refuses_updates_and_lookups() {
        let db = database();
        write_raw(&db, &[(b"a", chunk(&[(b"b", b"1")]).as_slice())]);
        let txn = db.begin_write().unwrap();
        let mut table = txn.open_table(TABLE).unwrap();
        assert!(matches!(
            get(&table, &apex(), b"b"),
            Err(StoreError::Corrupt { .. })
        ));
        let changes = BTreeMap::from([(b"c".to_vec(), Some(b"2".to_vec()))]);
        assert!(matches!(
            update(&mut table, &apex(), changes),
            Err(StoreError::Corrupt { .. })
        ));
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 0..4)
    }

    proptest! {
        /// Random batches of changes, applied with a tiny target size so
        /// that chunks split, shrink and vanish, read back like a plain map.
        #[test]
        fn updates_match_a_plain_map(
            batches in proptest::collection::vec(
                proptest::collection::btree_map(
                    key(),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
                    0..12,
                ),
                1..8,
            ),
            target in 1usize..64,
            probes in proptest::collection::vec((key(), key()), 8),
        ) {
            let db = database();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for batch in batches {
                for (key, value) in &batch {
                    match value {
                        Some(value) => model.insert(key.clone(), value.clone()),
                        None => model.remove(key),
                    };
                }
                let txn = db.begin_write().unwrap();
                {
                    let mut table = txn.open_table(TABLE).unwrap();
                    update_with_target(&mut table, &apex(), batch, target).unwrap();
                }
                txn.commit().unwrap();
                prop_assert_eq!(&contents(&db), &model);
            }
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(TABLE).unwrap();
            for (a, b) in probes {
                let found = get(&table, &apex(), &a).unwrap();
                prop_assert_eq!(found.as_ref(), model.get(&a));
                let (low, high) = if a <= b { (a, b) } else { (b, a) };
                let expected = model.range(low.clone()..=high.clone()).next().is_some();
                prop_assert_eq!(any_in(&table, &apex(), &low, &high).unwrap(), expected);
            }
        }
    }
}
