//! Transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) responses as a
//! sequence of DNS messages, produced one at a time into a caller buffer.
//!
//! Like the query core this is sans-IO: the TCP layer asks for the next
//! message, signs it when the transfer uses TSIG, and writes it out. Records
//! are taken from an immutable zone version (or journal diffs), so a
//! transfer in progress is never disturbed by a newer version.

use std::sync::Arc;

use super::{Diff, Record};
use crate::dns::query::{FLAG_AA, FLAG_QR};
use crate::dns::writer::{Full, OPT_LEN, Section, Writer};
use crate::zone::Zone;
use crate::zone::model::NodeId;
use crate::zone::rr::rtype;

/// Largest message we produce: well below 65535 so TSIG always fits after.
pub const MAX_MESSAGE: usize = 16_384;

/// Where an AXFR-style walk over the zone stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The opening SOA is next.
    Opening,
    /// The next record is the `record`-th of the `rrset`-th RRset of `node`,
    /// `offset` bytes into the RRset's data.
    Body {
        node: NodeId,
        rrset: usize,
        record: usize,
        offset: usize,
    },
    /// The closing SOA is next.
    Closing,
    /// Everything was sent.
    Done,
}

/// The records of an incremental answer, flattened in wire order.
#[derive(Debug)]
struct Incremental {
    records: Vec<Record>,
    next: usize,
}

/// What the transfer sends.
#[derive(Debug)]
enum Body {
    /// The whole zone between two SOAs (AXFR, or IXFR without history).
    Full(Position),
    /// IXFR difference sequences between the new SOA twice.
    Incremental(Incremental),
}

/// One outgoing transfer: call [`OutgoingTransfer::next_message`] until it
/// returns `None`.
#[derive(Debug)]
pub struct OutgoingTransfer {
    zone: Arc<Zone>,
    id: u16,
    qname: Vec<u8>,
    qtype: u16,
    body: Body,
    first: bool,
    /// The OPT record every message carries when the request had one: our
    /// payload size and the request's DO bit.
    opt: Option<(u16, bool)>,
}

impl OutgoingTransfer {
    /// An AXFR of `zone` answering query `id` whose question name is `qname`
    /// (as received, to echo its case).
    pub fn axfr(zone: Arc<Zone>, id: u16, qname: &[u8]) -> OutgoingTransfer {
        OutgoingTransfer {
            zone,
            id,
            qname: qname.to_vec(),
            qtype: rtype::AXFR,
            body: Body::Full(Position::Opening),
            first: true,
            opt: None,
        }
    }

    /// An IXFR answer. With `diffs` (from the journal, oldest first, ending
    /// at the zone's serial) it sends them; with `None` (history gone) the
    /// whole zone AXFR-style, as RFC 1995 §4 allows. A client already up to
    /// date gets `Some(vec![])`: the single current SOA.
    pub fn ixfr(
        zone: Arc<Zone>,
        id: u16,
        qname: &[u8],
        diffs: Option<Vec<Diff>>,
    ) -> OutgoingTransfer {
        let body = match diffs {
            None => Body::Full(Position::Opening),
            Some(diffs) => Body::Incremental(Incremental {
                records: flatten(&zone, diffs),
                next: 0,
            }),
        };
        OutgoingTransfer {
            zone,
            id,
            qname: qname.to_vec(),
            qtype: rtype::IXFR,
            body,
            first: true,
            opt: None,
        }
    }

    /// Puts an OPT record (RFC 6891 §6.1.1: a request with OPT gets one in
    /// its response) in every message: `payload` is our UDP payload size,
    /// `dnssec_ok` the request's DO bit (RFC 3225).
    pub fn with_opt(mut self, payload: u16, dnssec_ok: bool) -> OutgoingTransfer {
        self.opt = Some((payload, dnssec_ok));
        self
    }

    /// Writes the next message into `out` (at most [`MAX_MESSAGE`] bytes)
    /// and returns its length, or `None` when the transfer is complete.
    pub fn next_message(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.is_done() {
            return None;
        }
        let reserved = if self.opt.is_some() { OPT_LEN } else { 0 };
        let mut w = Writer::new(out, MAX_MESSAGE - reserved);
        w.header(self.id, FLAG_QR | FLAG_AA).ok()?;
        // RFC 5936 §2.2: the question appears in the first message only (it
        // may appear in all; clients accept both).
        if self.first {
            w.question(&self.qname, self.qtype, 1).ok()?;
            self.first = false;
        }
        let before = w.count(Section::Answer);
        let zone = Arc::clone(&self.zone);
        match &mut self.body {
            Body::Full(position) => fill_full(&zone, position, &mut w),
            Body::Incremental(inc) => fill_incremental(inc, &mut w),
        }
        if w.count(Section::Answer) == before {
            // A single record larger than a message cannot happen with
            // 16 KiB messages and 64 KiB records only if the record is huge;
            // stop rather than loop.
            self.body = Body::Full(Position::Done);
            return None;
        }
        if let Some((payload, dnssec_ok)) = self.opt {
            w.set_limit(MAX_MESSAGE);
            w.opt(payload, 0, dnssec_ok).ok()?;
        }
        Some(w.finish())
    }

