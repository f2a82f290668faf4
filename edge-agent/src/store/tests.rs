//! Behaviour of the node store: round trips, refused IXFRs, the journal,
//! damaged values, and a timing of the hot paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;

use redb::ReadableTableMetadata;

use super::*;
use crate::xfr::{Diff, Record};
use crate::zone::rr::rtype;

/// One record as compared in tests: owner, type, TTL, data.
type Row = (Vec<u8>, u16, u32, Vec<u8>);

fn name(text: &str) -> Name {
    Name::parse(text).expect("test name")
}

fn apex() -> Name {
    name("example.test.")
}

fn soa_rdata(serial: u32) -> Vec<u8> {
    let mut data = name("ns1.example.test.").as_wire().to_vec();
    data.extend_from_slice(name("hostmaster.example.test.").as_wire());
    for field in [serial, 3600, 600, 86400, 300] {
        data.extend_from_slice(&field.to_be_bytes());
    }
    data
}

fn txt(text: &str) -> Vec<u8> {
    let mut data = vec![text.len() as u8];
    data.extend_from_slice(text.as_bytes());
    data
}

fn record(owner: &str, rtype: u16, ttl: u32, rdata: Vec<u8>) -> Record {
    Record {
        owner: name(owner),
        rtype,
        ttl,
        rdata: rdata.into(),
    }
}

/// The records of a small but varied zone at `serial` with `hosts` hosts.
fn zone_records(serial: u32, hosts: u32) -> Vec<Record> {
    let mut records = vec![
        record("example.test.", rtype::SOA, 3600, soa_rdata(serial)),
        record(
            "example.test.",
            rtype::NS,
            3600,
            name("ns1.example.test.").as_wire().to_vec(),
        ),
        record(
            "example.test.",
            rtype::NS,
            3600,
            name("NS2.Example.test.").as_wire().to_vec(),
        ),
        record("ns1.example.test.", rtype::A, 3600, vec![192, 0, 2, 1]),
        record("*.wild.example.test.", rtype::TXT, 60, txt("wildcard")),
        record(
            "sub.example.test.",
            rtype::NS,
            86400,
            name("ns.sub.example.test.").as_wire().to_vec(),
        ),
        record("ns.sub.example.test.", rtype::A, 86400, vec![192, 0, 2, 53]),
        record("a.b.c.example.test.", rtype::TXT, 300, txt("deep")),
    ];
    for host in 0..hosts {
        let owner = format!("h{host}.example.test.");
        records.push(record(&owner, rtype::A, 300, host.to_be_bytes().to_vec()));
        if host % 3 == 0 {
            let mut v6 = [0u8; 16];
            v6[12..].copy_from_slice(&host.to_be_bytes());
            records.push(record(&owner, rtype::AAAA, 300, v6.to_vec()));
            records.push(record(
                &owner,
                rtype::A,
                300,
                ((host + 1) << 8).to_be_bytes().to_vec(),
            ));
        }
    }
    records
}

fn build(apex: &Name, records: &[Record]) -> Zone {
    let mut builder = ZoneBuilder::new(apex);
    for r in records {
        builder
            .add(&MasterRecord {
                owner: r.owner.as_wire(),
                class: rr::class::IN,
                rtype: r.rtype,
                ttl: r.ttl,
                rdata: &r.rdata,
                file: Path::new("test"),
                line: 1,
            })
            .expect("test record");
    }
    builder.finish().expect("test zone")
}

fn rows(zone: &Zone) -> BTreeSet<Row> {
    zone.iter_records()
        .map(|(owner, set, data)| (owner.to_vec(), set.rtype, set.ttl, data.to_vec()))
        .collect()
}

fn state(serial: u32) -> ZoneState {
    ZoneState {
        serial,
        last_refresh: Some(1_700_000_000),
        expire_deadline: Some(1_700_600_000),
        refresh_due: None,
        master: Some("127.0.0.1:5400".to_string()),
        last_error: None,
    }
}

/// A diff that moves the zone from `from` to `from + 1` and changes one host.
fn one_change(from: u32, host: u32) -> Diff {
    let owner = format!("h{host}.example.test.");
    Diff {
        from_serial: from,
        to_serial: from + 1,
        removed: vec![
            record("example.test.", rtype::SOA, 3600, soa_rdata(from)),
            record(&owner, rtype::A, 300, host.to_be_bytes().to_vec()),
        ],
        added: vec![
            record("example.test.", rtype::SOA, 3600, soa_rdata(from + 1)),
            record(&owner, rtype::A, 300, (from + 1).to_be_bytes().to_vec()),
        ],
    }
}

