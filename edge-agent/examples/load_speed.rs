//! Times `load_zone` (parse + build + checks) on a zone file:
//! `cargo run --release --example load_speed -- FILE ORIGIN`.

use std::time::Instant;

use edge_agent::zone::{Name, load_zone};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(origin)) = (args.next(), args.next()) else {
        eprintln!("usage: load_speed FILE ORIGIN");
        std::process::exit(2);
    };
    let origin = Name::parse(&origin).expect("origin");
    for _ in 0..3 {
        let start = Instant::now();
        match load_zone(&origin, std::path::Path::new(&file)) {
            Ok(zone) => println!(
                "{} records, {} nodes in {:.3} s",
                zone.record_count(),
                zone.node_count(),
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}
