//! Zone data: names, records, master-file loading and the lookup model.

pub mod master;
pub mod name;
pub mod rdata_text;
pub mod rr;

pub use name::Name;