    fn is_done(&self) -> bool {
        match &self.body {
            Body::Full(position) => *position == Position::Done,
            Body::Incremental(inc) => inc.next >= inc.records.len(),
        }
    }
}

/// The apex SOA of a zone as (rdata, ttl).
fn apex_soa(zone: &Zone) -> Option<(&[u8], u32)> {
    let set = zone.rrset(zone.apex_id(), rtype::SOA)?;
    Some((zone.records(set).next()?, set.ttl))
}

/// Writes as many records of the zone walk as fit.
fn fill_full(zone: &Zone, position: &mut Position, w: &mut Writer<'_>) {
    let apex = zone.apex().as_wire();
    loop {
        match *position {
            Position::Opening | Position::Closing => {
                let Some((soa, ttl)) = apex_soa(zone) else {
                    *position = Position::Done;
                    return;
                };
                if w.record(Section::Answer, apex, rtype::SOA, ttl, soa)
                    .is_err()
                {
                    return;
                }
                *position = if *position == Position::Opening {
                    Position::Body {
                        node: 0,
                        rrset: 0,
                        record: 0,
                        offset: 0,
                    }
                } else {
                    Position::Done
                };
            }
            Position::Body {
                node,
                rrset,
                record,
                offset,
            } => match next_body_record(zone, (node, rrset, record, offset), w) {
                Ok(Some(next)) => *position = next,
                Ok(None) => *position = Position::Closing,
                Err(Full) => return,
            },
            Position::Done => return,
        }
    }
}

/// Writes the record at (node, rrset, record, offset), skipping the apex
/// SOA, and returns the position after it (`None` at the end of the zone).
fn next_body_record(
    zone: &Zone,
    at: (NodeId, usize, usize, usize),
    w: &mut Writer<'_>,
) -> Result<Option<Position>, Full> {
    let (mut node, mut rrset, mut record, mut offset) = at;
    loop {
        if node as usize >= zone.node_count() {
            return Ok(None);
        }
        let Some(set) = zone.rrsets(node).get(rrset) else {
            (node, rrset, record, offset) = (node + 1, 0, 0, 0);
            continue;
        };
        let skip = node == zone.apex_id() && set.rtype == rtype::SOA;
        let found = if skip || record >= usize::from(set.count) {
            None
        } else {
            zone.record_at(set, offset)
        };
        let Some((data, next_offset)) = found else {
            (rrset, record, offset) = (rrset + 1, 0, 0);
            continue;
        };
        w.record(
            Section::Answer,
            zone.node_name(node),
            set.rtype,
            set.ttl,
            data,
        )?;
        return Ok(Some(Position::Body {
            node,
            rrset,
            record: record + 1,
            offset: next_offset,
        }));
    }
}

/// Writes as many of the flattened IXFR records as fit.
fn fill_incremental(inc: &mut Incremental, w: &mut Writer<'_>) {
    while let Some(record) = inc.records.get(inc.next) {
        let owner = record.owner.as_wire();
        if w.record(
            Section::Answer,
            owner,
            record.rtype,
            record.ttl,
            &record.rdata,
        )
        .is_err()
        {
            return;
        }
        inc.next += 1;
    }
}

