//! Parsing of incoming queries: header, the single question, and the OPT
//! record of the additional section. No allocation: names land in fixed
//! buffers inside [`Query`].

use crate::zone::name::{MAX_LABEL_LEN, MAX_NAME_LEN};
use crate::zone::rr::rtype;

/// Header flag: this message is a response.
pub const FLAG_QR: u16 = 0x8000;
/// Header flag: authoritative answer.
pub const FLAG_AA: u16 = 0x0400;
/// Header flag: truncated.
pub const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
pub const FLAG_RD: u16 = 0x0100;
/// Header flag: checking disabled.
pub const FLAG_CD: u16 = 0x0010;

/// Operation codes.
pub mod opcode {
    /// A standard query.
    pub const QUERY: u8 = 0;
    /// A zone change notification (RFC 1996).
    pub const NOTIFY: u8 = 4;
}

/// Response codes (the low four bits; BADVERS is extended).
pub mod rcode {
    #![allow(missing_docs)]
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const NOTAUTH: u16 = 9;
    /// Extended RCODE 16: the OPT carries 1 in its upper eight bits.
    pub const BADVERS: u16 = 16;
}

/// The EDNS(0) parameters a query carried (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size (values below 512 count as 512).
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DNSSEC OK bit.
    pub dnssec_ok: bool,
}

/// A parsed query. The question name is kept twice: as received (case
/// preserved, to echo it) and lowercased (to look it up).
#[derive(Clone)]
pub struct Query {
    /// Message ID.
    pub id: u16,
    /// The header's flags word as received.
    pub flags: u16,
    /// Operation code.
    pub opcode: u8,
    /// The question name in wire form, case as received.
    pub qname: [u8; MAX_NAME_LEN],
    /// The question name in wire form, lowercase.
    pub lower: [u8; MAX_NAME_LEN],
    /// Length of the wire name.
    pub qname_len: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// EDNS parameters, when the query had an OPT record.
    pub edns: Option<Edns>,
    /// Whether the query carries a TSIG record (verified by the caller).
    pub signed: bool,
}

impl Query {
    /// The question name as received.
    pub fn qname(&self) -> &[u8] {
        &self.qname[..self.qname_len]
    }

    /// The question name, lowercase.
    pub fn lower_qname(&self) -> &[u8] {
        &self.lower[..self.qname_len]
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut name = String::new();
        let _ = crate::zone::name::write_presentation(self.qname(), &mut name);
        f.debug_struct("Query")
            .field("id", &self.id)
            .field("opcode", &self.opcode)
            .field("qname", &name)
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("edns", &self.edns)
            .finish()
    }
}

/// What to do with a packet that is not a well-formed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Stay silent: a response, or too short to answer.
    Ignore,
    /// Answer with this RCODE (the header is echoed; the question too when
    /// `question_end` is set).
    Error {
        /// The RCODE to send.
        rcode: u16,
        /// End of the question section in the query, when it parsed.
        question_end: Option<usize>,
    },
}

