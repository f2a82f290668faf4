//! Behaviour tests of the answer core on zones built in memory.

use std::path::Path;
use std::sync::Arc;

use super::query::{FLAG_AA, FLAG_TC, rcode};
use super::{Transport, respond};
use crate::zone::rr::rtype;
use crate::zone::{Name, ZoneBuilder, ZoneEntry, ZoneSet};

fn wire(name: &str) -> Vec<u8> {
    Name::parse(name).unwrap().as_wire().to_vec()
}

fn soa_rdata() -> Vec<u8> {
    let mut r = wire("ns1.example.test.");
    r.extend(wire("admin.example.test."));
    for v in [1u32, 3600, 600, 86400, 300] {
        r.extend(v.to_be_bytes());
    }
    r
}

fn mx(pref: u16, name: &str) -> Vec<u8> {
    let mut r = pref.to_be_bytes().to_vec();
    r.extend(wire(name));
    r
}

fn zone_set() -> ZoneSet {
    let apex = Name::parse("example.test.").unwrap();
    let mut b = ZoneBuilder::new(&apex);
    let file = Path::new("test.zone");
    let mut add = |owner: &str, code: u16, ttl: u32, data: Vec<u8>| {
        let owner = wire(owner);
        let record = crate::zone::master::MasterRecord {
            owner: &owner,
            class: 1,
            rtype: code,
            ttl,
            rdata: &data,
            file,
            line: 1,
        };
        b.add(&record).unwrap();
    };
    add("example.test.", rtype::SOA, 3600, soa_rdata());
    add("example.test.", rtype::NS, 3600, wire("ns1.example.test."));
    add(
        "example.test.",
        rtype::MX,
        3600,
        mx(10, "mail.example.test."),
    );
    add("ns1.example.test.", rtype::A, 3600, vec![192, 0, 2, 1]);
    add("mail.example.test.", rtype::A, 3600, vec![192, 0, 2, 2]);
    add("www.example.test.", rtype::A, 300, vec![192, 0, 2, 3]);
    add(
        "alias.example.test.",
        rtype::CNAME,
        300,
        wire("www.example.test."),
    );
    add(
        "out.example.test.",
        rtype::CNAME,
        300,
        wire("www.elsewhere.test."),
    );
    add(
        "loop1.example.test.",
        rtype::CNAME,
        300,
        wire("loop2.example.test."),
    );
    add(
        "loop2.example.test.",
        rtype::CNAME,
        300,
        wire("loop1.example.test."),
    );
    add("*.wild.example.test.", rtype::A, 300, vec![192, 0, 2, 9]);
    add("x.y.wild.example.test.", rtype::A, 300, vec![192, 0, 2, 10]);
    add(
        "sub.example.test.",
        rtype::NS,
        3600,
        wire("ns.sub.example.test."),
    );
    add("sub.example.test.", rtype::NS, 3600, wire("ns.other.test."));
    add("sub.example.test.", rtype::DS, 3600, vec![0, 1, 8, 2, 0xaa]);
    add("ns.sub.example.test.", rtype::A, 3600, vec![192, 0, 2, 53]);
    add(
        "dn.example.test.",
        rtype::DNAME,
        300,
        wire("www.example.test."),
    );
    for i in 0..40u8 {
        add("many.example.test.", rtype::A, 300, vec![198, 51, 100, i]);
    }
    let zone = b.finish().unwrap();
    ZoneSet::new(
        vec![ZoneEntry::primary(Arc::new(zone), Arc::default())],
        Arc::default(),
    )
}

fn query(name: &str, qtype: u16, edns: Option<(u16, u8)>) -> Vec<u8> {
    let mut p = vec![
        0xab,
        0xcd,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    // Keep the case as given so echoing can be checked.
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend(label.as_bytes());
    }
    out.push(0);
    p.extend(out);
    p.extend(qtype.to_be_bytes());
    p.extend(1u16.to_be_bytes());
    if let Some((size, version)) = edns {
        p.extend([0, 0, 41]);
        p.extend(size.to_be_bytes());
        p.extend([0, version, 0, 0, 0, 0]);
    }
    p
}

struct Reply {
    bytes: Vec<u8>,
}

impl Reply {
    fn flags(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }
    fn rcode(&self) -> u16 {
        self.flags() & 0xf
    }
    fn count(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.bytes[4 + 2 * i], self.bytes[5 + 2 * i]])
    }
    fn answers(&self) -> u16 {
        self.count(1)
    }
    fn authority(&self) -> u16 {
        self.count(2)
    }
    fn additional(&self) -> u16 {
        self.count(3)
    }
}

fn ask(zones: &ZoneSet, packet: &[u8], transport: Transport) -> Option<Reply> {
    let mut out = vec![0u8; 65535];
    let len = respond(packet, transport, zones, &mut out)?;
    out.truncate(len);
    Some(Reply { bytes: out })
}