/// The IXFR answer body in wire order (RFC 1995 §4): the current SOA, then
/// for each diff its old SOA and removals, its new SOA and additions, then
/// the current SOA again. With no diffs: the current SOA alone.
fn flatten(zone: &Zone, diffs: Vec<Diff>) -> Vec<Record> {
    let Some((soa, ttl)) = apex_soa(zone) else {
        return Vec::new();
    };
    let current = Record {
        owner: zone.apex().clone(),
        rtype: rtype::SOA,
        ttl,
        rdata: soa.into(),
    };
    let mut records = vec![current.clone()];
    if diffs.is_empty() {
        return records;
    }
    for diff in diffs {
        records.extend(diff.removed);
        records.extend(diff.added);
    }
    records.push(current);
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Name;

    fn zone(names: usize) -> Arc<Zone> {
        let mut text = String::from(
            "@ 3600 IN SOA ns1 admin 5 3600 600 86400 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\n",
        );
        for i in 0..names {
            text.push_str(&format!("host{i} 300 IN A 192.0.2.{}\n", i % 250));
            text.push_str(&format!("host{i} 300 IN TXT \"record {i}\"\n"));
        }
        Arc::new(crate::zone::build::zone_from_text("example.test.", &text))
    }

    fn answer_types(message: &[u8]) -> Vec<u16> {
        let qd = u16::from_be_bytes([message[4], message[5]]);
        let an = u16::from_be_bytes([message[6], message[7]]);
        let mut pos = 12;
        for _ in 0..qd {
            pos = crate::dns::query::skip_name(message, pos).unwrap() + 4;
        }
        let mut types = Vec::new();
        for _ in 0..an {
            pos = crate::dns::query::skip_name(message, pos).unwrap();
            types.push(u16::from_be_bytes([message[pos], message[pos + 1]]));
            let rdlen = usize::from(u16::from_be_bytes([message[pos + 8], message[pos + 9]]));
            pos += 10 + rdlen;
        }
        assert_eq!(pos, message.len());
        types
    }

    fn run(mut transfer: OutgoingTransfer) -> Vec<Vec<u16>> {
        let mut out = vec![0u8; 65535];
        let mut messages = Vec::new();
        while let Some(len) = transfer.next_message(&mut out) {
            assert!(len <= MAX_MESSAGE);
            messages.push(answer_types(&out[..len]));
            assert!(messages.len() < 10_000);
        }
        messages
    }

    #[test]
    fn axfr_is_every_record_between_two_soas_over_several_messages() {
        let zone = zone(2000);
        let messages = run(OutgoingTransfer::axfr(
            zone.clone(),
            7,
            zone.apex().as_wire(),
        ));
        assert!(
            messages.len() > 1,
            "a 4000-record zone needs several messages"
        );
        let all: Vec<u16> = messages.concat();
        assert_eq!(all.len(), zone.record_count() + 1);
        assert_eq!(all.first(), Some(&rtype::SOA));
        assert_eq!(all.last(), Some(&rtype::SOA));
        assert_eq!(all.iter().filter(|&&t| t == rtype::SOA).count(), 2);
    }

    #[test]
    fn with_opt_every_message_ends_with_the_opt_record() {
        let zone = zone(2000);
        let mut transfer =
            OutgoingTransfer::axfr(zone.clone(), 7, zone.apex().as_wire()).with_opt(1232, true);
        let mut out = vec![0u8; 65535];
        let mut answers = 0;
        let mut messages = 0;
        while let Some(len) = transfer.next_message(&mut out) {
            let message = &out[..len];
            assert!(len <= MAX_MESSAGE);
            assert_eq!(u16::from_be_bytes([message[10], message[11]]), 1, "ARCOUNT");
            let opt = &message[len - OPT_LEN..];
            assert_eq!(opt[0], 0, "root owner");
            assert_eq!(u16::from_be_bytes([opt[1], opt[2]]), rtype::OPT);
            assert_eq!(u16::from_be_bytes([opt[3], opt[4]]), 1232, "payload");
            assert_eq!(opt[7] & 0x80, 0x80, "DO echoed");
            answers += usize::from(u16::from_be_bytes([message[6], message[7]]));
            messages += 1;
        }
        assert!(messages > 1);
        assert_eq!(answers, zone.record_count() + 1);
    }

    #[test]
    fn ixfr_without_history_falls_back_to_the_full_zone() {
        let zone = zone(10);
        let all = run(OutgoingTransfer::ixfr(
            zone.clone(),
            1,
            zone.apex().as_wire(),
            None,
        ))
        .concat();
        assert_eq!(all.len(), zone.record_count() + 1);
    }

    #[test]
    fn ixfr_up_to_date_is_one_soa() {
        let zone = zone(10);
        let all = run(OutgoingTransfer::ixfr(
            zone.clone(),
            1,
            zone.apex().as_wire(),
            Some(vec![]),
        ))
        .concat();
        assert_eq!(all, vec![rtype::SOA]);
    }

    #[test]
    fn ixfr_with_diffs_frames_each_sequence() {
        let zone = zone(1);
        let soa = |serial: u32| {
            let mut data = Name::parse("ns1.example.test.").unwrap().as_wire().to_vec();
            data.extend(Name::parse("admin.example.test.").unwrap().as_wire());
            for v in [serial, 3600, 600, 86400, 300] {
                data.extend(v.to_be_bytes());
            }
            Record {
                owner: Name::parse("example.test.").unwrap(),
                rtype: rtype::SOA,
                ttl: 3600,
                rdata: data.into(),
            }
        };
        let a = Record {
            owner: Name::parse("new.example.test.").unwrap(),
            rtype: rtype::A,
            ttl: 60,
            rdata: vec![192, 0, 2, 9].into(),
        };
        let diff = Diff {
            from_serial: 4,
            to_serial: 5,
            removed: vec![soa(4)],
            added: vec![soa(5), a],
        };
        let all = run(OutgoingTransfer::ixfr(
            zone.clone(),
            1,
            zone.apex().as_wire(),
            Some(vec![diff]),
        ))
        .concat();
        assert_eq!(
            all,
            vec![rtype::SOA, rtype::SOA, rtype::SOA, rtype::A, rtype::SOA]
        );
    }
}
