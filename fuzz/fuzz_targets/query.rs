//! Feeds arbitrary packets to the answer core over both transports, against
//! the lab zone. The core must never panic and must keep every answer within
//! the transport's size limit.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use edge_agent::dns::{Transport, respond};
use edge_agent::zone::master::{MasterOptions, parse_bytes};
use edge_agent::zone::{Name, ZoneBuilder, ZoneEntry, ZoneSet};
use libfuzzer_sys::fuzz_target;

const ZONE: &[u8] = include_bytes!("../../lab/zones/example.test.zone");

fn zones() -> &'static ZoneSet {
    static ZONES: OnceLock<ZoneSet> = OnceLock::new();
    ZONES.get_or_init(|| {
        let apex = Name::parse("example.test.").expect("apex");
        let mut builder = ZoneBuilder::new(&apex);
        let options = MasterOptions {
            origin: apex.clone(),
            default_class: 1,
            max_include_depth: 8,
        };
        let file = Path::new("example.test.zone");
        parse_bytes(ZONE, file, None, &options, &mut |r| {
            builder.add(r)
        })
        .expect("lab zone parses");
        let zone = builder.finish().expect("lab zone builds");
        ZoneSet::new(
            vec![ZoneEntry::primary(Arc::new(zone), Arc::default())],
            Arc::default(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; 65535];
    if let Some(len) = respond(data, Transport::Udp, zones(), &mut out) {
        assert!(len >= 12);
        assert!(len <= 4096, "UDP answer of {len} bytes");
    }
    if let Some(len) = respond(data, Transport::Tcp, zones(), &mut out) {
        assert!(len >= 12 && len <= 65535);
    }
});
