//! Transfers out over TCP: AXFR (RFC 5936) and IXFR (RFC 1995) to the peers
//! a zone's `allow_transfer` names, with TSIG (RFC 8945).
//!
//! [`TransferPolicy::decide`] is the sans-IO part: given a request, the
//! peer's address and the clock it says whether the transfer is allowed, and
//! if not, the answer to send (REFUSED, NOTAUTH with a TSIG error, ...).
//! [`start`] adds the one blocking step, the IXFR journal lookup, and
//! returns an [`ActiveTransfer`] that the connection drains message by
//! message as the socket takes them, so a transfer holds a few 16 KiB
//! messages in memory whatever the zone's size.
//!
//! The policy is built once at start from the configuration: changes to
//! `allow_transfer` and `[[tsig]]` need a restart.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hashbrown::HashMap;

use super::ServerStats;
use crate::config::{Config, IpNet};
use crate::dns::query::{self, FLAG_QR, FLAG_RD, Query, opcode, rcode};
use crate::dns::writer::opt_record;
use crate::store::Store;
use crate::xfr::Diff;
use crate::xfr::client::serial_gt;
use crate::xfr::outgoing::{MAX_MESSAGE, OutgoingTransfer};
use crate::xfr::tsig::{
    ResponseSigner, TsigError, TsigKey, tsig_error_answer, unix_now, verify_request,
};
use crate::zone::rr::{class, rtype};
use crate::zone::{Name, Zone, ZoneSet};

/// One `allow_transfer` entry with its key resolved.
#[derive(Debug, Clone)]
pub struct TransferRule {
    /// The peers it admits.
    pub network: IpNet,
    /// The key their requests must be signed with; `None`: unsigned requests
    /// are admitted too.
    pub key: Option<Arc<TsigKey>>,
}

impl TransferRule {
    /// Whether this rule admits a request from `peer`, signed with `signer`
    /// (`None`: unsigned).
    fn admits(&self, peer: IpAddr, signer: Option<&TsigKey>) -> bool {
        if !self.network.contains(peer) {
            return false;
        }
        match (&self.key, signer) {
            (None, _) => true,
            (Some(wanted), Some(used)) => wanted.name == used.name,
            (Some(_), None) => false,
        }
    }
}

/// Who may transfer which zone from us, the keys that sign requests, and
/// the store holding the IXFR journals of secondary zones.
pub struct TransferPolicy {
    zones: Arc<ArcSwap<ZoneSet>>,
    rules: HashMap<Name, Vec<TransferRule>>,
    keys: Vec<Arc<TsigKey>>,
    store: Option<Arc<Store>>,
}

impl fmt::Debug for TransferPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferPolicy")
            .field("zones_allowing_transfers", &self.rules.len())
            .field("keys", &self.keys.len())
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a transfer was not served; logged with the peer and the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request could not be read (FORMERR).
    Malformed(&'static str),
    /// The request's TSIG failed verification (NOTAUTH with the TSIG error).
    Tsig(TsigError),
    /// We do not serve a zone with this apex (NOTAUTH).
    NotOurZone,
    /// A secondary zone never transferred or past its expire time (SERVFAIL).
    Expired,
    /// The request's OPT has an EDNS version we do not speak (BADVERS).
    EdnsVersion(u8),
    /// No `allow_transfer` entry admits the peer with the key it used (or
    /// without one) (REFUSED).
    NotAllowed {
        /// The key the request was signed with, if any.
        key: Option<Name>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(what) => write!(f, "malformed request: {what}"),
            Refusal::Tsig(error) => write!(f, "TSIG: {error}"),
            Refusal::NotOurZone => f.write_str("not a zone served here"),
            Refusal::Expired => f.write_str("the zone is expired"),
            Refusal::EdnsVersion(version) => write!(f, "EDNS version {version} is not supported"),
            Refusal::NotAllowed { key: None } => {
                f.write_str("no allow_transfer entry admits this address without TSIG")
            }
            Refusal::NotAllowed { key: Some(key) } => {
                write!(
                    f,
                    "no allow_transfer entry admits this address with key {key}"
                )
            }
        }
    }
}

/// What to do with a transfer request.
#[derive(Debug)]
pub enum Decision {
    /// Send `answer` (one message) and go on with the connection.
    Refuse {
        /// The zone asked for, as written in the request (lowercase).
        zone: Option<Name>,
        /// Why.
        refusal: Refusal,
        /// The answer: header, question, and a TSIG record when the request
        /// was signed.
        answer: Vec<u8>,
    },
    /// Serve it.
    Allow(Allowed),
}

/// A transfer the policy allows, not yet started.
pub struct Allowed {
    zone: Arc<Zone>,
    id: u16,
    qname: Vec<u8>,
    request: Request,
    /// The key and request MAC when the request was signed.
    signature: Option<(Arc<TsigKey>, Vec<u8>)>,
    /// Whether the zone is a secondary whose journal the store may hold.
    secondary: bool,
    /// The OPT every answer message carries when the request had one: our
    /// payload size and the request's DO bit.
    opt: Option<(u16, bool)>,
}

impl fmt::Debug for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowed")
            .field("zone", self.zone.apex())
            .field("request", &self.request)
            .field("signed", &self.signature.is_some())
            .finish_non_exhaustive()
    }
}