fn udp(zones: &ZoneSet, name: &str, qtype: u16) -> Reply {
    ask(zones, &query(name, qtype, Some((1232, 0))), Transport::Udp).unwrap()
}

#[test]
fn exact_match_is_authoritative_and_echoes_question_case() {
    let zones = zone_set();
    let r = udp(&zones, "WwW.Example.TEST.", rtype::A);
    assert_eq!(r.rcode(), rcode::NOERROR);
    assert_ne!(r.flags() & FLAG_AA, 0);
    assert_eq!(r.answers(), 1);
    assert_eq!(&r.bytes[13..16], b"WwW");
    assert_eq!(
        &r.bytes[r.bytes.len() - 11 - 4..r.bytes.len() - 11],
        &[192, 0, 2, 3]
    );
    assert_eq!(
        zones.entries()[0]
            .stats
            .queries
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn missing_name_is_nxdomain_with_soa_at_negative_ttl() {
    let zones = zone_set();
    let r = udp(&zones, "nope.example.test.", rtype::A);
    assert_eq!(r.rcode(), rcode::NXDOMAIN);
    assert_eq!((r.answers(), r.authority()), (0, 1));
    // SOA TTL 3600, MINIMUM 300: the negative TTL is 300.
    let needle = 300u32.to_be_bytes();
    assert!(r.bytes.windows(4).any(|w| w == needle));
}

#[test]
fn existing_name_without_the_type_is_nodata() {
    let zones = zone_set();
    let r = udp(&zones, "www.example.test.", rtype::AAAA);
    assert_eq!(
        (r.rcode(), r.answers(), r.authority()),
        (rcode::NOERROR, 0, 1)
    );
}

#[test]
fn cname_chain_is_followed_inside_the_zone() {
    let zones = zone_set();
    let r = udp(&zones, "alias.example.test.", rtype::A);
    assert_eq!((r.rcode(), r.answers()), (rcode::NOERROR, 2));
    let r = udp(&zones, "out.example.test.", rtype::A);
    assert_eq!((r.rcode(), r.answers()), (rcode::NOERROR, 1));
}

#[test]
fn cname_loop_stops() {
    let zones = zone_set();
    let r = udp(&zones, "loop1.example.test.", rtype::A);
    assert_eq!((r.rcode(), r.answers()), (rcode::NOERROR, 2));
}

#[test]
fn wildcard_synthesises_but_not_below_existing_names() {
    let zones = zone_set();
    let r = udp(&zones, "a.b.wild.example.test.", rtype::A);
    assert_eq!((r.rcode(), r.answers()), (rcode::NOERROR, 1));
    // y.wild exists as an empty non-terminal: no wildcard match below it.
    let r = udp(&zones, "z.y.wild.example.test.", rtype::A);
    assert_eq!(r.rcode(), rcode::NXDOMAIN);
    let r = udp(&zones, "y.wild.example.test.", rtype::A);
    assert_eq!((r.rcode(), r.answers()), (rcode::NOERROR, 0));
}

#[test]
fn delegation_gives_referral_with_glue_and_ds_is_authoritative() {
    let zones = zone_set();
    let r = udp(&zones, "host.sub.example.test.", rtype::A);
    assert_eq!(r.rcode(), rcode::NOERROR);
    assert_eq!(r.flags() & FLAG_AA, 0);
    assert_eq!((r.answers(), r.authority()), (0, 2));
    assert_eq!(r.additional(), 2, "glue A + OPT");
    let r = udp(&zones, "sub.example.test.", rtype::DS);
    assert_ne!(r.flags() & FLAG_AA, 0);
    assert_eq!(r.answers(), 1);
}

#[test]
fn dname_synthesises_a_cname() {
    let zones = zone_set();
    let r = udp(&zones, "x.dn.example.test.", rtype::A);
    // DNAME + synthesised CNAME; x.www.example.test. does not exist.
    assert_eq!(r.answers(), 2);
    assert_eq!(r.rcode(), rcode::NXDOMAIN);
}

#[test]
fn large_rrset_without_edns_is_truncated() {
    let zones = zone_set();
    let r = ask(
        &zones,
        &query("many.example.test.", rtype::A, None),
        Transport::Udp,
    )
    .unwrap();
    assert_ne!(r.flags() & FLAG_TC, 0);
    assert!(r.bytes.len() <= 512);
    let r = ask(
        &zones,
        &query("many.example.test.", rtype::A, None),
        Transport::Tcp,
    )
    .unwrap();
    assert_eq!((r.flags() & FLAG_TC, r.answers()), (0, 40));
}

#[test]
fn outside_our_zones_is_refused() {
    let zones = zone_set();
    let r = udp(&zones, "www.other.test.", rtype::A);
    assert_eq!((r.rcode(), r.flags() & FLAG_AA), (rcode::REFUSED, 0));
}

#[test]
fn edns_version_1_is_badvers() {
    let zones = zone_set();
    let r = ask(
        &zones,
        &query("www.example.test.", rtype::A, Some((1232, 1))),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(r.rcode(), 0);
    assert_eq!(r.answers(), 0);
    // OPT: extended RCODE 1 => BADVERS (16).
    let opt = &r.bytes[r.bytes.len() - 11..];
    assert_eq!((opt[2], opt[5]), (41, 1));
}

#[test]
fn responses_are_ignored() {
    let zones = zone_set();
    let mut p = query("www.example.test.", rtype::A, None);
    p[2] |= 0x80;
    assert!(ask(&zones, &p, Transport::Udp).is_none());
}

#[test]
fn mx_answer_carries_target_address() {
    let zones = zone_set();
    let r = udp(&zones, "example.test.", rtype::MX);
    assert_eq!((r.answers(), r.additional()), (1, 2));
}

/// Decodes a possibly compressed name at `pos`, checking every pointer goes
/// backwards; returns the lowercase uncompressed name and the end offset.
fn decode_name(msg: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        if len & 0xc0 == 0xc0 {
            let target = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(pos + 1)?]));
            if target >= pos {
                return None;
            }
            end.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        let n = usize::from(len);
        out.push(len);
        out.extend(msg.get(pos + 1..pos + 1 + n)?.to_ascii_lowercase());
        pos += 1 + n;
        if n == 0 {
            return Some((out, end.unwrap_or(pos)));
        }
    }
    None
}

