//! The transfer client: SOA queries, IXFR (RFC 1995) with AXFR (RFC 5936)
//! fallback, TSIG (RFC 8945) on every message, and validation of the whole
//! transfer before anything is returned.
//!
//! The protocol is sans-IO, like the query path: [`build_query`],
//! [`parse_soa_response`] and [`IncomingTransfer`] take bytes and a clock and
//! return decisions, so truncated streams, lying masters and skewed clocks are
//! tested without sockets. [`query_soa`], [`fetch`] and [`transfer_over`] only
//! move bytes over tokio sockets.
//!
//! A full transfer is streamed into a [`ZoneBuilder`] message by message: the
//! raw messages are never kept, so an AXFR costs about the memory of the zone
//! it builds. A bad transfer returns an error and nothing else.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tracing::{info, warn};

use super::tsig::{self, ResponseVerifier, TsigError, TsigKey};
use super::{Diff, Record, Transfer};
use crate::dns::query::{FLAG_AA, FLAG_QR, FLAG_TC, rcode};
use crate::zone::master::MasterRecord;
use crate::zone::name::{self, MAX_NAME_LEN};
use crate::zone::rr::{class, is_meta_type, rtype};
use crate::zone::{Name, Zone, ZoneBuilder};

/// A master (primary) server a zone is transferred from.
#[derive(Debug, Clone)]
pub struct Master {
    /// Address and port of the master.
    pub address: SocketAddr,
    /// The TSIG key requests are signed with and answers verified against;
    /// `None` for an unsigned exchange.
    pub key: Option<Arc<TsigKey>>,
}

/// Bounds on one transfer, and the one policy switch about serials.
#[derive(Debug, Clone)]
pub struct TransferLimits {
    /// Most records accepted in the answer (all messages together).
    pub max_records: usize,
    /// Most bytes of DNS messages accepted (all messages together).
    pub max_bytes: usize,
    /// Longest wait to connect, to send the request, or for any one message
    /// of the answer. The size limits bound the whole transfer.
    pub timeout: Duration,
    /// Accept a full zone whose serial is older than ours (RFC 1982). Set it
    /// for the AXFR after our copy expired; otherwise such a transfer fails
    /// with [`XfrError::SerialWentBack`].
    pub allow_older: bool,
}

impl Default for TransferLimits {
    /// 10 million records, 1 GiB of messages, 30 s per step, serial must
    /// not go back. A 1M-name zone has about 2M records and 70 MB of AXFR.
    fn default() -> TransferLimits {
        TransferLimits {
            max_records: 10_000_000,
            max_bytes: 1 << 30,
            timeout: Duration::from_secs(30),
            allow_older: false,
        }
    }
}

/// The kind of transfer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Full zone transfer (RFC 5936).
    Axfr,
    /// Incremental transfer from our serial (RFC 1995).
    Ixfr,
}

/// What happened during a successful transfer, for logs and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    /// The master that answered.
    pub master: SocketAddr,
    /// The kind of the request that produced the result.
    pub kind: TransferKind,
    /// Whether an IXFR was tried first and the master made us use AXFR.
    pub fell_back_to_axfr: bool,
    /// DNS messages received.
    pub messages: usize,
    /// Records received in answer sections.
    pub records: usize,
    /// Bytes of DNS messages received.
    pub bytes: usize,
    /// Records outside the zone that were dropped (RFC 5936 §3.3).
    pub dropped_out_of_zone: usize,
}

/// Why a SOA query or a transfer failed. Every message names the master.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XfrError {
    /// A socket operation failed.
    #[error("master {master}: {source}")]
    Io {
        /// The master.
        master: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// No answer (or no next message) within the time allowed.
    #[error("master {master}: no answer within {timeout:?}")]
    Timeout {
        /// The master.
        master: SocketAddr,
        /// The wait allowed.
        timeout: Duration,
    },
    /// The master answered with an error RCODE.
    #[error("master {master} answered {}", rcode_name(*.rcode))]
    Refused {
        /// The master.
        master: SocketAddr,
        /// The RCODE.
        rcode: u16,
    },
    /// TSIG signing or verification failed.
    #[error("master {master}: TSIG: {source}")]
    Tsig {
        /// The master.
        master: SocketAddr,
        /// What failed.
        source: TsigError,
    },
    /// The answer breaks the protocol (bad framing, wrong ID or question,
    /// truncated stream, closing SOA different from the opening one, broken
    /// IXFR sequence…).
    #[error("master {master}: bad answer: {reason}")]
    Malformed {
        /// The master.
        master: SocketAddr,
        /// What is wrong.
        reason: String,
    },
    /// The transfer exceeds one of the [`TransferLimits`].
    #[error("master {master}: transfer exceeds the limit of {limit} {what}")]
    TooLarge {
        /// The master.
        master: SocketAddr,
        /// What was counted (`records`, `bytes`).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The master's serial is older than ours (RFC 1982).
    #[error("master {master}: serial would go back from {ours} to {theirs}")]
    SerialWentBack {
        /// The master.
        master: SocketAddr,
        /// Our serial.
        ours: u32,
        /// The master's serial.
        theirs: u32,
    },
    /// The transferred zone fails the zone checks.
    #[error("master {master}: transferred zone fails the zone checks: {}", .problems.join("; "))]
    BadZone {
        /// The master.
        master: SocketAddr,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The master does not answer authoritatively for the zone.
    #[error("master {master} is not authoritative for {zone}")]
    NotAuthoritative {
        /// The master.
        master: SocketAddr,
        /// The zone asked about.
        zone: Name,
    },
}

impl XfrError {
    /// The master the error concerns.
    pub fn master(&self) -> SocketAddr {
        match self {
            XfrError::Io { master, .. }
            | XfrError::Timeout { master, .. }
            | XfrError::Refused { master, .. }
            | XfrError::Tsig { master, .. }
            | XfrError::Malformed { master, .. }
            | XfrError::TooLarge { master, .. }
            | XfrError::SerialWentBack { master, .. }
            | XfrError::BadZone { master, .. }
            | XfrError::NotAuthoritative { master, .. } => *master,
        }
    }
}

/// Whether serial `a` is newer than `b` in RFC 1982 arithmetic. Two serials
/// exactly 2^31 apart are not comparable: neither is newer.
pub fn serial_gt(a: u32, b: u32) -> bool {
    let distance = a.wrapping_sub(b);
    distance != 0 && distance < 0x8000_0000
}

/// Whether serial `a` is older than `b` in RFC 1982 arithmetic.
pub fn serial_lt(a: u32, b: u32) -> bool {
    serial_gt(b, a)
}

/// Asks the master for the zone's SOA serial: over UDP, again over TCP when
/// the answer is truncated; signed and verified when the master has a key.
/// The answer must be authoritative and carry the zone's SOA.
pub async fn query_soa(master: &Master, zone: &Name, timeout: Duration) -> Result<u32, XfrError> {
    let zone = zone.to_lowercase();
    let udp = tokio::time::timeout(timeout, soa_over_udp(master, &zone)).await;
    match udp.map_err(|_| timed_out(master, timeout))?? {
        SoaAnswer::Serial(serial) => Ok(serial),
        SoaAnswer::Truncated => {
            let tcp = tokio::time::timeout(timeout, soa_over_tcp(master, &zone)).await;
            match tcp.map_err(|_| timed_out(master, timeout))?? {
                SoaAnswer::Serial(serial) => Ok(serial),
                SoaAnswer::Truncated => Err(malformed(master.address, "truncated answer over TCP")),
            }
        }
    }
}

/// Transfers the zone from the master over TCP. With `current`, asks for an
/// IXFR from its serial and falls back to AXFR when the master answers with
/// an error RCODE or with a lone newer SOA; without, asks for an AXFR.
///
/// The result is checked before it is returned: TSIG on every message,
/// message IDs and questions, first and last record the same SOA, IXFR
/// sequences continuous from our serial, serial not going back (unless
/// `limits.allow_older`), size limits, and the zone checks for a full zone.
/// Records outside the zone are dropped with a warning and counted.
pub async fn fetch(
    master: &Master,
    zone: &Name,
    current: Option<&Zone>,
    limits: &TransferLimits,
) -> Result<(Transfer, TransferReport), XfrError> {
    let zone = zone.to_lowercase();
    let ours = current.and_then(OurSoa::of);
    let Some(ours) = ours else {
        return transfer_tcp(master, &zone, TransferKind::Axfr, None, limits)
            .await?
            .into_transfer(master.address);
    };
    match transfer_tcp(master, &zone, TransferKind::Ixfr, Some(&ours), limits).await {
        Ok(Outcome::Transferred(transfer, report)) => return Ok((transfer, report)),
        Ok(Outcome::AxfrNeeded { serial, .. }) => info!(
            master = %master.address, zone = %zone, serial,
            "master has a newer serial but sends no differences: trying AXFR"
        ),
        Err(XfrError::Refused { rcode, .. }) => info!(
            master = %master.address, zone = %zone, rcode = %rcode_name(rcode),
            "master refused IXFR: trying AXFR"
        ),
        Err(error) => return Err(error),
    }
    let (transfer, mut report) =
        transfer_tcp(master, &zone, TransferKind::Axfr, Some(&ours), limits)
            .await?
            .into_transfer(master.address)?;
    report.fell_back_to_axfr = true;
    Ok((transfer, report))
}

/// Runs one transfer request over an established stream (TCP, or TLS for
/// XoT): sends the query, reads the framed answer and validates it. `ours`
/// is our current SOA: sent in the IXFR request and used for serial checks.
pub async fn transfer_over<S>(
    stream: S,
    master: &Master,
    zone: &Name,
    kind: TransferKind,
    ours: Option<&OurSoa>,
    limits: &TransferLimits,
) -> Result<Outcome, XfrError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let zone = zone.to_lowercase();
    // An IXFR needs our SOA; without one only an AXFR makes sense.
    let kind = if ours.is_none() {
        TransferKind::Axfr
    } else {
        kind
    };
    let (qtype, authority) = match kind {
        TransferKind::Axfr => (rtype::AXFR, None),
        TransferKind::Ixfr => (rtype::IXFR, ours),
    };
    let (id, query, verifier) = prepare_query(master, &zone, qtype, authority)?;
    let mut stream = BufReader::with_capacity(64 * 1024, stream);
    let timeout = limits.timeout;
    with_timeout(master, timeout, write_framed(&mut stream, &query)).await?;
    let mut transfer = IncomingTransfer::new(
        master.address,
        &zone,
        kind,
        id,
        ours.map(|soa| soa.serial),
        verifier,
        limits,
    );
    let mut message = Vec::with_capacity(usize::from(u16::MAX));
    loop {
        let length = match with_timeout(master, timeout, stream.read_u16()).await {
            Err(XfrError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                // The master closed the connection: finish() says whether
                // the transfer was complete.
                break;
            }
            other => other?,
        };
        message.resize(usize::from(length), 0);
        with_timeout(master, timeout, stream.read_exact(&mut message)).await?;
        if transfer.feed(&message, tsig::unix_now())? == Progress::Done {
            break;
        }
    }
    transfer.finish()
}

/// The result of one transfer request.
#[derive(Debug)]
pub enum Outcome {
    /// A validated transfer.
    Transferred(Transfer, TransferReport),
    /// An IXFR answered by a lone SOA newer than ours: the master has no
    /// differences to send, so an AXFR is needed.
    AxfrNeeded {
        /// The master's serial.
        serial: u32,
        /// What was received.
        report: TransferReport,
    },
}

impl Outcome {
    fn into_transfer(self, master: SocketAddr) -> Result<(Transfer, TransferReport), XfrError> {
        match self {
            Outcome::Transferred(transfer, report) => Ok((transfer, report)),
            Outcome::AxfrNeeded { .. } => Err(malformed(master, "lone SOA in answer to AXFR")),
        }
    }
}

/// Our current SOA record, as sent in an IXFR request (RFC 1995 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurSoa {
    /// Its serial.
    pub serial: u32,
    /// Its TTL.
    pub ttl: u32,
    /// Its record data, uncompressed wire form.
    pub rdata: Vec<u8>,
}