/// The kind of transfer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Axfr,
    /// IXFR from the client's serial.
    Ixfr(u32),
}

impl TransferPolicy {
    /// A policy allowing nothing yet, over the published `zones`.
    pub fn new(zones: Arc<ArcSwap<ZoneSet>>, store: Option<Arc<Store>>) -> TransferPolicy {
        TransferPolicy {
            zones,
            rules: HashMap::new(),
            keys: Vec::new(),
            store,
        }
    }

    /// The policy of `config`: each zone's `allow_transfer` with its keys
    /// resolved. An entry naming a key that is not defined (the config check
    /// prevents it) admits nobody rather than unsigned requests.
    pub fn from_config(
        config: &Config,
        zones: Arc<ArcSwap<ZoneSet>>,
        store: Option<Arc<Store>>,
    ) -> TransferPolicy {
        let mut policy = TransferPolicy::new(zones, store);
        policy.keys = config
            .tsig_keys
            .iter()
            .map(|key| Arc::new(TsigKey::from(key)))
            .collect();
        for zone in &config.zones {
            let mut rules = Vec::with_capacity(zone.allow_transfer.len());
            for acl in &zone.allow_transfer {
                let key = match &acl.tsig {
                    None => None,
                    Some(name) => match policy.keys.iter().find(|k| &k.name == name) {
                        Some(key) => Some(key.clone()),
                        None => {
                            tracing::error!(zone = %zone.name, key = %name, "allow_transfer names an undefined key; entry ignored");
                            continue;
                        }
                    },
                };
                rules.push(TransferRule {
                    network: acl.network,
                    key,
                });
            }
            if !rules.is_empty() {
                policy.allow(&zone.name, rules);
            }
        }
        policy
    }

    /// Lets the peers of `rules` transfer the zone `apex`.
    pub fn allow(&mut self, apex: &Name, rules: Vec<TransferRule>) {
        for key in rules.iter().filter_map(|rule| rule.key.as_ref()) {
            if !self.keys.iter().any(|known| known.name == key.name) {
                self.keys.push(key.clone());
            }
        }
        self.rules.insert(apex.to_lowercase(), rules);
    }

    /// How many zones allow transfers.
    pub fn zones_allowing_transfers(&self) -> usize {
        self.rules.len()
    }

    /// Decides on a transfer request from `peer` at time `now` (seconds
    /// since the epoch). The request's TSIG is checked first, so every
    /// answer to a verified request is signed (RFC 8945 §5.3); then the zone
    /// (exact apex, not expired), then the rules.
    pub fn decide(&self, request: &[u8], peer: IpAddr, now: u64) -> Decision {
        let (query, question_end) = match query::parse_query(request) {
            Ok(parsed) => parsed,
            Err(_) => {
                return refuse(
                    request,
                    None,
                    None,
                    Refusal::Malformed("unreadable question"),
                    Sign::No,
                    now,
                    None,
                );
            }
        };
        let zone_name = Name::from_wire(query.lower_qname()).ok();
        let zones = self.zones.load();
        let opt = query
            .edns
            .as_ref()
            .map(|edns| (zones.udp_payload, edns.dnssec_ok));
        let signature = match verify_request(&self.keys, request, now) {
            Ok(signature) => signature,
            Err(error) => {
                let sign = Sign::Error(self.keys.clone(), error.clone());
                let refusal = Refusal::Tsig(error);
                return refuse(
                    request,
                    Some(question_end),
                    zone_name,
                    refusal,
                    sign,
                    now,
                    opt,
                );
            }
        };
        let sign = match &signature {
            Some((key, mac)) => Sign::With(key.clone(), mac.clone()),
            None => Sign::No,
        };
        let refused = |refusal| {
            refuse(
                request,
                Some(question_end),
                zone_name.clone(),
                refusal,
                sign.clone(),
                now,
                opt,
            )
        };
        // RFC 6891 §6.1.3: a version above ours gets BADVERS, and an OPT of
        // our version.
        if let Some(version) = query.edns.as_ref().map(|edns| edns.version)
            && version != 0
        {
            return refused(Refusal::EdnsVersion(version));
        }
        let Some(entry) = zones
            .find(query.lower_qname(), rtype::SOA)
            .filter(|entry| entry.zone.apex().as_wire() == query.lower_qname())
        else {
            return refused(Refusal::NotOurZone);
        };
        if entry.is_expired() {
            return refused(Refusal::Expired);
        }
        let signer = signature.as_ref().map(|(key, _)| key.as_ref());
        let admitted = self
            .rules
            .get(entry.zone.apex())
            .is_some_and(|rules| rules.iter().any(|rule| rule.admits(peer, signer)));
        if !admitted {
            let key = signer.map(|key| key.name.clone());
            return refused(Refusal::NotAllowed { key });
        }
        let request_kind = match query.qtype {
            rtype::IXFR => match ixfr_serial(request, question_end) {
                Some(serial) => Request::Ixfr(serial),
                None => {
                    return refused(Refusal::Malformed("IXFR without a SOA in authority"));
                }
            },
            _ => Request::Axfr,
        };
        Decision::Allow(Allowed {
            zone: entry.zone.clone(),
            id: query.id,
            qname: query.qname().to_vec(),
            request: request_kind,
            signature,
            secondary: entry.secondary.is_some(),
            opt,
        })
    }
}

