//! The node's own crash-safe store: the current version of every secondary
//! zone, its IXFR journal and its timers, in one redb database file.
//!
//! redb rather than sled (see ARCHITECTURE.md): every commit is fsynced and
//! atomic, so after a crash or a power cut the file holds exactly the last
//! committed version of each zone. Every public operation is one write
//! transaction; an operation that fails writes nothing.
//!
//! # Layout
//! - table `info`: `"format"` → layout version ([`FORMAT`]).
//! - table `zones`: apex (lowercase wire name) → zone metadata: serial,
//!   journal bounds, name/RRset/record counts and the [`ZoneState`].
//! - table `chunks/<hex of apex>`, one per zone: the zone's RRsets, keyed by
//!   owner labels below the apex ‖ `0` ‖ type (big-endian), valued TTL ‖
//!   (length ‖ data) per record, packed many to a database value (see
//!   [`chunks`]). A full replacement writes a few thousand large values
//!   instead of one B-tree entry per RRset; an IXFR decodes and rewrites only
//!   the chunks holding the RRsets it touches; an AXFR drops the whole table.
//! - table `journal`: apex ‖ sequence number (big-endian) → one IXFR
//!   difference, oldest first. Apex wire names are prefix-free, so the keys
//!   of one zone form one contiguous range.
//!
//! The engine stays a detail of this module: nothing outside it sees redb.

mod chunks;
mod codec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction,
};

use crate::xfr::{Diff, Record};
use crate::zone::master::MasterRecord;
use crate::zone::rr::{self, rtype};
use crate::zone::{Name, Zone, ZoneBuilder, model};

use codec::{Malformed, ZoneMeta};

/// Version of the store layout. A file of version 1 (one database entry per
/// RRset) is converted when opened; any other version is refused.
pub const FORMAT: u32 = 2;

/// The layout that [`Store::open`] converts from.
const FORMAT_ONE_RRSET_PER_KEY: u32 = 1;

/// Name of the database file inside the store directory.
pub const FILE_NAME: &str = "edge-agent.redb";

/// Most zone problems reported when stored records fail to build a zone.
const MAX_PROBLEMS: usize = 50;

const INFO: TableDefinition<&str, u32> = TableDefinition::new("info");
const ZONES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("zones");
const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");

/// Timers and transfer state of one zone, kept with its version. Times are
/// seconds since the Unix epoch (see [`unix_time`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneState {
    /// Serial of the stored version; must match the version being written.
    pub serial: u32,
    /// When a master last confirmed or updated the zone.
    pub last_refresh: Option<u64>,
    /// When the zone expires without a successful refresh (SOA EXPIRE).
    pub expire_deadline: Option<u64>,
    /// When the next refresh is due (SOA REFRESH or RETRY, with jitter).
    pub refresh_due: Option<u64>,
    /// The master that answered last, as `address:port`.
    pub master: Option<String>,
    /// The last transfer or refresh error, for operators; `None` after a success.
    pub last_error: Option<String>,
}

