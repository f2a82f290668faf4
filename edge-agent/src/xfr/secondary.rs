//! The task that keeps one secondary zone in sync with its masters.
//!
//! It restores the zone from the store at start (served at once, unless past
//! its expire deadline), then loops: wait for the refresh timer or a NOTIFY,
//! ask the masters in order (the last one that answered first), transfer
//! when a newer serial exists, persist the result in one store transaction,
//! publish the new version, NOTIFY downstream servers. A failed or malformed
//! transfer changes nothing but the error state. The timers themselves are
//! the sans-IO [`Refresh`] machine; the masters are behind [`Upstream`], so
//! this logic is tested without sockets and driven by real ones in the daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::client::serial_gt;
use super::refresh::{Action, Refresh, SoaTimers};
use super::status::{StatusBoard, ZoneStatus};
use super::{Diff, Transfer};
use crate::serve::catalog::Catalog;
use crate::store::{Store, ZoneState, unix_time};
use crate::zone::apply::apply_diffs;
use crate::zone::{Name, SecondaryControl, Zone};

/// Where a secondary zone's data comes from: its masters, in configured order.
pub trait Upstream: Send + Sync {
    /// Number of masters.
    fn masters(&self) -> usize;
    /// A master's name for logs and state (`address:port`).
    fn describe(&self, master: usize) -> String;
    /// The master's current SOA serial.
    fn serial(&self, master: usize) -> impl Future<Output = Result<u32, String>> + Send;
    /// A transfer from the master relative to `current` (IXFR when given).
    /// `allow_older` permits a serial behind ours (after expiry).
    fn transfer(
        &self,
        master: usize,
        current: Option<Arc<Zone>>,
        allow_older: bool,
    ) -> impl Future<Output = Result<Transfer, String>> + Send;
    /// Tells downstream servers about a new serial (best effort).
    fn notify_downstream(&self, serial: u32) -> impl Future<Output = ()> + Send;
}

/// What the task needs besides its masters.
pub struct SecondaryZone<U> {
    apex: Name,
    upstream: U,
    control: Arc<SecondaryControl>,
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    max_journal: usize,
    refresh: Refresh,
    current: Option<Arc<Zone>>,
    state: ZoneState,
    preferred: usize,
    status: Option<Arc<StatusBoard>>,
}

impl<U: Upstream> SecondaryZone<U> {
    /// A task for `apex`; call [`SecondaryZone::restore`] then
    /// [`SecondaryZone::run`].
    pub fn new(
        apex: Name,
        upstream: U,
        control: Arc<SecondaryControl>,
        store: Arc<Store>,
        catalog: Arc<Catalog>,
        max_journal: usize,
    ) -> SecondaryZone<U> {
        SecondaryZone {
            apex,
            upstream,
            control,
            store,
            catalog,
            max_journal,
            refresh: Refresh::empty(Instant::now()),
            current: None,
            state: ZoneState::default(),
            preferred: 0,
            status: None,
        }
    }

    /// Mirrors this zone's state to `board` (for `edge-agent zones`).
    pub fn with_status(mut self, board: Arc<StatusBoard>) -> SecondaryZone<U> {
        self.status = Some(board);
        self
    }

    /// Writes the zone's current state to the status board, if any.
    fn publish_status(&self) {
        let Some(board) = &self.status else { return };
        let now = Instant::now();
        let wall = unix_time(SystemTime::now());
        let at = |instant: Instant| wall + instant.saturating_duration_since(now).as_secs();
        board.update(
            &self.apex.to_string(),
            ZoneStatus {
                serial: self.current.as_ref().map(|z| z.serial()),
                master: self.state.master.clone(),
                last_refresh: self.state.last_refresh,
                next_refresh: Some(at(self.refresh.due())),
                expire_deadline: self.refresh.expires_at().map(at),
                expired: self.control.is_expired(),
                last_error: self.state.last_error.clone(),
            },
        );
    }

