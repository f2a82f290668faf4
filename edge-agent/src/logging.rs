//! Log output: the systemd journal when the agent runs under systemd, stderr otherwise.
//!
//! The level comes from `RUST_LOG` (tracing-subscriber's `EnvFilter` syntax,
//! e.g. `info,edge_agent::serve=debug`); without it, `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The systemd journal, with structured fields.
    Journald,
    /// Human-readable lines on stderr.
    Stderr,
}

/// Installs the global log subscriber and returns where it writes.
///
/// The journal is used when systemd connected our stderr to it (`JOURNAL_STREAM`
/// names stderr's device and inode); if the journal socket cannot be opened the
/// events go to stderr, and a warning says so. Calling this twice keeps the
/// first subscriber.
pub fn init() -> LogTarget {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let mut journald_error = None;
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(layer) => {
                // Plain field names (`ZONE=example.test.`), for `journalctl ZONE=…`;
                // none of ours clashes with the journal's own fields.
                let layer = layer.with_field_prefix(None);
                // Ignored error: a subscriber is already installed, which is fine.
                let _ = tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .try_init();
                return LogTarget::Journald;
            }
            Err(e) => journald_error = Some(e),
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(fmt)
        .try_init();
    if let Some(e) = journald_error {
        tracing::warn!("cannot log to the systemd journal ({e}); logging to stderr");
    }
    LogTarget::Stderr
}

/// Whether systemd connected stderr to the journal: `JOURNAL_STREAM` is
/// `device:inode` of that stream (systemd.exec(5)). Comparing it with stderr
/// keeps a child whose stderr was redirected from logging to the journal.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;

    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => meta.dev() == device && meta.ino() == inode,
        // Without /proc we cannot compare; trust the variable, as systemd set it.
        Err(_) => true,
    }
}