/// Seconds since the Unix epoch of a point in time (0 before the epoch).
pub fn unix_time(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Tuning of a [`Store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of database pages cached in memory.
    pub cache_bytes: usize,
    /// Save the allocator state with every commit so that opening after a
    /// crash takes milliseconds instead of a walk over the whole file. It
    /// also makes every commit two-phase (two fsyncs).
    pub quick_repair: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 << 20,
            quick_repair: true,
        }
    }
}

/// Why a store operation failed. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store directory could not be created.
    #[error("cannot create the store directory {}: {source}", .path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or initialised.
    #[error("cannot open the store {}: {source}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the database engine said.
        #[source]
        source: redb::Error,
    },
    /// The database file was written with another store layout.
    #[error("the store {} has layout version {found}; this agent reads version {FORMAT}", .path.display())]
    Format {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// The database engine failed outside any one zone (e.g. listing zones).
    #[error("store: {source}")]
    Database {
        /// What the database engine said.
        #[source]
        source: redb::Error,
    },
    /// The database engine failed while working on a zone (I/O, damaged file).
    #[error("zone {zone}: store: {source}")]
    Engine {
        /// The zone.
        zone: Name,
        /// What the database engine said.
        #[source]
        source: redb::Error,
    },
    /// The zone has no version in the store.
    #[error("zone {zone}: not in the store")]
    UnknownZone {
        /// The zone.
        zone: Name,
    },
    /// The IXFR does not start at the stored serial.
    #[error("zone {zone}: the store holds serial {stored}, the IXFR starts at serial {from}")]
    SerialMismatch {
        /// The zone.
        zone: Name,
        /// The stored serial.
        stored: u32,
        /// The first difference's starting serial.
        from: u32,
    },
    /// A difference is malformed: serials not chained, or not framed by the
    /// old and new apex SOA.
    #[error("zone {zone}: IXFR difference {from} -> {to}: {reason}")]
    BadDiff {
        /// The zone.
        zone: Name,
        /// The difference's starting serial.
        from: u32,
        /// The difference's ending serial.
        to: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A difference removes a record the stored version does not hold.
    #[error("zone {zone}: IXFR difference {from} -> {to} removes a {} record at {owner} that is not stored", rr::rtype_name(*.rtype))]
    RecordAbsent {
        /// The zone.
        zone: Name,
        /// The difference's starting serial.
        from: u32,
        /// The difference's ending serial.
        to: u32,
        /// Owner of the record.
        owner: Name,
        /// Type of the record.
        rtype: u16,
    },
    /// A record lies outside the zone.
    #[error("zone {zone}: record owner {owner} is outside the zone")]
    OutOfZone {
        /// The zone.
        zone: Name,
        /// The owner at fault.
        owner: Name,
    },
    /// After applying the differences the apex SOA is not one record with
    /// the final serial.
    #[error("zone {zone}: after the IXFR the apex SOA is not one record with serial {serial}")]
    SoaMismatch {
        /// The zone.
        zone: Name,
        /// The serial expected.
        serial: u32,
    },
    /// The state's serial is not the serial of the version it goes with.
    #[error("zone {zone}: state for serial {given}, but the version has serial {version}")]
    StateSerial {
        /// The zone.
        zone: Name,
        /// The version's serial.
        version: u32,
        /// The serial in the state.
        given: u32,
    },
    /// Something exceeds what the layout can hold (a record over 64 KiB, an
    /// RRset of more than 65535 records, a zone over 4 GiB).
    #[error("zone {zone}: {what} too large to store")]
    TooLarge {
        /// The zone.
        zone: Name,
        /// What is too large.
        what: &'static str,
    },
    /// A stored key or value does not decode: the file is damaged or was
    /// written by something else.
    #[error("zone {zone}: damaged store entry ({what})")]
    Corrupt {
        /// The zone.
        zone: Name,
        /// What could not be decoded.
        what: &'static str,
    },
    /// The stored records decode but do not build a valid zone.
    #[error("zone {zone}: the stored records do not form a valid zone: {}", .problems.join("; "))]
    Invalid {
        /// The zone.
        zone: Name,
        /// Every problem the zone builder found.
        problems: Vec<String>,
    },
}

/// The node store: one redb database file in a directory. Safe to share
/// between threads; write operations are serialised by the engine.
pub struct Store {
    db: Database,
    path: PathBuf,
    quick_repair: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store in `dir` with default options, creating the directory
    /// and the database file if missing. After a crash this repairs the file
    /// back to its last committed state.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &StoreOptions::default())
    }

    /// Opens the store in `dir` with the given options.
    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDirectory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let open_error = |source: redb::Error| StoreError::Open {
            path: path.clone(),
            source,
        };
        let db = redb::Builder::new()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|e| open_error(e.into()))?;
        let store = Store {
            db,
            path: path.clone(),
            quick_repair: options.quick_repair,
        };
        let found = store.format().map_err(open_error)?;
        match found {
            Some(FORMAT) => Ok(store),
            Some(FORMAT_ONE_RRSET_PER_KEY) => {
                store.convert_from_one_rrset_per_key()?;
                Ok(store)
            }
            Some(found) => Err(StoreError::Format { path, found }),
            None => {
                store.initialise().map_err(open_error)?;
                Ok(store)
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a whole new version (an AXFR result): the zone's old RRsets
    /// and journal are dropped, every RRset, the serial and `state` are
    /// written, in one transaction. `state.serial` must be the zone's serial.
    pub fn replace_zone(&self, zone: &Zone, state: &ZoneState) -> Result<(), StoreError> {
        let apex = zone.apex();
        if state.serial != zone.serial() {
            return Err(StoreError::StateSerial {
                zone: apex.clone(),
                version: zone.serial(),
                given: state.serial,
            });
        }
        let (order, counts) = rrset_order(zone);
        let txn = self.begin_write().zone_context(apex)?;
        let old = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            read_meta(&zones, apex)?
        };
        let table_name = rrset_table_name(apex);
        let definition = TableDefinition::<&[u8], &[u8]>::new(&table_name);
        txn.delete_table(definition).zone_context(apex)?;
        {
            let mut table = txn.open_table(definition).zone_context(apex)?;
            write_rrsets(zone, &order, &mut table)?;
        }
        clear_journal(&txn, apex)?;
        // Sequence numbers keep growing across versions: an entry is never reused.
        let sequence = old.map_or(0, |meta| meta.journal_next);
        let meta = ZoneMeta {
            journal_first: sequence,
            journal_next: sequence,
            names: counts.names,
            rrsets: counts.rrsets,
            records: counts.records,
            state: state.clone(),
        };
        write_meta(&txn, apex, &meta)?;
        txn.commit().zone_context(apex)
    }

    /// Applies IXFR differences to the stored version, in one transaction:
    /// only the RRsets they touch are read and rewritten, the differences
    /// are appended to the journal, which is then trimmed to `max_journal`
    /// entries (oldest first), and `state` replaces the zone's state.
    ///
    /// Refused, with nothing written, when the stored serial is not the first
    /// difference's `from_serial`, when the differences are not chained or not
    /// framed by the apex SOA, when a removed record is not stored, or when
    /// `state.serial` is not the last difference's `to_serial`. An empty
    /// `diffs` only replaces the state, as [`Store::set_state`] does.
    pub fn apply_diffs(
        &self,
        apex: &Name,
        diffs: &[Diff],
        state: &ZoneState,
        max_journal: usize,
    ) -> Result<(), StoreError> {
        let apex = &apex.to_lowercase();
        let Some(first) = diffs.first() else {
            return self.set_state(apex, state);
        };
        check_chain(apex, diffs)?;
        let last_serial = diffs.last().map_or(first.to_serial, |d| d.to_serial);
        if state.serial != last_serial {
            return Err(StoreError::StateSerial {
                zone: apex.clone(),
                version: last_serial,
                given: state.serial,
            });
        }
        let txn = self.begin_write().zone_context(apex)?;
        let mut meta = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            read_meta(&zones, apex)?
                .ok_or_else(|| StoreError::UnknownZone { zone: apex.clone() })?
        };
        if meta.state.serial != first.from_serial {
            return Err(StoreError::SerialMismatch {
                zone: apex.clone(),
                stored: meta.state.serial,
                from: first.from_serial,
            });
        }
        {
            let table_name = rrset_table_name(apex);
            let mut table = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&table_name))
                .zone_context(apex)?;
            let mut changes = Changes::new(apex);
            for diff in diffs {
                changes.apply(&table, diff)?;
            }
            changes.write(&mut table, &mut meta)?;
            check_apex_soa(&table, apex, last_serial)?;
        }
        append_journal(&txn, apex, &mut meta, diffs, max_journal)?;
        meta.state = state.clone();
        write_meta(&txn, apex, &meta)?;
        txn.commit().zone_context(apex)
    }

    /// Builds the stored version of a zone, with its state; `None` when the
    /// zone is not in the store.
    pub fn load_zone(&self, apex: &Name) -> Result<Option<(Zone, ZoneState)>, StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.db.begin_read().zone_context(apex)?;
        let meta = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            match read_meta(&zones, apex)? {
                Some(meta) => meta,
                None => return Ok(None),
            }
        };
        let table_name = rrset_table_name(apex);
        let table = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&table_name))
            .zone_context(apex)?;
        let mut builder = ZoneBuilder::new(apex);
        builder.reserve(
            usize::try_from(meta.records).unwrap_or(0),
            usize::try_from(meta.names).unwrap_or(0),
        );
        let mut owner = Vec::with_capacity(crate::zone::name::MAX_NAME_LEN);
        let mut problems = Vec::new();
        chunks::for_each(&table, apex, |key, value| {
            let rrset_type = codec::decode_rrset_key(key, apex.as_wire(), &mut owner)
                .map_err(|m| corrupt(apex, m))?;
            let (ttl, records) = codec::decode_rrset(value).map_err(|m| corrupt(apex, m))?;
            for data in records {
                let data = data.map_err(|m| corrupt(apex, m))?;
                let record = MasterRecord {
                    owner: &owner,
                    class: rr::class::IN,
                    rtype: rrset_type,
                    ttl,
                    rdata: data,
                    file: &self.path,
                    line: 0,
                };
                if let Err(problem) = builder.add(&record)
                    && problems.len() < MAX_PROBLEMS
                {
                    problems.push(problem);
                }
            }
            Ok(())
        })?;
        if !problems.is_empty() {
            return Err(StoreError::Invalid {
                zone: apex.clone(),
                problems,
            });
        }
        let zone = builder.finish().map_err(|problems| StoreError::Invalid {
            zone: apex.clone(),
            problems,
        })?;
        if zone.serial() != meta.state.serial {
            return Err(corrupt(apex, Malformed("serial differs from the apex SOA")));
        }
        Ok(Some((zone, meta.state)))
    }

    /// The differences that lead from `serial` to the stored version, oldest
    /// first (empty when `serial` is the stored one), or `None` when the
    /// journal does not reach back to `serial`.
    pub fn journal_since(&self, apex: &Name, serial: u32) -> Result<Option<Vec<Diff>>, StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.db.begin_read().zone_context(apex)?;
        let meta = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            read_meta(&zones, apex)?
                .ok_or_else(|| StoreError::UnknownZone { zone: apex.clone() })?
        };
        if meta.state.serial == serial {
            return Ok(Some(Vec::new()));
        }
        let journal = txn.open_table(JOURNAL).zone_context(apex)?;
        let low = codec::journal_key(apex.as_wire(), meta.journal_first);
        let high = codec::journal_key(apex.as_wire(), meta.journal_next);
        // Newest first: a serial met twice (after wrapping) gives the shorter chain.
        let mut newest_first = Vec::new();
        for entry in journal
            .range::<&[u8]>(low.as_slice()..high.as_slice())
            .zone_context(apex)?
            .rev()
        {
            let (_, value) = entry.zone_context(apex)?;
            let value = value.value();
            let (from, _) = codec::diff_serials(value).map_err(|m| corrupt(apex, m))?;
            newest_first.push(codec::decode_diff(value).map_err(|m| corrupt(apex, m))?);
            if from == serial {
                newest_first.reverse();
                check_journal(apex, &newest_first, meta.state.serial)?;
                return Ok(Some(newest_first));
            }
        }
        Ok(None)
    }

    /// The whole journal of a zone, oldest first.
    pub fn journal(&self, apex: &Name) -> Result<Vec<Diff>, StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.db.begin_read().zone_context(apex)?;
        let meta = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            read_meta(&zones, apex)?
                .ok_or_else(|| StoreError::UnknownZone { zone: apex.clone() })?
        };
        let journal = txn.open_table(JOURNAL).zone_context(apex)?;
        let low = codec::journal_key(apex.as_wire(), meta.journal_first);
        let high = codec::journal_key(apex.as_wire(), meta.journal_next);
        let mut diffs = Vec::new();
        for entry in journal
            .range::<&[u8]>(low.as_slice()..high.as_slice())
            .zone_context(apex)?
        {
            let (_, value) = entry.zone_context(apex)?;
            diffs.push(codec::decode_diff(value.value()).map_err(|m| corrupt(apex, m))?);
        }
        if diffs.len() as u64 != meta.journal_len() {
            return Err(corrupt(apex, Malformed("journal entries missing")));
        }
        check_journal(apex, &diffs, meta.state.serial)?;
        Ok(diffs)
    }

    /// The state of a zone, `None` when the zone is not in the store.
    pub fn state(&self, apex: &Name) -> Result<Option<ZoneState>, StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.db.begin_read().zone_context(apex)?;
        let zones = txn.open_table(ZONES).zone_context(apex)?;
        Ok(read_meta(&zones, apex)?.map(|meta| meta.state))
    }

    /// Replaces the timers and transfer state of a stored zone, leaving its
    /// records and journal alone (e.g. after a refresh that found the zone up
    /// to date, or after an error). `state.serial` must be the stored serial.
    pub fn set_state(&self, apex: &Name, state: &ZoneState) -> Result<(), StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.begin_write().zone_context(apex)?;
        let mut meta = {
            let zones = txn.open_table(ZONES).zone_context(apex)?;
            read_meta(&zones, apex)?
                .ok_or_else(|| StoreError::UnknownZone { zone: apex.clone() })?
        };
        if state.serial != meta.state.serial {
            return Err(StoreError::StateSerial {
                zone: apex.clone(),
                version: meta.state.serial,
                given: state.serial,
            });
        }
        meta.state = state.clone();
        write_meta(&txn, apex, &meta)?;
        txn.commit().zone_context(apex)
    }

    /// The apex of every stored zone.
    pub fn zones(&self) -> Result<Vec<Name>, StoreError> {
        let database = |source: redb::Error| StoreError::Database { source };
        let txn = self.db.begin_read().map_err(|e| database(e.into()))?;
        let zones = txn.open_table(ZONES).map_err(|e| database(e.into()))?;
        let mut apexes = Vec::new();
        for entry in zones.iter().map_err(|e| database(e.into()))? {
            let (key, _) = entry.map_err(|e| database(e.into()))?;
            let apex = Name::from_wire(key.value()).map_err(|_| StoreError::Corrupt {
                zone: Name::root(),
                what: "zone list key",
            })?;
            apexes.push(apex);
        }
        Ok(apexes)
    }

    /// Removes a zone: records, journal and state. Returns whether it was stored.
    pub fn remove_zone(&self, apex: &Name) -> Result<bool, StoreError> {
        let apex = &apex.to_lowercase();
        let txn = self.begin_write().zone_context(apex)?;
        let table_name = rrset_table_name(apex);
        let had_table = txn
            .delete_table(TableDefinition::<&[u8], &[u8]>::new(&table_name))
            .zone_context(apex)?;
        clear_journal(&txn, apex)?;
        let had_meta = {
            let mut zones = txn.open_table(ZONES).zone_context(apex)?;
            zones.remove(apex.as_wire()).zone_context(apex)?.is_some()
        };
        txn.commit().zone_context(apex)?;
        Ok(had_table || had_meta)
    }

    /// Converts a file of layout 1, where each RRset was one entry of table
    /// `rrsets/<hex of apex>`, to chunks, in one transaction: a crash or an
    /// error leaves the file as it was. Keys and values are unchanged, so the
    /// entries are copied in order.
    fn convert_from_one_rrset_per_key(&self) -> Result<(), StoreError> {
        let apexes = self.zones()?;
        let txn = self
            .begin_write()
            .map_err(|source| StoreError::Database { source })?;
        for apex in &apexes {
            let old_name = zone_table_name("rrsets/", apex);
            let old = TableDefinition::<&[u8], &[u8]>::new(&old_name);
            let new_name = rrset_table_name(apex);
            {
                let old_table = txn.open_table(old).zone_context(apex)?;
                let mut new_table = txn
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(&new_name))
                    .zone_context(apex)?;
                let mut packer = chunks::Packer::new();
                for entry in old_table.iter().zone_context(apex)? {
                    let (key, value) = entry.zone_context(apex)?;
                    packer.push(&mut new_table, apex, key.value(), &[value.value()])?;
                }
                packer.finish(&mut new_table, apex)?;
            }
            txn.delete_table(old).zone_context(apex)?;
        }
        let database = |source: redb::Error| StoreError::Database { source };
        txn.open_table(INFO)
            .map_err(|e| database(e.into()))?
            .insert("format", FORMAT)
            .map_err(|e| database(e.into()))?;
        txn.commit().map_err(|e| database(e.into()))?;
        tracing::info!(
            store = %self.path.display(),
            zones = apexes.len(),
            "store converted from layout {FORMAT_ONE_RRSET_PER_KEY} to {FORMAT}"
        );
        Ok(())
    }

    /// A write transaction that is durable when it commits.
    fn begin_write(&self) -> Result<WriteTransaction, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_quick_repair(self.quick_repair);
        Ok(txn)
    }

    /// The layout version recorded in the file; `None` for a new file.
    fn format(&self) -> Result<Option<u32>, redb::Error> {
        let txn = self.db.begin_read()?;
        let info = match txn.open_table(INFO) {
            Ok(info) => info,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        Ok(info.get("format")?.map(|value| value.value()))
    }

    /// Creates the tables of a new file and records the layout version.
    fn initialise(&self) -> Result<(), redb::Error> {
        let txn = self.begin_write()?;
        txn.open_table(INFO)?.insert("format", FORMAT)?;
        txn.open_table(ZONES)?;
        txn.open_table(JOURNAL)?;
        txn.commit()?;
        Ok(())
    }
}

/// Attaches the zone to database engine errors.
trait ZoneContext<T> {
    fn zone_context(self, zone: &Name) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> ZoneContext<T> for Result<T, E> {
    fn zone_context(self, zone: &Name) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::Engine {
            zone: zone.clone(),
            source: error.into(),
        })
    }
}

fn corrupt(zone: &Name, malformed: Malformed) -> StoreError {
    StoreError::Corrupt {
        zone: zone.clone(),
        what: malformed.0,
    }
}

/// Name of the table holding a zone's RRsets.
fn rrset_table_name(apex: &Name) -> String {
    zone_table_name("chunks/", apex)
}

/// `prefix` followed by the apex's wire form in hex.
fn zone_table_name(prefix: &str, apex: &Name) -> String {
    use std::fmt::Write as _;
    let mut name = String::with_capacity(prefix.len() + 2 * apex.as_wire().len());
    name.push_str(prefix);
    for byte in apex.as_wire() {
        let _ = write!(name, "{byte:02x}");
    }
    name
}

fn read_meta(
    zones: &impl ReadableTable<&'static [u8], &'static [u8]>,
    apex: &Name,
) -> Result<Option<ZoneMeta>, StoreError> {
    let Some(value) = zones.get(apex.as_wire()).zone_context(apex)? else {
        return Ok(None);
    };
    codec::decode_meta(value.value())
        .map(Some)
        .map_err(|m| corrupt(apex, m))
}

fn write_meta(txn: &WriteTransaction, apex: &Name, meta: &ZoneMeta) -> Result<(), StoreError> {
    let mut zones = txn.open_table(ZONES).zone_context(apex)?;
    zones
        .insert(apex.as_wire(), codec::encode_meta(meta).as_slice())
        .zone_context(apex)?;
    Ok(())
}

/// Counts of a zone version, kept so that loading can reserve memory.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    names: u64,
    rrsets: u64,
    records: u64,
}

/// The nodes holding data, in key order (owner labels below the apex,
/// compared as bytes: that is the order of `labels ‖ 0 ‖ type`, since a
/// shorter label sequence that is a prefix sorts first either way), and the
/// zone's counts. Writing in key order keeps B-tree inserts sequential.
fn rrset_order(zone: &Zone) -> (Vec<model::NodeId>, Counts) {
    let apex_len = zone.apex().as_wire().len();
    let relative = |id: model::NodeId| {
        let owner = zone.node_name(id);
        &owner[..owner.len() - apex_len]
    };
    // Sorted on the first 16 bytes first, zero-padded (a name that is a
    // prefix of another pads below it), and on the whole name on a tie:
    // most comparisons are then one integer comparison.
    let prefix = |id: model::NodeId| {
        let mut bytes = [0u8; 16];
        let name = relative(id);
        let len = name.len().min(16);
        bytes[..len].copy_from_slice(&name[..len]);
        u128::from_be_bytes(bytes)
    };
    let mut keyed: Vec<(u128, model::NodeId)> = zone
        .node_ids()
        .filter(|&id| zone.node(id).rrset_count > 0)
        .map(|id| (prefix(id), id))
        .collect();
    keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb).then_with(|| relative(a).cmp(relative(b)))
    });
    let order: Vec<model::NodeId> = keyed.into_iter().map(|(_, id)| id).collect();
    let mut counts = Counts {
        names: order.len() as u64,
        ..Counts::default()
    };
    for &id in &order {
        for set in zone.rrsets(id) {
            counts.rrsets += 1;
            counts.records += u64::from(set.count);
        }
    }
    (order, counts)
}

/// Writes every RRset of `zone`, nodes in `order`, packed into chunks,
/// values copied straight from the zone's record arena.
fn write_rrsets(
    zone: &Zone,
    order: &[model::NodeId],
    table: &mut Table<&'static [u8], &'static [u8]>,
) -> Result<(), StoreError> {
    let apex = zone.apex();
    let apex_len = apex.as_wire().len();
    let mut key = Vec::with_capacity(crate::zone::name::MAX_NAME_LEN + 3);
    let mut packer = chunks::Packer::new();
    for &id in order {
        let owner = zone.node_name(id);
        let relative = &owner[..owner.len() - apex_len];
        for set in zone.rrsets(id) {
            codec::rrset_key(relative, set.rtype, &mut key);
            let records = zone.rrset_data(set);
            packer.push(table, apex, &key, &[&set.ttl.to_be_bytes(), records])?;
        }
    }
    packer.finish(table, apex)
}

/// Removes every journal entry of a zone.
fn clear_journal(txn: &WriteTransaction, apex: &Name) -> Result<(), StoreError> {
    let mut journal = txn.open_table(JOURNAL).zone_context(apex)?;
    let low = codec::journal_key(apex.as_wire(), 0);
    let high = codec::journal_key(apex.as_wire(), u64::MAX);
    journal
        .retain_in::<&[u8], _>(low.as_slice()..=high.as_slice(), |_, _| false)
        .zone_context(apex)
}

/// Appends `diffs` to the journal and trims it to `max_journal` entries.
fn append_journal(
    txn: &WriteTransaction,
    apex: &Name,
    meta: &mut ZoneMeta,
    diffs: &[Diff],
    max_journal: usize,
) -> Result<(), StoreError> {
    let mut journal = txn.open_table(JOURNAL).zone_context(apex)?;
    for diff in diffs {
        let value = codec::encode_diff(diff).map_err(|_| StoreError::TooLarge {
            zone: apex.clone(),
            what: "IXFR difference",
        })?;
        let key = codec::journal_key(apex.as_wire(), meta.journal_next);
        journal
            .insert(key.as_slice(), value.as_slice())
            .zone_context(apex)?;
        meta.journal_next += 1;
    }
    let max = u64::try_from(max_journal).unwrap_or(u64::MAX);
    while meta.journal_len() > max {
        let key = codec::journal_key(apex.as_wire(), meta.journal_first);
        journal.remove(key.as_slice()).zone_context(apex)?;
        meta.journal_first += 1;
    }
    Ok(())
}

/// Checks that differences are chained and framed by the apex SOA: each
/// removes the old SOA first and adds the new one first, with the serials
/// the difference claims.
fn check_chain(apex: &Name, diffs: &[Diff]) -> Result<(), StoreError> {
    let mut previous: Option<u32> = None;
    for diff in diffs {
        let bad = |reason| StoreError::BadDiff {
            zone: apex.clone(),
            from: diff.from_serial,
            to: diff.to_serial,
            reason,
        };
        if previous.is_some_and(|to| to != diff.from_serial) {
            return Err(bad("does not start where the previous one ended"));
        }
        if soa_serial(apex, diff.removed.first()) != Some(diff.from_serial) {
            return Err(bad("does not start by removing the old apex SOA"));
        }
        if soa_serial(apex, diff.added.first()) != Some(diff.to_serial) {
            return Err(bad("does not start adding with the new apex SOA"));
        }
        previous = Some(diff.to_serial);
    }
    Ok(())
}

/// The serial of a record when it is the apex SOA.
fn soa_serial(apex: &Name, record: Option<&Record>) -> Option<u32> {
    let record = record?;
    if record.rtype != rtype::SOA || !record.owner.as_wire().eq_ignore_ascii_case(apex.as_wire()) {
        return None;
    }
    model::soa_fields(record.ttl, &record.rdata).map(|soa| soa.serial)
}

/// Checks that the journal is chained and ends at the stored serial.
fn check_journal(apex: &Name, diffs: &[Diff], serial: u32) -> Result<(), StoreError> {
    let chained = diffs
        .windows(2)
        .all(|pair| pair[0].to_serial == pair[1].from_serial);
    let ends = diffs.last().is_none_or(|last| last.to_serial == serial);
    if chained && ends {
        Ok(())
    } else {
        Err(corrupt(
            apex,
            Malformed("journal not chained to the stored serial"),
        ))
    }
}

/// After the differences are written: the apex SOA RRset must be one
/// record carrying the final serial.
fn check_apex_soa(
    table: &Table<&'static [u8], &'static [u8]>,
    apex: &Name,
    serial: u32,
) -> Result<(), StoreError> {
    let mismatch = || StoreError::SoaMismatch {
        zone: apex.clone(),
        serial,
    };
    let mut key = Vec::new();
    codec::rrset_key(&[], rtype::SOA, &mut key);
    let value = chunks::get(table, apex, &key)?.ok_or_else(mismatch)?;
    let (ttl, mut records) = codec::decode_rrset(&value).map_err(|m| corrupt(apex, m))?;
    let data = records
        .next()
        .ok_or_else(mismatch)?
        .map_err(|m| corrupt(apex, m))?;
    if records.next().is_some() {
        return Err(mismatch());
    }
    match model::soa_fields(ttl, data) {
        Some(soa) if soa.serial == serial => Ok(()),
        _ => Err(mismatch()),
    }
}

/// One RRset being changed by an IXFR.
#[derive(Debug)]
struct WorkingRRset {
    ttl: u32,
    records: Vec<Box<[u8]>>,
    /// Records it held in the store before this transaction.
    stored: usize,
}

/// The RRsets an IXFR touches, read once and written back once.
#[derive(Debug)]
struct Changes<'a> {
    apex: &'a Name,
    /// RRset key → its new contents.
    rrsets: BTreeMap<Vec<u8>, WorkingRRset>,
    /// Owner labels below the apex → whether the owner held data before.
    owners: BTreeMap<Vec<u8>, bool>,
    key: Vec<u8>,
}

impl<'a> Changes<'a> {
    fn new(apex: &'a Name) -> Changes<'a> {
        Changes {
            apex,
            rrsets: BTreeMap::new(),
            owners: BTreeMap::new(),
            key: Vec::new(),
        }
    }

    /// Applies one difference: removals first, then additions (RFC 1995).
    fn apply(
        &mut self,
        table: &Table<&'static [u8], &'static [u8]>,
        diff: &Diff,
    ) -> Result<(), StoreError> {
        for record in &diff.removed {
            let set = self.rrset(table, record)?;
            let position = set.records.iter().position(|data| **data == *record.rdata);
            match position {
                Some(position) => {
                    set.records.remove(position);
                }
                None => {
                    return Err(StoreError::RecordAbsent {
                        zone: self.apex.clone(),
                        from: diff.from_serial,
                        to: diff.to_serial,
                        owner: record.owner.clone(),
                        rtype: record.rtype,
                    });
                }
            }
        }
        for record in &diff.added {
            let apex = self.apex;
            if u16::try_from(record.rdata.len()).is_err() {
                return Err(StoreError::TooLarge {
                    zone: apex.clone(),
                    what: "record data",
                });
            }
            let set = self.rrset(table, record)?;
            // RFC 2181 §5.2: one TTL per RRset; the newest record sets it.
            set.ttl = record.ttl;
            if !set.records.iter().any(|data| **data == *record.rdata) {
                if set.records.len() >= usize::from(u16::MAX) {
                    return Err(StoreError::TooLarge {
                        zone: apex.clone(),
                        what: "RRset",
                    });
                }
                set.records.push(record.rdata.clone());
            }
        }
        Ok(())
    }

    /// The working copy of a record's RRset, read from the store the first
    /// time it is touched.
    fn rrset(
        &mut self,
        table: &Table<&'static [u8], &'static [u8]>,
        record: &Record,
    ) -> Result<&mut WorkingRRset, StoreError> {
        let apex = self.apex;
        let owner = record.owner.to_lowercase();
        let relative = codec::relative_owner(owner.as_wire(), apex.as_wire()).ok_or_else(|| {
            StoreError::OutOfZone {
                zone: apex.clone(),
                owner: record.owner.clone(),
            }
        })?;
        if !self.owners.contains_key(relative) {
            let had_data = owner_has_data(table, apex, relative)?;
            self.owners.insert(relative.to_vec(), had_data);
        }
        codec::rrset_key(relative, record.rtype, &mut self.key);
        if !self.rrsets.contains_key(&self.key) {
            let set = match chunks::get(table, apex, &self.key)? {
                None => WorkingRRset {
                    ttl: record.ttl,
                    records: Vec::new(),
                    stored: 0,
                },
                Some(value) => {
                    let (ttl, records) =
                        codec::decode_rrset(&value).map_err(|m| corrupt(apex, m))?;
                    let records = records
                        .map(|data| data.map(Box::from))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| corrupt(apex, m))?;
                    WorkingRRset {
                        ttl,
                        stored: records.len(),
                        records,
                    }
                }
            };
            self.rrsets.insert(self.key.clone(), set);
        }
        self.rrsets
            .get_mut(&self.key)
            .ok_or_else(|| corrupt(apex, Malformed("working RRset")))
    }

    /// Writes the touched RRsets back (deleting the emptied ones) and
    /// updates the counts in `meta`.
    fn write(
        self,
        table: &mut Table<&'static [u8], &'static [u8]>,
        meta: &mut ZoneMeta,
    ) -> Result<(), StoreError> {
        let apex = self.apex;
        let mut updates = BTreeMap::new();
        for (key, set) in self.rrsets {
            meta.records =
                (meta.records + set.records.len() as u64).saturating_sub(set.stored as u64);
            match (set.stored > 0, set.records.is_empty()) {
                (true, true) => {
                    updates.insert(key, None);
                    meta.rrsets = meta.rrsets.saturating_sub(1);
                }
                (_, false) => {
                    let mut value = Vec::new();
                    codec::encode_rrset(set.ttl, set.records.iter().map(|d| &**d), &mut value)
                        .map_err(|_| StoreError::TooLarge {
                            zone: apex.clone(),
                            what: "record data",
                        })?;
                    updates.insert(key, Some(value));
                    if set.stored == 0 {
                        meta.rrsets += 1;
                    }
                }
                (false, true) => {}
            }
        }
        chunks::update(table, apex, updates)?;
        for (relative, had_data) in &self.owners {
            let has_data = owner_has_data(table, apex, relative)?;
            match (had_data, has_data) {
                (false, true) => meta.names += 1,
                (true, false) => meta.names = meta.names.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether any RRset is stored at an owner (given by its labels below the apex).
fn owner_has_data(
    table: &Table<&'static [u8], &'static [u8]>,
    apex: &Name,
    relative: &[u8],
) -> Result<bool, StoreError> {
    let mut low = Vec::with_capacity(relative.len() + 3);
    let mut high = Vec::with_capacity(relative.len() + 3);
    codec::rrset_key(relative, 0, &mut low);
    codec::rrset_key(relative, u16::MAX, &mut high);
    chunks::any_in(table, apex, &low, &high)
}