/// What [`start`] gives the connection.
#[derive(Debug)]
pub enum Start {
    /// Stream this transfer.
    Stream(Box<ActiveTransfer>),
    /// Send this one message (a refusal).
    Answer(Vec<u8>),
}

/// Decides on a transfer request (see [`TransferPolicy::decide`]), counts
/// and logs a refusal, and for an allowed IXFR reads the journal (on the
/// blocking pool).
pub async fn start(
    policy: &TransferPolicy,
    request: &[u8],
    peer: IpAddr,
    stats: &ServerStats,
) -> Start {
    let allowed = match policy.decide(request, peer, unix_now()) {
        Decision::Allow(allowed) => allowed,
        Decision::Refuse {
            zone,
            refusal,
            answer,
        } => {
            ServerStats::bump(&stats.transfers_refused);
            let zone = zone.map_or_else(|| "-".to_string(), |zone| zone.to_string());
            tracing::warn!(%peer, %zone, "zone transfer refused: {refusal}");
            return Start::Answer(answer);
        }
    };
    let (transfer, kind) = match allowed.request {
        Request::Axfr => (
            OutgoingTransfer::axfr(allowed.zone.clone(), allowed.id, &allowed.qname),
            Kind::Axfr,
        ),
        Request::Ixfr(client) => {
            let ours = allowed.zone.serial();
            let diffs = if !serial_gt(ours, client) {
                Some(Vec::new())
            } else {
                match (&policy.store, allowed.secondary) {
                    (Some(store), true) => {
                        let apex = allowed.zone.apex().clone();
                        journal_diffs(store.clone(), apex, client, ours).await
                    }
                    _ => None,
                }
            };
            let kind = match &diffs {
                Some(diffs) if diffs.is_empty() => Kind::IxfrUpToDate,
                Some(diffs) => Kind::Ixfr(diffs.len()),
                None => Kind::IxfrFull,
            };
            let transfer =
                OutgoingTransfer::ixfr(allowed.zone.clone(), allowed.id, &allowed.qname, diffs);
            (transfer, kind)
        }
    };
    let transfer = match allowed.opt {
        Some((payload, dnssec_ok)) => transfer.with_opt(payload, dnssec_ok),
        None => transfer,
    };
    Start::Stream(Box::new(ActiveTransfer {
        signer: allowed
            .signature
            .map(|(key, mac)| ResponseSigner::new(&key, mac)),
        transfer,
        message: Vec::with_capacity(MAX_MESSAGE + 512),
        zone: allowed.zone.apex().clone(),
        serial: allowed.zone.serial(),
        peer,
        kind,
        messages: 0,
        bytes: 0,
        started: Instant::now(),
    }))
}

/// The differences from `from` to `to` in the journal of `apex`, or `None`
/// when the journal does not cover them (the answer is then AXFR-style).
/// The store may already hold a version newer than the one published: the
/// differences past `to` are left out.
async fn journal_diffs(store: Arc<Store>, apex: Name, from: u32, to: u32) -> Option<Vec<Diff>> {
    let zone = apex.clone();
    let found = tokio::task::spawn_blocking(move || store.journal_since(&apex, from)).await;
    let mut diffs = match found {
        Ok(Ok(diffs)) => diffs?,
        Ok(Err(e)) => {
            tracing::warn!(%zone, "IXFR answered AXFR-style: cannot read the journal: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!(%zone, "IXFR answered AXFR-style: journal lookup failed: {e}");
            return None;
        }
    };
    let last = diffs.iter().position(|diff| diff.to_serial == to)?;
    diffs.truncate(last + 1);
    Some(diffs)
}

/// What a transfer sends, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Axfr,
    /// IXFR with this many difference sequences.
    Ixfr(usize),
    /// IXFR answered with the whole zone (no history).
    IxfrFull,
    /// IXFR from a client already up to date: the SOA alone.
    IxfrUpToDate,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Axfr => f.write_str("AXFR"),
            Kind::Ixfr(diffs) => write!(f, "IXFR ({diffs} differences)"),
            Kind::IxfrFull => f.write_str("IXFR (AXFR-style, no history)"),
            Kind::IxfrUpToDate => f.write_str("IXFR (up to date)"),
        }
    }
}

/// A transfer being sent: one message is produced (and signed) at a time.
pub struct ActiveTransfer {
    transfer: OutgoingTransfer,
    signer: Option<ResponseSigner>,
    /// The message being produced.
    message: Vec<u8>,
    zone: Name,
    serial: u32,
    peer: IpAddr,
    kind: Kind,
    messages: usize,
    bytes: u64,
    started: Instant,
}

