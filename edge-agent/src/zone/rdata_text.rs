//! Record data in presentation form, both ways.
//!
//! [`rdata_from_text`] turns the tokens the master-file lexer cut from one
//! record into uncompressed wire data; [`rdata_to_text`] prints wire data the
//! way dig and kdig do. Both know the types an operator is likely to meet and
//! fall back to the RFC 3597 `\# length hex` form for the rest. Printing is
//! exact: the text of any rdata reads back into the same bytes (the property
//! tests below check this for every type).

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use super::name::{self, NameError};
use super::rr::{self, rtype};

/// One presentation-form token of a record's data, as the master-file lexer
/// cut it from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The raw text (without the quotes of a quoted token); escapes such as
    /// `\DDD` are not yet decoded.
    pub text: &'a [u8],
    /// Whether the token was written between double quotes.
    pub quoted: bool,
}

impl<'a> Token<'a> {
    /// An unquoted token.
    pub fn plain(text: &'a [u8]) -> Token<'a> {
        Token {
            text,
            quoted: false,
        }
    }

    /// A token that was written between double quotes.
    pub fn quoted(text: &'a [u8]) -> Token<'a> {
        Token { text, quoted: true }
    }
}

/// Why record data in presentation form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RdataError {
    /// A field is missing: the data ended too early.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field could not be read, e.g. "bad IPv4 address `1.2.3`".
    #[error("bad {what} `{text}`")]
    Bad {
        /// What the field should have been.
        what: &'static str,
        /// The token as written (shortened when very long).
        text: String,
    },
    /// A domain name could not be read.
    #[error("bad domain name `{text}`: {reason}")]
    Name {
        /// The name as written.
        text: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// Tokens are left after the last field of the type.
    #[error("unexpected `{0}` after the record data")]
    Trailing(String),
    /// A character string longer than 255 bytes.
    #[error("character string longer than 255 bytes")]
    StringTooLong,
    /// The record data would be longer than 65535 bytes.
    #[error("record data longer than 65535 bytes")]
    TooLong,
    /// RFC 3597 data whose hex does not match the declared length.
    #[error("\\# data is {actual} bytes long but {declared} were declared")]
    GenericLength {
        /// The length written after `\#`.
        declared: usize,
        /// The length of the hex data.
        actual: usize,
    },
    /// A type we have no presentation format for: only `\#` is accepted.
    #[error("type {0} has no presentation format here; write its data as `\\# length hex`")]
    NeedsGeneric(String),
    /// RFC 3597 data that is not valid for its type.
    #[error("\\# data is not valid {0} data")]
    InvalidGeneric(String),
    /// Fields that read fine but do not make a valid record together.
    #[error("{0}")]
    Invalid(String),
}

/// Reads the presentation tokens of one record's data and appends the
/// uncompressed wire form to `out`.
///
/// `origin` is the current origin in wire form (it must be a valid wire
/// name); relative names are completed with it. Names keep the case they are
/// written with. On error `out` is left as it was.
pub fn rdata_from_text(
    rtype: u16,
    tokens: &[Token<'_>],
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let start = out.len();
    let result = match tokens.first() {
        Some(first) if first.text == b"\\#" && !first.quoted => {
            generic_from_text(rtype, tokens.get(1..).unwrap_or(&[]), out)
        }
        _ => {
            let mut fields = Fields::new(tokens);
            known_from_text(rtype, &mut fields, origin, out).and_then(|()| fields.finish())
        }
    };
    let result = result.and_then(|()| {
        if out.len() - start > usize::from(u16::MAX) {
            return Err(RdataError::TooLong);
        }
        Ok(())
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Prints wire rdata in presentation form, as dig and kdig do: names absolute
/// with a trailing dot, character strings quoted, hex in uppercase.
///
/// Types we have no format for, and data that is not valid for its type, are
/// printed in the RFC 3597 form `\# length hex`.
pub fn rdata_to_text(rtype: u16, rdata: &[u8]) -> String {
    let mut out = String::with_capacity(rdata.len() * 2 + 8);
    let mut reader = Reader::new(rdata);
    match known_to_text(rtype, &mut reader, &mut out).and_then(|()| reader.at_end()) {
        Some(()) => out,
        None => generic_to_text(rdata),
    }
}

/// Reads a TTL or SOA timer: a decimal number of seconds or BIND units such
/// as `1w2d3h4m5s` (case-insensitive; a trailing bare number counts as
/// seconds). `None` when malformed or above `u32::MAX`.
pub fn parse_ttl(text: &[u8]) -> Option<u32> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut digits = 0usize;
    for &b in text {
        if b.is_ascii_digit() {
            current = current * 10 + u64::from(b - b'0');
            digits += 1;
            if current > u64::from(u32::MAX) {
                return None;
            }
            continue;
        }
        let unit: u64 = match b.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        if digits == 0 {
            return None;
        }
        total = total.checked_add(current * unit)?;
        if total > u64::from(u32::MAX) {
            return None;
        }
        current = 0;
        digits = 0;
    }
    if text.is_empty() {
        return None;
    }
    u32::try_from(total.checked_add(current)?).ok()
}

/// Decodes the `\DDD` and `\X` escapes of a token's text, appending the
/// bytes to `out`. `None` on a malformed escape.
pub fn decode_escapes(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut rest = text;
    while let Some(at) = rest.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&rest[..at]);
        let (byte, used) = name::read_escape(&rest[at + 1..])?;
        out.push(byte);
        rest = &rest[at + 1 + used..];
    }
    out.extend_from_slice(rest);
    Some(())
}

// ---------------------------------------------------------------------------
// Presentation to wire.

/// A cursor over the tokens of one record's data.
struct Fields<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
}

impl<'t, 'a> Fields<'t, 'a> {
    fn new(tokens: &'t [Token<'a>]) -> Self {
        Fields { tokens, next: 0 }
    }

    /// The next token, which must exist.
    fn take(&mut self, what: &'static str) -> Result<Token<'a>, RdataError> {
        let token = self.next_opt().ok_or(RdataError::Missing(what))?;
        Ok(token)
    }

    /// The next token, if any.
    fn next_opt(&mut self) -> Option<Token<'a>> {
        let token = *self.tokens.get(self.next)?;
        self.next += 1;
        Some(token)
    }

    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    /// All remaining tokens.
    fn rest(&mut self) -> &'t [Token<'a>] {
        let rest = self.tokens.get(self.next..).unwrap_or(&[]);
        self.next = self.tokens.len();
        rest
    }

    fn finish(&self) -> Result<(), RdataError> {
        match self.peek() {
            Some(token) => Err(RdataError::Trailing(shown(token.text))),
            None => Ok(()),
        }
    }
}

/// Token text for an error message, shortened when very long.
fn shown(text: &[u8]) -> String {
    const MAX: usize = 80;
    let cut = &text[..text.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if text.len() > MAX {
        s.push_str("...");
    }
    s
}

fn bad(what: &'static str, text: &[u8]) -> RdataError {
    RdataError::Bad {
        what,
        text: shown(text),
    }
}

fn known_from_text(
    code: u16,
    f: &mut Fields<'_, '_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    match code {
        rtype::A => push_ipv4(f.take("IPv4 address")?, out),
        rtype::AAAA => push_ipv6(f.take("IPv6 address")?, out),
        rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => {
            put_name(f, "domain name", origin, out)
        }
        rtype::MX | rtype::KX | rtype::AFSDB => {
            put_u16(f, "preference", out)?;
            put_name(f, "domain name", origin, out)
        }
        rtype::RP => {
            put_name(f, "mailbox name", origin, out)?;
            put_name(f, "TXT owner name", origin, out)
        }
        rtype::SOA => soa_from_text(f, origin, out),
        rtype::TXT | rtype::SPF => txt_from_text(f, out),
        rtype::HINFO => {
            put_char_string(f, "CPU", out)?;
            put_char_string(f, "OS", out)
        }
        rtype::SRV => {
            put_u16(f, "priority", out)?;
            put_u16(f, "weight", out)?;
            put_u16(f, "port", out)?;
            put_name(f, "target", origin, out)
        }
        rtype::NAPTR => naptr_from_text(f, origin, out),
        rtype::CAA => caa_from_text(f, out),
        rtype::LOC => loc::from_text(f, out),
        rtype::SVCB | rtype::HTTPS => svcb::from_text(f, origin, out),
        _ => dnssec_from_text(code, f, origin, out),
    }
}

/// The DNSSEC and key-material types, and the remaining hex/base64 ones.
fn dnssec_from_text(
    code: u16,
    f: &mut Fields<'_, '_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    match code {
        rtype::DS | rtype::CDS => {
            put_u16(f, "key tag", out)?;
            put_algorithm(f, out)?;
            put_u8(f, "digest type", out)?;
            put_hex_rest(f, "digest", out)
        }
        rtype::DNSKEY | rtype::CDNSKEY => {
            put_u16(f, "flags", out)?;
            put_u8(f, "protocol", out)?;
            put_algorithm(f, out)?;
            put_base64_rest(f, "public key", out)
        }
        rtype::RRSIG => rrsig_from_text(f, origin, out),
        rtype::NSEC => {
            put_name(f, "next domain name", origin, out)?;
            put_type_bitmap(f.rest(), out)
        }
        rtype::NSEC3 => nsec3_from_text(f, out),
        rtype::NSEC3PARAM => nsec3param_from_text(f, out),
        _ => other_from_text(code, f, out),
    }
}

fn other_from_text(code: u16, f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    match code {
        rtype::SSHFP => {
            put_u8(f, "algorithm", out)?;
            put_u8(f, "fingerprint type", out)?;
            put_hex_rest(f, "fingerprint", out)
        }
        rtype::TLSA | rtype::SMIMEA => {
            put_u8(f, "certificate usage", out)?;
            put_u8(f, "selector", out)?;
            put_u8(f, "matching type", out)?;
            put_hex_rest(f, "certificate association data", out)
        }
        rtype::ZONEMD => {
            put_u32(f, "serial", out)?;
            put_u8(f, "scheme", out)?;
            put_u8(f, "hash algorithm", out)?;
            put_hex_rest(f, "digest", out)
        }
        rtype::URI => {
            put_u16(f, "priority", out)?;
            put_u16(f, "weight", out)?;
            let target = f.take("target")?;
            let start = out.len();
            decode_escapes(target.text, out).ok_or_else(|| bad("target", target.text))?;
            if out.len() == start {
                return Err(bad("target", target.text));
            }
            Ok(())
        }
        rtype::CERT => {
            put_cert_type(f, out)?;
            put_u16(f, "key tag", out)?;
            put_algorithm(f, out)?;
            put_base64_rest(f, "certificate", out)
        }
        rtype::OPENPGPKEY | rtype::DHCID => put_base64_rest(f, "base64 data", out),
        rtype::CSYNC => {
            put_u32(f, "serial", out)?;
            put_u16(f, "flags", out)?;
            put_type_bitmap(f.rest(), out)
        }
        _ => Err(RdataError::NeedsGeneric(rr::rtype_name(code).into_owned())),
    }
}

fn soa_from_text(
    f: &mut Fields<'_, '_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    put_name(f, "primary server name", origin, out)?;
    put_name(f, "responsible mailbox", origin, out)?;
    put_u32(f, "serial", out)?;
    for what in ["refresh", "retry", "expire", "minimum"] {
        put_ttl(f, what, out)?;
    }
    Ok(())
}

fn txt_from_text(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    put_char_string(f, "text", out)?;
    while f.peek().is_some() {
        put_char_string(f, "text", out)?;
    }
    Ok(())
}

fn naptr_from_text(
    f: &mut Fields<'_, '_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    put_u16(f, "order", out)?;
    put_u16(f, "preference", out)?;
    put_char_string(f, "flags", out)?;
    put_char_string(f, "services", out)?;
    put_char_string(f, "regexp", out)?;
    put_name(f, "replacement", origin, out)
}

fn caa_from_text(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    put_u8(f, "flags", out)?;
    let tag = f.take("tag")?;
    let valid = !tag.text.is_empty()
        && tag.text.len() <= 255
        && tag.text.iter().all(u8::is_ascii_alphanumeric);
    if !valid {
        return Err(bad("CAA tag", tag.text));
    }
    out.push(tag.text.len() as u8);
    out.extend_from_slice(tag.text);
    let value = f.take("value")?;
    decode_escapes(value.text, out).ok_or_else(|| bad("CAA value", value.text))
}

fn rrsig_from_text(
    f: &mut Fields<'_, '_>,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let covered = f.take("type covered")?;
    let code = rr::rtype_from_mnemonic(covered.text).ok_or_else(|| bad("type", covered.text))?;
    out.extend_from_slice(&code.to_be_bytes());
    put_algorithm(f, out)?;
    put_u8(f, "labels", out)?;
    put_ttl(f, "original TTL", out)?;
    for what in ["signature expiration", "signature inception"] {
        let token = f.take(what)?;
        let time = time::parse(token.text).ok_or_else(|| bad(what, token.text))?;
        out.extend_from_slice(&time.to_be_bytes());
    }
    put_u16(f, "key tag", out)?;
    put_name(f, "signer name", origin, out)?;
    put_base64_rest(f, "signature", out)
}

fn nsec3_from_text(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    nsec3param_from_text(f, out)?;
    let next = f.take("next hashed owner name")?;
    let at = out.len();
    out.push(0);
    encoding::base32hex_decode(next.text, out)
        .filter(|()| (1..=255).contains(&(out.len() - at - 1)))
        .ok_or_else(|| bad("next hashed owner name", next.text))?;
    out[at] = (out.len() - at - 1) as u8;
    put_type_bitmap(f.rest(), out)
}

fn nsec3param_from_text(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    put_u8(f, "hash algorithm", out)?;
    put_u8(f, "flags", out)?;
    put_u16(f, "iterations", out)?;
    let salt = f.take("salt")?;
    let at = out.len();
    out.push(0);
    if salt.text != b"-" {
        encoding::hex_decode(&[salt], out)
            .filter(|()| (1..=255).contains(&(out.len() - at - 1)))
            .ok_or_else(|| bad("salt", salt.text))?;
    }
    out[at] = (out.len() - at - 1) as u8;
    Ok(())
}

// Field readers: each takes the next token and appends its wire form.

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn take_number<T: TryFrom<u64>>(
    f: &mut Fields<'_, '_>,
    what: &'static str,
) -> Result<T, RdataError> {
    let token = f.take(what)?;
    parse_decimal(token.text)
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| bad(what, token.text))
}

