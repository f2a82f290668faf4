//! The sans-IO DNS core: query bytes + a zone set in, response bytes out.
//!
//! Nothing here does I/O, takes a lock or allocates per query; UDP, TCP and
//! any other transport are thin layers that call [`respond`].

mod answer;
pub mod query;
pub mod writer;

use query::{FLAG_QR, FLAG_RD, Query, Reject, opcode, rcode};
use writer::{OPT_LEN, Writer};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::xfr::tsig::{
    ResponseSigner, TsigError, TsigKey, tsig_error_answer, unix_now, verify_request,
};
use crate::zone::rr::{class, rtype};
use crate::zone::{SecondaryControl, ZoneEntry, ZoneSet};

/// The transport a query arrived on; it decides the size limit of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: answers are limited to 512 bytes, or the EDNS size (capped by ours).
    Udp,
    /// TCP (RFC 7766): answers up to 65535 bytes.
    Tcp,
}

/// Turns one query into its response, written at the start of `out`.
/// Returns the response length, or `None` when the packet must be ignored
/// (a response, or too short to carry a header). `out` should be 65535 bytes
/// for TCP; for UDP at least 4096.
pub fn respond(
    packet: &[u8],
    transport: Transport,
    zones: &ZoneSet,
    out: &mut [u8],
) -> Option<usize> {
    respond_from(packet, transport, None, zones, out)
}

/// [`respond`] knowing the client's address (`peer`): NOTIFY is accepted
/// only from a secondary zone's masters and `notify_from` addresses, signed
/// with TSIG when the master has a key. The system clock is read only for a
/// NOTIFY (TSIG times).
pub fn respond_from(
    packet: &[u8],
    transport: Transport,
    peer: Option<IpAddr>,
    zones: &ZoneSet,
    out: &mut [u8],
) -> Option<usize> {
    respond_with_clock(packet, transport, peer, zones, None, out)
}

/// [`respond_from`] with the clock given: `now` is the time in seconds since
/// the Unix epoch that TSIG checks and signatures use.
pub fn respond_at(
    packet: &[u8],
    transport: Transport,
    peer: Option<IpAddr>,
    zones: &ZoneSet,
    now: u64,
    out: &mut [u8],
) -> Option<usize> {
    respond_with_clock(packet, transport, peer, zones, Some(now), out)
}

/// The body of [`respond_from`] and [`respond_at`]; `now: None` reads the
/// system clock when needed.
fn respond_with_clock(
    packet: &[u8],
    transport: Transport,
    peer: Option<IpAddr>,
    zones: &ZoneSet,
    now: Option<u64>,
    out: &mut [u8],
) -> Option<usize> {
    let (query, question_end) = match query::parse_query(packet) {
        Ok(parsed) => parsed,
        Err(Reject::Ignore) => return None,
        Err(Reject::Error {
            rcode,
            question_end,
        }) => {
            zones.unmatched.record_error(rcode);
            // Over TCP a message whose question cannot be read gets no answer
            // (the connection is closed), as Knot does; over UDP, FORMERR.
            if transport == Transport::Tcp
                && question_end.is_none()
                && rcode == query::rcode::FORMERR
            {
                return None;
            }
            return Some(error_response(packet, question_end, rcode, out));
        }
    };
    let limit = size_limit(&query, transport, zones.udp_payload, out.len());
    let mut w = Writer::new(out, limit);
    let flags = FLAG_QR | (query.flags & (0x7800 | FLAG_RD));
    // A 12-byte header and a question of at most 259 bytes always fit in 512.
    w.header(query.id, flags).ok()?;
    w.question(query.qname(), query.qtype, query.qclass).ok()?;
    if let Some(edns) = query.edns {
        w.set_limit(limit - OPT_LEN);
        if edns.version != 0 {
            zones.unmatched.record_error(rcode::BADVERS);
            return Some(finish(w, &query, rcode::BADVERS, zones.udp_payload));
        }
    }
    if query.opcode == opcode::NOTIFY {
        let now = now.unwrap_or_else(unix_now);
        let notified = Notified {
            packet,
            question_end,
            peer,
            now,
        };
        let (rcode, tsig) = notify(&query, &notified, zones, &mut w);
        let len = finish(w, &query, rcode, zones.udp_payload);
        return Some(answer_tsig(packet, tsig, out, len, limit, now));
    }
    // A signed query (e.g. a secondary's SOA check) gets a signed answer, or
    // a TSIG error answer when the signature does not verify (RFC 8945 §5.2).
    let tsig = if query.signed {
        let now = now.unwrap_or_else(unix_now);
        match verify_request(&zones.tsig_keys, packet, now) {
            Ok(Some((key, mac))) => Some((AnswerTsig::Sign(key, mac), now)),
            Ok(None) => None,
            Err(error) => {
                zones.unmatched.record_error(rcode::NOTAUTH);
                let len = finish(w, &query, rcode::NOTAUTH, zones.udp_payload);
                let keys = zones.tsig_keys.as_ref().clone();
                return Some(answer_tsig(
                    packet,
                    AnswerTsig::Error(keys, error),
                    out,
                    len,
                    limit,
                    now,
                ));
            }
        }
    } else {
        None
    };
    let rcode = match classify(&query, transport) {
        Some(rcode) => {
            zones.unmatched.record(query.qtype, rcode);
            rcode
        }
        None => match zones.find(query.lower_qname(), query.qtype) {
            Some(entry) if entry.is_expired() => {
                entry.stats.record(query.qtype, rcode::SERVFAIL);
                rcode::SERVFAIL
            }
            Some(entry) => {
                let rcode = answer::answer(&entry.zone, &query, &mut w);
                entry.stats.record(query.qtype, rcode);
                rcode
            }
            None => {
                zones.unmatched.record(query.qtype, rcode::REFUSED);
                rcode::REFUSED
            }
        },
    };
    let len = finish(w, &query, rcode, zones.udp_payload);
    match tsig {
        Some((tsig, now)) => Some(answer_tsig(packet, tsig, out, len, limit, now)),
        None => Some(len),
    }
}

