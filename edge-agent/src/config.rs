//! The agent's configuration file (TOML): what to listen on and which zones to serve.
//!
//! The file is read in two steps. Serde reads it into the `Raw*` structs below
//! (every table denies unknown keys, so a misspelt option is an error naming
//! the key and its line), then [`Config::from_toml`] checks every value and
//! builds the validated [`Config`]: a `Config` that exists is usable as it is.
//! Every problem is reported as `file:line:column: message`, like the zone
//! loader's `file:line: message`.
//!
//! The format is a contract with other tools (the controller writes it); it is
//! documented option by option in `docs/configuration.md`.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::zone::{DEFAULT_UDP_PAYLOAD, Name};

/// Default number of worker threads.
pub const DEFAULT_WORKERS: usize = 1;
/// Default TCP idle timeout in milliseconds.
pub const DEFAULT_TCP_IDLE_TIMEOUT_MS: u64 = 10_000;
/// Default limit of concurrent TCP connections.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;
/// Most worker threads allowed.
pub const MAX_WORKERS: usize = 64;

/// The validated configuration of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `[server]` section: sockets and query-path limits.
    pub server: ServerConfig,
    /// The `[[zone]]` sections, in file order; names are unique.
    pub zones: Vec<ZoneConfig>,
}

/// The `[server]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Addresses to answer on, each over UDP and TCP; unique, at least one.
    pub listen: Vec<SocketAddr>,
    /// Number of threads answering queries (1..=64).
    pub workers: usize,
    /// EDNS UDP payload size we offer (512..=4096).
    pub udp_payload: u16,
    /// How long a TCP connection may stay without progress before it is closed.
    pub tcp_idle_timeout: Duration,
    /// Most TCP connections open at once across all addresses and workers.
    pub tcp_max_connections: usize,
    /// Queries answered on one TCP connection before it is closed; `None` = unlimited.
    pub tcp_max_queries_per_connection: Option<u32>,
}

/// One `[[zone]]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The zone's apex, lowercase.
    pub name: Name,
    /// Where the zone's data comes from.
    pub source: ZoneSource,
}

/// Where a zone's data comes from. Secondary zones (`masters`) will be another variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZoneSource {
    /// An RFC 1035 master file; the path is resolved against the config file's folder.
    File(PathBuf),
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a key or value the schema rejects.
    #[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Every problem found, in file order where known.
        problems: Vec<Problem>,
    },
}

/// One problem in a config file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as given by the caller.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a position.
    pub position: Option<(usize, usize)>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl Config {
    /// Reads and validates the config file at `path`. Relative zone file paths
    /// are resolved against the folder holding `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Config::from_toml(&text, path, base)
    }

    /// Validates config `text`; `file` names it in messages, `base` is the
    /// folder that relative zone file paths are resolved against.
    pub fn from_toml(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let locate = Locator { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            problems: vec![locate.toml_error(&e)],
        })?;
        let mut problems = Vec::new();
        let server = raw.server.validate(&locate, &mut problems);
        let zones = validate_zones(raw.zone, base, &locate, &mut problems);
        match server {
            Some(server) if problems.is_empty() => Ok(Config { server, zones }),
            _ => Err(ConfigError::Invalid { problems }),
        }
    }
}

/// The file as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    #[serde(default)]
    zone: Vec<RawZone>,
}

/// `[server]` as serde reads it; defaults are applied in [`RawServer::validate`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Spanned<Vec<Spanned<String>>>,
    workers: Option<Spanned<i64>>,
    udp_payload: Option<Spanned<i64>>,
    tcp_idle_timeout_ms: Option<Spanned<i64>>,
    tcp_max_connections: Option<Spanned<i64>>,
    tcp_max_queries_per_connection: Option<Spanned<i64>>,
}

/// `[[zone]]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Spanned<String>,
    file: Option<Spanned<String>>,
}