fn put_u8(f: &mut Fields<'_, '_>, what: &'static str, out: &mut Vec<u8>) -> Result<(), RdataError> {
    out.push(take_number::<u8>(f, what)?);
    Ok(())
}

fn put_u16(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    out.extend_from_slice(&take_number::<u16>(f, what)?.to_be_bytes());
    Ok(())
}

fn put_u32(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    out.extend_from_slice(&take_number::<u32>(f, what)?.to_be_bytes());
    Ok(())
}

fn put_ttl(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let token = f.take(what)?;
    let value = parse_ttl(token.text).ok_or_else(|| bad(what, token.text))?;
    out.extend_from_slice(&value.to_be_bytes());
    Ok(())
}

fn put_name(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let token = f.take(what)?;
    let origin = (!origin.is_empty()).then_some(origin);
    match name::append_text_name(token.text, origin, out) {
        Ok(_) => Ok(()),
        Err(reason) => Err(RdataError::Name {
            text: shown(token.text),
            reason,
        }),
    }
}

/// A `<character-string>`: one byte of length, then at most 255 bytes.
fn put_char_string(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let token = f.take(what)?;
    let at = out.len();
    out.push(0);
    decode_escapes(token.text, out).ok_or_else(|| bad(what, token.text))?;
    let len = out.len() - at - 1;
    if len > 255 {
        return Err(RdataError::StringTooLong);
    }
    out[at] = len as u8;
    Ok(())
}

/// Hex data that may be split over several tokens; at least one byte.
fn put_hex_rest(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let tokens = f.rest();
    let Some(first) = tokens.first() else {
        return Err(RdataError::Missing(what));
    };
    encoding::hex_decode(tokens, out).ok_or_else(|| bad(what, first.text))
}

/// Base64 data that may be split over several tokens; at least one byte.
fn put_base64_rest(
    f: &mut Fields<'_, '_>,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let tokens = f.rest();
    let Some(first) = tokens.first() else {
        return Err(RdataError::Missing(what));
    };
    let start = out.len();
    encoding::base64_decode(tokens, out)
        .filter(|()| out.len() > start)
        .ok_or_else(|| bad(what, first.text))
}

/// DNSSEC algorithm numbers by mnemonic (IANA registry), as BIND accepts them.
const ALGORITHMS: &[(&str, u8)] = &[
    ("RSAMD5", 1),
    ("DH", 2),
    ("DSA", 3),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
    ("INDIRECT", 252),
    ("PRIVATEDNS", 253),
    ("PRIVATEOID", 254),
];

/// A DNSSEC algorithm: a number or its mnemonic.
fn put_algorithm(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let token = f.take("algorithm")?;
    let by_name = ALGORITHMS
        .iter()
        .find(|(m, _)| m.as_bytes().eq_ignore_ascii_case(token.text))
        .map(|&(_, code)| code);
    let code = by_name
        .or_else(|| parse_decimal(token.text).and_then(|v| u8::try_from(v).ok()))
        .ok_or_else(|| bad("algorithm", token.text))?;
    out.push(code);
    Ok(())
}

/// CERT certificate types by mnemonic (RFC 4398 §2.1).
const CERT_TYPES: &[(&str, u16)] = &[
    ("PKIX", 1),
    ("SPKI", 2),
    ("PGP", 3),
    ("IPKIX", 4),
    ("ISPKI", 5),
    ("IPGP", 6),
    ("ACPKIX", 7),
    ("IACPKIX", 8),
    ("URI", 253),
    ("OID", 254),
];

fn put_cert_type(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let token = f.take("certificate type")?;
    let by_name = CERT_TYPES
        .iter()
        .find(|(m, _)| m.as_bytes().eq_ignore_ascii_case(token.text))
        .map(|&(_, code)| code);
    let code = by_name
        .or_else(|| parse_decimal(token.text).and_then(|v| u16::try_from(v).ok()))
        .ok_or_else(|| bad("certificate type", token.text))?;
    out.extend_from_slice(&code.to_be_bytes());
    Ok(())
}

/// Dotted-quad IPv4 address, exactly four decimal parts of at most 255.
fn parse_ipv4(text: &[u8]) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u32 = 0;
    let mut digits = 0;
    for &b in text {
        if b == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = value as u8;
            part += 1;
            value = 0;
            digits = 0;
        } else if b.is_ascii_digit() {
            value = value * 10 + u32::from(b - b'0');
            digits += 1;
            if digits > 3 || value > 255 {
                return None;
            }
        } else {
            return None;
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(octets)
}

fn parse_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn push_ipv4(token: Token<'_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let octets = parse_ipv4(token.text).ok_or_else(|| bad("IPv4 address", token.text))?;
    out.extend_from_slice(&octets);
    Ok(())
}

fn push_ipv6(token: Token<'_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let address = parse_ipv6(token.text).ok_or_else(|| bad("IPv6 address", token.text))?;
    out.extend_from_slice(&address.octets());
    Ok(())
}

/// The NSEC / NSEC3 / CSYNC type bitmap (RFC 4034 §4.1.2) of a list of type
/// mnemonics, in canonical form: windows ascending, no trailing zero octets.
fn put_type_bitmap(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let mut types = tokens
        .iter()
        .map(|t| rr::rtype_from_mnemonic(t.text).ok_or_else(|| bad("type", t.text)))
        .collect::<Result<Vec<u16>, _>>()?;
    types.sort_unstable();
    types.dedup();
    let mut rest = types.as_slice();
    while let Some(&first) = rest.first() {
        let window = first >> 8;
        let count = rest.iter().take_while(|&&t| t >> 8 == window).count();
        let mut bits = [0u8; 32];
        let mut len = 0;
        for &t in &rest[..count] {
            let low = usize::from(t & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
        }
        out.push(window as u8);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
        rest = &rest[count..];
    }
    Ok(())
}

/// RFC 3597 `\# length hex`, for any type. For types whose layout the server
/// relies on (addresses and embedded names) the data must also be valid.
fn generic_from_text(code: u16, tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let Some((length, hex)) = tokens.split_first() else {
        return Err(RdataError::Missing("\\# data length"));
    };
    let declared = parse_decimal(length.text)
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v <= usize::from(u16::MAX))
        .ok_or_else(|| bad("\\# data length", length.text))?;
    let start = out.len();
    encoding::hex_decode(hex, out).ok_or_else(|| {
        let first = hex.first().map_or(&b""[..], |t| t.text);
        bad("\\# hex data", first)
    })?;
    let actual = out.len() - start;
    if actual != declared {
        return Err(RdataError::GenericLength { declared, actual });
    }
    if layout_is_checked(code) {
        let mut reader = Reader::new(&out[start..]);
        let mut scratch = String::new();
        if known_to_text(code, &mut reader, &mut scratch)
            .and_then(|()| reader.at_end())
            .is_none()
        {
            return Err(RdataError::InvalidGeneric(
                rr::rtype_name(code).into_owned(),
            ));
        }
    }
    Ok(())
}

/// Types whose `\#` data is checked against the type's layout: the answer
/// path reads addresses and embedded names out of these.
fn layout_is_checked(code: u16) -> bool {
    matches!(code, rtype::A | rtype::AAAA) || rr::name_layout(code).is_some()
}

// ---------------------------------------------------------------------------
// Wire to presentation.

/// A cursor over wire rdata; every read is `None` when the data runs out.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.data.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        rest
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// An uncompressed wire name.
    fn name(&mut self) -> Option<&'a [u8]> {
        let len = name::wire_name_len(self.data.get(self.pos..)?).ok()?;
        self.take(len)
    }

    /// A `<character-string>`.
    fn char_string(&mut self) -> Option<&'a [u8]> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    fn at_end(&self) -> Option<()> {
        self.is_empty().then_some(())
    }
}

/// Starts a new field: a space unless at the start.
fn sep(out: &mut String) {
    if !out.is_empty() {
        out.push(' ');
    }
}

fn put_number(out: &mut String, value: impl std::fmt::Display) {
    sep(out);
    let _ = write!(out, "{value}");
}

fn write_name(out: &mut String, wire: &[u8]) -> Option<()> {
    sep(out);
    name::write_presentation(wire, out).ok()
}

/// Writes bytes between double quotes, escaping `"` and `\` and writing
/// non-printable bytes as `\DDD`.
fn write_quoted(out: &mut String, bytes: &[u8]) {
    sep(out);
    out.push('"');
    write_escaped(out, bytes);
    out.push('"');
}

fn write_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

fn write_hex(out: &mut String, bytes: &[u8]) -> Option<()> {
    if bytes.is_empty() {
        return None;
    }
    sep(out);
    encoding::hex_encode(bytes, out);
    Some(())
}

fn write_base64(out: &mut String, bytes: &[u8]) -> Option<()> {
    if bytes.is_empty() {
        return None;
    }
    sep(out);
    encoding::base64_encode(bytes, out);
    Some(())
}