/// Walks every section of a response; returns the records as (owner, type,
/// rdata length) or None when the message is malformed.
fn walk(msg: &[u8]) -> Option<Vec<(Vec<u8>, u16)>> {
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]));
    let mut pos = 12;
    for _ in 0..count(0) {
        pos = decode_name(msg, pos)?.1 + 4;
    }
    let mut records = Vec::new();
    for _ in 0..count(1) + count(2) + count(3) {
        let (owner, end) = decode_name(msg, pos)?;
        let fixed = msg.get(end..end + 10)?;
        let code = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if let Some(layout) = crate::zone::rr::name_layout(code) {
            let mut at = end + 10 + layout.prefix;
            for _ in 0..layout.names {
                at = decode_name(msg, at)?.1;
            }
            if at > end + 10 + rdlen {
                return None;
            }
        }
        pos = end + 10 + rdlen;
        records.push((owner, code));
    }
    (pos == msg.len()).then_some(records)
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("www".to_string()),
            Just("WwW".to_string()),
            Just("*".to_string()),
            Just("wild".to_string()),
            Just("sub".to_string()),
            Just("dn".to_string()),
            Just("many".to_string()),
            Just("loop1".to_string()),
            Just("alias".to_string()),
            "[a-zA-Z0-9-]{1,12}",
        ]
    }

    fn qname() -> impl Strategy<Value = String> {
        (proptest::collection::vec(label(), 0..4), any::<bool>()).prop_map(|(labels, ours)| {
            let mut name = labels.join(".");
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(if ours { "Example.Test." } else { "other.test." });
            name
        })
    }

    fn qtype() -> impl Strategy<Value = u16> {
        prop_oneof![
            Just(rtype::A),
            Just(rtype::AAAA),
            Just(rtype::NS),
            Just(rtype::SOA),
            Just(rtype::MX),
            Just(rtype::CNAME),
            Just(rtype::DS),
            Just(rtype::ANY),
            Just(rtype::DNAME),
            any::<u16>(),
        ]
    }

    proptest! {
        #[test]
        fn every_answer_is_well_formed_and_echoes_the_question(
            name in qname(),
            code in qtype(),
            edns in proptest::option::of((0u16..5000, 0u8..2)),
            tcp in any::<bool>(),
        ) {
            let zones = zone_set();
            let packet = query(&name, code, edns);
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            let reply = ask(&zones, &packet, transport).expect("a query gets an answer");
            prop_assert_eq!(&reply.bytes[..2], &packet[..2]);
            let question_len = packet.len() - if edns.is_some() { 11 } else { 0 };
            prop_assert_eq!(&reply.bytes[12..question_len], &packet[12..question_len]);
            let limit = match (tcp, edns) {
                (true, _) => 65535,
                (false, None) => 512,
                (false, Some((size, _))) => usize::from(size.clamp(512, 1232)),
            };
            prop_assert!(reply.bytes.len() <= limit);
            prop_assert!(walk(&reply.bytes).is_some(), "malformed response {:?}", reply.bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let zones = zone_set();
            if let Some(reply) = ask(&zones, &data, Transport::Udp) {
                prop_assert!(reply.bytes.len() >= 12 && reply.bytes.len() <= 1232);
            }
        }
    }
}

