//! NOTIFY with TSIG (RFC 1996, RFC 8945): a master that has a key must sign
//! its NOTIFY with it; a signed NOTIFY gets a signed answer; TSIG failures
//! get NOTAUTH with the TSIG error.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::query::{FLAG_AA, rcode};
use super::{Transport, respond_at};
use crate::xfr::tsig::{ResponseVerifier, TsigAlgorithm, TsigError, TsigKey, sign_request};
use crate::zone::master::MasterRecord;
use crate::zone::rr::rtype;
use crate::zone::{Name, SecondaryControl, ZoneBuilder, ZoneEntry, ZoneSet};

const NOW: u64 = 1_790_000_000;
/// A master with a key.
const SIGNING_MASTER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// A master without a key.
const PLAIN_MASTER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// A `notify_from` address.
const NOTIFIER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99));

fn key(name: &str, secret: &[u8]) -> TsigKey {
    TsigKey::new(
        &Name::parse(name).unwrap(),
        TsigAlgorithm::HmacSha256,
        secret.to_vec(),
    )
}

fn master_key() -> TsigKey {
    key("xfr-key.", b"the master's secret")
}

fn soa_rdata(serial: u32) -> Vec<u8> {
    let mut r = Name::parse("ns1.example.test.").unwrap().as_wire().to_vec();
    r.extend(Name::parse("admin.example.test.").unwrap().as_wire());
    for v in [serial, 3600, 600, 86400, 300] {
        r.extend(v.to_be_bytes());
    }
    r
}

/// `example.test.` as a secondary zone, its masters 127.0.0.2 (with
/// `xfr-key.`) and 127.0.0.3 (without), plus `notify_from` 127.0.0.4.
fn secondary_set() -> (ZoneSet, Arc<SecondaryControl>) {
    let apex = Name::parse("example.test.").unwrap();
    let mut builder = ZoneBuilder::new(&apex);
    let owner = apex.as_wire().to_vec();
    for (code, data) in [
        (rtype::SOA, soa_rdata(1)),
        (
            rtype::NS,
            Name::parse("ns1.example.test.").unwrap().as_wire().to_vec(),
        ),
    ] {
        let record = MasterRecord {
            owner: &owner,
            class: 1,
            rtype: code,
            ttl: 3600,
            rdata: &data,
            file: Path::new("test.zone"),
            line: 1,
        };
        builder.add(&record).unwrap();
    }
    let control = Arc::new(
        SecondaryControl::new(vec![SIGNING_MASTER, PLAIN_MASTER, NOTIFIER])
            .with_master_keys(vec![(SIGNING_MASTER, Arc::new(master_key()))]),
    );
    let entry = ZoneEntry {
        zone: Arc::new(builder.finish().unwrap()),
        stats: Arc::default(),
        secondary: Some(control.clone()),
    };
    (ZoneSet::new(vec![entry], Arc::default()), control)
}

/// A NOTIFY for `example.test.` carrying a SOA with `serial`.
fn notify_packet(serial: u32) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x20, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    p.extend(Name::parse("example.test.").unwrap().as_wire());
    p.extend(rtype::SOA.to_be_bytes());
    p.extend(1u16.to_be_bytes());
    p.extend([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 60]);
    let soa = soa_rdata(serial);
    p.extend((soa.len() as u16).to_be_bytes());
    p.extend(soa);
    p
}

/// A NOTIFY signed with `key` at `at`, and its request MAC.
fn signed_notify(key: &TsigKey, at: u64) -> (Vec<u8>, Vec<u8>) {
    let mut packet = notify_packet(42);
    let mac = sign_request(key, &mut packet, at).unwrap();
    (packet, mac)
}

fn ask(zones: &ZoneSet, packet: &[u8], peer: IpAddr, now: u64) -> Vec<u8> {
    let mut out = vec![0u8; 65535];
    let len = respond_at(packet, Transport::Udp, Some(peer), zones, now, &mut out).unwrap();
    out.truncate(len);
    out
}

fn rcode_of(answer: &[u8]) -> u16 {
    u16::from_be_bytes([answer[2], answer[3]]) & 0xf
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The serial the refresh task was woken with, or `None` if never woken.
fn woken_with(control: &SecondaryControl) -> Option<Option<u32>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(50), control.notified())
            .await
            .ok()
    })
}

