//! Writes a response into a caller-provided buffer, with name compression
//! (RFC 1035 §4.1.4) and a size limit. Every record write either fits whole
//! or leaves the message unchanged, so callers can roll back to a mark and
//! set TC.

use crate::zone::name;
use crate::zone::rr::{self, NameLayout};

/// Most names remembered as compression targets.
const MAX_TARGETS: usize = 48;

/// Size of an OPT record without options.
pub const OPT_LEN: usize = 11;

/// An OPT pseudo-record (RFC 6891) without options: root owner, our UDP
/// payload size, the extended RCODE bits (the response code above the
/// header's four), version 0 and the DO bit (RFC 3225).
pub fn opt_record(payload: u16, extended_rcode: u8, dnssec_ok: bool) -> [u8; OPT_LEN] {
    let flags: u16 = if dnssec_ok { 0x8000 } else { 0 };
    let mut record = [0u8; OPT_LEN];
    record[1..3].copy_from_slice(&rr::rtype::OPT.to_be_bytes());
    record[3..5].copy_from_slice(&payload.to_be_bytes());
    record[5] = extended_rcode;
    record[7..9].copy_from_slice(&flags.to_be_bytes());
    record
}

/// The message would exceed its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A point to roll a message back to.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    targets: usize,
    counts: [u16; 3],
}

/// A section of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Answer section.
    Answer = 0,
    /// Authority section.
    Authority = 1,
    /// Additional section.
    Additional = 2,
}

/// A compression target: where a name (or name suffix) starts in the
/// message, and the uncompressed length of the name from there.
#[derive(Debug, Clone, Copy, Default)]
struct Target {
    offset: u16,
    wire_len: u8,
}

/// A response under construction.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    limit: usize,
    targets: [Target; MAX_TARGETS],
    target_count: usize,
    counts: [u16; 3],
}

impl<'a> Writer<'a> {
    /// A writer over `buf` that will not write past `limit` bytes.
    pub fn new(buf: &'a mut [u8], limit: usize) -> Writer<'a> {
        let limit = limit.min(buf.len());
        Writer {
            buf,
            len: 0,
            limit,
            targets: [Target::default(); MAX_TARGETS],
            target_count: 0,
            counts: [0; 3],
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the size limit (to reserve room for a trailing OPT record).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(self.buf.len());
    }

    /// Records written so far in a section.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Writes the 12-byte header with zero counts; counts are filled in by
    /// [`Writer::finish`].
    pub fn header(&mut self, id: u16, flags: u16) -> Result<(), Full> {
        self.bytes(&id.to_be_bytes())?;
        self.bytes(&flags.to_be_bytes())?;
        self.bytes(&[0; 8])
    }

    /// Overwrites the flags word of the header.
    pub fn set_flags(&mut self, flags: u16) {
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    /// The flags word of the header.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// Writes the question: the name exactly as received (so its case is
    /// echoed) and remembered as a compression target.
    pub fn question(&mut self, qname: &[u8], qtype: u16, qclass: u16) -> Result<(), Full> {
        let start = self.len;
        self.bytes(qname)?;
        self.remember_labels(start, qname, qname.len());
        self.bytes(&qtype.to_be_bytes())?;
        self.bytes(&qclass.to_be_bytes())?;
        self.buf[4..6].copy_from_slice(&1u16.to_be_bytes());
        Ok(())
    }

    /// A point to roll back to.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.len,
            targets: self.target_count,
            counts: self.counts,
        }
    }

    /// Forgets everything written since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.len = mark.len;
        self.target_count = mark.targets;
        self.counts = mark.counts;
    }

