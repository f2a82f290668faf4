//! The published zone set and the lock that serialises its writers.
//!
//! Readers (the workers) never take the lock: they load the current
//! `Arc<ZoneSet>` from the `ArcSwap`. Writers — the SIGHUP reloader and the
//! transfer tasks of secondary zones — each build a new set from the current
//! one under the lock, so no writer's version can overwrite another's.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::zone::{Zone, ZoneSet};

/// The zone set being served.
#[derive(Debug)]
pub struct Catalog {
    zones: Arc<ArcSwap<ZoneSet>>,
    writers: Mutex<()>,
}

impl Catalog {
    /// A catalog publishing `set`.
    pub fn new(set: ZoneSet) -> Catalog {
        Catalog {
            zones: Arc::new(ArcSwap::from_pointee(set)),
            writers: Mutex::new(()),
        }
    }

    /// The published set, for the workers.
    pub fn zones(&self) -> &Arc<ArcSwap<ZoneSet>> {
        &self.zones
    }

    /// Builds the next set from the current one and publishes it, with no
    /// other writer in between. Returns what `next` returned alongside.
    pub fn update<T>(&self, next: impl FnOnce(&Arc<ZoneSet>) -> (Option<ZoneSet>, T)) -> T {
        let _guard = self
            .writers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.zones.load_full();
        let (set, result) = next(&current);
        if let Some(set) = set {
            self.zones.store(Arc::new(set));
        }
        result
    }

    /// Publishes `zone` as the new version of its zone; false when the zone
    /// is no longer configured.
    pub fn install(&self, zone: Arc<Zone>) -> bool {
        self.update(|current| match current.replacing(zone) {
            Some(set) => (Some(set), true),
            None => (None, false),
        })
    }
}
