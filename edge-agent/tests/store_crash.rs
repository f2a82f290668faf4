//! Crash safety of the node store: a child process applies AXFRs and IXFRs
//! without end and is killed with SIGKILL at random moments; after every
//! kill the store must open and hold one complete committed version (old or
//! new serial, never a mix) with a journal chained up to it.
//!
//! The child is this test binary run again with [`CHILD_ENV`] set, so that
//! no extra binary is needed. Every record of a version carries its serial
//! (a TXT at every name, and the number of names depends on the serial),
//! so a half-applied version is visible.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edge_agent::store::{Store, ZoneState};
use edge_agent::xfr::{Diff, Record};
use edge_agent::zone::master::MasterRecord;
use edge_agent::zone::rr::rtype;
use edge_agent::zone::{Name, Zone, ZoneBuilder};

/// Set to the store directory in the child process.
const CHILD_ENV: &str = "EDGE_AGENT_STORE_CRASH_CHILD";
/// Name of the test that plays the child.
const CHILD_TEST: &str = "writer_child_runs_only_under_the_crash_test";
/// Kills wanted; the test fails below [`MIN_KILLS`].
const KILLS: u32 = 60;
const MIN_KILLS: u32 = 50;
/// Bound on the whole test.
const TIME_LIMIT: Duration = Duration::from_secs(50);
/// Journal bound the child uses.
const MAX_JOURNAL: usize = 5;

#[test]
fn store_keeps_one_whole_version_across_sigkills() {
    let dir = TempDir::new();
    let exe = std::env::current_exe().expect("test binary path");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("crash test seed {seed}");
    let mut random = XorShift(seed);
    let started = Instant::now();
    let mut kills = 0;
    let mut commits = 0;
    let mut runs_with_commits = 0;
    let mut kills_while_writing = 0;
    let mut stored_serials = Vec::new();
    while kills < KILLS && started.elapsed() < TIME_LIMIT {
        let mut child = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        std::thread::sleep(Duration::from_millis(5 + random.below(400)));
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        kills += 1;
        let mut output = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_string(&mut output).expect("writer output");
        }
        let reported: Vec<u32> = output
            .lines()
            .filter_map(|line| line.strip_prefix("committed ")?.parse().ok())
            .collect();
        commits += reported.len();
        if !reported.is_empty() {
            runs_with_commits += 1;
        }
        if output.lines().last() == Some("writing") {
            kills_while_writing += 1;
        }
        let serial = check_store(&dir.path, reported.last().copied());
        stored_serials.push(serial);
    }
    println!(
        "crash test: {kills} kills ({kills_while_writing} during a store write), \
         {commits} commits in {runs_with_commits} runs, {:.1} s, stored serials {stored_serials:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills within the time limit"
    );
    assert!(
        runs_with_commits >= 10 && kills_while_writing >= 5,
        "the kills did not exercise the store enough"
    );
}

/// The child: opens the store, continues from the stored serial and writes
/// versions until it is killed, printing each committed serial.
#[test]
fn writer_child_runs_only_under_the_crash_test() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).expect("child: open store");
    let apex = apex();
    let mut serial = match store.state(&apex).expect("child: read state") {
        Some(state) => state.serial,
        None => {
            store
                .replace_zone(&version(1), &state(1))
                .expect("child: first AXFR");
            println!("committed 1");
            1
        }
    };
    let mut random = XorShift(u64::from(std::process::id()) << 20 | u64::from(serial) | 1);
    // "writing" marks the moments the child is inside a store operation.
    loop {
        if random.below(3) == 0 {
            serial += 1;
            let zone = version(serial);
            println!("writing");
            store
                .replace_zone(&zone, &state(serial))
                .expect("child: AXFR");
        } else {
            let steps = 1 + random.below(3) as u32;
            let diffs: Vec<Diff> = (serial..serial + steps).map(diff).collect();
            serial += steps;
            println!("writing");
            store
                .apply_diffs(&apex, &diffs, &state(serial), MAX_JOURNAL)
                .expect("child: IXFR");
        }
        println!("committed {serial}");
    }
}

/// Opens the store after a kill and checks it holds one whole version, at
/// least as new as the last one the child reported committed. Returns its
/// serial (0 when nothing was ever committed).
fn check_store(dir: &Path, reported: Option<u32>) -> u32 {
    let store = Store::open(dir).expect("store opens after SIGKILL");
    let apex = apex();
    let Some((zone, state)) = store.load_zone(&apex).expect("zone loads after SIGKILL") else {
        assert_eq!(reported, None, "a reported commit was lost");
        return 0;
    };
    let serial = zone.serial();
    assert_eq!(state, self::state(serial), "state of another version");
    if let Some(reported) = reported {
        // The child may have committed up to 3 serials it had no time to report.
        assert!(
            (reported..=reported + 3).contains(&serial),
            "stored serial {serial}, last reported commit {reported}"
        );
    }
    assert_eq!(
        records_of(&zone),
        records_of(&version(serial)),
        "serial {serial}: records of several versions"
    );
    let journal = store.journal(&apex).expect("journal reads");
    assert!(journal.len() <= MAX_JOURNAL);
    for pair in journal.windows(2) {
        assert_eq!(pair[0].to_serial, pair[1].from_serial, "journal has a gap");
    }
    if let Some(last) = journal.last() {
        assert_eq!(
            last.to_serial, serial,
            "journal does not end at the version"
        );
    }
    for entry in &journal {
        assert_eq!(entry, &diff(entry.from_serial), "journal entry damaged");
    }
    let since = journal.first().map_or(serial, |first| first.from_serial);
    assert_eq!(
        store.journal_since(&apex, since).expect("journal_since"),
        Some(journal)
    );
    serial
}