/// A diff that only moves the SOA along.
fn soa_only(from: u32) -> Diff {
    Diff {
        from_serial: from,
        to_serial: from + 1,
        removed: vec![record("example.test.", rtype::SOA, 3600, soa_rdata(from))],
        added: vec![record(
            "example.test.",
            rtype::SOA,
            3600,
            soa_rdata(from + 1),
        )],
    }
}

fn open_temp() -> (tempdir::TempDir, Store) {
    let dir = tempdir::TempDir::new();
    let store = Store::open(&dir.path).expect("open store");
    (dir, store)
}

/// A directory removed when dropped (no extra dependency for one helper).
mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TempDir {
        pub path: PathBuf,
    }

    impl TempDir {
        pub fn new() -> TempDir {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "edge-agent-store-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempDir { path }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[test]
fn replace_then_load_round_trips_every_record() {
    let (dir, store) = open_temp();
    let zone = build(&apex(), &zone_records(7, 500));
    store.replace_zone(&zone, &state(7)).unwrap();
    let (loaded, loaded_state) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&loaded), rows(&zone));
    assert_eq!(loaded.serial(), 7);
    assert_eq!(loaded_state, state(7));
    drop(store);

    let store = Store::open(&dir.path).unwrap();
    let (reopened, _) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&reopened), rows(&zone));
    assert_eq!(store.zones().unwrap(), vec![apex()]);
}

#[test]
fn load_of_unknown_zone_is_none() {
    let (_dir, store) = open_temp();
    assert!(store.load_zone(&apex()).unwrap().is_none());
    assert!(store.state(&apex()).unwrap().is_none());
    assert!(matches!(
        store.set_state(&apex(), &state(1)),
        Err(StoreError::UnknownZone { .. })
    ));
}

#[test]
fn replace_drops_the_old_records_and_journal() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 300)), &state(1))
        .unwrap();
    store
        .apply_diffs(&apex(), &[soa_only(1)], &state(2), 10)
        .unwrap();
    let smaller = build(&apex(), &zone_records(5, 20));
    store.replace_zone(&smaller, &state(5)).unwrap();
    let (loaded, _) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&loaded), rows(&smaller));
    assert!(store.journal(&apex()).unwrap().is_empty());
    assert_eq!(store.journal_since(&apex(), 1).unwrap(), None);
}

#[test]
fn apply_diffs_changes_only_what_the_diffs_say() {
    let (_dir, store) = open_temp();
    let mut records = zone_records(1, 50);
    store
        .replace_zone(&build(&apex(), &records), &state(1))
        .unwrap();
    let diff = Diff {
        from_serial: 1,
        to_serial: 2,
        removed: vec![
            record("example.test.", rtype::SOA, 3600, soa_rdata(1)),
            // Removes a whole RRset and, with it, the name.
            record("a.b.c.example.test.", rtype::TXT, 300, txt("deep")),
            // Removes one record of a two-record RRset.
            record(
                "h3.example.test.",
                rtype::A,
                300,
                3u32.to_be_bytes().to_vec(),
            ),
        ],
        added: vec![
            record("example.test.", rtype::SOA, 3600, soa_rdata(2)),
            record("new.example.test.", rtype::TXT, 120, txt("new")),
            // A new TTL for an existing RRset.
            record(
                "h4.example.test.",
                rtype::A,
                900,
                4u32.to_be_bytes().to_vec(),
            ),
        ],
    };
    store
        .apply_diffs(&apex(), std::slice::from_ref(&diff), &state(2), 10)
        .unwrap();

    records.retain(|r| !diff.removed.contains(r) && r.owner != name("h4.example.test."));
    records.extend(diff.added.iter().cloned());
    let expected = build(&apex(), &records);
    let (loaded, loaded_state) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&loaded), rows(&expected));
    assert_eq!(loaded_state, state(2));
    assert_eq!(loaded.serial(), 2);
    assert_eq!(store.journal(&apex()).unwrap(), vec![diff]);

    let txn = store.db.begin_read().unwrap();
    let zones = txn.open_table(ZONES).unwrap();
    let meta = read_meta(&zones, &apex()).unwrap().unwrap();
    let (_, counts) = rrset_order(&expected);
    assert_eq!(
        (meta.names, meta.rrsets, meta.records),
        (counts.names, counts.rrsets, counts.records)
    );
}