    /// Writes one record. `owner` is an uncompressed wire name; `rdata` is
    /// uncompressed wire data whose embedded names are compressed when the
    /// type allows it. On `Full` nothing is written.
    pub fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        code: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        let mark = self.mark();
        let result = self.record_inner(owner, code, ttl, rdata);
        match result {
            Ok(()) => {
                self.counts[section as usize] += 1;
                Ok(())
            }
            Err(Full) => {
                self.rollback(mark);
                Err(Full)
            }
        }
    }

    fn record_inner(
        &mut self,
        owner: &[u8],
        code: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        self.name(owner)?;
        self.bytes(&code.to_be_bytes())?;
        self.bytes(&rr::class::IN.to_be_bytes())?;
        self.bytes(&ttl.to_be_bytes())?;
        let rdlen_at = self.len;
        self.bytes(&[0, 0])?;
        match rr::name_layout(code) {
            Some(layout) if layout.compress => self.compressed_rdata(rdata, layout)?,
            _ => self.bytes(rdata)?,
        }
        let rdlen = (self.len - rdlen_at - 2) as u16;
        self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    fn compressed_rdata(&mut self, rdata: &[u8], layout: NameLayout) -> Result<(), Full> {
        let Some(prefix) = rdata.get(..layout.prefix) else {
            return self.bytes(rdata);
        };
        self.bytes(prefix)?;
        let mut pos = layout.prefix;
        for _ in 0..layout.names {
            let Ok(len) = name::wire_name_len(&rdata[pos..]) else {
                return self.bytes(&rdata[pos..]);
            };
            self.name(&rdata[pos..pos + len])?;
            pos += len;
        }
        self.bytes(&rdata[pos..])
    }

    /// Writes the OPT pseudo-record (see [`opt_record`]). Ignores the size
    /// limit: callers reserve [`OPT_LEN`] bytes for it beforehand.
    pub fn opt(&mut self, payload: u16, extended_rcode: u8, dnssec_ok: bool) -> Result<(), Full> {
        let saved = self.limit;
        self.limit = self.buf.len();
        let result = self.bytes(&opt_record(payload, extended_rcode, dnssec_ok));
        self.limit = saved;
        result?;
        self.counts[Section::Additional as usize] += 1;
        Ok(())
    }

    /// Fills in the section counts and returns the message length.
    pub fn finish(self) -> usize {
        self.buf[6..8].copy_from_slice(&self.counts[0].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[1].to_be_bytes());
        self.buf[10..12].copy_from_slice(&self.counts[2].to_be_bytes());
        self.len
    }

    fn bytes(&mut self, data: &[u8]) -> Result<(), Full> {
        let end = self.len + data.len();
        if end > self.limit {
            return Err(Full);
        }
        self.buf[self.len..end].copy_from_slice(data);
        self.len = end;
        Ok(())
    }

    /// Writes a name, pointing at the longest suffix already in the message.
    fn name(&mut self, wire: &[u8]) -> Result<(), Full> {
        let start = self.len;
        let mut offset = 0;
        while offset < wire.len() {
            let suffix = &wire[offset..];
            if suffix == [0] {
                break;
            }
            if let Some(target) = self.find_target(suffix) {
                self.bytes(&wire[..offset])?;
                self.bytes(&(0xc000 | target).to_be_bytes())?;
                self.remember_labels(start, wire, offset);
                return Ok(());
            }
            offset += 1 + usize::from(wire[offset]);
        }
        self.bytes(wire)?;
        self.remember_labels(start, wire, wire.len());
        Ok(())
    }

    /// Remembers each label start of `wire` before `upto` (written at
    /// `start`) as a compression target.
    fn remember_labels(&mut self, start: usize, wire: &[u8], upto: usize) {
        let mut offset = 0;
        while offset < upto && wire[offset] != 0 {
            let position = start + offset;
            if position >= 0x4000 || self.target_count == MAX_TARGETS {
                return;
            }
            self.targets[self.target_count] = Target {
                offset: position as u16,
                wire_len: (wire.len() - offset) as u8,
            };
            self.target_count += 1;
            offset += 1 + usize::from(wire[offset]);
        }
    }

    fn find_target(&self, suffix: &[u8]) -> Option<u16> {
        self.targets[..self.target_count]
            .iter()
            .find(|t| usize::from(t.wire_len) == suffix.len() && self.matches_at(t.offset, suffix))
            .map(|t| t.offset)
    }

    /// Whether the (possibly compressed) name at `offset` in the message
    /// equals `wire`, ignoring case.
    fn matches_at(&self, offset: u16, wire: &[u8]) -> bool {
        let mut pos = usize::from(offset);
        let mut i = 0;
        // Our own pointers always go backwards; the bound is belt and braces.
        for _ in 0..128 {
            let len = self.buf[pos];
            if len & 0xc0 == 0xc0 {
                pos = usize::from(u16::from_be_bytes([len & 0x3f, self.buf[pos + 1]]));
                continue;
            }
            if Some(&len) != wire.get(i) {
                return false;
            }
            if len == 0 {
                return true;
            }
            let n = usize::from(len);
            let (Some(here), Some(there)) = (
                self.buf.get(pos + 1..pos + 1 + n),
                wire.get(i + 1..i + 1 + n),
            ) else {
                return false;
            };
            if !here.eq_ignore_ascii_case(there) {
                return false;
            }
            pos += 1 + n;
            i += 1 + n;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_equal_to_question_becomes_a_pointer() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 512);
        w.header(1, 0x8400).unwrap();
        let qname = b"\x03WWW\x07example\x04test\x00";
        w.question(qname, 1, 1).unwrap();
        w.record(
            Section::Answer,
            b"\x03www\x07example\x04test\x00",
            1,
            60,
            &[192, 0, 2, 1],
        )
        .unwrap();
        let len = w.finish();
        let answer = &buf[12 + qname.len() + 4..len];
        assert_eq!(&answer[..2], &[0xc0, 0x0c]);
        assert_eq!(len, 12 + qname.len() + 4 + 2 + 10 + 4);
    }

    #[test]
    fn suffixes_and_rdata_names_are_compressed() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 512);
        w.header(1, 0x8400).unwrap();
        w.question(b"\x07example\x04test\x00", 2, 1).unwrap();
        w.record(
            Section::Answer,
            b"\x07example\x04test\x00",
            2,
            60,
            b"\x03ns1\x07example\x04test\x00",
        )
        .unwrap();
        let len = w.finish();
        // owner pointer (2) + fixed (10) + "ns1" label (4) + pointer (2)
        assert_eq!(len, 12 + 18 + 2 + 10 + 4 + 2);
    }

    #[test]
    fn a_record_that_does_not_fit_leaves_no_trace() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 40);
        w.header(1, 0).unwrap();
        w.question(b"\x01a\x00", 1, 1).unwrap();
        let before = w.len();
        assert_eq!(
            w.record(Section::Answer, b"\x01b\x00", 16, 0, &[0; 30]),
            Err(Full)
        );
        assert_eq!(w.len(), before);
        assert_eq!(w.count(Section::Answer), 0);
    }
}
