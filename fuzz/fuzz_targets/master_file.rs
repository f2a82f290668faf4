//! Feeds arbitrary bytes to the master-file parser and the zone builder:
//! errors are fine, panics are not.
#![no_main]

use std::path::Path;

use edge_agent::zone::master::{MasterOptions, parse_bytes};
use edge_agent::zone::{Name, ZoneBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let apex = Name::parse("example.test.").expect("apex");
    let options = MasterOptions {
        origin: apex.clone(),
        default_class: 1,
        max_include_depth: 8,
    };
    let mut builder = ZoneBuilder::new(&apex);
    let result = parse_bytes(data, Path::new("fuzz.zone"), None, &options, &mut |r| {
        builder.add(r)
    });
    if result.is_ok() {
        let _ = builder.finish();
    }
});