fn apex() -> Name {
    Name::parse("crash.test.").expect("apex")
}

/// Names of the version with this serial; every few versions is large,
/// so that some kills land in the middle of a long transaction.
fn name_count(serial: u32) -> u32 {
    if serial.is_multiple_of(8) {
        4000
    } else {
        40 + serial * 7 % 60
    }
}

fn host(index: u32) -> Name {
    Name::parse(&format!("n{index}.crash.test.")).expect("host name")
}

fn soa(serial: u32) -> Record {
    let mut rdata = Name::parse("ns.crash.test.")
        .expect("mname")
        .as_wire()
        .to_vec();
    rdata.extend_from_slice(Name::parse("admin.crash.test.").expect("rname").as_wire());
    for field in [serial, 3600, 600, 86400, 60] {
        rdata.extend_from_slice(&field.to_be_bytes());
    }
    record(apex(), rtype::SOA, rdata)
}

fn serial_txt(owner: Name, serial: u32) -> Record {
    let text = format!("serial {serial}");
    let mut rdata = vec![text.len() as u8];
    rdata.extend_from_slice(text.as_bytes());
    record(owner, rtype::TXT, rdata)
}

fn address(index: u32) -> Record {
    let [_, a, b, c] = index.to_be_bytes();
    record(host(index), rtype::A, vec![10, a, b, c])
}

fn record(owner: Name, rtype: u16, rdata: Vec<u8>) -> Record {
    Record {
        owner,
        rtype,
        ttl: 300,
        rdata: rdata.into(),
    }
}

/// Every record of the version with this serial.
fn version_records(serial: u32) -> Vec<Record> {
    let mut records = vec![
        soa(serial),
        record(
            apex(),
            rtype::NS,
            Name::parse("ns.crash.test.")
                .expect("ns")
                .as_wire()
                .to_vec(),
        ),
        record(
            Name::parse("ns.crash.test.").expect("ns"),
            rtype::A,
            vec![127, 0, 0, 1],
        ),
        serial_txt(apex(), serial),
    ];
    for index in 0..name_count(serial) {
        records.push(address(index));
        records.push(serial_txt(host(index), serial));
    }
    records
}

fn version(serial: u32) -> Zone {
    let mut builder = ZoneBuilder::new(&apex());
    for r in version_records(serial) {
        builder
            .add(&MasterRecord {
                owner: r.owner.as_wire(),
                class: 1,
                rtype: r.rtype,
                ttl: r.ttl,
                rdata: &r.rdata,
                file: Path::new("crash-test"),
                line: 0,
            })
            .expect("version record");
    }
    builder.finish().expect("version zone")
}

/// The IXFR difference from `from` to `from + 1`: every serial TXT is
/// replaced, names beyond the new count go, new names come.
fn diff(from: u32) -> Diff {
    let to = from + 1;
    let (old_count, new_count) = (name_count(from), name_count(to));
    let mut removed = vec![soa(from), serial_txt(apex(), from)];
    let mut added = vec![soa(to), serial_txt(apex(), to)];
    for index in 0..old_count {
        removed.push(serial_txt(host(index), from));
        if index >= new_count {
            removed.push(address(index));
        }
    }
    for index in 0..new_count {
        added.push(serial_txt(host(index), to));
        if index >= old_count {
            added.push(address(index));
        }
    }
    Diff {
        from_serial: from,
        to_serial: to,
        removed,
        added,
    }
}

/// The state written with a version: it carries the serial too, so a
/// state from another transaction than the records would show.
fn state(serial: u32) -> ZoneState {
    ZoneState {
        serial,
        last_refresh: Some(u64::from(serial)),
        expire_deadline: Some(u64::from(serial) + 86400),
        refresh_due: None,
        master: Some(format!("master-{serial}")),
        last_error: None,
    }
}

fn records_of(zone: &Zone) -> Vec<(Vec<u8>, u16, u32, Vec<u8>)> {
    let mut records: Vec<_> = zone
        .iter_records()
        .map(|(owner, set, data)| (owner.to_vec(), set.rtype, set.ttl, data.to_vec()))
        .collect();
    records.sort();
    records
}

/// A small deterministic generator for the kill moments and the transfer kinds.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// A directory removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        let path =
            std::env::temp_dir().join(format!("edge-agent-store-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