impl OurSoa {
    /// The apex SOA of a zone version; `None` if it has none (a built zone
    /// always has one).
    pub fn of(zone: &Zone) -> Option<OurSoa> {
        let set = zone.rrset(zone.apex_id(), rtype::SOA)?;
        let rdata = zone.records(set).next()?;
        Some(OurSoa {
            serial: soa_serial(rdata)?,
            ttl: set.ttl,
            rdata: rdata.to_vec(),
        })
    }
}

/// Builds a query for `zone` with this type, class IN, no RD; with our SOA
/// in the authority section when given (IXFR). Not signed.
pub fn build_query(id: u16, zone: &Name, qtype: u16, authority: Option<&OurSoa>) -> Vec<u8> {
    let zone = zone.as_wire();
    let mut message = Vec::with_capacity(64 + 2 * zone.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(&u16::from(authority.is_some()).to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(zone);
    message.extend_from_slice(&qtype.to_be_bytes());
    message.extend_from_slice(&class::IN.to_be_bytes());
    if let Some(soa) = authority {
        message.extend_from_slice(zone);
        message.extend_from_slice(&rtype::SOA.to_be_bytes());
        message.extend_from_slice(&class::IN.to_be_bytes());
        message.extend_from_slice(&soa.ttl.to_be_bytes());
        // SOA data is two names and 20 bytes: always below 65536.
        message.extend_from_slice(&(soa.rdata.len() as u16).to_be_bytes());
        message.extend_from_slice(&soa.rdata);
    }
    message
}

/// The answer to a SOA query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoaAnswer {
    /// The master's serial.
    Serial(u32),
    /// The answer was truncated (TC): ask again over TCP.
    Truncated,
}

/// Checks the answer to a SOA query with this ID: a response, TSIG-verified
/// when `verifier` is given, NOERROR, the same question, authoritative, and
/// carrying the zone's SOA.
pub fn parse_soa_response(
    master: SocketAddr,
    zone: &Name,
    id: u16,
    message: &[u8],
    verifier: Option<&mut ResponseVerifier>,
    now: u64,
) -> Result<SoaAnswer, XfrError> {
    let header = Header::parse(message).ok_or_else(|| malformed(master, "short message"))?;
    check_header(master, &header, id)?;
    if header.flags & FLAG_TC != 0 {
        return Ok(SoaAnswer::Truncated);
    }
    if let Some(verifier) = verifier {
        verify_tsig(master, &header, verifier, message, now)?;
        verifier
            .finish()
            .map_err(|source| XfrError::Tsig { master, source })?;
    }
    if header.rcode() != rcode::NOERROR {
        return Err(XfrError::Refused {
            master,
            rcode: header.rcode(),
        });
    }
    let mut pos = check_question(message, &header, zone, rtype::SOA, true)
        .map_err(|reason| malformed(master, reason))?;
    if header.flags & FLAG_AA == 0 {
        return Err(not_authoritative(master, zone));
    }
    let mut reader = RecordReader::default();
    for _ in 0..header.ancount {
        let (record, next) = reader
            .read(message, pos)
            .map_err(|reason| malformed(master, reason))?;
        pos = next;
        if record.rtype == rtype::SOA && record.class == class::IN && record.owner == zone.as_wire()
        {
            let serial =
                soa_serial(record.rdata).ok_or_else(|| malformed(master, "bad SOA data"))?;
            return Ok(SoaAnswer::Serial(serial));
        }
    }
    Err(not_authoritative(master, zone))
}

/// Whether a message needs more data or the transfer is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Feed the next message.
    More,
    /// The answer is complete: call [`IncomingTransfer::finish`].
    Done,
}

/// The receiving side of one AXFR or IXFR answer: fed one DNS message at a
/// time, it verifies TSIG, the ID and the question, follows the RFC 1995
/// sequence structure, streams a full zone into a [`ZoneBuilder`], and
/// validates the whole before [`IncomingTransfer::finish`] returns it.
#[derive(Debug)]
pub struct IncomingTransfer {
    master: SocketAddr,
    zone: Name,
    kind: TransferKind,
    id: u16,
    qtype: u16,
    ours: Option<u32>,
    verifier: Option<ResponseVerifier>,
    max_records: usize,
    max_bytes: usize,
    allow_older: bool,
    report: TransferReport,
    phase: Phase,
    opening: Option<OurSoa>,
    builder: Option<ZoneBuilder>,
    problems: Vec<String>,
    diffs: Vec<Diff>,
    sequence: Option<Diff>,
    /// Where builder problems say a record came from.
    source: PathBuf,
    reader: RecordReader,
}

/// Where the answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the opening SOA.
    Opening,
    /// IXFR: the opening SOA was read; the next record tells the style.
    AfterOpening,
    /// A full zone: records until the closing SOA.
    Full,
    /// IXFR: records deleted by the current sequence.
    Deleting,
    /// IXFR: records added by the current sequence.
    Adding,
    /// Finished; nothing more may arrive.
    Done(Ending),
}

/// How the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The closing SOA arrived.
    Complete,
    /// The master's serial is not newer than ours; when `early`, we stopped
    /// reading a full zone of the same serial.
    UpToDate { early: bool },
    /// A lone newer SOA in answer to an IXFR.
    AxfrNeeded,
}

/// Most out-of-zone records logged one by one; the rest are counted.
const LOGGED_DROPS: usize = 5;

impl IncomingTransfer {
    /// Ready for the answer to the query with this ID and kind. `ours` is our
    /// serial (an IXFR needs it); `verifier` is set when the query was signed.
    pub fn new(
        master: SocketAddr,
        zone: &Name,
        kind: TransferKind,
        id: u16,
        ours: Option<u32>,
        verifier: Option<ResponseVerifier>,
        limits: &TransferLimits,
    ) -> IncomingTransfer {
        let kind = if ours.is_none() {
            TransferKind::Axfr
        } else {
            kind
        };
        let qtype = match kind {
            TransferKind::Axfr => rtype::AXFR,
            TransferKind::Ixfr => rtype::IXFR,
        };
        let label = match kind {
            TransferKind::Axfr => "AXFR",
            TransferKind::Ixfr => "IXFR",
        };
        IncomingTransfer {
            master,
            zone: zone.to_lowercase(),
            kind,
            id,
            qtype,
            ours,
            verifier,
            max_records: limits.max_records,
            max_bytes: limits.max_bytes,
            allow_older: limits.allow_older,
            report: TransferReport {
                master,
                kind,
                fell_back_to_axfr: false,
                messages: 0,
                records: 0,
                bytes: 0,
                dropped_out_of_zone: 0,
            },
            phase: Phase::Opening,
            opening: None,
            builder: None,
            problems: Vec::new(),
            diffs: Vec::new(),
            sequence: None,
            source: PathBuf::from(format!("{label} from {master}, record")),
            reader: RecordReader::default(),
        }
    }

