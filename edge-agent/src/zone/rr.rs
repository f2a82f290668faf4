//! Record types, classes and the layout of record data.

use std::borrow::Cow;

/// Record type codes we know by name (IANA DNS parameters).
pub mod rtype {
    #![allow(missing_docs)]
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const RP: u16 = 17;
    pub const AFSDB: u16 = 18;
    pub const AAAA: u16 = 28;
    pub const LOC: u16 = 29;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const KX: u16 = 36;
    pub const CERT: u16 = 37;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const APL: u16 = 42;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const IPSECKEY: u16 = 45;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const DHCID: u16 = 49;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const TLSA: u16 = 52;
    pub const SMIMEA: u16 = 53;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
    pub const OPENPGPKEY: u16 = 61;
    pub const CSYNC: u16 = 62;
    pub const ZONEMD: u16 = 63;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const SPF: u16 = 99;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
    pub const URI: u16 = 256;
    pub const CAA: u16 = 257;
}

/// Class codes.
pub mod class {
    #![allow(missing_docs)]
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;
}

const MNEMONICS: &[(&str, u16)] = &[
    ("A", rtype::A),
    ("NS", rtype::NS),
    ("CNAME", rtype::CNAME),
    ("SOA", rtype::SOA),
    ("PTR", rtype::PTR),
    ("HINFO", rtype::HINFO),
    ("MX", rtype::MX),
    ("TXT", rtype::TXT),
    ("RP", rtype::RP),
    ("AFSDB", rtype::AFSDB),
    ("AAAA", rtype::AAAA),
    ("LOC", rtype::LOC),
    ("SRV", rtype::SRV),
    ("NAPTR", rtype::NAPTR),
    ("KX", rtype::KX),
    ("CERT", rtype::CERT),
    ("DNAME", rtype::DNAME),
    ("OPT", rtype::OPT),
    ("APL", rtype::APL),
    ("DS", rtype::DS),
    ("SSHFP", rtype::SSHFP),
    ("IPSECKEY", rtype::IPSECKEY),
    ("RRSIG", rtype::RRSIG),
    ("NSEC", rtype::NSEC),
    ("DNSKEY", rtype::DNSKEY),
    ("DHCID", rtype::DHCID),
    ("NSEC3", rtype::NSEC3),
    ("NSEC3PARAM", rtype::NSEC3PARAM),
    ("TLSA", rtype::TLSA),
    ("SMIMEA", rtype::SMIMEA),
    ("CDS", rtype::CDS),
    ("CDNSKEY", rtype::CDNSKEY),
    ("OPENPGPKEY", rtype::OPENPGPKEY),
    ("CSYNC", rtype::CSYNC),
    ("ZONEMD", rtype::ZONEMD),
    ("SVCB", rtype::SVCB),
    ("HTTPS", rtype::HTTPS),
    ("SPF", rtype::SPF),
    ("TKEY", rtype::TKEY),
    ("TSIG", rtype::TSIG),
    ("IXFR", rtype::IXFR),
    ("AXFR", rtype::AXFR),
    ("MAILB", rtype::MAILB),
    ("MAILA", rtype::MAILA),
    ("ANY", rtype::ANY),
    ("URI", rtype::URI),
    ("CAA", rtype::CAA),
];

/// The type code for a mnemonic (`A`, `aaaa`, `TYPE65534`), case-insensitive.
pub fn rtype_from_mnemonic(text: &[u8]) -> Option<u16> {
    if text.len() > 4 && text[..4].eq_ignore_ascii_case(b"TYPE") {
        return parse_u16_decimal(&text[4..]);
    }
    MNEMONICS
        .iter()
        .find(|(m, _)| m.as_bytes().eq_ignore_ascii_case(text))
        .map(|&(_, code)| code)
}

/// The mnemonic of a type code, `TYPEnnn` when it has none.
pub fn rtype_name(code: u16) -> Cow<'static, str> {
    match MNEMONICS.iter().find(|&&(_, c)| c == code) {
        Some((m, _)) => Cow::Borrowed(m),
        None => Cow::Owned(format!("TYPE{code}")),
    }
}

/// The class code for a mnemonic (`IN`, `CH`, `CLASS3`), case-insensitive.
pub fn class_from_mnemonic(text: &[u8]) -> Option<u16> {
    if text.len() > 5 && text[..5].eq_ignore_ascii_case(b"CLASS") {
        return parse_u16_decimal(&text[5..]);
    }
    match text.to_ascii_uppercase().as_slice() {
        b"IN" => Some(class::IN),
        b"CH" | b"CHAOS" => Some(class::CH),
        b"HS" => Some(class::HS),
        _ => None,
    }
}

fn parse_u16_decimal(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    u16::try_from(value).ok()
}

/// Meta types and pseudo types that may not appear as zone data.
pub fn is_meta_type(code: u16) -> bool {
    matches!(code, rtype::OPT | rtype::TKEY | rtype::TSIG) || (128..=255).contains(&code)
}

/// Where the embedded domain names of a record's data are, for additional
/// section processing and name compression on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameLayout {
    /// Bytes of fixed data before the first name.
    pub prefix: usize,
    /// How many names follow, back to back (SOA has two).
    pub names: usize,
    /// Whether these names may be compressed on output (RFC 3597 §4: only the
    /// RFC 1035 types).
    pub compress: bool,
}

/// The embedded-name layout of a type, for types whose names sit at a fixed
/// position. Types without names (or whose names we treat as opaque) give None.
pub fn name_layout(code: u16) -> Option<NameLayout> {
    let (prefix, names, compress) = match code {
        rtype::NS | rtype::CNAME | rtype::PTR => (0, 1, true),
        rtype::SOA => (0, 2, true),
        rtype::MX => (2, 1, true),
        rtype::DNAME => (0, 1, false),
        rtype::SRV => (6, 1, false),
        rtype::KX | rtype::AFSDB => (2, 1, false),
        rtype::RP => (0, 2, false),
        _ => return None,
    };
    Some(NameLayout {
        prefix,
        names,
        compress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_round_trip() {
        assert_eq!(rtype_from_mnemonic(b"aaaa"), Some(rtype::AAAA));
        assert_eq!(rtype_from_mnemonic(b"TYPE65534"), Some(65534));
        assert_eq!(rtype_from_mnemonic(b"TYPE65536"), None);
        assert_eq!(rtype_name(65534), "TYPE65534");
        assert_eq!(rtype_name(rtype::HTTPS), "HTTPS");
        assert_eq!(class_from_mnemonic(b"in"), Some(class::IN));
        assert_eq!(class_from_mnemonic(b"CLASS1"), Some(class::IN));
    }
}