/// Everything an IXFR could change: records, state and journal.
fn snapshot(store: &Store) -> (BTreeSet<Row>, Option<ZoneState>, Vec<Diff>) {
    let (zone, _) = store.load_zone(&apex()).unwrap().unwrap();
    (
        rows(&zone),
        store.state(&apex()).unwrap(),
        store.journal(&apex()).unwrap(),
    )
}

#[test]
fn apply_diffs_with_wrong_from_serial_changes_nothing() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 50)), &state(1))
        .unwrap();
    store
        .apply_diffs(&apex(), &[one_change(1, 5)], &state(2), 10)
        .unwrap();
    let before = snapshot(&store);
    let error = store
        .apply_diffs(&apex(), &[one_change(1, 6)], &state(2), 10)
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::SerialMismatch {
                stored: 2,
                from: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("example.test."));
    assert_eq!(snapshot(&store), before);
}

#[test]
fn apply_diffs_removing_an_absent_record_changes_nothing() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 50)), &state(1))
        .unwrap();
    let before = snapshot(&store);
    // The second diff removes a record the first one already changed.
    let diffs = [one_change(1, 5), one_change(2, 5)];
    let error = store
        .apply_diffs(&apex(), &diffs, &state(3), 10)
        .unwrap_err();
    assert!(
        matches!(error, StoreError::RecordAbsent { from: 2, to: 3, .. }),
        "{error}"
    );
    assert_eq!(snapshot(&store), before);
}

#[test]
fn apply_diffs_refuses_bad_chains_and_state_serials() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 10)), &state(1))
        .unwrap();
    let before = snapshot(&store);
    let gap = [soa_only(1), soa_only(3)];
    assert!(matches!(
        store.apply_diffs(&apex(), &gap, &state(4), 10),
        Err(StoreError::BadDiff { .. })
    ));
    let mut unframed = soa_only(1);
    unframed.added.reverse();
    unframed
        .added
        .push(record("x.example.test.", rtype::A, 1, vec![1, 2, 3, 4]));
    unframed.added.reverse();
    assert!(matches!(
        store.apply_diffs(&apex(), &[unframed], &state(2), 10),
        Err(StoreError::BadDiff { .. })
    ));
    assert!(matches!(
        store.apply_diffs(&apex(), &[soa_only(1)], &state(7), 10),
        Err(StoreError::StateSerial { .. })
    ));
    let mut outside = soa_only(1);
    outside
        .added
        .push(record("other.test.", rtype::A, 1, vec![1, 2, 3, 4]));
    assert!(matches!(
        store.apply_diffs(&apex(), &[outside], &state(2), 10),
        Err(StoreError::OutOfZone { .. })
    ));
    assert_eq!(snapshot(&store), before);
}

#[test]
fn journal_is_trimmed_oldest_first() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 10)), &state(1))
        .unwrap();
    for serial in 1..=8 {
        store
            .apply_diffs(&apex(), &[soa_only(serial)], &state(serial + 1), 3)
            .unwrap();
    }
    let journal = store.journal(&apex()).unwrap();
    let serials: Vec<(u32, u32)> = journal
        .iter()
        .map(|d| (d.from_serial, d.to_serial))
        .collect();
    assert_eq!(serials, vec![(6, 7), (7, 8), (8, 9)]);
    // A batch larger than the bound keeps only its newest entries.
    let batch: Vec<Diff> = (9..14).map(soa_only).collect();
    store.apply_diffs(&apex(), &batch, &state(14), 2).unwrap();
    let serials: Vec<u32> = store
        .journal(&apex())
        .unwrap()
        .iter()
        .map(|d| d.from_serial)
        .collect();
    assert_eq!(serials, vec![12, 13]);
}