    /// Takes the next message of the answer, verified against our clock
    /// `now` (seconds since the Unix epoch).
    pub fn feed(&mut self, message: &[u8], now: u64) -> Result<Progress, XfrError> {
        if matches!(self.phase, Phase::Done(_)) {
            return Err(self.malformed("message after the end of the transfer"));
        }
        let first = self.report.messages == 0;
        self.report.messages += 1;
        self.report.bytes += message.len();
        if self.report.bytes > self.max_bytes {
            return Err(self.too_large("bytes", self.max_bytes));
        }
        let header = Header::parse(message).ok_or_else(|| self.malformed("short message"))?;
        check_header(self.master, &header, self.id)?;
        if header.flags & FLAG_TC != 0 {
            return Err(self.malformed("truncated message over TCP"));
        }
        if let Some(verifier) = &mut self.verifier {
            verify_tsig(self.master, &header, verifier, message, now)?;
        }
        if header.rcode() != rcode::NOERROR {
            return Err(XfrError::Refused {
                master: self.master,
                rcode: header.rcode(),
            });
        }
        let mut pos = check_question(message, &header, &self.zone, self.qtype, first)
            .map_err(|reason| self.malformed(reason))?;
        let mut reader = std::mem::take(&mut self.reader);
        let result = self.read_answers(&mut reader, message, &mut pos, header.ancount);
        self.reader = reader;
        result?;
        if first && self.phase == Phase::AfterOpening {
            self.lone_soa();
        }
        match self.phase {
            Phase::Done(Ending::UpToDate { early: true }) => Ok(Progress::Done),
            Phase::Done(_) => {
                if let Some(verifier) = &self.verifier {
                    verifier.finish().map_err(|source| XfrError::Tsig {
                        master: self.master,
                        source,
                    })?;
                }
                Ok(Progress::Done)
            }
            _ => Ok(Progress::More),
        }
    }

    /// Ends the transfer: the validated result, or why it is rejected.
    /// Called before [`Progress::Done`], it reports a truncated stream.
    pub fn finish(mut self) -> Result<Outcome, XfrError> {
        if self.report.dropped_out_of_zone > 0 {
            warn!(
                master = %self.master, zone = %self.zone,
                dropped = self.report.dropped_out_of_zone,
                "transfer carried records outside the zone: dropped"
            );
        }
        let Phase::Done(ending) = self.phase else {
            return Err(self.malformed("the answer ended before the closing SOA"));
        };
        let serial = self.opening.as_ref().map_or(0, |soa| soa.serial);
        let transfer = match ending {
            Ending::UpToDate { .. } => Transfer::UpToDate { serial },
            Ending::AxfrNeeded => {
                return Ok(Outcome::AxfrNeeded {
                    serial,
                    report: self.report,
                });
            }
            Ending::Complete => match self.builder.take() {
                Some(builder) => {
                    if !self.problems.is_empty() {
                        let problems = std::mem::take(&mut self.problems);
                        return Err(self.bad_zone(problems));
                    }
                    Transfer::Full(builder.finish().map_err(|p| self.bad_zone(p))?)
                }
                None => Transfer::Incremental(std::mem::take(&mut self.diffs)),
            },
        };
        Ok(Outcome::Transferred(transfer, self.report))
    }

    fn read_answers(
        &mut self,
        reader: &mut RecordReader,
        message: &[u8],
        pos: &mut usize,
        count: u16,
    ) -> Result<(), XfrError> {
        for _ in 0..count {
            if self.phase == Phase::Done(Ending::UpToDate { early: true }) {
                return Ok(());
            }
            let (record, next) = reader
                .read(message, *pos)
                .map_err(|reason| self.malformed(reason))?;
            *pos = next;
            self.record(&record)?;
        }
        Ok(())
    }

    /// One record of the answer section.
    fn record(&mut self, record: &WireRecord<'_>) -> Result<(), XfrError> {
        self.report.records += 1;
        if self.report.records > self.max_records {
            return Err(self.too_large("records", self.max_records));
        }
        if record.class != class::IN {
            return Err(self.malformed(format!("record of class {}", record.class)));
        }
        if is_meta_type(record.rtype) {
            return Err(self.malformed(format!(
                "{} record in the answer",
                crate::zone::rr::rtype_name(record.rtype)
            )));
        }
        let apex_soa = record.rtype == rtype::SOA && record.owner == self.zone.as_wire();
        match self.phase {
            Phase::Opening => self.opening_soa(record, apex_soa),
            Phase::AfterOpening if apex_soa => self.first_sequence(record),
            Phase::AfterOpening => {
                self.start_full()?;
                if self.phase == Phase::Full {
                    self.zone_record(record);
                }
                Ok(())
            }
            Phase::Full if apex_soa => {
                self.closing_soa(record)?;
                self.phase = Phase::Done(Ending::Complete);
                Ok(())
            }
            Phase::Full => {
                self.zone_record(record);
                Ok(())
            }
            Phase::Deleting if apex_soa => self.sequence_new_soa(record),
            Phase::Adding if apex_soa => self.sequence_end(record),
            Phase::Deleting | Phase::Adding => {
                self.diff_record(record);
                Ok(())
            }
            Phase::Done(_) => Err(self.malformed("records after the closing SOA")),
        }
    }

    fn opening_soa(&mut self, record: &WireRecord<'_>, apex_soa: bool) -> Result<(), XfrError> {
        if !apex_soa {
            return Err(self.malformed("the first record is not the zone's SOA"));
        }
        let serial = self.serial_of(record)?;
        self.opening = Some(OurSoa {
            serial,
            ttl: record.ttl,
            rdata: record.rdata.to_vec(),
        });
        match self.kind {
            TransferKind::Axfr => self.start_full(),
            TransferKind::Ixfr => {
                self.phase = Phase::AfterOpening;
                Ok(())
            }
        }
    }

    /// A full zone starts (AXFR, or IXFR answered AXFR-style): checks the
    /// serial, then feeds the opening SOA to a new builder.
    fn start_full(&mut self) -> Result<(), XfrError> {
        let Some(opening) = self.opening.take() else {
            return Err(self.malformed("zone data before the opening SOA"));
        };
        let theirs = opening.serial;
        self.opening = Some(opening);
        if let Some(ours) = self.ours {
            if theirs == ours {
                self.phase = Phase::Done(Ending::UpToDate { early: true });
                return Ok(());
            }
            if !serial_gt(theirs, ours) && !self.allow_older {
                return Err(self.serial_went_back(ours, theirs));
            }
        }
        let mut builder = ZoneBuilder::new(&self.zone);
        if let Some(opening) = &self.opening {
            let soa = MasterRecord {
                owner: self.zone.as_wire(),
                class: class::IN,
                rtype: rtype::SOA,
                ttl: opening.ttl,
                rdata: &opening.rdata,
                file: &self.source,
                line: 1,
            };
            if let Err(problem) = builder.add(&soa) {
                self.problems.push(problem);
            }
        }
        self.builder = Some(builder);
        self.phase = Phase::Full;
        Ok(())
    }

    fn zone_record(&mut self, record: &WireRecord<'_>) {
        if self.out_of_zone(record) {
            return;
        }
        let Some(builder) = &mut self.builder else {
            return;
        };
        let line = u32::try_from(self.report.records).unwrap_or(u32::MAX);
        let added = builder.add(&MasterRecord {
            owner: record.owner,
            class: record.class,
            rtype: record.rtype,
            ttl: record.ttl,
            rdata: record.rdata,
            file: &self.source,
            line,
        });
        if let Err(problem) = added
            && self.problems.len() < 50
        {
            self.problems.push(format!("record {line}: {problem}"));
        }
    }

    fn closing_soa(&self, record: &WireRecord<'_>) -> Result<(), XfrError> {
        let Some(opening) = &self.opening else {
            return Err(self.malformed("closing SOA without an opening one"));
        };
        if same_soa(&opening.rdata, record.rdata) {
            return Ok(());
        }
        let closing = soa_serial(record.rdata).map_or("unreadable".into(), |s| s.to_string());
        Err(self.malformed(format!(
            "the closing SOA (serial {closing}) differs from the opening SOA (serial {})",
            opening.serial
        )))
    }

    /// IXFR: the second record is a SOA, so differences follow; the first
    /// sequence must start at our serial.
    fn first_sequence(&mut self, record: &WireRecord<'_>) -> Result<(), XfrError> {
        let serial = self.serial_of(record)?;
        let ours = self.ours.unwrap_or(serial);
        let newest = self.opening.as_ref().map_or(serial, |soa| soa.serial);
        if !serial_gt(newest, ours) {
            return Err(self.serial_went_back(ours, newest));
        }
        if serial != ours {
            return Err(self.malformed(format!(
                "the differences start at serial {serial}, ours is {ours}"
            )));
        }
        self.sequence = Some(Diff {
            from_serial: serial,
            to_serial: serial,
            removed: vec![owned(record)],
            added: Vec::new(),
        });
        self.phase = Phase::Deleting;
        Ok(())
    }

    /// IXFR: the SOA that ends the deletions and starts the additions.
    fn sequence_new_soa(&mut self, record: &WireRecord<'_>) -> Result<(), XfrError> {
        let serial = self.serial_of(record)?;
        let Some(sequence) = &mut self.sequence else {
            return Err(self.malformed("difference sequence without its start"));
        };
        if !serial_gt(serial, sequence.from_serial) {
            let from = sequence.from_serial;
            return Err(self.malformed(format!(
                "a difference sequence goes from serial {from} to {serial}, not forward"
            )));
        }
        sequence.to_serial = serial;
        sequence.added.push(owned(record));
        self.phase = Phase::Adding;
        Ok(())
    }

    /// IXFR: a SOA after additions: the closing SOA or the next sequence.
    fn sequence_end(&mut self, record: &WireRecord<'_>) -> Result<(), XfrError> {
        let serial = self.serial_of(record)?;
        let newest = self.opening.as_ref().map_or(serial, |soa| soa.serial);
        let Some(sequence) = self.sequence.take() else {
            return Err(self.malformed("difference sequence without its start"));
        };
        let reached = sequence.to_serial;
        self.diffs.push(sequence);
        if serial == newest && reached == newest {
            self.closing_soa(record)?;
            self.phase = Phase::Done(Ending::Complete);
            return Ok(());
        }
        if serial != reached {
            return Err(self.malformed(format!(
                "a difference sequence starts at serial {serial}, expected {reached}"
            )));
        }
        self.sequence = Some(Diff {
            from_serial: serial,
            to_serial: serial,
            removed: vec![owned(record)],
            added: Vec::new(),
        });
        self.phase = Phase::Deleting;
        Ok(())
    }

