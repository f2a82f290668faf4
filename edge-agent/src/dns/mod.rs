//! The sans-IO DNS core: query bytes + a zone set in, response bytes out.
//!
//! Nothing here does I/O, takes a lock or allocates per query; UDP, TCP and
//! any other transport are thin layers that call [`respond`].

use crate::zone::ZoneSet;

/// The transport a query arrived on; it decides the size limit of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: answers are limited to 512 bytes, or the EDNS size (capped by ours).
    Udp,
    /// TCP (RFC 7766): answers up to 65535 bytes.
    Tcp,
}

/// Turns one query into its response, written at the start of `out`.
/// Returns the response length, or `None` when the packet must be ignored
/// (a response, or too short to carry a header). `out` should be 65535 bytes
/// for TCP; for UDP at least 4096.
pub fn respond(query: &[u8], transport: Transport, zones: &ZoneSet, out: &mut [u8]) -> Option<usize> {
    let _ = (query, transport, zones, out);
    None
}
