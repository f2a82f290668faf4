//! The agent's configuration file (TOML): what to listen on, which zones to
//! serve, where they come from, and the TSIG keys that protect transfers.
//!
//! The file is read in two steps. Serde reads it into the `Raw*` structs below
//! (every table denies unknown keys, so a misspelt option is an error naming
//! the key and its line), then [`Config::from_toml`] checks every value and
//! builds the validated [`Config`]: a `Config` that exists is usable as it is
//! (every TSIG key a zone names is defined, every secret is decoded, every
//! secondary zone has a store to live in). Every problem is reported as
//! `file:line:column: [table] message`, like the zone loader's
//! `file:line: message`.
//!
//! The format is a contract with other tools (the controller writes it); it is
//! documented option by option in `docs/configuration.md`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
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
/// Default number of IXFR history entries (versions) kept per zone.
pub const DEFAULT_MAX_JOURNAL_ENTRIES: usize = 100;
/// Most IXFR history entries per zone that may be configured.
pub const MAX_JOURNAL_ENTRIES: usize = 1_000_000;
/// Default time, in milliseconds, a connection to a master may go without progress.
pub const DEFAULT_TRANSFER_IDLE_TIMEOUT_MS: u64 = 10_000;
/// Port of a master or NOTIFY target whose address has none.
pub const DEFAULT_DNS_PORT: u16 = 53;
/// Shortest TSIG secret accepted, in bytes.
pub const MIN_TSIG_SECRET_LEN: usize = 16;

/// The validated configuration of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `[server]` section: sockets and query-path limits.
    pub server: ServerConfig,
    /// The `[store]` section; always present when a zone has masters.
    pub store: Option<StoreConfig>,
    /// The `[[tsig]]` sections, in file order; names are unique and lowercase.
    pub tsig_keys: Vec<TsigKeyConfig>,
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

/// The `[store]` section: the node's database of transferred zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database directory, resolved against the config file's folder;
    /// created at start if missing (not by `check`).
    pub path: PathBuf,
    /// IXFR history entries (one per version change) kept per zone; 0 keeps none.
    pub max_journal_entries: usize,
}

/// One `[[tsig]]` section: a shared secret for TSIG (RFC 8945).
///
/// Its `Debug` output shows the secret's length, never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKeyConfig {
    /// The key's name, lowercase; both ends of a transfer must use the same.
    pub name: Name,
    /// The HMAC algorithm.
    pub algorithm: TsigAlgorithmName,
    /// The decoded secret, at least [`MIN_TSIG_SECRET_LEN`] bytes.
    pub secret: Vec<u8>,
}

impl fmt::Debug for TsigKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKeyConfig")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// The TSIG algorithms a key may use. HMAC-SHA1 is deliberately absent:
/// RFC 8945 §6 marks it NOT RECOMMENDED and our TSIG code has no SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsigAlgorithmName {
    /// `hmac-sha256` (RFC 8945 §6: the one every implementation has).
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithmName {
    /// Every supported algorithm, in the order messages list them.
    pub const ALL: [TsigAlgorithmName; 3] = [
        TsigAlgorithmName::HmacSha256,
        TsigAlgorithmName::HmacSha384,
        TsigAlgorithmName::HmacSha512,
    ];

    /// The algorithm's name as written in the config file and (with a final
    /// dot) in TSIG records.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithmName::HmacSha256 => "hmac-sha256",
            TsigAlgorithmName::HmacSha384 => "hmac-sha384",
            TsigAlgorithmName::HmacSha512 => "hmac-sha512",
        }
    }

    /// Length of the MAC in bytes, which is also the recommended secret length.
    pub fn output_len(self) -> usize {
        match self {
            TsigAlgorithmName::HmacSha256 => 32,
            TsigAlgorithmName::HmacSha384 => 48,
            TsigAlgorithmName::HmacSha512 => 64,
        }
    }
}

impl fmt::Display for TsigAlgorithmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[zone]]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The zone's apex, lowercase.
    pub name: Name,
    /// Where the zone's data comes from.
    pub source: ZoneSource,
    /// Who may transfer the zone from us (AXFR and IXFR); empty: nobody.
    pub allow_transfer: Vec<TransferAcl>,
    /// Servers we send NOTIFY to after each new version; unique.
    pub notify: Vec<SocketAddr>,
}

/// Where a zone's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZoneSource {
    /// A primary zone: an RFC 1035 master file; the path is resolved against
    /// the config file's folder.
    File(PathBuf),
    /// A secondary zone, transferred from its masters.
    Secondary {
        /// The masters, in the order they are tried; at least one, unique.
        masters: Vec<MasterConfig>,
        /// Addresses besides the masters' allowed to send NOTIFY.
        notify_from: Vec<IpAddr>,
        /// How long a connection to a master may go without progress.
        transfer_idle_timeout: Duration,
        /// Most records one transfer may carry; `None` = unlimited.
        max_transfer_records: Option<u64>,
    },
}

/// One master of a secondary zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// Its address; the port is 53 unless the file gives one.
    pub address: SocketAddr,
    /// The TSIG key that signs requests to it and its answers; lowercase, and
    /// defined in [`Config::tsig_keys`].
    pub tsig: Option<Name>,
}

/// One `allow_transfer` entry: a network that may transfer the zone from us,
/// with the TSIG key its requests must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferAcl {
    /// The clients' network (a single address is a /32 or /128).
    pub network: IpNet,
    /// The key requests must carry; `None`: unsigned requests are allowed.
    /// Lowercase, and defined in [`Config::tsig_keys`].
    pub tsig: Option<Name>,
}

/// An IP network in CIDR form (`192.0.2.0/24`, `2001:db8::/32`), whose
/// address has no bits set past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    address: IpAddr,
    prefix_len: u8,
}

/// Why a text is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("not an IP address or network (like \"192.0.2.0/24\" or \"2001:db8::1\")")]
    BadAddress,
    /// The prefix length is not a number within the family's size.
    #[error("the prefix length must be 0..=32 for IPv4 and 0..=128 for IPv6")]
    BadPrefix,
    /// The address has bits set past the prefix.
    #[error("the address has bits set past the prefix; did you mean {0}?")]
    HostBits(String),
}

impl IpNet {
    /// The network of `prefix_len` bits starting at `address`.
    pub fn new(address: IpAddr, prefix_len: u8) -> Result<IpNet, IpNetError> {
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix_len > bits {
            return Err(IpNetError::BadPrefix);
        }
        let masked = mask(address, prefix_len);
        if masked != address {
            return Err(IpNetError::HostBits(format!("{masked}/{prefix_len}")));
        }
        Ok(IpNet {
            address,
            prefix_len,
        })
    }