impl RawServer {
    /// Checks every value, adding a problem for each bad one.
    fn validate(self, locate: &Locator<'_>, problems: &mut Vec<Problem>) -> Option<ServerConfig> {
        let before = problems.len();
        let mut listen: Vec<SocketAddr> = Vec::new();
        if self.listen.get_ref().is_empty() {
            problems.push(locate.problem(
                self.listen.span(),
                "[server] listen: at least one address is needed",
            ));
        }
        for entry in self.listen.into_inner() {
            match entry.get_ref().parse::<SocketAddr>() {
                Ok(addr) if listen.contains(&addr) => problems.push(locate.problem(
                    entry.span(),
                    format!("[server] listen: {addr} is listed twice"),
                )),
                Ok(addr) => listen.push(addr),
                Err(_) => problems.push(locate.problem(
                    entry.span(),
                    format!(
                        "[server] listen: {:?} is not an address with a port (like \"127.0.0.1:53\" or \"[::1]:53\")",
                        entry.get_ref()
                    ),
                )),
            }
        }
        let workers = in_range(
            self.workers,
            "workers",
            1,
            MAX_WORKERS as i64,
            DEFAULT_WORKERS as i64,
            locate,
            problems,
        );
        let udp_payload = in_range(
            self.udp_payload,
            "udp_payload",
            512,
            4096,
            i64::from(DEFAULT_UDP_PAYLOAD),
            locate,
            problems,
        );
        let idle_ms = in_range(
            self.tcp_idle_timeout_ms,
            "tcp_idle_timeout_ms",
            1,
            3_600_000,
            DEFAULT_TCP_IDLE_TIMEOUT_MS as i64,
            locate,
            problems,
        );
        let max_connections = in_range(
            self.tcp_max_connections,
            "tcp_max_connections",
            1,
            65_535,
            DEFAULT_TCP_MAX_CONNECTIONS as i64,
            locate,
            problems,
        );
        let max_queries = in_range(
            self.tcp_max_queries_per_connection,
            "tcp_max_queries_per_connection",
            0,
            i64::from(u32::MAX),
            0,
            locate,
            problems,
        );
        if problems.len() != before {
            return None;
        }
        // The ranges above make every conversion below lossless.
        Some(ServerConfig {
            listen,
            workers: usize::try_from(workers).ok()?,
            udp_payload: u16::try_from(udp_payload).ok()?,
            tcp_idle_timeout: Duration::from_millis(u64::try_from(idle_ms).ok()?),
            tcp_max_connections: usize::try_from(max_connections).ok()?,
            tcp_max_queries_per_connection: u32::try_from(max_queries).ok().filter(|&n| n != 0),
        })
    }
}

/// The value of integer option `key` of `[server]`, or `default` when absent;
/// a value outside `min..=max` adds a problem (and returns `default`).
fn in_range(
    value: Option<Spanned<i64>>,
    key: &str,
    min: i64,
    max: i64,
    default: i64,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> i64 {
    let Some(value) = value else { return default };
    let n = *value.get_ref();
    if (min..=max).contains(&n) {
        return n;
    }
    problems.push(locate.problem(
        value.span(),
        format!("[server] {key}: {n} is out of range, expected {min}..={max}"),
    ));
    default
}

/// Checks the `[[zone]]` sections: valid, unique names and a data source.
fn validate_zones(
    raw: Vec<RawZone>,
    base: &Path,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<ZoneConfig> {
    let mut zones: Vec<ZoneConfig> = Vec::with_capacity(raw.len());
    for zone in raw {
        let name = match Name::parse(zone.name.get_ref()) {
            Ok(name) => name.to_lowercase(),
            Err(e) => {
                problems.push(locate.problem(
                    zone.name.span(),
                    format!(
                        "[[zone]] name: {:?} is not a valid domain name: {e}",
                        zone.name.get_ref()
                    ),
                ));
                continue;
            }
        };
        if zones.iter().any(|z| z.name == name) {
            problems.push(locate.problem(
                zone.name.span(),
                format!("[[zone]] name: zone {name} is listed twice"),
            ));
            continue;
        }
        let Some(file) = zone.file else {
            problems.push(locate.problem(
                zone.name.span(),
                format!("[[zone]] {name}: missing `file` (the zone's master file)"),
            ));
            continue;
        };
        if file.get_ref().is_empty() {
            problems.push(locate.problem(file.span(), format!("[[zone]] {name}: `file` is empty")));
            continue;
        }
        let source = ZoneSource::File(base.join(file.get_ref()));
        zones.push(ZoneConfig { name, source });
    }
    zones
}

/// Turns byte offsets of the config text into `file:line:column` problems.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    /// A problem at byte range `span` of the text.
    fn problem(&self, span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.to_path_buf(),
            position: Some(self.line_column(span.start)),
            message: message.into(),
        }
    }

    /// A problem from a TOML syntax or schema error, naming the table it is in.
    fn toml_error(&self, error: &toml::de::Error) -> Problem {
        let message = error.message().trim_end().to_string();
        let Some(span) = error.span() else {
            return Problem {
                file: self.file.to_path_buf(),
                position: None,
                message,
            };
        };
        let message = match self.table_at(span.start) {
            Some(table) => format!("{table} {message}"),
            None => message,
        };
        self.problem(span, message)
    }

    /// 1-based line and column (in characters) of byte `offset`.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    /// The header (`[server]`, `[[zone]]`) of the table that byte `offset` is
    /// in, for messages; `None` at the top level.
    fn table_at(&self, offset: usize) -> Option<&str> {
        let before = self.text.get(..offset.min(self.text.len()))?;
        before.lines().rev().map(str::trim).find_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim_end();
            let is_header = line.starts_with('[')
                && line.ends_with(']')
                && line
                    .trim_matches(|c| c == '[' || c == ']')
                    .chars()
                    .all(is_bare_key_char);
            is_header.then_some(line)
        })
    }
}