#[test]
fn signed_notify_from_a_keyed_master_is_accepted_with_a_signed_answer() {
    let (zones, control) = secondary_set();
    let (packet, mac) = signed_notify(&master_key(), NOW);
    let answer = ask(&zones, &packet, SIGNING_MASTER, NOW + 5);
    assert_eq!(rcode_of(&answer), rcode::NOERROR);
    assert_ne!(u16::from_be_bytes([answer[2], answer[3]]) & FLAG_AA, 0);
    let mut verifier = ResponseVerifier::new(&master_key(), mac);
    verifier.verify(&answer, NOW + 5).expect("a signed answer");
    verifier.finish().unwrap();
    assert_eq!(woken_with(&control), Some(Some(42)));
    assert_eq!(count(&control.notifies_accepted), 1);
}

#[test]
fn unsigned_notify_from_a_keyed_master_is_refused() {
    let (zones, control) = secondary_set();
    let answer = ask(&zones, &notify_packet(42), SIGNING_MASTER, NOW);
    assert_eq!(rcode_of(&answer), rcode::REFUSED);
    assert_eq!(woken_with(&control), None);
    assert_eq!(count(&control.notifies_refused), 1);
    assert_eq!(count(&control.notifies_accepted), 0);
}

#[test]
fn notify_with_a_wrong_secret_is_notauth_badsig() {
    let (zones, control) = secondary_set();
    let forged = key("xfr-key.", b"not the master's secret");
    let (packet, mac) = signed_notify(&forged, NOW);
    let answer = ask(&zones, &packet, SIGNING_MASTER, NOW);
    assert_eq!(rcode_of(&answer), rcode::NOTAUTH);
    let mut verifier = ResponseVerifier::new(&forged, mac);
    assert_eq!(verifier.verify(&answer, NOW), Err(TsigError::PeerBadSig));
    assert_eq!(woken_with(&control), None);
    assert_eq!(count(&control.notifies_refused), 1);
}

#[test]
fn notify_signed_with_another_key_is_notauth_badkey() {
    let (zones, control) = secondary_set();
    let other = key("other-key.", b"the master's secret");
    let (packet, mac) = signed_notify(&other, NOW);
    let answer = ask(&zones, &packet, SIGNING_MASTER, NOW);
    assert_eq!(rcode_of(&answer), rcode::NOTAUTH);
    let mut verifier = ResponseVerifier::new(&other, mac);
    assert!(matches!(
        verifier.verify(&answer, NOW),
        Err(TsigError::PeerBadKey { .. })
    ));
    assert_eq!(woken_with(&control), None);
}

#[test]
fn notify_from_a_skewed_clock_is_notauth_badtime_signed() {
    let (zones, control) = secondary_set();
    let (packet, mac) = signed_notify(&master_key(), NOW - 3600);
    let answer = ask(&zones, &packet, SIGNING_MASTER, NOW);
    assert_eq!(rcode_of(&answer), rcode::NOTAUTH);
    let mut verifier = ResponseVerifier::new(&master_key(), mac);
    assert_eq!(
        verifier.verify(&answer, NOW - 3600),
        Err(TsigError::PeerBadTime { peer_time: NOW })
    );
    assert_eq!(woken_with(&control), None);
}

#[test]
fn masters_without_a_key_and_notify_from_need_no_signature() {
    let (zones, control) = secondary_set();
    let answer = ask(&zones, &notify_packet(42), PLAIN_MASTER, NOW);
    assert_eq!(rcode_of(&answer), rcode::NOERROR);
    assert_eq!(woken_with(&control), Some(Some(42)));
    // Signed anyway with a key the zone knows: accepted, answered signed.
    let (packet, mac) = signed_notify(&master_key(), NOW);
    let answer = ask(&zones, &packet, NOTIFIER, NOW);
    assert_eq!(rcode_of(&answer), rcode::NOERROR);
    let mut verifier = ResponseVerifier::new(&master_key(), mac);
    verifier.verify(&answer, NOW).expect("a signed answer");
}

#[test]
fn a_valid_signature_does_not_admit_an_unlisted_source() {
    let (zones, control) = secondary_set();
    let (packet, _) = signed_notify(&master_key(), NOW);
    let answer = ask(&zones, &packet, STRANGER, NOW);
    assert_eq!(rcode_of(&answer), rcode::REFUSED);
    assert_eq!(woken_with(&control), None);
}

#[test]
fn mangled_signed_notifies_never_panic() {
    let (zones, _) = secondary_set();
    let (packet, _) = signed_notify(&master_key(), NOW);
    for i in 0..packet.len() {
        let mut bad = packet.clone();
        bad[i] ^= 0x5a;
        let mut out = vec![0u8; 65535];
        let _ = respond_at(
            &bad,
            Transport::Udp,
            Some(SIGNING_MASTER),
            &zones,
            NOW,
            &mut out,
        );
        let _ = respond_at(
            &packet[..i],
            Transport::Tcp,
            Some(SIGNING_MASTER),
            &zones,
            NOW,
            &mut out,
        );
    }
}