    fn diff_record(&mut self, record: &WireRecord<'_>) {
        if self.out_of_zone(record) {
            return;
        }
        let adding = self.phase == Phase::Adding;
        if let Some(sequence) = &mut self.sequence {
            let list = if adding {
                &mut sequence.added
            } else {
                &mut sequence.removed
            };
            list.push(owned(record));
        }
    }

    /// The first message held only the opening SOA: RFC 1995's "you are up
    /// to date" when it is not newer than ours, else no differences at all.
    fn lone_soa(&mut self) {
        let theirs = self.opening.as_ref().map_or(0, |soa| soa.serial);
        let ours = self.ours.unwrap_or(theirs);
        self.phase = if serial_gt(theirs, ours) {
            Phase::Done(Ending::AxfrNeeded)
        } else {
            Phase::Done(Ending::UpToDate { early: false })
        };
    }

    /// Drops a record outside the zone (RFC 5936 §3.3), with a warning.
    fn out_of_zone(&mut self, record: &WireRecord<'_>) -> bool {
        if name::is_subdomain(record.owner, self.zone.as_wire()) {
            return false;
        }
        self.report.dropped_out_of_zone += 1;
        if self.report.dropped_out_of_zone <= LOGGED_DROPS {
            warn!(
                master = %self.master, zone = %self.zone,
                owner = %name::display_wire(record.owner), rtype = %crate::zone::rr::rtype_name(record.rtype),
                "dropping out-of-zone record from transfer"
            );
        }
        true
    }

    fn serial_of(&self, record: &WireRecord<'_>) -> Result<u32, XfrError> {
        soa_serial(record.rdata).ok_or_else(|| self.malformed("unreadable SOA data"))
    }

    fn malformed(&self, reason: impl Into<String>) -> XfrError {
        malformed(self.master, reason)
    }

    fn too_large(&self, what: &'static str, limit: usize) -> XfrError {
        XfrError::TooLarge {
            master: self.master,
            what,
            limit,
        }
    }

    fn serial_went_back(&self, ours: u32, theirs: u32) -> XfrError {
        XfrError::SerialWentBack {
            master: self.master,
            ours,
            theirs,
        }
    }

    fn bad_zone(&self, problems: Vec<String>) -> XfrError {
        XfrError::BadZone {
            master: self.master,
            problems,
        }
    }
}

/// Appends the uncompressed form of the (possibly compressed) name at `pos`
/// to `out`, keeping its case. Returns the offset after the name in
/// `packet`. Pointers must point backwards; loops and names over 255 bytes
/// are refused.
pub(crate) fn read_name(packet: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *packet.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                let label = packet.get(pos..pos + 1 + usize::from(len))?;
                out.extend_from_slice(label);
                if out.len() - start > MAX_NAME_LEN {
                    out.truncate(start);
                    return None;
                }
                pos += label.len();
                if len == 0 {
                    return Some(after.unwrap_or(pos));
                }
            }
            0xc0 => {
                let low = *packet.get(pos + 1)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                jumps += 1;
                if target >= pos || jumps > 64 {
                    out.truncate(start);
                    return None;
                }
                after.get_or_insert(pos + 2);
                pos = target;
            }
            _ => {
                out.truncate(start);
                return None;
            }
        }
    }
}

/// A DNS message header.
#[derive(Debug, Clone, Copy)]
struct Header {
    id: u16,
    flags: u16,
    qdcount: u16,
    ancount: u16,
}

impl Header {
    fn parse(message: &[u8]) -> Option<Header> {
        let h = message.get(..12)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
        })
    }

    fn rcode(&self) -> u16 {
        self.flags & 0x000f
    }

    fn opcode(&self) -> u16 {
        (self.flags >> 11) & 0x000f
    }
}

/// A response, to our ID, of a standard query.
fn check_header(master: SocketAddr, header: &Header, id: u16) -> Result<(), XfrError> {
    if header.id != id {
        return Err(malformed(
            master,
            format!("message ID {} instead of {id}", header.id),
        ));
    }
    if header.flags & FLAG_QR == 0 {
        return Err(malformed(master, "a query instead of a response"));
    }
    if header.opcode() != 0 {
        return Err(malformed(
            master,
            format!("opcode {} in the answer", header.opcode()),
        ));
    }
    Ok(())
}

/// Verifies TSIG. An unsigned error answer is reported by its RCODE: it
/// fails the request either way, and the RCODE says more.
fn verify_tsig(
    master: SocketAddr,
    header: &Header,
    verifier: &mut ResponseVerifier,
    message: &[u8],
    now: u64,
) -> Result<(), XfrError> {
    match verifier.verify(message, now) {
        Ok(_) => Ok(()),
        Err(TsigError::Unsigned) if header.rcode() != rcode::NOERROR => Err(XfrError::Refused {
            master,
            rcode: header.rcode(),
        }),
        Err(source) => Err(XfrError::Tsig { master, source }),
    }
}

/// Checks the question section: our zone, type and class IN. The first
/// message must carry it; later ones may omit it (RFC 5936 §2.2.1).
/// Returns the offset after the questions.
fn check_question(
    message: &[u8],
    header: &Header,
    zone: &Name,
    qtype: u16,
    required: bool,
) -> Result<usize, String> {
    match header.qdcount {
        0 if !required => return Ok(12),
        0 => return Err("no question in the first message".into()),
        1 => {}
        n => return Err(format!("{n} questions")),
    }
    let mut qname = Vec::with_capacity(zone.as_wire().len());
    let pos = read_name(message, 12, &mut qname).ok_or("unreadable question")?;
    let fixed = message.get(pos..pos + 4).ok_or("unreadable question")?;
    let (answered_type, answered_class) = (
        u16::from_be_bytes([fixed[0], fixed[1]]),
        u16::from_be_bytes([fixed[2], fixed[3]]),
    );
    if !qname.eq_ignore_ascii_case(zone.as_wire())
        || answered_type != qtype
        || answered_class != class::IN
    {
        return Err(format!(
            "the question is {} {} class {answered_class}, not ours",
            name::display_wire(&qname),
            crate::zone::rr::rtype_name(answered_type)
        ));
    }
    Ok(pos + 4)
}

/// One record read from a message, names decompressed: the owner in
/// lowercase, names in the data as sent.
#[derive(Debug)]
struct WireRecord<'a> {
    owner: &'a [u8],
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &'a [u8],
}

/// Reads records into reused buffers.
#[derive(Debug, Default)]
struct RecordReader {
    owner: Vec<u8>,
    rdata: Vec<u8>,
}

impl RecordReader {
    /// Reads the record at `pos`; returns it and the offset after it.
    fn read<'s>(
        &'s mut self,
        message: &[u8],
        pos: usize,
    ) -> Result<(WireRecord<'s>, usize), &'static str> {
        self.owner.clear();
        self.rdata.clear();
        let pos = read_name(message, pos, &mut self.owner).ok_or("unreadable owner name")?;
        self.owner.make_ascii_lowercase();
        let fixed = message
            .get(pos..pos + 10)
            .ok_or("message ends inside a record")?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        // RFC 2181 §8: a TTL with the top bit set counts as zero.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = pos + 10;
        let end = start + rdlength;
        if end > message.len() {
            return Err("message ends inside a record");
        }
        decompress_rdata(message, rtype, start, end, &mut self.rdata)
            .ok_or("record data does not match its type")?;
        if self.rdata.len() > usize::from(u16::MAX) {
            return Err("record data longer than 65535 bytes once decompressed");
        }
        let record = WireRecord {
            owner: &self.owner,
            rtype,
            class,
            ttl,
            rdata: &self.rdata,
        };
        Ok((record, end))
    }
}

/// How names sit in a type's data, for decompression: RFC 1035 types and
/// the list of RFC 3597 §4, plus the DNSSEC types that carry names.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `prefix` fixed bytes, `names` names, then what follows.
    Names {
        prefix: usize,
        names: usize,
        rest: Rest,
    },
    /// NAPTR: 4 bytes, three character strings, one name.
    Naptr,
    /// No names we decompress: copied as is.
    Opaque,
}

/// What may follow the names.
#[derive(Debug, Clone, Copy)]
enum Rest {
    /// Nothing.
    Nothing,
    /// Exactly this many bytes.
    Exactly(usize),
    /// Anything (signature, type bitmap).
    Any,
}

// Obsolete RFC 1035 and RFC 2163 types with names, decompressed as RFC 3597
// §4 asks of receivers.
const MD: u16 = 3;
const MF: u16 = 4;
const MB: u16 = 7;
const MG: u16 = 8;
const MR: u16 = 9;
const MINFO: u16 = 14;
const RT: u16 = 21;
const SIG: u16 = 24;
const PX: u16 = 26;
const NXT: u16 = 30;

fn shape(code: u16) -> Shape {
    let names = |prefix, names, rest| Shape::Names {
        prefix,
        names,
        rest,
    };
    match code {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME | MD | MF | MB | MG | MR => {
            names(0, 1, Rest::Nothing)
        }
        rtype::SOA => names(0, 2, Rest::Exactly(20)),
        MINFO | rtype::RP => names(0, 2, Rest::Nothing),
        rtype::MX | rtype::AFSDB | RT | rtype::KX => names(2, 1, Rest::Nothing),
        PX => names(2, 2, Rest::Nothing),
        rtype::SRV => names(6, 1, Rest::Nothing),
        rtype::RRSIG | SIG => names(18, 1, Rest::Any),
        rtype::NSEC | NXT => names(0, 1, Rest::Any),
        rtype::NAPTR => Shape::Naptr,
        _ => Shape::Opaque,
    }
}