#[test]
fn journal_since_present_and_absent_history() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(10, 20)), &state(10))
        .unwrap();
    for serial in 10..15 {
        store
            .apply_diffs(
                &apex(),
                &[one_change(serial, serial)],
                &state(serial + 1),
                3,
            )
            .unwrap();
    }
    // Journal holds 12->13, 13->14, 14->15.
    let since = store.journal_since(&apex(), 13).unwrap().unwrap();
    let serials: Vec<(u32, u32)> = since.iter().map(|d| (d.from_serial, d.to_serial)).collect();
    assert_eq!(serials, vec![(13, 14), (14, 15)]);
    assert_eq!(since[1], one_change(14, 14));
    assert_eq!(store.journal_since(&apex(), 15).unwrap(), Some(Vec::new()));
    assert_eq!(store.journal_since(&apex(), 11).unwrap(), None);
    assert_eq!(store.journal_since(&apex(), 99).unwrap(), None);
    assert!(matches!(
        store.journal_since(&name("other.test."), 1),
        Err(StoreError::UnknownZone { .. })
    ));
}

#[test]
fn set_state_keeps_records_and_checks_the_serial() {
    let (_dir, store) = open_temp();
    let zone = build(&apex(), &zone_records(3, 10));
    store.replace_zone(&zone, &state(3)).unwrap();
    let mut new_state = state(3);
    new_state.last_error = Some("master 127.0.0.1:5400: connection refused — retrying".into());
    new_state.refresh_due = Some(u64::MAX);
    new_state.master = None;
    store.set_state(&apex(), &new_state).unwrap();
    assert_eq!(store.state(&apex()).unwrap(), Some(new_state));
    assert!(matches!(
        store.set_state(&apex(), &state(4)),
        Err(StoreError::StateSerial { .. })
    ));
    let (loaded, _) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&loaded), rows(&zone));
}

#[test]
fn zones_are_listed_and_removed_independently() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 10)), &state(1))
        .unwrap();
    let other_apex = name("test.");
    let other_records = vec![
        record("test.", rtype::SOA, 60, soa_rdata(9)),
        record(
            "test.",
            rtype::NS,
            60,
            name("ns1.example.test.").as_wire().to_vec(),
        ),
        record("x.test.", rtype::A, 60, vec![10, 0, 0, 1]),
    ];
    let other = build(&other_apex, &other_records);
    store.replace_zone(&other, &state(9)).unwrap();
    store
        .apply_diffs(&apex(), &[soa_only(1)], &state(2), 5)
        .unwrap();
    let mut zones = store.zones().unwrap();
    zones.sort();
    let mut expected = vec![apex(), other_apex.clone()];
    expected.sort();
    assert_eq!(zones, expected);

    assert!(store.remove_zone(&apex()).unwrap());
    assert!(!store.remove_zone(&apex()).unwrap());
    assert_eq!(store.zones().unwrap(), vec![other_apex.clone()]);
    let (loaded, _) = store.load_zone(&other_apex).unwrap().unwrap();
    assert_eq!(rows(&loaded), rows(&other));
    assert!(store.load_zone(&apex()).unwrap().is_none());
    // The removed zone's journal is gone too.
    let txn = store.db.begin_read().unwrap();
    assert_eq!(txn.open_table(JOURNAL).unwrap().len().unwrap(), 0);
}

/// Overwrites one stored value behind the store's back.
fn damage(store: &Store, table: &str, key: &[u8], value: &[u8]) {
    let txn = store.db.begin_write().unwrap();
    txn.open_table(TableDefinition::<&[u8], &[u8]>::new(table))
        .unwrap()
        .insert(key, value)
        .unwrap();
    txn.commit().unwrap();
}