/// Decides queries that are not looked up in a zone: NOTIFY, other classes
/// and zone transfers. `None` means: look it up. Meta types other than the
/// transfer types get NODATA from the lookup, as NSD and Knot give.
fn classify(query: &Query, transport: Transport) -> Option<u16> {
    if query.qclass != class::IN && query.qclass != class::ANY {
        return Some(rcode::REFUSED);
    }
    match (query.qtype, transport) {
        (rtype::AXFR, Transport::Udp) => Some(rcode::NOTIMP),
        // No zone allows transfers yet: not authoritative for transfers.
        (rtype::AXFR | rtype::IXFR, _) => Some(rcode::NOTAUTH),
        _ => None,
    }
}

/// A NOTIFY as received: the whole message (TSIG covers all of it), where
/// its question ends, who sent it and when.
struct Notified<'a> {
    packet: &'a [u8],
    question_end: usize,
    peer: Option<IpAddr>,
    now: u64,
}

/// The TSIG an answer gets once written.
enum AnswerTsig {
    /// None: the request was unsigned (or never got that far).
    None,
    /// Signed with the request's key, chaining the request MAC.
    Sign(Arc<TsigKey>, Vec<u8>),
    /// The TSIG error answer to a request that failed verification against
    /// these keys.
    Error(Vec<Arc<TsigKey>>, TsigError),
}

/// A NOTIFY (RFC 1996): accepted for a secondary zone from its masters and
/// `notify_from` addresses; a master that has a TSIG key must sign it with
/// that key (RFC 8945), and a signed NOTIFY gets a signed answer. Wakes the
/// zone's refresh task with the serial the NOTIFY carried.
fn notify(
    query: &Query,
    notified: &Notified<'_>,
    zones: &ZoneSet,
    w: &mut Writer<'_>,
) -> (u16, AnswerTsig) {
    let entry = zones
        .find(query.lower_qname(), rtype::SOA)
        .filter(|e| e.zone.apex().as_wire() == query.lower_qname());
    let Some((entry, control)) = entry.and_then(|e| Some((e, e.secondary.as_ref()?))) else {
        zones.unmatched.record(query.qtype, rcode::NOTAUTH);
        return (rcode::NOTAUTH, AnswerTsig::None);
    };
    if query.qtype != rtype::SOA {
        entry.stats.record(query.qtype, rcode::FORMERR);
        return (rcode::FORMERR, AnswerTsig::None);
    }
    let Some(peer) = notified.peer.filter(|&peer| control.may_notify(peer)) else {
        control.notifies_refused.fetch_add(1, Ordering::Relaxed);
        entry.stats.record(query.qtype, rcode::REFUSED);
        return (rcode::REFUSED, AnswerTsig::None);
    };
    let allowed = control.notify_keys(peer);
    let tsig = match verify_request(&allowed.keys, notified.packet, notified.now) {
        Ok(Some((key, mac))) => AnswerTsig::Sign(key, mac),
        Ok(None) if allowed.required => {
            refuse_notify(entry, control, peer, &"the NOTIFY is not signed");
            return (rcode::REFUSED, AnswerTsig::None);
        }
        Ok(None) => AnswerTsig::None,
        Err(error) => {
            refuse_notify(entry, control, peer, &error);
            let rcode = match error.request_error_code() {
                Some(_) => rcode::NOTAUTH,
                None => rcode::FORMERR,
            };
            return (rcode, AnswerTsig::Error(allowed.keys, error));
        }
    };
    control.notify(notified_serial(&notified.packet[notified.question_end..]));
    entry.stats.record(query.qtype, rcode::NOERROR);
    w.set_flags(w.flags() | query::FLAG_AA);
    (rcode::NOERROR, tsig)
}