/// Parses a query. On success also returns where the question ends.
pub fn parse_query(packet: &[u8]) -> Result<(Query, usize), Reject> {
    if packet.len() < 12 {
        return Err(Reject::Ignore);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & FLAG_QR != 0 {
        return Err(Reject::Ignore);
    }
    let opcode = ((flags >> 11) & 0xf) as u8;
    let count = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let formerr = |question_end| Reject::Error {
        rcode: rcode::FORMERR,
        question_end,
    };
    if qdcount != 1 {
        let rcode = if opcode == opcode::QUERY || opcode == opcode::NOTIFY {
            rcode::FORMERR
        } else {
            rcode::NOTIMP
        };
        return Err(Reject::Error {
            rcode,
            question_end: None,
        });
    }
    let mut query = Query {
        id,
        flags,
        opcode,
        qname: [0; MAX_NAME_LEN],
        lower: [0; MAX_NAME_LEN],
        qname_len: 0,
        qtype: 0,
        qclass: 0,
        edns: None,
        signed: false,
    };
    let name_end = read_question_name(packet, &mut query).ok_or(formerr(None))?;
    let fixed = packet.get(name_end..name_end + 4).ok_or(formerr(None))?;
    query.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    query.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    let question_end = name_end + 4;
    if opcode != opcode::QUERY && opcode != opcode::NOTIFY {
        return Err(Reject::Error {
            rcode: rcode::NOTIMP,
            question_end: Some(question_end),
        });
    }
    if ancount != 0 && opcode == opcode::QUERY {
        return Err(formerr(Some(question_end)));
    }
    let mut pos = question_end;
    for _ in 0..u32::from(ancount) + u32::from(nscount) {
        pos = skip_record(packet, pos).ok_or(formerr(Some(question_end)))?;
    }
    for _ in 0..arcount {
        pos = read_additional(packet, pos, &mut query).ok_or(formerr(Some(question_end)))?;
    }
    Ok((query, question_end))
}

/// Reads the question name at offset 12. Compression is refused: nothing
/// precedes the question that a pointer could sensibly point to.
fn read_question_name(packet: &[u8], query: &mut Query) -> Option<usize> {
    let mut pos = 12;
    let mut out = 0;
    loop {
        let len = usize::from(*packet.get(pos)?);
        if len > MAX_LABEL_LEN {
            return None;
        }
        if out + 1 + len > MAX_NAME_LEN {
            return None;
        }
        let label = packet.get(pos..pos + 1 + len)?;
        query.qname[out..out + 1 + len].copy_from_slice(label);
        for (dst, src) in query.lower[out..out + 1 + len].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        // The length byte itself must not be lowercased (63 < b'A').
        query.lower[out] = label[0];
        out += 1 + len;
        pos += 1 + len;
        if len == 0 {
            query.qname_len = out;
            return Some(pos);
        }
    }
}

/// Skips a possibly compressed name; returns the offset after it.
pub fn skip_name(packet: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *packet.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => {
                packet.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Skips one resource record; returns the offset after it.
fn skip_record(packet: &[u8], pos: usize) -> Option<usize> {
    let pos = skip_name(packet, pos)?;
    let fixed = packet.get(pos..pos + 10)?;
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let end = pos + 10 + rdlen;
    (end <= packet.len()).then_some(end)
}

/// Reads one additional record, taking EDNS parameters from an OPT.
fn read_additional(packet: &[u8], pos: usize, query: &mut Query) -> Option<usize> {
    let owner_is_root = packet.get(pos) == Some(&0);
    let name_end = skip_name(packet, pos)?;
    let fixed = packet.get(name_end..name_end + 10)?;
    let code = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let end = name_end + 10 + rdlen;
    if end > packet.len() {
        return None;
    }
    if code == rtype::TSIG {
        query.signed = true;
    }
    if code == rtype::OPT {
        if query.edns.is_some() || !owner_is_root {
            return None;
        }
        check_edns_options(&packet[name_end + 10..end])?;
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        query.edns = Some(Edns {
            payload: class.max(512),
            version: fixed[5],
            dnssec_ok: fixed[6] & 0x80 != 0,
        });
    }
    Some(end)
}

/// Checks that EDNS options are well framed (code, length, data).
fn check_edns_options(mut data: &[u8]) -> Option<()> {
    while !data.is_empty() {
        let header = data.get(..4)?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        data = data.get(4 + len..)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x12, 0x34];
        p.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            p.extend_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(body);
        p
    }

    const QUESTION: &[u8] = b"\x03WwW\x07example\x04test\x00\x00\x01\x00\x01";

    #[test]
    fn question_is_kept_in_both_cases() {
        let (q, end) = parse_query(&packet(0x0100, [1, 0, 0, 0], QUESTION)).unwrap();
        assert_eq!(end, 12 + QUESTION.len());
        assert_eq!(q.qname(), b"\x03WwW\x07example\x04test\x00");
        assert_eq!(q.lower_qname(), b"\x03www\x07example\x04test\x00");
        assert_eq!((q.qtype, q.qclass), (1, 1));
        assert!(q.edns.is_none());
    }

    #[test]
    fn responses_and_short_packets_are_ignored() {
        assert_eq!(parse_query(&[0; 11]).unwrap_err(), Reject::Ignore);
        let p = packet(0x8000, [1, 0, 0, 0], QUESTION);
        assert_eq!(parse_query(&p).unwrap_err(), Reject::Ignore);
    }

    #[test]
    fn question_count_other_than_one_is_formerr() {
        for qd in [0, 2] {
            let p = packet(0, [qd, 0, 0, 0], QUESTION);
            assert!(matches!(
                parse_query(&p),
                Err(Reject::Error {
                    rcode: rcode::FORMERR,
                    ..
                })
            ));
        }
    }

    #[test]
    fn edns_is_read_and_a_second_opt_is_formerr() {
        let opt = b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00";
        let mut body = QUESTION.to_vec();
        body.extend_from_slice(opt);
        let (q, _) = parse_query(&packet(0, [1, 0, 0, 1], &body)).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                payload: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
        body.extend_from_slice(opt);
        assert!(parse_query(&packet(0, [1, 0, 0, 2], &body)).is_err());
    }

    #[test]
    fn compressed_or_truncated_question_is_formerr() {
        let p = packet(0, [1, 0, 0, 0], b"\xc0\x0c\x00\x01\x00\x01");
        assert!(parse_query(&p).is_err());
        let p = packet(0, [1, 0, 0, 0], b"\x03www\x00\x00\x01\x00");
        assert!(parse_query(&p).is_err());
        let p = packet(0, [1, 0, 0, 0], b"\x40");
        assert!(parse_query(&p).is_err());
    }
}
