//! Zone transfers: the types shared by the transfer client, the store and
//! the zone model. A transfer yields either a whole new zone (AXFR, or an
//! IXFR answered with the full zone) or a list of differences (IXFR).

pub mod outgoing;
pub mod refresh;
pub mod secondary;
pub mod status;

pub mod client;
pub mod tsig;
pub mod upstream;

use crate::zone::{Name, Zone};

/// One resource record in uncompressed wire form. The owner is lowercase;
/// names inside `rdata` keep the case the master sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    /// Owner name, lowercase.
    pub owner: Name,
    /// Record type.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// Record data, uncompressed wire form.
    pub rdata: Box<[u8]>,
}

/// One IXFR difference sequence (RFC 1995 §4): the changes that take the
/// zone from `from_serial` to `to_serial`. `removed` starts with the old SOA
/// and `added` with the new one, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Serial the changes apply to.
    pub from_serial: u32,
    /// Serial after the changes.
    pub to_serial: u32,
    /// Records deleted (old SOA first).
    pub removed: Vec<Record>,
    /// Records added (new SOA first).
    pub added: Vec<Record>,
}

/// What a transfer from a master produced.
#[derive(Debug)]
pub enum Transfer {
    /// The master's serial is not newer than ours: nothing to do.
    UpToDate {
        /// The master's serial.
        serial: u32,
    },
    /// The whole zone (AXFR, or IXFR answered AXFR-style), built and checked.
    Full(Zone),
    /// Differences to apply in order to our current version (IXFR).
    Incremental(Vec<Diff>),
}
