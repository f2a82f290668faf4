//! Times deriving a zone version from IXFR differences on a large zone:
//! `cargo run --release --example apply_speed -- FILE ORIGIN`.
//!
//! Loads the zone, prints the load time and the resident memory, then times
//! chained one-record changes (replace one A record at an existing name, add
//! a record at a new name, remove it again), each applied to the version
//! before it while that version stays alive, as a secondary does.

use std::time::{Duration, Instant};

use edge_agent::xfr::{Diff, Record};
use edge_agent::zone::apply::apply_diffs;
use edge_agent::zone::rr::rtype;
use edge_agent::zone::{Name, Zone, load_zone};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(origin)) = (args.next(), args.next()) else {
        eprintln!("usage: apply_speed FILE ORIGIN");
        std::process::exit(2);
    };
    let origin = Name::parse(&origin).expect("origin");
    let started = Instant::now();
    let zone = match load_zone(&origin, std::path::Path::new(&file)) {
        Ok(zone) => zone,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "loaded {} records, {} nodes in {:.3} s; RSS {} MiB",
        zone.record_count(),
        zone.node_count(),
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    // Owners with an A record, spread over the zone.
    let a_owners: Vec<(Vec<u8>, u32, Vec<u8>)> = zone
        .iter_records()
        .filter(|(_, set, _)| set.rtype == rtype::A)
        .step_by(7919)
        .map(|(owner, set, data)| (owner.to_vec(), set.ttl, data.to_vec()))
        .take(10)
        .collect();
    let mut versions = vec![zone];
    let mut replace = Vec::new();
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for (i, (owner, ttl, data)) in a_owners.iter().enumerate() {
        let owner = Name::from_wire(owner).expect("owner");
        let old = record(&owner, rtype::A, *ttl, data.clone());
        let new = record(&owner, rtype::A, *ttl, vec![10, 9, 8, i as u8]);
        replace.push(time_step(&mut versions, vec![old], vec![new]));
        let fresh = Name::parse(&format!("fresh{i}.sub{i}.{origin}")).expect("name");
        let added = record(&fresh, rtype::A, 300, vec![10, 1, 2, i as u8]);
        add.push(time_step(&mut versions, vec![], vec![added.clone()]));
        remove.push(time_step(&mut versions, vec![added], vec![]));
    }
    let last = versions.last().expect("a version");
    println!(
        "after {} versions: serial {}, {} records; RSS {} MiB with all versions alive",
        versions.len(),
        last.serial(),
        last.record_count(),
        rss_mib()
    );
    report("replace one A record", &mut replace);
    report("add a record at a new name (and its ENT)", &mut add);
    report("remove it again (name and ENT go)", &mut remove);
}

/// Applies one diff (plus the SOA change) to the last version and keeps the
/// result; returns the time `apply_diffs` took.
fn time_step(versions: &mut Vec<Zone>, removed: Vec<Record>, added: Vec<Record>) -> Duration {
    let zone = versions.last().expect("a version");
    let serial = zone.serial();
    let soa = zone.rrset(zone.apex_id(), rtype::SOA).expect("SOA");
    let old_soa = zone.records(soa).next().expect("SOA data").to_vec();
    let mut new_soa = old_soa.clone();
    let at = new_soa.len() - 20;
    new_soa[at..at + 4].copy_from_slice(&(serial + 1).to_be_bytes());
    let apex = zone.apex().clone();
    let mut diff = Diff {
        from_serial: serial,
        to_serial: serial + 1,
        removed: vec![record(&apex, rtype::SOA, soa.ttl, old_soa)],
        added: vec![record(&apex, rtype::SOA, soa.ttl, new_soa)],
    };
    diff.removed.extend(removed);
    diff.added.extend(added);
    let started = Instant::now();
    let next = apply_diffs(zone, &[diff]).expect("diff applies");
    let took = started.elapsed();
    versions.push(next);
    took
}

fn record(owner: &Name, code: u16, ttl: u32, rdata: Vec<u8>) -> Record {
    Record {
        owner: owner.clone(),
        rtype: code,
        ttl,
        rdata: rdata.into(),
    }
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.3} ms, min {:.3} ms, max {:.3} ms over {}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

/// Resident memory of this process in MiB (Linux), 0 when unknown.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}