/// Counts a NOTIFY refused for its TSIG, and logs it on the first refusal
/// and then at every power of two: a forged source could otherwise flood
/// the log.
fn refuse_notify(
    entry: &ZoneEntry,
    control: &SecondaryControl,
    peer: IpAddr,
    why: &dyn std::fmt::Display,
) {
    let refused = control.notifies_refused.fetch_add(1, Ordering::Relaxed) + 1;
    entry.stats.record(rtype::SOA, rcode::REFUSED);
    if refused.is_power_of_two() {
        tracing::warn!(
            zone = %entry.zone.apex(),
            %peer,
            refused,
            "NOTIFY refused: {why}"
        );
    }
}

/// Adds the TSIG `tsig` calls for to the answer in `out[..len]`; returns the
/// new length. An answer that would no longer fit in `limit` stays as it is.
fn answer_tsig(
    request: &[u8],
    tsig: AnswerTsig,
    out: &mut [u8],
    len: usize,
    limit: usize,
    now: u64,
) -> usize {
    let mut answer = out[..len].to_vec();
    let added = match tsig {
        AnswerTsig::None => return len,
        AnswerTsig::Sign(key, mac) => ResponseSigner::new(&key, mac).sign(&mut answer, now),
        AnswerTsig::Error(keys, error) => {
            tsig_error_answer(&keys, request, &error, &mut answer, now)
        }
    };
    match out.get_mut(..answer.len()) {
        Some(room) if added.is_ok() && answer.len() <= limit => {
            room.copy_from_slice(&answer);
            answer.len()
        }
        _ => len,
    }
}

/// The serial of the SOA in a NOTIFY's answer section, if it has one. `rest`
/// starts at the answer section; names may be compressed, so only the end of
/// the record is used: the serial sits 20 bytes before it.
fn notified_serial(rest: &[u8]) -> Option<u32> {
    let end_of_owner = query::skip_name(rest, 0)?;
    let fixed = rest.get(end_of_owner..end_of_owner + 10)?;
    if u16::from_be_bytes([fixed[0], fixed[1]]) != rtype::SOA {
        return None;
    }
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let end = end_of_owner + 10 + rdlen;
    let serial = rest.get(end.checked_sub(20)?..end.checked_sub(16)?)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// The largest response allowed for this query.
fn size_limit(query: &Query, transport: Transport, our_payload: u16, buffer: usize) -> usize {
    let limit = match (transport, query.edns) {
        (Transport::Tcp, _) => 65535,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(edns)) => usize::from(edns.payload.min(our_payload)).max(512),
    };
    limit.min(buffer)
}

/// Sets the RCODE, appends the OPT record when the query had EDNS, and
/// returns the message length.
fn finish(mut w: Writer<'_>, query: &Query, rcode: u16, our_payload: u16) -> usize {
    let flags = (w.flags() & !0x000f) | (rcode & 0x000f);
    w.set_flags(flags);
    if let Some(edns) = query.edns {
        let _ = w.opt(our_payload, (rcode >> 4) as u8, edns.dnssec_ok);
    }
    w.finish()
}

/// A header-only (or header + question) error response.
fn error_response(packet: &[u8], question_end: Option<usize>, rcode: u16, out: &mut [u8]) -> usize {
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    let flags = FLAG_QR | (flags & (0x7800 | FLAG_RD)) | (rcode & 0xf);
    out[..2].copy_from_slice(&packet[..2]);
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[4..12].fill(0);
    let Some(end) = question_end else {
        return 12;
    };
    let question = &packet[12..end];
    out[12..end].copy_from_slice(question);
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    end
}

#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod tests;
