//! Authoritative answers from one zone: RFC 1034 §4.3.2 with negative
//! answers (RFC 2308), wildcards (RFC 4592), DNAME (RFC 6672), minimal ANY
//! (RFC 8482) and glue (RFC 9471).

use super::query::{FLAG_AA, FLAG_TC, Query, rcode};
use super::writer::{Full, Section, Writer};
use crate::zone::Zone;
use crate::zone::model::{FLAG_CNAME, FLAG_CUT, FLAG_WILDCARD_CHILD, NO_NODE, NodeId, RRset};
use crate::zone::name::{self, MAX_NAME_LEN};
use crate::zone::rr::{self, rtype};

/// Longest chain of CNAMEs (and DNAME-synthesised CNAMEs) followed.
const MAX_CHAIN: usize = 12;

/// Most names whose addresses go in the additional section.
const MAX_ADDED: usize = 32;

/// A name being resolved: lowercase wire form in a fixed buffer.
#[derive(Clone, Copy)]
struct Target {
    wire: [u8; MAX_NAME_LEN],
    len: usize,
}

impl Target {
    fn new(wire: &[u8]) -> Target {
        let mut target = Target {
            wire: [0; MAX_NAME_LEN],
            len: wire.len(),
        };
        for (dst, src) in target.wire.iter_mut().zip(wire) {
            *dst = src.to_ascii_lowercase();
        }
        target
    }

    fn as_wire(&self) -> &[u8] {
        &self.wire[..self.len]
    }
}

/// Fills the answer, authority and additional sections for a query that
/// falls in `zone`, and sets AA/TC in the header. Returns the RCODE.
pub(crate) fn answer(zone: &Zone, query: &Query, w: &mut Writer<'_>) -> u16 {
    let mut state = Resolution {
        zone,
        qtype: query.qtype,
        dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
        visited: [NO_NODE; MAX_CHAIN + 1],
        visited_len: 0,
        truncated: false,
        authoritative: true,
        added: [NO_NODE; MAX_ADDED],
        added_len: 0,
    };
    let rcode = state.run(query.lower_qname(), w);
    let mut flags = w.flags();
    if state.authoritative {
        flags |= FLAG_AA;
    }
    if state.truncated {
        flags |= FLAG_TC;
    }
    w.set_flags(flags);
    rcode
}

/// The state of one resolution inside a zone.
struct Resolution<'z> {
    zone: &'z Zone,
    qtype: u16,
    dnssec_ok: bool,
    visited: [NodeId; MAX_CHAIN + 1],
    visited_len: usize,
    truncated: bool,
    authoritative: bool,
    added: [NodeId; MAX_ADDED],
    added_len: usize,
}

/// What a step of the resolution decided.
// The large variant is deliberate: boxing it would allocate on the query path.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Stop with this RCODE.
    Done(u16),
    /// Follow a CNAME (real or synthesised) to this name.
    Follow(Target),
}

impl<'z> Resolution<'z> {
    fn run(&mut self, qname: &[u8], w: &mut Writer<'_>) -> u16 {
        let mut current = Target::new(qname);
        for _ in 0..=MAX_CHAIN {
            match self.step(&current, w) {
                Ok(Step::Done(rcode)) => return rcode,
                Ok(Step::Follow(next)) => {
                    if !name::is_subdomain(next.as_wire(), self.zone.apex().as_wire()) {
                        return rcode::NOERROR;
                    }
                    current = next;
                }
                Err(Full) => {
                    self.truncated = true;
                    return rcode::NOERROR;
                }
            }
        }
        rcode::NOERROR
    }

