//! The byte layout of everything the store writes: keys of RRsets and
//! journal entries, RRset values, per-zone metadata and IXFR differences.
//!
//! All integers are big-endian, so that keys sort numerically. Every decoder
//! checks lengths and structure and returns [`Malformed`] instead of
//! panicking: the file may have been damaged or written by another version.

use crate::xfr::{Diff, Record};
use crate::zone::name::{self, MAX_NAME_LEN};

use super::ZoneState;

/// Version of the per-zone metadata layout; bumped on incompatible changes.
const META_FORMAT: u8 = 1;

/// Why stored bytes could not be decoded: what was being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// Per-zone metadata: the stored version's serial and counts, the journal
/// bounds and the transfer state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ZoneMeta {
    /// Sequence number of the oldest journal entry.
    pub journal_first: u64,
    /// Sequence number the next journal entry gets.
    pub journal_next: u64,
    /// Owner names holding at least one RRset.
    pub names: u64,
    /// RRsets stored.
    pub rrsets: u64,
    /// Records stored.
    pub records: u64,
    /// Timers and transfer state; `state.serial` is the stored version's.
    pub state: ZoneState,
}

impl ZoneMeta {
    /// Number of journal entries.
    pub fn journal_len(&self) -> u64 {
        self.journal_next.saturating_sub(self.journal_first)
    }
}

/// Key of one RRset inside a zone's table: the owner's labels below the apex,
/// a zero byte, then the type. The apex owner is just the zero byte.
pub(super) fn rrset_key(relative_owner: &[u8], rtype: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(relative_owner);
    out.push(0);
    out.extend_from_slice(&rtype.to_be_bytes());
}

/// The owner's labels below `apex`, or `None` when `owner` is not at or
/// below `apex`. Both are lowercase wire names.
pub(super) fn relative_owner<'a>(owner: &'a [u8], apex: &[u8]) -> Option<&'a [u8]> {
    if !name::is_subdomain(owner, apex) {
        return None;
    }
    Some(&owner[..owner.len() - apex.len()])
}

/// Splits an RRset key into the owner's relative labels and the type, and
/// writes the absolute owner (`labels ‖ apex`) to `owner`.
pub(super) fn decode_rrset_key(
    key: &[u8],
    apex: &[u8],
    owner: &mut Vec<u8>,
) -> Result<u16, Malformed> {
    const BAD: Malformed = Malformed("RRset key");
    let mut pos = 0;
    loop {
        let len = usize::from(*key.get(pos).ok_or(BAD)?);
        if len == 0 {
            break;
        }
        if len > name::MAX_LABEL_LEN {
            return Err(BAD);
        }
        pos += 1 + len;
    }
    let type_bytes = key.get(pos + 1..).ok_or(BAD)?;
    let rtype = match *type_bytes {
        [high, low] => u16::from_be_bytes([high, low]),
        _ => return Err(BAD),
    };
    if pos + apex.len() > MAX_NAME_LEN {
        return Err(BAD);
    }
    owner.clear();
    owner.extend_from_slice(&key[..pos]);
    owner.extend_from_slice(apex);
    Ok(rtype)
}

/// Value of one RRset: the TTL, then each record as a 2-byte length and
/// its wire data.
pub(super) fn encode_rrset<'a>(
    ttl: u32,
    records: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    out.extend_from_slice(&ttl.to_be_bytes());
    for data in records {
        let len = u16::try_from(data.len()).map_err(|_| Malformed("record data over 65535"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
    }
    Ok(())
}

/// Reads an RRset value: its TTL and an iterator over its records. The
/// iterator yields an error, then stops, if the value is damaged.
pub(super) fn decode_rrset(value: &[u8]) -> Result<(u32, RRsetRecords<'_>), Malformed> {
    let mut reader = Reader::new(value);
    let ttl = reader.u32()?;
    Ok((ttl, RRsetRecords { reader }))
}

/// The records of an RRset value, as wire rdata slices.
#[derive(Debug)]
pub(super) struct RRsetRecords<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for RRsetRecords<'a> {
    type Item = Result<&'a [u8], Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_done() {
            return None;
        }
        let record = self
            .reader
            .u16()
            .and_then(|len| self.reader.bytes(len.into()));
        if record.is_err() {
            self.reader.skip_to_end();
        }
        Some(record)
    }
}

/// Encodes the per-zone metadata.
pub(super) fn encode_meta(meta: &ZoneMeta) -> Vec<u8> {
    let state = &meta.state;
    let mut out = Vec::with_capacity(64);
    out.push(META_FORMAT);
    out.extend_from_slice(&state.serial.to_be_bytes());
    for number in [
        meta.journal_first,
        meta.journal_next,
        meta.names,
        meta.rrsets,
        meta.records,
    ] {
        out.extend_from_slice(&number.to_be_bytes());
    }
    let times = [state.last_refresh, state.expire_deadline, state.refresh_due];
    let texts = [&state.master, &state.last_error];
    let mut flags = 0u8;
    for (bit, present) in times
        .iter()
        .map(Option::is_some)
        .chain(texts.iter().map(|t| t.is_some()))
        .enumerate()
    {
        if present {
            flags |= 1 << bit;
        }
    }
    out.push(flags);
    for time in times.into_iter().flatten() {
        out.extend_from_slice(&time.to_be_bytes());
    }
    for text in texts.into_iter().flatten() {
        // Texts are ours (an address, an error message): cap them rather than fail.
        let bytes = truncate_utf8(text, u16::MAX.into());
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes.as_bytes());
    }
    out
}

