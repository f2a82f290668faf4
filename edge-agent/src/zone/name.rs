//! Domain names in uncompressed wire form.
//!
//! A [`Name`] that exists is valid: labels of 1..=63 bytes, at most 255 bytes
//! in all, ending with the root label. Owner names in a zone are kept in
//! lowercase (canonical) form; names inside record data keep the case they were
//! written with, because some DNSSEC record types sign them as written.

use std::fmt;

/// Longest wire-form name (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §3.1).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A label is longer than 63 bytes.
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    /// The whole name is longer than 255 bytes.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// An empty label in the middle of a name (`a..b`).
    #[error("empty label")]
    EmptyLabel,
    /// A `\` escape that is not `\DDD` with DDD <= 255 nor `\X`.
    #[error("bad escape sequence")]
    BadEscape,
    /// A relative name where no origin is known.
    #[error("relative name without an origin")]
    NoOrigin,
    /// Wire data that is not a valid uncompressed name.
    #[error("malformed wire-format name")]
    BadWire,
}

/// A valid domain name in uncompressed wire form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<[u8]>);

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(Box::new([0u8]))
    }

    /// Reads a name from its presentation form. `@` stands for `origin`; a name
    /// without a trailing dot is relative to `origin`.
    pub fn from_text(text: &[u8], origin: Option<&Name>) -> Result<Name, NameError> {
        let mut out = Vec::with_capacity(text.len() + 2);
        append_text_name(text, origin.map(Name::as_wire), &mut out)?;
        Ok(Name(out.into_boxed_slice()))
    }

    /// Parses a presentation-form name; convenience for literals and tests.
    pub fn parse(text: &str) -> Result<Name, NameError> {
        Name::from_text(text.as_bytes(), Some(&Name::root()))
    }

    /// Takes an uncompressed wire-form name, checking its structure. The slice
    /// must hold exactly one name.
    pub fn from_wire(wire: &[u8]) -> Result<Name, NameError> {
        if wire_name_len(wire)? != wire.len() {
            return Err(NameError::BadWire);
        }
        Ok(Name(wire.into()))
    }

    /// The wire form, root label included.
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        label_count(&self.0)
    }

    /// This name in lowercase (canonical) form.
    pub fn to_lowercase(&self) -> Name {
        Name(self.0.to_ascii_lowercase().into_boxed_slice())
    }

    /// Whether `self` equals `ancestor` or lies below it (case-insensitive).
    pub fn is_subdomain_of(&self, ancestor: &Name) -> bool {
        is_subdomain(&self.0, &ancestor.0)
    }

    /// The name without its leftmost label; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        let len = self.0[0] as usize;
        if len == 0 {
            return None;
        }
        Some(Name(self.0[1 + len..].into()))
    }

    /// Whether the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_presentation(&self.0, f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Writes a wire-form name in presentation form, escaping as RFC 4343 asks.
pub fn write_presentation(wire: &[u8], f: &mut impl fmt::Write) -> fmt::Result {
    if wire.first() == Some(&0) {
        return f.write_char('.');
    }
    let mut pos = 0;
    while pos < wire.len() {
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        for &b in wire.get(pos + 1..pos + 1 + len).unwrap_or(&[]) {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    f.write_char('\\')?;
                    f.write_char(b as char)?;
                }
                0x21..=0x7e => f.write_char(b as char)?,
                _ => write!(f, "\\{b:03}")?,
            }
        }
        f.write_char('.')?;
        pos += 1 + len;
    }
    Ok(())
}

/// A wire-form name in presentation form, for messages and logs.
pub fn display_wire(wire: &[u8]) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = write_presentation(wire, &mut text);
    text
}

/// Length of the uncompressed wire name at the start of `wire`.
pub fn wire_name_len(wire: &[u8]) -> Result<usize, NameError> {
    let mut pos = 0;
    loop {
        let len = *wire.get(pos).ok_or(NameError::BadWire)? as usize;
        if len > MAX_LABEL_LEN {
            return Err(NameError::BadWire);
        }
        pos += 1 + len;
        if pos > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        if len == 0 {
            return Ok(pos);
        }
        if pos > wire.len() {
            return Err(NameError::BadWire);
        }
    }
}

/// Number of labels of a valid wire name, root excluded.
pub fn label_count(wire: &[u8]) -> usize {
    let mut pos = 0;
    let mut count = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        count += 1;
        pos += 1 + len as usize;
    }
    count
}

/// Whether wire name `name` equals `ancestor` or lies below it, ignoring case.
/// Both must be valid uncompressed names.
pub fn is_subdomain(name: &[u8], ancestor: &[u8]) -> bool {
    if ancestor.len() > name.len() {
        return false;
    }
    let start = name.len() - ancestor.len();
    if !name[start..].eq_ignore_ascii_case(ancestor) {
        return false;
    }
    // The suffix must begin on a label boundary.
    let mut pos = 0;
    while pos < start {
        pos += 1 + name[pos] as usize;
    }
    pos == start
}