fn known_to_text(code: u16, r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    match code {
        rtype::A => {
            let b = r.take(4)?;
            let _ = write!(out, "{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
            Some(())
        }
        rtype::AAAA => {
            let octets: [u8; 16] = r.take(16)?.try_into().ok()?;
            let _ = write!(out, "{}", Ipv6Addr::from(octets));
            Some(())
        }
        rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => write_name(out, r.name()?),
        rtype::MX | rtype::KX | rtype::AFSDB => {
            put_number(out, r.u16()?);
            write_name(out, r.name()?)
        }
        rtype::RP => {
            write_name(out, r.name()?)?;
            write_name(out, r.name()?)
        }
        rtype::SOA => soa_to_text(r, out),
        rtype::TXT | rtype::SPF => {
            write_quoted(out, r.char_string()?);
            while !r.is_empty() {
                write_quoted(out, r.char_string()?);
            }
            Some(())
        }
        rtype::HINFO => {
            write_quoted(out, r.char_string()?);
            write_quoted(out, r.char_string()?);
            Some(())
        }
        rtype::SRV => {
            for _ in 0..3 {
                put_number(out, r.u16()?);
            }
            write_name(out, r.name()?)
        }
        rtype::NAPTR => naptr_to_text(r, out),
        rtype::CAA => caa_to_text(r, out),
        rtype::LOC => loc::to_text(r, out),
        rtype::SVCB | rtype::HTTPS => svcb::to_text(r, out),
        _ => dnssec_to_text(code, r, out),
    }
}

fn dnssec_to_text(code: u16, r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    match code {
        rtype::DS | rtype::CDS => {
            put_number(out, r.u16()?);
            put_number(out, r.u8()?);
            put_number(out, r.u8()?);
            write_hex(out, r.rest())
        }
        rtype::DNSKEY | rtype::CDNSKEY => {
            put_number(out, r.u16()?);
            put_number(out, r.u8()?);
            put_number(out, r.u8()?);
            write_base64(out, r.rest())
        }
        rtype::RRSIG => rrsig_to_text(r, out),
        rtype::NSEC => {
            write_name(out, r.name()?)?;
            write_type_bitmap(out, r.rest())
        }
        rtype::NSEC3 => {
            nsec3param_to_text(r, out)?;
            let hash = r.char_string()?;
            if hash.is_empty() {
                return None;
            }
            sep(out);
            encoding::base32hex_encode(hash, out);
            write_type_bitmap(out, r.rest())
        }
        rtype::NSEC3PARAM => nsec3param_to_text(r, out),
        _ => other_to_text(code, r, out),
    }
}

fn other_to_text(code: u16, r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    match code {
        rtype::SSHFP => {
            put_number(out, r.u8()?);
            put_number(out, r.u8()?);
            write_hex(out, r.rest())
        }
        rtype::TLSA | rtype::SMIMEA => {
            for _ in 0..3 {
                put_number(out, r.u8()?);
            }
            write_hex(out, r.rest())
        }
        rtype::ZONEMD => {
            put_number(out, r.u32()?);
            put_number(out, r.u8()?);
            put_number(out, r.u8()?);
            write_hex(out, r.rest())
        }
        rtype::URI => {
            put_number(out, r.u16()?);
            put_number(out, r.u16()?);
            let target = r.rest();
            if target.is_empty() {
                return None;
            }
            write_quoted(out, target);
            Some(())
        }
        rtype::CERT => {
            put_number(out, r.u16()?);
            put_number(out, r.u16()?);
            put_number(out, r.u8()?);
            write_base64(out, r.rest())
        }
        rtype::OPENPGPKEY | rtype::DHCID => write_base64(out, r.rest()),
        rtype::CSYNC => {
            put_number(out, r.u32()?);
            put_number(out, r.u16()?);
            write_type_bitmap(out, r.rest())
        }
        _ => None,
    }
}

fn soa_to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    write_name(out, r.name()?)?;
    write_name(out, r.name()?)?;
    for _ in 0..5 {
        put_number(out, r.u32()?);
    }
    Some(())
}

fn naptr_to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    put_number(out, r.u16()?);
    put_number(out, r.u16()?);
    for _ in 0..3 {
        write_quoted(out, r.char_string()?);
    }
    write_name(out, r.name()?)
}

fn caa_to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    put_number(out, r.u8()?);
    let tag = r.char_string()?;
    if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    sep(out);
    out.extend(tag.iter().map(|&b| char::from(b)));
    write_quoted(out, r.rest());
    Some(())
}

fn rrsig_to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    sep(out);
    out.push_str(&rr::rtype_name(r.u16()?));
    put_number(out, r.u8()?);
    put_number(out, r.u8()?);
    put_number(out, r.u32()?);
    for _ in 0..2 {
        sep(out);
        time::write(out, r.u32()?);
    }
    put_number(out, r.u16()?);
    write_name(out, r.name()?)?;
    write_base64(out, r.rest())
}

fn nsec3param_to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
    put_number(out, r.u8()?);
    put_number(out, r.u8()?);
    put_number(out, r.u16()?);
    let salt = r.char_string()?;
    if salt.is_empty() {
        sep(out);
        out.push('-');
        return Some(());
    }
    write_hex(out, salt)
}

/// Prints a type bitmap; `None` unless it is in canonical form (windows
/// strictly ascending, 1..=32 octets each, no trailing zero octet), since
/// only that form reads back into the same bytes.
fn write_type_bitmap(out: &mut String, bitmap: &[u8]) -> Option<()> {
    let mut r = Reader::new(bitmap);
    let mut last_window: Option<u8> = None;
    while !r.is_empty() {
        let window = r.u8()?;
        let len = r.u8()?;
        if last_window.is_some_and(|w| w >= window) || !(1..=32).contains(&len) {
            return None;
        }
        last_window = Some(window);
        let bits = r.take(usize::from(len))?;
        if bits.last() == Some(&0) {
            return None;
        }
        for (i, &byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let code = u16::from(window) << 8 | (i * 8 + bit) as u16;
                    sep(out);
                    out.push_str(&rr::rtype_name(code));
                }
            }
        }
    }
    Some(())
}

