//! Transfers out of the real binary: `kdig` pulls a primary zone by AXFR and
//! IXFR with TSIG, unsigned and forged requests are refused, and a Knot
//! secondary (`knotd`) follows the agent and ends with the same records.
//!
//! Needs `kdig` and `knotd`/`knotc` (Debian: knot-dnsutils, knot); a test
//! fails with a clear message when they are missing. Loopback only; every
//! process started here is stopped by its PID.

mod serve_support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{Agent, PATIENCE, TempDir};

/// The shared secret of key `k.` (32 bytes, base64).
const SECRET: &str = "c2VjcmV0LWZvci10aGUtdHJhbnNmZXItb3V0LXRlc3Q=";
/// Another secret for the same key name.
const WRONG_SECRET: &str = "d3JvbmctZm9yLXRoZS10cmFuc2Zlci1vdXQtdGVzdCE=";
/// Names in the test zone besides the apex and ns1; each has an A and a TXT.
const HOSTS: usize = 3000;

/// The zone file of `example.test.` with `serial`: SOA, NS, ns1 A and two
/// records per host, enough for many 16 KiB messages.
fn zone_text(serial: u32, hosts: usize) -> String {
    let mut text = format!(
        "$ORIGIN example.test.\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    for i in 0..hosts {
        text.push_str(&format!(
            "host{i} IN A 198.51.100.{}\nhost{i} IN TXT \"record number {i}\"\n",
            i % 250
        ));
    }
    text
}

/// Records in [`zone_text`].
fn zone_records(hosts: usize) -> usize {
    3 + 2 * hosts
}

/// Writes the zone and a config allowing transfers from 127/8 with `k.`,
/// then starts the agent.
fn start_agent(dir: &TempDir, serial: u32) -> Agent {
    dir.write("example.test.zone", &zone_text(serial, HOSTS));
    let config = dir.write(
        "agent.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n\n\
             [[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\n\
             [[zone]]\nname = \"example.test.\"\nfile = \"example.test.zone\"\n\
             allow_transfer = [ {{ address = \"127.0.0.0/8\", tsig = \"k.\" }} ]\n"
        ),
    );
    Agent::start(&config)
}

/// Fails the test with the install hint when `program` is not installed.
fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "`{program}` is missing: this test needs it (Debian: apt-get install -y {package})"
    );
}

/// What `kdig` printed.
struct Dig {
    /// The records, TSIG left out, each as its whitespace-separated fields
    /// joined by one space.
    records: Vec<String>,
    /// Everything printed, for messages.
    text: String,
}

impl Dig {
    /// The record types in order.
    fn types(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter_map(|r| r.split(' ').nth(3))
            .collect()
    }
}

/// Runs `kdig @SERVER -p PORT ARGS` (with `-y` when `key` is given).
fn kdig(server: SocketAddr, key: Option<&str>, args: &[&str]) -> Dig {
    require("kdig", "knot-dnsutils");
    let mut command = Command::new("kdig");
    if let Some(key) = key {
        command.arg("-y").arg(key);
    }
    let output = command
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+tcp", "+time=5", "+retry=0"])
        .args(args)
        .output()
        .expect("run kdig");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let records = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|record| record.split(' ').nth(3) != Some("TSIG"))
        .collect();
    Dig { records, text }
}

fn signed_key() -> String {
    format!("hmac-sha256:k.:{SECRET}")
}

#[test]
fn signed_axfr_gets_every_record_and_unsigned_or_forged_requests_are_refused() {
    let dir = TempDir::new("xfr-out-axfr");
    let mut agent = start_agent(&dir, 2024010101);
    let server = agent.address();

    let axfr = kdig(server, Some(&signed_key()), &["example.test.", "AXFR"]);
    let types = axfr.types();
    assert_eq!(
        axfr.records.len(),
        zone_records(HOSTS) + 1,
        "every record, the SOA twice:\n{}",
        axfr.text
    );
    assert_eq!(types.first(), Some(&"SOA"), "{}", axfr.text);
    assert_eq!(types.last(), Some(&"SOA"), "{}", axfr.text);
    assert_eq!(axfr.records.first(), axfr.records.last());
    assert!(
        axfr.records[0].contains(" 2024010101 "),
        "{}",
        axfr.records[0]
    );
    assert!(!axfr.text.contains(";; ERROR"), "{}", axfr.text);
    let unique: BTreeSet<&String> = axfr.records.iter().collect();
    assert_eq!(unique.len(), zone_records(HOSTS));
    agent.wait_for_line(|l| l.contains("zone transferred out: AXFR") && l.contains("signed=true"));

    let unsigned = kdig(server, None, &["example.test.", "AXFR"]);
    assert!(unsigned.records.is_empty(), "{}", unsigned.text);
    assert!(unsigned.text.contains("REFUSED"), "{}", unsigned.text);
    agent.wait_for_line(|l| l.contains("zone transfer refused") && l.contains("peer=127.0.0.1"));

    let forged = format!("hmac-sha256:k.:{WRONG_SECRET}");
    let forged = kdig(server, Some(&forged), &["example.test.", "AXFR"]);
    assert!(forged.records.is_empty(), "{}", forged.text);
    assert!(forged.text.contains("BADSIG"), "{}", forged.text);
    agent.wait_for_line(|l| l.contains("zone transfer refused") && l.contains("BADSIG"));

    let unknown = format!("hmac-sha256:other.:{SECRET}");
    let unknown = kdig(server, Some(&unknown), &["example.test.", "AXFR"]);
    assert!(unknown.records.is_empty(), "{}", unknown.text);
    assert!(unknown.text.contains("BADKEY"), "{}", unknown.text);

    // The connection still answers ordinary queries after a transfer.
    let soa = kdig(server, Some(&signed_key()), &["example.test.", "SOA"]);
    assert_eq!(soa.types(), ["SOA"], "{}", soa.text);
}