mod secondaries {
    use super::*;
    use crate::dns::respond_from;
    use crate::zone::SecondaryControl;
    use std::net::{IpAddr, Ipv4Addr};

    const MASTER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99));

    fn secondary_set() -> (ZoneSet, Arc<SecondaryControl>) {
        let set = zone_set();
        let control = Arc::new(SecondaryControl::new(vec![MASTER]));
        let mut entry = set.entries()[0].clone();
        entry.secondary = Some(control.clone());
        (ZoneSet::new(vec![entry], Arc::default()), control)
    }

    fn notify_packet(serial: u32) -> Vec<u8> {
        let mut p = query("example.test.", rtype::SOA, None);
        p[2] = 0x20; // opcode 4
        p[7] = 1; // ANCOUNT 1
        p.extend([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 60]);
        let mut soa = soa_rdata();
        let at = soa.len() - 20;
        soa[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        p.extend((soa.len() as u16).to_be_bytes());
        p.extend(soa);
        p
    }

    fn ask_from(zones: &ZoneSet, packet: &[u8], peer: IpAddr) -> Reply {
        let mut out = vec![0u8; 65535];
        let len = respond_from(packet, Transport::Udp, Some(peer), zones, &mut out).unwrap();
        out.truncate(len);
        Reply { bytes: out }
    }

    #[test]
    fn expired_secondary_answers_servfail_until_installed() {
        let (zones, control) = secondary_set();
        assert_eq!(
            udp(&zones, "www.example.test.", rtype::A).rcode(),
            rcode::SERVFAIL
        );
        control.set_expired(false);
        assert_eq!(
            udp(&zones, "www.example.test.", rtype::A).rcode(),
            rcode::NOERROR
        );
    }

    #[test]
    fn notify_from_a_master_is_accepted_and_carries_its_serial() {
        let (zones, control) = secondary_set();
        let r = ask_from(&zones, &notify_packet(42), MASTER);
        assert_eq!(r.rcode(), rcode::NOERROR);
        assert_ne!(r.flags() & FLAG_AA, 0);
        assert_eq!((r.flags() >> 11) & 0xf, 4, "opcode echoed");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(control.notified()), Some(42));
    }

    #[test]
    fn notify_from_an_unlisted_address_is_refused() {
        let (zones, control) = secondary_set();
        let r = ask_from(&zones, &notify_packet(42), STRANGER);
        assert_eq!(r.rcode(), rcode::REFUSED);
        assert_eq!(
            control
                .notifies_refused
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(
            control
                .notifies_accepted
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn notify_for_a_primary_zone_is_notauth() {
        let zones = zone_set();
        let r = ask_from(&zones, &notify_packet(42), MASTER);
        assert_eq!(r.rcode(), rcode::NOTAUTH);
    }
}

mod signed_queries {
    use super::*;
    use crate::dns::respond_at;
    use crate::xfr::tsig::{ResponseVerifier, TsigAlgorithm, TsigKey, sign_request};

    const NOW: u64 = 1_795_436_000;

    fn key(secret: u8) -> Arc<TsigKey> {
        let name = Name::parse("xfr-key.").unwrap();
        Arc::new(TsigKey::new(
            &name,
            TsigAlgorithm::HmacSha256,
            vec![secret; 32],
        ))
    }

    fn signed_set() -> ZoneSet {
        zone_set().with_tsig_keys(Arc::new(vec![key(7)]))
    }

    #[test]
    fn a_signed_query_gets_a_signed_answer() {
        let zones = signed_set();
        let mut packet = query("example.test.", rtype::SOA, None);
        let mac = sign_request(&key(7), &mut packet, NOW).unwrap();
        let mut out = vec![0u8; 65535];
        let len = respond_at(&packet, Transport::Udp, None, &zones, NOW, &mut out).unwrap();
        let mut verifier = ResponseVerifier::new(&key(7), mac);
        verifier
            .verify(&out[..len], NOW)
            .expect("answer signed with the query's key");
        verifier.finish().unwrap();
        assert_eq!(out[3] & 0xf, rcode::NOERROR as u8);
    }

    #[test]
    fn a_query_signed_with_a_wrong_secret_gets_notauth() {
        let zones = signed_set();
        let mut packet = query("example.test.", rtype::SOA, None);
        sign_request(&key(8), &mut packet, NOW).unwrap();
        let mut out = vec![0u8; 65535];
        let len = respond_at(&packet, Transport::Udp, None, &zones, NOW, &mut out).unwrap();
        assert_eq!(out[3] & 0xf, rcode::NOTAUTH as u8);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 0, "no answer data");
        assert!(len > 12);
    }
}