    /// Loads the stored version, publishes it unless it expired while the
    /// node was down, and sets the timers from the stored state.
    pub async fn restore(&mut self) {
        let store = self.store.clone();
        let apex = self.apex.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load_zone(&apex)).await;
        let (zone, state) = match loaded {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => {
                tracing::info!(zone = %self.apex, "no stored version; transferring from the masters");
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(zone = %self.apex, "stored version unusable, transferring again: {e}");
                return;
            }
            Err(e) => {
                tracing::error!(zone = %self.apex, "store task failed: {e}");
                return;
            }
        };
        let now = Instant::now();
        let since = state
            .last_refresh
            .map(|t| Duration::from_secs(unix_time(SystemTime::now()).saturating_sub(t)))
            .unwrap_or(Duration::MAX);
        self.refresh = Refresh::restored(now, timers_of(&zone), since);
        let zone = Arc::new(zone);
        self.catalog.install(zone.clone());
        let expired = self.refresh.is_expired(now);
        self.control.set_expired(expired);
        tracing::info!(
            zone = %self.apex,
            serial = zone.serial(),
            expired,
            "serving the stored version"
        );
        self.current = Some(zone);
        self.state = state;
        self.publish_status();
    }

    /// Runs until the process ends.
    pub async fn run(mut self) {
        loop {
            let wake = tokio::time::Instant::from_std(self.refresh.next_wakeup());
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                serial = self.control.notified() => {
                    tracing::info!(zone = %self.apex, ?serial, "NOTIFY received");
                    self.refresh.notify(Instant::now(), serial);
                }
            }
            self.step().await;
        }
    }

    /// One wake-up: update expiry, and check the masters when due.
    pub async fn step(&mut self) {
        let now = Instant::now();
        let expired = self.refresh.is_expired(now);
        if expired && !self.control.is_expired() && self.current.is_some() {
            tracing::error!(zone = %self.apex, "zone expired: answering SERVFAIL until a master answers");
        }
        self.control.set_expired(expired);
        if self.refresh.poll(now) == Action::Check {
            self.check().await;
        }
        self.publish_status();
    }

    /// Asks each master in turn until one answers.
    async fn check(&mut self) {
        let count = self.upstream.masters();
        let mut errors = Vec::new();
        for i in 0..count {
            let master = (self.preferred + i) % count;
            match self.check_master(master).await {
                Ok(()) => {
                    self.preferred = master;
                    return;
                }
                Err(e) => {
                    let name = self.upstream.describe(master);
                    tracing::warn!(zone = %self.apex, master = %name, "refresh failed: {e}");
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
        self.refresh.failed(Instant::now(), jitter());
        self.state.last_error = Some(errors.join("; "));
        self.save_state().await;
    }

    /// SOA check, then a transfer if the master is ahead.
    async fn check_master(&mut self, master: usize) -> Result<(), String> {
        let serial = self.upstream.serial(master).await?;
        let expired = self.refresh.is_expired(Instant::now());
        if let Some(current) = &self.current
            && !serial_gt(serial, current.serial())
            && !(expired && serial != current.serial())
        {
            if serial != current.serial() {
                tracing::warn!(zone = %self.apex, serial, ours = current.serial(), "master is behind us; keeping our version");
            }
            return self.confirmed(master).await;
        }
        let transfer = self
            .upstream
            .transfer(master, self.current.clone(), expired)
            .await?;
        match transfer {
            Transfer::UpToDate { .. } => self.confirmed(master).await,
            Transfer::Full(zone) => self.install_full(master, zone).await,
            Transfer::Incremental(diffs) => self.install_diffs(master, diffs).await,
        }
    }

    /// The master confirmed our version: only the timers move.
    async fn confirmed(&mut self, master: usize) -> Result<(), String> {
        let Some(current) = self.current.clone() else {
            return Err("master has no newer zone and we have none".to_string());
        };
        let now = Instant::now();
        self.refresh.succeeded(now, timers_of(&current), jitter());
        self.control.set_expired(false);
        self.mark_success(master, timers_of(&current));
        self.save_state().await;
        Ok(())
    }

    async fn install_full(&mut self, master: usize, zone: Zone) -> Result<(), String> {
        let zone = Arc::new(zone);
        self.mark_success(master, timers_of(&zone));
        self.state.serial = zone.serial();
        let (store, state, to_store) = (self.store.clone(), self.state.clone(), zone.clone());
        let started = Instant::now();
        tokio::task::spawn_blocking(move || store.replace_zone(&to_store, &state))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("not stored: {e}"))?;
        let timing = Timing {
            apply: Duration::ZERO,
            store: started.elapsed(),
        };
        self.publish(zone, timing).await;
        Ok(())
    }

    async fn install_diffs(&mut self, master: usize, diffs: Vec<Diff>) -> Result<(), String> {
        let Some(current) = self.current.clone() else {
            return Err("incremental transfer without a version to apply it to".to_string());
        };
        let diffs = Arc::new(diffs);
        let (base, changes) = (current.clone(), diffs.clone());
        let started = Instant::now();
        let next = tokio::task::spawn_blocking(move || apply_diffs(&base, &changes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|problems| format!("IXFR does not apply: {}", problems.join("; ")))?;
        let next = Arc::new(next);
        let applied = Instant::now();
        self.mark_success(master, timers_of(&next));
        self.state.serial = next.serial();
        let (store, state, apex, max) = (
            self.store.clone(),
            self.state.clone(),
            self.apex.clone(),
            self.max_journal,
        );
        tokio::task::spawn_blocking(move || store.apply_diffs(&apex, &diffs, &state, max))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("not stored: {e}"))?;
        let timing = Timing {
            apply: applied - started,
            store: applied.elapsed(),
        };
        self.publish(next, timing).await;
        Ok(())
    }

    /// Serves a new version and tells downstream servers.
    async fn publish(&mut self, zone: Arc<Zone>, timing: Timing) {
        let now = Instant::now();
        self.refresh.succeeded(now, timers_of(&zone), jitter());
        self.catalog.install(zone.clone());
        self.control.set_expired(false);
        tracing::info!(
            zone = %self.apex,
            serial = zone.serial(),
            records = zone.record_count(),
            apply_ms = millis(timing.apply),
            store_ms = millis(timing.store),
            "new version served"
        );
        let serial = zone.serial();
        self.current = Some(zone);
        self.upstream.notify_downstream(serial).await;
    }

    /// Records a successful refresh from `master` of a version with `timers`.
    fn mark_success(&mut self, master: usize, timers: SoaTimers) {
        let wall = unix_time(SystemTime::now());
        self.state.last_refresh = Some(wall);
        self.state.master = Some(self.upstream.describe(master));
        self.state.last_error = None;
        self.state.expire_deadline = Some(wall + timers.expire.as_secs());
    }

    async fn save_state(&mut self) {
        let Some(current) = &self.current else { return };
        self.state.serial = current.serial();
        self.state.refresh_due = Some(
            unix_time(SystemTime::now())
                + self
                    .refresh
                    .due()
                    .saturating_duration_since(Instant::now())
                    .as_secs(),
        );
        let (store, apex, state) = (self.store.clone(), self.apex.clone(), self.state.clone());
        match tokio::task::spawn_blocking(move || store.set_state(&apex, &state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(zone = %self.apex, "zone state not stored: {e}"),
            Err(e) => tracing::error!(zone = %self.apex, "store task failed: {e}"),
        }
    }

    /// The current version, for tests and the zone listing.
    pub fn current(&self) -> Option<&Arc<Zone>> {
        self.current.as_ref()
    }

    /// The refresh state, for tests and the zone listing.
    pub fn refresh(&self) -> &Refresh {
        &self.refresh
    }
}

/// Where the time went between a transfer's end and its version served.
struct Timing {
    /// Applying IXFR differences to the served version (zero for a full zone).
    apply: Duration,
    /// Writing the version to the store (fsync included).
    store: Duration,
}

/// A duration in milliseconds, to a tenth, for log fields.
fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The SOA timers of a version.
fn timers_of(zone: &Zone) -> SoaTimers {
    let soa = zone.soa();
    SoaTimers {
        serial: soa.serial,
        refresh: Duration::from_secs(u64::from(soa.refresh)),
        retry: Duration::from_secs(u64::from(soa.retry)),
        expire: Duration::from_secs(u64::from(soa.expire)),
    }
}

/// A value in 0.0..1.0 that differs between nodes and calls, to spread
/// refreshes (not for anything secret).
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

/// Downstream NOTIFY targets of a zone, for [`Upstream`] implementations.
#[derive(Debug, Clone, Default)]
pub struct Downstream {
    /// Servers to NOTIFY after each new version.
    pub targets: Vec<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::Record;
    use crate::zone::rr::rtype;
    use crate::zone::{ZoneEntry, ZoneSet};
    use std::path::Path;
    use std::sync::Mutex;

    fn zone(serial: u32, www: u8) -> Zone {
        let text = format!(
            "@ 3600 IN SOA ns1 admin {serial} 60 10 300 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\nwww 300 IN A 192.0.2.{www}\n"
        );
        crate::zone::build::zone_from_text("sec.test.", &text)
    }

    fn soa(serial: u32) -> Record {
        let z = zone(serial, 1);
        let set = z.rrset(z.apex_id(), rtype::SOA).unwrap();
        Record {
            owner: z.apex().clone(),
            rtype: rtype::SOA,
            ttl: set.ttl,
            rdata: z.records(set).next().unwrap().into(),
        }
    }

    fn www(last: u8) -> Record {
        Record {
            owner: Name::parse("www.sec.test.").unwrap(),
            rtype: rtype::A,
            ttl: 300,
            rdata: vec![192, 0, 2, last].into(),
        }
    }

    /// A scripted master: answers with what the test queued.
    #[derive(Default)]
    struct Script {
        serial: Mutex<Option<u32>>,
        transfers: Mutex<Vec<Transfer>>,
        notified: Mutex<Vec<u32>>,
    }

    impl Upstream for Arc<Script> {
        fn masters(&self) -> usize {
            1
        }
        fn describe(&self, _: usize) -> String {
            "127.0.0.1:5400".to_string()
        }
        async fn serial(&self, _: usize) -> Result<u32, String> {
            self.serial
                .lock()
                .unwrap()
                .ok_or_else(|| "timed out".to_string())
        }
        async fn transfer(
            &self,
            _: usize,
            _: Option<Arc<Zone>>,
            _: bool,
        ) -> Result<Transfer, String> {
            self.transfers
                .lock()
                .unwrap()
                .pop()
                .ok_or_else(|| "refused".to_string())
        }
        async fn notify_downstream(&self, serial: u32) {
            self.notified.lock().unwrap().push(serial);
        }
    }

    fn setup(
        dir: &Path,
    ) -> (
        SecondaryZone<Arc<Script>>,
        Arc<Script>,
        Arc<Catalog>,
        Arc<SecondaryControl>,
    ) {
        let apex = Name::parse("sec.test.").unwrap();
        let control = Arc::new(SecondaryControl::new(vec![]));
        let entry = ZoneEntry {
            zone: Arc::new(Zone::placeholder(&apex)),
            stats: Arc::default(),
            secondary: Some(control.clone()),
        };
        let catalog = Arc::new(Catalog::new(ZoneSet::new(vec![entry], Arc::default())));
        let store = Arc::new(Store::open(dir).unwrap());
        let script = Arc::new(Script::default());
        let task = SecondaryZone::new(
            apex,
            script.clone(),
            control.clone(),
            store,
            catalog.clone(),
            10,
        );
        (task, script, catalog, control)
    }

    fn served_serial(catalog: &Catalog) -> u32 {
        catalog.zones().load().entries()[0].zone.serial()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "edge-agent-secondary-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn first_transfer_is_stored_served_and_announced() {
        let dir = temp("first");
        runtime().block_on(async {
            let (mut task, script, catalog, control) = setup(&dir);
            assert!(control.is_expired());
            *script.serial.lock().unwrap() = Some(1);
            script
                .transfers
                .lock()
                .unwrap()
                .push(Transfer::Full(zone(1, 80)));
            task.step().await;
            assert_eq!(served_serial(&catalog), 1);
            assert!(!control.is_expired());
            assert_eq!(*script.notified.lock().unwrap(), vec![1]);
        });
        // A restart serves the stored version before any master answers.
        runtime().block_on(async {
            let (mut task, _script, catalog, control) = setup(&dir);
            task.restore().await;
            assert_eq!(served_serial(&catalog), 1);
            assert!(!control.is_expired());
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn notify_brings_an_incremental_change() {
        let dir = temp("ixfr");
        runtime().block_on(async {
            let (mut task, script, catalog, _control) = setup(&dir);
            *script.serial.lock().unwrap() = Some(1);
            script
                .transfers
                .lock()
                .unwrap()
                .push(Transfer::Full(zone(1, 80)));
            task.step().await;
            *script.serial.lock().unwrap() = Some(2);
            script
                .transfers
                .lock()
                .unwrap()
                .push(Transfer::Incremental(vec![Diff {
                    from_serial: 1,
                    to_serial: 2,
                    removed: vec![soa(1), www(80)],
                    added: vec![soa(2), www(81)],
                }]));
            task.refresh.notify(Instant::now(), Some(2));
            task.step().await;
            assert_eq!(served_serial(&catalog), 2);
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_refused_transfer_keeps_the_old_version() {
        let dir = temp("refused");
        runtime().block_on(async {
            let (mut task, script, catalog, _control) = setup(&dir);
            *script.serial.lock().unwrap() = Some(1);
            script
                .transfers
                .lock()
                .unwrap()
                .push(Transfer::Full(zone(1, 80)));
            task.step().await;
            *script.serial.lock().unwrap() = Some(2);
            // A diff that does not apply (removes a record we do not have).
            script
                .transfers
                .lock()
                .unwrap()
                .push(Transfer::Incremental(vec![Diff {
                    from_serial: 1,
                    to_serial: 2,
                    removed: vec![soa(1), www(99)],
                    added: vec![soa(2)],
                }]));
            task.refresh.notify(Instant::now(), Some(2));
            task.step().await;
            assert_eq!(served_serial(&catalog), 1);
            assert_eq!(task.refresh().failures(), 1);
        });
        std::fs::remove_dir_all(&dir).ok();
    }
}