    /// The first address of the network.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The number of leading bits that addresses inside share.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies inside. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) is taken as the IPv4 address it carries.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        let same_family = addr.is_ipv4() == self.address.is_ipv4();
        same_family && mask(addr, self.prefix_len) == self.address
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// Reads `ADDRESS/PREFIX` or a single `ADDRESS` (a /32 or /128).
    fn from_str(text: &str) -> Result<IpNet, IpNetError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| IpNetError::BadAddress)?;
        let prefix_len = match prefix {
            None if address.is_ipv4() => 32,
            None => 128,
            Some(prefix) if prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse().map_err(|_| IpNetError::BadPrefix)?
            }
            Some(_) => return Err(IpNetError::BadPrefix),
        };
        IpNet::new(address, prefix_len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// `address` with every bit past the first `prefix_len` cleared; `prefix_len`
/// is at most the family's size.
fn mask(address: IpAddr, prefix_len: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
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
    /// Reads and validates the config file at `path`. Relative paths (zone
    /// files, the store, secret files) are resolved against the folder
    /// holding `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Config::from_toml(&text, path, base)
    }

    /// Validates config `text`; `file` names it in messages, `base` is the
    /// folder that relative paths are resolved against (secret files are
    /// read from there).
    pub fn from_toml(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let locate = Locator { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            problems: vec![locate.toml_error(&e)],
        })?;
        let mut problems = Vec::new();
        let server = raw.server.validate(&locate, &mut problems);
        let store = raw
            .store
            .and_then(|store| store.validate(base, &locate, &mut problems));
        let keys = validate_tsig_keys(raw.tsig, base, &locate, &mut problems);
        let zones = validate_zones(raw.zone, base, &keys, &locate, &mut problems);
        if store.is_none()
            && let Some(span) = zones.first_secondary
        {
            problems.push(locate.problem(
                span,
                "[[zone]] masters: secondary zones need a [store] table (the database that keeps transferred zones)",
            ));
        }
        // Tables are checked one kind after the other; report in file order.
        problems.sort_by_key(|problem| problem.position.unwrap_or((usize::MAX, 0)));
        match server {
            Some(server) if problems.is_empty() => Ok(Config {
                server,
                store,
                tsig_keys: keys.valid,
                zones: zones.valid,
            }),
            _ => Err(ConfigError::Invalid { problems }),
        }
    }

    /// The `[[tsig]]` key named `name` (compared without regard to case).
    pub fn tsig_key(&self, name: &Name) -> Option<&TsigKeyConfig> {
        let name = name.to_lowercase();
        self.tsig_keys.iter().find(|key| key.name == name)
    }
}

/// The file as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    store: Option<RawStore>,
    #[serde(default)]
    tsig: Vec<RawTsig>,
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

/// `[store]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Spanned<String>,
    max_journal_entries: Option<Spanned<i64>>,
}

/// `[[tsig]]` as serde reads it. Its `Debug` output hides the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTsig {
    name: Spanned<String>,
    algorithm: Spanned<String>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
}

impl fmt::Debug for RawTsig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTsig")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("secret_file", &self.secret_file)
            .finish()
    }
}

/// `[[zone]]` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Spanned<String>,
    file: Option<Spanned<String>>,
    masters: Option<Spanned<Vec<RawPeer>>>,
    notify_from: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    allow_transfer: Vec<RawPeer>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    transfer_idle_timeout_ms: Option<Spanned<i64>>,
    max_transfer_records: Option<Spanned<i64>>,
}

/// An entry of `masters` or `allow_transfer` as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { address = \"192.0.2.1:53\", tsig = \"key-name.\" }"
)]
struct RawPeer {
    address: Spanned<String>,
    tsig: Option<Spanned<String>>,
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
            "[server] workers",
            1,
            MAX_WORKERS as i64,
            DEFAULT_WORKERS as i64,
            locate,
            problems,
        );
        let udp_payload = in_range(
            self.udp_payload,
            "[server] udp_payload",
            512,
            4096,
            i64::from(DEFAULT_UDP_PAYLOAD),
            locate,
            problems,
        );
        let idle_ms = in_range(
            self.tcp_idle_timeout_ms,
            "[server] tcp_idle_timeout_ms",
            1,
            3_600_000,
            DEFAULT_TCP_IDLE_TIMEOUT_MS as i64,
            locate,
            problems,
        );
        let max_connections = in_range(
            self.tcp_max_connections,
            "[server] tcp_max_connections",
            1,
            65_535,
            DEFAULT_TCP_MAX_CONNECTIONS as i64,
            locate,
            problems,
        );
        let max_queries = in_range(
            self.tcp_max_queries_per_connection,
            "[server] tcp_max_queries_per_connection",
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

impl RawStore {
    /// Checks the path and the journal size.
    fn validate(
        self,
        base: &Path,
        locate: &Locator<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<StoreConfig> {
        let before = problems.len();
        if self.path.get_ref().is_empty() {
            problems.push(locate.problem(self.path.span(), "[store] path: is empty"));
        }
        let max_journal_entries = in_range(
            self.max_journal_entries,
            "[store] max_journal_entries",
            0,
            MAX_JOURNAL_ENTRIES as i64,
            DEFAULT_MAX_JOURNAL_ENTRIES as i64,
            locate,
            problems,
        );
        if problems.len() != before {
            return None;
        }
        Some(StoreConfig {
            path: base.join(self.path.get_ref()),
            max_journal_entries: usize::try_from(max_journal_entries).ok()?,
        })
    }
}

/// The value of integer option `key` (named with its table, like
/// `[server] workers`), or `default` when absent; a value outside
/// `min..=max` adds a problem (and returns `default`).
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
        format!("{key}: {n} is out of range, expected {min}..={max}"),
    ));
    default
}

/// The checked `[[tsig]]` keys, and the names of every table, valid or not,
/// so that a reference to a key with a bad secret is not also reported as
/// a reference to no key.
struct CheckedKeys {
    valid: Vec<TsigKeyConfig>,
    declared: Vec<Name>,
}