impl fmt::Debug for ActiveTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveTransfer")
            .field("zone", &self.zone)
            .field("peer", &self.peer)
            .field("kind", &self.kind)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl ActiveTransfer {
    /// The next message, signed when the request was (every message is:
    /// simplest, and what Knot does); `None` once the transfer is complete.
    /// `now` is the time signed.
    pub fn next_message(&mut self, now: u64) -> Result<Option<&[u8]>, TsigError> {
        self.message.clear();
        self.message.resize(MAX_MESSAGE, 0);
        let Some(len) = self.transfer.next_message(&mut self.message) else {
            self.message.clear();
            return Ok(None);
        };
        self.message.truncate(len);
        if let Some(signer) = &mut self.signer {
            signer.sign(&mut self.message, now)?;
        }
        self.messages += 1;
        self.bytes += self.message.len() as u64;
        Ok(Some(&self.message))
    }

    /// Counts and logs a transfer sent to the end.
    pub fn finished(&self, stats: &ServerStats) {
        ServerStats::bump(&stats.transfers_out);
        let elapsed_ms = format_args!("{:.1}", self.started.elapsed().as_secs_f64() * 1000.0);
        tracing::info!(
            zone = %self.zone,
            peer = %self.peer,
            serial = self.serial,
            messages = self.messages,
            bytes = self.bytes,
            signed = self.signer.is_some(),
            %elapsed_ms,
            "zone transferred out: {}",
            self.kind
        );
    }

    /// Logs a transfer the connection gave up (closed, timed out, failed).
    pub fn abandoned(&self, why: &dyn fmt::Display) {
        tracing::warn!(
            zone = %self.zone,
            peer = %self.peer,
            messages = self.messages,
            "zone transfer out not completed: {why}"
        );
    }
}

/// Whether a TCP frame is a transfer request this module answers: a query
/// (opcode 0) of class IN for AXFR or IXFR. Looks at the question type
/// before parsing the whole message, so other queries pay little.
pub fn is_transfer_request(frame: &[u8]) -> bool {
    let Some(name_end) = frame.get(12..).and_then(|_| query::skip_name(frame, 12)) else {
        return false;
    };
    let Some(fixed) = frame.get(name_end..name_end + 4) else {
        return false;
    };
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    if qtype != rtype::AXFR && qtype != rtype::IXFR {
        return false;
    }
    matches!(
        query::parse_query(frame),
        Ok((
            Query {
                opcode: opcode::QUERY,
                qclass: class::IN,
                ..
            },
            _
        ))
    )
}