/// Writes the data of a record at `start..end` to `out` with its embedded
/// names decompressed. `None` when the data does not fit its type.
fn decompress_rdata(
    message: &[u8],
    code: u16,
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    let data = message.get(start..end)?;
    let (prefix, names, rest) = match shape(code) {
        Shape::Opaque => {
            out.extend_from_slice(data);
            return Some(());
        }
        Shape::Names {
            prefix,
            names,
            rest,
        } => (prefix, names, rest),
        Shape::Naptr => {
            // order, preference, then flags, services, regexp strings.
            let mut strings_end = start + 4;
            for _ in 0..3 {
                let len = usize::from(*message.get(strings_end).filter(|_| strings_end < end)?);
                strings_end += 1 + len;
            }
            (strings_end.checked_sub(start)?, 1, Rest::Nothing)
        }
    };
    out.extend_from_slice(data.get(..prefix)?);
    let mut pos = start + prefix;
    for _ in 0..names {
        if pos >= end {
            return None;
        }
        pos = read_name(message, pos, out)?;
        if pos > end {
            return None;
        }
    }
    let tail = &message[pos..end];
    match rest {
        Rest::Nothing if !tail.is_empty() => return None,
        Rest::Exactly(n) if tail.len() != n => return None,
        _ => out.extend_from_slice(tail),
    }
    Some(())
}

/// The serial of SOA data: two names and exactly 20 bytes.
fn soa_serial(rdata: &[u8]) -> Option<u32> {
    let fixed = soa_fixed(rdata)?;
    Some(u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]))
}

/// The 20 bytes after the two names of SOA data.
fn soa_fixed(rdata: &[u8]) -> Option<&[u8]> {
    let mname = name::wire_name_len(rdata).ok()?;
    let rname = name::wire_name_len(rdata.get(mname..)?).ok()?;
    let fixed = rdata.get(mname + rname..)?;
    (fixed.len() == 20).then_some(fixed)
}

/// Whether two SOA records are the same: names equal ignoring case, the
/// five numbers equal.
fn same_soa(a: &[u8], b: &[u8]) -> bool {
    match (soa_fixed(a), soa_fixed(b)) {
        (Some(fixed_a), Some(fixed_b)) => {
            let names_a = &a[..a.len() - 20];
            let names_b = &b[..b.len() - 20];
            fixed_a == fixed_b && names_a.eq_ignore_ascii_case(names_b)
        }
        _ => false,
    }
}

fn owned(record: &WireRecord<'_>) -> Record {
    Record {
        // read_name produced a valid name of at most 255 bytes; the root
        // stands in if that ever changes, and fails the zone checks.
        owner: Name::from_wire(record.owner).unwrap_or_else(|_| Name::root()),
        rtype: record.rtype,
        ttl: record.ttl,
        rdata: record.rdata.into(),
    }
}

/// The mnemonic of an RCODE.
pub fn rcode_name(code: u16) -> String {
    match code {
        rcode::NOERROR => "NOERROR".into(),
        rcode::FORMERR => "FORMERR".into(),
        rcode::SERVFAIL => "SERVFAIL".into(),
        rcode::NXDOMAIN => "NXDOMAIN".into(),
        rcode::NOTIMP => "NOTIMP".into(),
        rcode::REFUSED => "REFUSED".into(),
        rcode::NOTAUTH => "NOTAUTH".into(),
        other => format!("RCODE{other}"),
    }
}

fn malformed(master: SocketAddr, reason: impl Into<String>) -> XfrError {
    XfrError::Malformed {
        master,
        reason: reason.into(),
    }
}

fn not_authoritative(master: SocketAddr, zone: &Name) -> XfrError {
    XfrError::NotAuthoritative {
        master,
        zone: zone.clone(),
    }
}

fn timed_out(master: &Master, timeout: Duration) -> XfrError {
    XfrError::Timeout {
        master: master.address,
        timeout,
    }
}

fn io_error(master: &Master) -> impl Fn(std::io::Error) -> XfrError + '_ {
    |source| XfrError::Io {
        master: master.address,
        source,
    }
}

/// A fresh random query ID (the clock's nanoseconds if the system random
/// source fails, which only weakens spoofing resistance).
fn query_id() -> u16 {
    let mut bytes = [0u8; 2];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_be_bytes(bytes)
}

/// A query with a fresh ID, signed when the master has a key.
fn prepare_query(
    master: &Master,
    zone: &Name,
    qtype: u16,
    authority: Option<&OurSoa>,
) -> Result<(u16, Vec<u8>, Option<ResponseVerifier>), XfrError> {
    let id = query_id();
    let mut query = build_query(id, zone, qtype, authority);
    let verifier = match &master.key {
        Some(key) => {
            let mac = tsig::sign_request(key, &mut query, tsig::unix_now()).map_err(|source| {
                XfrError::Tsig {
                    master: master.address,
                    source,
                }
            })?;
            Some(ResponseVerifier::new(key, mac))
        }
        None => None,
    };
    Ok((id, query, verifier))
}

async fn with_timeout<T>(
    master: &Master,
    timeout: Duration,
    future: impl Future<Output = std::io::Result<T>>,
) -> Result<T, XfrError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(io_error(master)),
        Err(_) => Err(timed_out(master, timeout)),
    }
}

async fn write_framed<W: AsyncWrite + Unpin>(
    stream: &mut W,
    message: &[u8],
) -> std::io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("query longer than 65535 bytes"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await?;
    stream.flush().await
}

async fn transfer_tcp(
    master: &Master,
    zone: &Name,
    kind: TransferKind,
    ours: Option<&OurSoa>,
    limits: &TransferLimits,
) -> Result<Outcome, XfrError> {
    let stream = with_timeout(master, limits.timeout, TcpStream::connect(master.address)).await?;
    stream.set_nodelay(true).map_err(io_error(master))?;
    transfer_over(stream, master, zone, kind, ours, limits).await
}

async fn soa_over_udp(master: &Master, zone: &Name) -> Result<SoaAnswer, XfrError> {
    let local: SocketAddr = match master.address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(io_error(master))?;
    socket
        .connect(master.address)
        .await
        .map_err(io_error(master))?;
    let (id, query, mut verifier) = prepare_query(master, zone, rtype::SOA, None)?;
    socket.send(&query).await.map_err(io_error(master))?;
    let mut buffer = vec![0u8; usize::from(u16::MAX)];
    loop {
        let length = socket.recv(&mut buffer).await.map_err(io_error(master))?;
        let message = &buffer[..length];
        // Anything but a response to our ID is stray or spoofed: keep
        // waiting for the real answer until the timeout.
        match Header::parse(message) {
            Some(header) if header.id == id && header.flags & FLAG_QR != 0 => {}
            _ => continue,
        }
        return parse_soa_response(
            master.address,
            zone,
            id,
            message,
            verifier.as_mut(),
            tsig::unix_now(),
        );
    }
}