/// Checks the `[[tsig]]` sections: unique names, a supported algorithm and
/// exactly one secret of at least [`MIN_TSIG_SECRET_LEN`] bytes.
fn validate_tsig_keys(
    raw: Vec<RawTsig>,
    base: &Path,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> CheckedKeys {
    let mut keys = CheckedKeys {
        valid: Vec::with_capacity(raw.len()),
        declared: Vec::with_capacity(raw.len()),
    };
    for key in raw {
        let name = match Name::parse(key.name.get_ref()) {
            Ok(name) => name.to_lowercase(),
            Err(e) => {
                problems.push(locate.problem(
                    key.name.span(),
                    format!(
                        "[[tsig]] name: {:?} is not a valid domain name: {e}",
                        key.name.get_ref()
                    ),
                ));
                continue;
            }
        };
        if keys.declared.contains(&name) {
            problems.push(locate.problem(
                key.name.span(),
                format!("[[tsig]] name: key {name} is defined twice"),
            ));
            continue;
        }
        keys.declared.push(name.clone());
        let algorithm = tsig_algorithm(&key.algorithm, &name, locate, problems);
        let secret = tsig_secret(key, &name, base, locate, problems);
        if let (Some(algorithm), Some(secret)) = (algorithm, secret) {
            keys.valid.push(TsigKeyConfig {
                name,
                algorithm,
                secret,
            });
        }
    }
    keys
}

/// The algorithm named by `text`, case-insensitive, a final dot allowed.
fn tsig_algorithm(
    text: &Spanned<String>,
    key: &Name,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> Option<TsigAlgorithmName> {
    let wanted = text.get_ref().trim_end_matches('.').to_ascii_lowercase();
    if let Some(&algorithm) = TsigAlgorithmName::ALL
        .iter()
        .find(|algorithm| algorithm.as_str() == wanted)
    {
        return Some(algorithm);
    }
    let message = if wanted == "hmac-sha1" {
        format!(
            "[[tsig]] {key}: algorithm hmac-sha1 is refused: RFC 8945 §6 marks it NOT RECOMMENDED and edge-agent's TSIG has no SHA-1; use hmac-sha256 (with a new secret, on the masters too)"
        )
    } else {
        format!(
            "[[tsig]] {key}: algorithm {:?} is not supported; expected hmac-sha256, hmac-sha384 or hmac-sha512",
            text.get_ref()
        )
    };
    problems.push(locate.problem(text.span(), message));
    None
}

/// The decoded secret of `key`, from `secret` or from `secret_file` (read
/// relative to `base`). Messages never quote the secret.
fn tsig_secret(
    key: RawTsig,
    name: &Name,
    base: &Path,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<u8>> {
    let (span, origin, text) = match (key.secret, key.secret_file) {
        (Some(_), Some(file)) => {
            problems.push(locate.problem(
                file.span(),
                format!("[[tsig]] {name}: has both `secret` and `secret_file`; give exactly one"),
            ));
            return None;
        }
        (None, None) => {
            problems.push(locate.problem(
                key.name.span(),
                format!("[[tsig]] {name}: missing `secret` (base64) or `secret_file`"),
            ));
            return None;
        }
        (Some(secret), None) => (secret.span(), "secret".to_string(), secret.into_inner()),
        (None, Some(file)) => {
            let path = base.join(file.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(text) => (
                    file.span(),
                    format!("secret_file {}", path.display()),
                    text.trim().to_string(),
                ),
                Err(e) => {
                    problems.push(locate.problem(
                        file.span(),
                        format!(
                            "[[tsig]] {name}: secret_file {}: cannot read: {e}",
                            path.display()
                        ),
                    ));
                    return None;
                }
            }
        }
    };
    let secret = match decode_base64(&text) {
        Ok(secret) => secret,
        Err(e) => {
            problems.push(locate.problem(
                span,
                format!("[[tsig]] {name}: {origin}: not valid base64: {e}"),
            ));
            return None;
        }
    };
    if secret.len() < MIN_TSIG_SECRET_LEN {
        problems.push(locate.problem(
            span,
            format!(
                "[[tsig]] {name}: {origin}: the secret is {} bytes, at least {MIN_TSIG_SECRET_LEN} are needed (as many as the MAC is long is best: `openssl rand -base64 32`)",
                secret.len()
            ),
        ));
        return None;
    }
    Some(secret)
}

/// Why a text is not strict base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Base64Error {
    /// The length is not a multiple of 4 (padding is required).
    #[error("its length is not a multiple of 4 (is `=` padding missing?)")]
    Length,
    /// A character outside the alphabet, or `=` not at the end.
    #[error("character {position} is not base64")]
    Character {
        /// 1-based position of the character.
        position: usize,
    },
    /// The bits that padding leaves over are not zero.
    #[error("the last character before `=` has bits set that padding drops")]
    TrailingBits,
}

/// Decodes standard base64 (RFC 4648 §4) strictly: `=` padding required,
/// no whitespace, no other alphabet, no stray bits before the padding.
fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(Base64Error::Length);
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let last_chunk = (bytes.len() / 4).saturating_sub(1);
    for (index, chunk) in bytes.chunks_exact(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 0 && (index != last_chunk || padding > 2) {
            let first_pad = index * 4 + 4 - padding;
            return Err(Base64Error::Character {
                position: first_pad + 1,
            });
        }
        let mut group: u32 = 0;
        for (offset, &byte) in chunk.iter().enumerate().take(4 - padding) {
            let value = base64_value(byte).ok_or(Base64Error::Character {
                position: index * 4 + offset + 1,
            })?;
            group = (group << 6) | u32::from(value);
        }
        group <<= 6 * padding;
        let decoded = group.to_be_bytes();
        let kept = 3 - padding;
        if decoded
            .get(1 + kept..)
            .is_some_and(|rest| rest.iter().any(|&b| b != 0))
        {
            return Err(Base64Error::TrailingBits);
        }
        out.extend_from_slice(decoded.get(1..1 + kept).unwrap_or(&[]));
    }
    Ok(out)
}

/// The 6-bit value of a base64 character, `None` outside the alphabet.
fn base64_value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The checked zones, and where the first secondary zone's `masters` is,
/// for the "needs a `[store]`" problem.
struct CheckedZones {
    valid: Vec<ZoneConfig>,
    first_secondary: Option<Range<usize>>,
}

/// Checks the `[[zone]]` sections: valid, unique names and one data source.
fn validate_zones(
    raw: Vec<RawZone>,
    base: &Path,
    keys: &CheckedKeys,
    locate: &Locator<'_>,
    problems: &mut Vec<Problem>,
) -> CheckedZones {
    let mut zones = CheckedZones {
        valid: Vec::with_capacity(raw.len()),
        first_secondary: None,
    };
    let mut names: Vec<Name> = Vec::with_capacity(raw.len());
    for zone in raw {
        if zones.first_secondary.is_none() {
            zones.first_secondary = zone.masters.as_ref().map(Spanned::span);
        }
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
        if names.contains(&name) {
            problems.push(locate.problem(
                zone.name.span(),
                format!("[[zone]] name: zone {name} is listed twice"),
            ));
            continue;
        }
        names.push(name.clone());
        let checker = ZoneChecker {
            name: &name,
            keys,
            locate,
        };
        if let Some(zone) = checker.check(zone, base, problems) {
            zones.valid.push(zone);
        }
    }
    zones
}

/// Checks the body of one `[[zone]]` whose name is valid and unique.
struct ZoneChecker<'a> {
    name: &'a Name,
    keys: &'a CheckedKeys,
    locate: &'a Locator<'a>,
}