/// The serial of the SOA an IXFR request carries in its authority section
/// (RFC 1995 §3): the client's version. Names may be compressed, so the
/// serial is read from the end of the record: it sits 20 bytes before it.
fn ixfr_serial(request: &[u8], question_end: usize) -> Option<u32> {
    let count = |i: usize| u16::from_be_bytes([request[i], request[i + 1]]);
    if count(8) == 0 {
        return None;
    }
    let mut pos = question_end;
    for _ in 0..count(6) {
        pos = skip_record(request, pos)?;
    }
    let name_end = query::skip_name(request, pos)?;
    let fixed = request.get(name_end..name_end + 10)?;
    if u16::from_be_bytes([fixed[0], fixed[1]]) != rtype::SOA {
        return None;
    }
    let end = skip_record(request, pos)?;
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    if rdlength < 22 {
        return None;
    }
    let serial = request.get(end - 20..end - 16)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// The offset after the record at `pos`.
fn skip_record(message: &[u8], pos: usize) -> Option<usize> {
    let name_end = query::skip_name(message, pos)?;
    let fixed = message.get(name_end..name_end + 10)?;
    let end = name_end + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    (end <= message.len()).then_some(end)
}

/// How a refusal is signed.
#[derive(Clone)]
enum Sign {
    /// Unsigned request: unsigned answer.
    No,
    /// Verified request: signed with its key, chaining its MAC.
    With(Arc<TsigKey>, Vec<u8>),
    /// Failed verification: the TSIG error answer.
    Error(Vec<Arc<TsigKey>>, TsigError),
}

/// The answer refusing `request`: its header (opcode and RD kept) and, when
/// it was read, its question, with the RCODE `refusal` calls for.
#[allow(clippy::too_many_arguments)]
fn refuse(
    request: &[u8],
    question_end: Option<usize>,
    zone: Option<Name>,
    refusal: Refusal,
    sign: Sign,
    now: u64,
    opt: Option<(u16, bool)>,
) -> Decision {
    let code = match &refusal {
        Refusal::Malformed(_) => rcode::FORMERR,
        Refusal::Tsig(_) | Refusal::NotOurZone => rcode::NOTAUTH,
        Refusal::Expired => rcode::SERVFAIL,
        Refusal::NotAllowed { .. } => rcode::REFUSED,
        Refusal::EdnsVersion(_) => rcode::BADVERS,
    };
    let mut answer = Vec::with_capacity(512);
    answer.extend_from_slice(request.get(..2).unwrap_or(&[0, 0]));
    let flags = request
        .get(2..4)
        .map_or(0, |flags| u16::from_be_bytes([flags[0], flags[1]]));
    let flags = FLAG_QR | (flags & (0x7800 | FLAG_RD)) | (code & 0x000f);
    answer.extend_from_slice(&flags.to_be_bytes());
    let question = question_end.and_then(|end| request.get(12..end));
    let questions = u16::from(question.is_some());
    answer.extend_from_slice(&questions.to_be_bytes());
    answer.extend_from_slice(&[0, 0, 0, 0]);
    answer.extend_from_slice(&u16::from(opt.is_some()).to_be_bytes());
    answer.extend_from_slice(question.unwrap_or(&[]));
    if let Some((payload, dnssec_ok)) = opt {
        let extended = u8::try_from(code >> 4).unwrap_or(0);
        answer.extend_from_slice(&opt_record(payload, extended, dnssec_ok));
    }
    let signed = match sign {
        Sign::No => Ok(()),
        Sign::With(key, mac) => ResponseSigner::new(&key, mac).sign(&mut answer, now),
        Sign::Error(keys, error) => tsig_error_answer(&keys, request, &error, &mut answer, now),
    };
    if let Err(e) = signed {
        // Cannot happen with a header in place; the answer goes unsigned.
        tracing::debug!("transfer refusal left unsigned: {e}");
    }
    Decision::Refuse {
        zone,
        refusal,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::tsig::{ResponseVerifier, TsigAlgorithm, sign_request};
    use crate::zone::{SecondaryControl, ZoneEntry};
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    const NOW: u64 = 1_790_000_000;
    const INSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    fn key(name: &str, secret: &[u8]) -> Arc<TsigKey> {
        Arc::new(TsigKey::new(
            &Name::parse(name).unwrap(),
            TsigAlgorithm::HmacSha256,
            secret.to_vec(),
        ))
    }

    fn xfr_key() -> Arc<TsigKey> {
        key("xfr-key.", b"transfer secret")
    }

    fn zone(apex: &str, serial: u32, hosts: usize) -> Arc<Zone> {
        let mut text =
            format!("@ 3600 IN SOA ns1 admin {serial} 3600 600 86400 300\n@ 3600 IN NS ns1\n");
        for i in 0..hosts {
            text.push_str(&format!("host{i} 300 IN A 192.0.2.{}\n", i % 250));
        }
        Arc::new(crate::zone::build::zone_from_text(apex, &text))
    }

    /// `signed.test.` needs `xfr-key.` from 127/8; `open.test.` admits
    /// 127/8 unsigned; `closed.test.` has no rules; `lost.test.` is an
    /// expired secondary open to all.
    fn policy() -> TransferPolicy {
        let expired = Arc::new(SecondaryControl::new(vec![]));
        let entries = vec![
            ZoneEntry::primary(zone("signed.test.", 7, 3), Arc::default()),
            ZoneEntry::primary(zone("open.test.", 7, 3), Arc::default()),
            ZoneEntry::primary(zone("closed.test.", 7, 3), Arc::default()),
            ZoneEntry {
                zone: zone("lost.test.", 7, 3),
                stats: Arc::default(),
                secondary: Some(expired),
            },
        ];
        let zones = Arc::new(ArcSwap::from_pointee(ZoneSet::new(entries, Arc::default())));
        let mut policy = TransferPolicy::new(zones, None);
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        let everyone: IpNet = "0.0.0.0/0".parse().unwrap();
        policy.allow(
            &Name::parse("signed.test.").unwrap(),
            vec![TransferRule {
                network: loopback,
                key: Some(xfr_key()),
            }],
        );
        policy.allow(
            &Name::parse("open.test.").unwrap(),
            vec![TransferRule {
                network: loopback,
                key: None,
            }],
        );
        policy.allow(
            &Name::parse("lost.test.").unwrap(),
            vec![TransferRule {
                network: everyone,
                key: None,
            }],
        );
        // Known to the server, named by no rule.
        policy.keys.push(key("other-key.", b"other secret"));
        policy
    }

    /// A transfer request for `zone`; IXFR carries a SOA with `serial`.
    fn request(zone: &str, qtype: u16, serial: Option<u32>) -> Vec<u8> {
        let mut p = vec![
            0xbe,
            0xef,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            u8::from(serial.is_some()),
            0,
            0,
        ];
        p.extend(Name::parse(zone).unwrap().as_wire());
        p.extend(qtype.to_be_bytes());
        p.extend(1u16.to_be_bytes());
        if let Some(serial) = serial {
            p.extend([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 0]);
            let mut rdata = vec![0, 0];
            for v in [serial, 0, 0, 0, 0] {
                rdata.extend(v.to_be_bytes());
            }
            p.extend((rdata.len() as u16).to_be_bytes());
            p.extend(rdata);
        }
        p
    }

    /// `request` with an OPT record of EDNS `version`, DO set.
    fn with_edns(mut request: Vec<u8>, version: u8) -> Vec<u8> {
        request.extend([0, 0, 41, 0x10, 0, 0, version, 0x80, 0, 0, 0]);
        let arcount = u16::from_be_bytes([request[10], request[11]]) + 1;
        request[10..12].copy_from_slice(&arcount.to_be_bytes());
        request
    }

    /// The OPT record ending an unsigned answer: payload, extended RCODE,
    /// version, DO.
    fn trailing_opt(answer: &[u8]) -> (u16, u8, u8, bool) {
        let opt = &answer[answer.len() - 11..];
        assert_eq!(&opt[..3], &[0, 0, 41], "root owner, type OPT");
        (
            u16::from_be_bytes([opt[3], opt[4]]),
            opt[5],
            opt[6],
            opt[7] & 0x80 != 0,
        )
    }

    #[test]
    fn edns_requests_get_an_opt_in_every_answer() {
        let policy = policy();
        let payload = policy.zones.load().udp_payload;
        // Unsigned: every message ends with our OPT, DO echoed.
        let messages = run(
            &policy,
            &with_edns(request("open.test.", rtype::AXFR, None), 0),
        );
        assert!(!messages.is_empty());
        for message in &messages {
            assert_eq!(&message[10..12], &[0, 1]);
            assert_eq!(trailing_opt(message), (payload, 0, 0, true));
        }
        // Signed: OPT, then TSIG last, in a chain that verifies.
        let (signed_request, mac) = signed(
            with_edns(request("signed.test.", rtype::AXFR, None), 0),
            &xfr_key(),
            unix_now(),
        );
        let messages = run(&policy, &signed_request);
        let mut verifier = ResponseVerifier::new(&xfr_key(), mac);
        for message in &messages {
            assert_eq!(&message[10..12], &[0, 2], "OPT and TSIG");
            verifier.verify(message, NOW).expect("signed after the OPT");
        }
        verifier.finish().unwrap();
        // A refusal carries it too.
        let edns = with_edns(request("signed.test.", rtype::AXFR, None), 0);
        let (_, answer) = refused(policy.decide(&edns, INSIDE, NOW));
        assert_eq!(rcode_of(&answer), rcode::REFUSED);
        assert_eq!(trailing_opt(&answer), (payload, 0, 0, true));
    }

    #[test]
    fn an_unknown_edns_version_is_badvers() {
        let policy = policy();
        let edns = with_edns(request("open.test.", rtype::AXFR, None), 1);
        let (refusal, answer) = refused(policy.decide(&edns, INSIDE, NOW));
        assert_eq!(refusal, Refusal::EdnsVersion(1));
        // BADVERS (16): 0 in the header, 1 in the OPT's extended RCODE.
        assert_eq!(rcode_of(&answer), 0);
        let (_, extended, version, _) = trailing_opt(&answer);
        assert_eq!((extended, version), (1, 0));
    }

    fn signed(mut request: Vec<u8>, key: &TsigKey, at: u64) -> (Vec<u8>, Vec<u8>) {
        let mac = sign_request(key, &mut request, at).unwrap();
        (request, mac)
    }

    fn refused(decision: Decision) -> (Refusal, Vec<u8>) {
        match decision {
            Decision::Refuse {
                refusal, answer, ..
            } => (refusal, answer),
            Decision::Allow(allowed) => panic!("allowed: {allowed:?}"),
        }
    }

    fn allowed(decision: Decision) -> Allowed {
        match decision {
            Decision::Allow(allowed) => allowed,
            Decision::Refuse { refusal, .. } => panic!("refused: {refusal}"),
        }
    }

    fn rcode_of(answer: &[u8]) -> u16 {
        u16::from_be_bytes([answer[2], answer[3]]) & 0xf
    }

    #[test]
    fn acl_network_and_key_must_both_match() {
        let policy = policy();
        let (ok, _) = signed(request("signed.test.", rtype::AXFR, None), &xfr_key(), NOW);
        let allowed = allowed(policy.decide(&ok, INSIDE, NOW));
        assert!(allowed.signature.is_some());
        assert_eq!(allowed.request, Request::Axfr);

        let (refusal, answer) = refused(policy.decide(&ok, OUTSIDE, NOW));
        assert_eq!(
            refusal,
            Refusal::NotAllowed {
                key: Some(xfr_key().name.clone())
            }
        );
        assert_eq!(rcode_of(&answer), rcode::REFUSED);

        let unsigned = request("signed.test.", rtype::AXFR, None);
        let (refusal, answer) = refused(policy.decide(&unsigned, INSIDE, NOW));
        assert_eq!(refusal, Refusal::NotAllowed { key: None });
        assert_eq!(rcode_of(&answer), rcode::REFUSED);
        assert_eq!(&answer[10..12], &[0, 0], "an unsigned refusal");
    }

    #[test]
    fn a_known_key_the_rules_do_not_name_is_refused_with_a_signed_answer() {
        let policy = policy();
        let other = key("other-key.", b"other secret");
        let (request, mac) = signed(request("signed.test.", rtype::AXFR, None), &other, NOW);
        let (refusal, answer) = refused(policy.decide(&request, INSIDE, NOW));
        assert!(matches!(refusal, Refusal::NotAllowed { key: Some(_) }));
        assert_eq!(rcode_of(&answer), rcode::REFUSED);
        let mut verifier = ResponseVerifier::new(&other, mac);
        verifier.verify(&answer, NOW).expect("signed refusal");
    }

    #[test]
    fn keyless_rules_admit_signed_and_unsigned_requests() {
        let policy = policy();
        let unsigned = request("open.test.", rtype::AXFR, None);
        assert!(
            allowed(policy.decide(&unsigned, INSIDE, NOW))
                .signature
                .is_none()
        );
        let (request, _) = signed(unsigned, &xfr_key(), NOW);
        assert!(
            allowed(policy.decide(&request, INSIDE, NOW))
                .signature
                .is_some()
        );
        let (refusal, _) = refused(policy.decide(&request, OUTSIDE, NOW));
        assert!(matches!(refusal, Refusal::NotAllowed { .. }));
    }

    #[test]
    fn zone_without_rules_and_foreign_or_child_names_are_refused() {
        let policy = policy();
        let (refusal, answer) =
            refused(policy.decide(&request("closed.test.", rtype::AXFR, None), INSIDE, NOW));
        assert_eq!(refusal, Refusal::NotAllowed { key: None });
        assert_eq!(rcode_of(&answer), rcode::REFUSED);
        for name in ["elsewhere.test.", "www.open.test."] {
            let (refusal, answer) =
                refused(policy.decide(&request(name, rtype::AXFR, None), INSIDE, NOW));
            assert_eq!(refusal, Refusal::NotOurZone, "{name}");
            assert_eq!(rcode_of(&answer), rcode::NOTAUTH);
        }
    }

    #[test]
    fn expired_secondary_is_servfail() {
        let policy = policy();
        let (refusal, answer) =
            refused(policy.decide(&request("lost.test.", rtype::AXFR, None), INSIDE, NOW));
        assert_eq!(refusal, Refusal::Expired);
        assert_eq!(rcode_of(&answer), rcode::SERVFAIL);
    }

    #[test]
    fn bad_signatures_get_notauth_with_the_tsig_error() {
        let policy = policy();
        let cases = [
            (key("xfr-key.", b"wrong secret"), NOW, "BADSIG"),
            (key("unknown-key.", b"transfer secret"), NOW, "BADKEY"),
            (xfr_key(), NOW - 1000, "BADTIME"),
        ];
        for (signing_key, at, name) in cases {
            let (request, mac) =
                signed(request("signed.test.", rtype::AXFR, None), &signing_key, at);
            let (refusal, answer) = refused(policy.decide(&request, INSIDE, NOW));
            assert!(matches!(refusal, Refusal::Tsig(_)), "{name}: {refusal}");
            assert_eq!(rcode_of(&answer), rcode::NOTAUTH, "{name}");
            let mut verifier = ResponseVerifier::new(&signing_key, mac);
            let error = verifier.verify(&answer, at).unwrap_err();
            let expected = match name {
                "BADSIG" => matches!(error, TsigError::PeerBadSig),
                "BADKEY" => matches!(error, TsigError::PeerBadKey { .. }),
                _ => matches!(error, TsigError::PeerBadTime { peer_time: NOW }),
            };
            assert!(expected, "{name}: {error:?}");
        }
    }

    #[test]
    fn ixfr_reads_the_client_serial_and_needs_it() {
        let policy = policy();
        let ixfr = request("open.test.", rtype::IXFR, Some(5));
        assert_eq!(
            allowed(policy.decide(&ixfr, INSIDE, NOW)).request,
            Request::Ixfr(5)
        );
        let (refusal, answer) =
            refused(policy.decide(&request("open.test.", rtype::IXFR, None), INSIDE, NOW));
        assert!(matches!(refusal, Refusal::Malformed(_)));
        assert_eq!(rcode_of(&answer), rcode::FORMERR);
    }

    #[test]
    fn only_in_class_axfr_and_ixfr_queries_are_transfer_requests() {
        assert!(is_transfer_request(&request(
            "open.test.",
            rtype::AXFR,
            None
        )));
        assert!(is_transfer_request(&request(
            "open.test.",
            rtype::IXFR,
            Some(1)
        )));
        assert!(!is_transfer_request(&request(
            "open.test.",
            rtype::SOA,
            None
        )));
        let mut chaos = request("open.test.", rtype::AXFR, None);
        let at = chaos.len() - 1;
        chaos[at] = 3;
        assert!(!is_transfer_request(&chaos));
        let mut notify = request("open.test.", rtype::AXFR, None);
        notify[2] = 0x20;
        assert!(!is_transfer_request(&notify));
        for cut in 0..20 {
            assert!(!is_transfer_request(
                &request("open.test.", rtype::AXFR, None)[..cut]
            ));
        }
    }

    fn run(policy: &TransferPolicy, request: &[u8]) -> Vec<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let stats = ServerStats::default();
        let Start::Stream(mut active) = runtime.block_on(start(policy, request, INSIDE, &stats))
        else {
            panic!("refused");
        };
        let mut messages = Vec::new();
        while let Some(message) = active.next_message(NOW).unwrap() {
            messages.push(message.to_vec());
        }
        active.finished(&stats);
        assert_eq!(stats.transfers_out.load(Ordering::Relaxed), 1);
        messages
    }

    fn answer_count(message: &[u8]) -> usize {
        usize::from(u16::from_be_bytes([message[6], message[7]]))
    }

    #[test]
    fn signed_axfr_signs_every_message_in_a_verifiable_chain() {
        let policy = policy();
        let big = zone("signed.test.", 9, 5000);
        let records = big.record_count();
        let zones = ZoneSet::new(
            vec![ZoneEntry::primary(big, Arc::default())],
            Arc::default(),
        );
        policy.zones.store(Arc::new(zones));
        // `start` checks the request against the system clock.
        let (request, mac) = signed(
            request("signed.test.", rtype::AXFR, None),
            &xfr_key(),
            unix_now(),
        );
        let messages = run(&policy, &request);
        assert!(messages.len() > 3);
        let mut verifier = ResponseVerifier::new(&xfr_key(), mac);
        for message in &messages {
            assert!(message.len() <= MAX_MESSAGE + 200);
            verifier
                .verify(message, NOW)
                .expect("every message is signed");
        }
        verifier.finish().unwrap();
        let total: usize = messages.iter().map(|m| answer_count(m)).sum();
        assert_eq!(total, records + 1, "every record, the SOA twice");
    }

    fn soa_record(apex: &str, serial: u32) -> crate::xfr::Record {
        let mut rdata = Name::parse(&format!("ns1.{apex}"))
            .unwrap()
            .as_wire()
            .to_vec();
        rdata.extend(Name::parse(&format!("admin.{apex}")).unwrap().as_wire());
        for v in [serial, 3600, 600, 86400, 300] {
            rdata.extend(v.to_be_bytes());
        }
        crate::xfr::Record {
            owner: Name::parse(apex).unwrap(),
            rtype: rtype::SOA,
            ttl: 3600,
            rdata: rdata.into(),
        }
    }

    /// A store holding `sec.test.` at serial 9 with journal entries 7→8→9,
    /// and a policy serving `sec.test.` at `published` as a secondary.
    fn secondary_policy(published: u32) -> (TransferPolicy, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "edge-agent-transfer-{}-{published}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let state = |serial| crate::store::ZoneState {
            serial,
            ..Default::default()
        };
        store
            .replace_zone(&zone("sec.test.", 7, 3), &state(7))
            .unwrap();
        let apex = Name::parse("sec.test.").unwrap();
        for serial in [8, 9] {
            let diff = Diff {
                from_serial: serial - 1,
                to_serial: serial,
                removed: vec![soa_record("sec.test.", serial - 1)],
                added: vec![soa_record("sec.test.", serial)],
            };
            store
                .apply_diffs(&apex, &[diff], &state(serial), 10)
                .unwrap();
        }
        let control = Arc::new(SecondaryControl::new(vec![]));
        control.set_expired(false);
        let entry = ZoneEntry {
            zone: zone("sec.test.", published, 3),
            stats: Arc::default(),
            secondary: Some(control),
        };
        let zones = Arc::new(ArcSwap::from_pointee(ZoneSet::new(
            vec![entry],
            Arc::default(),
        )));
        let mut policy = TransferPolicy::new(zones, Some(Arc::new(store)));
        policy.allow(
            &apex,
            vec![TransferRule {
                network: "127.0.0.0/8".parse().unwrap(),
                key: None,
            }],
        );
        (policy, dir)
    }

    /// The kind of transfer `start` chose and its answer records' types.
    fn ixfr_from(policy: &TransferPolicy, serial: u32) -> (Kind, Vec<u16>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let request = request("sec.test.", rtype::IXFR, Some(serial));
        let stats = ServerStats::default();
        let Start::Stream(mut active) = runtime.block_on(start(policy, &request, INSIDE, &stats))
        else {
            panic!("refused");
        };
        let mut types = Vec::new();
        while let Some(message) = active.next_message(NOW).unwrap() {
            let mut pos = query::skip_name(message, 12).unwrap() + 4;
            for _ in 0..answer_count(message) {
                let end = query::skip_name(message, pos).unwrap();
                types.push(u16::from_be_bytes([message[end], message[end + 1]]));
                pos = skip_record(message, pos).unwrap();
            }
        }
        (active.kind, types)
    }

    #[test]
    fn ixfr_of_a_secondary_sends_the_journal_up_to_the_published_version() {
        let (policy, dir) = secondary_policy(9);
        let (kind, types) = ixfr_from(&policy, 7);
        assert_eq!(kind, Kind::Ixfr(2));
        assert_eq!(types, vec![rtype::SOA; 6], "9, then 7→8 and 8→9, then 9");
        let (kind, _) = ixfr_from(&policy, 9);
        assert_eq!(kind, Kind::IxfrUpToDate);
        // Older than the journal: the whole zone.
        let (kind, types) = ixfr_from(&policy, 5);
        assert_eq!(kind, Kind::IxfrFull);
        assert_eq!(types.len(), 2 + 3 + 1);
        drop(policy);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ixfr_leaves_out_journal_entries_newer_than_the_published_version() {
        // The store is at 9, but 8 is what is served (not yet published).
        let (policy, dir) = secondary_policy(8);
        let (kind, types) = ixfr_from(&policy, 7);
        assert_eq!(kind, Kind::Ixfr(1));
        assert_eq!(types, vec![rtype::SOA; 4], "8, then 7→8, then 8");
        drop(policy);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ixfr_of_a_primary_is_a_single_soa_when_current_and_axfr_style_when_old() {
        let policy = policy();
        let current = run(&policy, &request("open.test.", rtype::IXFR, Some(7)));
        assert_eq!(current.len(), 1);
        assert_eq!(answer_count(&current[0]), 1);
        let newer = run(&policy, &request("open.test.", rtype::IXFR, Some(8)));
        assert_eq!(answer_count(&newer[0]), 1);
        let old = run(&policy, &request("open.test.", rtype::IXFR, Some(6)));
        let total: usize = old.iter().map(|m| answer_count(m)).sum();
        assert_eq!(total, 2 + 3 + 1, "SOA, NS, three hosts, SOA");
    }
}
