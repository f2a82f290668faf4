//! Loading the configured zones into a [`ZoneSet`], at start and on SIGHUP.
//!
//! A zone whose file fails to load keeps its previous version (if it had one)
//! and the error is logged with every `file:line` problem; a zone that never
//! loaded is not served. Counters ([`ZoneStats`]) belong to the zone name, not
//! to a version: a reload hands the same `Arc` to the new version.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::catalog::Catalog;

use crate::config::{Config, TsigKeyConfig, ZoneConfig, ZoneSource};
use crate::stats::ZoneStats;
use crate::xfr::tsig::TsigKey;
use crate::zone::{LoadError, Name, SecondaryControl, Zone, ZoneEntry, ZoneSet, load_zone};

/// What happened to one configured zone during a load.
#[derive(Debug)]
pub struct ZoneReport {
    /// The zone's apex.
    pub name: Name,
    /// The master file it was read from.
    pub file: PathBuf,
    /// Loaded, or why not.
    pub outcome: ZoneOutcome,
}

/// The result of loading one zone.
#[derive(Debug)]
pub enum ZoneOutcome {
    /// The new version is published.
    Loaded {
        /// Its SOA serial.
        serial: u32,
        /// Its number of records.
        records: usize,
        /// How long reading and building it took.
        elapsed: Duration,
    },
    /// The file could not be loaded.
    Failed {
        /// Every problem, `file:line: message`.
        error: LoadError,
        /// Serial of the previous version, still served; `None`: the zone is not served.
        kept_serial: Option<u32>,
    },
}

/// Loads every zone of `zones`. A zone that fails keeps its entry from
/// `previous` if it has one; counters are taken over from `previous` by name.
/// Secondary zones get no TSIG keys for NOTIFY: enough for `check`; the
/// daemon uses [`load_zones_with_keys`].
pub fn load_zones(
    zones: &[ZoneConfig],
    previous: Option<&ZoneSet>,
    unmatched: Arc<ZoneStats>,
) -> (ZoneSet, Vec<ZoneReport>) {
    load_zones_with_keys(zones, &[], previous, unmatched)
}

/// [`load_zones`] where a new secondary zone's control gets the TSIG keys
/// (from `tsig_keys`) of its masters: a NOTIFY from a master that has a key
/// must be signed with it.
pub fn load_zones_with_keys(
    zones: &[ZoneConfig],
    tsig_keys: &[TsigKeyConfig],
    previous: Option<&ZoneSet>,
    unmatched: Arc<ZoneStats>,
) -> (ZoneSet, Vec<ZoneReport>) {
    let mut entries = Vec::with_capacity(zones.len());
    let mut reports = Vec::with_capacity(zones.len());
    for zone in zones {
        let old = previous.and_then(|set| set.get(&zone.name));
        let file = match &zone.source {
            ZoneSource::File(file) => file,
            ZoneSource::Secondary {
                masters,
                notify_from,
                ..
            } => {
                // The zone's transfer task owns its versions: keep the entry
                // it publishes; a new secondary starts empty (SERVFAIL).
                let entry = old
                    .filter(|e| e.secondary.is_some())
                    .cloned()
                    .unwrap_or_else(|| {
                        let mut notifiers: Vec<IpAddr> =
                            masters.iter().map(|m| m.address.ip()).collect();
                        notifiers.extend(notify_from.iter().copied());
                        let master_keys = masters
                            .iter()
                            .filter_map(|m| {
                                let name = m.tsig.as_ref()?;
                                let key = tsig_keys.iter().find(|k| &k.name == name)?;
                                Some((m.address.ip(), Arc::new(TsigKey::from(key))))
                            })
                            .collect();
                        let control =
                            SecondaryControl::new(notifiers).with_master_keys(master_keys);
                        ZoneEntry {
                            zone: Arc::new(Zone::placeholder(&zone.name)),
                            stats: old.map_or_else(Arc::default, |e| e.stats.clone()),
                            secondary: Some(Arc::new(control)),
                        }
                    });
                entries.push(entry);
                continue;
            }
        };
        let started = Instant::now();
        let outcome = match load_zone(&zone.name, file) {
            Ok(loaded) => {
                let outcome = ZoneOutcome::Loaded {
                    serial: loaded.serial(),
                    records: loaded.record_count(),
                    elapsed: started.elapsed(),
                };
                let stats = old.map_or_else(Arc::default, |entry| entry.stats.clone());
                entries.push(ZoneEntry::primary(Arc::new(loaded), stats));
                outcome
            }
            Err(error) => {
                if let Some(entry) = old {
                    entries.push(entry.clone());
                }
                ZoneOutcome::Failed {
                    error,
                    kept_serial: old.map(|entry| entry.zone.serial()),
                }
            }
        };
        reports.push(ZoneReport {
            name: zone.name.clone(),
            file: file.clone(),
            outcome,
        });
    }
    (ZoneSet::new(entries, unmatched), reports)
}