/// Offset of the label boundary after the leftmost label, or `None` at root.
pub fn parent_offset(wire: &[u8]) -> Option<usize> {
    match wire.first() {
        Some(0) | None => None,
        Some(&len) => Some(1 + len as usize),
    }
}

/// Appends the wire form of a presentation-form name to `out`. `@` is the
/// origin; relative names get the origin appended. Returns the wire length.
pub fn append_text_name(
    text: &[u8],
    origin: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<usize, NameError> {
    let start = out.len();
    if text == b"@" {
        let origin = origin.ok_or(NameError::NoOrigin)?;
        out.extend_from_slice(origin);
        return Ok(origin.len());
    }
    if text == b"." {
        out.push(0);
        return Ok(1);
    }
    let mut i = 0;
    let mut label_start = out.len();
    out.push(0);
    let mut absolute = false;
    while i < text.len() {
        let b = text[i];
        match b {
            b'.' => {
                let label_len = out.len() - label_start - 1;
                if label_len == 0 {
                    out.truncate(start);
                    return Err(NameError::EmptyLabel);
                }
                out[label_start] = label_len as u8;
                i += 1;
                if i == text.len() {
                    absolute = true;
                    break;
                }
                label_start = out.len();
                out.push(0);
                continue;
            }
            b'\\' => {
                let (byte, used) = match read_escape(&text[i + 1..]) {
                    Some(v) => v,
                    None => {
                        out.truncate(start);
                        return Err(NameError::BadEscape);
                    }
                };
                out.push(byte);
                i += 1 + used;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
        if out.len() - label_start - 1 > MAX_LABEL_LEN {
            out.truncate(start);
            return Err(NameError::LabelTooLong);
        }
    }
    if absolute {
        out.push(0);
    } else {
        let label_len = out.len() - label_start - 1;
        if label_len == 0 {
            out.truncate(start);
            return Err(NameError::EmptyLabel);
        }
        out[label_start] = label_len as u8;
        match origin {
            Some(origin) => out.extend_from_slice(origin),
            None => {
                out.truncate(start);
                return Err(NameError::NoOrigin);
            }
        }
    }
    let len = out.len() - start;
    if len > MAX_NAME_LEN {
        out.truncate(start);
        return Err(NameError::NameTooLong);
    }
    Ok(len)
}

/// Reads the escape after a backslash: `DDD` (decimal, <= 255) or one byte.
/// Returns the byte and how many input bytes were used.
pub fn read_escape(rest: &[u8]) -> Option<(u8, usize)> {
    let first = *rest.first()?;
    if first.is_ascii_digit() {
        let digits = rest.get(..3)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        let byte = u8::try_from(value).ok()?;
        return Some((byte, 3));
    }
    Some((first, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_names() {
        let origin = Name::parse("example.test.").unwrap();
        let n = Name::from_text(b"www", Some(&origin)).unwrap();
        assert_eq!(n.as_wire(), b"\x03www\x07example\x04test\x00");
        let n = Name::from_text(b"www.other.", Some(&origin)).unwrap();
        assert_eq!(n.as_wire(), b"\x03www\x05other\x00");
        let n = Name::from_text(b"@", Some(&origin)).unwrap();
        assert_eq!(n, origin);
    }

    #[test]
    fn escapes_are_decoded_and_printed_back() {
        let n = Name::parse("a\\.b.c\\065\\\\.").unwrap();
        assert_eq!(n.as_wire(), b"\x03a.b\x03cA\\\x00");
        assert_eq!(n.to_string(), "a\\.b.cA\\\\.");
        assert_eq!(Name::parse("x\\256."), Err(NameError::BadEscape));
        assert_eq!(Name::parse("x\\25."), Err(NameError::BadEscape));
    }

    #[test]
    fn limits_are_enforced() {
        let long_label = "a".repeat(64);
        assert_eq!(
            Name::parse(&format!("{long_label}.")),
            Err(NameError::LabelTooLong)
        );
        let long_name = "abcdefghi.".repeat(26);
        assert_eq!(Name::parse(&long_name), Err(NameError::NameTooLong));
        assert_eq!(Name::parse("a..b."), Err(NameError::EmptyLabel));
    }

    #[test]
    fn subdomain_check_respects_label_boundaries() {
        let a = Name::parse("www.Example.test.").unwrap();
        let b = Name::parse("example.TEST.").unwrap();
        let c = Name::parse("ample.test.").unwrap();
        assert!(a.is_subdomain_of(&b));
        assert!(!a.is_subdomain_of(&c));
        assert!(b.is_subdomain_of(&Name::root()));
    }
}
