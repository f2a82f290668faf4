//! Record data in presentation form (stub, being written).
