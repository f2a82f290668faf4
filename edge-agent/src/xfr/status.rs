//! What operators see of secondary zones: a small status file, rewritten
//! atomically (write then rename) whenever a zone's state changes, read by
//! `edge-agent zones`. A file rather than a socket: it needs no extra
//! listener, survives the agent (the last known state stays readable) and
//! works while the store is locked by the running agent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name of the status file inside the store directory.
pub const STATUS_FILE: &str = "zones.status";

/// The state of one secondary zone, as shown to operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneStatus {
    /// Serial served, if any version is held.
    pub serial: Option<u32>,
    /// The master that answered last.
    pub master: Option<String>,
    /// Last successful refresh (Unix seconds).
    pub last_refresh: Option<u64>,
    /// Next check (Unix seconds).
    pub next_refresh: Option<u64>,
    /// Expire deadline (Unix seconds).
    pub expire_deadline: Option<u64>,
    /// Whether the zone is answered with SERVFAIL now.
    pub expired: bool,
    /// The last error, if the last check failed.
    pub last_error: Option<String>,
}

/// The status of every secondary zone, mirrored to a file.
#[derive(Debug)]
pub struct StatusBoard {
    path: PathBuf,
    zones: Mutex<BTreeMap<String, ZoneStatus>>,
}

impl StatusBoard {
    /// A board writing to `STATUS_FILE` inside `dir`.
    pub fn new(dir: &Path) -> StatusBoard {
        StatusBoard {
            path: dir.join(STATUS_FILE),
            zones: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records a zone's status and rewrites the file (errors are logged:
    /// the status file is for operators, never a reason to stop serving).
    pub fn update(&self, zone: &str, status: ZoneStatus) {
        let text = {
            let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
            if zones.get(zone) == Some(&status) {
                return;
            }
            zones.insert(zone.to_string(), status);
            render_file(&zones)
        };
        let temporary = self.path.with_extension("status.tmp");
        let result =
            std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), "zone status file not written: {e}");
        }
    }
}

/// The file form: one line per zone, tab-separated, `-` for none.
fn render_file(zones: &BTreeMap<String, ZoneStatus>) -> String {
    let mut out = String::from(
        "# zone\tserial\tmaster\tlast_refresh\tnext_refresh\texpire_deadline\texpired\tlast_error\n",
    );
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for (zone, s) in zones {
        let clean = |text: &str| text.replace(['\t', '\n', '\r'], " ");
        let _ = writeln!(
            out,
            "{zone}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            s.serial.map_or_else(|| "-".to_string(), |v| v.to_string()),
            s.master.as_deref().map_or_else(|| "-".to_string(), clean),
            opt(s.last_refresh),
            opt(s.next_refresh),
            opt(s.expire_deadline),
            if s.expired { "yes" } else { "no" },
            s.last_error
                .as_deref()
                .map_or_else(|| "-".to_string(), clean),
        );
    }
    out
}

/// Reads a status file back: zone name and status per line.
pub fn parse_file(text: &str) -> Vec<(String, ZoneStatus)> {
    let number = |field: &str| field.parse::<u64>().ok();
    let text_field = |field: &str| (field != "-").then(|| field.to_string());
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [zone, serial, master, last, next, expire, expired, error] = f.as_slice() else {
                return None;
            };
            Some((
                zone.to_string(),
                ZoneStatus {
                    serial: serial.parse().ok(),
                    master: text_field(master),
                    last_refresh: number(last),
                    next_refresh: number(next),
                    expire_deadline: number(expire),
                    expired: *expired == "yes",
                    last_error: text_field(error),
                },
            ))
        })
        .collect()
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn format_time(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_printed_in_utc() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_795_436_000), "2026-11-23T12:13:20Z");
    }

    #[test]
    fn status_file_round_trips_and_is_replaced_atomically() {
        let dir = std::env::temp_dir().join(format!("edge-agent-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board = StatusBoard::new(&dir);
        let status = ZoneStatus {
            serial: Some(7),
            master: Some("127.0.0.1:5400".into()),
            last_refresh: Some(100),
            next_refresh: Some(160),
            expire_deadline: Some(700),
            expired: false,
            last_error: Some("timed\tout\nagain".into()),
        };
        board.update("a.test.", status.clone());
        board.update(
            "b.test.",
            ZoneStatus {
                expired: true,
                ..ZoneStatus::default()
            },
        );
        let text = std::fs::read_to_string(dir.join(STATUS_FILE)).unwrap();
        let parsed = parse_file(&text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, "a.test.");
        assert_eq!(parsed[0].1.last_error.as_deref(), Some("timed out again"));
        assert_eq!(parsed[0].1.serial, Some(7));
        assert!(parsed[1].1.expired);
        std::fs::remove_dir_all(&dir).ok();
    }
}
