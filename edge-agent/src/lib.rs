//! edgedns edge agent: an authoritative DNS server for edge nodes.
//!
//! The query path is a sans-IO core ([`dns`]) that turns query bytes and a
//! published zone set ([`zone::ZoneSet`]) into response bytes; [`serve`] holds
//! the thin UDP and TCP layers around it.

// One audited exception: `sendmmsg(2)` in serve::udp (no safe wrapper exists).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod dns;
pub mod logging;
pub mod serve;
pub mod stats;
pub mod store;
pub mod xfr;
pub mod zone;
