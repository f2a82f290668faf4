//! Deriving the next zone version from IXFR differences.
//!
//! The result goes through [`ZoneBuilder`], so an incremental version gets
//! exactly the checks a loaded or transferred zone gets. Every removed record
//! must exist and every sequence must start at the serial reached so far:
//! a difference that does not apply is refused and the old version stays.
//!
//! This builds the new version in full (time proportional to the zone);
//! versions that share unchanged data are the next step for large zones.

use std::collections::HashMap;
use std::path::Path;

use super::master::MasterRecord;
use super::model::Zone;
use super::{Name, ZoneBuilder};
use crate::xfr::Diff;
use crate::zone::rr::{class, rtype};

/// The zone version after applying `diffs` in order to `zone`.
pub fn apply_diffs(zone: &Zone, diffs: &[Diff]) -> Result<Zone, Vec<String>> {
    let mut serial = zone.serial();
    // Net effect of all sequences: per record, how many copies to drop or add.
    let mut removed: HashMap<(Vec<u8>, u16, Vec<u8>), usize> = HashMap::new();
    let mut added: Vec<(Name, u16, u32, Box<[u8]>)> = Vec::new();
    for diff in diffs {
        if diff.from_serial != serial {
            return Err(vec![format!(
                "IXFR sequence from serial {} does not apply to serial {serial}",
                diff.from_serial
            )]);
        }
        for record in diff.removed.iter().filter(|r| r.rtype != rtype::SOA) {
            let key = (
                record.owner.as_wire().to_vec(),
                record.rtype,
                record.rdata.to_vec(),
            );
            // A record added by an earlier sequence and removed by a later one.
            if let Some(pos) = added.iter().position(|(owner, code, _, data)| {
                owner.as_wire() == key.0.as_slice() && *code == key.1 && **data == *key.2
            }) {
                added.swap_remove(pos);
                continue;
            }
            *removed.entry(key).or_default() += 1;
        }
        for record in diff.added.iter().filter(|r| r.rtype != rtype::SOA) {
            added.push((
                record.owner.clone(),
                record.rtype,
                record.ttl,
                record.rdata.clone(),
            ));
        }
        serial = diff.to_serial;
    }
    let Some(new_soa) = diffs
        .last()
        .and_then(|d| d.added.iter().find(|r| r.rtype == rtype::SOA))
    else {
        return Err(vec!["IXFR without a new SOA".to_string()]);
    };
    let source = Path::new("IXFR");
    let mut builder = ZoneBuilder::new(zone.apex());
    builder.reserve(zone.record_count() + added.len(), zone.node_count());
    let mut problems = Vec::new();
    let mut add = |builder: &mut ZoneBuilder, owner: &[u8], code: u16, ttl: u32, rdata: &[u8]| {
        let record = MasterRecord {
            owner,
            class: class::IN,
            rtype: code,
            ttl,
            rdata,
            file: source,
            line: 0,
        };
        if let Err(e) = builder.add(&record) {
            problems.push(e);
        }
    };
    for (owner, set, data) in zone.iter_records() {
        if set.rtype == rtype::SOA {
            continue;
        }
        if !removed.is_empty() {
            let key = (owner.to_vec(), set.rtype, data.to_vec());
            if let Some(count) = removed.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    removed.remove(&key);
                }
                continue;
            }
        }
        add(&mut builder, owner, set.rtype, set.ttl, data);
    }
    add(
        &mut builder,
        new_soa.owner.as_wire(),
        rtype::SOA,
        new_soa.ttl,
        &new_soa.rdata,
    );
    for (owner, code, ttl, data) in &added {
        add(&mut builder, owner.as_wire(), *code, *ttl, data);
    }
    if let Some(((owner, code, _), _)) = removed.iter().next() {
        let mut name = String::new();
        let _ = super::name::write_presentation(owner, &mut name);
        problems.push(format!(
            "IXFR removes a record the zone does not have: {name} {}",
            super::rr::rtype_name(*code)
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let next = builder.finish()?;
    if next.serial() != serial {
        return Err(vec![format!(
            "IXFR ends at serial {serial} but its SOA says {}",
            next.serial()
        )]);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::Record;
    use crate::zone::master::{MasterOptions, parse_bytes};

    fn zone(serial: u32, extra: &str) -> Zone {
        zone_with_www(serial, 80, extra)
    }

    fn zone_with_www(serial: u32, www: u8, extra: &str) -> Zone {
        let apex = Name::parse("example.test.").unwrap();
        let text = format!(
            "@ 3600 IN SOA ns1 admin {serial} 3600 600 86400 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\nwww 300 IN A 192.0.2.{www}\n{extra}"
        );
        let mut builder = ZoneBuilder::new(&apex);
        parse_bytes(
            text.as_bytes(),
            Path::new("t"),
            None,
            &MasterOptions::new(&apex),
            &mut |r| builder.add(r),
        )
        .unwrap();
        builder.finish().unwrap()
    }

    fn soa(serial: u32) -> Record {
        let z = zone(serial, "");
        let set = z.rrset(z.apex_id(), rtype::SOA).unwrap();
        Record {
            owner: z.apex().clone(),
            rtype: rtype::SOA,
            ttl: set.ttl,
            rdata: z.records(set).next().unwrap().into(),
        }
    }

    fn a(owner: &str, last: u8) -> Record {
        Record {
            owner: Name::parse(owner).unwrap(),
            rtype: rtype::A,
            ttl: 300,
            rdata: vec![192, 0, 2, last].into(),
        }
    }

    fn records(z: &Zone) -> Vec<(Vec<u8>, u16, Vec<u8>)> {
        let mut all: Vec<_> = z
            .iter_records()
            .map(|(o, s, d)| (o.to_vec(), s.rtype, d.to_vec()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn diff_replaces_a_record_and_moves_the_serial() {
        let old = zone(1, "");
        let diff = Diff {
            from_serial: 1,
            to_serial: 2,
            removed: vec![soa(1), a("www.example.test.", 80)],
            added: vec![soa(2), a("www.example.test.", 81)],
        };
        let new = apply_diffs(&old, &[diff]).unwrap();
        assert_eq!(records(&new), records(&zone_with_www(2, 81, "")));
        assert_eq!(new.serial(), 2);
    }

    #[test]
    fn diff_for_another_serial_is_refused() {
        let old = zone(1, "");
        let diff = Diff {
            from_serial: 5,
            to_serial: 6,
            removed: vec![soa(5)],
            added: vec![soa(6)],
        };
        assert!(apply_diffs(&old, &[diff]).is_err());
    }

    #[test]
    fn removing_a_missing_record_is_refused() {
        let old = zone(1, "");
        let diff = Diff {
            from_serial: 1,
            to_serial: 2,
            removed: vec![soa(1), a("nope.example.test.", 1)],
            added: vec![soa(2)],
        };
        let err = apply_diffs(&old, &[diff]).unwrap_err();
        assert!(err[0].contains("does not have"), "{err:?}");
    }

    #[test]
    fn chained_sequences_apply_in_order() {
        let old = zone(1, "");
        let first = Diff {
            from_serial: 1,
            to_serial: 2,
            removed: vec![soa(1)],
            added: vec![soa(2), a("new.example.test.", 7)],
        };
        let second = Diff {
            from_serial: 2,
            to_serial: 3,
            removed: vec![soa(2), a("new.example.test.", 7)],
            added: vec![soa(3), a("new.example.test.", 8)],
        };
        let new = apply_diffs(&old, &[first, second]).unwrap();
        assert_eq!(records(&new), records(&zone(3, "new 300 IN A 192.0.2.8\n")));
    }
}
