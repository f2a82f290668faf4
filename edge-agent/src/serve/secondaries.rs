//! Starts the transfer task of every secondary zone: opens the store, builds
//! each zone's masters (with their TSIG keys) and runs the tasks on the
//! main runtime. Each task publishes through the shared [`Catalog`].

use std::sync::Arc;

use super::ServeError;
use super::catalog::Catalog;
use crate::config::{Config, ZoneSource};
use crate::store::Store;
use crate::xfr::client::{Master, TransferLimits};
use crate::xfr::secondary::SecondaryZone;
use crate::xfr::status::StatusBoard;
use crate::xfr::tsig::TsigKey;
use crate::xfr::upstream::Masters;

/// Spawns one task per secondary zone of `config`. Returns the store (so
/// transfers out can read journals), or `None` when no zone is secondary.
pub fn start(config: &Config, catalog: &Arc<Catalog>) -> Result<Option<Arc<Store>>, ServeError> {
    let secondaries: Vec<_> = config
        .zones
        .iter()
        .filter(|z| matches!(z.source, ZoneSource::Secondary { .. }))
        .collect();
    let Some(store_config) = &config.store else {
        return Ok(None);
    };
    if secondaries.is_empty() {
        return Ok(None);
    }
    let store = Store::open(&store_config.path).map_err(|e| ServeError::Setup {
        what: "the zone store",
        source: std::io::Error::other(e.to_string()),
    })?;
    let store = Arc::new(store);
    let board = Arc::new(StatusBoard::new(&store_config.path));
    let keys: Vec<(crate::zone::Name, Arc<TsigKey>)> = config
        .tsig_keys
        .iter()
        .map(|k| (k.name.clone(), Arc::new(TsigKey::from(k))))
        .collect();
    for zone in secondaries {
        let ZoneSource::Secondary {
            masters,
            transfer_idle_timeout,
            max_transfer_records,
            ..
        } = &zone.source
        else {
            continue;
        };
        let masters = masters
            .iter()
            .map(|m| Master {
                address: m.address,
                key: m.tsig.as_ref().and_then(|name| {
                    keys.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, key)| key.clone())
                }),
            })
            .collect();
        let mut limits = TransferLimits {
            timeout: *transfer_idle_timeout,
            ..TransferLimits::default()
        };
        if let Some(max) = max_transfer_records {
            limits.max_records = usize::try_from(*max).unwrap_or(usize::MAX);
        }
        let Some(control) = catalog
            .zones()
            .load()
            .get(&zone.name)
            .and_then(|e| e.secondary.clone())
        else {
            continue;
        };
        let upstream = Masters::new(zone.name.clone(), masters, limits, zone.notify.clone());
        let mut task = SecondaryZone::new(
            zone.name.clone(),
            upstream,
            control,
            store.clone(),
            catalog.clone(),
            store_config.max_journal_entries,
        )
        .with_status(board.clone());
        tokio::spawn(async move {
            task.restore().await;
            task.run().await;
        });
    }
    Ok(Some(store))
}
