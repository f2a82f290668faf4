//! `edge-agent`: runs the authoritative DNS server, or checks its configuration.
//!
//! Exit codes: 0 success; 1 a runtime failure (say, an address cannot be
//! bound); 2 a configuration or zone error found by `check`, an invalid
//! configuration at start, or bad command-line arguments.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use edge_agent::config::{Config, ZoneSource};
use edge_agent::serve::reload::{ZoneOutcome, load_zones};
use edge_agent::{logging, serve};

/// Exit code of a runtime failure.
const EXIT_FAILURE: u8 = 1;
/// Exit code of a configuration, zone or usage error.
const EXIT_CONFIG: u8 = 2;

const USAGE: &str = "\
Usage:
  edge-agent --config FILE          run the DNS server
  edge-agent check --config FILE    check FILE and load every zone it names
  edge-agent zones --config FILE    list each zone: serial, master, refresh times, errors
  edge-agent --help | --version

Options:
  -c, --config FILE   the configuration file (TOML; see docs/configuration.md)
  -h, --help          print this help
  -V, --version       print the version

Signals: SIGHUP reloads the configuration's zones; SIGTERM and SIGINT stop.
Logs go to the systemd journal under systemd, else to stderr; RUST_LOG sets
the level (default: info).
Exit codes: 0 ok, 1 runtime failure, 2 configuration or zone errors.";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Run the server.
    Run { config: PathBuf },
    /// Check the configuration and its zones.
    Check { config: PathBuf },
    /// List the zones and the state of secondary zones.
    Zones { config: PathBuf },
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let command = match parse_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("edge-agent: {message}\n\n{USAGE}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match command {
        Command::Help => {
            println!(
                "edge-agent {}: authoritative DNS server of edgedns\n\n{USAGE}",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("edge-agent {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { config } => check(&config),
        Command::Zones { config } => zones(&config),
        Command::Run { config } => run(config),
    }
}

/// Reads the arguments after the program name.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut check = false;
    let mut list = false;
    let mut config: Option<PathBuf> = None;
    let mut seen_any = false;
    while let Some(arg) = args.next() {
        let first = !seen_any;
        seen_any = true;
        let Some(text) = arg.to_str() else {
            return Err(format!("unexpected argument {}", arg.to_string_lossy()));
        };
        match text {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "check" if first => check = true,
            "zones" if first => list = true,
            "-c" | "--config" => {
                let value = args.next().ok_or_else(|| format!("{text} needs a file"))?;
                if config.replace(PathBuf::from(value)).is_some() {
                    return Err("--config given twice".to_string());
                }
            }
            _ => match text.strip_prefix("--config=") {
                Some(value) if !value.is_empty() => {
                    if config.replace(PathBuf::from(value)).is_some() {
                        return Err("--config given twice".to_string());
                    }
                }
                _ => return Err(format!("unexpected argument {text:?}")),
            },
        }
    }
    let config = config.ok_or("--config FILE is required")?;
    Ok(if check {
        Command::Check { config }
    } else if list {
        Command::Zones { config }
    } else {
        Command::Run { config }
    })
}

/// `edge-agent zones`: one line per configured zone. Secondary zones show
/// what the running agent last wrote to the store's status file.
fn zones(path: &Path) -> ExitCode {
    use edge_agent::xfr::status::{STATUS_FILE, format_time, parse_file};
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let statuses = config
        .store
        .as_ref()
        .and_then(|store| std::fs::read_to_string(store.path.join(STATUS_FILE)).ok())
        .map(|text| parse_file(&text))
        .unwrap_or_default();
    let time = |t: Option<u64>| t.map_or_else(|| "-".to_string(), format_time);
    println!(
        "{:<24} {:<9} {:>10} {:<22} {:<20} {:<20} {:<20} {:<8} LAST ERROR",
        "ZONE", "ROLE", "SERIAL", "MASTER", "LAST REFRESH", "NEXT REFRESH", "EXPIRES", "STATE"
    );
    for zone in &config.zones {
        let name = zone.name.to_string();
        match &zone.source {
            ZoneSource::File(file) => println!(
                "{name:<24} {:<9} {:>10} {:<22} {:<20} {:<20} {:<20} {:<8} -",
                "primary",
                "-",
                file.display(),
                "-",
                "-",
                "-",
                "file"
            ),
            ZoneSource::Secondary { .. } => {
                let status = statuses
                    .iter()
                    .find(|(zone, _)| *zone == name)
                    .map(|(_, s)| s);
                let Some(s) = status else {
                    println!(
                        "{name:<24} {:<9} {:>10} no status yet (is the agent running?)",
                        "secondary", "-"
                    );
                    continue;
                };
                println!(
                    "{name:<24} {:<9} {:>10} {:<22} {:<20} {:<20} {:<20} {:<8} {}",
                    "secondary",
                    s.serial.map_or_else(|| "-".to_string(), |v| v.to_string()),
                    s.master.as_deref().unwrap_or("-"),
                    time(s.last_refresh),
                    time(s.next_refresh),
                    time(s.expire_deadline),
                    if s.expired { "SERVFAIL" } else { "ok" },
                    s.last_error.as_deref().unwrap_or("-"),
                );
            }
            _ => println!("{name:<24} unknown source"),
        }
    }
    ExitCode::SUCCESS
}

/// `edge-agent check`: validates the config and loads every zone, printing
/// each problem; exit 0 when all is well, 2 otherwise.
fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("configuration {} is invalid", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let addresses: Vec<String> = config
        .server
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    println!(
        "configuration {}: ok; listen {}; {} worker(s); {} zone(s)",
        path.display(),
        addresses.join(", "),
        config.server.workers,
        config.zones.len()
    );
    for zone in &config.zones {
        if let ZoneSource::Secondary { masters, .. } = &zone.source {
            let masters: Vec<String> = masters.iter().map(|m| m.address.to_string()).collect();
            println!(
                "zone {}: secondary of {}; configuration checked (its data comes by transfer)",
                zone.name,
                masters.join(", ")
            );
        }
    }
    let started = Instant::now();
    let (_, reports) = load_zones(&config.zones, None, Default::default());
    let mut failed = 0;
    for report in &reports {
        let file = report.file.display();
        match &report.outcome {
            ZoneOutcome::Loaded {
                serial,
                records,
                elapsed,
            } => println!(
                "zone {}: serial {serial}, {records} records, loaded in {:.2} ms ({file})",
                report.name,
                elapsed.as_secs_f64() * 1000.0
            ),
            ZoneOutcome::Failed { error, .. } => {
                failed += 1;
                eprintln!("zone {} ({file}) does not load:", report.name);
                for line in error.to_string().lines() {
                    eprintln!("  {line}");
                }
            }
        }
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if failed > 0 {
        eprintln!("{failed} of {} zone(s) failed to load", reports.len());
        return ExitCode::from(EXIT_CONFIG);
    }
    println!("all {} zone(s) loaded in {elapsed_ms:.2} ms", reports.len());
    ExitCode::SUCCESS
}

/// `edge-agent --config FILE`: serves until SIGTERM or SIGINT.
fn run(path: PathBuf) -> ExitCode {
    logging::init();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), "edge-agent starting");
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("invalid configuration, not starting:\n{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match serve(path, config) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Runs the server; the error says what failed, for the log.
fn serve(path: PathBuf, config: Config) -> anyhow::Result<()> {
    serve::run(path, config).context("the server cannot run")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments_are_parsed() {
        let config = PathBuf::from("a.toml");
        assert_eq!(
            parse(&["--config", "a.toml"]),
            Ok(Command::Run {
                config: config.clone()
            })
        );
        assert_eq!(
            parse(&["-c", "a.toml"]),
            Ok(Command::Run {
                config: config.clone()
            })
        );
        assert_eq!(
            parse(&["--config=a.toml"]),
            Ok(Command::Run {
                config: config.clone()
            })
        );
        assert_eq!(
            parse(&["check", "--config", "a.toml"]),
            Ok(Command::Check { config })
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["check", "-V"]), Ok(Command::Version));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--config", "a", "--config", "b"]).is_err());
        assert!(parse(&["--config", "a", "check"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }
}