#[test]
fn ixfr_is_one_soa_when_current_and_the_whole_zone_when_old() {
    let dir = TempDir::new("xfr-out-ixfr");
    let agent = start_agent(&dir, 2024010101);
    let server = agent.address();

    let current = kdig(
        server,
        Some(&signed_key()),
        &["example.test.", "IXFR=2024010101"],
    );
    assert_eq!(current.types(), ["SOA"], "{}", current.text);
    assert!(current.records[0].contains(" 2024010101 "));

    let newer = kdig(
        server,
        Some(&signed_key()),
        &["example.test.", "IXFR=2024010200"],
    );
    assert_eq!(newer.types(), ["SOA"], "{}", newer.text);

    // A primary zone keeps no journal: an old serial gets the zone AXFR-style.
    let old = kdig(
        server,
        Some(&signed_key()),
        &["example.test.", "IXFR=2024010100"],
    );
    assert_eq!(
        old.records.len(),
        zone_records(HOSTS) + 1,
        "AXFR-style:\n{}",
        old.text
    );
    assert_eq!(old.records.first(), old.records.last());
    assert!(!old.text.contains(";; ERROR"), "{}", old.text);

    let unsigned = kdig(server, None, &["example.test.", "IXFR=2024010100"]);
    assert!(unsigned.text.contains("REFUSED"), "{}", unsigned.text);
}

/// A loopback port free for both TCP and UDP right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(address) = tcp.local_addr() else {
            continue;
        };
        if UdpSocket::bind(address).is_ok() {
            return address.port();
        }
    }
    panic!("no free loopback port");
}

/// A running `knotd`, stopped by its PID when dropped.
struct Knot {
    child: Child,
    conf: String,
    address: SocketAddr,
}

impl Knot {
    /// Starts Knot as a secondary of `example.test.` pulling from `master`
    /// with key `k.`, listening on a free loopback port.
    fn secondary_of(dir: &Path, master: SocketAddr) -> Knot {
        require("knotd", "knot");
        let port = free_port();
        let d = dir.display();
        let conf = format!("{d}/knot.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n    rundir: \"{d}\"\n    pidfile: \"{d}/knot.pid\"\n\
                 \x20   listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n\
                 \x20   background-workers: 1\n\
                 control:\n    listen: \"{d}/knot.sock\"\n\
                 database:\n    storage: \"{d}\"\n\
                 log:\n  - target: stderr\n    any: info\n\
                 key:\n  - id: k.\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
                 remote:\n  - id: agent\n    address: {}@{}\n    key: k.\n\
                 acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    key: k.\n    action: transfer\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n\
                 zone:\n  - domain: example.test.\n    master: agent\n    acl: [xfr]\n",
                master.ip(),
                master.port()
            ),
        )
        .expect("write knot.conf");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start knotd");
        Knot {
            child,
            conf,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Waits until Knot answers `example.test.` SOA with `serial`.
    fn wait_for_serial(&self, serial: u32) {
        let deadline = Instant::now() + PATIENCE * 2;
        loop {
            let soa = kdig(self.address, None, &["example.test.", "SOA"]);
            if soa
                .records
                .iter()
                .any(|r| r.contains(" SOA ") && r.contains(&format!(" {serial} ")))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Knot never served serial {serial}:\n{}",
                soa.text
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Asks Knot to refresh the zone from the agent now.
    fn refresh(&self) {
        let status = Command::new("knotc")
            .arg("-c")
            .arg(&self.conf)
            .args(["-t", "5", "zone-refresh", "example.test."])
            .stdout(Stdio::null())
            .status()
            .expect("run knotc");
        assert!(status.success(), "knotc zone-refresh failed");
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        // SIGTERM by PID, then wait; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The zone as `server` gives it by signed AXFR, as a set of records.
fn zone_set(server: SocketAddr) -> BTreeSet<String> {
    let axfr = kdig(server, Some(&signed_key()), &["example.test.", "AXFR"]);
    assert!(!axfr.text.contains(";; ERROR"), "{}", axfr.text);
    axfr.records.into_iter().collect()
}

#[test]
fn knot_secondary_pulls_with_tsig_and_ends_with_our_records() {
    let dir = TempDir::new("xfr-out-knot");
    let mut agent = start_agent(&dir, 10);
    let knot_dir = dir.path("knot");
    std::fs::create_dir_all(&knot_dir).expect("knot folder");
    let knot = Knot::secondary_of(&knot_dir, agent.address());
    knot.wait_for_serial(10);
    let ours = zone_set(agent.address());
    assert_eq!(ours.len(), zone_records(HOSTS));
    assert_eq!(
        zone_set(knot.address),
        ours,
        "Knot holds the agent's records"
    );
    agent.wait_for_line(|l| l.contains("zone transferred out") && l.contains("signed=true"));

    // A new version: Knot asks by IXFR, a primary zone answers AXFR-style.
    let mut changed = zone_text(11, HOSTS - 1);
    changed.push_str("added IN A 192.0.2.99\n");
    dir.write("example.test.zone", &changed);
    agent.signal("HUP");
    agent.wait_for_line(|l| l.contains("zone loaded") && l.contains("serial=11"));
    knot.refresh();
    knot.wait_for_serial(11);
    let ours = zone_set(agent.address());
    assert!(ours.iter().any(|r| r.starts_with("added.example.test. ")));
    assert_eq!(zone_set(knot.address), ours, "Knot follows the new version");
    agent.wait_for_line(|l| l.contains("zone transferred out: IXFR (AXFR-style"));
}