fn generic_to_text(rdata: &[u8]) -> String {
    let mut out = format!("\\# {}", rdata.len());
    if !rdata.is_empty() {
        out.push(' ');
        encoding::hex_encode(rdata, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------

/// Hex, base64 and base32hex (RFC 4648) for record data.
mod encoding {
    use super::Token;

    const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    const BASE64_DIGITS: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const BASE32HEX_DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";

    fn hex_value(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }

    /// Decodes hex split over any number of tokens (an even digit count in all).
    pub(super) fn hex_decode(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Option<()> {
        let mut high: Option<u8> = None;
        for token in tokens {
            for &b in token.text {
                let nibble = hex_value(b)?;
                match high.take() {
                    Some(h) => out.push(h << 4 | nibble),
                    None => high = Some(nibble),
                }
            }
        }
        high.is_none().then_some(())
    }

    /// Appends uppercase hex.
    pub(super) fn hex_encode(bytes: &[u8], out: &mut String) {
        for &b in bytes {
            out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
        }
    }

    fn base64_value(b: u8) -> Option<u32> {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }

    /// Decodes padded base64 split over any number of tokens.
    pub(super) fn base64_decode(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Option<()> {
        let mut acc: u32 = 0;
        let mut chars = 0usize;
        let mut padding = 0usize;
        for &b in tokens.iter().flat_map(|t| t.text) {
            if b == b'=' {
                padding += 1;
                if padding > 2 {
                    return None;
                }
                acc <<= 6;
            } else {
                if padding > 0 {
                    return None;
                }
                acc = acc << 6 | base64_value(b)?;
            }
            chars += 1;
            if chars.is_multiple_of(4) {
                let bytes = acc.to_be_bytes();
                out.extend_from_slice(&bytes[1..4 - padding]);
                acc = 0;
            }
        }
        chars.is_multiple_of(4).then_some(())
    }

    /// Appends padded base64.
    pub(super) fn base64_encode(bytes: &[u8], out: &mut String) {
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let acc = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    let index = (acc >> (18 - 6 * i)) & 0x3f;
                    out.push(char::from(BASE64_DIGITS[index as usize]));
                } else {
                    out.push('=');
                }
            }
        }
    }

    fn base32hex_value(b: u8) -> Option<u64> {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'v' => b - b'a' + 10,
            b'A'..=b'V' => b - b'A' + 10,
            _ => return None,
        };
        Some(u64::from(v))
    }

    /// Decodes unpadded base32hex (RFC 4648 §7), case-insensitive.
    pub(super) fn base32hex_decode(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
        for chunk in text.chunks(8) {
            let bytes = match chunk.len() {
                8 => 5,
                7 => 4,
                5 => 3,
                4 => 2,
                2 => 1,
                _ => return None,
            };
            let mut acc: u64 = 0;
            for &b in chunk {
                acc = acc << 5 | base32hex_value(b)?;
            }
            acc <<= 5 * (8 - chunk.len());
            out.extend_from_slice(&acc.to_be_bytes()[3..3 + bytes]);
        }
        Some(())
    }

    /// Appends uppercase unpadded base32hex.
    pub(super) fn base32hex_encode(bytes: &[u8], out: &mut String) {
        for chunk in bytes.chunks(5) {
            let mut group = [0u8; 8];
            group[3..3 + chunk.len()].copy_from_slice(chunk);
            let acc = u64::from_be_bytes(group);
            let chars = (chunk.len() * 8).div_ceil(5);
            for i in 0..chars {
                let index = (acc >> (35 - 5 * i)) & 0x1f;
                out.push(char::from(BASE32HEX_DIGITS[index as usize]));
            }
        }
    }
}

/// RRSIG times: `YYYYMMDDHHmmSS` (UTC) or seconds since 1970 (RFC 4034 §3.2).
mod time {
    use std::fmt::Write as _;

    /// Reads a time; 14 digits are a date, fewer are seconds. Dates past
    /// 2106 wrap around as serial-number arithmetic asks (RFC 4034 §3.1.5).
    pub(super) fn parse(text: &[u8]) -> Option<u32> {
        if text.len() != 14 {
            return super::parse_decimal(text).and_then(|v| u32::try_from(v).ok());
        }
        let field = |range: std::ops::Range<usize>| super::parse_decimal(&text[range]);
        let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
        let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
        let valid = year >= 1970
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
        Some(seconds as u32)
    }

    /// Writes a time as `YYYYMMDDHHmmSS`.
    pub(super) fn write(out: &mut String, time: u32) {
        let time = u64::from(time);
        let (year, month, day) = civil_from_days(time / 86_400);
        let rest = time % 86_400;
        let _ = write!(
            out,
            "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
            rest / 3_600,
            rest / 60 % 60,
            rest % 60
        );
    }

    fn is_leap(year: u64) -> bool {
        year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
    }

    fn days_in_month(year: u64, month: u64) -> u64 {
        match month {
            2 if is_leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Days since 1970-01-01 of a date from 1970 on (H. Hinnant's algorithm).
    fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year / 400;
        let year_of_era = year - era * 400;
        let month_from_march = (month + 9) % 12;
        let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date of a day count since 1970-01-01.
    fn civil_from_days(days: u64) -> (u64, u64, u64) {
        let days = days + 719_468;
        let era = days / 146_097;
        let day_of_era = days - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_era + era * 400 + u64::from(month <= 2);
        (year, month, day)
    }
}

/// LOC records (RFC 1876).
mod loc {
    use std::fmt::Write as _;

    use super::{Fields, RdataError, Reader, bad, sep};

    /// The equator and the prime meridian: 2^31 thousandths of an arc second.
    const ZERO: u32 = 1 << 31;
    /// Altitudes are stored in centimetres above 100 000 m below the WGS 84 spheroid.
    const ALTITUDE_BASE: i64 = 10_000_000;
    /// Defaults when size and precisions are omitted: 1 m, 10 000 m, 10 m (in cm).
    const DEFAULTS: [u64; 3] = [100, 1_000_000, 1_000];
    /// Largest size or precision: 9e9 cm.
    const MAX_PRECISION: u64 = 9_000_000_000;

    pub(super) fn from_text(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
        let latitude = coordinate(f, 90, [b'N', b'S'], "latitude")?;
        let longitude = coordinate(f, 180, [b'E', b'W'], "longitude")?;
        let token = f.take("altitude")?;
        let altitude = metres(token.text, true)
            .and_then(|cm| u32::try_from(cm + ALTITUDE_BASE).ok())
            .ok_or_else(|| bad("altitude", token.text))?;
        let mut precisions = [0u8; 3];
        let names = ["size", "horizontal precision", "vertical precision"];
        for ((slot, default), what) in precisions.iter_mut().zip(DEFAULTS).zip(names) {
            let cm = match f.next_opt() {
                None => default,
                Some(token) => metres(token.text, false)
                    .and_then(|v| u64::try_from(v).ok())
                    .filter(|&v| v <= MAX_PRECISION)
                    .ok_or_else(|| bad(what, token.text))?,
            };
            *slot = encode_precision(cm);
        }
        out.push(0);
        out.extend_from_slice(&precisions);
        out.extend_from_slice(&latitude.to_be_bytes());
        out.extend_from_slice(&longitude.to_be_bytes());
        out.extend_from_slice(&altitude.to_be_bytes());
        Ok(())
    }

    /// `degrees [minutes [seconds]] hemisphere`, in thousandths of an arc second
    /// offset from 2^31.
    fn coordinate(
        f: &mut Fields<'_, '_>,
        max_degrees: u64,
        hemispheres: [u8; 2],
        what: &'static str,
    ) -> Result<u32, RdataError> {
        let degrees = number(f.take(what)?, max_degrees, what)?;
        let mut minutes = 0;
        let mut millis = 0;
        let mut token = f.take(what)?;
        if hemisphere(token, hemispheres).is_none() {
            minutes = number(token, 59, what)?;
            token = f.take(what)?;
            if hemisphere(token, hemispheres).is_none() {
                millis = seconds(token.text).ok_or_else(|| bad(what, token.text))?;
                token = f.take(what)?;
            }
        }
        let positive = hemisphere(token, hemispheres).ok_or_else(|| bad(what, token.text))?;
        let offset = degrees * 3_600_000 + minutes * 60_000 + millis;
        if offset > max_degrees * 3_600_000 {
            return Err(bad(what, token.text));
        }
        let offset = offset as u32;
        Ok(if positive {
            ZERO + offset
        } else {
            ZERO - offset
        })
    }

    fn number(token: super::Token<'_>, max: u64, what: &'static str) -> Result<u64, RdataError> {
        super::parse_decimal(token.text)
            .filter(|&v| v <= max)
            .ok_or_else(|| bad(what, token.text))
    }

    /// Whether the token is the positive (N/E) or negative (S/W) hemisphere.
    fn hemisphere(token: super::Token<'_>, hemispheres: [u8; 2]) -> Option<bool> {
        match token.text {
            [b] if b.eq_ignore_ascii_case(&hemispheres[0]) => Some(true),
            [b] if b.eq_ignore_ascii_case(&hemispheres[1]) => Some(false),
            _ => None,
        }
    }

    /// Seconds with up to three decimals, below 60, in thousandths.
    fn seconds(text: &[u8]) -> Option<u64> {
        let value = fixed_point(text, 3)?;
        (value < 60_000).then_some(value)
    }

    /// `[-]digits[.d[d]][m]` in centimetres.
    fn metres(text: &[u8], signed: bool) -> Option<i64> {
        let (negative, text) = match text.split_first() {
            Some((b'-', rest)) if signed => (true, rest),
            _ => (false, text),
        };
        let text = text
            .strip_suffix(b"m")
            .or_else(|| text.strip_suffix(b"M"))
            .unwrap_or(text);
        let cm = i64::try_from(fixed_point(text, 2)?).ok()?;
        Some(if negative { -cm } else { cm })
    }

    /// A decimal number with at most `decimals` fraction digits, scaled by 10^decimals.
    fn fixed_point(text: &[u8], decimals: u32) -> Option<u64> {
        let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
            Some(dot) => (&text[..dot], &text[dot + 1..]),
            None => (text, &b""[..]),
        };
        if whole.len() > 12 || fraction.len() > decimals as usize {
            return None;
        }
        let whole = super::parse_decimal(whole)?;
        let mut frac = if fraction.is_empty() {
            0
        } else {
            super::parse_decimal(fraction)?
        };
        for _ in fraction.len()..decimals as usize {
            frac *= 10;
        }
        Some(whole * 10u64.pow(decimals) + frac)
    }

    /// Size and precisions are `mantissa * 10^exponent` cm, one nibble each.
    fn encode_precision(cm: u64) -> u8 {
        let mut exponent = 0u32;
        while exponent < 9 && cm >= 10u64.pow(exponent + 1) {
            exponent += 1;
        }
        let mantissa = (cm / 10u64.pow(exponent)).min(9);
        (mantissa as u8) << 4 | exponent as u8
    }

    pub(super) fn to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
        if r.u8()? != 0 {
            return None;
        }
        let precisions = [r.u8()?, r.u8()?, r.u8()?];
        let latitude = r.u32()?;
        let longitude = r.u32()?;
        let altitude = r.u32()?;
        write_coordinate(out, latitude, 90, ['N', 'S'])?;
        write_coordinate(out, longitude, 180, ['E', 'W'])?;
        let altitude = i64::from(altitude) - ALTITUDE_BASE;
        let sign = if altitude < 0 { "-" } else { "" };
        let magnitude = altitude.unsigned_abs();
        sep(out);
        let _ = write!(out, "{sign}{}.{:02}m", magnitude / 100, magnitude % 100);
        for precision in precisions {
            write_precision(out, precision)?;
        }
        Some(())
    }

    fn write_coordinate(
        out: &mut String,
        value: u32,
        max_degrees: u32,
        hemispheres: [char; 2],
    ) -> Option<()> {
        let (offset, hemisphere) = if value > ZERO {
            (value - ZERO, hemispheres[0])
        } else {
            (ZERO - value, hemispheres[1])
        };
        if offset > max_degrees * 3_600_000 {
            return None;
        }
        let millis = offset % 1000;
        let seconds = offset / 1000 % 60;
        let minutes = offset / 60_000 % 60;
        let degrees = offset / 3_600_000;
        sep(out);
        let _ = write!(
            out,
            "{degrees} {minutes} {seconds}.{millis:03} {hemisphere}"
        );
        Some(())
    }

    /// Prints a size or precision as BIND does; `None` when the nibbles are
    /// out of range or not in the form `encode_precision` produces.
    fn write_precision(out: &mut String, precision: u8) -> Option<()> {
        let mantissa = u64::from(precision >> 4);
        let exponent = u32::from(precision & 0x0f);
        if mantissa > 9 || exponent > 9 || (mantissa == 0 && exponent != 0) {
            return None;
        }
        sep(out);
        if exponent >= 2 {
            let _ = write!(out, "{}m", mantissa * 10u64.pow(exponent - 2));
        } else {
            let _ = write!(out, "0.{:02}m", mantissa * 10u64.pow(exponent));
        }
        Some(())
    }
}

/// SVCB and HTTPS records (RFC 9460).
mod svcb {
    use std::fmt::Write as _;
    use std::net::Ipv6Addr;

    use super::{
        Fields, RdataError, Reader, Token, bad, decode_escapes, encoding, parse_decimal,
        parse_ipv4, parse_ipv6, put_name, put_u16, sep, write_escaped,
    };

    const MANDATORY: u16 = 0;
    const ALPN: u16 = 1;
    const NO_DEFAULT_ALPN: u16 = 2;
    const PORT: u16 = 3;
    const IPV4HINT: u16 = 4;
    const ECH: u16 = 5;
    const IPV6HINT: u16 = 6;
    const OHTTP: u16 = 8;
    /// Reserved as the "invalid key" (RFC 9460 §14.3.2).
    const INVALID_KEY: u16 = 65535;

    /// Keys with a name (RFC 9460, RFC 9461 dohpath, RFC 9540 ohttp).
    const KEY_NAMES: &[(&str, u16)] = &[
        ("mandatory", MANDATORY),
        ("alpn", ALPN),
        ("no-default-alpn", NO_DEFAULT_ALPN),
        ("port", PORT),
        ("ipv4hint", IPV4HINT),
        ("ech", ECH),
        ("ipv6hint", IPV6HINT),
        ("dohpath", 7),
        ("ohttp", OHTTP),
    ];

    pub(super) fn from_text(
        f: &mut Fields<'_, '_>,
        origin: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RdataError> {
        put_u16(f, "SvcPriority", out)?;
        put_name(f, "TargetName", origin, out)?;
        let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
        while let Some(token) = f.next_opt() {
            params.push(param_from_text(token, f)?);
        }
        params.sort_by_key(|&(key, _)| key);
        if let Some(pair) = params.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(RdataError::Invalid(format!(
                "SvcParamKey {} appears twice",
                key_name(pair[0].0)
            )));
        }
        let keys: Vec<u16> = params.iter().map(|&(key, _)| key).collect();
        if let Some((_, value)) = params.iter().find(|&&(key, _)| key == MANDATORY) {
            check_mandatory(value, &keys)?;
        }
        for (key, value) in &params {
            let len = u16::try_from(value.len()).map_err(|_| RdataError::TooLong)?;
            out.extend_from_slice(&key.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value);
        }
        Ok(())
    }

    /// One `key[=value]`; a quoted value after `key=` is a separate token.
    fn param_from_text(
        token: Token<'_>,
        f: &mut Fields<'_, '_>,
    ) -> Result<(u16, Vec<u8>), RdataError> {
        if token.quoted {
            return Err(bad("SvcParam", token.text));
        }
        let (key_text, mut value) = match token.text.iter().position(|&b| b == b'=') {
            Some(at) => (&token.text[..at], Some(&token.text[at + 1..])),
            None => (token.text, None),
        };
        if value.is_some_and(<[u8]>::is_empty) && f.peek().is_some_and(|t| t.quoted) {
            value = f.next_opt().map(|t| t.text);
        }
        let (key, generic) = parse_key(key_text).ok_or_else(|| bad("SvcParamKey", key_text))?;
        let decoded = match value {
            Some(text) => {
                let mut bytes = Vec::with_capacity(text.len());
                decode_escapes(text, &mut bytes).ok_or_else(|| bad("SvcParamValue", text))?;
                Some(bytes)
            }
            None => None,
        };
        if generic {
            return Ok((key, decoded.unwrap_or_default()));
        }
        Ok((key, value_from_text(key, decoded)?))
    }

    /// A key name or `keyNNNNN`; the flag says the generic form was used.
    fn parse_key(text: &[u8]) -> Option<(u16, bool)> {
        if let Some(&(_, key)) = KEY_NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(text))
        {
            return Some((key, false));
        }
        let digits = text.strip_prefix(b"key")?;
        let key = parse_decimal(digits).filter(|_| digits.len() <= 5)?;
        let key = u16::try_from(key).ok().filter(|&k| k != INVALID_KEY)?;
        Some((key, true))
    }

    fn key_name(key: u16) -> String {
        match KEY_NAMES.iter().find(|&&(_, k)| k == key) {
            Some((name, _)) => (*name).to_string(),
            None => format!("key{key}"),
        }
    }

    fn missing(key: u16) -> RdataError {
        RdataError::Invalid(format!("SvcParamKey {} needs a value", key_name(key)))
    }

    /// The wire value of a named key from its (escape-decoded) presentation value.
    fn value_from_text(key: u16, value: Option<Vec<u8>>) -> Result<Vec<u8>, RdataError> {
        if matches!(key, NO_DEFAULT_ALPN | OHTTP) {
            if value.as_ref().is_some_and(|v| !v.is_empty()) {
                return Err(RdataError::Invalid(format!(
                    "SvcParamKey {} takes no value",
                    key_name(key)
                )));
            }
            return Ok(Vec::new());
        }
        let value = match value {
            Some(value) => value,
            None if key > IPV6HINT => Vec::new(),
            None => return Err(missing(key)),
        };
        let mut wire = Vec::with_capacity(value.len());
        match key {
            MANDATORY => mandatory_from_text(&value, &mut wire)?,
            ALPN => {
                for id in split_list(&value).ok_or_else(|| bad("alpn", &value))? {
                    let len = u8::try_from(id.len()).map_err(|_| bad("alpn", &value))?;
                    wire.push(len);
                    wire.extend_from_slice(&id);
                }
            }
            PORT => {
                let port = parse_decimal(&value).and_then(|v| u16::try_from(v).ok());
                wire.extend_from_slice(&port.ok_or_else(|| bad("port", &value))?.to_be_bytes());
            }
            IPV4HINT => {
                for item in split_list(&value).ok_or_else(|| bad("ipv4hint", &value))? {
                    wire.extend_from_slice(
                        &parse_ipv4(&item).ok_or_else(|| bad("ipv4hint", &item))?,
                    );
                }
            }
            ECH => {
                let token = [Token::plain(&value)];
                encoding::base64_decode(&token, &mut wire).ok_or_else(|| bad("ech", &value))?;
            }
            IPV6HINT => {
                for item in split_list(&value).ok_or_else(|| bad("ipv6hint", &value))? {
                    let address = parse_ipv6(&item).ok_or_else(|| bad("ipv6hint", &item))?;
                    wire.extend_from_slice(&address.octets());
                }
            }
            _ => wire = value,
        }
        Ok(wire)
    }

    fn mandatory_from_text(value: &[u8], wire: &mut Vec<u8>) -> Result<(), RdataError> {
        let mut keys = Vec::new();
        for item in split_list(value).ok_or_else(|| bad("mandatory", value))? {
            let (key, _) = parse_key(&item).ok_or_else(|| bad("mandatory key", &item))?;
            keys.push(key);
        }
        keys.sort_unstable();
        for key in keys {
            wire.extend_from_slice(&key.to_be_bytes());
        }
        Ok(())
    }

    /// Splits a comma-separated value list (RFC 9460 Appendix A.1): `\,`
    /// and `\\` stand for a literal comma and backslash. Items must not be empty.
    fn split_list(value: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut items = Vec::new();
        let mut item = Vec::new();
        let mut bytes = value.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'\\' => item.push(*bytes.next()?),
                b',' => {
                    if item.is_empty() {
                        return None;
                    }
                    items.push(std::mem::take(&mut item));
                }
                _ => item.push(b),
            }
        }
        if item.is_empty() {
            return None;
        }
        items.push(item);
        Some(items)
    }

    /// `mandatory` must list distinct keys in ascending order, not itself,
    /// each present in the record (RFC 9460 §8).
    fn check_mandatory(value: &[u8], keys: &[u16]) -> Result<(), RdataError> {
        if mandatory_is_valid(value, keys) {
            return Ok(());
        }
        Err(RdataError::Invalid(
            "mandatory must list distinct keys present in the record, not itself".to_string(),
        ))
    }

    fn mandatory_is_valid(value: &[u8], keys: &[u16]) -> bool {
        if value.is_empty() || !value.len().is_multiple_of(2) {
            return false;
        }
        let listed: Vec<u16> = value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        listed.windows(2).all(|w| w[0] < w[1])
            && listed
                .iter()
                .all(|k| *k != MANDATORY && keys.binary_search(k).is_ok())
    }

    pub(super) fn to_text(r: &mut Reader<'_>, out: &mut String) -> Option<()> {
        sep(out);
        let _ = write!(out, "{}", r.u16()?);
        super::write_name(out, r.name()?)?;
        let params = read_params(r.rest())?;
        let keys: Vec<u16> = params.iter().map(|&(key, _)| key).collect();
        for &(key, value) in &params {
            if key == MANDATORY && !mandatory_is_valid(value, &keys) {
                return None;
            }
            sep(out);
            if !write_named_param(out, key, value) {
                write_generic_param(out, key, value);
            }
        }
        Some(())
    }

    /// Splits the parameters; `None` unless keys strictly ascend and the
    /// lengths fit.
    fn read_params<'a>(data: &'a [u8]) -> Option<Vec<(u16, &'a [u8])>> {
        let mut r = Reader::new(data);
        let mut params: Vec<(u16, &'a [u8])> = Vec::new();
        while !r.is_empty() {
            let key = r.u16()?;
            let len = r.u16()?;
            let value = r.take(usize::from(len))?;
            if key == INVALID_KEY || params.last().is_some_and(|&(last, _)| last >= key) {
                return None;
            }
            params.push((key, value));
        }
        Some(params)
    }

    /// Writes a parameter in its named form; false when the key has no name
    /// or the value is not valid for it (the caller then uses `keyNNNNN`).
    fn write_named_param(out: &mut String, key: u16, value: &[u8]) -> bool {
        let mut text = String::new();
        let written = match key {
            MANDATORY => write_mandatory(&mut text, value),
            ALPN => write_alpn(&mut text, value),
            NO_DEFAULT_ALPN | OHTTP => value.is_empty(),
            PORT => match <[u8; 2]>::try_from(value) {
                Ok(port) => write!(text, "={}", u16::from_be_bytes(port)).is_ok(),
                Err(_) => false,
            },
            IPV4HINT => write_ipv4_hints(&mut text, value),
            ECH if !value.is_empty() => {
                text.push('=');
                encoding::base64_encode(value, &mut text);
                true
            }
            IPV6HINT => write_ipv6_hints(&mut text, value),
            7 => {
                text.push_str("=\"");
                write_escaped(&mut text, value);
                text.push('"');
                true
            }
            _ => false,
        };
        if written {
            out.push_str(&key_name(key));
            out.push_str(&text);
        }
        written
    }

    fn write_generic_param(out: &mut String, key: u16, value: &[u8]) {
        let _ = write!(out, "key{key}");
        if !value.is_empty() {
            out.push_str("=\"");
            write_escaped(out, value);
            out.push('"');
        }
    }

    fn write_mandatory(text: &mut String, value: &[u8]) -> bool {
        for (i, key) in value.chunks_exact(2).enumerate() {
            text.push(if i == 0 { '=' } else { ',' });
            text.push_str(&key_name(u16::from_be_bytes([key[0], key[1]])));
        }
        true
    }

    /// `alpn="h2,h3"`: a comma in an id is written `\,`, a backslash `\\`,
    /// and then the whole value is escaped once more for the quotes.
    fn write_alpn(text: &mut String, value: &[u8]) -> bool {
        let mut r = Reader::new(value);
        let mut list = Vec::with_capacity(value.len() + 4);
        while !r.is_empty() {
            let Some(id) = r.char_string().filter(|id| !id.is_empty()) else {
                return false;
            };
            if !list.is_empty() {
                list.push(b',');
            }
            for &b in id {
                if b == b',' || b == b'\\' {
                    list.push(b'\\');
                }
                list.push(b);
            }
        }
        if list.is_empty() {
            return false;
        }
        text.push_str("=\"");
        write_escaped(text, &list);
        text.push('"');
        true
    }

    fn write_ipv4_hints(text: &mut String, value: &[u8]) -> bool {
        if value.is_empty() || !value.len().is_multiple_of(4) {
            return false;
        }
        for (i, a) in value.chunks_exact(4).enumerate() {
            text.push(if i == 0 { '=' } else { ',' });
            let _ = write!(text, "{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
        }
        true
    }

    fn write_ipv6_hints(text: &mut String, value: &[u8]) -> bool {
        if value.is_empty() || !value.len().is_multiple_of(16) {
            return false;
        }
        for (i, a) in value.chunks_exact(16).enumerate() {
            text.push(if i == 0 { '=' } else { ',' });
            let octets: [u8; 16] = a.try_into().unwrap_or([0; 16]);
            let _ = write!(text, "{}", Ipv6Addr::from(octets));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::master::tokens_of;

    /// `example.test.`, the origin of these tests.
    const ORIGIN: &[u8] = b"\x07example\x04test\x00";

    fn parse(code: u16, text: &str) -> Result<Vec<u8>, RdataError> {
        let tokens = tokens_of(text.as_bytes()).expect("lexes");
        let mut out = Vec::new();
        rdata_from_text(code, &tokens, ORIGIN, &mut out).map(|()| out)
    }

    fn wire(code: u16, text: &str) -> Vec<u8> {
        parse(code, text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(code: u16, text: &str) -> String {
        match parse(code, text) {
            Ok(w) => panic!("{text} parsed as {w:02x?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Checks text -> wire gives `expected` and wire -> text gives `printed`.
    fn both_ways(code: u16, text: &str, expected: &[u8], printed: &str) {
        assert_eq!(wire(code, text), expected, "{text}");
        assert_eq!(rdata_to_text(code, expected), printed);
        assert_eq!(wire(code, printed), expected, "{printed}");
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn a_and_aaaa_records() {
        both_ways(rtype::A, "192.0.2.1", &[192, 0, 2, 1], "192.0.2.1");
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        both_ways(rtype::AAAA, "2001:DB8:0::1", &v6, "2001:db8::1");
        let mapped = wire(rtype::AAAA, "::ffff:192.0.2.1");
        assert_eq!(&mapped[12..], &[192, 0, 2, 1]);
    }

    #[test]
    fn bad_addresses_are_named_in_the_error() {
        assert_eq!(error(rtype::A, "1.2.3"), "bad IPv4 address `1.2.3`");
        assert_eq!(error(rtype::A, "1.2.3.256"), "bad IPv4 address `1.2.3.256`");
        assert_eq!(error(rtype::A, "1..2.3"), "bad IPv4 address `1..2.3`");
        assert_eq!(error(rtype::A, ""), "missing IPv4 address");
        assert_eq!(
            error(rtype::A, "1.2.3.4 5"),
            "unexpected `5` after the record data"
        );
        assert_eq!(
            error(rtype::AAAA, "2001:db8:::1"),
            "bad IPv6 address `2001:db8:::1`"
        );
    }

    #[test]
    fn single_name_types_complete_relative_names_and_keep_case() {
        let expected = b"\x03Ns1\x07example\x04test\x00";
        for code in [rtype::NS, rtype::CNAME, rtype::DNAME, rtype::PTR] {
            both_ways(code, "Ns1", expected, "Ns1.example.test.");
        }
        assert_eq!(wire(rtype::NS, "@"), ORIGIN);
        assert_eq!(wire(rtype::NS, "a.b."), b"\x01a\x01b\x00");
        assert_eq!(wire(rtype::NS, "."), b"\x00");
        assert!(error(rtype::NS, "a..b.").starts_with("bad domain name `a..b.`"));
        let long = format!("{}.", "x".repeat(64));
        assert!(error(rtype::CNAME, &long).ends_with("label longer than 63 bytes"));
    }

    #[test]
    fn mx_kx_afsdb_and_rp() {
        let expected = cat(&[&[0, 10], b"\x04Mail\x07example\x04test\x00"]);
        for code in [rtype::MX, rtype::KX, rtype::AFSDB] {
            both_ways(code, "10 Mail", &expected, "10 Mail.example.test.");
        }
        assert_eq!(error(rtype::MX, "65536 mail"), "bad preference `65536`");
        both_ways(
            rtype::RP,
            "admin.x. txt.x.",
            b"\x05admin\x01x\x00\x03txt\x01x\x00",
            "admin.x. txt.x.",
        );
    }

    #[test]
    fn soa_timers_take_ttl_units() {
        let text = "ns1 hostmaster.example.test. 2026112301 2h 15M 2w 5m";
        let expected = cat(&[
            b"\x03ns1\x07example\x04test\x00",
            b"\x0ahostmaster\x07example\x04test\x00",
            &2026112301u32.to_be_bytes(),
            &7200u32.to_be_bytes(),
            &900u32.to_be_bytes(),
            &1209600u32.to_be_bytes(),
            &300u32.to_be_bytes(),
        ]);
        both_ways(
            rtype::SOA,
            text,
            &expected,
            "ns1.example.test. hostmaster.example.test. 2026112301 7200 900 1209600 300",
        );
        assert_eq!(error(rtype::SOA, "a b 1h 1 1 1 1"), "bad serial `1h`");
        assert_eq!(error(rtype::SOA, "a b 1 1 1 1"), "missing minimum");
    }

    #[test]
    fn txt_takes_several_strings_quoted_or_not() {
        both_ways(
            rtype::TXT,
            r#""v=spf1 mx -all" second "" "q\"\\\065\010""#,
            b"\x0ev=spf1 mx -all\x06second\x00\x05q\"\\A\n",
            r#""v=spf1 mx -all" "second" "" "q\"\\A\010""#,
        );
        both_ways(
            rtype::SPF,
            "\"v=spf1 -all\"",
            b"\x0bv=spf1 -all",
            "\"v=spf1 -all\"",
        );
        let max = format!("\"{}\"", "a".repeat(255));
        assert_eq!(wire(rtype::TXT, &max).len(), 256);
        let over = format!("\"{}\"", "a".repeat(256));
        assert_eq!(
            error(rtype::TXT, &over),
            "character string longer than 255 bytes"
        );
        assert_eq!(error(rtype::TXT, ""), "missing text");
        assert_eq!(
            error(rtype::TXT, r#""bad \25 escape""#),
            r#"bad text `bad \25 escape`"#
        );
    }

    #[test]
    fn hinfo_srv_and_naptr() {
        both_ways(
            rtype::HINFO,
            "\"PC\" Linux",
            b"\x02PC\x05Linux",
            "\"PC\" \"Linux\"",
        );
        assert_eq!(error(rtype::HINFO, "\"PC\""), "missing OS");
        both_ways(
            rtype::SRV,
            "10 60 5060 sip",
            &cat(&[
                &[0, 10, 0, 60, 0x13, 0xc4],
                b"\x03sip\x07example\x04test\x00",
            ]),
            "10 60 5060 sip.example.test.",
        );
        both_ways(
            rtype::NAPTR,
            r#"100 10 "S" "SIP+D2U" "" _sip._udp.example.com."#,
            &cat(&[
                &[0, 100, 0, 10],
                b"\x01S\x07SIP+D2U\x00",
                b"\x04_sip\x04_udp\x07example\x03com\x00",
            ]),
            r#"100 10 "S" "SIP+D2U" "" _sip._udp.example.com."#,
        );
    }

    #[test]
    fn caa_value_is_the_rest_of_the_data() {
        both_ways(
            rtype::CAA,
            "0 issue \"letsencrypt.org; validationmethods=dns-01\"",
            b"\x00\x05issueletsencrypt.org; validationmethods=dns-01",
            "0 issue \"letsencrypt.org; validationmethods=dns-01\"",
        );
        both_ways(
            rtype::CAA,
            "128 iodef mailto:x@y",
            b"\x80\x05iodefmailto:x@y",
            "128 iodef \"mailto:x@y\"",
        );
        assert_eq!(error(rtype::CAA, "0 is-sue \"x\""), "bad CAA tag `is-sue`");
        assert_eq!(error(rtype::CAA, "0 issue"), "missing value");
    }

    #[test]
    fn sshfp_tlsa_smimea_take_split_hex() {
        both_ways(
            rtype::SSHFP,
            "4 2 0123 4567 89aBcDeF",
            &[4, 2, 1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            "4 2 0123456789ABCDEF",
        );
        for code in [rtype::TLSA, rtype::SMIMEA] {
            both_ways(
                code,
                "3 1 1 d2abde24",
                &[3, 1, 1, 0xd2, 0xab, 0xde, 0x24],
                "3 1 1 D2ABDE24",
            );
        }
        assert_eq!(error(rtype::SSHFP, "4 2 0g"), "bad fingerprint `0g`");
        assert_eq!(error(rtype::SSHFP, "4 2 012"), "bad fingerprint `012`");
        assert_eq!(
            error(rtype::TLSA, "3 1 1"),
            "missing certificate association data"
        );
    }

    #[test]
    fn loc_full_and_short_forms() {
        // RFC 1876 §4's example: 42 21 54 N 71 06 18 W -24m 30m.
        let latitude: u32 = (1 << 31) + (42 * 3600 + 21 * 60 + 54) * 1000;
        let longitude: u32 = (1 << 31) - (71 * 3600 + 6 * 60 + 18) * 1000;
        let altitude: u32 = 10_000_000 - 2_400;
        let expected = cat(&[
            &[0, 0x33, 0x16, 0x13],
            &latitude.to_be_bytes(),
            &longitude.to_be_bytes(),
            &altitude.to_be_bytes(),
        ]);
        both_ways(
            rtype::LOC,
            "42 21 54 N 71 06 18 W -24m 30m",
            &expected,
            "42 21 54.000 N 71 6 18.000 W -24.00m 30m 10000m 10m",
        );
        let short = wire(rtype::LOC, "52 n 4 53 32.5 e 2.05 0.5m 1.5M 20");
        assert_eq!(&short[..4], &[0, 0x51, 0x12, 0x23]);
        assert_eq!(
            rdata_to_text(rtype::LOC, &short),
            "52 0 0.000 N 4 53 32.500 E 2.05m 0.50m 1m 20m"
        );
        assert_eq!(error(rtype::LOC, "91 N 0 E 0m"), "bad latitude `91`");
        assert_eq!(error(rtype::LOC, "90 0 0.001 N 0 E 0m"), "bad latitude `N`");
        assert_eq!(error(rtype::LOC, "10 60 N 0 E 0m"), "bad latitude `60`");
        assert_eq!(error(rtype::LOC, "10 N 0 X 0m"), "bad longitude `X`");
        assert_eq!(
            error(rtype::LOC, "10 N 0 E 0.001m"),
            "bad altitude `0.001m`"
        );
        assert_eq!(
            error(rtype::LOC, "10 N 0 E 0m 90000001m"),
            "bad size `90000001m`"
        );
        let mut bad_version = expected.clone();
        bad_version[0] = 1;
        assert!(rdata_to_text(rtype::LOC, &bad_version).starts_with("\\# 16 01"));
    }

    #[test]
    fn svcb_rfc9460_test_vectors() {
        // RFC 9460 Appendix D.
        both_ways(
            rtype::HTTPS,
            "0 foo.example.com.",
            b"\x00\x00\x03foo\x07example\x03com\x00",
            "0 foo.example.com.",
        );
        both_ways(rtype::SVCB, "1 .", b"\x00\x01\x00", "1 .");
        let foo = b"\x03foo\x07example\x03com\x00";
        both_ways(
            rtype::SVCB,
            "16 foo.example.com. port=53",
            &cat(&[&[0, 16], foo, &[0, 3, 0, 2, 0, 53]]),
            "16 foo.example.com. port=53",
        );
        let hello = cat(&[&[0, 1], foo, &[0x02, 0x9b, 0, 5], b"hello"]);
        both_ways(
            rtype::SVCB,
            "1 foo.example.com. key667=hello",
            &hello,
            "1 foo.example.com. key667=\"hello\"",
        );
        let hello_qoo = cat(&[&[0, 1], foo, &[0x02, 0x9b, 0, 9], b"hello\xd2qoo"]);
        both_ways(
            rtype::SVCB,
            r#"1 foo.example.com. key667="hello\210qoo""#,
            &hello_qoo,
            r#"1 foo.example.com. key667="hello\210qoo""#,
        );
        let v6 = cat(&[
            &[0, 1],
            foo,
            &[0, 6, 0, 32],
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0, 1,
            ],
        ]);
        both_ways(
            rtype::SVCB,
            r#"1 foo.example.com. ipv6hint="2001:db8::1,2001:db8::53:1""#,
            &v6,
            "1 foo.example.com. ipv6hint=2001:db8::1,2001:db8::53:1",
        );
        let org = b"\x03foo\x07example\x03org\x00";
        let sorted = cat(&[
            &[0, 16],
            org,
            &[0, 0, 0, 4, 0, 1, 0, 4],
            &[0, 1, 0, 9, 2, b'h', b'2', 5, b'h', b'3', b'-', b'1', b'9'],
            &[0, 4, 0, 4, 192, 0, 2, 1],
        ]);
        both_ways(
            rtype::SVCB,
            "16 foo.example.org. ( alpn=h2,h3-19 mandatory=ipv4hint,alpn\n ipv4hint=192.0.2.1 )",
            &sorted,
            "16 foo.example.org. mandatory=alpn,ipv4hint alpn=\"h2,h3-19\" ipv4hint=192.0.2.1",
        );
        let escaped = cat(&[&[0, 16], org, &[0, 1, 0, 12, 8], b"f\\oo,bar", &[2], b"h2"]);
        both_ways(
            rtype::SVCB,
            r#"16 foo.example.org. alpn="f\\\\oo\\,bar,h2""#,
            &escaped,
            r#"16 foo.example.org. alpn="f\\\\oo\\,bar,h2""#,
        );
        assert_eq!(
            wire(
                rtype::SVCB,
                r#"16 foo.example.org. alpn=f\\\092oo\092,bar,h2"#
            ),
            escaped
        );
    }

    #[test]
    fn svcb_other_keys() {
        let data = wire(
            rtype::HTTPS,
            "1 . alpn=h2 no-default-alpn ech=AAEC ohttp dohpath=\"/q{?dns}\" key65000",
        );
        assert_eq!(
            rdata_to_text(rtype::HTTPS, &data),
            "1 . alpn=\"h2\" no-default-alpn ech=AAEC dohpath=\"/q{?dns}\" ohttp key65000"
        );
        // A known key in generic form keeps opaque data, printed generically if not valid.
        let odd = wire(rtype::HTTPS, "1 . key3=\"abc\"");
        assert_eq!(odd, b"\x00\x01\x00\x00\x03\x00\x03abc");
        assert_eq!(rdata_to_text(rtype::HTTPS, &odd), "1 . key3=\"abc\"");
        assert_eq!(
            rdata_to_text(rtype::HTTPS, &wire(rtype::HTTPS, "1 . key3=\"\\000\\053\"")),
            "1 . port=53"
        );
    }

    #[test]
    fn svcb_rejects_invalid_parameters() {
        assert_eq!(
            error(rtype::SVCB, "1 . alpn=h2 alpn=h3"),
            "SvcParamKey alpn appears twice"
        );
        assert_eq!(
            error(rtype::SVCB, "1 . port=53 key3=\"ab\""),
            "SvcParamKey port appears twice"
        );
        let mandatory = "mandatory must list distinct keys present in the record, not itself";
        assert_eq!(error(rtype::SVCB, "1 . mandatory=port"), mandatory);
        assert_eq!(
            error(rtype::SVCB, "1 . mandatory=mandatory,port port=1"),
            mandatory
        );
        assert_eq!(
            error(rtype::SVCB, "1 . mandatory=port,port port=1"),
            mandatory
        );
        assert_eq!(
            error(rtype::SVCB, "1 . alpn"),
            "SvcParamKey alpn needs a value"
        );
        assert_eq!(error(rtype::SVCB, "1 . alpn=h2,,h3"), "bad alpn `h2,,h3`");
        assert_eq!(
            error(rtype::SVCB, "1 . no-default-alpn=x"),
            "SvcParamKey no-default-alpn takes no value"
        );
        assert_eq!(error(rtype::SVCB, "1 . port=65536"), "bad port `65536`");
        assert_eq!(
            error(rtype::SVCB, "1 . ipv4hint=1.2.3"),
            "bad ipv4hint `1.2.3`"
        );
        assert_eq!(
            error(rtype::SVCB, "1 . key65535=x"),
            "bad SvcParamKey `key65535`"
        );
        assert_eq!(
            error(rtype::SVCB, "1 . colour=red"),
            "bad SvcParamKey `colour`"
        );
        assert_eq!(error(rtype::SVCB, "1 . ech=!!"), "bad ech `!!`");
        // Keys out of order in the wire cannot be printed as they are.
        let unsorted = b"\x00\x01\x00\x00\x03\x00\x02\x00\x35\x00\x01\x00\x03\x02h2";
        assert!(rdata_to_text(rtype::SVCB, unsorted).starts_with("\\# 16 "));
    }

    #[test]
    fn ds_cds_dnskey_cdnskey() {
        // RFC 4034 §5.4.
        let digest = "2BB183AF5F22588179A53B0A98631FAD1A292118";
        let expected = cat(&[
            &[0xec, 0x45, 5, 1],
            &[
                0x2b, 0xb1, 0x83, 0xaf, 0x5f, 0x22, 0x58, 0x81, 0x79, 0xa5, 0x3b, 0x0a, 0x98, 0x63,
                0x1f, 0xad, 0x1a, 0x29, 0x21, 0x18,
            ],
        ]);
        both_ways(
            rtype::DS,
            &format!(
                "60485 RSASHA1 1 {} {}",
                digest[..10].to_lowercase(),
                &digest[10..]
            ),
            &expected,
            &format!("60485 5 1 {digest}"),
        );
        both_ways(rtype::CDS, "0 0 0 00", &[0, 0, 0, 0, 0], "0 0 0 00");
        both_ways(
            rtype::DNSKEY,
            "257 3 ECDSAP256SHA256 AQID BA==",
            &[1, 1, 3, 13, 1, 2, 3, 4],
            "257 3 13 AQIDBA==",
        );
        both_ways(rtype::CDNSKEY, "0 3 0 AA==", &[0, 0, 3, 0, 0], "0 3 0 AA==");
        assert_eq!(error(rtype::DNSKEY, "257 3 13 AQI"), "bad public key `AQI`");
        assert_eq!(
            error(rtype::DNSKEY, "257 3 13 A=QI"),
            "bad public key `A=QI`"
        );
        assert_eq!(error(rtype::DNSKEY, "257 3 13"), "missing public key");
        assert_eq!(error(rtype::DS, "1 FOO 1 00"), "bad algorithm `FOO`");
    }

    #[test]
    fn rrsig_rfc4034_example() {
        let text = "A 5 3 86400 20030322173103 ( 20030220173103 2642 example.com.\n\
            oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6o\n\
            B9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkG\n\
            J5D6fwFm8nN+6pBzeDQfsS3Ap3o= )";
        let data = wire(rtype::RRSIG, text);
        assert_eq!(&data[..4], &[0, 1, 5, 3]);
        assert_eq!(&data[4..8], &86400u32.to_be_bytes());
        assert_eq!(&data[8..12], &1_048_354_263u32.to_be_bytes());
        assert_eq!(&data[12..16], &1_045_762_263u32.to_be_bytes());
        assert_eq!(&data[16..18], &2642u16.to_be_bytes());
        assert_eq!(&data[18..31], b"\x07example\x03com\x00");
        let printed = rdata_to_text(rtype::RRSIG, &data);
        assert!(
            printed.starts_with(
                "A 5 3 86400 20030322173103 20030220173103 2642 example.com. oJB1W6WN"
            ),
            "{printed}"
        );
        assert_eq!(wire(rtype::RRSIG, &printed), data);
        let numeric = wire(
            rtype::RRSIG,
            "TYPE1 5 3 86400 1048354263 1045762263 2642 example.com. AA==",
        );
        assert_eq!(&numeric[..18], &data[..18]);
        assert_eq!(
            error(rtype::RRSIG, "A 5 3 86400 20030230000000 1 2 x. AA=="),
            "bad signature expiration `20030230000000`"
        );
        assert_eq!(
            error(rtype::RRSIG, "BOGUS 5 3 86400 1 1 2 x. AA=="),
            "bad type `BOGUS`"
        );
    }

    #[test]
    fn nsec_bitmap_rfc4034_example() {
        let data = wire(
            rtype::NSEC,
            "host.example.com. ( A MX RRSIG NSEC TYPE1234 )",
        );
        let mut expected = cat(&[
            b"\x04host\x07example\x03com\x00",
            &[0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 0x04, 0x1b],
        ]);
        expected.extend_from_slice(&[0; 26]);
        expected.push(0x20);
        assert_eq!(data, expected);
        assert_eq!(
            rdata_to_text(rtype::NSEC, &data),
            "host.example.com. A MX RRSIG NSEC TYPE1234"
        );
        assert_eq!(
            wire(rtype::NSEC, "a. NSEC A nsec a"),
            wire(rtype::NSEC, "a. A NSEC")
        );
        assert_eq!(wire(rtype::NSEC, "a."), b"\x01a\x00");
        assert_eq!(error(rtype::NSEC, "a. A FOO"), "bad type `FOO`");
        // A trailing zero octet is not canonical: printed generically.
        assert!(rdata_to_text(rtype::NSEC, b"\x01a\x00\x00\x02\x40\x00").starts_with("\\#"));
    }

    #[test]
    fn nsec3_and_nsec3param_rfc5155_example() {
        let data = wire(
            rtype::NSEC3,
            "1 1 12 aabbccdd ( 2t7b4g4vsa5smi47k61mv5bv1a22bojr MX DNSKEY NS SOA NSEC3PARAM RRSIG )",
        );
        assert_eq!(&data[..10], &[1, 1, 0, 12, 4, 0xaa, 0xbb, 0xcc, 0xdd, 20]);
        assert_eq!(&data[10..13], &[0x17, 0x4e, 0xb2]);
        assert_eq!(&data[30..], &[0, 7, 0x22, 0x01, 0, 0, 0, 0x02, 0x90]);
        assert_eq!(
            rdata_to_text(rtype::NSEC3, &data),
            "1 1 12 AABBCCDD 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR NS SOA MX RRSIG DNSKEY NSEC3PARAM"
        );
        both_ways(rtype::NSEC3PARAM, "1 0 0 -", &[1, 0, 0, 0, 0], "1 0 0 -");
        both_ways(
            rtype::NSEC3PARAM,
            "1 0 10 aabb",
            &[1, 0, 0, 10, 2, 0xaa, 0xbb],
            "1 0 10 AABB",
        );
        assert_eq!(
            error(rtype::NSEC3, "1 1 12 - 2t7b4g4vsa5smi47k61mv5bv1a22bo"),
            "bad next hashed owner name `2t7b4g4vsa5smi47k61mv5bv1a22bo`"
        );
        assert_eq!(
            error(rtype::NSEC3, "1 1 12 - 2t7b4g4w"),
            "bad next hashed owner name `2t7b4g4w`"
        );
        assert_eq!(error(rtype::NSEC3PARAM, "1 0 0 abc"), "bad salt `abc`");
    }

    #[test]
    fn zonemd_uri_cert_openpgpkey_dhcid_csync() {
        both_ways(
            rtype::ZONEMD,
            "2018031900 1 1 ( FEBE3D4C E2EC2FFA )",
            &[
                0x78, 0x48, 0xb9, 0x1c, 1, 1, 0xfe, 0xbe, 0x3d, 0x4c, 0xe2, 0xec, 0x2f, 0xfa,
            ],
            "2018031900 1 1 FEBE3D4CE2EC2FFA",
        );
        both_ways(
            rtype::URI,
            "10 1 \"ftp://ftp1.example.com/public\"",
            b"\x00\x0a\x00\x01ftp://ftp1.example.com/public",
            "10 1 \"ftp://ftp1.example.com/public\"",
        );
        both_ways(
            rtype::CERT,
            "PKIX 12 8 AQID",
            &[0, 1, 0, 12, 8, 1, 2, 3],
            "1 12 8 AQID",
        );
        both_ways(rtype::OPENPGPKEY, "AQID BA==", &[1, 2, 3, 4], "AQIDBA==");
        both_ways(
            rtype::DHCID,
            "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=",
            &[
                0, 2, 1, 0x63, 0x6f, 0xc0, 0xb8, 0x27, 0x1c, 0x82, 0x82, 0x5b, 0xb1, 0xac, 0x5c,
                0x41, 0xcf, 0x53, 0x51, 0xaa, 0x69, 0xb4, 0xfe, 0xbd, 0x94, 0xe8, 0xf1, 0x7c, 0xdb,
                0x95, 0x00, 0x0d, 0xa4, 0x8c, 0x40,
            ],
            "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=",
        );
        both_ways(
            rtype::CSYNC,
            "66 3 A NS AAAA",
            &[0, 0, 0, 66, 0, 3, 0, 4, 0x60, 0, 0, 0x08],
            "66 3 A NS AAAA",
        );
    }

    #[test]
    fn generic_syntax_for_unknown_and_known_types() {
        both_ways(65534, "\\# 3 abcdef", &[0xab, 0xcd, 0xef], "\\# 3 ABCDEF");
        both_ways(65534, "\\# 0", &[], "\\# 0");
        assert_eq!(wire(rtype::A, "\\# 4 C000 0201"), [192, 0, 2, 1]);
        assert_eq!(wire(rtype::TXT, "\\# 2 0141"), b"\x01A");
        assert_eq!(
            error(65534, "\\# 2 abcdef"),
            "\\# data is 3 bytes long but 2 were declared"
        );
        assert_eq!(error(65534, "\\#"), "missing \\# data length");
        assert_eq!(error(65534, "\\# 1 xy"), "bad \\# hex data `xy`");
        assert_eq!(
            error(rtype::A, "\\# 3 010203"),
            "\\# data is not valid A data"
        );
        assert_eq!(
            error(rtype::NS, "\\# 2 0161"),
            "\\# data is not valid NS data"
        );
        assert_eq!(
            error(65534, "abc"),
            "type TYPE65534 has no presentation format here; write its data as `\\# length hex`"
        );
        // Data that is not valid for its type is printed generically.
        assert_eq!(rdata_to_text(rtype::A, &[1, 2, 3]), "\\# 3 010203");
        assert_eq!(rdata_to_text(rtype::TXT, &[]), "\\# 0");
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl(b"3600"), Some(3600));
        assert_eq!(
            parse_ttl(b"1w2d3h4m5s"),
            Some(604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5)
        );
        assert_eq!(parse_ttl(b"1H30M"), Some(5400));
        assert_eq!(parse_ttl(b"1h30"), Some(3630));
        assert_eq!(parse_ttl(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_ttl(b"4294967296"), None);
        assert_eq!(parse_ttl(b"7102w"), None);
        assert_eq!(parse_ttl(b""), None);
        assert_eq!(parse_ttl(b"h"), None);
        assert_eq!(parse_ttl(b"1x"), None);
    }

    #[test]
    fn encodings_match_rfc4648_vectors() {
        let vectors: [(&[u8], &str, &str); 7] = [
            (b"", "", ""),
            (b"f", "Zg==", "CO"),
            (b"fo", "Zm8=", "CPNG"),
            (b"foo", "Zm9v", "CPNMU"),
            (b"foob", "Zm9vYg==", "CPNMUOG"),
            (b"fooba", "Zm9vYmE=", "CPNMUOJ1"),
            (b"foobar", "Zm9vYmFy", "CPNMUOJ1E8"),
        ];
        for (plain, b64, b32) in vectors {
            let mut text = String::new();
            encoding::base64_encode(plain, &mut text);
            assert_eq!(text, b64);
            let mut bytes = Vec::new();
            encoding::base64_decode(&[Token::plain(b64.as_bytes())], &mut bytes).expect("base64");
            assert_eq!(bytes, plain);
            let mut text = String::new();
            encoding::base32hex_encode(plain, &mut text);
            assert_eq!(text, b32);
            let mut bytes = Vec::new();
            encoding::base32hex_decode(b32.to_lowercase().as_bytes(), &mut bytes)
                .expect("base32hex");
            assert_eq!(bytes, plain);
        }
    }

    #[test]
    fn rrsig_times_cover_the_whole_u32_range() {
        for (time, text) in [
            (0u32, "19700101000000"),
            (951_782_400, "20000229000000"),
            (u32::MAX, "21060207062815"),
        ] {
            let mut out = String::new();
            time::write(&mut out, time);
            assert_eq!(out, text);
            assert_eq!(time::parse(text.as_bytes()), Some(time));
        }
        assert_eq!(time::parse(b"19000229000000"), None);
        assert_eq!(time::parse(b"20010229000000"), None);
    }

    mod properties {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// Reads text back with the master-file lexer and checks the bytes.
        fn reads_back(code: u16, data: &[u8]) -> Result<(), TestCaseError> {
            let text = rdata_to_text(code, data);
            let tokens = tokens_of(text.as_bytes()).map_err(TestCaseError::fail)?;
            let mut out = Vec::new();
            match rdata_from_text(code, &tokens, ORIGIN, &mut out) {
                Ok(()) => prop_assert_eq!(out, data, "{}", text),
                Err(RdataError::InvalidGeneric(_)) => {
                    prop_assert!(
                        text.starts_with("\\#") && layout_is_checked(code),
                        "{}",
                        text
                    );
                }
                Err(e) => return Err(TestCaseError::fail(format!("{text}: {e}"))),
            }
            Ok(())
        }

        fn name() -> impl Strategy<Value = Vec<u8>> {
            vec(vec(any::<u8>(), 1..8), 0..4).prop_map(|labels| {
                let mut wire = Vec::new();
                for label in labels {
                    wire.push(label.len() as u8);
                    wire.extend(label);
                }
                wire.push(0);
                wire
            })
        }

        fn char_string() -> impl Strategy<Value = Vec<u8>> {
            vec(any::<u8>(), 0..30).prop_map(|s| [&[s.len() as u8][..], &s].concat())
        }

        fn bytes(min: usize) -> impl Strategy<Value = Vec<u8>> {
            vec(any::<u8>(), min..40)
        }

        /// A canonical type bitmap.
        fn bitmap() -> impl Strategy<Value = Vec<u8>> {
            vec((any::<u8>(), vec(any::<u8>(), 1..5)), 0..3).prop_map(|mut windows| {
                windows.sort_by_key(|w| w.0);
                windows.dedup_by_key(|w| w.0);
                let mut wire = Vec::new();
                for (window, mut bits) in windows {
                    if let Some(last) = bits.last_mut() {
                        *last |= 1;
                    }
                    wire.push(window);
                    wire.push(bits.len() as u8);
                    wire.extend(bits);
                }
                wire
            })
        }

        fn precision() -> impl Strategy<Value = u8> {
            prop_oneof![Just(0u8), (1u8..=9, 0u8..=9).prop_map(|(m, e)| m << 4 | e)]
        }

        fn loc() -> impl Strategy<Value = Vec<u8>> {
            let zero = 1u32 << 31;
            (
                [precision(), precision(), precision()],
                zero - 324_000_000..=zero + 324_000_000,
                zero - 648_000_000..=zero + 648_000_000,
                any::<u32>(),
            )
                .prop_map(|(p, lat, lon, alt)| {
                    [
                        &[0u8][..],
                        &p,
                        &lat.to_be_bytes(),
                        &lon.to_be_bytes(),
                        &alt.to_be_bytes(),
                    ]
                    .concat()
                })
        }

        fn svc_param() -> impl Strategy<Value = (u16, Vec<u8>)> {
            prop_oneof![
                vec(vec(any::<u8>(), 1..6), 1..4).prop_map(|ids| (
                    1,
                    ids.iter()
                        .flat_map(|id| [&[id.len() as u8][..], id].concat())
                        .collect()
                )),
                Just((2, Vec::new())),
                any::<u16>().prop_map(|p| (3, p.to_be_bytes().to_vec())),
                vec(any::<u8>(), 1..3)
                    .prop_map(|n| (4, n.iter().flat_map(|&b| [192, 0, 2, b]).collect())),
                bytes(1).prop_map(|b| (5, b)),
                vec(any::<[u8; 16]>(), 1..3).prop_map(|a| (6, a.concat())),
                bytes(0).prop_map(|b| (7, b)),
                Just((8, Vec::new())),
                (9u16..65535, bytes(0)),
            ]
        }

        fn svcb() -> impl Strategy<Value = Vec<u8>> {
            (any::<u16>(), name(), vec(svc_param(), 0..5), any::<bool>()).prop_map(
                |(priority, target, mut params, mandatory)| {
                    params.sort_by_key(|p| p.0);
                    params.dedup_by_key(|p| p.0);
                    if mandatory && !params.is_empty() {
                        let keys: Vec<u8> = params
                            .iter()
                            .take(2)
                            .flat_map(|p| p.0.to_be_bytes())
                            .collect();
                        params.insert(0, (0, keys));
                    }
                    let mut wire = [&priority.to_be_bytes()[..], &target].concat();
                    for (key, value) in params {
                        wire.extend(key.to_be_bytes());
                        wire.extend((value.len() as u16).to_be_bytes());
                        wire.extend(value);
                    }
                    wire
                },
            )
        }

        /// Valid rdata of every type with a presentation format.
        fn typed_rdata() -> impl Strategy<Value = (u16, Vec<u8>)> {
            let t = rtype::A;
            let u16s = || any::<u16>().prop_map(|v| v.to_be_bytes().to_vec());
            prop_oneof![
                any::<[u8; 4]>().prop_map(move |a| (t, a.to_vec())),
                any::<[u8; 16]>().prop_map(|a| (rtype::AAAA, a.to_vec())),
                (
                    prop::sample::select(vec![rtype::NS, rtype::CNAME, rtype::DNAME, rtype::PTR]),
                    name()
                ),
                (
                    prop::sample::select(vec![rtype::MX, rtype::KX, rtype::AFSDB]),
                    u16s(),
                    name()
                )
                    .prop_map(|(c, p, n)| (c, [p, n].concat())),
                (name(), name()).prop_map(|(a, b)| (rtype::RP, [a, b].concat())),
                (name(), name(), vec(any::<u8>(), 20))
                    .prop_map(|(a, b, t)| (rtype::SOA, [a, b, t].concat())),
                (
                    prop::sample::select(vec![rtype::TXT, rtype::SPF]),
                    vec(char_string(), 1..4)
                )
                    .prop_map(|(c, s)| (c, s.concat())),
                (char_string(), char_string()).prop_map(|(a, b)| (rtype::HINFO, [a, b].concat())),
                (vec(any::<u8>(), 6), name()).prop_map(|(f, n)| (rtype::SRV, [f, n].concat())),
                (
                    vec(any::<u8>(), 4),
                    char_string(),
                    char_string(),
                    char_string(),
                    name()
                )
                    .prop_map(|(f, a, b, c, n)| (rtype::NAPTR, [f, a, b, c, n].concat())),
                (any::<u8>(), "[a-zA-Z0-9]{1,12}", bytes(0)).prop_map(|(f, tag, v)| (
                    rtype::CAA,
                    [&[f, tag.len() as u8][..], tag.as_bytes(), &v].concat()
                )),
                (vec(any::<u8>(), 2), bytes(1)).prop_map(|(f, h)| (rtype::SSHFP, [f, h].concat())),
                (
                    prop::sample::select(vec![rtype::TLSA, rtype::SMIMEA]),
                    vec(any::<u8>(), 3),
                    bytes(1)
                )
                    .prop_map(|(c, f, h)| (c, [f, h].concat())),
                loc().prop_map(|d| (rtype::LOC, d)),
                (
                    prop::sample::select(vec![rtype::SVCB, rtype::HTTPS]),
                    svcb()
                ),
                (
                    prop::sample::select(vec![
                        rtype::DS,
                        rtype::CDS,
                        rtype::DNSKEY,
                        rtype::CDNSKEY
                    ]),
                    vec(any::<u8>(), 4),
                    bytes(1)
                )
                    .prop_map(|(c, f, h)| (c, [f, h].concat())),
                (vec(any::<u8>(), 18), name(), bytes(1))
                    .prop_map(|(f, n, s)| (rtype::RRSIG, [f, n, s].concat())),
                (name(), bitmap()).prop_map(|(n, b)| (rtype::NSEC, [n, b].concat())),
                (
                    vec(any::<u8>(), 4),
                    vec(any::<u8>(), 0..10),
                    vec(any::<u8>(), 1..25),
                    bitmap()
                )
                    .prop_map(|(f, salt, hash, b)| {
                        (
                            rtype::NSEC3,
                            [
                                f,
                                vec![salt.len() as u8],
                                salt,
                                vec![hash.len() as u8],
                                hash,
                                b,
                            ]
                            .concat(),
                        )
                    }),
                (vec(any::<u8>(), 4), vec(any::<u8>(), 0..10)).prop_map(|(f, salt)| (
                    rtype::NSEC3PARAM,
                    [f, vec![salt.len() as u8], salt].concat()
                )),
                (vec(any::<u8>(), 6), bytes(1)).prop_map(|(f, d)| (rtype::ZONEMD, [f, d].concat())),
                (vec(any::<u8>(), 4), bytes(1)).prop_map(|(f, d)| (rtype::URI, [f, d].concat())),
                (vec(any::<u8>(), 5), bytes(1)).prop_map(|(f, d)| (rtype::CERT, [f, d].concat())),
                (
                    prop::sample::select(vec![rtype::OPENPGPKEY, rtype::DHCID]),
                    bytes(1)
                ),
                (vec(any::<u8>(), 6), bitmap()).prop_map(|(f, b)| (rtype::CSYNC, [f, b].concat())),
                (0xff00u16..=0xfffe, bytes(0)),
            ]
        }

        /// Every type code with a format, plus an unknown one.
        const CODES: &[u16] = &[
            rtype::A,
            rtype::AAAA,
            rtype::NS,
            rtype::CNAME,
            rtype::DNAME,
            rtype::PTR,
            rtype::MX,
            rtype::KX,
            rtype::AFSDB,
            rtype::RP,
            rtype::SOA,
            rtype::TXT,
            rtype::SPF,
            rtype::HINFO,
            rtype::SRV,
            rtype::NAPTR,
            rtype::CAA,
            rtype::SSHFP,
            rtype::TLSA,
            rtype::SMIMEA,
            rtype::LOC,
            rtype::SVCB,
            rtype::HTTPS,
            rtype::DS,
            rtype::CDS,
            rtype::DNSKEY,
            rtype::CDNSKEY,
            rtype::RRSIG,
            rtype::NSEC,
            rtype::NSEC3,
            rtype::NSEC3PARAM,
            rtype::ZONEMD,
            rtype::URI,
            rtype::CERT,
            rtype::OPENPGPKEY,
            rtype::DHCID,
            rtype::CSYNC,
            65280,
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn valid_rdata_of_every_type_reads_back((code, data) in typed_rdata()) {
                reads_back(code, &data)?;
                prop_assert!(!rdata_to_text(code, &data).starts_with("\\#") || code >= 0xff00);
            }

            #[test]
            fn any_bytes_of_any_type_read_back(code in prop::sample::select(CODES), data in vec(any::<u8>(), 0..48)) {
                reads_back(code, &data)?;
            }

            #[test]
            fn random_tokens_never_panic_and_what_parses_prints_back(
                code in prop::sample::select(CODES),
                words in vec(("[-0-9a-zA-Z.=,\\\\#:\"]{0,12}", any::<bool>()), 0..8),
            ) {
                let tokens: Vec<Token<'_>> = words.iter().map(|(w, q)| Token { text: w.as_bytes(), quoted: *q }).collect();
                let mut out = vec![0xaa];
                if rdata_from_text(code, &tokens, ORIGIN, &mut out).is_ok() {
                    reads_back(code, &out[1..])?;
                } else {
                    prop_assert_eq!(out, vec![0xaa]);
                }
            }
        }
    }
}