async fn soa_over_tcp(master: &Master, zone: &Name) -> Result<SoaAnswer, XfrError> {
    let stream = TcpStream::connect(master.address)
        .await
        .map_err(io_error(master))?;
    stream.set_nodelay(true).map_err(io_error(master))?;
    let mut stream = BufReader::new(stream);
    let (id, query, mut verifier) = prepare_query(master, zone, rtype::SOA, None)?;
    write_framed(&mut stream, &query)
        .await
        .map_err(io_error(master))?;
    let length = stream.read_u16().await.map_err(io_error(master))?;
    let mut message = vec![0u8; usize::from(length)];
    stream
        .read_exact(&mut message)
        .await
        .map_err(io_error(master))?;
    parse_soa_response(
        master.address,
        zone,
        id,
        &message,
        verifier.as_mut(),
        tsig::unix_now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::tsig::{ResponseSigner, TsigAlgorithm};

    const NOW: u64 = 1_790_000_000;
    const ID: u16 = 0x4242;

    fn master() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    fn zone() -> Name {
        Name::parse("example.test.").unwrap()
    }

    fn wire(name: &str) -> Vec<u8> {
        Name::parse(name).unwrap().as_wire().to_vec()
    }

    /// A record as raw bytes: owner and data may hold compression pointers.
    #[derive(Clone)]
    struct Rr {
        owner: Vec<u8>,
        rtype: u16,
        class: u16,
        rdata: Vec<u8>,
    }

    fn rr(owner: &str, rtype: u16, rdata: Vec<u8>) -> Rr {
        Rr {
            owner: wire(owner),
            rtype,
            class: class::IN,
            rdata,
        }
    }

    fn soa_data(serial: u32) -> Vec<u8> {
        let mut data = wire("ns1.example.test.");
        data.extend(wire("hostmaster.example.test."));
        for value in [serial, 3600, 600, 86400, 300] {
            data.extend(value.to_be_bytes());
        }
        data
    }

    fn soa(serial: u32) -> Rr {
        rr("example.test.", rtype::SOA, soa_data(serial))
    }

    fn a(owner: &str, last: u8) -> Rr {
        rr(owner, rtype::A, vec![192, 0, 2, last])
    }

    /// SOA, NS, glue-like A and one host: a zone that passes the checks.
    fn zone_body(serial: u32) -> Vec<Rr> {
        vec![
            soa(serial),
            rr("example.test.", rtype::NS, wire("ns1.example.test.")),
            a("ns1.example.test.", 1),
            a("www.example.test.", 2),
        ]
    }

    fn axfr_records(serial: u32) -> Vec<Rr> {
        let mut records = zone_body(serial);
        records.push(soa(serial));
        records
    }

    /// One answer message (QR, AA), with the question when `question`.
    fn message(qtype: u16, question: bool, records: &[Rr]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(ID.to_be_bytes());
        m.extend(0x8400u16.to_be_bytes());
        m.extend(u16::from(question).to_be_bytes());
        m.extend((records.len() as u16).to_be_bytes());
        m.extend([0, 0, 0, 0]);
        if question {
            m.extend(wire("example.test."));
            m.extend(qtype.to_be_bytes());
            m.extend(class::IN.to_be_bytes());
        }
        for record in records {
            m.extend(&record.owner);
            m.extend(record.rtype.to_be_bytes());
            m.extend(record.class.to_be_bytes());
            m.extend(3600u32.to_be_bytes());
            m.extend((record.rdata.len() as u16).to_be_bytes());
            m.extend(&record.rdata);
        }
        m
    }

    /// The records split over messages of `per_message` records; only the
    /// first carries the question, as Knot does.
    fn stream(qtype: u16, records: &[Rr], per_message: usize) -> Vec<Vec<u8>> {
        records
            .chunks(per_message)
            .enumerate()
            .map(|(i, chunk)| message(qtype, i == 0, chunk))
            .collect()
    }

    fn key(name: &str, secret: &[u8]) -> TsigKey {
        TsigKey::new(
            &Name::parse(name).unwrap(),
            TsigAlgorithm::HmacSha256,
            secret.to_vec(),
        )
    }

    /// Signs every message of a stream as a master would (`sign[i]`).
    fn sign(messages: &mut [Vec<u8>], key: &TsigKey, request_mac: &[u8], sign: &[bool]) {
        let mut signer = ResponseSigner::new(key, request_mac.to_vec());
        for (m, &signed) in messages.iter_mut().zip(sign) {
            if signed {
                signer.sign(m, NOW).unwrap();
            } else {
                signer.skip(m);
            }
        }
    }

    fn run_with(
        kind: TransferKind,
        ours: Option<u32>,
        messages: &[Vec<u8>],
        limits: &TransferLimits,
        verifier: Option<ResponseVerifier>,
        now: u64,
    ) -> Result<Outcome, XfrError> {
        let mut transfer =
            IncomingTransfer::new(master(), &zone(), kind, ID, ours, verifier, limits);
        for m in messages {
            if transfer.feed(m, now)? == Progress::Done {
                break;
            }
        }
        transfer.finish()
    }

    fn run(
        kind: TransferKind,
        ours: Option<u32>,
        messages: &[Vec<u8>],
    ) -> Result<Outcome, XfrError> {
        run_with(kind, ours, messages, &TransferLimits::default(), None, NOW)
    }

    fn full(outcome: Result<Outcome, XfrError>) -> (Zone, TransferReport) {
        match outcome {
            Ok(Outcome::Transferred(Transfer::Full(zone), report)) => (zone, report),
            other => panic!("expected a full zone, got {other:?}"),
        }
    }

    fn malformed_reason(outcome: Result<Outcome, XfrError>) -> String {
        match outcome {
            Err(XfrError::Malformed { reason, .. }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn tsig_error(outcome: Result<Outcome, XfrError>) -> TsigError {
        match outcome {
            Err(XfrError::Tsig { source, master: m }) => {
                assert_eq!(m, master());
                source
            }
            other => panic!("expected a TSIG error, got {other:?}"),
        }
    }

    fn has_record(zone: &Zone, owner: &str, code: u16) -> bool {
        let owner = wire(owner);
        zone.find(&owner)
            .and_then(|id| zone.rrset(id, code))
            .is_some()
    }

    #[test]
    fn serial_arithmetic_follows_rfc_1982() {
        assert!(serial_gt(1, 0));
        assert!(!serial_gt(0, 1));
        assert!(!serial_gt(5, 5));
        assert!(serial_gt(0, u32::MAX), "wraps around");
        assert!(serial_lt(u32::MAX, 0));
        assert!(serial_gt(0x7fff_ffff, 0));
        // Exactly 2^31 apart: undefined, neither is newer.
        assert!(!serial_gt(0x8000_0000, 0));
        assert!(!serial_gt(0, 0x8000_0000));
        assert!(serial_gt(2, 0xffff_fff0));
    }

    #[test]
    fn axfr_in_one_message_gives_the_zone() {
        let messages = stream(rtype::AXFR, &axfr_records(7), 100);
        let (zone, report) = full(run(TransferKind::Axfr, None, &messages));
        assert_eq!(zone.serial(), 7);
        assert_eq!(zone.record_count(), 4);
        assert!(has_record(&zone, "www.example.test.", rtype::A));
        assert_eq!(report.records, 5);
        assert_eq!(report.messages, 1);
        assert_eq!(report.dropped_out_of_zone, 0);
    }

    #[test]
    fn signed_multi_message_axfr_gives_the_zone() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 1);
        sign(&mut messages, &key, b"request-mac", &[true; 5]);
        let verifier = ResponseVerifier::new(&key, b"request-mac".to_vec());
        let limits = TransferLimits::default();
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        );
        let (zone, report) = full(outcome);
        assert_eq!(zone.serial(), 7);
        assert_eq!(report.messages, 5);
    }

    #[test]
    fn unsigned_intermediate_messages_are_accepted_when_covered() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 1);
        sign(
            &mut messages,
            &key,
            b"rm",
            &[true, false, false, true, true],
        );
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        let limits = TransferLimits::default();
        full(run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        ));
    }

    #[test]
    fn truncated_stream_is_rejected() {
        let messages = stream(rtype::AXFR, &axfr_records(7), 2);
        let reason = malformed_reason(run(TransferKind::Axfr, None, &messages[..2]));
        assert!(reason.contains("before the closing SOA"), "{reason}");
        // Cut inside the last message as well: the message no longer parses.
        let mut cut = messages.clone();
        let last = cut.last_mut().unwrap();
        last.truncate(last.len() - 3);
        malformed_reason(run(TransferKind::Axfr, None, &cut));
    }

    #[test]
    fn closing_soa_different_from_opening_is_rejected() {
        let mut records = axfr_records(7);
        *records.last_mut().unwrap() = soa(8);
        let messages = stream(rtype::AXFR, &records, 100);
        let reason = malformed_reason(run(TransferKind::Axfr, None, &messages));
        assert!(reason.contains("closing SOA (serial 8)"), "{reason}");
        // Same serial but other timers: still not the same SOA.
        let mut records = axfr_records(7);
        let mut other = soa_data(7);
        let len = other.len();
        other[len - 1] ^= 1;
        *records.last_mut().unwrap() = rr("example.test.", rtype::SOA, other);
        let messages = stream(rtype::AXFR, &records, 100);
        malformed_reason(run(TransferKind::Axfr, None, &messages));
    }

    #[test]
    fn closing_soa_may_differ_in_name_case_only() {
        let mut records = axfr_records(7);
        let mut upper = soa_data(7);
        upper[1..4].copy_from_slice(b"NS1");
        *records.last_mut().unwrap() = rr("EXAMPLE.test.", rtype::SOA, upper);
        let messages = stream(rtype::AXFR, &records, 100);
        full(run(TransferKind::Axfr, None, &messages));
    }

    #[test]
    fn records_after_the_closing_soa_are_rejected() {
        let mut records = axfr_records(7);
        records.push(a("late.example.test.", 9));
        let messages = stream(rtype::AXFR, &records, 100);
        let reason = malformed_reason(run(TransferKind::Axfr, None, &messages));
        assert!(reason.contains("after the closing SOA"), "{reason}");
    }

    #[test]
    fn first_record_must_be_the_zone_soa() {
        let mut records = axfr_records(7);
        records.swap(0, 1);
        let messages = stream(rtype::AXFR, &records, 100);
        malformed_reason(run(TransferKind::Axfr, None, &messages));
        // A SOA of another zone does not open this one.
        let mut records = axfr_records(7);
        records[0].owner = wire("other.test.");
        let messages = stream(rtype::AXFR, &records, 100);
        malformed_reason(run(TransferKind::Axfr, None, &messages));
    }

    #[test]
    fn serial_going_back_is_rejected_unless_allowed() {
        let messages = stream(rtype::AXFR, &axfr_records(5), 100);
        let outcome = run(TransferKind::Axfr, Some(6), &messages);
        assert!(
            matches!(
                outcome,
                Err(XfrError::SerialWentBack {
                    ours: 6,
                    theirs: 5,
                    ..
                })
            ),
            "{outcome:?}"
        );
        let limits = TransferLimits {
            allow_older: true,
            ..TransferLimits::default()
        };
        let (zone, _) = full(run_with(
            TransferKind::Axfr,
            Some(6),
            &messages,
            &limits,
            None,
            NOW,
        ));
        assert_eq!(zone.serial(), 5);
        // Across the wrap: 5 is newer than 0xfffffff0.
        full(run(TransferKind::Axfr, Some(0xffff_fff0), &messages));
    }

    #[test]
    fn axfr_with_our_serial_is_up_to_date() {
        let messages = stream(rtype::AXFR, &axfr_records(5), 2);
        let outcome = run(TransferKind::Axfr, Some(5), &messages[..1]);
        assert!(
            matches!(
                outcome,
                Ok(Outcome::Transferred(Transfer::UpToDate { serial: 5 }, _))
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn ixfr_lone_soa_not_newer_is_up_to_date() {
        for theirs in [5, 4] {
            let messages = stream(rtype::IXFR, &[soa(theirs)], 1);
            let outcome = run(TransferKind::Ixfr, Some(5), &messages);
            assert!(
                matches!(
                    outcome,
                    Ok(Outcome::Transferred(Transfer::UpToDate { serial }, _)) if serial == theirs
                ),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn ixfr_lone_newer_soa_asks_for_axfr() {
        let messages = stream(rtype::IXFR, &[soa(9)], 1);
        let outcome = run(TransferKind::Ixfr, Some(5), &messages);
        assert!(
            matches!(outcome, Ok(Outcome::AxfrNeeded { serial: 9, .. })),
            "{outcome:?}"
        );
    }

    /// IXFR from 1 to 3 in two sequences.
    fn ixfr_records() -> Vec<Rr> {
        vec![
            soa(3),
            soa(1),
            a("www.example.test.", 1),
            soa(2),
            a("www.example.test.", 2),
            soa(2),
            a("www.example.test.", 2),
            soa(3),
            a("www.example.test.", 3),
            a("mail.example.test.", 4),
            soa(3),
        ]
    }

    fn record(owner: &str, rtype: u16, rdata: Vec<u8>) -> Record {
        Record {
            owner: Name::parse(owner).unwrap(),
            rtype,
            ttl: 3600,
            rdata: rdata.into(),
        }
    }

    #[test]
    fn ixfr_difference_sequences_give_the_diffs() {
        let messages = stream(rtype::IXFR, &ixfr_records(), 3);
        let outcome = run(TransferKind::Ixfr, Some(1), &messages);
        let Ok(Outcome::Transferred(Transfer::Incremental(diffs), report)) = outcome else {
            panic!("expected incremental, got {outcome:?}");
        };
        assert_eq!(report.kind, TransferKind::Ixfr);
        let soa_record = |serial| record("example.test.", rtype::SOA, soa_data(serial));
        let a_record = |owner, last| record(owner, rtype::A, vec![192, 0, 2, last]);
        assert_eq!(
            diffs,
            vec![
                Diff {
                    from_serial: 1,
                    to_serial: 2,
                    removed: vec![soa_record(1), a_record("www.example.test.", 1)],
                    added: vec![soa_record(2), a_record("www.example.test.", 2)],
                },
                Diff {
                    from_serial: 2,
                    to_serial: 3,
                    removed: vec![soa_record(2), a_record("www.example.test.", 2)],
                    added: vec![
                        soa_record(3),
                        a_record("www.example.test.", 3),
                        a_record("mail.example.test.", 4)
                    ],
                },
            ]
        );
    }

    #[test]
    fn ixfr_not_starting_at_our_serial_is_rejected() {
        let messages = stream(rtype::IXFR, &ixfr_records(), 100);
        let reason = malformed_reason(run(TransferKind::Ixfr, Some(0), &messages));
        assert!(reason.contains("start at serial 1, ours is 0"), "{reason}");
    }

    #[test]
    fn ixfr_gap_between_sequences_is_rejected() {
        let mut records = ixfr_records();
        records[5] = soa(4); // the second sequence should start at 2
        let messages = stream(rtype::IXFR, &records, 100);
        let reason = malformed_reason(run(TransferKind::Ixfr, Some(1), &messages));
        assert!(
            reason.contains("starts at serial 4, expected 2"),
            "{reason}"
        );
    }

    #[test]
    fn ixfr_sequence_going_backwards_is_rejected() {
        let records = vec![soa(3), soa(1), soa(0), soa(3)];
        let messages = stream(rtype::IXFR, &records, 100);
        let reason = malformed_reason(run(TransferKind::Ixfr, Some(1), &messages));
        assert!(reason.contains("not forward"), "{reason}");
    }

    #[test]
    fn ixfr_to_an_older_serial_is_rejected() {
        let records = vec![soa(3), soa(5), soa(3), soa(3)];
        let messages = stream(rtype::IXFR, &records, 100);
        let outcome = run(TransferKind::Ixfr, Some(5), &messages);
        assert!(
            matches!(outcome, Err(XfrError::SerialWentBack { .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn ixfr_truncated_inside_a_sequence_is_rejected() {
        let records = ixfr_records();
        let messages = stream(rtype::IXFR, &records[..records.len() - 1], 100);
        malformed_reason(run(TransferKind::Ixfr, Some(1), &messages));
    }

    #[test]
    fn ixfr_answered_with_the_full_zone_gives_the_zone() {
        let messages = stream(rtype::IXFR, &axfr_records(9), 2);
        let (zone, report) = full(run(TransferKind::Ixfr, Some(5), &messages));
        assert_eq!(zone.serial(), 9);
        assert_eq!(report.kind, TransferKind::Ixfr);
    }

    #[test]
    fn error_rcode_is_reported() {
        let mut m = message(rtype::IXFR, true, &[]);
        m[3] = (m[3] & 0xf0) | rcode::NOTIMP as u8;
        let outcome = run(TransferKind::Ixfr, Some(1), &[m]);
        assert!(
            matches!(outcome, Err(XfrError::Refused { rcode: 4, .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn bad_tsig_on_a_middle_message_is_rejected() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 2);
        sign(&mut messages, &key, b"rm", &[true, true, true]);
        // Flip a bit of the middle message's MAC (its last bytes are the
        // original ID, error and other length: 6 bytes).
        let middle = &mut messages[1];
        let at = middle.len() - 7;
        middle[at] ^= 1;
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        let limits = TransferLimits::default();
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        );
        assert_eq!(tsig_error(outcome), TsigError::BadSig);
    }

    #[test]
    fn missing_tsig_on_a_middle_message_is_rejected() {
        // The master signed every message; the middle one loses its TSIG.
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 2);
        sign(&mut messages, &key, b"rm", &[true, true, true]);
        let unsigned = stream(rtype::AXFR, &axfr_records(7), 2);
        messages[1] = unsigned[1].clone();
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        let limits = TransferLimits::default();
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        );
        assert_eq!(tsig_error(outcome), TsigError::BadSig);
    }

    #[test]
    fn unsigned_last_message_is_rejected() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 2);
        sign(&mut messages, &key, b"rm", &[true, true, false]);
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        let limits = TransferLimits::default();
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        );
        assert_eq!(tsig_error(outcome), TsigError::UnsignedEnd);
    }

    #[test]
    fn unsigned_answer_to_a_signed_request_is_rejected() {
        let key = key("xfr-key.", b"secret");
        let messages = stream(rtype::AXFR, &axfr_records(7), 100);
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        let limits = TransferLimits::default();
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW,
        );
        assert_eq!(tsig_error(outcome), TsigError::Unsigned);
    }

    #[test]
    fn wrong_key_name_and_wrong_secret_are_rejected() {
        let ours = key("xfr-key.", b"secret");
        let mut by_other_name = stream(rtype::AXFR, &axfr_records(7), 100);
        sign(
            &mut by_other_name,
            &key("other-key.", b"secret"),
            b"rm",
            &[true],
        );
        let limits = TransferLimits::default();
        let verifier = ResponseVerifier::new(&ours, b"rm".to_vec());
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &by_other_name,
            &limits,
            Some(verifier),
            NOW,
        );
        assert!(matches!(
            tsig_error(outcome),
            TsigError::WrongKeyName { .. }
        ));

        let mut by_other_secret = stream(rtype::AXFR, &axfr_records(7), 100);
        sign(
            &mut by_other_secret,
            &key("xfr-key.", b"guess"),
            b"rm",
            &[true],
        );
        let verifier = ResponseVerifier::new(&ours, b"rm".to_vec());
        let outcome = run_with(
            TransferKind::Axfr,
            None,
            &by_other_secret,
            &limits,
            Some(verifier),
            NOW,
        );
        assert_eq!(tsig_error(outcome), TsigError::BadSig);
    }

    #[test]
    fn skewed_clock_gives_badtime() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 100);
        sign(&mut messages, &key, b"rm", &[true]);
        let limits = TransferLimits::default();
        for skew in [-301i64, 301, 86_400] {
            let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
            let now = NOW.saturating_add_signed(skew);
            let outcome = run_with(
                TransferKind::Axfr,
                None,
                &messages,
                &limits,
                Some(verifier),
                now,
            );
            assert!(
                matches!(tsig_error(outcome), TsigError::BadTime { .. }),
                "skew {skew}"
            );
        }
        let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        full(run_with(
            TransferKind::Axfr,
            None,
            &messages,
            &limits,
            Some(verifier),
            NOW + 300,
        ));
    }

    #[test]
    fn wrong_message_id_or_question_is_rejected() {
        let mut messages = stream(rtype::AXFR, &axfr_records(7), 2);
        messages[1][0] ^= 1;
        let reason = malformed_reason(run(TransferKind::Axfr, None, &messages));
        assert!(reason.contains("message ID"), "{reason}");

        let messages = stream(rtype::IXFR, &axfr_records(7), 100);
        let reason = malformed_reason(run(TransferKind::Axfr, None, &messages));
        assert!(reason.contains("question"), "{reason}");

        let mut messages = stream(rtype::AXFR, &axfr_records(7), 100);
        messages[0][13] = b'X'; // the question's first label, "example" -> "Xxample"
        malformed_reason(run(TransferKind::Axfr, None, &messages));
    }

    #[test]
    fn out_of_zone_records_are_dropped_and_counted() {
        let mut records = axfr_records(7);
        records.insert(2, a("www.other.test.", 9));
        records.insert(3, a("test.", 9));
        let messages = stream(rtype::AXFR, &records, 100);
        let (zone, report) = full(run(TransferKind::Axfr, None, &messages));
        assert_eq!(report.dropped_out_of_zone, 2);
        assert_eq!(zone.record_count(), 4);

        let mut records = ixfr_records();
        records.insert(8, a("evil.test.", 1));
        let messages = stream(rtype::IXFR, &records, 100);
        let outcome = run(TransferKind::Ixfr, Some(1), &messages);
        let Ok(Outcome::Transferred(Transfer::Incremental(diffs), report)) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(report.dropped_out_of_zone, 1);
        assert_eq!(diffs[1].added.len(), 3);
    }

    #[test]
    fn full_zone_goes_through_the_zone_checks() {
        let mut records = axfr_records(7);
        records.insert(
            3,
            rr("www.example.test.", rtype::CNAME, wire("elsewhere.test.")),
        );
        let messages = stream(rtype::AXFR, &records, 100);
        let outcome = run(TransferKind::Axfr, None, &messages);
        assert!(
            matches!(outcome, Err(XfrError::BadZone { .. })),
            "{outcome:?}"
        );

        // No NS at the apex.
        let records = vec![soa(7), a("www.example.test.", 1), soa(7)];
        let messages = stream(rtype::AXFR, &records, 100);
        let outcome = run(TransferKind::Axfr, None, &messages);
        assert!(
            matches!(outcome, Err(XfrError::BadZone { .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn other_class_and_meta_types_are_rejected() {
        let mut records = axfr_records(7);
        records[2].class = class::CH;
        malformed_reason(run(
            TransferKind::Axfr,
            None,
            &stream(rtype::AXFR, &records, 100),
        ));
        let mut records = axfr_records(7);
        records[2].rtype = rtype::OPT;
        malformed_reason(run(
            TransferKind::Axfr,
            None,
            &stream(rtype::AXFR, &records, 100),
        ));
    }

    #[test]
    fn size_limits_are_enforced() {
        let messages = stream(rtype::AXFR, &axfr_records(7), 2);
        let limits = TransferLimits {
            max_records: 4,
            ..TransferLimits::default()
        };
        let outcome = run_with(TransferKind::Axfr, None, &messages, &limits, None, NOW);
        assert!(
            matches!(
                outcome,
                Err(XfrError::TooLarge {
                    what: "records",
                    limit: 4,
                    ..
                })
            ),
            "{outcome:?}"
        );
        let limits = TransferLimits {
            max_bytes: 100,
            ..TransferLimits::default()
        };
        let outcome = run_with(TransferKind::Axfr, None, &messages, &limits, None, NOW);
        assert!(
            matches!(outcome, Err(XfrError::TooLarge { what: "bytes", .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn compressed_names_are_expanded_keeping_case_and_owners_lowercased() {
        // Pointers to offset 12, the question name example.test.
        let ptr = |label: &[u8]| {
            let mut name = vec![label.len() as u8];
            name.extend_from_slice(label);
            name.extend([0xc0, 0x0c]);
            name
        };
        let mut mx = vec![0, 10];
        mx.extend(ptr(b"Mail"));
        let mut srv = vec![0, 1, 0, 2, 0, 53];
        srv.extend(ptr(b"Srv"));
        let mut naptr = vec![0, 1, 0, 2, 1, b'U', 3, b'E', b'2', b'U', 0];
        naptr.extend(ptr(b"Map"));
        let mut soa_compressed = ptr(b"NS1");
        soa_compressed.extend(ptr(b"hostmaster"));
        for value in [7u32, 3600, 600, 86400, 300] {
            soa_compressed.extend(value.to_be_bytes());
        }
        let records = vec![
            Rr {
                owner: vec![0xc0, 0x0c],
                rtype: rtype::SOA,
                class: class::IN,
                rdata: soa_compressed,
            },
            rr("example.test.", rtype::NS, ptr(b"NS1")),
            Rr {
                owner: ptr(b"WWW"),
                rtype: rtype::MX,
                class: class::IN,
                rdata: mx,
            },
            rr("_dns._tcp.example.test.", rtype::SRV, srv),
            rr("n.example.test.", rtype::NAPTR, naptr),
            soa(7),
        ];
        let messages = stream(rtype::AXFR, &records, 100);
        let (zone, _) = full(run(TransferKind::Axfr, None, &messages));
        let data = |owner: &str, code| {
            let id = zone.find(&wire(owner)).expect(owner);
            let set = zone.rrset(id, code).expect("rrset");
            zone.records(set).next().unwrap().to_vec()
        };
        assert_eq!(
            data("example.test.", rtype::NS),
            b"\x03NS1\x07example\x04test\x00"
        );
        assert_eq!(
            data("www.example.test.", rtype::MX),
            b"\x00\x0a\x04Mail\x07example\x04test\x00"
        );
        assert!(
            data("_dns._tcp.example.test.", rtype::SRV)
                .ends_with(b"\x03Srv\x07example\x04test\x00")
        );
        assert!(data("n.example.test.", rtype::NAPTR).ends_with(b"\x03Map\x07example\x04test\x00"));
        assert!(
            data("example.test.", rtype::SOA)
                .starts_with(b"\x03NS1\x07example\x04test\x00\x0ahostmaster")
        );
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        let mut out = Vec::new();
        // A pointer to itself, to a later offset, and a two-step loop.
        assert_eq!(read_name(b"\xc0\x00", 0, &mut out), None);
        assert_eq!(read_name(b"\xc0\x02\x00", 0, &mut out), None);
        assert_eq!(read_name(b"\x01a\xc0\x00", 2, &mut out), None);
        assert!(out.is_empty());
        assert_eq!(read_name(b"\x01a\x00\xc0\x00", 3, &mut out), Some(5));
        assert_eq!(out, b"\x01a\x00");
    }

    #[test]
    fn rdata_that_does_not_fit_its_type_is_rejected() {
        let mut records = axfr_records(7);
        let mut ns = wire("ns1.example.test.");
        ns.push(0); // a byte after the name
        records[1].rdata = ns;
        malformed_reason(run(
            TransferKind::Axfr,
            None,
            &stream(rtype::AXFR, &records, 100),
        ));
        let mut records = axfr_records(7);
        records[0].rdata.pop(); // SOA with 19 bytes of numbers
        malformed_reason(run(
            TransferKind::Axfr,
            None,
            &stream(rtype::AXFR, &records, 100),
        ));
    }

    #[test]
    fn damaged_streams_never_panic() {
        let key = key("xfr-key.", b"secret");
        let mut messages = stream(rtype::IXFR, &ixfr_records(), 4);
        sign(&mut messages, &key, b"rm", &[true, true, true]);
        let limits = TransferLimits::default();
        for which in 0..messages.len() {
            for at in 0..messages[which].len() {
                let mut damaged = messages.clone();
                damaged[which][at] ^= 0x41;
                let verifier = ResponseVerifier::new(&key, b"rm".to_vec());
                let outcome = run_with(
                    TransferKind::Ixfr,
                    Some(1),
                    &damaged,
                    &limits,
                    Some(verifier),
                    NOW,
                );
                assert!(outcome.is_err(), "damage at {which}/{at} went unnoticed");
                let mut cut = messages.clone();
                cut[which].truncate(at);
                let _ = run(TransferKind::Ixfr, Some(1), &cut);
            }
        }
    }

    #[test]
    fn soa_response_checks() {
        let zone = zone();
        let answer = message(rtype::SOA, true, &[soa(42)]);
        assert_eq!(
            parse_soa_response(master(), &zone, ID, &answer, None, NOW).unwrap(),
            SoaAnswer::Serial(42)
        );
        let mut not_aa = answer.clone();
        not_aa[2] &= !0x04;
        assert!(matches!(
            parse_soa_response(master(), &zone, ID, &not_aa, None, NOW),
            Err(XfrError::NotAuthoritative { .. })
        ));
        let mut truncated = answer.clone();
        truncated[2] |= 0x02;
        assert_eq!(
            parse_soa_response(master(), &zone, ID, &truncated, None, NOW).unwrap(),
            SoaAnswer::Truncated
        );
        let mut refused = message(rtype::SOA, true, &[]);
        refused[3] |= rcode::REFUSED as u8;
        assert!(matches!(
            parse_soa_response(master(), &zone, ID, &refused, None, NOW),
            Err(XfrError::Refused { rcode: 5, .. })
        ));
        let no_soa = message(rtype::SOA, true, &[a("example.test.", 1)]);
        assert!(matches!(
            parse_soa_response(master(), &zone, ID, &no_soa, None, NOW),
            Err(XfrError::NotAuthoritative { .. })
        ));
        let key = key("xfr-key.", b"secret");
        let mut signed = vec![answer.clone()];
        sign(&mut signed, &key, b"rm", &[true]);
        let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        assert_eq!(
            parse_soa_response(master(), &zone, ID, &signed[0], Some(&mut verifier), NOW).unwrap(),
            SoaAnswer::Serial(42)
        );
        let mut verifier = ResponseVerifier::new(&key, b"rm".to_vec());
        assert!(matches!(
            parse_soa_response(master(), &zone, ID, &answer, Some(&mut verifier), NOW),
            Err(XfrError::Tsig {
                source: TsigError::Unsigned,
                ..
            })
        ));
    }

    #[test]
    fn ixfr_query_carries_our_soa() {
        let ours = OurSoa {
            serial: 5,
            ttl: 3600,
            rdata: soa_data(5),
        };
        let query = build_query(7, &zone(), rtype::IXFR, Some(&ours));
        assert_eq!(&query[..12], &[0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
        assert!(query.ends_with(&soa_data(5)));
        let key = key("xfr-key.", b"secret");
        let mut signed = query.clone();
        let mac = tsig::sign_request(&key, &mut signed, NOW).unwrap();
        assert_eq!(mac.len(), 32);
        assert_eq!(signed[11], 1);
    }

    #[test]
    fn every_error_names_the_master() {
        let m = master();
        let errors = [
            XfrError::Io {
                master: m,
                source: std::io::Error::other("boom"),
            },
            XfrError::Timeout {
                master: m,
                timeout: Duration::from_secs(1),
            },
            XfrError::Refused {
                master: m,
                rcode: 5,
            },
            XfrError::Tsig {
                master: m,
                source: TsigError::BadSig,
            },
            malformed(m, "x"),
            XfrError::TooLarge {
                master: m,
                what: "records",
                limit: 1,
            },
            XfrError::SerialWentBack {
                master: m,
                ours: 2,
                theirs: 1,
            },
            XfrError::BadZone {
                master: m,
                problems: vec!["p".into()],
            },
            not_authoritative(m, &zone()),
        ];
        for error in errors {
            assert!(error.to_string().contains("127.0.0.1:5300"), "{error}");
            assert_eq!(error.master(), m);
        }
    }
}
