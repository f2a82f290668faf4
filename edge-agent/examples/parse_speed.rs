//! Master-file parser throughput on a benchmark-shaped zone.
//!
//! Generates (once) a zone of about one million names with an A and an AAAA
//! record each, like the product benchmark's zone, then parses it a few times
//! and prints records per second. Run with
//! `cargo run --release --example parse_speed [names]`.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use edge_agent::zone::Name;
use edge_agent::zone::master::{MasterOptions, parse_file};

const DEFAULT_NAMES: u32 = 1_000_000;
const ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => DEFAULT_NAMES,
    };
    let path = PathBuf::from(format!("/tmp/edgedns-parse-speed-{names}.zone"));
    if !path.exists() {
        generate(&path, names)?;
    }
    let size = fs::metadata(&path)?.len();
    let apex = Name::parse("bench.test.")?;
    let options = MasterOptions::new(&apex);
    let mut best = f64::MAX;
    let mut records = 0u64;
    for _ in 0..ROUNDS {
        let mut count = 0u64;
        let mut checksum = 0u64;
        let start = Instant::now();
        parse_file(&path, &options, &mut |record| {
            count += 1;
            checksum += record.rdata.len() as u64 + u64::from(record.ttl);
            Ok(())
        })?;
        let seconds = start.elapsed().as_secs_f64();
        best = best.min(seconds);
        records = count;
        std::hint::black_box(checksum);
    }
    println!(
        "{records} records, {:.1} MB in {best:.3} s (best of {ROUNDS}): {:.2} M records/s, {:.0} MB/s",
        size as f64 / 1e6,
        records as f64 / best / 1e6,
        size as f64 / best / 1e6
    );
    Ok(())
}

/// Writes a zone like the benchmark's: `hostN 3600 IN A` and `hostN IN AAAA`.
fn generate(path: &Path, names: u32) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    writeln!(out, "$ORIGIN bench.test.")?;
    writeln!(out, "$TTL 3600")?;
    writeln!(
        out,
        "@ IN SOA ns1 hostmaster ( 2026010101 7200 900 1209600 300 )"
    )?;
    writeln!(out, "@ IN NS ns1")?;
    writeln!(out, "ns1 IN A 192.0.2.1")?;
    for i in 0..names {
        let (a, b) = ((i >> 8) & 0xff, i & 0xff);
        writeln!(out, "host{i} 3600 IN A 192.0.{a}.{b}")?;
        writeln!(out, "host{i} IN AAAA 2001:db8::{a:x}:{b:x}")?;
    }
    out.flush()
}