/// Decodes the per-zone metadata.
pub(super) fn decode_meta(value: &[u8]) -> Result<ZoneMeta, Malformed> {
    let mut reader = Reader::new(value);
    if reader.u8()? != META_FORMAT {
        return Err(Malformed("zone metadata format version"));
    }
    let serial = reader.u32()?;
    let journal_first = reader.u64()?;
    let journal_next = reader.u64()?;
    if journal_next < journal_first {
        return Err(Malformed("journal bounds"));
    }
    let names = reader.u64()?;
    let rrsets = reader.u64()?;
    let records = reader.u64()?;
    let flags = reader.u8()?;
    if flags >> 5 != 0 {
        return Err(Malformed("zone metadata flags"));
    }
    let mut time = |bit: u8| -> Result<Option<u64>, Malformed> {
        if flags & (1 << bit) == 0 {
            return Ok(None);
        }
        reader.u64().map(Some)
    };
    let last_refresh = time(0)?;
    let expire_deadline = time(1)?;
    let refresh_due = time(2)?;
    let mut text = |bit: u8| -> Result<Option<String>, Malformed> {
        if flags & (1 << bit) == 0 {
            return Ok(None);
        }
        let len = reader.u16()?;
        let bytes = reader.bytes(len.into())?;
        let text = std::str::from_utf8(bytes).map_err(|_| Malformed("zone state text"))?;
        Ok(Some(text.to_string()))
    };
    let master = text(3)?;
    let last_error = text(4)?;
    reader.finish()?;
    Ok(ZoneMeta {
        journal_first,
        journal_next,
        names,
        rrsets,
        records,
        state: ZoneState {
            serial,
            last_refresh,
            expire_deadline,
            refresh_due,
            master,
            last_error,
        },
    })
}

/// Key of a journal entry: the apex, then the entry's sequence number.
pub(super) fn journal_key(apex: &[u8], sequence: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(apex.len() + 8);
    key.extend_from_slice(apex);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// Encodes one IXFR difference: both serials, the record counts, then the
/// removed and the added records (owner, type, TTL, data length, data).
pub(super) fn encode_diff(diff: &Diff) -> Result<Vec<u8>, Malformed> {
    let size: usize = diff
        .removed
        .iter()
        .chain(&diff.added)
        .map(|r| r.owner.as_wire().len() + r.rdata.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(16 + size);
    out.extend_from_slice(&diff.from_serial.to_be_bytes());
    out.extend_from_slice(&diff.to_serial.to_be_bytes());
    for records in [&diff.removed, &diff.added] {
        let count = u32::try_from(records.len()).map_err(|_| Malformed("record count"))?;
        out.extend_from_slice(&count.to_be_bytes());
    }
    for record in diff.removed.iter().chain(&diff.added) {
        out.extend_from_slice(record.owner.as_wire());
        out.extend_from_slice(&record.rtype.to_be_bytes());
        out.extend_from_slice(&record.ttl.to_be_bytes());
        let len =
            u16::try_from(record.rdata.len()).map_err(|_| Malformed("record data over 65535"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&record.rdata);
    }
    Ok(out)
}

/// The serials of an encoded difference, without decoding its records.
pub(super) fn diff_serials(value: &[u8]) -> Result<(u32, u32), Malformed> {
    let mut reader = Reader::new(value);
    Ok((reader.u32()?, reader.u32()?))
}

/// Decodes one IXFR difference.
pub(super) fn decode_diff(value: &[u8]) -> Result<Diff, Malformed> {
    let mut reader = Reader::new(value);
    let from_serial = reader.u32()?;
    let to_serial = reader.u32()?;
    let removed_count = reader.u32()? as usize;
    let added_count = reader.u32()? as usize;
    // Each record takes at least 9 bytes: do not trust counts beyond that.
    let fits = |count: usize| count.min(value.len() / 9);
    let mut removed = Vec::with_capacity(fits(removed_count));
    let mut added = Vec::with_capacity(fits(added_count));
    for _ in 0..removed_count {
        removed.push(decode_record(&mut reader)?);
    }
    for _ in 0..added_count {
        added.push(decode_record(&mut reader)?);
    }
    reader.finish()?;
    Ok(Diff {
        from_serial,
        to_serial,
        removed,
        added,
    })
}

fn decode_record(reader: &mut Reader<'_>) -> Result<Record, Malformed> {
    let rest = reader.rest();
    let owner_len = name::wire_name_len(rest).map_err(|_| Malformed("journal record owner"))?;
    let owner = crate::zone::Name::from_wire(reader.bytes(owner_len)?)
        .map_err(|_| Malformed("journal record owner"))?;
    let rtype = reader.u16()?;
    let ttl = reader.u32()?;
    let len = reader.u16()?;
    let rdata = reader.bytes(len.into())?.into();
    Ok(Record {
        owner,
        rtype,
        ttl,
        rdata,
    })
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A bounds-checked cursor over stored bytes.
#[derive(Debug)]
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(len).ok_or(Malformed("length"))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(Malformed("value too short"))?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let bytes = self.bytes(N)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    fn is_done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn skip_to_end(&mut self) {
        self.pos = self.data.len();
    }

    fn finish(&self) -> Result<(), Malformed> {
        if self.is_done() {
            Ok(())
        } else {
            Err(Malformed("trailing bytes"))
        }
    }
}