/// Logs one [`ZoneReport`]: info when loaded, error (with every problem) when not.
pub fn log_report(report: &ZoneReport) {
    let zone = &report.name;
    let file = report.file.display();
    match &report.outcome {
        ZoneOutcome::Loaded {
            serial,
            records,
            elapsed,
        } => {
            let load_ms = format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0);
            tracing::info!(%zone, serial, records, %load_ms, %file, "zone loaded");
        }
        ZoneOutcome::Failed {
            error,
            kept_serial: Some(serial),
        } => {
            tracing::error!(%zone, %file, serial, "zone not reloaded, still serving serial {serial}:\n{error}");
        }
        ZoneOutcome::Failed {
            error,
            kept_serial: None,
        } => {
            tracing::error!(%zone, %file, "zone not loaded, not served:\n{error}");
        }
    }
}

/// Owns the running configuration and the published zone set; reloads both.
#[derive(Debug)]
pub struct Reloader {
    config_path: PathBuf,
    config: Config,
    catalog: Arc<Catalog>,
}

/// The configured TSIG keys, as the query path uses them.
fn signing_keys(keys: &[TsigKeyConfig]) -> Arc<Vec<Arc<TsigKey>>> {
    Arc::new(keys.iter().map(|k| Arc::new(TsigKey::from(k))).collect())
}

impl Reloader {
    /// Loads the zones of `config` (read from `config_path`) and publishes them.
    pub fn new(config_path: PathBuf, config: Config) -> Reloader {
        let (set, reports) =
            load_zones_with_keys(&config.zones, &config.tsig_keys, None, Arc::default());
        let set = set
            .with_udp_payload(config.server.udp_payload)
            .with_tsig_keys(signing_keys(&config.tsig_keys));
        reports.iter().for_each(log_report);
        log_summary(&set, config.zones.len());
        Reloader {
            config_path,
            config,
            catalog: Arc::new(Catalog::new(set)),
        }
    }

    /// The published zone set, read by the workers.
    pub fn zones(&self) -> &Arc<ArcSwap<ZoneSet>> {
        self.catalog.zones()
    }

    /// The catalog, through which secondary zones publish their versions.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Re-reads the config file and every zone, then publishes the new set.
    ///
    /// Zones added to or removed from the file are taken into account; a
    /// config file that no longer validates is logged and the zones of the
    /// running configuration are re-read instead. Of `[server]`, only
    /// `udp_payload` applies at once (it travels with the zone set); the other
    /// options need a restart (sockets and workers are set up once).
    pub fn reload(&mut self) {
        match Config::load(&self.config_path) {
            Ok(config) => {
                let udp_payload = config.server.udp_payload;
                let mut server = config.server;
                server.udp_payload = self.config.server.udp_payload;
                if server != self.config.server {
                    tracing::warn!(
                        "changes to [server] other than udp_payload take effect only after a restart"
                    );
                }
                self.config.server.udp_payload = udp_payload;
                self.config.zones = config.zones;
            }
            Err(e) => {
                tracing::error!("configuration not reloaded, re-reading the zones it had:\n{e}");
            }
        }
        let zones = &self.config.zones;
        let tsig_keys = &self.config.tsig_keys;
        let udp_payload = self.config.server.udp_payload;
        let reports = self.catalog.update(|previous| {
            let (set, reports) =
                load_zones_with_keys(zones, tsig_keys, Some(previous), previous.unmatched.clone());
            let set = set
                .with_udp_payload(udp_payload)
                .with_tsig_keys(previous.tsig_keys.clone());
            (Some(set), reports)
        });
        let set = self.catalog.zones().load_full();
        // Logged once published: "zone loaded" means it is being served.
        reports.iter().for_each(log_report);
        log_summary(&set, self.config.zones.len());
    }
}