    /// Resolves one name of the chain.
    fn step(&mut self, current: &Target, w: &mut Writer<'_>) -> Result<Step, Full> {
        let zone = self.zone;
        let wire = current.as_wire();
        let (node_id, offset) = zone.closest_encloser(wire);
        let node = *zone.node(node_id);
        let exact = offset == 0;
        let guard = if node.guard != NO_NODE {
            node.guard
        } else if !exact && zone.rrset(node_id, rtype::DNAME).is_some() {
            node_id
        } else {
            NO_NODE
        };
        if guard != NO_NODE {
            let guard_node = *zone.node(guard);
            if guard_node.flags & FLAG_CUT != 0 {
                if exact && guard == node_id && self.qtype == rtype::DS {
                    return self.at_node(node_id, wire, w);
                }
                return self.referral(guard, w).map(Step::Done);
            }
            return self.dname(guard, wire, w);
        }
        if exact {
            return self.at_node(node_id, wire, w);
        }
        if node.flags & FLAG_WILDCARD_CHILD != 0 {
            let mut star = [0u8; MAX_NAME_LEN + 2];
            let encloser = zone.node_name(node_id);
            star[0] = 1;
            star[1] = b'*';
            star[2..2 + encloser.len()].copy_from_slice(encloser);
            if let Some(wildcard) = zone.find(&star[..2 + encloser.len()]) {
                return self.at_node(wildcard, wire, w);
            }
        }
        self.negative(w)?;
        Ok(Step::Done(rcode::NXDOMAIN))
    }

    /// Answers from the data of one node (the name itself or the wildcard
    /// that matched it); `owner` is the name the records are given.
    fn at_node(&mut self, id: NodeId, owner: &[u8], w: &mut Writer<'_>) -> Result<Step, Full> {
        let zone = self.zone;
        if self.visited[..self.visited_len].contains(&id) {
            // A CNAME loop: the chain so far is the answer.
            return Ok(Step::Done(rcode::NOERROR));
        }
        if self.visited_len < self.visited.len() {
            self.visited[self.visited_len] = id;
            self.visited_len += 1;
        }
        if self.qtype == rtype::ANY {
            return self.any(id, owner, w).map(Step::Done);
        }
        if let Some(set) = zone.rrset(id, self.qtype) {
            self.rrset(Section::Answer, owner, set, w)?;
            self.additional_for(set, w)?;
            return Ok(Step::Done(rcode::NOERROR));
        }
        let node = zone.node(id);
        if node.flags & FLAG_CNAME != 0
            && let Some(set) = zone.rrset(id, rtype::CNAME)
        {
            self.rrset(Section::Answer, owner, set, w)?;
            let target = zone.records(set).next().unwrap_or(&[0]);
            return Ok(Step::Follow(Target::new(target)));
        }
        self.negative(w)?;
        Ok(Step::Done(rcode::NOERROR))
    }

    /// RFC 8482: a minimal answer to ANY: one RRset of the name, or NODATA
    /// when it has none.
    fn any(&mut self, id: NodeId, owner: &[u8], w: &mut Writer<'_>) -> Result<u16, Full> {
        let zone = self.zone;
        let chosen = zone
            .rrsets(id)
            .iter()
            .find(|set| set.rtype != rtype::RRSIG)
            .copied();
        match chosen {
            Some(set) => {
                self.rrset(Section::Answer, owner, &set, w)?;
                self.additional_for(&set, w)?;
            }
            None => self.negative(w)?,
        }
        Ok(rcode::NOERROR)
    }

    /// A referral to the child zone at `cut`: NS in authority, glue in
    /// additional, AA cleared (unless the chain already gave an answer).
    fn referral(&mut self, cut: NodeId, w: &mut Writer<'_>) -> Result<u16, Full> {
        let zone = self.zone;
        if w.count(Section::Answer) == 0 {
            self.authoritative = false;
        }
        let owner = zone.node_name(cut);
        let Some(ns) = zone.rrset(cut, rtype::NS) else {
            return Ok(rcode::SERVFAIL);
        };
        self.rrset(Section::Authority, owner, ns, w)?;
        // DS (a signed delegation) only when the zone is signed and asked.
        if self.dnssec_ok
            && zone.rrset(zone.apex_id(), rtype::DNSKEY).is_some()
            && let Some(ds) = zone.rrset(cut, rtype::DS)
        {
            self.rrset(Section::Authority, owner, ds, w)?;
        }
        // RFC 9471: glue for names inside the delegated zone must fit, or TC.
        for target in zone.records(ns) {
            if name::is_subdomain(target, owner) {
                self.addresses(target, true, w)?;
            }
        }
        for target in zone.records(ns) {
            if !name::is_subdomain(target, owner) {
                self.addresses(target, false, w)?;
            }
        }
        Ok(rcode::NOERROR)
    }

