//! RFC 1035 master-file parser (stub, being written).