/// Logs how many of the configured zones are served.
fn log_summary(set: &ZoneSet, configured: usize) {
    let served = set.entries().len();
    if served < configured {
        tracing::warn!(served, configured, "some configured zones are not served");
    } else {
        tracing::info!(served, "all configured zones are served");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_ZONE: &str = "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";

    /// A fresh folder for one test's files.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edge-agent-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn zone_config(name: &str, file: &Path) -> ZoneConfig {
        ZoneConfig {
            name: Name::parse(name).expect("name"),
            source: ZoneSource::File(file.to_path_buf()),
            allow_transfer: Vec::new(),
            notify: Vec::new(),
        }
    }

    #[test]
    fn failed_reload_keeps_old_version_and_counters() {
        let dir = temp_dir("reload-keeps");
        let file = dir.join("a.test.zone");
        std::fs::write(&file, GOOD_ZONE).expect("write zone");
        let a = zone_config("a.test.", &file);
        let unmatched = Arc::new(ZoneStats::default());
        let (first, reports) = load_zones(std::slice::from_ref(&a), None, unmatched.clone());
        assert!(
            matches!(
                reports[0].outcome,
                ZoneOutcome::Loaded {
                    serial: 7,
                    records: 3,
                    ..
                }
            ),
            "{reports:?}"
        );
        let entry = first.get(&a.name).expect("loaded");
        entry.stats.record(1, 0);

        std::fs::write(&file, "@ IN SOA broken\n").expect("write zone");
        let (second, reports) =
            load_zones(std::slice::from_ref(&a), Some(&first), unmatched.clone());
        assert!(
            matches!(
                reports[0].outcome,
                ZoneOutcome::Failed {
                    kept_serial: Some(7),
                    ..
                }
            ),
            "{reports:?}"
        );
        let kept = second.get(&a.name).expect("old version kept");
        assert!(Arc::ptr_eq(&kept.zone, &entry.zone));
        assert!(Arc::ptr_eq(&kept.stats, &entry.stats));
        assert!(Arc::ptr_eq(&second.unmatched, &unmatched));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn counters_survive_a_good_reload_and_removed_zones_go() {
        let dir = temp_dir("reload-counters");
        let file = dir.join("a.test.zone");
        std::fs::write(&file, GOOD_ZONE).expect("write zone");
        let a = zone_config("a.test.", &file);
        let b = zone_config("b.test.", &dir.join("missing.zone"));
        let (first, reports) = load_zones(&[a.clone(), b.clone()], None, Arc::default());
        assert!(
            matches!(
                reports[1].outcome,
                ZoneOutcome::Failed {
                    kept_serial: None,
                    ..
                }
            ),
            "{reports:?}"
        );
        assert!(
            first.get(&b.name).is_none(),
            "a zone that never loaded is not served"
        );
        let entry = first.get(&a.name).expect("loaded");
        entry.stats.record(1, 0);
        let (second, _) = load_zones(std::slice::from_ref(&a), Some(&first), Arc::default());
        let again = second.get(&a.name).expect("reloaded");
        assert!(!Arc::ptr_eq(&again.zone, &entry.zone), "a new version");
        assert!(Arc::ptr_eq(&again.stats, &entry.stats), "the same counters");
        assert_eq!(second.entries().len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