impl ZoneChecker<'_> {
    /// The checked zone, or `None` after adding a problem for each bad value.
    fn check(&self, zone: RawZone, base: &Path, problems: &mut Vec<Problem>) -> Option<ZoneConfig> {
        let before = problems.len();
        let name = self.name;
        let source = match (zone.file, zone.masters) {
            (Some(_), Some(masters)) => {
                problems.push(self.locate.problem(
                    masters.span(),
                    format!(
                        "[[zone]] {name}: has both `file` (a primary zone) and `masters` (a secondary zone); give exactly one"
                    ),
                ));
                None
            }
            (None, None) => {
                problems.push(self.locate.problem(
                    zone.name.span(),
                    format!(
                        "[[zone]] {name}: missing `file` (a primary zone's master file) or `masters` (a secondary zone's masters)"
                    ),
                ));
                None
            }
            (Some(file), None) => {
                self.refuse_on_primary("notify_from", zone.notify_from.map(|v| v.span()), problems);
                self.refuse_on_primary(
                    "transfer_idle_timeout_ms",
                    zone.transfer_idle_timeout_ms.map(|v| v.span()),
                    problems,
                );
                self.refuse_on_primary(
                    "max_transfer_records",
                    zone.max_transfer_records.map(|v| v.span()),
                    problems,
                );
                if file.get_ref().is_empty() {
                    problems.push(
                        self.locate
                            .problem(file.span(), format!("[[zone]] {name}: `file` is empty")),
                    );
                }
                Some(ZoneSource::File(base.join(file.get_ref())))
            }
            (None, Some(masters)) => self.secondary(
                masters,
                zone.notify_from,
                zone.transfer_idle_timeout_ms,
                zone.max_transfer_records,
                problems,
            ),
        };
        let allow_transfer: Vec<TransferAcl> = zone
            .allow_transfer
            .into_iter()
            .filter_map(|entry| self.acl(entry, problems))
            .collect();
        let mut notify: Vec<SocketAddr> = Vec::with_capacity(zone.notify.len());
        for target in zone.notify {
            let Some(address) = self.peer_address(&target, "notify", problems) else {
                continue;
            };
            if notify.contains(&address) {
                problems.push(self.locate.problem(
                    target.span(),
                    format!("[[zone]] {name}: notify: {address} is listed twice"),
                ));
                continue;
            }
            notify.push(address);
        }
        if problems.len() != before {
            return None;
        }
        Some(ZoneConfig {
            name: name.clone(),
            source: source?,
            allow_transfer,
            notify,
        })
    }

    /// The source of a secondary zone: its masters and their limits.
    fn secondary(
        &self,
        masters: Spanned<Vec<RawPeer>>,
        notify_from: Option<Spanned<Vec<Spanned<String>>>>,
        idle_timeout_ms: Option<Spanned<i64>>,
        max_records: Option<Spanned<i64>>,
        problems: &mut Vec<Problem>,
    ) -> Option<ZoneSource> {
        let name = self.name;
        if masters.get_ref().is_empty() {
            problems.push(self.locate.problem(
                masters.span(),
                format!("[[zone]] {name}: masters: at least one master is needed"),
            ));
        }
        let mut checked: Vec<MasterConfig> = Vec::with_capacity(masters.get_ref().len());
        for master in masters.into_inner() {
            let address = self.peer_address(&master.address, "masters", problems);
            let tsig = self.key_reference(master.tsig.as_ref(), "masters", problems);
            let (Some(address), Some(tsig)) = (address, tsig) else {
                continue;
            };
            if checked.iter().any(|m| m.address == address) {
                problems.push(self.locate.problem(
                    master.address.span(),
                    format!("[[zone]] {name}: masters: {address} is listed twice"),
                ));
                continue;
            }
            checked.push(MasterConfig { address, tsig });
        }
        let mut allowed: Vec<IpAddr> = Vec::new();
        for entry in notify_from.map(Spanned::into_inner).unwrap_or_default() {
            match entry.get_ref().parse::<IpAddr>() {
                Ok(address) => allowed.push(address),
                Err(_) => problems.push(self.locate.problem(
                    entry.span(),
                    format!(
                        "[[zone]] {name}: notify_from: {:?} is not an IP address (like \"192.0.2.1\" or \"2001:db8::1\", without a port)",
                        entry.get_ref()
                    ),
                )),
            }
        }
        let idle_ms = in_range(
            idle_timeout_ms,
            &format!("[[zone]] {name}: transfer_idle_timeout_ms"),
            1,
            3_600_000,
            DEFAULT_TRANSFER_IDLE_TIMEOUT_MS as i64,
            self.locate,
            problems,
        );
        let max_records = in_range(
            max_records,
            &format!("[[zone]] {name}: max_transfer_records"),
            0,
            i64::MAX,
            0,
            self.locate,
            problems,
        );
        Some(ZoneSource::Secondary {
            masters: checked,
            notify_from: allowed,
            transfer_idle_timeout: Duration::from_millis(u64::try_from(idle_ms).ok()?),
            max_transfer_records: u64::try_from(max_records).ok().filter(|&n| n != 0),
        })
    }

    /// One `allow_transfer` entry.
    fn acl(&self, entry: RawPeer, problems: &mut Vec<Problem>) -> Option<TransferAcl> {
        let network = match entry.address.get_ref().parse::<IpNet>() {
            Ok(network) => Some(network),
            Err(e) => {
                problems.push(self.locate.problem(
                    entry.address.span(),
                    format!(
                        "[[zone]] {}: allow_transfer: {:?}: {e}",
                        self.name,
                        entry.address.get_ref()
                    ),
                ));
                None
            }
        };
        let tsig = self.key_reference(entry.tsig.as_ref(), "allow_transfer", problems);
        Some(TransferAcl {
            network: network?,
            tsig: tsig?,
        })
    }

    /// The address of a master or NOTIFY target: `IP:PORT`, `[IPv6]:PORT`,
    /// or an address alone (port 53).
    fn peer_address(
        &self,
        text: &Spanned<String>,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<SocketAddr> {
        let address = parse_peer_address(text.get_ref());
        let message = match address {
            Some(address) if address.port() != 0 => return Some(address),
            Some(_) => format!(
                "[[zone]] {}: {key}: {:?} has port 0",
                self.name,
                text.get_ref()
            ),
            None => format!(
                "[[zone]] {}: {key}: {:?} is not an address (like \"192.0.2.1\", \"192.0.2.1:5300\" or \"[2001:db8::1]:53\")",
                self.name,
                text.get_ref()
            ),
        };
        problems.push(self.locate.problem(text.span(), message));
        None
    }

    /// The key named by a `tsig = "…"` reference, which must be a `[[tsig]]`
    /// table: `Some(None)` without a reference, `None` after a problem.
    fn key_reference(
        &self,
        reference: Option<&Spanned<String>>,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Option<Name>> {
        let Some(reference) = reference else {
            return Some(None);
        };
        let wanted = Name::parse(reference.get_ref())
            .ok()
            .map(|name| name.to_lowercase());
        match wanted {
            Some(name) if self.keys.valid.iter().any(|k| k.name == name) => Some(Some(name)),
            // A table with that name exists but is invalid: reported there.
            Some(name) if self.keys.declared.contains(&name) => None,
            _ => {
                problems.push(self.locate.problem(
                    reference.span(),
                    format!(
                        "[[zone]] {}: {key}: tsig key {:?} is not defined by any [[tsig]] table",
                        self.name,
                        reference.get_ref()
                    ),
                ));
                None
            }
        }
    }

    /// Adds a problem if a secondary-only `key` is set (at `span`) on a primary zone.
    fn refuse_on_primary(
        &self,
        key: &str,
        span: Option<Range<usize>>,
        problems: &mut Vec<Problem>,
    ) {
        if let Some(span) = span {
            problems.push(self.locate.problem(
                span,
                format!(
                    "[[zone]] {}: `{key}` is only for secondary zones (with `masters`), not with `file`",
                    self.name
                ),
            ));
        }
    }
}

/// Reads `IP:PORT`, `[IPv6]:PORT`, `IP` or `[IPv6]`; the port defaults to 53.
fn parse_peer_address(text: &str) -> Option<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address);
    }
    let ip = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inside) => IpAddr::V6(inside.parse().ok()?),
        None => text.parse().ok()?,
    };
    Some(SocketAddr::new(ip, DEFAULT_DNS_PORT))
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
        assert_eq!(config.store, None);
        assert!(config.tsig_keys.is_empty());
        assert_eq!(config.zones[0].name.to_string(), "example.test.");
        assert!(config.zones[0].allow_transfer.is_empty());
        assert!(config.zones[0].notify.is_empty());
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

    /// 33 bytes, base64.
    const SECRET: &str = "ZWRnZWRucy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm";

    /// The server section every test below starts with.
    const SERVER: &str = "[server]\nlisten = [\"127.0.0.1:5300\"]\n";

    /// `SERVER`, a store and one valid key `xfr-key.`, then `rest`.
    fn with_key(rest: &str) -> String {
        format!(
            "{SERVER}[store]\npath = \"db\"\n[[tsig]]\nname = \"xfr-key.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n{rest}"
        )
    }

    /// The first (only) problem's text, for tests of one rule.
    fn only_problem(text: &str) -> String {
        let message = problems(text);
        assert_eq!(message.lines().count(), 1, "{message}");
        message
    }

    /// The secondary zone `ministry.test.` with the given extra keys.
    fn secondary(extra: &str) -> String {
        with_key(&format!(
            "[[zone]]\nname = \"ministry.test.\"\nmasters = [ {{ address = \"127.0.0.1:5400\", tsig = \"xfr-key.\" }} ]\n{extra}"
        ))
    }

    /// A fresh folder for one test's files.
    fn temp_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("edge-agent-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn full_example_parses() {
        let text = format!(
            r#"
[server]
listen = ["127.0.0.1:5300"]

[store]
path = "/var/lib/edge-agent"
max_journal_entries = 50

[[tsig]]
name = "xfr-key."
algorithm = "hmac-sha256"
secret = "{SECRET}"

[[tsig]]
name = "Other-Key"
algorithm = "HMAC-SHA512."
secret = "{SECRET}"

[[zone]]
name = "ministry.test."
masters = [ {{ address = "127.0.0.1:5400", tsig = "xfr-key." }},
            {{ address = "127.0.0.2:5400", tsig = "xfr-key." }},
            {{ address = "[::1]" }} ]
notify_from = ["192.0.2.7", "2001:db8::7"]
allow_transfer = [ {{ address = "127.0.0.0/8", tsig = "xfr-key." }}, {{ address = "::1" }} ]
notify = [ "127.0.0.1:5401", "192.0.2.1" ]
transfer_idle_timeout_ms = 2500
max_transfer_records = 5000000

[[zone]]
name = "example.test."
file = "example.test.zone"
allow_transfer = [ {{ address = "192.0.2.0/24", tsig = "other-key." }} ]
notify = [ "[2001:db8::53]:53" ]
"#
        );
        let config = parse(&text).expect("valid");
        assert_eq!(
            config.store,
            Some(StoreConfig {
                path: PathBuf::from("/var/lib/edge-agent"),
                max_journal_entries: 50,
            })
        );
        assert_eq!(config.tsig_keys.len(), 2);
        let key = &config.tsig_keys[0];
        assert_eq!(key.name.to_string(), "xfr-key.");
        assert_eq!(key.algorithm, TsigAlgorithmName::HmacSha256);
        assert_eq!(key.secret, b"edgedns-test-key-0123456789abcdef");
        assert_eq!(config.tsig_keys[1].algorithm, TsigAlgorithmName::HmacSha512);
        let other = Name::parse("OTHER-key.").expect("name");
        let lower_other = other.to_lowercase();
        assert_eq!(
            config.tsig_key(&other).map(|k| k.name.to_string()),
            Some("other-key.".to_string())
        );

        let xfr_key = Some(Name::parse("xfr-key.").expect("name"));
        let ministry = &config.zones[0];
        assert_eq!(
            ministry.source,
            ZoneSource::Secondary {
                masters: vec![
                    MasterConfig {
                        address: "127.0.0.1:5400".parse().expect("address"),
                        tsig: xfr_key.clone(),
                    },
                    MasterConfig {
                        address: "127.0.0.2:5400".parse().expect("address"),
                        tsig: xfr_key.clone(),
                    },
                    MasterConfig {
                        address: "[::1]:53".parse().expect("address"),
                        tsig: None,
                    },
                ],
                notify_from: vec![
                    "192.0.2.7".parse().expect("address"),
                    "2001:db8::7".parse().expect("address"),
                ],
                transfer_idle_timeout: Duration::from_millis(2500),
                max_transfer_records: Some(5_000_000),
            }
        );
        assert_eq!(
            ministry.allow_transfer,
            vec![
                TransferAcl {
                    network: "127.0.0.0/8".parse().expect("network"),
                    tsig: xfr_key,
                },
                TransferAcl {
                    network: "::1/128".parse().expect("network"),
                    tsig: None,
                },
            ]
        );
        assert_eq!(
            ministry.notify,
            vec![
                "127.0.0.1:5401".parse::<SocketAddr>().expect("address"),
                "192.0.2.1:53".parse().expect("address"),
            ]
        );
        let example = &config.zones[1];
        assert_eq!(
            example.source,
            ZoneSource::File(PathBuf::from("/etc/edgedns/example.test.zone"))
        );
        assert_eq!(example.allow_transfer[0].tsig, Some(lower_other));
        assert_eq!(
            example.notify,
            vec!["[2001:db8::53]:53".parse::<SocketAddr>().expect("address")]
        );
    }

    #[test]
    fn secondary_defaults_apply_when_options_are_absent() {
        let config = parse(&secondary("")).expect("valid");
        let store = config.store.expect("store");
        assert_eq!(store.path, PathBuf::from("/etc/edgedns/db"));
        assert_eq!(store.max_journal_entries, DEFAULT_MAX_JOURNAL_ENTRIES);
        let ZoneSource::Secondary {
            notify_from,
            transfer_idle_timeout,
            max_transfer_records,
            ..
        } = &config.zones[0].source
        else {
            panic!("not secondary: {:?}", config.zones[0]);
        };
        assert!(notify_from.is_empty());
        assert_eq!(*transfer_idle_timeout, Duration::from_secs(10));
        assert_eq!(*max_transfer_records, None);
    }

    #[test]
    fn max_transfer_records_zero_means_unlimited() {
        let config = parse(&secondary("max_transfer_records = 0\n")).expect("valid");
        assert!(matches!(
            config.zones[0].source,
            ZoneSource::Secondary {
                max_transfer_records: None,
                ..
            }
        ));
    }

    #[test]
    fn transfer_idle_timeout_out_of_range_is_refused() {
        let message = only_problem(&secondary("transfer_idle_timeout_ms = 0\n"));
        assert!(
            message.contains(
                "[[zone]] ministry.test.: transfer_idle_timeout_ms: 0 is out of range, expected 1..=3600000"
            ),
            "{message}"
        );
        let message = only_problem(&secondary("max_transfer_records = -1\n"));
        assert!(
            message.contains("max_transfer_records: -1 is out of range"),
            "{message}"
        );
    }

    #[test]
    fn zone_with_both_file_and_masters_is_refused() {
        let message = only_problem(&secondary("file = \"ministry.zone\"\n"));
        assert!(
            message.starts_with(
                "agent.toml:11:11: [[zone]] ministry.test.: has both `file` (a primary zone) and `masters` (a secondary zone)"
            ),
            "{message}"
        );
    }

    #[test]
    fn zone_with_neither_file_nor_masters_is_refused() {
        let message = only_problem(&format!("{SERVER}[[zone]]\nname = \"a.test\"\n"));
        assert!(
            message.starts_with(
                "agent.toml:4:8: [[zone]] a.test.: missing `file` (a primary zone's master file) or `masters`"
            ),
            "{message}"
        );
    }

    #[test]
    fn empty_masters_is_refused() {
        let text = with_key("[[zone]]\nname = \"a.test\"\nmasters = []\n");
        let message = only_problem(&text);
        assert!(
            message.contains("[[zone]] a.test.: masters: at least one master is needed"),
            "{message}"
        );
    }

    #[test]
    fn master_port_defaults_to_53() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"127.0.0.1\" }, { address = \"[::1]:53\" }, { address = \"[::2]\" }, { address = \"::3\" }, { address = \"127.0.0.2:5300\" } ]\n",
        );
        let config = parse(&text).expect("valid");
        let ZoneSource::Secondary { masters, .. } = &config.zones[0].source else {
            panic!("not secondary");
        };
        let addresses: Vec<String> = masters.iter().map(|m| m.address.to_string()).collect();
        assert_eq!(
            addresses,
            [
                "127.0.0.1:53",
                "[::1]:53",
                "[::2]:53",
                "[::3]:53",
                "127.0.0.2:5300"
            ]
        );
    }

    #[test]
    fn bad_master_and_notify_addresses_are_named() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"master.example\" }, { address = \"[127.0.0.1]\" }, { address = \"127.0.0.1:0\" } ]\nnotify = [ \"127.0.0.1:99999\" ]\n",
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 4, "{message}");
        assert!(
            lines[0].starts_with(
                "agent.toml:11:25: [[zone]] a.test.: masters: \"master.example\" is not an address"
            ),
            "{message}"
        );
        assert!(
            lines[1].contains("\"[127.0.0.1]\" is not an address"),
            "{message}"
        );
        assert!(lines[2].contains("\"127.0.0.1:0\" has port 0"), "{message}");
        assert!(
            lines[3].starts_with("agent.toml:12:12: [[zone]] a.test.: notify: \"127.0.0.1:99999\""),
            "{message}"
        );
    }

    #[test]
    fn master_or_notify_target_listed_twice_is_refused() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"127.0.0.1\" }, { address = \"127.0.0.1:53\" } ]\nnotify = [ \"192.0.2.1\", \"192.0.2.1:53\" ]\n",
        );
        let message = problems(&text);
        assert!(
            message.contains("masters: 127.0.0.1:53 is listed twice"),
            "{message}"
        );
        assert!(
            message.contains("notify: 192.0.2.1:53 is listed twice"),
            "{message}"
        );
    }

    #[test]
    fn master_given_as_a_string_says_what_is_expected() {
        let text = with_key("[[zone]]\nname = \"a.test\"\nmasters = [ \"127.0.0.1\" ]\n");
        let message = only_problem(&text);
        assert!(
            message.contains("[[zone]]") && message.contains("expected a table like { address ="),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_in_a_master_is_named() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"127.0.0.1\", key = \"xfr-key.\" } ]\n",
        );
        let message = only_problem(&text);
        assert!(message.contains("unknown field `key`"), "{message}");
    }

    #[test]
    fn notify_from_on_a_primary_zone_is_refused() {
        let text = format!(
            "{SERVER}[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\nnotify_from = [\"192.0.2.1\"]\ntransfer_idle_timeout_ms = 5\nmax_transfer_records = 5\n"
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 3, "{message}");
        assert!(
            lines[0].starts_with(
                "agent.toml:6:15: [[zone]] a.test.: `notify_from` is only for secondary zones"
            ),
            "{message}"
        );
        assert!(lines[1].contains("`transfer_idle_timeout_ms` is only for secondary zones"));
        assert!(lines[2].contains("`max_transfer_records` is only for secondary zones"));
    }

    #[test]
    fn bad_notify_from_address_is_named() {
        let message = only_problem(&secondary("notify_from = [\"192.0.2.1:53\"]\n"));
        assert!(
            message.contains("notify_from: \"192.0.2.1:53\" is not an IP address"),
            "{message}"
        );
    }

    #[test]
    fn allow_transfer_and_notify_are_allowed_on_primary_zones() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\nallow_transfer = [ { address = \"10.0.0.0/8\", tsig = \"xfr-key.\" } ]\nnotify = [\"10.1.2.3:5300\"]\n",
        );
        let config = parse(&text).expect("valid");
        assert_eq!(config.zones[0].allow_transfer.len(), 1);
        assert_eq!(config.zones[0].notify.len(), 1);
    }

    #[test]
    fn bad_allow_transfer_network_is_named() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\nallow_transfer = [ { address = \"10.0.0.1/8\" }, { address = \"10.0.0.0/33\" }, { address = \"any\" } ]\n",
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 3, "{message}");
        assert!(
            lines[0].contains(
                "allow_transfer: \"10.0.0.1/8\": the address has bits set past the prefix; did you mean 10.0.0.0/8?"
            ),
            "{message}"
        );
        assert!(lines[1].contains("prefix length"), "{message}");
        assert!(
            lines[2].contains("not an IP address or network"),
            "{message}"
        );
    }

    #[test]
    fn secondary_zone_without_store_is_refused() {
        let text = format!(
            "{SERVER}[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\n[[zone]]\nname = \"b.test\"\nmasters = [ {{ address = \"192.0.2.1\" }} ]\n[[zone]]\nname = \"c.test\"\nmasters = [ {{ address = \"192.0.2.1\" }} ]\n"
        );
        let message = only_problem(&text);
        assert!(
            message.starts_with(
                "agent.toml:8:11: [[zone]] masters: secondary zones need a [store] table"
            ),
            "{message}"
        );
    }

    #[test]
    fn store_is_optional_for_primary_zones_and_needs_a_path() {
        let config = parse(&format!("{SERVER}[store]\npath = \"/srv/db\"\n")).expect("valid");
        assert_eq!(config.store.map(|s| s.path), Some(PathBuf::from("/srv/db")));
        assert!(problems(&format!("{SERVER}[store]\n")).contains("missing field `path`"));
        assert!(
            problems(&format!("{SERVER}[store]\npath = \"\"\n")).contains("[store] path: is empty")
        );
    }

    #[test]
    fn max_journal_entries_out_of_range_is_refused() {
        let message = only_problem(&format!(
            "{SERVER}[store]\npath = \"db\"\nmax_journal_entries = -1\n"
        ));
        assert!(
            message.starts_with(
                "agent.toml:5:23: [store] max_journal_entries: -1 is out of range, expected 0..=1000000"
            ),
            "{message}"
        );
        let config = parse(&format!(
            "{SERVER}[store]\npath = \"db\"\nmax_journal_entries = 0\n"
        ))
        .expect("valid");
        assert_eq!(config.store.map(|s| s.max_journal_entries), Some(0));
    }

    #[test]
    fn unknown_tsig_reference_is_named() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"192.0.2.1\", tsig = \"nokey.\" } ]\nallow_transfer = [ { address = \"192.0.2.0/24\", tsig = \"other.\" } ]\n",
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message}");
        assert!(
            lines[0].starts_with(
                "agent.toml:11:45: [[zone]] a.test.: masters: tsig key \"nokey.\" is not defined by any [[tsig]] table"
            ),
            "{message}"
        );
        assert!(
            lines[1].contains(
                "[[zone]] a.test.: allow_transfer: tsig key \"other.\" is not defined by any [[tsig]] table"
            ),
            "{message}"
        );
    }

    #[test]
    fn tsig_reference_ignores_case_and_final_dot() {
        let text = with_key(
            "[[zone]]\nname = \"a.test\"\nmasters = [ { address = \"192.0.2.1\", tsig = \"XFR-Key\" } ]\n",
        );
        let config = parse(&text).expect("valid");
        let ZoneSource::Secondary { masters, .. } = &config.zones[0].source else {
            panic!("not secondary");
        };
        assert_eq!(
            masters[0].tsig,
            Some(Name::parse("xfr-key.").expect("name"))
        );
    }

    #[test]
    fn reference_to_an_invalid_key_is_reported_once_at_the_key() {
        let text = format!(
            "{SERVER}[store]\npath = \"db\"\n[[tsig]]\nname = \"old-key.\"\nalgorithm = \"hmac-sha1\"\nsecret = \"{SECRET}\"\n[[zone]]\nname = \"a.test\"\nmasters = [ {{ address = \"192.0.2.1\", tsig = \"old-key.\" }} ]\n"
        );
        let message = only_problem(&text);
        assert!(
            message.contains("[[tsig]] old-key.: algorithm hmac-sha1"),
            "{message}"
        );
    }

    #[test]
    fn hmac_sha1_is_refused_with_reason() {
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha1\"\nsecret = \"{SECRET}\"\n"
        );
        let message = only_problem(&text);
        assert!(
            message.starts_with(
                "agent.toml:5:13: [[tsig]] k.: algorithm hmac-sha1 is refused: RFC 8945 §6 marks it NOT RECOMMENDED"
            ),
            "{message}"
        );
        assert!(message.contains("use hmac-sha256"), "{message}");
    }

    #[test]
    fn unknown_algorithm_is_refused_with_the_supported_list() {
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-md5\"\nsecret = \"{SECRET}\"\n"
        );
        let message = only_problem(&text);
        assert!(
            message.contains(
                "algorithm \"hmac-md5\" is not supported; expected hmac-sha256, hmac-sha384 or hmac-sha512"
            ),
            "{message}"
        );
    }

    #[test]
    fn tsig_key_names_are_unique_and_valid() {
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n[[tsig]]\nname = \"K\"\nalgorithm = \"hmac-sha384\"\nsecret = \"{SECRET}\"\n[[tsig]]\nname = \"a..b\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message}");
        assert!(
            lines[0].starts_with("agent.toml:8:8: [[tsig]] name: key k. is defined twice"),
            "{message}"
        );
        assert!(
            lines[1]
                .starts_with("agent.toml:12:8: [[tsig]] name: \"a..b\" is not a valid domain name"),
            "{message}"
        );
    }

    #[test]
    fn tsig_needs_exactly_one_of_secret_and_secret_file() {
        let both = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\nsecret_file = \"k.key\"\n"
        );
        let message = only_problem(&both);
        assert!(
            message.contains("[[tsig]] k.: has both `secret` and `secret_file`; give exactly one"),
            "{message}"
        );
        let neither = format!("{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\n");
        let message = only_problem(&neither);
        assert!(
            message.starts_with(
                "agent.toml:4:8: [[tsig]] k.: missing `secret` (base64) or `secret_file`"
            ),
            "{message}"
        );
    }

    #[test]
    fn secret_that_is_not_base64_is_refused_without_echoing_it() {
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"Zm9v!mFy{SECRET}\"\n"
        );
        let message = only_problem(&text);
        assert!(
            message.starts_with("agent.toml:6:10: [[tsig]] k.: secret: not valid base64:"),
            "{message}"
        );
        assert!(
            !message.contains("Zm9v"),
            "the secret is not quoted: {message}"
        );
    }

    #[test]
    fn secret_shorter_than_16_bytes_is_refused() {
        // "short-secret-15": 15 bytes.
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2hvcnQtc2VjcmV0LTE1\"\n"
        );
        let message = only_problem(&text);
        assert!(
            message.contains("[[tsig]] k.: secret: the secret is 15 bytes, at least 16 are needed"),
            "{message}"
        );
        // "exactly-16-bytes": accepted.
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"ZXhhY3RseS0xNi1ieXRlcw==\"\n"
        );
        assert_eq!(
            parse(&text).expect("valid").tsig_keys[0].secret,
            b"exactly-16-bytes"
        );
    }

    #[test]
    fn secret_file_is_read_relative_to_the_config_folder() {
        let dir = temp_dir("secret-file");
        std::fs::create_dir_all(dir.join("keys")).expect("keys folder");
        std::fs::write(dir.join("keys/xfr.key"), format!("{SECRET}\n")).expect("write key");
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha384\"\nsecret_file = \"keys/xfr.key\"\n"
        );
        let config = Config::from_toml(&text, Path::new("agent.toml"), &dir).expect("valid");
        assert_eq!(
            config.tsig_keys[0].secret,
            b"edgedns-test-key-0123456789abcdef"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unreadable_secret_file_is_named() {
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"keys/missing.key\"\n"
        );
        let message = only_problem(&text);
        assert!(
            message.starts_with(
                "agent.toml:6:15: [[tsig]] k.: secret_file /etc/edgedns/keys/missing.key: cannot read:"
            ),
            "{message}"
        );
    }

    #[test]
    fn secret_file_that_is_not_base64_names_the_file() {
        let dir = temp_dir("secret-file-bad");
        std::fs::write(dir.join("bad.key"), "not base64 at all\n").expect("write key");
        let text = format!(
            "{SERVER}[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"bad.key\"\n"
        );
        let error = Config::from_toml(&text, Path::new("agent.toml"), &dir).expect_err("invalid");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "[[tsig]] k.: secret_file {}: not valid base64",
                dir.join("bad.key").display()
            )),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn debug_output_does_not_show_secrets() {
        let config = parse(&secondary("")).expect("valid");
        let debug = format!("{config:?}");
        assert!(debug.contains("secret: <33 bytes>"), "{debug}");
        assert!(!debug.contains("101, 100, 103"), "{debug}");
        let raw: RawConfig = toml::from_str(&secondary("")).expect("toml");
        let debug = format!("{raw:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn problems_are_listed_in_file_order() {
        let text = format!(
            "{SERVER}[[zone]]\nname = \"a..test\"\nfile = \"a\"\n[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha1\"\nsecret = \"{SECRET}\"\n"
        );
        let message = problems(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message}");
        assert!(lines[0].starts_with("agent.toml:4:"), "{message}");
        assert!(lines[1].starts_with("agent.toml:8:"), "{message}");
    }

    #[test]
    fn cidr_contains_addresses_inside_only() {
        let net: IpNet = "192.0.2.0/24".parse().expect("network");
        let inside = |text: &str| net.contains(text.parse().expect("address"));
        assert!(inside("192.0.2.0"));
        assert!(inside("192.0.2.255"));
        assert!(!inside("192.0.3.0"));
        assert!(!inside("192.0.1.255"));
        assert!(!inside("2001:db8::1"));
        assert!(
            inside("::ffff:192.0.2.9"),
            "IPv4-mapped addresses count as IPv4"
        );

        let net: IpNet = "2001:db8::/32".parse().expect("network");
        assert!(net.contains("2001:db8:ffff::1".parse().expect("address")));
        assert!(!net.contains("2001:db9::".parse().expect("address")));
        assert!(!net.contains("32.1.13.184".parse().expect("address")));

        let all: IpNet = "0.0.0.0/0".parse().expect("network");
        assert!(all.contains("203.0.113.1".parse().expect("address")));
        assert!(!all.contains("::1".parse().expect("address")));
        let all6: IpNet = "::/0".parse().expect("network");
        assert!(all6.contains("2001:db8::1".parse().expect("address")));
    }

    #[test]
    fn cidr_single_address_is_a_host_network() {
        let host: IpNet = "192.0.2.1".parse().expect("network");
        assert_eq!(host.prefix_len(), 32);
        assert_eq!(host.to_string(), "192.0.2.1/32");
        assert!(host.contains("192.0.2.1".parse().expect("address")));
        assert!(!host.contains("192.0.2.2".parse().expect("address")));
        let host6: IpNet = "::1".parse().expect("network");
        assert_eq!(host6.to_string(), "::1/128");
    }

    #[test]
    fn cidr_with_host_bits_or_bad_prefix_is_refused() {
        assert_eq!(
            "10.1.2.3/8".parse::<IpNet>(),
            Err(IpNetError::HostBits("10.0.0.0/8".to_string()))
        );
        assert_eq!("10.0.0.0/33".parse::<IpNet>(), Err(IpNetError::BadPrefix));
        assert_eq!("::/129".parse::<IpNet>(), Err(IpNetError::BadPrefix));
        assert_eq!("10.0.0.0/+8".parse::<IpNet>(), Err(IpNetError::BadPrefix));
        assert_eq!("10.0.0.0/".parse::<IpNet>(), Err(IpNetError::BadPrefix));
        assert_eq!("10.0.0/8".parse::<IpNet>(), Err(IpNetError::BadAddress));
    }

    #[test]
    fn base64_decoder_is_strict() {
        assert_eq!(decode_base64(""), Ok(Vec::new()));
        assert_eq!(decode_base64("Zg=="), Ok(b"f".to_vec()));
        assert_eq!(decode_base64("Zm8="), Ok(b"fo".to_vec()));
        assert_eq!(decode_base64("Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(decode_base64("+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode_base64("Zg"), Err(Base64Error::Length));
        assert_eq!(decode_base64("Zm9v Zm9v"), Err(Base64Error::Length));
        assert_eq!(
            decode_base64("Zm9vZ==="),
            Err(Base64Error::Character { position: 6 })
        );
        assert_eq!(
            decode_base64("Zg==Zm9v"),
            Err(Base64Error::Character { position: 3 })
        );
        assert_eq!(
            decode_base64("Zm-v"),
            Err(Base64Error::Character { position: 3 })
        );
        assert_eq!(
            decode_base64("Z=9v"),
            Err(Base64Error::Character { position: 2 })
        );
        assert_eq!(decode_base64("Zh=="), Err(Base64Error::TrailingBits));
        assert_eq!(decode_base64("Zm9="), Err(Base64Error::TrailingBits));
    }

    /// Standard base64 with padding, for the property tests.
    fn encode_base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from_be_bytes([0, group[0], group[1], group[2]]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..100)) {
            proptest::prop_assert_eq!(decode_base64(&encode_base64(&bytes)), Ok(bytes));
        }

        #[test]
        fn base64_decoder_never_panics(text in "[A-Za-z0-9+/=!\\- ]{0,40}") {
            let _ = decode_base64(&text);
        }

        #[test]
        fn cidr_contains_exactly_the_addresses_sharing_the_prefix(
            network in proptest::num::u32::ANY,
            address in proptest::num::u32::ANY,
            prefix_len in 0u8..=32,
        ) {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
            let net = IpNet::new(IpAddr::V4((network & keep).into()), prefix_len)
                .expect("masked network");
            let inside = address & keep == network & keep;
            proptest::prop_assert_eq!(net.contains(IpAddr::V4(address.into())), inside);
        }

        #[test]
        fn cidr_parser_never_panics(text in "[0-9a-f:./]{0,45}") {
            let _ = text.parse::<IpNet>();
        }
    }
}