/// Replaces the value of one RRset inside its chunk, behind the store's back.
fn damage_rrset(store: &Store, key: &[u8], value: &[u8]) {
    let txn = store.db.begin_write().unwrap();
    {
        let name = rrset_table_name(&apex());
        let mut table = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
            .unwrap();
        let change = BTreeMap::from([(key.to_vec(), Some(value.to_vec()))]);
        chunks::update(&mut table, &apex(), change).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn damaged_values_are_errors_naming_the_zone() {
    let (_dir, store) = open_temp();
    store
        .replace_zone(&build(&apex(), &zone_records(1, 10)), &state(1))
        .unwrap();
    store
        .apply_diffs(&apex(), &[soa_only(1)], &state(2), 5)
        .unwrap();
    let rrsets = rrset_table_name(&apex());
    let mut key = Vec::new();
    codec::rrset_key(b"\x02h1", rtype::A, &mut key);

    damage_rrset(&store, &key, &[0, 0, 1, 44, 0, 9, 1]);
    let error = store.load_zone(&apex()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("example.test."));
    // A damaged RRset that an IXFR touches refuses the IXFR.
    let mut change = soa_only(2);
    change
        .removed
        .push(record("h1.example.test.", rtype::A, 300, vec![0, 0, 0, 1]));
    assert!(matches!(
        store.apply_diffs(&apex(), &[change], &state(3), 5),
        Err(StoreError::Corrupt { .. })
    ));

    damage(&store, &rrsets, b"\x7fbad", &[0, 0, 0, 1]);
    assert!(matches!(
        store.load_zone(&apex()),
        Err(StoreError::Corrupt { .. })
    ));

    damage(
        &store,
        "journal",
        &codec::journal_key(apex().as_wire(), 0),
        &[1, 2],
    );
    assert!(matches!(
        store.journal_since(&apex(), 1),
        Err(StoreError::Corrupt { .. })
    ));

    damage(&store, "zones", apex().as_wire(), b"\x01short");
    assert!(matches!(
        store.state(&apex()),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.apply_diffs(&apex(), &[soa_only(2)], &state(3), 5),
        Err(StoreError::Corrupt { .. })
    ));
}

/// Rewrites a store of the current layout in layout 1: one entry per
/// RRset in table `rrsets/<hex of apex>`, format 1.
fn downgrade_to_one_rrset_per_key(store: &Store, apex: &Name) {
    let txn = store.db.begin_write().unwrap();
    {
        let new_name = rrset_table_name(apex);
        let new = TableDefinition::<&[u8], &[u8]>::new(&new_name);
        let old_name = zone_table_name("rrsets/", apex);
        let mut old = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&old_name))
            .unwrap();
        let table = txn.open_table(new).unwrap();
        chunks::for_each(&table, apex, |key, value| {
            old.insert(key, value).unwrap();
            Ok(())
        })
        .unwrap();
        drop(table);
        txn.delete_table(new).unwrap();
        txn.open_table(INFO).unwrap().insert("format", 1).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_file_of_layout_one_is_converted_when_opened() {
    let (dir, store) = open_temp();
    let zone = build(&apex(), &zone_records(3, 2000));
    store.replace_zone(&zone, &state(3)).unwrap();
    store
        .apply_diffs(&apex(), &[one_change(3, 7)], &state(4), 10)
        .unwrap();
    let (before, _) = store.load_zone(&apex()).unwrap().unwrap();
    let journal = store.journal(&apex()).unwrap();
    downgrade_to_one_rrset_per_key(&store, &apex());
    drop(store);

    let store = Store::open(&dir.path).unwrap();
    assert_eq!(store.format().unwrap(), Some(FORMAT));
    let (after, after_state) = store.load_zone(&apex()).unwrap().unwrap();
    assert_eq!(rows(&after), rows(&before));
    assert_eq!(after_state, state(4));
    assert_eq!(store.journal(&apex()).unwrap(), journal);
    {
        let txn = store.db.begin_read().unwrap();
        let old_name = zone_table_name("rrsets/", &apex());
        let old = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&old_name));
        assert!(matches!(old, Err(redb::TableError::TableDoesNotExist(_))));
    }
    // The converted zone takes further changes.
    store
        .apply_diffs(&apex(), &[one_change(4, 8)], &state(5), 10)
        .unwrap();
    assert_eq!(store.load_zone(&apex()).unwrap().unwrap().0.serial(), 5);
}

#[test]
fn a_file_of_another_layout_is_refused() {
    let (dir, store) = open_temp();
    let txn = store.db.begin_write().unwrap();
    txn.open_table(INFO).unwrap().insert("format", 99).unwrap();
    txn.commit().unwrap();
    drop(store);
    assert!(matches!(
        Store::open(&dir.path),
        Err(StoreError::Format { found: 99, .. })
    ));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = codec::decode_meta(&bytes);
        let _ = codec::decode_diff(&bytes);
        let _ = codec::diff_serials(&bytes);
        let mut owner = Vec::new();
        let _ = codec::decode_rrset_key(&bytes, apex().as_wire(), &mut owner);
        if let Ok((_, records)) = codec::decode_rrset(&bytes) {
            for record in records {
                let _ = record;
            }
        }
    }

    #[test]
    fn meta_round_trips(
        serial in any::<u32>(),
        first in 0u64..1000,
        extra in 0u64..1000,
        times in proptest::array::uniform3(proptest::option::of(any::<u64>())),
        master in proptest::option::of(".{0,40}"),
        last_error in proptest::option::of(".{0,40}"),
    ) {
        let meta = ZoneMeta {
            journal_first: first,
            journal_next: first + extra,
            names: 1,
            rrsets: 2,
            records: 3,
            state: ZoneState {
                serial,
                last_refresh: times[0],
                expire_deadline: times[1],
                refresh_due: times[2],
                master,
                last_error,
            },
        };
        prop_assert_eq!(codec::decode_meta(&codec::encode_meta(&meta)), Ok(meta));
    }
}