    /// DNAME substitution at `owner_id` for `qname` below it (RFC 6672).
    fn dname(&mut self, owner_id: NodeId, qname: &[u8], w: &mut Writer<'_>) -> Result<Step, Full> {
        let zone = self.zone;
        let Some(set) = zone.rrset(owner_id, rtype::DNAME) else {
            return Ok(Step::Done(rcode::SERVFAIL));
        };
        let owner = zone.node_name(owner_id);
        self.rrset(Section::Answer, owner, set, w)?;
        let target = zone.records(set).next().unwrap_or(&[0]);
        let prefix = &qname[..qname.len() - owner.len()];
        if prefix.len() + target.len() > MAX_NAME_LEN {
            return Ok(Step::Done(rcode::YXDOMAIN));
        }
        let mut synthesised = [0u8; MAX_NAME_LEN];
        synthesised[..prefix.len()].copy_from_slice(prefix);
        synthesised[prefix.len()..prefix.len() + target.len()].copy_from_slice(target);
        let new_name = &synthesised[..prefix.len() + target.len()];
        w.record(Section::Answer, qname, rtype::CNAME, set.ttl, new_name)?;
        if self.qtype == rtype::CNAME {
            // The synthesised CNAME is the answer asked for.
            return Ok(Step::Done(rcode::NOERROR));
        }
        Ok(Step::Follow(Target::new(new_name)))
    }

    /// The SOA in the authority section of a negative answer, with the
    /// negative TTL of RFC 2308 §3.
    fn negative(&mut self, w: &mut Writer<'_>) -> Result<(), Full> {
        let zone = self.zone;
        let apex = zone.apex_id();
        if let Some(soa) = zone.rrset(apex, rtype::SOA) {
            let data = zone.records(soa).next().unwrap_or(&[]);
            w.record(
                Section::Authority,
                zone.apex().as_wire(),
                rtype::SOA,
                zone.negative_ttl(),
                data,
            )?;
        }
        Ok(())
    }

    /// Writes a whole RRset, or nothing.
    fn rrset(
        &mut self,
        section: Section,
        owner: &[u8],
        set: &RRset,
        w: &mut Writer<'_>,
    ) -> Result<(), Full> {
        let mark = w.mark();
        for data in self.zone.records(set) {
            if let Err(full) = w.record(section, owner, set.rtype, set.ttl, data) {
                w.rollback(mark);
                return Err(full);
            }
        }
        Ok(())
    }

    /// Additional-section addresses for the targets of NS, MX and SRV
    /// records in an answer. Optional: dropped when they do not fit.
    fn additional_for(&mut self, set: &RRset, w: &mut Writer<'_>) -> Result<(), Full> {
        if !matches!(set.rtype, rtype::NS | rtype::MX | rtype::SRV) {
            return Ok(());
        }
        let Some(layout) = rr::name_layout(set.rtype) else {
            return Ok(());
        };
        for data in self.zone.records(set) {
            if let Some(target) = data.get(layout.prefix..) {
                self.addresses(target, false, w)?;
            }
        }
        Ok(())
    }

    /// Adds the A and AAAA RRsets of `target` if it is in this zone (glue
    /// included). When `required`, a set that does not fit truncates.
    fn addresses(&mut self, target: &[u8], required: bool, w: &mut Writer<'_>) -> Result<(), Full> {
        let zone = self.zone;
        let Ok(len) = name::wire_name_len(target) else {
            return Ok(());
        };
        let lower = Target::new(&target[..len]);
        if !name::is_subdomain(lower.as_wire(), zone.apex().as_wire()) {
            return Ok(());
        }
        let Some(id) = zone.find(lower.as_wire()) else {
            return Ok(());
        };
        // Two NS records may share a target, and MX and NS often do.
        if self.added[..self.added_len].contains(&id) {
            return Ok(());
        }
        if self.added_len < self.added.len() {
            self.added[self.added_len] = id;
            self.added_len += 1;
        }
        for code in [rtype::A, rtype::AAAA] {
            let Some(set) = zone.rrset(id, code) else {
                continue;
            };
            if self
                .rrset(Section::Additional, lower.as_wire(), set, w)
                .is_err()
                && required
            {
                self.truncated = true;
            }
        }
        Ok(())
    }
}