/// Whether `c` may appear in a bare or dotted TOML table name.
fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("agent.toml"), Path::new("/etc/edgedns"))
    }

    fn problems(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:5300", "[::1]:5300"]
workers = 2

[[zone]]
name = "Example.TEST"
file = "zones/example.test.zone"

[[zone]]
name = "other.test."
file = "/var/lib/zones/other.test.zone"
"#;

    #[test]
    fn good_config_gets_defaults_and_resolved_paths() {
        let config = parse(GOOD).expect("valid");
        assert_eq!(config.server.listen.len(), 2);
        assert_eq!(config.server.workers, 2);
        assert_eq!(config.server.udp_payload, 1232);
        assert_eq!(config.server.tcp_idle_timeout, Duration::from_secs(10));
        assert_eq!(config.server.tcp_max_connections, 1024);
        assert_eq!(config.server.tcp_max_queries_per_connection, None);
        assert_eq!(config.zones[0].name.to_string(), "example.test.");
        assert_eq!(
            config.zones[0].source,
            ZoneSource::File(PathBuf::from("/etc/edgedns/zones/example.test.zone"))
        );
        assert_eq!(
            config.zones[1].source,
            ZoneSource::File(PathBuf::from("/var/lib/zones/other.test.zone"))
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line_and_table() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\nwokers = 2\n";
        let message = problems(text);
        assert!(
            message.starts_with("agent.toml:3:1: [server] unknown field `wokers`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_zone_key_names_the_zone_table() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\nname = \"a.test\"\nfile = \"a\"\nmaster = \"x\"\n";
        let message = problems(text);
        assert!(
            message.starts_with("agent.toml:6:1: [[zone]] unknown field `master`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_section_is_an_error() {
        let message = problems("[server]\nlisten = [\"127.0.0.1:53\"]\n[stats]\nx = 1\n");
        assert!(message.contains("unknown field `stats`"), "{message}");
    }

    #[test]
    fn every_bad_value_is_reported_with_its_position() {
        let text = r#"[server]
listen = ["127.0.0.1", "127.0.0.1:53", "127.0.0.1:53"]
workers = 65
udp_payload = 100
tcp_idle_timeout_ms = 0
tcp_max_connections = 0
tcp_max_queries_per_connection = -1
[[zone]]
name = "a..test"
file = "a"
[[zone]]
name = "b.test"
[[zone]]
name = "c.test"
file = "c"
[[zone]]
name = "C.test."
file = "c2"
"#;
        let message = problems(text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 10, "{message}");
        assert!(
            lines[0]
                .starts_with("agent.toml:2:11: [server] listen: \"127.0.0.1\" is not an address")
        );
        assert!(
            lines[1].starts_with("agent.toml:2:40: [server] listen: 127.0.0.1:53 is listed twice")
        );
        assert!(lines[2].starts_with("agent.toml:3:11: [server] workers: 65 is out of range"));
        assert!(lines[3].contains("udp_payload"));
        assert!(lines[4].contains("tcp_idle_timeout_ms"));
        assert!(lines[5].contains("tcp_max_connections"));
        assert!(lines[6].contains("tcp_max_queries_per_connection"));
        assert!(
            lines[7].starts_with(
                "agent.toml:9:8: [[zone]] name: \"a..test\" is not a valid domain name"
            )
        );
        assert!(lines[8].starts_with("agent.toml:12:8: [[zone]] b.test.: missing `file`"));
        assert!(
            lines[9].starts_with("agent.toml:17:8: [[zone]] name: zone c.test. is listed twice")
        );
    }

    #[test]
    fn listen_is_required_and_not_empty() {
        assert!(problems("[server]\n").contains("missing field `listen`"));
        assert!(problems("[server]\nlisten = []\n").contains("at least one address"));
    }

    #[test]
    fn zero_queries_per_connection_means_unlimited() {
        let config =
            parse("[server]\nlisten = [\"[::1]:53\"]\ntcp_max_queries_per_connection = 0\n")
                .expect("valid");
        assert_eq!(config.server.tcp_max_queries_per_connection, None);
        let config =
            parse("[server]\nlisten = [\"[::1]:53\"]\ntcp_max_queries_per_connection = 5\n")
                .expect("valid");
        assert_eq!(config.server.tcp_max_queries_per_connection, Some(5));
    }

    #[test]
    fn wrong_type_is_reported() {
        let message = problems("[server]\nlisten = [\"[::1]:53\"]\nworkers = \"two\"\n");
        assert!(
            message.starts_with("agent.toml:3:11: [server] invalid type"),
            "{message}"
        );
    }

    #[test]
    fn syntax_error_is_reported_with_position() {
        let message = problems("[server\nlisten = 1\n");
        assert!(message.starts_with("agent.toml:1:"), "{message}");
    }
}