/// Timing of the hot paths on a generated zone (printed, not asserted).
/// `STORE_BENCH_NAMES` sets the size; run in release for real figures:
/// `STORE_BENCH_NAMES=1000000 cargo test --release -p edge-agent --lib
/// store::tests::timing_replace_apply_load -- --nocapture`.
#[test]
fn timing_replace_apply_load() {
    let names: u32 = std::env::var("STORE_BENCH_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    // STORE_BENCH_QUICK_REPAIR=0 measures without quick repair (one-phase commits).
    let options = StoreOptions {
        quick_repair: std::env::var("STORE_BENCH_QUICK_REPAIR").map_or(true, |v| v != "0"),
        ..StoreOptions::default()
    };
    let dir = tempdir::TempDir::new();
    let store = Store::open_with(&dir.path, &options).unwrap();
    let mut records = zone_records(1, 0);
    records.reserve(2 * names as usize);
    for host in 0..names {
        let owner = Name::from_wire(
            &[
                &[format!("host{host}").len() as u8][..],
                format!("host{host}").as_bytes(),
                apex().as_wire(),
            ]
            .concat(),
        )
        .unwrap();
        records.push(Record {
            owner: owner.clone(),
            rtype: rtype::A,
            ttl: 300,
            rdata: host.to_be_bytes().into(),
        });
        let mut v6 = [0x20u8; 16];
        v6[12..].copy_from_slice(&host.to_be_bytes());
        records.push(Record {
            owner,
            rtype: rtype::AAAA,
            ttl: 300,
            rdata: v6.into(),
        });
    }
    let zone = build(&apex(), &records);
    drop(records);

    let rss_before = rss_mib("VmRSS:");
    // Resets the peak, so that the next reading is the peak during the write.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    store.replace_zone(&zone, &state(1)).unwrap();
    let replace = started.elapsed();
    let rss_peak = rss_mib("VmHWM:");

    // Ten one-record changes at spread-out names: the median is reported.
    let mut applies = Vec::new();
    for serial in 1..=10u32 {
        let host = serial * 7919 % names;
        let owner = format!("host{host}.example.test.");
        let diff = Diff {
            from_serial: serial,
            to_serial: serial + 1,
            removed: vec![
                record("example.test.", rtype::SOA, 3600, soa_rdata(serial)),
                record(&owner, rtype::A, 300, host.to_be_bytes().to_vec()),
            ],
            added: vec![
                record("example.test.", rtype::SOA, 3600, soa_rdata(serial + 1)),
                record(&owner, rtype::A, 300, vec![10, 9, 8, 7]),
            ],
        };
        let started = Instant::now();
        store
            .apply_diffs(&apex(), &[diff], &state(serial + 1), 100)
            .unwrap();
        applies.push(started.elapsed());
    }
    applies.sort();
    let apply = applies[applies.len() / 2];
    let apply_max = applies[applies.len() - 1];
    let file_size = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    drop(store);

    let started = Instant::now();
    let store = Store::open_with(&dir.path, &options).unwrap();
    let (loaded, _) = store.load_zone(&apex()).unwrap().unwrap();
    let reload = started.elapsed();
    assert_eq!(loaded.serial(), 11);
    assert_eq!(loaded.record_count(), zone.record_count());
    println!(
        "store timing: {names} names, {} records: replace_zone {:.3} s, \
         one-record apply_diffs median {:.1} ms (max {:.1} ms), reopen + load_zone {:.3} s, file {} MiB, \
         RSS {rss_before} MiB before replace_zone, peak {rss_peak} MiB during it",
        zone.record_count(),
        replace.as_secs_f64(),
        apply.as_secs_f64() * 1000.0,
        apply_max.as_secs_f64() * 1000.0,
        reload.as_secs_f64(),
        file_size >> 20
    );
}

/// A memory figure of this process from /proc (Linux), 0 when unknown.
fn rss_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib >> 10)
}

#[test]
fn store_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}
